//! The CSV sidecar's fast path: the fields every row has, formatted
//! without `fmt` straight into the block of rows that is written out
//! (the row's CSV was a fifth of a run).
//!
//! Invariant: every field [`Block`] formats (all its writes but
//! [`Block::put`], which copies what `CsvSink` made) needs no CSV quoting
//! and is what the field's `Display` would write. Its fields are decimal numbers,
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

/// The sidecar's block being filled, rows formatted straight into it
/// through a [`Line`] (the bounded fields of a row) and [`Block::put`]
/// (the other fields, copied in). It was a line buffer copied into a
/// `Vec` once a row: a `memcpy` call and the `Vec`'s checks.
pub(super) struct Block {
    /// `bytes[..len]` are formatted; the rest is room, initialised once
    /// (so that fields are written without a `Vec`'s checks), at least
    /// [`LINE_CAPACITY`] of it at a [`Line`]'s start and after every
    /// [`Block::put`].
    bytes: Vec<u8>,
    len: usize,
    caches: Caches,
}

/// Fields formatted before, kept to be copied again.
struct Caches {
    /// The last whole seconds written, with their digits and the dot:
    /// consecutive rows mostly share them.
    secs: Cached,
    /// The last frame number written, with its comma: the next row's is
    /// mostly the next number, made from it by adding one to its last
    /// digit (unless that is a 9).
    frame: Cached,
    /// Recently written `conn,source,destination,` fields (IPv4),
    /// direct-mapped by connection and direction: a row's are those of
    /// one direction of the few hundred connections open at the time,
    /// and one look-up serves the three fields.
    pairs: Box<[CachedPair; PAIR_CACHE]>,
}

/// A row's bounded fields, formatted in place in the block's room (a
/// window of fixed size, so one bounds check a row and none a field, and
/// its length in a register: the block's own length, behind a pointer
/// the digits' stores might alias, was reloaded at every field): digits
/// are written in place and short texts are copied as fixed-size padded
/// blocks, so that no field costs a call to `memcpy` or the `fmt`
/// machinery. Each field ends with its comma; [`Line::done`] adds them
/// to the block.
pub(super) struct Line<'a> {
    bytes: &'a mut [u8; LINE_CAPACITY],
    len: usize,
    filled: &'a mut usize,
    caches: &'a mut Caches,
}

/// Slots of [`Caches::pairs`] (a power of two): two directions of the
/// last 1,024 connections (numbered in order of appearance, those open at
/// once on a busy link have nearby numbers), in 176 KB.
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

    /// The text just written for `key`, kept to be copied whole next time.
    fn of(key: u64, written: &[u8]) -> Cached {
        let mut text = [0; 24];
        text[..written.len()].copy_from_slice(written);
        Cached {
            key,
            text,
            len: written.len() as u8,
        }
    }
}

/// A formatted connection number and two IPv4 `address:port` fields,
/// with their commas (at most 55 bytes), and what they were formatted
/// from (the addresses as [`v4_key`]s).
#[derive(Clone, Copy)]
pub(super) struct CachedPair {
    /// `u64::MAX`: empty (no address has this key).
    src: u64,
    dst: u64,
    conn: u32,
    len: u8,
    text: [u8; PAIR_TEXT],
}

/// Room for `conn,address:port,address:port,`, copied whole.
const PAIR_TEXT: usize = 64;

impl CachedPair {
    const EMPTY: CachedPair = CachedPair {
        src: u64::MAX,
        dst: u64::MAX,
        conn: 0,
        len: 0,
        text: [0; PAIR_TEXT],
    };
}

/// An IPv4 address and port in one number (48 bits).
#[inline]
fn v4_key(v4: &SocketAddrV4) -> u64 {
    u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port())
}

/// Room for the bounded fields of a row (frame, ts, conn, two IPv4
/// addresses, flags, seq, ack, len, two states, and the four empty
/// fields and the related frame of a row without events: at most 200
/// bytes) plus the slack a padded or cached copy writes past its text.
pub(super) const LINE_CAPACITY: usize = 256;

/// A text of at most `N` bytes, padded to `N` so that it copies in one
/// or two moves.
pub(super) struct Padded<const N: usize = 16> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Padded<N> {
    const fn empty() -> Padded<N> {
        Padded {
            bytes: [0; N],
            len: 0,
        }
    }

