//! Writers: the CSV sidecar and the JSON document, as `docs/sidecar.md`
//! specifies them. Both stream rows as they come.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::analysis::{CaptureSummary, RowSink};
use crate::annotate::{Row, Summary};
use crate::capture::Frame;
use crate::endpoint::TcpState;
use crate::inference::CallSteps;
use crate::report::ConnectionReport;
use crate::segment::{TcpFlags, Timestamp};

/// The sidecar's header, exactly.
pub const CSV_HEADER: [&str; 16] = [
    "frame",
    "ts",
    "conn",
    "src",
    "dst",
    "flags",
    "seq",
    "ack",
    "len",
    "sender_state",
    "receiver_state",
    "events",
    "calls",
    "summary",
    "severity",
    "related",
];

/// Writes one CSV row per segment.
///
/// Rows are formatted straight into a byte buffer (numbers and IPv4
/// addresses with itoa, everything else through its `Display`) and handed
/// to `out` in blocks: this runs once per segment and dominates a run.
pub struct CsvSink<W: Write> {
    out: W,
    /// Formatted rows not yet handed to `out`.
    buf: Vec<u8>,
    /// The row being formatted (kept: it is larger than most rows).
    line: Box<Line>,
    /// The events, calls, sentence and severity fields of rows with
    /// events, by what they are made from: a capture has few distinct
    /// combinations, so each is formatted about once.
    tails: Vec<Option<(Tail, Vec<u8>)>>,
}

/// What a row's events, calls, sentence and severity fields are made of.
type Tail = (Option<CallSteps>, Summary);

/// Slots of [`CsvSink::tails`] (a power of two).
const TAIL_CACHE: usize = 256;

/// Rows are handed to the output in whole blocks of this size (the rest
/// waits for the next block): page-aligned writes of whole pages cost the
/// kernel (ext4 here) less per byte than writes that split pages (the
/// write stage of `tcpshut-bench stages` 0.12–0.20 s → 0.08–0.10 s).
const CSV_BLOCK: usize = 256 * 1024;

impl<W: Write> CsvSink<W> {
    pub fn new(out: W) -> Self {
        CsvSink {
            out,
            buf: Vec::with_capacity(CSV_BLOCK + 1024),
            line: Box::new(Line::new()),
            tails: vec![None; TAIL_CACHE],
        }
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_block()?;
        Ok(self.out)
    }

