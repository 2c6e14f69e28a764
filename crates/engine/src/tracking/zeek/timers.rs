//! The timers that end a Zeek connection (`AttemptTimer`,
//! `PartialCloseTimer`, `ExpireTimer`, `ResetTimer`, `ConnDeleteTimer`,
//! the session's `InactivityTimer`), with `init-bare.zeek`'s defaults, and
//! `ConnectionClosed`, which sets them.

use super::session::{State, ZeekConn};

pub(super) const SEC: i64 = 1_000_000_000;
/// Largest capture time (ns) the timers work with: far beyond any real
/// capture (year 2146), far enough below i64::MAX for their sums.
pub(super) const MAX_TS: i64 = i64::MAX / 2;
// Zeek's defaults (`scripts/base/init-bare.zeek`), in nanoseconds.
/// `tcp_SYN_timeout`: the first ExpireTimer, after the first packet.
pub(super) const TCP_SYN_TIMEOUT: i64 = 5 * SEC;
/// `tcp_session_timer`: ExpireTimer's period.
pub(super) const TCP_SESSION_TIMER: i64 = 6 * SEC;
/// `tcp_connection_linger`: ExpireTimer's idle threshold.
pub(super) const TCP_CONNECTION_LINGER: i64 = 5 * SEC;
/// `tcp_attempt_delay`: AttemptTimer, after the originator's SYN.
pub(super) const TCP_ATTEMPT_DELAY: i64 = 5 * SEC;
/// `tcp_close_delay`: ConnDeleteTimer, after a complete close.
pub(super) const TCP_CLOSE_DELAY: i64 = 5 * SEC;
/// `tcp_reset_delay`: ResetTimer, after a RST from a closed endpoint.
pub(super) const TCP_RESET_DELAY: i64 = 5 * SEC;
/// `tcp_partial_close_delay`: PartialCloseTimer.
pub(super) const TCP_PARTIAL_CLOSE_DELAY: i64 = 3 * SEC;
/// `tcp_inactivity_timeout`: Session::InactivityTimer.
pub(super) const TCP_INACTIVITY_TIMEOUT: i64 = 300 * SEC;
/// Zeek only schedules PartialCloseTimer and ResetTimer when a script
/// handles `connection_partial_close` / `connection_reset`; we assume a
/// run that loads scripts handling both.
pub(super) const PARTIAL_CLOSE_TIMER: bool = true;
pub(super) const RESET_TIMER: bool = true;
/// A timer that is not scheduled.
pub(super) const NEVER: i64 = i64::MAX;

/// The timers that end a Zeek connection (`TCPSessionAdapter`'s
/// `AttemptTimer`, `PartialCloseTimer`, `ExpireTimer`, `ResetTimer`,
/// `ConnDeleteTimer`, and the session's `InactivityTimer`), as due times
/// in capture nanoseconds, [`NEVER`] when not scheduled.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timers {
    /// `Connection::LastTime`.
    pub(super) last_time: i64,
    /// `TCP_Endpoint::did_close`, by physical endpoint.
    pub(super) did_close: [bool; 2],
    /// `TCPSessionAdapter::is_active`.
    pub(super) active: bool,
    pub(super) attempt: i64,
    pub(super) partial_close: i64,
    /// Up to two ExpireTimer chains: the one started with the
    /// connection, and one started by a half close.
    pub(super) expire: [i64; 2],
    pub(super) reset: i64,
    pub(super) delete: i64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            last_time: 0,
            did_close: [false; 2],
            active: true,
            attempt: NEVER,
            partial_close: NEVER,
            expire: [NEVER; 2],
            reset: NEVER,
            delete: NEVER,
        }
    }
}

impl Timers {
    /// A connection whose first packet came at `now`.
    pub(super) fn new(now: i64) -> Self {
        Timers {
            last_time: now,
            expire: [now + TCP_SYN_TIMEOUT, NEVER],
            ..Timers::default()
        }
    }

