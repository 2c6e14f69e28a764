//! Zeek-compatible connection verdicts: `conn_state` and `history` as
//! Zeek's conn.log would report them, so users can join our output with
//! their Zeek logs.
//!
//! STUB: the interface is the contract; the implementation is owned by
//! the Zeek work item.

use crate::segment::Segment;

/// Accumulates what Zeek needs to know about one connection.
#[derive(Clone, Debug, Default)]
pub struct ZeekTracker {}

impl ZeekTracker {
    /// Observes one segment; `from_first_sender` is true when it was sent
    /// by the endpoint that sent the connection's first segment.
    pub fn observe(&mut self, _seg: &Segment<'_>, _from_first_sender: bool) {}

    /// Zeek's conn_state (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0,
    /// RSTRH, SH, SHR, OTH).
    pub fn conn_state(&self) -> &'static str {
        "OTH"
    }

    /// Zeek's history string.
    pub fn history(&self) -> String {
        String::new()
    }
}
