//! pcapng block framing: sections (each with its own byte order),
//! interfaces (each with its own link type and timestamp resolution) and
//! the three packet block kinds (enhanced, simple, obsolete).

use nom::bytes::complete::take;
use nom::number::complete::{u16 as nom_u16, u32 as nom_u32, u64 as nom_u64};
use nom::{IResult, Parser};

use super::*;

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
const OBSOLETE_PACKET: u32 = 0x0000_0002;
const SIMPLE_PACKET: u32 = 0x0000_0003;
const ENHANCED_PACKET: u32 = 0x0000_0006;
/// Blocks that carry no packet but that Wireshark shows as frames of their
/// own (custom blocks, copyable or not; systemd journal entries), so they
/// take a frame number: the sidecar's frame numbers must be Wireshark's.
const SYSTEMD_JOURNAL_EXPORT: u32 = 0x0000_0009;
const CUSTOM: u32 = 0x0000_0BAD;
const CUSTOM_NO_COPY: u32 = 0x4000_0BAD;

const BLOCK_HEADER_LEN: usize = 8;
const BLOCK_TRAILER_LEN: usize = 4;
/// Block type, length and the section header's byte-order magic.
const SECTION_PREFIX_LEN: usize = 12;
const MIN_BLOCK_LEN: u32 = 12;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// if_tsresol's default: microseconds.
const DEFAULT_TICKS_PER_SEC: u64 = 1_000_000;

pub(super) fn is_section_header(head: &[u8]) -> bool {
    head[..4] == SECTION_HEADER.to_be_bytes()
}

/// What is wrong with a block's total length, if anything.
fn bad_block_length(len: u32) -> Option<&'static str> {
    if len < MIN_BLOCK_LEN {
        Some("length shorter than the 12 bytes of an empty block")
    } else if len % 4 != 0 {
        Some("length not a multiple of 4")
    } else if len > MAX_BLOCK_LEN {
        Some("length over the 16 MiB limit")
    } else {
        None
    }
}

/// Fails with [`CaptureError::TruncatedHeader`] unless the file's first
/// block, its section header, is there whole (its content is checked
/// when the block loop reads it).
pub(super) fn require_section_header(stream: &mut ByteStream) -> Result<(), CaptureError> {
    let have = stream.fill(SECTION_PREFIX_LEN)?;
    if have < SECTION_PREFIX_LEN {
        return Err(CaptureError::TruncatedHeader {
            have,
            need: SECTION_PREFIX_LEN,
        });
    }
    let head = stream.peek(SECTION_PREFIX_LEN);
    let Some(endianness) = section_byte_order(&head[8..12]) else {
        return Ok(());
    };
    let (_, (_, len)) = block_header(head, endianness).expect("12 bytes buffered");
    if bad_block_length(len).is_some() {
        return Ok(());
    }
    let have = stream.fill(len as usize)?;
    if have < len as usize {
        return Err(CaptureError::TruncatedHeader {
            have,
            need: len as usize,
        });
    }
    Ok(())
}

/// What the blocks read so far say about the current section.
#[derive(Default)]
pub(super) struct PcapNgState {
    /// `None` until the first section header has been read.
    endianness: Option<Endianness>,
    interfaces: Vec<Interface>,
    /// Frames Wireshark numbers since the last packet that have no packet.
    unnumbered: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    ticks_per_sec: u64,
    offset_secs: i64,
}

/// The fixed part of a packet block, whichever kind.
struct PacketHeader {
    interface_id: u32,
    ticks: u64,
    caplen: u32,
    orig_len: u32,
    /// Where the packet data starts within the block body.
    data_offset: usize,
}

/// One block as read: where it sits in the stream's window, and the
/// packet it holds, if it holds one.
pub(super) struct BlockRead {
    pub(super) block_type: u32,
    pub(super) endianness: Endianness,
    pub(super) bytes: Range<usize>,
    pub(super) packet: Option<Located>,
    /// Where the options of an enhanced or obsolete packet block start,
    /// from the start of the block (past the end of a block whose data
    /// was not padded).
    pub(super) options_at: Option<usize>,
}

impl PcapNgState {
    /// Reads blocks until the next packet block; `Ok(None)` at end of file.
    pub(super) fn next_packet(
        &mut self,
        stream: &mut ByteStream,
        frame: u64,
    ) -> Result<Option<Located>, CaptureError> {
        while let Some(block) = self.next_block(stream, frame)? {
            if block.packet.is_some() {
                return Ok(block.packet);
            }
        }
        Ok(None)
    }

