//! Capture reading: pcap (µs/ns, both byte orders) and pcapng (several
//! sections and interfaces) into a stream of borrowed [`Frame`]s.
//!
//! The pcap file header is parsed by `pcap-file`. Records are framed here
//! (pcap's four words read directly, pcapng blocks with small nom
//! parsers) because pcap-file 2 does not fit the hot path: its pcap
//! records reject `orig_len > snaplen` (exactly what a snaplen-truncated
//! frame looks like), its Enhanced Packet Blocks ignore
//! `if_tsresol` (timestamps are taken as nanoseconds) and allocate a `Vec`
//! for options on every packet, and its errors carry no offsets.
//!
//! A regular file is memory-mapped and frames borrow from the mapping (see
//! [`ByteStream::open`] for the one risk that brings); other sources are
//! read into one reusable buffer that grows only up to the largest record
//! (bounded by [`MAX_CAPLEN`] / [`MAX_BLOCK_LEN`]). Either way, resident
//! memory does not grow with file size.

mod pcapng;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::{ControlFlow, Range};
use std::path::Path;

#[cfg(unix)]
use memmap2::UncheckedAdvice;
use memmap2::{Advice, Mmap};
use nom::number::Endianness;
use pcap_file::pcap::PcapHeader;
use pcap_file::TsResolution;

use crate::wire::compressed::{self, Compression, Consumed, Threaded};
use crate::wire::segment::Timestamp;
use crate::wire::series::Chain;
use pcapng::PcapNgState;

/// A link-layer type number (LINKTYPE_* / DLT_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

/// One captured record, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// 1-based record number (Wireshark's frame.number).
    pub number: u64,
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Length on the wire before snaplen truncation.
    pub orig_len: u32,
}

/// Why [`CaptureReader::read_frames`] stopped.
#[derive(Debug)]
pub enum FramesRun {
    /// It handed over as many frames as asked; more may follow.
    Full,
    /// The frames' callee asked to stop.
    Stopped,
    /// The capture ended cleanly.
    Ended,
    /// The capture broke (every frame before the faulty record was
    /// handed over): what [`CaptureReader::next_frame`] returns then.
    Broke(CaptureError),
}

/// A record of the file as it is there, for a copy that keeps everything
/// ([`CaptureReader::next_record`]).
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    /// A pcapng block that holds no packet: section header, interface
    /// description, name resolution, interface statistics, decryption
    /// secrets, custom blocks, anything else.
    Block(RawBlock<'a>),
    /// A packet, with its whole block when the file is pcapng.
    Packet(Frame<'a>, Option<RawBlock<'a>>),
}

/// One pcapng block, byte for byte.
#[derive(Clone, Copy, Debug)]
pub struct RawBlock<'a> {
    pub block_type: u32,
    /// The byte order of its section.
    pub big_endian: bool,
    /// The whole block: type, length, body, length.
    pub bytes: &'a [u8],
    /// Where the options of an enhanced or obsolete packet block start,
    /// from the start of `bytes` (the data padded to 32 bits); `None` for
    /// other blocks and for simple packet blocks, which have no options.
    pub options_at: Option<usize>,
}

/// Which container format a capture uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap {
        nanosecond: bool,
        big_endian: bool,
    },
    PcapNg,
    /// A compressed stream that was cut short or corrupt before the
    /// capture's file header came out of it.
    Unknown,
}

/// Largest captured length accepted for one packet (Wireshark's
/// WTAP_MAX_PACKET_SIZE_STANDARD); anything above is taken as corruption.
pub const MAX_CAPLEN: u32 = 262_144;
/// Largest pcapng block accepted (Wireshark's limit as well).
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// Why a capture could not be read (further).
///
/// `frame` is always the number the offending packet record has or would
/// have had; `offset` is the byte offset of the record or block start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a pcap or pcapng file (first bytes {})", hex_bytes(magic))]
    NotACapture { magic: Vec<u8> },
    #[error("a {compression}-compressed file that holds no pcap or pcapng (first bytes after decompression {})", hex_bytes(magic))]
    NotACaptureInside {
        compression: &'static str,
        magic: Vec<u8>,
    },
    #[error("a {compression}-compressed file: tcpshut reads gzip-, zstd- and lz4-compressed captures; decompress it first")]
    UnreadCompression { compression: &'static str },
    #[error("empty file: no capture header")]
    Empty,
    #[error("file header truncated: {have} of {need} bytes")]
    TruncatedHeader { have: usize, need: usize },
    #[error("record for frame {frame} at byte {offset} truncated: {have} of {need} bytes")]
    TruncatedRecord {
        frame: u64,
        offset: u64,
        have: u64,
        need: u64,
    },
    #[error("frame {frame} at byte {offset}: captured length {caplen} exceeds {limit}")]
    AbsurdCaplen {
        frame: u64,
        offset: u64,
        caplen: u32,
        limit: u32,
    },
    #[error("pcapng block type {block_type:#010x} at byte {offset}: {reason} (length {len})")]
    CorruptBlock {
        offset: u64,
        block_type: u32,
        len: u32,
        reason: &'static str,
    },
    #[error("frame {frame} at byte {offset}: interface {interface_id} undefined ({defined} interfaces in section)")]
    UnknownInterface {
        frame: u64,
        offset: u64,
        interface_id: u32,
        defined: usize,
    },
    #[error("interface block at byte {offset}: unsupported if_tsresol {if_tsresol:#04x}")]
    BadTsResolution { offset: u64, if_tsresol: u8 },
}

