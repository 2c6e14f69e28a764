//! The CSV sidecar's fast path: the fields every row has, formatted in a
//! fixed buffer without `fmt` (the row's CSV was a fifth of a run).
//!
//! Invariant: everything [`Line`] writes needs no CSV quoting and is what
//! the field's `Display` would write. Its fields are decimal numbers,
//! epoch times with nine decimals (from 1970 on), IPv4 `a.b.c.d:port`,
//! flag letters and RFC 9293 state names: digits, `.`, `:`, capital
//! letters and `-`, never a comma, quote or line break, so no field here
//! is ever quoted. Whatever falls outside (times before 1970, IPv6
//! addresses) is refused (`false`, nothing written) and goes through
//! `CsvSink`'s quoting path instead. `tests/csv_reference.rs` holds the
//! fast writer to a reference writer made with the `csv` crate, byte for
//! byte, on every test capture.

use std::net::{SocketAddr, SocketAddrV4};

use crate::tracking::endpoint::TcpState;
use crate::wire::segment::{TcpFlags, Timestamp};

/// A row's bounded fields, formatted in a fixed buffer: digits are written in
/// place and short texts are copied as fixed-size padded blocks, so that
/// no field costs a call to `memcpy` or the `fmt` machinery (the row's
/// CSV was a fifth of a run). Each field ends with its comma.
pub(super) struct Line {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    /// The last whole seconds written, with their digits and the dot:
    /// consecutive rows mostly share them.
    secs: Cached,
    /// Recently written IPv4 `source,destination,` pairs, direct-mapped
    /// by a hash of the two: a row's addresses are mostly those of one
    /// direction of the few hundred connections open at the time, and
    /// one look-up serves both fields.
    pairs: Box<[CachedPair; PAIR_CACHE]>,
}

/// Slots of [`Line::pairs`] (a power of two): two directions of the
/// connections open at once on a busy link, in 144 KB.
pub(super) const PAIR_CACHE: usize = 2048;

/// A formatted field (at most 24 bytes) and what it was formatted from.
#[derive(Clone, Copy)]
pub(super) struct Cached {
    /// `u64::MAX`: empty (no time formats from it).
    key: u64,
    text: [u8; 24],
    len: u8,
}

impl Cached {
    const EMPTY: Cached = Cached {
        key: u64::MAX,
        text: [0; 24],
        len: 0,
    };
}

/// Two formatted IPv4 `address:port` fields with their commas (at most
/// 44 bytes), and the addresses they were formatted from ([`v4_key`]).
#[derive(Clone, Copy)]
pub(super) struct CachedPair {
    /// `u64::MAX`: empty (no address has this key).
    src: u64,
    dst: u64,
    text: [u8; PAIR_TEXT],
    len: u8,
}

/// Room for two `address:port,` fields, copied whole.
const PAIR_TEXT: usize = 48;

impl CachedPair {
    const EMPTY: CachedPair = CachedPair {
        src: u64::MAX,
        dst: u64::MAX,
        text: [0; PAIR_TEXT],
        len: 0,
    };
}

/// An IPv4 address and port in one number (48 bits).
#[inline]
fn v4_key(v4: &SocketAddrV4) -> u64 {
    u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port())
}

/// Room for the bounded fields of a row (frame, ts, conn, two IPv4
/// addresses, flags, seq, ack, len, two states: at most 200 bytes) plus
/// the slack a padded or cached copy writes past its text.
pub(super) const LINE_CAPACITY: usize = 256;

/// A text of at most 16 bytes, padded to 16 so that it copies in one move.
pub(super) struct Padded {
    bytes: [u8; 16],
    len: u8,
}

impl Padded {
    const fn empty() -> Padded {
        Padded {
            bytes: [0; 16],
            len: 0,
        }
    }

    /// The letters of the set flags (`TcpFlags::letters`), at compile time.
    const fn flag_letters(bits: u8) -> Padded {
        let (letters, len) = TcpFlags(bits).letters().padded();
        let mut padded = Padded::empty();
        let mut i = 0;
        while i < 8 {
            padded.bytes[i] = letters[i];
            i += 1;
        }
        padded.len = len;
        padded
    }

    /// `text` padded (a longer text fails to compile where it is const).
    const fn new(text: &str) -> Padded {
        let src = text.as_bytes();
        let mut bytes = [0u8; 16];
        let mut i = 0;
        while i < src.len() {
            bytes[i] = src[i];
            i += 1;
        }
        Padded {
            bytes,
            len: src.len() as u8,
        }
    }
}

