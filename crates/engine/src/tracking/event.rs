//! The teardown vocabulary: event codes a segment can carry, their
//! severities and short texts, and a compact set type for the hot path.
//! This table is the one source of the codes: the Wireshark plugins' event
//! tables and Info tag code lists are generated from it (`lua_event_table`
//! and `c_event_table` in crates/core/src/wireshark.rs, checked by tests).

use std::fmt;

/// How much a row deserves attention (Wireshark's expert severities).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    None,
    Chat,
    Note,
    Warn,
    Error,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Severity::None => "",
            Severity::Chat => "chat",
            Severity::Note => "note",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $severity:ident, $text:literal; )*) => {
        /// One teardown event, as written in the `events` column.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Event { $( $(#[$doc])* $variant, )* }

        impl Event {
            /// Every event, in the order they are written.
            pub const ALL: &'static [Event] = &[$(Event::$variant,)*];

            pub fn code(self) -> &'static str {
                match self { $(Event::$variant => $code,)* }
            }

            pub const fn severity(self) -> Severity {
                match self { $(Event::$variant => Severity::$severity,)* }
            }

            /// A few words on what the event means, the same for every
            /// row (Wireshark's expert item text).
            pub fn text(self) -> &'static str {
                match self { $(Event::$variant => $text,)* }
            }
        }
    };
}