    /// Reads the next block, whatever it holds; `Ok(None)` at end of file.
    /// `frame` is the number the next packet would have.
    pub(super) fn next_block(
        &mut self,
        stream: &mut ByteStream,
        frame: u64,
    ) -> Result<Option<BlockRead>, CaptureError> {
        let offset = stream.offset();
        if stream.fill(SECTION_PREFIX_LEN)? == 0 {
            return Ok(None);
        }
        stream.require(BLOCK_HEADER_LEN, frame)?;
        let corrupt = |block_type, len, reason| CaptureError::CorruptBlock {
            offset,
            block_type,
            len,
            reason,
        };
        let head = stream.peek(SECTION_PREFIX_LEN);
        let endianness = if is_section_header(head) {
            stream.require(SECTION_PREFIX_LEN, frame)?;
            section_byte_order(&head[8..12]).ok_or(corrupt(
                SECTION_HEADER,
                0,
                "bad byte-order magic",
            ))?
        } else {
            self.endianness
                .ok_or(corrupt(0, 0, "first block is not a section header"))?
        };
        let (_, (block_type, len)) = block_header(head, endianness).expect("8 bytes buffered");
        if let Some(reason) = bad_block_length(len) {
            return Err(corrupt(block_type, len, reason));
        }
        let block_len = len as usize;
        stream.fill(block_len)?;
        stream.require(block_len, frame)?;
        let block = stream.peek(block_len);
        let (_, trailer) = nom_u32::<_, nom::error::Error<&[u8]>>(endianness)
            .parse(&block[block_len - BLOCK_TRAILER_LEN..])
            .expect("4 bytes buffered");
        if trailer != len {
            return Err(corrupt(block_type, len, "trailing length differs"));
        }
        let body = &block[BLOCK_HEADER_LEN..block_len - BLOCK_TRAILER_LEN];
        let packet = match block_type {
            SECTION_HEADER => {
                self.endianness = Some(endianness);
                self.interfaces.clear();
                None
            }
            INTERFACE_DESCRIPTION => {
                let interface = interface_description(body, endianness)
                    .map_err(|_| corrupt(block_type, len, "interface block too short"))?
                    .1;
                let ticks_per_sec = match interface.ticks_per_sec {
                    Ok(ticks) => ticks,
                    Err(if_tsresol) => {
                        return Err(CaptureError::BadTsResolution { offset, if_tsresol })
                    }
                };
                self.interfaces.push(Interface {
                    ticks_per_sec,
                    link: interface.link,
                    snaplen: interface.snaplen,
                    offset_secs: interface.offset_secs,
                });
                None
            }
            ENHANCED_PACKET | OBSOLETE_PACKET | SIMPLE_PACKET => {
                let parsed = match block_type {
                    ENHANCED_PACKET => enhanced_packet(body, endianness),
                    OBSOLETE_PACKET => obsolete_packet(body, endianness),
                    _ => simple_packet(body, endianness),
                };
                let header = parsed
                    .map_err(|_| corrupt(block_type, len, "body shorter than packet header"))?
                    .1;
                Some(self.locate(header, body.len(), block_type, frame, offset)?)
            }
            SYSTEMD_JOURNAL_EXPORT | CUSTOM | CUSTOM_NO_COPY => {
                self.unnumbered += 1;
                None
            }
            _ => None,
        };
        let range = stream.consume(block_len);
        let mut read = BlockRead {
            block_type,
            endianness,
            bytes: range.clone(),
            packet: None,
            options_at: None,
        };
        if let Some((header, interface)) = packet {
            let data_at = BLOCK_HEADER_LEN + header.data_offset;
            let data_start = range.start + data_at;
            read.packet = Some(Located {
                data: data_start..data_start + header.caplen as usize,
                ts: interface.timestamp(header.ticks),
                link: interface.link,
                orig_len: header.orig_len,
            });
            if block_type != SIMPLE_PACKET {
                read.options_at = Some(data_at + (header.caplen as usize).next_multiple_of(4));
            }
        }
        Ok(Some(read))
    }

    /// How many frame numbers Wireshark gave to blocks without a packet
    /// since the last call; the count starts again.
    pub(super) fn take_unnumbered(&mut self) -> u64 {
        std::mem::take(&mut self.unnumbered)
    }

    /// Checks a packet header against its interface and its block body.
    fn locate(
        &self,
        mut header: PacketHeader,
        body_len: usize,
        block_type: u32,
        frame: u64,
        offset: u64,
    ) -> Result<(PacketHeader, Interface), CaptureError> {
        let interface = *self.interfaces.get(header.interface_id as usize).ok_or(
            CaptureError::UnknownInterface {
                frame,
                offset,
                interface_id: header.interface_id,
                defined: self.interfaces.len(),
            },
        )?;
        let room = u32::try_from(body_len - header.data_offset).unwrap_or(u32::MAX);
        if block_type == SIMPLE_PACKET {
            // A simple packet block has no captured length: the data is
            // the original length cut to the snaplen, then padded.
            let snaplen = if interface.snaplen == 0 {
                u32::MAX
            } else {
                interface.snaplen
            };
            header.caplen = header.orig_len.min(snaplen).min(room);
        }
        if header.caplen > room {
            return Err(CaptureError::AbsurdCaplen {
                frame,
                offset,
                caplen: header.caplen,
                limit: room,
            });
        }
        Ok((header, interface))
    }
}