/// Where a located packet sits in the buffer, plus its metadata; the
/// borrow of the buffer is taken only after locating, so loops over
/// non-packet blocks don't fight the borrow checker.
struct Located {
    data: Range<usize>,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
}

enum Container {
    Pcap {
        endianness: Endianness,
        nanosecond: bool,
        link: LinkType,
    },
    PcapNg(PcapNgState),
}

/// Streams frames from a pcap or pcapng file.
///
/// After an error the reader is finished: further [`next_frame`] calls
/// return `Ok(None)`. Every frame before the faulty record has been
/// delivered by then.
///
/// [`next_frame`]: CaptureReader::next_frame
pub struct CaptureReader {
    stream: ByteStream,
    container: Container,
    format: CaptureFormat,
    /// The file header of a pcap file.
    pcap_header: Option<PcapHeader>,
    name: String,
    frames_read: u64,
    finished: bool,
    /// Why a compressed stream gave no capture header: the first read
    /// ends on it ([`CaptureFormat::Unknown`]).
    cut_before_header: Option<CaptureError>,
    /// Of a compressed capture: how much of the file the decompressor has
    /// consumed ([`CaptureReader::bytes_read`]).
    consumed: Option<Consumed>,
    /// Of a rotated series (`wire::series`): the files after this one,
    /// read on from here, their frames numbered on.
    pub(crate) chain: Option<Box<Chain>>,
}