events! {
    /// Opens a connection (SYN without ACK).
    Syn = "syn", Chat, "connection opened (SYN)";
    /// Accepts a connection (SYN+ACK).
    SynAck = "syn-ack", Chat, "connection accepted (SYN-ACK)";
    /// The first FIN of the connection.
    FinActive = "fin-active", Note, "active close (first FIN)";
    /// A FIN sent after acknowledging the peer's FIN, or after the peer's
    /// abortive RST that never reached it: its sender closed second.
    FinPassive = "fin-passive", Note, "passive close (FIN after the peer closed)";
    /// A FIN sent before the sender acknowledged the peer's FIN, by either side.
    FinSimultaneous = "fin-simultaneous", Note, "simultaneous close (FINs crossed)";
    /// The sender's first FIN, in a connection whose verdict cannot tell
    /// who closed first (closer `unknown`: one direction seen, start or
    /// end unseen, a close lost): the wider form of `fin-active`,
    /// `fin-passive` and `fin-simultaneous`, which would claim an order.
    FinOrderUnknown = "fin-order-unknown", Note, "FIN (who closed first cannot be told)";
    /// A FIN at the same sequence number as an earlier one.
    FinRetransmit = "fin-retransmit", Note, "FIN retransmitted";
    /// The first acknowledgement of the peer's FIN.
    FinAcked = "fin-acked", Chat, "FIN acknowledged";
    /// An endpoint enters TIME-WAIT with this segment.
    TimeWait = "time-wait", Chat, "side enters TIME-WAIT";
    /// New payload sent after receiving the peer's FIN: half-close in use.
    DataAfterFin = "data-after-fin", Note, "data sent after the peer's FIN (half-close in use)";
    /// New payload sent to an endpoint that closed for reading: it will be reset.
    DataToClosed = "data-to-closed", Warn, "data sent to a side that has closed";
    /// An abortive RST (close() with unread data, SO_LINGER 0, …).
    RstAbort = "rst-abort", Warn, "connection aborted by RST";
    /// An RST answering data that arrived after its sender closed.
    RstAfterClose = "rst-after-close", Warn, "RST after close (data to a closed socket)";
    /// An RST answering a SYN: nothing listens.
    RstRefused = "rst-refused", Warn, "connection refused (RST answering SYN)";
    /// An RST in an endpoint's name that the endpoint did not send: a middlebox forged it.
    RstForged = "rst-forged", Warn, "RST forged on the path (not sent by the endpoint it names)";
    /// The connection's first RST, right after the first packet following
    /// a long silence, forged or stray: a NAT or firewall dropped the idle
    /// connection's state (`tracking/idle.rs`).
    RstIdle = "rst-idle", Warn, "RST after an idle period: a middlebox dropped the connection's state";
    /// An RST answering a segment of a connection its sender no longer has.
    RstStray = "rst-stray", Note, "RST for no known connection";
    /// An RST outside the receiver's window, which ignores it (RFC 5961).
    RstIgnored = "rst-ignored", Error, "RST ignored by the receiver (out of window or spoofed?)";
    /// A SYN that reopens a 4-tuple after its previous connection closed.
    PortReuse = "port-reuse", Note, "port reused by a new connection";
    /// The connection's first segment is not a SYN: the capture started mid-stream.
    MidStream = "mid-stream", Chat, "capture starts mid-connection";
    /// The snaplen cut the segment's TCP options: decoded from its fixed
    /// header, its payload length from the IP header; on a SYN, the window
    /// scale (and with it every window check) is unknown.
    OptionsCut = "options-cut", Chat, "TCP options cut by the snaplen";
    /// The connection's last segment, and the capture ends before the
    /// connection does: no endpoint finished (CLOSED, TIME-WAIT) as seen,
    /// and not both closed by FIN.
    EndUnseen = "end-unseen", Chat, "capture ends before the connection does";
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The bits of the events of `severity` (as [`EventSet`] holds them).
const fn severity_mask(severity: Severity) -> u32 {
    let mut mask = 0;
    let mut i = 0;
    while i < Event::ALL.len() {
        let event = Event::ALL[i];
        if event.severity() as u8 == severity as u8 {
            mask |= 1 << event as u8;
        }
        i += 1;
    }
    mask
}

/// A set of events, one bit each, iterated in [`Event::ALL`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventSet(u32);

impl EventSet {
    #[inline]
    pub fn insert(&mut self, event: Event) {
        self.0 |= 1 << event as u8;
    }
    #[inline]
    pub fn remove(&mut self, event: Event) {
        self.0 &= !(1 << event as u8);
    }
    #[inline]
    pub fn contains(self, event: Event) -> bool {
        self.0 & (1 << event as u8) != 0
    }
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The set as its bits (one per [`Event`]), to be kept compactly.
    #[inline]
    pub fn bits(self) -> u32 {
        self.0
    }
    /// The set of [`EventSet::bits`].
    #[inline]
    pub fn from_bits(bits: u32) -> EventSet {
        EventSet(bits)
    }
    pub fn iter(self) -> impl Iterator<Item = Event> {
        Event::ALL
            .iter()
            .copied()
            .filter(move |e| self.contains(*e))
    }
    /// The highest severity among the events: a mask test per severity
    /// (every row has a severity, and most have no events).
    #[inline]
    pub fn severity(self) -> Severity {
        const BY_SEVERITY: [(Severity, u32); 4] = [
            (Severity::Error, severity_mask(Severity::Error)),
            (Severity::Warn, severity_mask(Severity::Warn)),
            (Severity::Note, severity_mask(Severity::Note)),
            (Severity::Chat, severity_mask(Severity::Chat)),
        ];
        if self.0 == 0 {
            return Severity::None;
        }
        for (severity, mask) in BY_SEVERITY {
            if self.0 & mask != 0 {
                return severity;
            }
        }
        Severity::None
    }
}

impl fmt::Display for EventSet {
    /// Codes joined by `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, event) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(event.code())?;
        }
        Ok(())
    }
}

impl serde::Serialize for EventSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Event::code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_prints_in_table_order() {
        let mut set = EventSet::default();
        set.insert(Event::TimeWait);
        set.insert(Event::FinPassive);
        set.insert(Event::FinAcked);
        assert_eq!(set.to_string(), "fin-passive;fin-acked;time-wait");
        assert_eq!(set.severity(), Severity::Note);
        set.remove(Event::FinPassive);
        assert_eq!(set.to_string(), "fin-acked;time-wait");
    }

    /// The masks give what the events' own severities give, for every
    /// single event and pairs of them.
    #[test]
    fn severity_is_the_highest_of_the_events() {
        assert_eq!(EventSet::default().severity(), Severity::None);
        for &a in Event::ALL {
            for &b in Event::ALL {
                let mut set = EventSet::default();
                set.insert(a);
                set.insert(b);
                assert_eq!(set.severity(), a.severity().max(b.severity()), "{set}");
            }
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<_> = Event::ALL.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Event::ALL.len());
    }
}