    /// `texts` one after the other, each followed by a comma (longer
    /// than `N` fails to compile where it is const).
    const fn fields(texts: &[&str]) -> Padded<N> {
        let mut padded = Padded::empty();
        let mut len = 0;
        let mut t = 0;
        while t < texts.len() {
            let src = texts[t].as_bytes();
            let mut i = 0;
            while i < src.len() {
                padded.bytes[len] = src[i];
                len += 1;
                i += 1;
            }
            padded.bytes[len] = b',';
            len += 1;
            t += 1;
        }
        padded.len = len as u8;
        padded
    }
}

impl Padded {
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
}

impl Block {
    /// An empty block with room for `bytes` before it grows.
    pub(super) fn new(bytes: usize) -> Block {
        Block {
            bytes: vec![0; bytes.max(LINE_CAPACITY)],
            len: 0,
            caches: Caches {
                secs: Cached::EMPTY,
                frame: Cached::EMPTY,
                pairs: Box::new([CachedPair::EMPTY; PAIR_CACHE]),
            },
        }
    }

    /// A line of bounded fields at the end of the block.
    #[inline(always)]
    pub(super) fn line(&mut self) -> Line<'_> {
        if self.len + LINE_CAPACITY > self.bytes.len() {
            self.grow(0);
        }
        let at = self.len;
        Line {
            bytes: (&mut self.bytes[at..at + LINE_CAPACITY])
                .try_into()
                .expect("room for a line"),
            len: 0,
            filled: &mut self.len,
            caches: &mut self.caches,
        }
    }

    /// Room for `more` bytes and [`LINE_CAPACITY`] after them.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, more: usize) {
        self.bytes.resize(self.len + more + LINE_CAPACITY, 0);
    }

    /// Appends `bytes` (a field of any length, or formatted rows).
    #[inline]
    pub(super) fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() + LINE_CAPACITY > self.bytes.len() {
            self.grow(bytes.len());
        }
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Bytes formatted.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Forgets the bytes from `len` on.
    pub(super) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Forgets the first `len` bytes (written out), keeping the rest.
    pub(super) fn drop_front(&mut self, len: usize) {
        self.bytes.copy_within(len..self.len, 0);
        self.len -= len;
    }

    /// Replaces the last field's comma with the end of the record.
    #[inline]
    pub(super) fn close_record(&mut self) {
        if let Some(last) = self.len.checked_sub(1) {
            self.bytes[last] = b'\n';
        }
    }

    #[inline]
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Hands the block's bytes over in their allocation (the first `len`
    /// of the pair returned are formatted) and goes on, empty, in `room`
    /// (whose length is kept: the rest of a used allocation is still
    /// initialised room, so nothing is cleared). The caches stay.
    pub(super) fn swap(&mut self, room: Vec<u8>) -> (Vec<u8>, usize) {
        let bytes = std::mem::replace(&mut self.bytes, room);
        let len = std::mem::take(&mut self.len);
        if self.bytes.len() < LINE_CAPACITY {
            self.grow(0);
        }
        (bytes, len)
    }

    /// Empties the block.
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// Ends a field.
    pub(super) fn comma(&mut self) {
        self.put(b",");
    }
}