impl CaptureReader {
    /// Opens a capture and reads its file header. A compressed capture
    /// (gzip, zstd, lz4: [`Compression`]) is decompressed on a second
    /// thread as it is read.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let mut file = File::open(path)?;
        let mut head = [0u8; SNIFF_LEN];
        let have = read_up_to(&mut file, &mut head)?;
        let name = path.display().to_string();
        if let Some(kind) = Compression::sniff(&head[..have]) {
            file.seek(SeekFrom::Start(0))?;
            return Self::decompressing(kind, Box::new(file), name);
        }
        let stream = ByteStream::open(file)?;
        Self::from_stream(stream, name, None)
    }

    /// Reads a capture from any byte source (in-memory data, pipes, fuzzing),
    /// compressed or not; `name` is only kept for the caller's messages.
    pub fn from_reader(
        mut reader: Box<dyn Read + Send>,
        name: impl Into<String>,
    ) -> Result<Self, CaptureError> {
        let mut head = [0u8; SNIFF_LEN];
        let have = read_up_to(&mut reader, &mut head)?;
        // What was peeked at goes back in front.
        let whole = Box::new(io::Cursor::new(head[..have].to_vec()).chain(reader));
        match Compression::sniff(&head[..have]) {
            Some(kind) => Self::decompressing(kind, whole, name.into()),
            None => Self::from_stream(ByteStream::from_reader(whole), name, None),
        }
    }

    fn decompressing(
        kind: Compression,
        compressed: Box<dyn Read + Send>,
        name: String,
    ) -> Result<Self, CaptureError> {
        if !kind.supported() {
            return Err(CaptureError::UnreadCompression {
                compression: kind.name(),
            });
        }
        let (chunks, consumed) = kind.threaded(compressed)?;
        let mut reader = Self::from_stream(ByteStream::from_chunks(chunks), name, Some(kind))?;
        reader.consumed = Some(consumed);
        Ok(reader)
    }

    fn from_stream(
        mut stream: ByteStream,
        name: impl Into<String>,
        compression: Option<Compression>,
    ) -> Result<Self, CaptureError> {
        let have = match stream.fill(PCAP_HEADER_LEN) {
            Ok(have) => have,
            // A compressed stream that breaks before the capture's header
            // is out (lz4 decompresses whole blocks, 4 MB as the lz4 tool
            // writes them) is a capture cut short with no whole record, as
            // when it breaks later: the read ends there (exit code 3).
            Err(cut) if compression.is_some() => {
                return Ok(Self {
                    stream,
                    container: Container::Pcap {
                        endianness: Endianness::Little,
                        nanosecond: false,
                        link: LinkType(0),
                    },
                    format: CaptureFormat::Unknown,
                    pcap_header: None,
                    name: name.into(),
                    frames_read: 0,
                    finished: false,
                    cut_before_header: Some(cut.into()),
                    consumed: None,
                    chain: None,
                })
            }
            Err(e) => return Err(e.into()),
        };
        if have == 0 {
            return Err(CaptureError::Empty);
        }
        let not_a_capture = |head: &[u8]| {
            let magic = head[..head.len().min(16)].to_vec();
            match compression {
                None => CaptureError::NotACapture { magic },
                Some(kind) => CaptureError::NotACaptureInside {
                    compression: kind.name(),
                    magic,
                },
            }
        };
        let mut pcap_header = None;
        let head = stream.peek(have);
        let (container, format) = if head.len() >= 4 && pcapng::is_section_header(head) {
            // The block loop reads the section header itself; a file
            // without a whole one has no capture at all, as for pcap.
            pcapng::require_section_header(&mut stream)?;
            (
                Container::PcapNg(PcapNgState::default()),
                CaptureFormat::PcapNg,
            )
        } else if head.len() >= 4 && is_pcap_magic(head) {
            if have < PCAP_HEADER_LEN {
                return Err(CaptureError::TruncatedHeader {
                    have,
                    need: PCAP_HEADER_LEN,
                });
            }
            let header = PcapHeader::from_slice(head)
                .map_err(|_| not_a_capture(head))?
                .1;
            stream.consume(PCAP_HEADER_LEN);
            pcap_header = Some(header);
            let big_endian = header.endianness == pcap_file::Endianness::Big;
            let nanosecond = header.ts_resolution == TsResolution::NanoSecond;
            let container = Container::Pcap {
                endianness: if big_endian {
                    Endianness::Big
                } else {
                    Endianness::Little
                },
                nanosecond,
                // libpcap's LT_LINKTYPE(): the upper bits carry FCS flags.
                link: LinkType(u32::from(header.datalink) & 0x03FF_FFFF),
            };
            (
                container,
                CaptureFormat::Pcap {
                    nanosecond,
                    big_endian,
                },
            )
        } else {
            return Err(not_a_capture(head));
        };
        Ok(Self {
            stream,
            container,
            format,
            pcap_header,
            name: name.into(),
            frames_read: 0,
            finished: false,
            cut_before_header: None,
            consumed: None,
            chain: None,
        })
    }

    /// The error a stream cut before the capture's header ends on.
    #[inline]
    fn cut_short(&mut self) -> Result<(), CaptureError> {
        if self.cut_before_header.is_none() {
            return Ok(());
        }
        self.finished = true;
        self.cut_before_header.take().map_or(Ok(()), Err)
    }

    /// The next frame, `Ok(None)` at a clean end of file. Of a series, the
    /// files follow one another and their frames are numbered on; a file
    /// that breaks ends there, logged, and the next one follows.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let located = match self.next_located() {
            Ok(Some(located)) => Some(located),
            ended if self.chain.is_none() => ended?,
            ended => self.next_file(ended.err())?,
        };
        Ok(located.map(|(number, located)| {
            let number = match &mut self.chain {
                None => number,
                Some(chain) => {
                    chain.last_ts = Some(located.ts);
                    chain.base + number
                }
            };
            self.frame(number, located)
        }))
    }

    /// Hands `each` the next frames, as [`CaptureReader::next_frame`]
    /// would return them, until it has had `max`, it breaks, or the
    /// capture ends; returns how many it had, and why it stopped.
    ///
    /// The frame loop of every schedule reads this way: the records of a
    /// pcap file that lie whole in the window (all of a mapped file's)
    /// are framed in one loop, each frame built where `each` borrows it,
    /// instead of one call a frame, each through a `Result<Option<_>>`;
    /// whatever else comes (pcapng, a series, a record to read in or
    /// cut short, an error) takes one `next_frame` and the loop goes on.
    pub fn read_frames(
        &mut self,
        max: u64,
        mut each: impl FnMut(&Frame<'_>) -> ControlFlow<()>,
    ) -> (u64, FramesRun) {
        let mut given = 0;
        loop {
            let (whole, stopped) = self.whole_pcap_records(max - given, &mut each);
            given += whole;
            if stopped {
                return (given, FramesRun::Stopped);
            }
            if given == max {
                return (given, FramesRun::Full);
            }
            match self.next_frame() {
                Ok(Some(frame)) => {
                    given += 1;
                    if each(&frame).is_break() {
                        return (given, FramesRun::Stopped);
                    }
                }
                Ok(None) => return (given, FramesRun::Ended),
                Err(e) => return (given, FramesRun::Broke(e)),
            }
        }
    }

    /// The records of a single pcap file that lie whole in the window,
    /// up to `max` of them, handed to `each`: how many, and whether
    /// `each` broke. Stops (for `next_frame` to take on) at a record that
    /// is not whole in the window or whose length is absurd, so that the
    /// frames and errors are `next_frame`'s.
    #[inline(always)]
    fn whole_pcap_records(
        &mut self,
        max: u64,
        each: &mut impl FnMut(&Frame<'_>) -> ControlFlow<()>,
    ) -> (u64, bool) {
        let Container::Pcap {
            endianness,
            nanosecond,
            link,
        } = self.container
        else {
            return (0, false);
        };
        if self.chain.is_some() || self.finished || self.cut_before_header.is_some() {
            return (0, false);
        }
        let mut given = 0;
        while given < max {
            let stream = &mut self.stream;
            if stream.start >= stream.upkeep_at {
                stream.upkeep();
            }
            let window = &stream.bytes()[stream.start..stream.end];
            let Some(header) = window.first_chunk() else {
                break;
            };
            let [secs, frac, caplen, orig_len] = pcap_record_header(header, endianness);
            let record_len = PCAP_RECORD_HEADER_LEN + caplen as usize;
            if caplen > MAX_CAPLEN || window.len() < record_len {
                break;
            }
            let data = stream.consume(record_len);
            self.frames_read += 1;
            given += 1;
            let frame = Frame {
                number: self.frames_read,
                ts: pcap_timestamp(secs, frac, nanosecond),
                link,
                data: self
                    .stream
                    .slice(data.start + PCAP_RECORD_HEADER_LEN..data.end),
                orig_len,
            };
            if each(&frame).is_break() {
                return (given, true);
            }
        }
        (given, false)
    }

    /// The next packet of this file, with its number in the file.
    /// Inlined, as are the record's framing and the stream's `fill`: the
    /// frame is then built where it is returned, not moved through three
    /// `Result<Option<_>>`s.
    #[inline(always)]
    fn next_located(&mut self) -> Result<Option<(u64, Located)>, CaptureError> {
        self.cut_short()?;
        if self.finished {
            return Ok(None);
        }
        let number = self.frames_read + 1;
        let located = match &mut self.container {
            Container::Pcap {
                endianness,
                nanosecond,
                link,
            } => next_pcap_record(&mut self.stream, number, *endianness, *nanosecond, *link),
            Container::PcapNg(state) => state.next_packet(&mut self.stream, number),
        };
        Ok(self.ended_on(located)?.map(|located| {
            let number = self.numbered(number);
            self.frames_read = number;
            (number, located)
        }))
    }

    /// A file of a series ended (`problem`: it broke): logs it, and reads
    /// on from the next file that opens; `Ok(None)` after the last.
    #[cold]
    fn next_file(
        &mut self,
        problem: Option<CaptureError>,
    ) -> Result<Option<(u64, Located)>, CaptureError> {
        let mut chain = self.chain.take().expect("a series has a chain");
        chain.ended(self.frames_read, problem.map(|e| e.to_string()));
        loop {
            if !chain.has_next() {
                self.chain = Some(chain);
                return Ok(None);
            }
            // A file that does not open is logged, and gives no frame.
            let Ok(next) = chain.open_next() else {
                continue;
            };
            *self = next;
            self.chain = Some(chain);
            let problem = match self.next_located() {
                Ok(Some(located)) => return Ok(Some(located)),
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            };
            chain = self.chain.take().expect("a series has a chain");
            chain.ended(self.frames_read, problem);
        }
    }

    /// The next record of the file as it is there (every pcapng block,
    /// every pcap packet), `Ok(None)` at a clean end of file: for a copy
    /// that keeps what the frames do not show. Reading with both
    /// this and [`CaptureReader::next_frame`] skips what the other took.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        self.cut_short()?;
        if self.finished {
            return Ok(None);
        }
        let number = self.frames_read + 1;
        let read = match &mut self.container {
            Container::Pcap {
                endianness,
                nanosecond,
                link,
            } => next_pcap_record(&mut self.stream, number, *endianness, *nanosecond, *link)
                .map(|packet| packet.map(|packet| (None, Some(packet)))),
            Container::PcapNg(state) => state.next_block(&mut self.stream, number).map(|block| {
                block.map(|block| {
                    let raw = (
                        block.block_type,
                        block.endianness == Endianness::Big,
                        block.bytes,
                        block.options_at,
                    );
                    (Some(raw), block.packet)
                })
            }),
        };
        let Some((raw, packet)) = self.ended_on(read)? else {
            return Ok(None);
        };
        let number = if packet.is_some() {
            let number = self.numbered(number);
            self.frames_read = number;
            number
        } else {
            number
        };
        let raw = raw.map(|(block_type, big_endian, bytes, options_at)| RawBlock {
            block_type,
            big_endian,
            bytes: self.stream.slice(bytes),
            options_at,
        });
        Ok(Some(match (packet, raw) {
            (Some(located), raw) => Record::Packet(self.frame(number, located), raw),
            (None, Some(raw)) => Record::Block(raw),
            (None, None) => unreachable!("a pcap record always holds a packet"),
        }))
    }

    /// Finishes the reader at the end of the file or at an error.
    fn ended_on<T>(
        &mut self,
        read: Result<Option<T>, CaptureError>,
    ) -> Result<Option<T>, CaptureError> {
        if !matches!(read, Ok(Some(_))) {
            self.finished = true;
        }
        read
    }

    /// The number of the packet that would be `number`: blocks Wireshark
    /// shows as frames of their own, read before it, come first.
    fn numbered(&mut self, number: u64) -> u64 {
        match &mut self.container {
            Container::PcapNg(state) => number + state.take_unnumbered(),
            Container::Pcap { .. } => number,
        }
    }

    /// The frame numbered `number` at `located`.
    fn frame(&self, number: u64, located: Located) -> Frame<'_> {
        Frame {
            number,
            ts: located.ts,
            link: located.link,
            data: self.stream.slice(located.data),
            orig_len: located.orig_len,
        }
    }

    /// A pcap file's header (snaplen, link type with its FCS bits, time
    /// resolution); `None` for pcapng.
    pub fn pcap_header(&self) -> Option<&PcapHeader> {
        self.pcap_header.as_ref()
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The name given at opening (the path for [`CaptureReader::open`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of the last frame delivered: packet records so far, plus
    /// the pcapng blocks before them that Wireshark numbers as frames.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// How far into the input reading has got, in bytes of the input
    /// (for progress): of a compressed capture, the compressed bytes the
    /// decompressor has taken (a little ahead of the frames read).
    pub fn bytes_read(&self) -> u64 {
        match &self.consumed {
            Some(consumed) => consumed.bytes(),
            None => self.stream.offset(),
        }
    }
}

const PCAP_HEADER_LEN: usize = 24;
/// Bytes enough to recognise every compression magic.
const SNIFF_LEN: usize = 6;

/// Reads until `buf` is full or the input ends; how much it got.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    match compressed::fill(reader, buf) {
        (have, None) => Ok(have),
        (_, Some(e)) => Err(e),
    }
}

