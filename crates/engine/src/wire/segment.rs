//! A TCP segment as the engine sees it: decoded once from a frame,
//! borrowed from the capture buffer, and handed down the pipeline.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU64;

pub use crate::wire::tunnel::Tunnel;

/// A capture timestamp: seconds since the Unix epoch plus nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    /// Seconds since the Unix epoch, to the microsecond or so (f64).
    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) * 1e-9
    }

    /// Seconds from `earlier` to this time (negative if it is later).
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.secs as f64 - earlier.secs as f64)
            + (f64::from(self.nanos) - f64::from(earlier.nanos)) * 1e-9
    }

    /// Microseconds from `earlier` to this time, saturating (negative if
    /// it is later).
    pub fn micros_since(self, earlier: Timestamp) -> i64 {
        self.secs
            .saturating_sub(earlier.secs)
            .saturating_mul(1_000_000)
            .saturating_add((i64::from(self.nanos) - i64::from(earlier.nanos)) / 1000)
    }
}

/// As the sidecar's `ts`: epoch seconds with 9 decimals, in a string
/// (an f64 would lose the nanoseconds).
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Timestamp {
    /// Epoch seconds with 9 decimals, as the sidecar's `ts` column wants.
    /// Written with itoa: this runs once per sidecar row.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NANOS: i128 = 1_000_000_000;
        let (sign, whole, frac) = if self.secs < 0 {
            // -1.5 s is stored as secs = -2, nanos = 5e8.
            let abs = (i128::from(self.secs) * NANOS + i128::from(self.nanos)).unsigned_abs();
            (
                "-",
                (abs / NANOS as u128) as u64,
                (abs % NANOS as u128) as u32,
            )
        } else {
            ("", self.secs as u64, self.nanos)
        };
        let mut buf = itoa::Buffer::new();
        f.write_str(sign)?;
        f.write_str(buf.format(whole))?;
        f.write_str(".")?;
        let frac = buf.format(frac);
        f.write_str(&"000000000"[frac.len().min(9)..])?;
        f.write_str(frac)
    }
}

/// The eight TCP flag bits, in header bit order (FIN = 0x01 … CWR = 0x80).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    /// Letters in the sidecar's `FSRPAUEC` order, which is the bit order.
    const LETTERS: [u8; 8] = *b"FSRPAUEC";

    #[inline]
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    #[inline]
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    #[inline]
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    #[inline]
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    #[inline]
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }

    /// The set flags as letters, e.g. `FA`; empty when no flag is set.
    /// Const, so that the CSV writer builds its table of all 256 from it.
    pub const fn letters(self) -> FlagLetters {
        let mut out = FlagLetters {
            buf: [0; 8],
            len: 0,
        };
        let mut i = 0;
        while i < 8 {
            if self.0 & (1 << i) != 0 {
                out.buf[out.len as usize] = Self::LETTERS[i];
                out.len += 1;
            }
            i += 1;
        }
        out
    }
}

/// Stack-allocated flag letters (no allocation on the hot path).
#[derive(Clone, Copy)]
pub struct FlagLetters {
    buf: [u8; 8],
    len: u8,
}

impl FlagLetters {
    /// The letters, zero-padded to eight bytes, and how many there are.
    pub const fn padded(&self) -> ([u8; 8], u8) {
        (self.buf, self.len)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters from LETTERS are ever stored.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letters().as_str())
    }
}

/// TCP options the engine cares about, read from the header once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptionsSummary {
    pub mss: Option<u16>,
    /// Window-scale shift count (RFC 7323), only meaningful on SYNs.
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// The snaplen cut the options: the segment was decoded from its fixed
    /// header, and a SYN's window scale is unknown.
    pub cut: bool,
}

/// What the IP and TCP headers say about the sender's stack, besides the
/// connection: fixed-size fields copied while decoding (no allocation), read
/// only to check who really sent an RST (`tracking/origin.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderMarks {
    /// IPv4 TTL or IPv6 hop limit as captured (0 when unknown).
    pub ttl: u8,
    /// IPv4 identification; `None` for IPv6 (no ID without a fragment header).
    pub ip_id: Option<u16>,
    /// The capture point saw the packet leave (`Some(true)`) or come in
    /// (`Some(false)`), where the link says so (Linux cooked captures:
    /// a router's `-i any`); `None` elsewhere.
    pub outgoing: Option<bool>,
    /// TCP header length in bytes (20 without options, 32 with Linux's
    /// timestamps); 0 when unknown.
    pub tcp_header_len: u8,
    /// The IP packet's length as its header gives it (IPv4 total length;
    /// IPv6 40 + payload length), or as captured when that is 0 (TCP
    /// segmentation offload): what Zeek counts as IP bytes
    /// (`orig_ip_bytes`); 0 when unknown.
    pub ip_len: u32,
}

