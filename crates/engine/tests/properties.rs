//! Property tests: random segment sequences and random bytes through the
//! whole pipeline (`annotate_bytes`, the same two passes as a file).
//!
//! Invariants checked on every generated capture:
//! * no panic, whatever the input;
//! * every TCP frame gets exactly one row, rows in frame order;
//! * `conn` ids are below the number of connections, `related` never
//!   points forward;
//! * each endpoint's state only moves as the RFC 9293 table in
//!   `endpoint::transition` allows: from the state its previous row showed
//!   to the new one through at most three transitions (one segment can be
//!   an ACK of a FIN and a FIN, e.g. FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT;
//!   a reset only ever leads to CLOSED, it never starts a chain),
//!   or by the two documented exceptions on a sender's first FIN (whatever
//!   place in the order of the closes its verdict gives it), the
//!   simultaneous-close correction (the sender is put back to ESTABLISHED,
//!   then sends and receives a FIN, ending in CLOSING, or in TIME-WAIT when
//!   the peer had acknowledged that FIN in a segment captured before it),
//!   and the FIN seen late (after the peer's FIN that acknowledged it: its
//!   sender to TIME-WAIT, its receiver to LAST-ACK or CLOSED).
//!
//! Real recordings degraded at random as captures are taken (frames lost,
//! a late start, an early stop, one direction, a snaplen) keep the verdict
//! invariants of `check::consistent`: outcome, closer, `closed_by`, roles
//! and final states agree, the end-unseen marker and the widened counts
//! with them.

use std::collections::HashMap;
use std::net::SocketAddr;

use proptest::prelude::*;
use tcpshut_engine::testing::state_change_allowed;
use tcpshut_engine::{CaptureSummary, ConnectionReport, MemorySink, Row, TcpState};

/// Checks the invariants over the rows of one capture.
fn check_rows(rows: &[Row], summary: &CaptureSummary, tcp_frames: Option<&[u64]>) {
    if let Some(frames) = tcp_frames {
        let got: Vec<u64> = rows.iter().map(|r| r.frame).collect();
        assert_eq!(got, frames, "one row per TCP frame, in frame order");
    }
    assert_eq!(rows.len() as u64, summary.decode.tcp_segments);
    assert!(rows.windows(2).all(|w| w[0].frame < w[1].frame));
    let mut last: HashMap<(u32, SocketAddr), TcpState> = HashMap::new();
    for row in rows {
        assert!(row.conn < summary.connections, "conn id in range");
        if let Some(related) = row.related {
            assert!(
                related <= row.frame,
                "related {related} after frame {}",
                row.frame
            );
        }
        for (addr, state, is_sender) in [
            (row.src, row.sender_state, true),
            (row.dst, row.receiver_state, false),
        ] {
            let prev = last.insert((row.conn, addr), state).unwrap_or_default();
            assert!(
                state_change_allowed(prev, state, row, is_sender),
                "frame {} conn {} {addr}: {prev} -> {state} with events {}",
                row.frame,
                row.conn,
                row.events
            );
        }
    }
}

// ---- building captures ----

fn pcap_header(link: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&link.to_le_bytes());
    h
}

fn push_record(out: &mut Vec<u8>, ts: u32, data: &[u8], orig_len: usize) {
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(orig_len as u32).to_le_bytes());
    out.extend_from_slice(data);
}

/// A raw IPv4 packet (LINKTYPE_RAW) with a TCP header and `len` bytes of
/// payload, of which only `captured` are in the frame.
#[allow(clippy::too_many_arguments)]
fn ipv4_tcp(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    len: usize,
    captured: usize,
) -> (Vec<u8>, usize) {
    let total = 20 + 20 + len;
    let mut p = Vec::with_capacity(40 + captured.min(len));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src.0);
    p.extend_from_slice(&dst.0);
    p.extend_from_slice(&src.1.to_be_bytes());
    p.extend_from_slice(&dst.1.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[0x50, flags]);
    p.extend_from_slice(&window.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.resize(40 + captured.min(len), b'x');

    (p, total)
}

/// One generated segment.
#[derive(Clone, Debug)]
struct Step {
    tuple: usize,
    reverse: bool,
    flags: u8,
    /// Offset of seq from the direction's cursor (retransmissions, gaps).
    seq_off: i32,
    ack_off: i32,
    len: usize,
    /// Bytes of payload actually captured (snaplen).
    snap: usize,
    gap_secs: u32,
    window: u16,
}