    fn flush_block(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// The events, calls, sentence and severity fields of a row with
    /// events, from [`CsvSink::tails`] or formatted and kept there.
    fn tail(&mut self, row: &Row) {
        let tail: Tail = (row.calls, row.summary);
        let slot = FxBuildHasher.hash_one(tail) as usize % TAIL_CACHE;
        if let Some((made_from, bytes)) = &self.tails[slot] {
            if *made_from == tail {
                self.buf.extend_from_slice(bytes);
                return;
            }
        }
        let start = self.buf.len();
        self.display(row.events);
        match &row.calls {
            Some(calls) => self.display(calls),
            None => self.text(""),
        }
        self.display(row.summary);
        self.text(row.severity.code());
        self.tails[slot] = Some((tail, self.buf[start..].to_vec()));
    }

    /// Moves the line's fields into the block.
    fn flush_line(&mut self) {
        self.buf.extend_from_slice(self.line.as_bytes());
        self.line.len = 0;
    }

    fn number(&mut self, value: u64) {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.buf.push(b',');
    }

    fn text(&mut self, value: &str) {
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(b',');
    }

    /// Formats `value` as one field, quoted per RFC 4180 when it contains
    /// a comma, a quote or a line break.
    fn display(&mut self, value: impl fmt::Display) {
        let start = self.buf.len();
        write!(Bytes(&mut self.buf), "{value}").expect("writing to a Vec cannot fail");
        if self.buf[start..]
            .iter()
            .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
        {
            let field = self.buf.split_off(start);
            self.buf.push(b'"');
            for &b in &field {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        }
        self.buf.push(b',');
    }

    /// Replaces the last field's comma with the end of the record.
    fn end_record(&mut self) -> io::Result<()> {
        if let Some(last) = self.buf.last_mut() {
            *last = b'\n';
        }
        if self.buf.len() >= CSV_BLOCK {
            self.flush_whole_blocks()?;
        }
        Ok(())
    }

    /// Hands whole blocks to the output and keeps the rest, so that every
    /// write covers whole pages of the file at page-aligned offsets.
    fn flush_whole_blocks(&mut self) -> io::Result<()> {
        let whole = self.buf.len() - self.buf.len() % CSV_BLOCK;
        self.out.write_all(&self.buf[..whole])?;
        self.buf.copy_within(whole.., 0);
        self.buf.truncate(self.buf.len() - whole);
        Ok(())
    }
}

/// A row's bounded fields, formatted in a fixed buffer: digits are written in
/// place and short texts are copied as fixed-size padded blocks, so that
/// no field costs a call to `memcpy` or the `fmt` machinery (the row's
/// CSV was a fifth of a run). Each field ends with its comma.
struct Line {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    /// The last whole seconds written, with their digits and the dot:
    /// consecutive rows mostly share them.
    secs: Cached,
    /// Recently written IPv4 `address:port`s, direct-mapped by a hash of
    /// the address: a row's two addresses are mostly those of the few
    /// hundred connections open at the time.
    addrs: Box<[Cached; ADDR_CACHE]>,
}

/// Slots of [`Line::addrs`] (a power of two).
const ADDR_CACHE: usize = 1024;

/// A formatted field (at most 24 bytes) and what it was formatted from.
#[derive(Clone, Copy)]
struct Cached {
    /// `u64::MAX`: empty (no address or time formats from it).
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

/// Room for the bounded fields of a row (frame, ts, conn, two IPv4
/// addresses, flags, seq, ack, len, two states: at most 200 bytes) plus
/// the slack a padded or cached copy writes past its text.
const LINE_CAPACITY: usize = 256;

/// A text of at most 16 bytes, padded to 16 so that it copies in one move.
struct Padded {
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
    fn new() -> Line {
        Line {
            bytes: [0; LINE_CAPACITY],
            len: 0,
            secs: Cached::EMPTY,
            addrs: Box::new([Cached::EMPTY; ADDR_CACHE]),
        }
    }

    /// Writes `cached`'s text if it was made from `key`; otherwise writes
    /// the field with `format` and keeps it in `cached`.
    #[inline]
    fn cached(&mut self, key: u64, slot: Slot, format: impl FnOnce(&mut Line)) {
        let at = self.len;
        let cached = match slot {
            Slot::Secs => &self.secs,
            Slot::Addr(i) => &self.addrs[i],
        };
        if cached.key == key {
            let (text, len) = (cached.text, usize::from(cached.len));
            self.bytes[at..at + 24].copy_from_slice(&text);
            self.len += len;
            return;
        }
        format(self);
        let len = self.len - at;
        let mut entry = Cached {
            key,
            text: [0; 24],
            len: len as u8,
        };
        entry.text[..len].copy_from_slice(&self.bytes[at..self.len]);
        match slot {
            Slot::Secs => self.secs = entry,
            Slot::Addr(i) => self.addrs[i] = entry,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline]
    fn comma(&mut self) {
        self.bytes[self.len] = b',';
        self.len += 1;
    }

    /// Decimal digits of `value`, right-aligned in `width` bytes with
    /// leading zeros, two at a time; without the comma.
    #[inline]
    fn digits(&mut self, mut value: u64, width: usize) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let out = &mut self.bytes[self.len..self.len + width];
        let mut at = width;
        // Zeros come out as "00" pairs, so a value shorter than `width`
        // gets its leading zeros without a separate fill.
        while at >= 2 {
            let pair = (value % 100) as usize * 2;
            value /= 100;
            at -= 2;
            out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if at == 1 {
            out[0] = b'0' + (value % 10) as u8;
        }
        self.len += width;
    }

    #[inline]
    fn number(&mut self, value: u64) {
        self.digits(value, decimal_width(value));
        self.comma();
    }

    /// Epoch seconds with exactly nine decimals; `false` (nothing written)
    /// for times before 1970, which `Timestamp`'s `Display` handles.
    #[inline]
    fn timestamp(&mut self, ts: Timestamp) -> bool {
        let Ok(secs) = u64::try_from(ts.secs) else {
            return false;
        };
        self.cached(secs, Slot::Secs, |line| {
            line.digits(secs, decimal_width(secs));
            line.bytes[line.len] = b'.';
            line.len += 1;
        });
        self.digits(u64::from(ts.nanos), 9);
        self.comma();
        true
    }

    /// `a.b.c.d:port`; `false` (nothing written) for IPv6.
    #[inline]
    fn addr(&mut self, addr: &SocketAddr) -> bool {
        let SocketAddr::V4(v4) = addr else {
            return false;
        };
        let key = u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port());
        // Fibonacci hashing: the top bits of the product mix every bit of the key.
        let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - ADDR_CACHE.ilog2())) as usize;
        self.cached(key, Slot::Addr(slot), |line| {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    line.bytes[line.len] = b'.';
                    line.len += 1;
                }
                line.digits(octet.into(), decimal_width(octet.into()));
            }
            line.bytes[line.len] = b':';
            line.len += 1;
            line.digits(v4.port().into(), decimal_width(v4.port().into()));
        });
        self.comma();
        true
    }

    #[inline]
    fn padded(&mut self, text: &Padded) {
        self.bytes[self.len..self.len + 16].copy_from_slice(&text.bytes);
        self.len += usize::from(text.len);
        self.comma();
    }

    /// The flag letters, from a table of all 256 combinations.
    #[inline]
    fn flags(&mut self, flags: TcpFlags) {
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
fn padded_name(state: TcpState) -> &'static Padded {
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

/// Which cache of [`Line`] a field goes through.
#[derive(Clone, Copy)]
enum Slot {
    Secs,
    Addr(usize),
}

/// Number of decimal digits of `value`.
#[inline]
fn decimal_width(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// `fmt::Write` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl<W: Write> RowSink for CsvSink<W> {
    /// Rows are all the CSV holds: one pass will do.
    fn needs_first_pass(&self) -> bool {
        false
    }

    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        for name in CSV_HEADER {
            self.text(name);
        }
        self.end_record()
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        // The fields every row has, bounded in length, through the line;
        // IPv6 addresses and negative times are rare enough for `fmt`.
        self.line.number(row.frame);
        if !self.line.timestamp(row.ts) {
            self.flush_line();
            self.display(row.ts);
        }
        self.line.number(row.conn.into());
        for addr in [&row.src, &row.dst] {
            if !self.line.addr(addr) {
                self.flush_line();
                self.display(addr);
            }
        }
        let line = &mut self.line;
        line.flags(row.flags);
        line.number(row.seq.into());
        line.number(row.ack.into());
        line.number(row.len.into());
        line.padded(padded_name(row.sender_state));
        line.padded(padded_name(row.receiver_state));
        self.flush_line();
        // Most rows have no events, hence no calls, sentence or severity.
        if row.events.is_empty() {
            self.buf.extend_from_slice(b",,,,");
        } else {
            self.tail(row);
        }
        match row.related {
            Some(frame) => self.number(frame),
            None => self.text(""),
        }
        self.end_record()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush_block()?;
        self.out.flush()
    }
}

