//! The annotated pcapng copy: the capture again, with each annotated
//! packet's summary as a packet comment (`frame.comment`), so that any
//! Wireshark shows the teardown without the plugin.
//!
//! A pcapng capture is copied block by block, byte for byte: the section
//! headers with their comments and options (a comment may hold TLS keys),
//! interface descriptions (names, filters, snaplens, time resolutions),
//! name resolution, interface statistics, decryption secrets and any
//! other block, in their sections' byte order (except custom blocks of
//! type 0x40000BAD, which the pcapng specification says must not be
//! copied into a changed file). Only a packet block that
//! gets a comment changes: the comment option goes after the options it
//! has (earlier comments stay), and its length fields grow. Timestamps
//! are never converted. A simple packet block has no options and stays as
//! it is, without a comment; so does a packet block whose options cannot
//! be walked. A pcap capture becomes one section with one interface of
//! its link type, snaplen and time resolution (and FCS length, if its
//! header gives one), each packet's timestamp in that resolution.
//!
//! The copy reads the capture itself, alongside the pipeline's read, and
//! takes the blocks between one frame and the next from there.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::output::reports::ConnectionReport;
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::CaptureSummary;
use crate::wire::capture::{CaptureReader, Frame, RawBlock, Record};

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
const ENHANCED_PACKET: u32 = 0x0000_0006;
/// A custom block that the pcapng specification says must not be copied
/// into a file that was changed (its content may depend on the rest).
const CUSTOM_NO_COPY: u32 = 0x4000_0BAD;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_FCSLEN: u16 = 13;

/// libpcap's `LT_FCS_LENGTH_PRESENT`: the link type's top bits give the
/// FCS length, in 16-bit words.
const FCS_LENGTH_PRESENT: u32 = 0x0400_0000;

/// An option value is at most this long (its length is 16 bits, and the
/// value is padded to 32).
const MAX_OPTION_LEN: usize = 65_532;

/// Writes the annotated pcapng copy of the capture `source` reads.
pub struct PcapngCopy<W: Write> {
    out: W,
    /// The same capture, read block by block.
    source: CaptureReader,
    /// For a pcap source: nanosecond timestamps.
    nanosecond: bool,
    comment: String,
    block: Vec<u8>,
}

impl<W: Write> PcapngCopy<W> {
    /// A copy of what `source` reads, freshly opened, into `out`.
    pub fn new(out: W, source: CaptureReader) -> io::Result<Self> {
        let mut copy = PcapngCopy {
            out,
            nanosecond: false,
            source,
            comment: String::new(),
            block: Vec::new(),
        };
        if let Some(header) = copy.source.pcap_header().cloned() {
            copy.nanosecond = header.ts_resolution == pcap_file::TsResolution::NanoSecond;
            copy.pcap_preamble(u32::from(header.datalink), header.snaplen)?;
        }
        Ok(copy)
    }

    /// The section header and the one interface a pcap file becomes.
    fn pcap_preamble(&mut self, link: u32, snaplen: u32) -> io::Result<()> {
        let b = &mut self.block;
        b.clear();
        put_u32(b, SECTION_HEADER);
        put_u32(b, 0);
        put_u32(b, BYTE_ORDER_MAGIC);
        put_u16(b, 1);
        put_u16(b, 0);
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        end_block(b);
        self.out.write_all(b)?;

        b.clear();
        put_u32(b, INTERFACE_DESCRIPTION);
        put_u32(b, 0);
        put_u16(b, (link & 0xFFFF) as u16);
        put_u16(b, 0);
        put_u32(b, snaplen);
        let mut options = false;
        if self.nanosecond {
            push_option(b, false, OPT_IF_TSRESOL, &[9]);
            options = true;
        }
        if link & FCS_LENGTH_PRESENT != 0 {
            let words = (link >> 28) as u8;
            push_option(b, false, OPT_IF_FCSLEN, &[words * 2]);
            options = true;
        }
        if options {
            push_option(b, false, OPT_END, &[]);
        }
        end_block(b);
        self.out.write_all(b)
    }