impl Line<'_> {
    /// The fields written so far.
    #[cfg(test)]
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Adds the line's fields to the block.
    #[inline(always)]
    pub(super) fn done(self) {
        *self.filled += self.len;
    }

    /// Writes the seconds' digits and dot from [`Caches::secs`] if they
    /// were made from `secs` (inlined: most rows); otherwise formats them
    /// and keeps them there (out of line).
    #[inline(always)]
    fn secs(&mut self, secs: u64) {
        if self.caches.secs.key == secs {
            let (at, text, len) = (
                self.len,
                self.caches.secs.text,
                usize::from(self.caches.secs.len),
            );
            self.bytes[at..at + 24].copy_from_slice(&text);
            self.len += len;
            return;
        }
        self.new_secs(secs);
    }

    #[cold]
    #[inline(never)]
    fn new_secs(&mut self, secs: u64) {
        let at = self.len;
        self.len += put_number(&mut self.bytes[self.len..], secs);
        self.bytes[self.len] = b'.';
        self.len += 1;
        self.caches.secs = Cached::of(secs, &self.bytes[at..self.len]);
    }

    #[inline]
    fn comma(&mut self) {
        self.bytes[self.len] = b',';
        self.len += 1;
    }

    /// The frame number from [`Caches::frame`], one more in its last
    /// digit, when it follows the last one written and that digit is not
    /// a 9 (nine rows in ten: ~12 instructions where formatting it took
    /// ~30); otherwise formatted and kept there (out of line).
    #[inline(always)]
    pub(super) fn frame(&mut self, frame: u64) {
        let cached = &mut self.caches.frame;
        let len = usize::from(cached.len);
        // `len` counts the comma; an empty entry has none.
        if frame == cached.key.wrapping_add(1) && len >= 2 && cached.text[len - 2] != b'9' {
            cached.key = frame;
            cached.text[len - 2] += 1;
            let at = self.len;
            self.bytes[at..at + 24].copy_from_slice(&cached.text);
            self.len += len;
            return;
        }
        self.new_frame(frame);
    }

    #[inline(never)]
    fn new_frame(&mut self, frame: u64) {
        let at = self.len;
        self.number(frame);
        self.caches.frame = Cached::of(frame, &self.bytes[at..self.len]);
    }

    /// Inlined in each field (one call per number cost a fifth of it),
    /// with one bounds check: the `NUMBER_ROOM` bytes `put_number` may
    /// write, the comma after the digits inside them.
    #[inline(always)]
    pub(super) fn number(&mut self, value: u64) {
        let out = &mut self.bytes[self.len..self.len + NUMBER_ROOM];
        let len = put_number(out, value);
        out[len] = b',';
        self.len += len + 1;
    }

    /// Epoch seconds with exactly nine decimals; `false` (nothing written)
    /// for times before 1970 and nanoseconds past a second (never from
    /// a capture), which `Timestamp`'s `Display` handles.
    #[inline(always)]
    pub(super) fn timestamp(&mut self, ts: Timestamp) -> bool {
        let Ok(secs) = u64::try_from(ts.secs) else {
            return false;
        };
        if ts.nanos >= 10 * EIGHT_DIGITS {
            return false;
        }
        self.secs(secs);
        // Nine digits: the first, then eight in one move.
        let at = self.len;
        self.bytes[at] = b'0' + (ts.nanos / EIGHT_DIGITS) as u8;
        put_eight(&mut self.bytes[at + 1..], ts.nanos % EIGHT_DIGITS);
        self.len += 9;
        self.comma();
        true
    }

    /// `conn,a.b.c.d:port,e.f.g.h:port,` from [`Caches::pairs`], or
    /// formatted and kept there; `false` (nothing written) unless both
    /// addresses are IPv4.
    #[inline(always)]
    pub(super) fn conn_and_addrs(&mut self, conn: u32, src: &SocketAddr, dst: &SocketAddr) -> bool {
        let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
            return false;
        };
        let (src_key, dst_key) = (v4_key(src), v4_key(dst));
        // The connection's number picks two slots, its direction (which
        // address is the larger) one of them.
        let slot = (conn as usize) << 1 | usize::from(src_key > dst_key);
        let slot = slot & (PAIR_CACHE - 1);
        let at = self.len;
        let cached = &self.caches.pairs[slot];
        if cached.src == src_key && cached.dst == dst_key && cached.conn == conn {
            let (text, len) = (cached.text, usize::from(cached.len));
            self.bytes[at..at + PAIR_TEXT].copy_from_slice(&text);
            self.len += len;
            return true;
        }
        self.number(conn.into());
        for v4 in [src, dst] {
            self.len += put_ipv4_socket(&mut self.bytes[self.len..], v4);
            self.comma();
        }
        let len = self.len - at;
        let entry = &mut self.caches.pairs[slot];
        *entry = CachedPair {
            src: src_key,
            dst: dst_key,
            conn,
            len: len as u8,
            text: [0; PAIR_TEXT],
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

    /// `N` empty fields: their commas.
    #[inline]
    pub(super) fn empty_fields<const N: usize>(&mut self) {
        self.bytes[self.len..self.len + N].copy_from_slice(&[b','; N]);
        self.len += N;
    }

    #[inline]
    pub(super) fn padded(&mut self, text: &Padded) {
        self.bytes[self.len..self.len + 16].copy_from_slice(&text.bytes);
        self.len += usize::from(text.len);
        self.comma();
    }

    /// The sender's and the receiver's states, from a table of all 121
    /// pairs: one look-up and one copy, not one of each a state.
    #[inline]
    pub(super) fn states(&mut self, sender: TcpState, receiver: TcpState) {
        static PAIRS: [[Padded<32>; 11]; 11] = {
            let mut all = [const { [const { Padded::empty() }; 11] }; 11];
            let mut s = 0;
            while s < 11 {
                let mut r = 0;
                while r < 11 {
                    all[s][r] = Padded::fields(&[TcpState::ALL[s].name(), TcpState::ALL[r].name()]);
                    r += 1;
                }
                s += 1;
            }
            all
        };
        let pair = &PAIRS[sender as usize][receiver as usize];
        self.bytes[self.len..self.len + 32].copy_from_slice(&pair.bytes);
        self.len += usize::from(pair.len);
    }

    /// The end of a row without events or related frame: its five empty
    /// fields and the line break, where the last comma would be.
    #[inline]
    pub(super) fn quiet_end(&mut self) {
        self.bytes[self.len..self.len + 8].copy_from_slice(b",,,,\n\0\0\0");
        self.len += 5;
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

/// 10^8: [`eight_digits`] formats numbers below it.
const EIGHT_DIGITS: u32 = 100_000_000;

/// The eight decimal digits of `value` (below 10^8, with leading zeros)
/// as byte values 0–9 in one `u64`, the most significant in its lowest
/// byte (first in memory once stored little-endian). Each step splits
/// every lane of the word in two at once (SWAR): 4+4 digits by one
/// 32-bit division, then 2+2 and 1+1 by multiplying with a reciprocal,
/// about twenty instructions for the eight where dividing by 100 and
/// looking up pairs took about sixty.
#[inline]
fn eight_digits(value: u32) -> u64 {
    debug_assert!(value < EIGHT_DIGITS);
    // Two 32-bit lanes of four digits, the high four in the low lane.
    let fours = u64::from(value / 10_000) | u64::from(value % 10_000) << 32;
    // x * 10,486 >> 20 is x / 100 for every x below 10,000, and no
    // product leaves its lane; the mask drops the next lane's bits.
    let hundreds = ((fours * 10_486) >> 20) & 0x0000_007F_0000_007F;
    // Four 16-bit lanes of two digits.
    let twos = hundreds | (fours - hundreds * 100) << 16;
    // x * 103 >> 10 is x / 10 for every x below 100.
    let tens = ((twos * 103) >> 10) & 0x000F_000F_000F_000F;
    // Eight bytes of one digit.
    tens | (twos - tens * 10) << 8
}

/// Turns each byte 0–9 of [`eight_digits`] into its ASCII digit.
const ASCII_ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);

/// The eight digits of `value` (below 10^8), leading zeros included,
/// at the start of `out` (at least 8 bytes).
#[inline]
fn put_eight(out: &mut [u8], value: u32) {
    out[..8].copy_from_slice(&(eight_digits(value) + ASCII_ZEROS).to_le_bytes());
}

/// The four decimal digits of `value` (below 10^4) as byte values 0–9
/// in the four low bytes of a `u64`, the most significant lowest: the
/// low lane of [`eight_digits`] alone, for the short numbers of most
/// fields (lengths, ports, connection numbers, relative sequence
/// numbers early in a connection).
#[inline(always)]
fn four_digits(value: u32) -> u64 {
    debug_assert!(value < 10_000);
    let value = u64::from(value);
    let hundreds = (value * 10_486) >> 20;
    let twos = hundreds | (value - hundreds * 100) << 16;
    let tens = ((twos * 103) >> 10) & 0x000F_000F;
    tens | (twos - tens * 10) << 8
}

/// The digits of `value` (below 10^8) without leading zeros at the start
/// of `out`, which takes 8 bytes (the slack is overwritten by what
/// follows); returns how many are digits. The leading zeros are the
/// digit word's low zero bytes, so no separate count of the digits.
#[inline(always)]
fn put_short(out: &mut [u8], value: u32) -> usize {
    let digits = if value < 10_000 {
        // Four leading zeros, then the four digits.
        four_digits(value) << 32
    } else {
        eight_digits(value)
    };
    // 0 has eight zero bytes and keeps its last: one digit.
    let leading = (digits.trailing_zeros() / 8).min(7);
    let word = (digits + ASCII_ZEROS) >> (leading * 8);
    out[..8].copy_from_slice(&word.to_le_bytes());
    8 - leading as usize
}

/// Bytes [`put_number`] may write: twenty digits and the slack of the
/// last eight, and a comma's room after its longest number.
const NUMBER_ROOM: usize = 24;

/// The decimal digits of `value` (as its `Display` writes them) at the
/// start of `out`, which takes up to 24 bytes (slack overwritten by what
/// follows); returns their count. Below 10^8 (frames, connections,
/// lengths, ports, most sequence numbers) one [`put_short`]; above, eight
/// digits at a time.
#[inline(always)]
fn put_number(out: &mut [u8], value: u64) -> usize {
    let eight = u64::from(EIGHT_DIGITS);
    if value < eight {
        return put_short(out, value as u32);
    }
    let (high, low) = (value / eight, (value % eight) as u32);
    let len = if high < eight {
        put_short(out, high as u32)
    } else {
        let len = put_short(out, (high / eight) as u32);
        put_eight(&mut out[len..], (high % eight) as u32);
        len + 8
    };
    put_eight(&mut out[len..], low);
    len + 8
}

/// Bytes [`put_ipv4_socket`] may write: the longest `a.b.c.d:port` (21)
/// with [`put_short`]'s slack after the colon.
const IPV4_SOCKET_MAX: usize = 24;

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
    len + put_short(&mut out[len..], u32::from(v4.port()))
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

/// `addr` as its `Display` writes it, added to `out` (the connections
/// sidecar's line: the IPv4 one without the `fmt` machinery, or a
/// `String` a connection).
pub(super) fn push_socket_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            let mut buf = [0u8; IPV4_SOCKET_MAX];
            let len = put_ipv4_socket(&mut buf, v4);
            out.extend_from_slice(&buf[..len]);
        }
        SocketAddr::V6(_) => {
            use std::io::Write as _;
            write!(out, "{addr}").expect("a Vec takes any bytes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_pairs_are_the_state_names() {
        for sender in TcpState::ALL {
            for receiver in TcpState::ALL {
                let mut block = Block::new(0);
                let mut line = block.line();
                line.states(sender, receiver);
                let expected = format!("{},{},", sender.name(), receiver.name());
                assert_eq!(line.as_bytes(), expected.as_bytes());
            }
        }
    }

    /// Frames in order, with every carry, after gaps and going back,
    /// format as their `Display` does.
    #[test]
    fn frames_follow_on_like_display() {
        let mut block = Block::new(0);
        let mut frames: Vec<u64> = (1..2_000).collect();
        frames.extend([999, 1_000, 99_999_999, 100_000_000, 100_000_001, 5, 6, 7]);
        frames.extend(u64::MAX - 3..=u64::MAX);
        frames.extend(1_234_560..1_234_620);
        for frame in frames {
            let mut line = block.line();
            line.frame(frame);
            assert_eq!(line.as_bytes(), format!("{frame},").as_bytes());
        }
    }

    /// Many addresses and times, repeated and evicting each other from
    /// the caches, format as their `Display` does.
    #[test]
    fn cached_fields_format_like_display() {
        let mut block = Block::new(0);
        let mut expected = String::new();
        let mut x: u64 = 12345;
        for i in 0..20_000u64 {
            // A new line each time, the block's caches kept.
            let mut line = block.line();
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
            // Mostly the connection the addresses had, at times another.
            let conn = if x & 6 == 0 {
                pick as u32 ^ 1
            } else {
                pick as u32
            };
            assert!(line.conn_and_addrs(conn, &src, &dst));
            assert!(line.timestamp(ts));
            expected.push_str(&format!("{conn},{src},{dst},{ts},"));
            assert_eq!(std::str::from_utf8(line.as_bytes()).unwrap(), expected);
            expected.clear();
        }
    }

    #[test]
    fn flag_letters_come_from_the_table() {
        for bits in 0..=255u8 {
            let mut block = Block::new(0);
            let mut line = block.line();
            line.flags(TcpFlags(bits));
            let expected = format!("{},", TcpFlags(bits).letters().as_str());
            assert_eq!(line.as_bytes(), expected.as_bytes());
        }
    }

    /// The lanes of [`eight_digits`] split independently, so every four
    /// digits in the high lane and every four in the low one (each
    /// beside another value) cover every lane's every value.
    #[test]
    fn eight_digits_are_every_value_of_each_lane() {
        for four in 0..10_000u32 {
            for value in [four, four * 10_000 + (9_999 - four), four * 10_000] {
                let mut out = [0u8; 8];
                put_eight(&mut out, value);
                assert_eq!(out, *format!("{value:08}").as_bytes(), "{value}");
                let mut out = [0u8; 8];
                let len = put_short(&mut out, value);
                assert_eq!(&out[..len], value.to_string().as_bytes(), "{value}");
            }
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
        let mut block = Block::new(0);
        for value in values {
            let mut line = block.line();
            line.number(value);
            assert_eq!(line.as_bytes(), format!("{value},").as_bytes());
        }
    }

    #[test]
    fn numbers_times_and_addresses_format_like_display() {
        let mut block = Block::new(0);
        let mut line = block.line();
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
        assert!(!line.conn_and_addrs(1, &v4, &v6) && !line.conn_and_addrs(1, &v6, &v4));
        assert!(!line.timestamp(Timestamp { secs: -1, nanos: 0 }));
        let past_a_second = Timestamp {
            secs: 1,
            nanos: 1_000_000_000,
        };
        assert!(!line.timestamp(past_a_second));
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