/// A segment as the JSON document shows it: the CSV's fields, with
/// `events` as a list.
#[derive(serde::Serialize)]
struct JsonSegment<'a> {
    frame: u64,
    ts: String,
    conn: u32,
    src: String,
    dst: String,
    flags: &'a str,
    seq: u32,
    ack: u32,
    len: u32,
    sender_state: &'static str,
    receiver_state: &'static str,
    events: crate::event::EventSet,
    calls: String,
    summary: String,
    severity: &'static str,
    related: Option<u64>,
}

/// Rows kept in memory with the capture's summary, for tests and for
/// `tcpshut lab`'s terminal view of its small captures. Unlike the other
/// sinks its memory grows with the capture: not for captures of any size.
#[derive(Default)]
pub struct MemorySink {
    pub rows: Vec<Row>,
    /// As [`RowSink::begin`] gave it (after pass 1).
    pub capture: Option<CaptureSummary>,
}

impl RowSink for MemorySink {
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        self.capture = Some(capture.clone());
        Ok(())
    }
    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.rows.push(*row);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `{"capture": …, "connections": […], "segments": […]}`,
/// streaming the segments.
pub struct JsonSink<W: Write> {
    out: W,
    rows: u64,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink { out, rows: 0 }
    }
}

impl<W: Write> RowSink for JsonSink<W> {
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        connections: &[ConnectionReport],
    ) -> io::Result<()> {
        self.out.write_all(b"{\"capture\":")?;
        serde_json::to_writer(&mut self.out, capture)?;
        self.out.write_all(b",\n\"connections\":[")?;
        for (i, conn) in connections.iter().enumerate() {
            self.out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut self.out, conn)?;
        }
        self.out.write_all(b"],\n\"segments\":[")
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        let flags = row.flags.letters();
        let segment = JsonSegment {
            frame: row.frame,
            ts: row.ts.to_string(),
            conn: row.conn,
            src: row.src.to_string(),
            dst: row.dst.to_string(),
            flags: flags.as_str(),
            seq: row.seq,
            ack: row.ack,
            len: row.len,
            sender_state: row.sender_state.name(),
            receiver_state: row.receiver_state.name(),
            events: row.events,
            calls: row.calls.map(|c| c.to_string()).unwrap_or_default(),
            summary: row.summary.to_string(),
            severity: row.severity.code(),
            related: row.related,
        };
        self.out
            .write_all(if self.rows == 0 { b"\n" } else { b",\n" })?;
        self.rows += 1;
        serde_json::to_writer(&mut self.out, &segment)?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.write_all(b"]}\n")?;
        self.out.flush()
    }
}