fn flags() -> impl Strategy<Value = u8> {
    prop_oneof![
        // The usual ones: SYN, SYN+ACK, ACK, PSH+ACK, FIN+ACK, RST, RST+ACK.
        3 => prop::sample::select(vec![0x02u8, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x19]),
        // Odd mixes: SYN+FIN, SYN+RST, FIN+RST, no flags, all flags, FIN alone…
        1 => prop::sample::select(vec![0x03u8, 0x06, 0x05, 0x00, 0xff, 0x01, 0x07, 0x13, 0x16]),
        1 => any::<u8>(),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        (0usize..3, any::<bool>(), flags()),
        prop_oneof![3 => Just(0i32), 1 => -3000i32..3000, 1 => any::<i32>()],
        prop_oneof![3 => Just(0i32), 1 => -3000i32..3000, 1 => any::<i32>()],
        prop_oneof![2 => Just(0usize), 2 => 1usize..1500, 1 => Just(1usize)],
        prop_oneof![3 => Just(usize::MAX), 1 => 0usize..64],
        prop_oneof![5 => Just(0u32), 1 => 0u32..300],
        prop_oneof![3 => Just(65535u16), 1 => any::<u16>()],
    )
        .prop_map(
            |((tuple, reverse, flags), seq_off, ack_off, len, snap, gap_secs, window)| Step {
                tuple,
                reverse,
                flags,
                seq_off,
                ack_off,
                len,
                snap,
                gap_secs,
                window,
            },
        )
}

/// An IPv4 address and port.
type Addr = ([u8; 4], u16);

const TUPLES: [(Addr, Addr); 3] = [
    (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80)),
    (([10, 0, 0, 1], 40001), ([10, 0, 0, 2], 80)),
    (([10, 0, 0, 3], 5000), ([10, 0, 0, 2], 6000)),
];

/// Builds a capture; returns it and the frame numbers that are TCP.
fn build(isn_base: u32, steps: &[Step]) -> (Vec<u8>, Vec<u64>) {
    let mut out = pcap_header(101);
    // Per tuple and direction: next sequence number, starting near `isn_base`
    // (which proptest drives close to the 2^32 wraparound).
    let mut cursor: Vec<[u32; 2]> = (0..TUPLES.len() as u32)
        .map(|i| {
            [
                isn_base.wrapping_add(i * 7),
                isn_base.wrapping_sub(i * 11 + 1),
            ]
        })
        .collect();
    let mut ts = 1_700_000_000u32;
    let mut frames = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let (a, b) = TUPLES[s.tuple];
        let (src, dst, d) = if s.reverse { (b, a, 1) } else { (a, b, 0) };
        let seq = cursor[s.tuple][d].wrapping_add(s.seq_off as u32);
        let ack = cursor[s.tuple][1 - d].wrapping_add(s.ack_off as u32);
        let (data, orig) = ipv4_tcp(src, dst, seq, ack, s.flags, s.window, s.len, s.snap);
        ts = ts.wrapping_add(s.gap_secs);
        push_record(&mut out, ts, &data, orig);
        frames.push(i as u64 + 1);
        let used = s.len as u32 + u32::from(s.flags & 0x02 != 0) + u32::from(s.flags & 0x01 != 0);
        if s.seq_off == 0 {
            cursor[s.tuple][d] = seq.wrapping_add(used);
        }
    }
    (out, frames)
}