impl Line {
    pub(super) fn new() -> Line {
        Line {
            bytes: [0; LINE_CAPACITY],
            len: 0,
            secs: Cached::EMPTY,
            pairs: Box::new([CachedPair::EMPTY; PAIR_CACHE]),
        }
    }

    /// Writes the seconds' digits and dot from [`Line::secs`] if they
    /// were made from `secs`; otherwise formats them and keeps them there.
    #[inline]
    fn secs(&mut self, secs: u64) {
        let at = self.len;
        if self.secs.key == secs {
            let (text, len) = (self.secs.text, usize::from(self.secs.len));
            self.bytes[at..at + 24].copy_from_slice(&text);
            self.len += len;
            return;
        }
        self.digits(secs, decimal_width(secs));
        self.bytes[self.len] = b'.';
        self.len += 1;
        let len = self.len - at;
        self.secs = Cached {
            key: secs,
            text: [0; 24],
            len: len as u8,
        };
        self.secs.text[..len].copy_from_slice(&self.bytes[at..self.len]);
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Empties the line for the next row.
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    #[inline]
    fn comma(&mut self) {
        self.bytes[self.len] = b',';
        self.len += 1;
    }

    /// Decimal digits of `value`, right-aligned in `width` bytes with
    /// leading zeros; without the comma.
    #[inline]
    fn digits(&mut self, value: u64, width: usize) {
        put_digits(&mut self.bytes[self.len..self.len + width], value);
        self.len += width;
    }

    #[inline]
    pub(super) fn number(&mut self, value: u64) {
        self.digits(value, decimal_width(value));
        self.comma();
    }

    /// Epoch seconds with exactly nine decimals; `false` (nothing written)
    /// for times before 1970, which `Timestamp`'s `Display` handles.
    #[inline]
    pub(super) fn timestamp(&mut self, ts: Timestamp) -> bool {
        let Ok(secs) = u64::try_from(ts.secs) else {
            return false;
        };
        self.secs(secs);
        self.digits(u64::from(ts.nanos), 9);
        self.comma();
        true
    }

    /// `a.b.c.d:port,e.f.g.h:port,` from [`Line::pairs`], or formatted
    /// and kept there; `false` (nothing written) unless both are IPv4.
    #[inline]
    pub(super) fn addr_pair(&mut self, src: &SocketAddr, dst: &SocketAddr) -> bool {
        let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
            return false;
        };
        let (src_key, dst_key) = (v4_key(src), v4_key(dst));
        // Fibonacci hashing: the top bits of the product mix every bit of
        // the keys; the rotation tells the two directions apart.
        let slot = ((src_key ^ dst_key.rotate_left(24)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> (64 - PAIR_CACHE.ilog2())) as usize;
        let at = self.len;
        let cached = &self.pairs[slot];
        if cached.src == src_key && cached.dst == dst_key {
            let (text, len) = (cached.text, usize::from(cached.len));
            self.bytes[at..at + PAIR_TEXT].copy_from_slice(&text);
            self.len += len;
            return true;
        }
        for v4 in [src, dst] {
            self.len += put_ipv4_socket(&mut self.bytes[self.len..], v4);
            self.comma();
        }
        let len = self.len - at;
        let entry = &mut self.pairs[slot];
        *entry = CachedPair {
            src: src_key,
            dst: dst_key,
            text: [0; PAIR_TEXT],
            len: len as u8,
        };
        entry.text[..len].copy_from_slice(&self.bytes[at..at + len]);
        true
    }

    /// `a.b.c.d:port`, not kept (a row with an IPv6 address);
    /// `false` (nothing written) for IPv6.
    pub(super) fn addr(&mut self, addr: &SocketAddr) -> bool {
        let SocketAddr::V4(v4) = addr else {
            return false;
        };
        self.len += put_ipv4_socket(&mut self.bytes[self.len..], v4);
        self.comma();
        true
    }

    #[inline]
    pub(super) fn padded(&mut self, text: &Padded) {
        self.bytes[self.len..self.len + 16].copy_from_slice(&text.bytes);
        self.len += usize::from(text.len);
        self.comma();
    }

    /// The flag letters, from a table of all 256 combinations.
    #[inline]
    pub(super) fn flags(&mut self, flags: TcpFlags) {
        static LETTERS: [Padded; 256] = {
            let mut all = [const { Padded::empty() }; 256];
            let mut bits = 0;
            while bits < 256 {
                all[bits] = Padded::flag_letters(bits as u8);
                bits += 1;
            }
            all
        };
        self.padded(&LETTERS[usize::from(flags.0)]);
    }
}

/// The state's name, padded.
pub(super) fn padded_name(state: TcpState) -> &'static Padded {
    use TcpState::*;
    const fn padded(state: TcpState) -> Padded {
        Padded::new(state.name())
    }
    static NAMES: [Padded; 11] = [
        padded(Unknown),
        padded(SynSent),
        padded(SynReceived),
        padded(Established),
        padded(FinWait1),
        padded(FinWait2),
        padded(CloseWait),
        padded(Closing),
        padded(LastAck),
        padded(TimeWait),
        padded(Closed),
    ];
    &NAMES[state as usize]
}