/// Writes a pcapng copy of the capture with each annotated packet's
/// summary as its comment (`frame.comment`), so any Wireshark shows the
/// teardown without the plugin. Frames keep their order, bytes and
/// timestamps; each link type becomes one interface.
pub struct PcapngCommentSink<W: Write> {
    out: PcapNgWriter<W>,
    /// Link type of each interface written so far.
    interfaces: Vec<u32>,
    text: String,
}

impl<W: Write> PcapngCommentSink<W> {
    pub fn new(out: W) -> io::Result<Self> {
        Ok(PcapngCommentSink {
            out: PcapNgWriter::new(out).map_err(pcap_error)?,
            interfaces: Vec::new(),
            text: String::new(),
        })
    }

    /// The interface id for `link`, writing its description block first.
    fn interface(&mut self, link: u32) -> io::Result<u32> {
        if let Some(id) = self.interfaces.iter().position(|l| *l == link) {
            return Ok(id as u32);
        }
        self.out
            .write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::from(link),
                snaplen: 0,
                // Nanoseconds, which is what the writer encodes.
                options: vec![InterfaceDescriptionOption::IfTsResol(9)],
            })
            .map_err(pcap_error)?;
        self.interfaces.push(link);
        Ok(self.interfaces.len() as u32 - 1)
    }
}

fn pcap_error(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl<W: Write> RowSink for PcapngCommentSink<W> {
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        Ok(())
    }

    fn row(&mut self, _: &Row) -> io::Result<()> {
        Ok(())
    }

    fn frame(&mut self, frame: &Frame<'_>, row: Option<&Row>) -> io::Result<()> {
        let interface_id = self.interface(frame.link.0)?;
        self.text.clear();
        if let Some(row) = row {
            write!(self.text, "{}", row.summary).expect("writing to a String cannot fail");
        }
        let options = if self.text.is_empty() {
            Vec::new()
        } else {
            vec![EnhancedPacketOption::Comment(Cow::Borrowed(
                self.text.as_str(),
            ))]
        };
        // pcapng cannot express times before 1970; such frames keep 0.
        let nanos = u64::try_from(frame.ts.secs)
            .map_or(0, |s| s * 1_000_000_000 + u64::from(frame.ts.nanos));
        self.out
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id,
                timestamp: Duration::from_nanos(nanos),
                original_len: frame.orig_len,
                data: Cow::Borrowed(frame.data),
                options,
            })
            .map_err(pcap_error)?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.get_mut().flush()
    }
}

#[cfg(test)]
mod line_tests {
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
            let ts = Timestamp {
                secs: (1_700_000_000 + (pick % 3)) as i64,
                nanos: (x >> 34) as u32 % 1_000_000_000,
            };
            assert!(line.addr(&addr));
            assert!(line.timestamp(ts));
            expected.push_str(&format!("{addr},{ts},"));
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
        assert!(!line.timestamp(Timestamp { secs: -1, nanos: 0 }));
        let expected = format!(
            "0,9,10,99,100,4294967295,{},{ts},10.0.255.1:0,255.255.255.255:65535,",
            u64::MAX
        );
        assert_eq!(std::str::from_utf8(line.as_bytes()).unwrap(), expected);
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;

    /// Records the length of every write.
    #[derive(Default)]
    struct Writes(Vec<usize>, Vec<u8>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.len());
            self.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_write_but_the_last_is_whole_blocks() {
        let mut writes = Writes::default();
        let mut sink = CsvSink::new(&mut writes);
        let mut expected = Vec::new();
        for i in 0..200_000u64 {
            sink.text(&format!("row{i}"));
            sink.end_record().unwrap();
            expected.extend_from_slice(format!("row{i}\n").as_bytes());
        }
        sink.finish().unwrap();
        let (last, whole) = writes.0.split_last().unwrap();
        assert!(whole.len() > 1, "{:?}", writes.0);
        assert!(
            whole.iter().all(|len| len % CSV_BLOCK == 0),
            "{:?}",
            writes.0
        );
        assert!(*last < CSV_BLOCK);
        assert_eq!(writes.1, expected);
    }
}