fn analyse(bytes: &[u8]) -> Option<(Vec<Row>, CaptureSummary)> {
    let mut sink = MemorySink::default();
    let result = tcpshut_engine::annotate_bytes(
        bytes,
        "generated.pcap",
        tcpshut_engine::Detail::Reports,
        &mut sink,
        tcpshut_engine::Schedule::TwoPasses,
    )
    .ok()?;
    assert_eq!(
        sink.capture.as_ref().map(|c| c.frames),
        Some(result.capture.frames)
    );
    Some((sink.rows, result.capture))
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=N for a longer run.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random segment sequences: one row per frame, legal state changes.
    #[test]
    fn random_segments_keep_the_invariants(
        isn_base in prop_oneof![Just(u32::MAX - 100), Just(u32::MAX), Just(0u32), any::<u32>()],
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let (bytes, frames) = build(isn_base, &steps);
        let (rows, summary) = analyse(&bytes).expect("a generated capture is readable");
        prop_assert!(summary.incomplete.is_none());
        check_rows(&rows, &summary, Some(&frames));
        // One pass, two, and one spilling its held rows write the same rows.
        prop_assert!(tcpshut_engine::testing::annotate_checked(&bytes, "generated.pcap").is_some());
    }

    /// A real recording (IPv4 over Ethernet, little-endian pcap), degraded:
    /// each frame kept or lost, a late start, an early stop, one direction
    /// only, a snaplen.
    #[test]
    fn degraded_recordings_keep_the_verdicts_consistent(
        which in 0..RECORDINGS.len(),
        lost in prop::collection::vec(prop::bool::weighted(0.2), 40),
        start in 0usize..12,
        stop in 0usize..12,
        direction in prop_oneof![Just(None), Just(Some(0usize)), Just(Some(1usize))],
        snaplen in prop::option::of(54usize..120),
    ) {
        let bytes = degraded_recording(which, &lost, (start, stop), direction, snaplen);
        prop_assert!(tcpshut_engine::testing::annotate_checked(&bytes, RECORDINGS[which]).is_some());
    }

    /// Random bytes after a valid pcap header (any link type), and random
    /// bytes from the start: no panic; whatever is read keeps the invariants.
    #[test]
    fn random_bytes_never_panic(
        link in prop_oneof![Just(1u32), Just(101), Just(113), Just(276), Just(0), any::<u32>()],
        body in prop::collection::vec(any::<u8>(), 0..2000),
        raw in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = pcap_header(link);
        bytes.extend_from_slice(&body);
        if let Some((rows, summary)) = analyse(&bytes) {
            check_rows(&rows, &summary, None);
        }
        if let Some((rows, summary)) = analyse(&raw) {
            check_rows(&rows, &summary, None);
        }
    }

    /// Records of random frames behind a valid record framing, so that
    /// decoding (not only the container) sees garbage.
    #[test]
    fn random_frames_never_panic(
        link in prop_oneof![Just(1u32), Just(101), Just(113), Just(276), Just(239), Just(0), Just(108)],
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 0..20),
    ) {
        let mut bytes = pcap_header(link);
        for (i, f) in frames.iter().enumerate() {
            push_record(&mut bytes, i as u32, f, f.len());
        }
        let (rows, summary) = analyse(&bytes).expect("framing is valid");
        prop_assert_eq!(summary.frames, frames.len() as u64);
        check_rows(&rows, &summary, None);
    }
}

/// Recordings degraded by the property test: a FIN or an RST first, a
/// half-close, a simultaneous close, a reset after data, losses on the path.
const RECORDINGS: [&str; 8] = [
    "close-client-first.pcap",
    "half-close-data-after-fin.pcap",
    "linger0-after-data.pcap",
    "shut_wr-then-close-unread.pcap",
    "data-after-close.pcap",
    "close-wait-at-end.pcap",
    "router/rst-lost-once-at-client.pcap",
    "router/first-fin-lost-at-client.pcap",
];

/// `RECORDINGS[which]`'s records, with frame `i` lost where `lost[i]`,
/// the first `start` and last `stop` frames dropped, only the frames of
/// one direction (`direction`: the first frame's sender, or the other),
/// each cut to `snaplen` bytes.
fn degraded_recording(
    which: usize,
    lost: &[bool],
    (start, stop): (usize, usize),
    direction: Option<usize>,
    snaplen: Option<usize>,
) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(RECORDINGS[which]);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "{}: little-endian pcap",
        path.display()
    );
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push(&bytes[at..at + 16 + caplen]);
        at += 16 + caplen;
    }
    // The sender of a frame: its Ethernet source address.
    let first_sender = records.first().map(|r| r[16 + 6..16 + 12].to_vec());
    let n = records.len();
    let mut out = bytes[..24].to_vec();
    for (i, record) in records.into_iter().enumerate() {
        let from_first = first_sender.as_deref() == Some(&record[16 + 6..16 + 12]);
        let kept = i >= start.min(n)
            && i + stop.min(n) < n
            && !lost.get(i).copied().unwrap_or(false)
            && direction.is_none_or(|d| from_first == (d == 0));
        if !kept {
            continue;
        }
        let frame = &record[16..];
        let len = snaplen.map_or(frame.len(), |s| s.min(frame.len()));
        out.extend_from_slice(&record[..8]);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&record[12..16]);
        out.extend_from_slice(&frame[..len]);
    }
    out
}