    /// Copies the blocks up to and including the packet of `frame`.
    fn copy_through(&mut self, frame: &Frame<'_>) -> io::Result<()> {
        loop {
            let record = self
                .source
                .next_record()
                .map_err(|_| changed(frame.number))?;
            match record {
                Some(Record::Block(raw)) => copy_block(&mut self.out, &raw)?,
                Some(Record::Packet(packet, raw)) if packet.number == frame.number => {
                    let comment = self.comment.as_str();
                    match raw {
                        Some(raw) => {
                            write_commented(&mut self.out, &mut self.block, &raw, comment)?
                        }
                        None => {
                            pcap_packet(&mut self.block, &packet, self.nanosecond, comment);
                            self.out.write_all(&self.block)?;
                        }
                    }
                    return Ok(());
                }
                Some(Record::Packet(..)) | None => return Err(changed(frame.number)),
            }
        }
    }
}

/// A block without a packet, as it is; none for a custom block marked not
/// to be copied.
fn copy_block(out: &mut impl Write, raw: &RawBlock<'_>) -> io::Result<()> {
    if raw.block_type == CUSTOM_NO_COPY {
        return Ok(());
    }
    out.write_all(raw.bytes)
}

/// The capture read differently the second time: it changed underneath.
fn changed(at: u64) -> io::Error {
    io::Error::other(format!(
        "the capture changed while it was copied (at frame {at})"
    ))
}

impl<W: Write> RowSink for PcapngCopy<W> {
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        Ok(())
    }

    fn row(&mut self, _: &Row) -> io::Result<()> {
        Ok(())
    }

    fn frame(&mut self, frame: &Frame<'_>, row: Option<&Row>) -> io::Result<()> {
        self.comment.clear();
        if let Some(row) = row {
            write!(self.comment, "{}", row.summary).expect("writing to a String cannot fail");
        }
        self.copy_through(frame)
    }

    /// Copies the blocks after the last packet (statistics, often).
    fn finish(&mut self) -> io::Result<()> {
        // A read that ended early ended at the same place for the frames.
        while let Ok(Some(Record::Block(raw))) = self.source.next_record() {
            copy_block(&mut self.out, &raw)?;
        }
        self.out.flush()
    }
}

/// Writes the packet block `raw`, with `comment` added after its options
/// when there is one; as it is when it cannot hold one.
fn write_commented(
    out: &mut impl Write,
    block: &mut Vec<u8>,
    raw: &RawBlock<'_>,
    comment: &str,
) -> io::Result<()> {
    if comment.is_empty() || !commented(block, raw, comment) {
        return out.write_all(raw.bytes);
    }
    out.write_all(block)
}