/// Decimal digits of `value` filling `out`, right-aligned with leading
/// zeros: four at a time (one 64-bit division, then two pairs from a
/// table in 32-bit arithmetic), then two at a time. Sequence and
/// acknowledgement numbers have ten digits: three 64-bit divisions
/// instead of five.
#[inline]
fn put_digits(out: &mut [u8], mut value: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let pair = |n: u32| -> [u8; 2] {
        let at = n as usize * 2;
        [PAIRS[at], PAIRS[at + 1]]
    };
    let mut at = out.len();
    // Zeros come out as "00" pairs, so a value shorter than `out` gets
    // its leading zeros without a separate fill.
    while at >= 4 {
        let four = (value % 10_000) as u32;
        value /= 10_000;
        at -= 4;
        out[at..at + 2].copy_from_slice(&pair(four / 100));
        out[at + 2..at + 4].copy_from_slice(&pair(four % 100));
    }
    let mut rest = value as u32;
    while at >= 2 {
        at -= 2;
        out[at..at + 2].copy_from_slice(&pair(rest % 100));
        rest /= 100;
    }
    if at == 1 {
        out[0] = b'0' + (rest % 10) as u8;
    }
}

/// Bytes of the longest `a.b.c.d:port`.
const IPV4_SOCKET_MAX: usize = 21;

/// The digits of every octet, then their count in the last byte: an
/// octet is one 4-byte copy (its last byte overwritten by what follows).
static OCTETS: [[u8; 4]; 256] = {
    let mut all = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let (hundreds, tens, ones) = (n / 100, n / 10 % 10, n % 10);
        all[n] = if n >= 100 {
            [
                b'0' + hundreds as u8,
                b'0' + tens as u8,
                b'0' + ones as u8,
                3,
            ]
        } else if n >= 10 {
            [b'0' + tens as u8, b'0' + ones as u8, 0, 2]
        } else {
            [b'0' + ones as u8, 0, 0, 1]
        };
        n += 1;
    }
    all
};

/// `a.b.c.d:port` at the start of `out` (at least [`IPV4_SOCKET_MAX`]
/// bytes); returns its length.
#[inline]
fn put_ipv4_socket(out: &mut [u8], v4: &SocketAddrV4) -> usize {
    let mut len = 0;
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            out[len] = b'.';
            len += 1;
        }
        let digits = OCTETS[usize::from(octet)];
        out[len..len + 4].copy_from_slice(&digits);
        len += usize::from(digits[3]);
    }
    out[len] = b':';
    len += 1;
    let port = u64::from(v4.port());
    let width = decimal_width(port);
    put_digits(&mut out[len..len + width], port);
    len + width
}

/// `addr` as its `Display` writes it, without the `fmt` machinery for
/// IPv4 (a connection's report names its endpoints: four of these per
/// connection were a third of building a report).
pub(super) fn socket_addr_text(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => {
            let mut buf = [0u8; IPV4_SOCKET_MAX];
            let len = put_ipv4_socket(&mut buf, v4);
            std::str::from_utf8(&buf[..len])
                .expect("digits, dots and a colon")
                .to_owned()
        }
        SocketAddr::V6(_) => addr.to_string(),
    }
}