/// Found by `random_segments_keep_the_invariants`: a mid-stream FIN that
/// pass 1 later judged simultaneous left its receiver UNKNOWN in pass 2
/// only, so an RST that pass 1 ignored reset the connection in pass 2 and
/// the passes disagreed on connection ids.
#[test]
fn both_passes_agree_after_a_hindsight_simultaneous_fin() {
    let mk = |reverse, flags, seq_off, gap_secs| Step {
        tuple: 0,
        reverse,
        flags,
        seq_off,
        ack_off: 0,
        len: 0,
        snap: usize::MAX,
        gap_secs,
        window: 65535,
    };
    let steps = [
        mk(true, 0x11, 0, 0),
        mk(false, 0x04, -2, 0),
        mk(true, 0x14, -2, 0),
        mk(false, 0x01, 0, 120),
        mk(false, 0x02, 0, 0),
    ];
    let (bytes, frames) = build(4294967195, &steps);
    let (rows, summary) = analyse(&bytes).unwrap();
    check_rows(&rows, &summary, Some(&frames));
}

/// Many simultaneous closes behind a connection that stays open: hindsight
/// rewrites each held row's facts when its verdict comes (nothing is
/// observed again), so the one pass stays one read, and writes the rows of
/// two passes.
#[test]
fn simultaneous_closes_behind_a_long_connection_stay_one_pass() {
    use tcpshut_engine::{CaptureSummary, Detail, Pass, RowSink, Schedule};

    let mut bytes = pcap_header(101);
    let mut push = |ts: u32,
                    src: ([u8; 4], u16),
                    dst: ([u8; 4], u16),
                    seq: u32,
                    ack: u32,
                    flags: u8,
                    len: usize| {
        let (data, orig) = ipv4_tcp(src, dst, seq, ack, flags, 65535, len, len);
        push_record(&mut bytes, ts, &data, orig);
    };
    let (syn, fin, ack, psh) = (0x02, 0x01, 0x10, 0x08);
    let server = ([10, 0, 0, 2], 80);
    // The long-lived connection, open from the first second to the last,
    // and a chatty one that keeps 100 rows a second coming.
    let long = ([10, 0, 0, 1], 1000);
    push(0, long, server, 0, 0, syn, 0);
    push(0, server, long, 0, 1, syn | ack, 0);
    push(0, long, server, 1, 1, ack, 0);
    let chatty = ([10, 0, 0, 3], 2000);
    let mut chatty_seq = 0u32;
    for second in 0..1000u32 {
        for _ in 0..100 {
            push(second, chatty, server, chatty_seq, 0, psh | ack, 10);
            chatty_seq += 10;
        }
        // A simultaneous close every other second until 600 s.
        if second % 2 == 0 && second < 600 {
            let client = (
                [10, 0, 1, (second / 256) as u8],
                3000 + (second % 256) as u16,
            );
            push(second, client, server, 100, 0, syn, 0);
            push(second, server, client, 500, 101, syn | ack, 0);
            push(second, client, server, 101, 501, ack, 0);
            // Both FINs before either is acknowledged, then both ACKs.
            push(second, client, server, 101, 501, fin | ack, 0);
            push(second, server, client, 501, 101, fin | ack, 0);
            push(second, client, server, 102, 502, ack, 0);
            push(second, server, client, 502, 102, ack, 0);
        }
    }
    push(999, long, server, 1, 1, psh | ack, 5);

    /// The CSV, and whether the run went through three reads.
    struct Csv {
        out: tcpshut_engine::CsvSink<Vec<u8>>,
        passes: u8,
    }
    impl RowSink for Csv {
        fn needs_first_pass(&self) -> bool {
            false
        }
        fn begin(&mut self, c: &CaptureSummary, r: &[ConnectionReport]) -> std::io::Result<()> {
            self.out.begin(c, r)
        }
        fn row(&mut self, row: &Row) -> std::io::Result<()> {
            self.out.row(row)
        }
        fn finish(&mut self) -> std::io::Result<()> {
            self.out.finish()
        }
        fn progress(&mut self, pass: Pass, _: u64) {
            self.passes = self.passes.max(pass.of);
        }
    }
    let run = |schedule| {
        let mut sink = Csv {
            out: tcpshut_engine::CsvSink::new(Vec::new()),
            passes: 0,
        };
        tcpshut_engine::annotate_bytes(&bytes, "replays.pcap", Detail::Brief, &mut sink, schedule)
            .unwrap();
        (sink.out.into_inner().unwrap(), sink.passes)
    };
    let (two, _) = run(Schedule::TwoPasses);
    // Far more rows may be held than this capture has.
    let (one, passes) = run(Schedule::OnePass {
        max_held_rows: 1 << 24,
    });
    assert_eq!(passes, 1, "one read");
    assert!(one == two, "the same rows");
    let simultaneous = String::from_utf8(two)
        .unwrap()
        .matches("fin-simultaneous")
        .count();
    assert_eq!(simultaneous, 2 * 300);
}
