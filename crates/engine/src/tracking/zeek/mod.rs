//! Zeek's model of a connection: its verdicts: `conn_state` and `history` as
//! Zeek's conn.log would report them, so users can join our output with
//! their Zeek logs.
//!
//! This is an independent Rust model of Zeek's TCP bookkeeping, written
//! from reading these Zeek sources (BSD licence; no code copied):
//!
//! - `src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc`: `Process`,
//!   `init_endpoint`, `init_peer`, `update_history`, `update_window`,
//!   `update_ack_seq`, `update_last_seq` and the `Update*State` endpoint
//!   state machine;
//! - `src/packet_analysis/protocol/tcp/TCP.cc` / `ip/IPBasedAnalyzer.cc`:
//!   `WantConnection` (role flip by `likely_server_ports`), `NewConn`;
//! - `src/analyzer/protocol/tcp/TCP_Endpoint.cc`: `Size`, `DidRxmit`,
//!   `ZeroWindow`, `Gap`, `CheckHistory`;
//! - `src/analyzer/protocol/tcp/TCP_Reassembler.cc`: `AckReceived`,
//!   `Undelivered`, `Gap` (when a content gap is written to the history);
//! - `src/Conn.cc` / `Session.h`: `CheckHistory`, `ScaledHistoryEntry`
//!   (letters `c g t w` logged again at 10, 100, … events), `FlipRoles`;
//! - `scripts/base/protocols/conn/main.zeek`: the `conn_state` function;
//! - zeek/zeek pull request #2191: a connection that starts with a SYN-ACK
//!   is flipped once an ACK or data segment follows it;
//! - connection expiry: `TCPSessionAdapter`'s `AttemptTimer`,
//!   `PartialCloseTimer`, `ExpireTimer`, `ResetTimer`, `ConnDeleteTimer`
//!   and `ConnectionClosed`, `session/Session.cc`'s `InactivityTimer`,
//!   `Timer.cc`'s `DoAdvance` (a timer due at or before a packet's time
//!   fires first), with the defaults of `scripts/base/init-bare.zeek`.
//!
//! Deliberate differences are listed in `docs/zeek.md`: we behave like
//! `zeek -C` (bad checksums are ignored, so no `c` letters), a flip is
//! always written as a leading `^` with the earlier letters re-cased for
//! the new roles. One tcpshut connection can span several Zeek
//! connections: [`ZeekTracker`] ends a Zeek connection where Zeek's timers
//! would have removed it, without changing how the engine delimits its
//! own connections.
//!
//! Per-segment work is a handful of integer updates; letters go into an
//! inline buffer, so observing a segment never allocates (a Zeek split
//! allocates its finished row).
//!
//! The model observes each segment from beside the engine's own
//! connection in the flow table ([`crate::tracking::flow::Flow`]), never from inside it, and
//! has one file per part of Zeek it models: the session adapter
//! ([`session`]: endpoints and their state machine), the reassembler's
//! content gaps ([`reassembly`]), the history letters ([`history`]), the
//! timers that end a Zeek connection ([`timers`]), the likely server
//! ports ([`ports`]) and the conn.log `conn_state` ([`conn_state`]).

mod conn_state;
mod history;
mod ports;
mod reassembly;
mod session;
#[cfg(test)]
mod tests;
mod timers;

use crate::wire::segment::Segment;
use session::ZeekConn;
use timers::{MAX_TS, SEC};

/// One connection as Zeek's conn.log would show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ZeekRow {
    pub conn_state: &'static str,
    pub history: String,
    /// Frame of the Zeek connection's first packet.
    pub first_frame: u64,
    /// IP bytes the originator and the responder sent (the IP headers'
    /// lengths, as Zeek's ConnSize analyzer adds them): conn.log's
    /// `orig_ip_bytes` and `resp_ip_bytes`.
    #[serde(skip)]
    pub ip_bytes: [u64; 2],
    /// Octets in the content gaps Zeek reports (`content_gap` events,
    /// which conn.log adds up as `missed_bytes`).
    #[serde(skip)]
    pub missed_bytes: u64,
}

/// Follows one tcpshut connection through Zeek's eyes. Zeek removes a
/// connection on timers (see [`timers`]) and makes a new one from the
/// next packet on the same 4-tuple, so one tcpshut connection can span
/// several Zeek connections. The tracker models the current one and
/// keeps the finished ones as [`ZeekRow`]s, allocated only when Zeek
/// would have split.
#[derive(Clone, Debug, Default)]
pub struct ZeekTracker {
    cur: ZeekConn,
    /// The current Zeek connection's first sender is the tcpshut
    /// connection's second endpoint.
    cur_swapped: bool,
    cur_first_frame: u64,
    /// Network time: the latest capture time seen (it never goes back).
    clock: i64,
    /// Zeek connections that ended before `cur`, in order.
    earlier: Vec<ZeekRow>,
}

impl ZeekTracker {
    /// Observes one segment; `from_first_sender` is true when it was sent
    /// by the endpoint that sent the tcpshut connection's first segment.
    #[inline]
    pub fn observe(&mut self, seg: &Segment<'_>, from_first_sender: bool) {
        // Clamped so that the timer sums below (now + a few minutes) cannot
        // overflow on corrupt timestamps (found by tests/mangled.rs).
        let ts = seg
            .ts
            .secs
            .saturating_mul(SEC)
            .saturating_add(i64::from(seg.ts.nanos))
            .clamp(-MAX_TS, MAX_TS);
        self.clock = self.clock.max(ts);
        if self.cur.started && self.cur.expired_by(self.clock) {
            self.split(!from_first_sender);
        }
        if !self.cur.started {
            self.cur_first_frame = seg.frame;
        }
        self.cur
            .observe(seg, from_first_sender != self.cur_swapped, ts);
    }

    /// Zeek removed the current connection; the next one starts with a
    /// segment from the tcpshut connection's second endpoint if `swapped`.
    #[cold]
    fn split(&mut self, swapped: bool) {
        let done = std::mem::take(&mut self.cur);
        self.earlier.push(done.row(self.cur_first_frame));
        self.cur_swapped = swapped;
    }

    /// conn_state of the first Zeek connection.
    pub fn conn_state(&self) -> &'static str {
        match self.earlier.first() {
            Some(row) => row.conn_state,
            None => self.cur.conn_state(),
        }
    }

    /// History of the first Zeek connection.
    pub fn history(&self) -> String {
        match self.earlier.first() {
            Some(row) => row.history.clone(),
            None => self.cur.history(),
        }
    }

    /// Every Zeek connection this tcpshut connection spans, in order
    /// (one, unless Zeek's timers split it).
    pub fn rows(&self) -> Vec<ZeekRow> {
        let mut rows = self.earlier.clone();
        if self.cur.started || rows.is_empty() {
            rows.push(self.cur.row(self.cur_first_frame));
        }
        rows
    }
}