impl Interface {
    fn timestamp(&self, ticks: u64) -> Timestamp {
        let secs = ticks / self.ticks_per_sec;
        let fraction = u128::from(ticks % self.ticks_per_sec);
        let nanos = fraction * u128::from(NANOS_PER_SEC) / u128::from(self.ticks_per_sec);
        Timestamp {
            secs: i64::try_from(secs)
                .unwrap_or(i64::MAX)
                .saturating_add(self.offset_secs),
            nanos: nanos as u32,
        }
    }
}

type Res<'a, T> = IResult<&'a [u8], T>;

fn section_byte_order(magic: &[u8]) -> Option<Endianness> {
    match magic {
        [0x1a, 0x2b, 0x3c, 0x4d] => Some(Endianness::Big),
        [0x4d, 0x3c, 0x2b, 0x1a] => Some(Endianness::Little),
        _ => None,
    }
}

/// Block type and total length.
fn block_header(input: &[u8], e: Endianness) -> Res<'_, (u32, u32)> {
    (nom_u32(e), nom_u32(e)).parse(input)
}

fn enhanced_packet(input: &[u8], e: Endianness) -> Res<'_, PacketHeader> {
    let (rest, (interface_id, ts_high, ts_low, caplen, orig_len)) =
        (nom_u32(e), nom_u32(e), nom_u32(e), nom_u32(e), nom_u32(e)).parse(input)?;
    Ok((
        rest,
        PacketHeader {
            interface_id,
            ticks: u64::from(ts_high) << 32 | u64::from(ts_low),
            caplen,
            orig_len,
            data_offset: 20,
        },
    ))
}

fn obsolete_packet(input: &[u8], e: Endianness) -> Res<'_, PacketHeader> {
    let (rest, (interface_id, _drops, ts_high, ts_low, caplen, orig_len)) = (
        nom_u16(e),
        nom_u16(e),
        nom_u32(e),
        nom_u32(e),
        nom_u32(e),
        nom_u32(e),
    )
        .parse(input)?;
    Ok((
        rest,
        PacketHeader {
            interface_id: u32::from(interface_id),
            ticks: u64::from(ts_high) << 32 | u64::from(ts_low),
            caplen,
            orig_len,
            data_offset: 20,
        },
    ))
}

fn simple_packet(input: &[u8], e: Endianness) -> Res<'_, PacketHeader> {
    let (rest, orig_len) = nom_u32(e).parse(input)?;
    Ok((
        rest,
        PacketHeader {
            interface_id: 0,
            ticks: 0,
            caplen: 0, // derived from the interface's snaplen in `locate`
            orig_len,
            data_offset: 4,
        },
    ))
}

/// An interface description block's fields; `ticks_per_sec` is
/// `Err(if_tsresol)` when the resolution is out of range.
struct InterfaceDescription {
    link: LinkType,
    snaplen: u32,
    ticks_per_sec: Result<u64, u8>,
    offset_secs: i64,
}

fn interface_description(input: &[u8], e: Endianness) -> Res<'_, InterfaceDescription> {
    let (mut options, (link, _reserved, snaplen)) =
        (nom_u16(e), nom_u16(e), nom_u32(e)).parse(input)?;
    let mut description = InterfaceDescription {
        link: LinkType(u32::from(link)),
        snaplen,
        ticks_per_sec: Ok(DEFAULT_TICKS_PER_SEC),
        offset_secs: 0,
    };
    // Options are read leniently: a malformed tail just ends the list.
    while let Ok((rest, (code, value))) = option(options, e) {
        options = rest;
        match (code, value) {
            (OPT_END, _) => break,
            (OPT_IF_TSRESOL, [resolution]) => {
                description.ticks_per_sec = ticks_per_sec(*resolution).ok_or(*resolution)
            }
            (OPT_IF_TSOFFSET, value) => {
                if let Ok((_, secs)) = nom_u64::<_, nom::error::Error<&[u8]>>(e).parse(value) {
                    description.offset_secs = secs as i64;
                }
            }
            _ => {}
        }
    }
    Ok((options, description))
}

/// One option: code and value, with the padding to 32 bits consumed.
fn option(input: &[u8], e: Endianness) -> Res<'_, (u16, &[u8])> {
    let (rest, (code, len)) = (nom_u16(e), nom_u16(e)).parse(input)?;
    let (rest, value) = take(len).parse(rest)?;
    // The last option's padding may be missing in sloppy writers.
    let padding = ((4 - usize::from(len) % 4) % 4).min(rest.len());
    let (rest, _) = take(padding).parse(rest)?;
    Ok((rest, (code, value)))
}

/// if_tsresol: the low 7 bits are a negative power of 10, or of 2 when
/// the top bit is set.
pub(super) fn ticks_per_sec(if_tsresol: u8) -> Option<u64> {
    let exponent = u32::from(if_tsresol & 0x7f);
    if if_tsresol & 0x80 != 0 {
        1u64.checked_shl(exponent)
    } else {
        10u64.checked_pow(exponent)
    }
}