/// Bytes as `0x1f 0x8b …`, for messages.
fn hex_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:#04x}")).collect();
    hex.join(" ")
}

/// Whether the capture at `path` starts like a pcap or pcapng file, once
/// decompressed if it is compressed: how a directory walk recognises
/// captures whatever their names. `Err` when it cannot be read.
pub fn file_looks_like_capture(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut head = [0u8; SNIFF_LEN];
    let have = read_up_to(&mut file, &mut head)?;
    let head = &head[..have];
    match Compression::sniff(head) {
        Some(kind) if kind.supported() => {
            file.seek(SeekFrom::Start(0))?;
            let mut plain = kind.decoder(Box::new(file))?;
            let mut inner = [0u8; 4];
            // A stream too short or too broken to say: not recognised.
            let have = read_up_to(&mut plain, &mut inner).unwrap_or(0);
            Ok(starts_like_capture(&inner[..have]))
        }
        // Not read, so what it holds cannot be told (its name may say).
        Some(_) => Ok(false),
        None => Ok(starts_like_capture(head)),
    }
}
const PCAP_RECORD_HEADER_LEN: usize = 16;
const NANOS_PER_SEC: u32 = 1_000_000_000;

/// Whether `head` (a file's first bytes, at least 4) starts like a pcap
/// or pcapng file.
pub fn starts_like_capture(head: &[u8]) -> bool {
    head.len() >= 4 && (is_pcap_magic(head) || pcapng::is_section_header(head))
}

