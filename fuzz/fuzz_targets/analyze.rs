//! Reading plus analysis of arbitrary bytes as a capture: the whole
//! pipeline (`annotate_bytes`: two passes, and one pass on one thread and
//! on two with its held rows on a spill file, which must write the same rows), with the row invariants that must
//! hold for any input: one row per decoded TCP segment, in frame order,
//! connection ids in range, `related` never pointing forward.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Panics (a finding) when any row invariant breaks.
    tcpshut_engine::testing::annotate_checked(data, "fuzz.pcap");
});