/// Number of decimal digits of `value`: log2 × 1233 / 4096 is log10 or
/// one less, which one comparison with the next power of ten settles
/// (cheaper than `ilog10`'s branches, on five numbers a row).
#[inline]
pub(super) fn decimal_width(value: u64) -> usize {
    const POWERS: [u64; 20] = {
        let mut powers = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            powers[i] = powers[i - 1] * 10;
            i += 1;
        }
        powers
    };
    let log2 = 63 - (value | 1).leading_zeros();
    let below = ((log2 * 1233) >> 12) as usize;
    below + 1 + usize::from(value >= POWERS[below + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_names_are_the_state_names() {
        use TcpState::*;
        for state in [
            Unknown,
            SynSent,
            SynReceived,
            Established,
            FinWait1,
            FinWait2,
            CloseWait,
            Closing,
            LastAck,
            TimeWait,
            Closed,
        ] {
            let padded = padded_name(state);
            assert_eq!(
                &padded.bytes[..usize::from(padded.len)],
                state.name().as_bytes()
            );
        }
    }

    /// Many addresses and times, repeated and evicting each other from
    /// the caches, format as their `Display` does.
    #[test]
    fn cached_fields_format_like_display() {
        let mut line = Line::new();
        let mut expected = String::new();
        let mut x: u64 = 12345;
        for i in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Few distinct values early on (hits), many later (evictions).
            let pick = if i < 5_000 { (x >> 60) % 7 } else { x >> 20 };
            let addr = SocketAddr::from(((pick as u32).to_be_bytes(), (pick >> 32) as u16));
            // The same pair both ways, and with another address.
            let other = SocketAddr::from((((x >> 8) as u32 % 3).to_be_bytes(), 80));
            let (src, dst) = if x & 1 == 0 {
                (addr, other)
            } else {
                (other, addr)
            };
            let ts = Timestamp {
                secs: (1_700_000_000 + (pick % 3)) as i64,
                nanos: (x >> 34) as u32 % 1_000_000_000,
            };
            assert!(line.addr_pair(&src, &dst));
            assert!(line.timestamp(ts));
            expected.push_str(&format!("{src},{dst},{ts},"));
            assert_eq!(std::str::from_utf8(line.as_bytes()).unwrap(), expected);
            line.len = 0;
            expected.clear();
        }
    }

    #[test]
    fn flag_letters_come_from_the_table() {
        for bits in 0..=255u8 {
            let mut line = Line::new();
            line.flags(TcpFlags(bits));
            let expected = format!("{},", TcpFlags(bits).letters().as_str());
            assert_eq!(line.as_bytes(), expected.as_bytes());
        }
    }

    /// Every width, with each power of ten and its neighbours, and values
    /// whose four-digit groups hold zeros.
    #[test]
    fn numbers_of_every_width_format_like_display() {
        let mut values = vec![0, u64::MAX, 1_000_000_007, 10_000_000_000_000_001];
        for power in 0..20 {
            let ten = 10u64.pow(power);
            values.extend([ten - 1, ten, ten + 1, ten / 7 * 9]);
        }
        let mut line = Line::new();
        for value in values {
            line.number(value);
            assert_eq!(line.as_bytes(), format!("{value},").as_bytes());
            line.clear();
        }
    }

    #[test]
    fn numbers_times_and_addresses_format_like_display() {
        let mut line = Line::new();
        for n in [0, 9, 10, 99, 100, 4_294_967_295, u64::MAX] {
            line.number(n);
        }
        let ts = Timestamp {
            secs: 1_700_000_000,
            nanos: 1_500,
        };
        assert!(line.timestamp(ts));
        assert!(line.addr(&"10.0.255.1:0".parse().unwrap()));
        assert!(line.addr(&"255.255.255.255:65535".parse().unwrap()));
        assert!(!line.addr(&"[::1]:80".parse().unwrap()));
        let v4 = "10.0.0.1:1".parse().unwrap();
        let v6 = "[::1]:80".parse().unwrap();
        assert!(!line.addr_pair(&v4, &v6) && !line.addr_pair(&v6, &v4));
        assert!(!line.timestamp(Timestamp { secs: -1, nanos: 0 }));
        let expected = format!(
            "0,9,10,99,100,4294967295,{},{ts},10.0.255.1:0,255.255.255.255:65535,",
            u64::MAX
        );
        assert_eq!(std::str::from_utf8(line.as_bytes()).unwrap(), expected);
        for addr in [
            "0.0.0.0:0",
            "10.0.255.1:9",
            "1.22.100.199:65",
            "9.10.99.100:1000",
            "255.255.255.255:65535",
            "[::1]:80",
            "[2001:db8::ffff:1]:443",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(socket_addr_text(&addr), addr.to_string());
        }
    }
}