/// `raw` with `comment` added into `block`; false (nothing made) for a
/// block without options or whose options cannot be walked.
fn commented(block: &mut Vec<u8>, raw: &RawBlock<'_>, comment: &str) -> bool {
    let Some(options_at) = raw.options_at else {
        return false;
    };
    let big = raw.big_endian;
    let bytes = raw.bytes;
    let end = bytes.len() - 4;
    let read_u16 = |at: usize| {
        let pair = [bytes[at], bytes[at + 1]];
        if big {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    };
    // Walk the options to the end-of-options marker or the trailer.
    let mut at = options_at.min(end);
    let insert = loop {
        if at == end {
            break end;
        }
        if at + 4 > end {
            return false;
        }
        if read_u16(at) == OPT_END {
            break at;
        }
        let next = at + 4 + usize::from(read_u16(at + 2)).next_multiple_of(4);
        if next > end {
            return false;
        }
        at = next;
    };
    block.clear();
    block.extend_from_slice(&bytes[..insert]);
    // Data a sloppy writer did not pad is padded before the options.
    block.resize(block.len().max(options_at), 0);
    push_option(block, big, OPT_COMMENT, clipped(comment).as_bytes());
    if insert == end {
        push_option(block, big, OPT_END, &[]);
    } else {
        block.extend_from_slice(&bytes[insert..end]);
    }
    let len = (block.len() + 4) as u32;
    let len_bytes = if big {
        len.to_be_bytes()
    } else {
        len.to_le_bytes()
    };
    block[4..8].copy_from_slice(&len_bytes);
    block.extend_from_slice(&len_bytes);
    true
}

/// A pcap packet as an enhanced packet block of interface 0, its
/// timestamp in the file's resolution.
fn pcap_packet(block: &mut Vec<u8>, frame: &Frame<'_>, nanosecond: bool, comment: &str) {
    let per_sec: u64 = if nanosecond { 1_000_000_000 } else { 1_000_000 };
    let nanos_per_tick = 1_000_000_000 / per_sec;
    // A pcap timestamp is 32-bit seconds: never negative.
    let secs = u64::try_from(frame.ts.secs).unwrap_or(0);
    let ticks = secs * per_sec + u64::from(frame.ts.nanos) / nanos_per_tick;
    block.clear();
    put_u32(block, ENHANCED_PACKET);
    put_u32(block, 0);
    put_u32(block, 0);
    put_u32(block, (ticks >> 32) as u32);
    put_u32(block, ticks as u32);
    put_u32(block, frame.data.len() as u32);
    put_u32(block, frame.orig_len);
    block.extend_from_slice(frame.data);
    block.resize(block.len().next_multiple_of(4), 0);
    if !comment.is_empty() {
        push_option(block, false, OPT_COMMENT, clipped(comment).as_bytes());
        push_option(block, false, OPT_END, &[]);
    }
    end_block(block);
}

/// `text` cut to what one option can hold, at a character boundary.
fn clipped(text: &str) -> &str {
    let mut len = text.len().min(MAX_OPTION_LEN);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    &text[..len]
}

fn put_u16(block: &mut Vec<u8>, value: u16) {
    block.extend_from_slice(&value.to_le_bytes());
}

fn put_u32(block: &mut Vec<u8>, value: u32) {
    block.extend_from_slice(&value.to_le_bytes());
}

/// Appends one option (code, length, value padded to 32 bits).
fn push_option(block: &mut Vec<u8>, big: bool, code: u16, value: &[u8]) {
    let len = value.len() as u16;
    if big {
        block.extend_from_slice(&code.to_be_bytes());
        block.extend_from_slice(&len.to_be_bytes());
    } else {
        block.extend_from_slice(&code.to_le_bytes());
        block.extend_from_slice(&len.to_le_bytes());
    }
    block.extend_from_slice(value);
    block.resize(block.len().next_multiple_of(4), 0);
}

/// Sets a little-endian block's length, in its header and its trailer.
fn end_block(block: &mut Vec<u8>) {
    let len = (block.len() + 4) as u32;
    block[4..8].copy_from_slice(&len.to_le_bytes());
    put_u32(block, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option_block(big: bool, options: &[u8]) -> Vec<u8> {
        let put = |b: &mut Vec<u8>, v: u32| {
            b.extend_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let mut b = Vec::new();
        put(&mut b, ENHANCED_PACKET);
        put(&mut b, 0);
        for v in [0, 1, 2, 3, 3] {
            put(&mut b, v); // interface, ts high, ts low, caplen, len
        }
        b.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0]);
        b.extend_from_slice(options);
        let len = (b.len() + 4) as u32;
        let len_bytes = if big {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        };
        b[4..8].copy_from_slice(&len_bytes);
        b.extend_from_slice(&len_bytes);
        b
    }

    fn commented_bytes(big: bool, options: &[u8], comment: &str) -> Option<Vec<u8>> {
        let bytes = option_block(big, options);
        let raw = RawBlock {
            block_type: ENHANCED_PACKET,
            big_endian: big,
            bytes: &bytes,
            options_at: Some(32),
        };
        let mut block = Vec::new();
        commented(&mut block, &raw, comment).then_some(block)
    }

    #[test]
    fn a_comment_goes_after_existing_options_in_the_blocks_byte_order() {
        for big in [false, true] {
            let mut existing = Vec::new();
            push_option(&mut existing, big, OPT_COMMENT, b"theirs");
            push_option(&mut existing, big, OPT_END, &[]);
            let made = commented_bytes(big, &existing, "ours!").unwrap();
            let mut expected_options = Vec::new();
            push_option(&mut expected_options, big, OPT_COMMENT, b"theirs");
            push_option(&mut expected_options, big, OPT_COMMENT, b"ours!");
            push_option(&mut expected_options, big, OPT_END, &[]);
            assert_eq!(
                made,
                option_block(big, &expected_options),
                "big endian: {big}"
            );
        }
    }

    #[test]
    fn a_block_without_options_gets_the_comment_and_an_end() {
        let made = commented_bytes(false, &[], "x").unwrap();
        let mut options = Vec::new();
        push_option(&mut options, false, OPT_COMMENT, b"x");
        push_option(&mut options, false, OPT_END, &[]);
        assert_eq!(made, option_block(false, &options));
    }

    #[test]
    fn options_that_cannot_be_walked_leave_the_block_alone() {
        // An option claiming 200 bytes in a block that has 8.
        let bad = [1, 0, 200, 0, 1, 2, 3, 4];
        assert!(commented_bytes(false, &bad, "x").is_none());
    }
}