fn is_pcap_magic(head: &[u8]) -> bool {
    matches!(
        head[..4],
        [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1]
    )
}

/// ts_sec, ts_frac, incl_len, orig_len, in the file's byte order: four
/// words at fixed places, read directly (a nom parser of four words was
/// a tenth of reading a frame), the byte order asked once for the four.
fn pcap_record_header(header: &[u8; PCAP_RECORD_HEADER_LEN], endian: Endianness) -> [u32; 4] {
    let word = |at: usize| {
        u32::from_ne_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let words = [word(0), word(4), word(8), word(12)];
    let swap = match endian {
        Endianness::Big => cfg!(target_endian = "little"),
        Endianness::Little => cfg!(target_endian = "big"),
        Endianness::Native => false,
    };
    if swap {
        let [a, b, c, d] = words;
        [
            a.swap_bytes(),
            b.swap_bytes(),
            c.swap_bytes(),
            d.swap_bytes(),
        ]
    } else {
        words
    }
}

/// A pcap record's time from its seconds and fraction (microseconds, or
/// nanoseconds in a nanosecond file).
#[inline(always)]
fn pcap_timestamp(secs: u32, frac: u32, nanosecond: bool) -> Timestamp {
    let nanos = if nanosecond {
        u64::from(frac)
    } else {
        u64::from(frac) * 1000
    };
    match u32::try_from(nanos) {
        // Below a second, as every writer makes it: no division.
        Ok(nanos) if nanos < NANOS_PER_SEC => Timestamp {
            secs: i64::from(secs),
            nanos,
        },
        _ => Timestamp {
            secs: i64::from(secs) + (nanos / u64::from(NANOS_PER_SEC)) as i64,
            nanos: (nanos % u64::from(NANOS_PER_SEC)) as u32,
        },
    }
}

#[inline(always)]
fn next_pcap_record(
    stream: &mut ByteStream,
    frame: u64,
    endianness: Endianness,
    nanosecond: bool,
    link: LinkType,
) -> Result<Option<Located>, CaptureError> {
    let offset = stream.offset();
    let have = stream.fill(PCAP_RECORD_HEADER_LEN)?;
    if have == 0 {
        return Ok(None);
    }
    stream.require(PCAP_RECORD_HEADER_LEN, frame)?;
    let header = stream.peek(PCAP_RECORD_HEADER_LEN).first_chunk();
    let [secs, frac, caplen, orig_len] =
        pcap_record_header(header.expect("16 bytes are buffered"), endianness);
    if caplen > MAX_CAPLEN {
        return Err(CaptureError::AbsurdCaplen {
            frame,
            offset,
            caplen,
            limit: MAX_CAPLEN,
        });
    }
    let record_len = PCAP_RECORD_HEADER_LEN + caplen as usize;
    // A mapped file has every byte available already: no second `fill`.
    if stream.available() < record_len {
        stream.fill(record_len)?;
        stream.require(record_len, frame)?;
    }
    let ts = pcap_timestamp(secs, frac, nanosecond);
    let data = stream.consume(record_len);
    Ok(Some(Located {
        data: data.start + PCAP_RECORD_HEADER_LEN..data.end,
        ts,
        link,
        orig_len,
    }))
}

/// The capture's bytes with a read position: hands out borrowed slices
/// and knows the file offset of every byte. Bytes consumed stay valid
/// until the next `fill`.
///
/// The framing code sees one byte window whatever the source: a regular
/// file is memory-mapped (the whole file is the window, frames borrow
/// straight from the page cache); a compressed one is the chunks its
/// decompressing thread hands over; anything else is read into a reusable
/// buffer that `fill` tops up.
struct ByteStream {
    source: Source,
    /// A compressed capture's decompressing thread, when it fills the
    /// `Read` buffer: each chunk becomes the buffer, the unread end of the
    /// one before moved in front of it. (Beside `Source`, not in it: a
    /// third kind of source cost the mapped one's hot path instructions.)
    chunks: Option<Threaded>,
    /// Window of valid bytes: `bytes()[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `bytes()[start]`.
    offset: u64,
    /// The read position at which a mapping's [`ByteStream::upkeep`]
    /// runs next (`usize::MAX` for other sources, which need none). Here
    /// rather than in `Source::Mapped`, so that the record loop of
    /// [`CaptureReader::read_frames`] asks it without a `match`.
    upkeep_at: usize,
}

enum Source {
    /// A regular file mapped read-only. `released` is how far the pages
    /// behind the read position have been dropped from this process's
    /// page tables, so that resident memory doesn't grow with the file.
    Mapped {
        map: Mmap,
        released: usize,
        /// How far the mapping has been prefetched ([`PREFETCH_AHEAD`]).
        prefetched: usize,
    },
    /// Any other byte source, through a buffer that grows only up to the
    /// largest record.
    Read {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
    },
}

const INITIAL_BUFFER_LEN: usize = 256 * 1024;

/// Pages of a mapping this far behind the read position are released:
/// large enough that the `madvise` calls cost nothing, small enough not
/// to show in peak RSS.
const RELEASE_CHUNK: usize = 2 * 1024 * 1024;

impl ByteStream {
    fn from_reader(reader: Box<dyn Read + Send>) -> Self {
        Self {
            source: Source::Read {
                reader,
                buf: vec![0; INITIAL_BUFFER_LEN],
            },
            chunks: None,
            start: 0,
            end: 0,
            offset: 0,
            upkeep_at: usize::MAX,
        }
    }

    fn from_chunks(chunks: Threaded) -> Self {
        Self {
            source: Source::Read {
                reader: Box::new(io::empty()),
                buf: Vec::new(),
            },
            chunks: Some(chunks),
            start: 0,
            end: 0,
            offset: 0,
            upkeep_at: usize::MAX,
        }
    }

    /// Maps `file` if it is a non-empty regular file that can be mapped;
    /// otherwise reads it.
    ///
    /// Mapping saves the kernel's copy of every byte into a read buffer
    /// (a fifth of the run time), but a mapped file must not shrink while
    /// it is read: the pages past its new end fault with SIGBUS. Captures
    /// are not rewritten in place by capture tools (they append, rotate,
    /// or write a new file), so this is the usual trade-off of mapping
    /// readers (ripgrep, for one) and taken here; pipes, devices and other
    /// non-regular files are read.
    fn open(file: File) -> io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_file() && meta.len() > 0 {
            // SAFETY: the mapping is read-only and private to this reader;
            // the file changing underneath is the documented risk above.
            if let Ok(map) = unsafe { Mmap::map(&file) } {
                // Only a hint for readahead; failing changes nothing.
                let _ = map.advise(Advice::Sequential);
                let end = map.len();
                return Ok(Self {
                    source: Source::Mapped {
                        map,
                        released: 0,
                        prefetched: 0,
                    },
                    chunks: None,
                    start: 0,
                    end,
                    offset: 0,
                    upkeep_at: 0,
                });
            }
        }
        Ok(Self::from_reader(Box::new(file)))
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        match &self.source {
            Source::Mapped { map, .. } => map,
            Source::Read { buf, .. } => buf,
        }
    }

    #[inline]
    fn offset(&self) -> u64 {
        self.offset
    }

    #[inline]
    fn available(&self) -> usize {
        self.end - self.start
    }

    /// Makes up to `want` bytes available; returns how many are (fewer only
    /// at end of input).
    #[inline]
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        match self.source {
            Source::Mapped { .. } => {
                // Everything is available already; the mapping's upkeep
                // runs once every few records, not on each.
                if self.start >= self.upkeep_at {
                    self.upkeep();
                }
            }
            Source::Read { .. } if self.available() < want => return self.read_more(want),
            Source::Read { .. } => {}
        }
        Ok(self.available())
    }

    /// Reads from a source that is not mapped until `want` bytes are
    /// available or the input ends.
    #[inline(never)]
    fn read_more(&mut self, want: usize) -> io::Result<usize> {
        let Source::Read { reader, buf } = &mut self.source else {
            return Ok(self.available());
        };
        if let Some(chunks) = &mut self.chunks {
            while self.end - self.start < want {
                match chunks.read_on(buf, self.start..self.end)? {
                    Some(window) => (self.start, self.end) = (window.start, window.end),
                    None => break,
                }
            }
            return Ok(self.available());
        }
        if self.start + want > buf.len() {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if want > buf.len() {
                buf.resize(want, 0);
            }
        }
        while self.end - self.start < want {
            match reader.read(&mut buf[self.end..]) {
                Ok(0) => break,
                Ok(n) => self.end += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(self.available())
    }

    /// A mapping's upkeep as the read position moves on: earlier frames'
    /// borrows have ended (`fill` takes `&mut self`), so the pages behind
    /// it can go, and the next [`PREFETCH_BATCH`] bytes past
    /// [`PREFETCH_AHEAD`] are asked for.
    #[inline(never)]
    fn upkeep(&mut self) {
        let Source::Mapped {
            map,
            released,
            prefetched,
        } = &mut self.source
        else {
            return;
        };
        if self.start - *released >= RELEASE_CHUNK {
            let upto = self.start - self.start % RELEASE_CHUNK;
            release(map, *released..upto);
            *released = upto;
        }
        let ahead = (self.start + PREFETCH_AHEAD + PREFETCH_BATCH).min(map.len());
        let mut at = *prefetched;
        // Four lines a turn: with one, the loop's own add, compare and
        // jump were three of its four instructions (about 20 a frame).
        // The last turn may ask up to three lines past `ahead` (past the
        // mapping's end at most: a prefetch never faults).
        while at < ahead {
            let line = map.as_ptr().wrapping_add(at);
            prefetch(line);
            prefetch(line.wrapping_add(CACHE_LINE));
            prefetch(line.wrapping_add(2 * CACHE_LINE));
            prefetch(line.wrapping_add(3 * CACHE_LINE));
            at += 4 * CACHE_LINE;
        }
        *prefetched = at;
        // Back when the prefetched bytes are fewer than PREFETCH_AHEAD
        // ahead (or at the end of the mapping), or pages are to go.
        let refill = if ahead == map.len() {
            usize::MAX
        } else {
            ahead - PREFETCH_AHEAD
        };
        self.upkeep_at = refill.min(*released + RELEASE_CHUNK);
    }

    /// Fails with [`CaptureError::TruncatedRecord`] unless `need` bytes are
    /// buffered (call after `fill`).
    #[inline]
    fn require(&self, need: usize, frame: u64) -> Result<(), CaptureError> {
        if self.available() < need {
            return Err(CaptureError::TruncatedRecord {
                frame,
                offset: self.offset,
                have: self.available() as u64,
                need: need as u64,
            });
        }
        Ok(())
    }

    #[inline(always)]
    fn peek(&self, len: usize) -> &[u8] {
        &self.bytes()[self.start..self.start + len.min(self.available())]
    }

    /// Marks `len` bytes as read and returns where they sit in the window.
    #[inline]
    fn consume(&mut self, len: usize) -> Range<usize> {
        let range = self.start..self.start + len;
        self.start += len;
        self.offset += len as u64;
        range
    }

    #[inline]
    fn slice(&self, range: Range<usize>) -> &[u8] {
        &self.bytes()[range]
    }
}

/// How far ahead of the read position the mapping is prefetched. Each
/// record's length says where the next one starts, so without it every
/// record header is a cache miss the CPU waits for (the hardware
/// prefetcher does not follow records of varying length): a read loop
/// took 0.17 s for 1.4 M records, and 0.125 s with it.
const PREFETCH_AHEAD: usize = 4096;
/// Bytes prefetched at a time, past [`PREFETCH_AHEAD`]: the upkeep runs
/// once per this many bytes read (a few records), not per record.
const PREFETCH_BATCH: usize = 2048;
const CACHE_LINE: usize = 64;

/// Asks the CPU to bring the cache line at `at` in.
#[inline(always)]
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Drops the pages of `range` from this process's page tables, so that
/// resident memory stays at the window being read (a hint: on failure or
/// off Unix the pages simply stay mapped until the reader is dropped).
fn release(map: &Mmap, range: Range<usize>) {
    #[cfg(unix)]
    // SAFETY: MADV_DONTNEED on a read-only file mapping only drops
    // page-table entries; a later access faults the same bytes back in
    // from the page cache, so no reference sees its memory change.
    let _ =
        unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, range.start, range.len()) };
    #[cfg(not(unix))]
    let _ = (map, range);
}

#[cfg(test)]
mod tests;