impl SenderMarks {
    /// Whether the TCP header carried options.
    pub fn has_options(self) -> bool {
        self.tcp_header_len > 20
    }
}

/// A frame number held by a connection (its FIN's, its RST's ...). Frames
/// count from 1 (Wireshark's frame.number), so the number is never zero and
/// `Option<FrameNumber>` takes 8 bytes where `Option<u64>` takes 16: a
/// connection holds a dozen of them, and the bytes saved keep its box
/// within glibc's per-thread cache (see the size test in
/// `tracking::flow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameNumber(NonZeroU64);

impl FrameNumber {
    /// The number of frame `frame`, or `None` for 0 (no frame).
    #[inline]
    pub fn new(frame: u64) -> Option<Self> {
        NonZeroU64::new(frame).map(FrameNumber)
    }

    #[inline]
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

/// One TCP segment decoded from one frame.
///
/// `payload_len` is the length the IP header declares, which is the true
/// length even when the capture's snaplen cut the payload short;
/// `payload` holds only the bytes that were captured.
#[derive(Clone, Debug)]
pub struct Segment<'a> {
    /// 1-based record number in the capture (Wireshark's frame.number).
    pub frame: u64,
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Raw (unscaled) receive window.
    pub window: u16,
    pub payload_len: u32,
    pub payload: &'a [u8],
    pub options: TcpOptionsSummary,
    /// `Some(false)` when the TCP checksum was verified and is wrong,
    /// `None` when it could not be checked (truncated frame, offload).
    pub checksum_ok: Option<bool>,
    /// TTL, IP ID and header length: the sender's fingerprint.
    pub marks: SenderMarks,
    /// The tunnels it came through (part of its connection's identity);
    /// boxed, as few segments have one: a segment stays small to move.
    pub tunnel: Option<Box<Tunnel>>,
    /// It came in a tunnel packet the path fragmented, whose fragments
    /// were all captured: its payload was whole on the wire, though
    /// `payload` holds none of it (see `link::Fragments`).
    pub reassembled: bool,
}

impl Segment<'_> {
    /// Its frame number as a connection holds it (`None` only for frame 0,
    /// which no capture has: frames count from 1).
    #[inline]
    pub fn frame_number(&self) -> Option<FrameNumber> {
        FrameNumber::new(self.frame)
    }

    /// The tunnels it came through (empty for most).
    #[inline]
    pub fn tunnel(&self) -> &Tunnel {
        self.tunnel.as_deref().unwrap_or(&Tunnel::NONE)
    }

    /// Whether every payload byte was captured (`payload` holds them, or
    /// they came in captured fragments).
    #[inline]
    pub fn payload_captured(&self) -> bool {
        self.reassembled || self.payload.len() as u64 >= u64::from(self.payload_len)
    }

    /// Sequence space this segment occupies: payload plus SYN and FIN.
    #[inline]
    pub fn seq_len(&self) -> u32 {
        self.payload_len + self.flags.syn() as u32 + self.flags.fin() as u32
    }

    /// Sequence number just past this segment.
    #[inline]
    pub fn end_seq(&self) -> u32 {
        self.seq.wrapping_add(self.seq_len())
    }
}

#[cfg(test)]
impl Segment<'static> {
    /// A whole segment for the engine's unit tests: frame 1 at time 0,
    /// `len` zero bytes of payload all captured, a valid checksum, no
    /// options, marks or tunnel; tests set what else they need with
    /// `Segment { .., ..Segment::for_test(..) }`.
    pub(crate) fn for_test(
        src: SocketAddr,
        dst: SocketAddr,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
    ) -> Self {
        static DATA: [u8; 1500] = [0; 1500];
        Segment {
            frame: 1,
            ts: Timestamp::default(),
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: len,
            payload: &DATA[..len as usize],
            options: Default::default(),
            checksum_ok: Some(true),
            marks: Default::default(),
            tunnel: None,
            reassembled: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_letters_follow_fsrpauec() {
        assert_eq!(TcpFlags(0x11).to_string(), "FA");
        assert_eq!(TcpFlags(0x14).to_string(), "RA");
        assert_eq!(TcpFlags(0xff).to_string(), "FSRPAUEC");
        assert_eq!(TcpFlags(0).to_string(), "");
    }

    #[test]
    fn timestamp_has_nine_decimals() {
        let ts = Timestamp {
            secs: 1_700_000_000,
            nanos: 1_500,
        };
        assert_eq!(ts.to_string(), "1700000000.000001500");
        let neg = Timestamp {
            secs: -2,
            nanos: 500_000_000,
        };
        assert_eq!(neg.to_string(), "-1.500000000");
    }
}