    /// `t` with every analyzer timer cancelled.
    pub(super) fn idle(t: &Timers) -> Self {
        Timers {
            last_time: t.last_time,
            did_close: t.did_close,
            active: t.active,
            ..Timers::default()
        }
    }
}

impl ZeekConn {
    /// `TCPSessionAdapter::ConnectionClosed` for endpoint `p`: sets the
    /// timers that will remove the connection (we do not model Zeek's
    /// deferral while reassembled data is still pending).
    pub(super) fn connection_closed(&mut self, p: usize, gen_event: bool) {
        let q = 1 - p;
        let t = &mut self.timers;
        if t.did_close[p] {
            return;
        }
        t.did_close[p] = true;
        let (me, peer) = (&self.ep[p], &self.ep[q]);
        let complete = me.state == State::Reset || t.did_close[q] || peer.state == State::Inactive;
        if complete {
            if (me.prev_state != State::Inactive || peer.state != State::Inactive) && gen_event {
                t.active = false; // ConnectionFinished
            }
            // CancelTimers, then ConnDeleteTimer.
            *t = Timers {
                delete: t.last_time + TCP_CLOSE_DELAY,
                ..Timers::idle(t)
            };
        } else if me.prev_state == State::Inactive {
            if PARTIAL_CLOSE_TIMER {
                t.partial_close = t.partial_close.min(t.last_time + TCP_PARTIAL_CLOSE_DELAY);
            }
        } else {
            // A second ExpireTimer chain.
            t.expire[1] = t.expire[1].min(t.last_time + TCP_SESSION_TIMER);
        }
    }

    /// Would Zeek have removed this connection before capture time `now`?
    /// Runs the pending timers in time order, as Zeek's timer manager
    /// does when `now` advances network time (a timer due exactly at
    /// `now` fires first). Nothing changes the connection between its
    /// segments, so only `is_active` and the rescheduled ExpireTimer
    /// evolve. Timers are taken to fire at their due time, as they do
    /// when other traffic keeps network time moving.
    pub(super) fn expired_by(&mut self, now: i64) -> bool {
        loop {
            let t = &mut self.timers;
            let inactivity = t.last_time.saturating_add(TCP_INACTIVITY_TIMEOUT);
            let due = t
                .attempt
                .min(t.partial_close)
                .min(t.expire[0])
                .min(t.expire[1])
                .min(t.reset)
                .min(t.delete)
                .min(inactivity);
            if due > now {
                return false;
            }
            if due == t.delete || due == inactivity {
                // ConnDeleteTimer, Session::InactivityTimer.
                return true;
            }
            let o = self.orig as usize;
            let (os, rs) = (self.ep[o].state, self.ep[1 - o].state);
            let any_reset = os == State::Reset || rs == State::Reset;
            let any_inactive = os == State::Inactive || rs == State::Inactive;
            if due == t.attempt {
                t.attempt = NEVER;
                if t.active
                    && matches!(os, State::SynSent | State::SynAckSent)
                    && rs == State::Inactive
                {
                    return true;
                }
            } else if due == t.partial_close {
                t.partial_close = NEVER;
                if t.active
                    && os != State::Inactive
                    && rs != State::Inactive
                    && !(t.did_close[0] && t.did_close[1])
                    && !any_reset
                {
                    return true;
                }
            } else if due == t.reset {
                t.reset = NEVER;
                if t.active {
                    return true;
                }
            } else {
                let chain = usize::from(due != t.expire[0]);
                t.expire[chain] = NEVER;
                if !t.active {
                    continue;
                }
                if t.last_time + TCP_CONNECTION_LINGER < due {
                    let closed = t.did_close[0] || t.did_close[1];
                    let both_closed = t.did_close[0] && t.did_close[1];
                    if closed && (both_closed || any_reset || any_inactive) {
                        return true;
                    }
                    if os == State::Inactive && rs == State::Inactive {
                        return true;
                    }
                }
                t.expire[chain] = due + TCP_SESSION_TIMER;
            }
        }
    }
}
