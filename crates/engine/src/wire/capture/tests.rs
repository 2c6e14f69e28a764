//! Tests for capture reading, on in-memory files written with pcap-file's
//! writers (or patched by hand where a writer refuses to write bad data).

use std::borrow::Cow;
use std::io::{self, Read};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::{Block, PcapNgWriter, RawBlock};
use pcap_file::{DataLink, Endianness as FileEndianness, TsResolution};

use super::*;

fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader(Box::new(io::Cursor::new(bytes)), "test")
}

/// Frame data `[n; len]` so every frame's bytes are recognisable.
fn packet_data(number: u8, len: usize) -> Vec<u8> {
    vec![number; len]
}

fn pcap_file(
    endianness: FileEndianness,
    ts_resolution: TsResolution,
    packets: &[(Duration, u32, Vec<u8>)],
) -> Vec<u8> {
    let header = PcapHeader {
        endianness,
        ts_resolution,
        datalink: DataLink::RAW,
        snaplen: 65535,
        ..Default::default()
    };
    let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (ts, orig_len, data) in packets {
        writer
            .write_packet(&PcapPacket::new(*ts, *orig_len, data))
            .unwrap();
    }
    writer.into_writer()
}

/// Two packets, the second cut by a snaplen of 100 (orig_len 1500).
fn two_packets() -> Vec<(Duration, u32, Vec<u8>)> {
    vec![
        (
            Duration::new(1_700_000_000, 123_456_000),
            60,
            packet_data(1, 60),
        ),
        (
            Duration::new(1_700_000_001, 999_000),
            1500,
            packet_data(2, 100),
        ),
    ]
}

fn read_all(mut reader: CaptureReader) -> Vec<(u64, Timestamp, LinkType, Vec<u8>, u32)> {
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        frames.push((
            frame.number,
            frame.ts,
            frame.link,
            frame.data.to_vec(),
            frame.orig_len,
        ));
    }
    frames
}

#[test]
fn pcap_all_magics_read_alike() {
    for endianness in [FileEndianness::Little, FileEndianness::Big] {
        for resolution in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
            let bytes = pcap_file(endianness, resolution, &two_packets());
            let reader = reader(bytes).unwrap();
            assert_eq!(
                reader.format(),
                CaptureFormat::Pcap {
                    nanosecond: resolution == TsResolution::NanoSecond,
                    big_endian: endianness == FileEndianness::Big,
                }
            );
            let frames = read_all(reader);
            assert_eq!(frames.len(), 2, "{endianness:?} {resolution:?}");
            let (number, ts, link, data, orig_len) = &frames[1];
            assert_eq!(*number, 2);
            assert_eq!(
                *ts,
                Timestamp {
                    secs: 1_700_000_001,
                    nanos: 999_000
                }
            );
            assert_eq!(*link, LinkType(101));
            assert_eq!(*data, packet_data(2, 100));
            // orig_len above the snaplen is what a cut frame looks like.
            assert_eq!(*orig_len, 1500);
            assert_eq!(frames[0].1.nanos, 123_456_000);
        }
    }
}

#[test]
fn pcap_nanoseconds_are_kept() {
    let packets = [(Duration::new(5, 7), 4, packet_data(1, 4))];
    let bytes = pcap_file(FileEndianness::Little, TsResolution::NanoSecond, &packets);
    let frames = read_all(reader(bytes).unwrap());
    assert_eq!(frames[0].1, Timestamp { secs: 5, nanos: 7 });
}

#[test]
fn empty_input_is_reported() {
    assert!(matches!(reader(Vec::new()), Err(CaptureError::Empty)));
}

#[test]
fn non_capture_shows_first_bytes() {
    let err = reader(b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec())
        .err()
        .unwrap();
    match &err {
        CaptureError::NotACapture { magic } => assert_eq!(&magic[..4], b"GET "),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("0x47 0x45 0x54 0x20"), "{err}");
}

#[test]
fn compressed_files_are_named() {
    let err = reader(b"BZh91AY&SY".to_vec()).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("a bzip2-compressed file: tcpshut reads gzip-, zstd- and lz4-"),
        "{err}"
    );
    // gzip of "hello world, not a capture"
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"hello world, not a capture").unwrap();
    let err = reader(gz.finish().unwrap()).err().unwrap();
    assert!(
        err.to_string().starts_with(
            "a gzip-compressed file that holds no pcap or pcapng (first bytes after decompression 0x68 0x65"
        ),
        "{err}"
    );
}

#[test]
fn short_pcap_header_is_truncated_header() {
    let mut bytes = pcap_file(FileEndianness::Little, TsResolution::MicroSecond, &[]);
    bytes.truncate(10);
    assert!(matches!(
        reader(bytes),
        Err(CaptureError::TruncatedHeader { have: 10, need: 24 })
    ));
}

/// A pcapng file cut inside its section header has no capture at all,
/// as a pcap file cut inside its header (not a capture cut short).
#[test]
fn short_pcapng_section_header_is_truncated_header() {
    let mut bytes = Vec::new();
    PcapNgWriter::new(&mut bytes).unwrap();
    let whole = bytes.len();
    for cut in [4, 11, 12, whole - 1] {
        let result = reader(bytes[..cut].to_vec());
        assert!(
            matches!(result, Err(CaptureError::TruncatedHeader { have, .. }) if have == cut),
            "cut at {cut} of {whole}"
        );
    }
    assert!(reader(bytes).is_ok());
}

/// A block length below the minimum says so, not "not a multiple of 4".
#[test]
fn a_short_block_length_is_named() {
    let mut bytes = Vec::new();
    PcapNgWriter::new(&mut bytes).unwrap();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&8u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    let mut capture = reader(bytes).unwrap();
    let err = capture.next_frame().unwrap_err().to_string();
    assert!(err.contains("shorter than the 12 bytes"), "{err}");
}

#[test]
fn truncated_last_record_after_earlier_frames() {
    let mut bytes = pcap_file(
        FileEndianness::Little,
        TsResolution::MicroSecond,
        &two_packets(),
    );
    bytes.truncate(bytes.len() - 30);
    let mut reader = reader(bytes).unwrap();
    assert_eq!(reader.next_frame().unwrap().unwrap().number, 1);
    let err = reader.next_frame().unwrap_err();
    let second_record = (24 + 16 + 60) as u64;
    match err {
        CaptureError::TruncatedRecord {
            frame,
            offset,
            have,
            need,
        } => {
            assert_eq!((frame, offset, have, need), (2, second_record, 86, 116));
        }
        other => panic!("unexpected {other:?}"),
    }
    // After an error the reader is finished.
    assert!(reader.next_frame().unwrap().is_none());
}

#[test]
fn truncated_record_header_is_reported() {
    let mut bytes = pcap_file(
        FileEndianness::Big,
        TsResolution::MicroSecond,
        &two_packets(),
    );
    bytes.truncate(24 + 16 + 60 + 5);
    let mut reader = reader(bytes).unwrap();
    reader.next_frame().unwrap();
    assert!(matches!(
        reader.next_frame(),
        Err(CaptureError::TruncatedRecord {
            frame: 2,
            have: 5,
            need: 16,
            ..
        })
    ));
}

#[test]
fn absurd_caplen_carries_numbers() {
    let mut bytes = pcap_file(
        FileEndianness::Little,
        TsResolution::MicroSecond,
        &two_packets(),
    );
    // incl_len of the second record
    let incl_len_at = 24 + 16 + 60 + 8;
    bytes[incl_len_at..incl_len_at + 4].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    let mut reader = reader(bytes).unwrap();
    reader.next_frame().unwrap();
    match reader.next_frame() {
        Err(CaptureError::AbsurdCaplen {
            frame,
            offset,
            caplen,
            limit,
        }) => assert_eq!(
            (frame, offset, caplen, limit),
            (2, 100, 0x4000_0000, MAX_CAPLEN)
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// Fails with an I/O error once `good` bytes have been read.
struct FailingReader {
    inner: io::Cursor<Vec<u8>>,
    good: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.position() >= self.good {
            return Err(io::Error::other("disk on fire"));
        }
        let room = (self.good - self.inner.position()) as usize;
        let len = buf.len().min(room);
        self.inner.read(&mut buf[..len])
    }
}

#[test]
fn io_errors_surface_after_earlier_frames() {
    let bytes = pcap_file(
        FileEndianness::Little,
        TsResolution::MicroSecond,
        &two_packets(),
    );
    let failing = FailingReader {
        inner: io::Cursor::new(bytes),
        good: 24 + 16 + 60 + 4,
    };
    let mut reader = CaptureReader::from_reader(Box::new(failing), "failing").unwrap();
    assert_eq!(reader.next_frame().unwrap().unwrap().number, 1);
    assert!(matches!(reader.next_frame(), Err(CaptureError::Io(_))));
}

/// Hands out one byte per read, so every record straddles reads.
struct Trickle(io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(1);
        self.0.read(&mut buf[..len])
    }
}

#[test]
fn byte_by_byte_input_reads_the_same() {
    let bytes = pcap_file(
        FileEndianness::Big,
        TsResolution::NanoSecond,
        &two_packets(),
    );
    let whole = read_all(reader(bytes.clone()).unwrap());
    let trickled = read_all(
        CaptureReader::from_reader(Box::new(Trickle(io::Cursor::new(bytes))), "t").unwrap(),
    );
    assert_eq!(whole, trickled);
}

/// `count` packets of 1000 bytes, one a second.
fn kilobyte_packets(count: u32) -> Vec<(Duration, u32, Vec<u8>)> {
    (0..count)
        .map(|i| {
            (
                Duration::new(u64::from(i), 0),
                1000,
                packet_data(i as u8, 1000),
            )
        })
        .collect()
}

#[test]
fn frames_are_borrowed_and_memory_does_not_grow() {
    // 4 MB of 1000-byte frames: many buffer refills, records straddling them.
    let packets = kilobyte_packets(4000);
    let bytes = pcap_file(FileEndianness::Little, TsResolution::MicroSecond, &packets);
    let mut reader = reader(bytes).unwrap();
    let mut count = 0u32;
    while let Some(frame) = reader.next_frame().unwrap() {
        assert_eq!(frame.data, &packet_data(count as u8, 1000)[..]);
        let data = frame.data.as_ptr();
        assert!(
            reader.stream.bytes().as_ptr_range().contains(&data),
            "frame is copied"
        );
        count += 1;
    }
    assert_eq!(count, 4000);
    assert_eq!(reader.stream.bytes().len(), INITIAL_BUFFER_LEN);
}

/// Writes `bytes` to a temporary file, for [`CaptureReader::open`].
fn temp_capture(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    io::Write::write_all(&mut file, bytes).unwrap();
    file
}

#[test]
fn mapped_file_reads_like_a_reader() {
    // 4000 frames of 1000 bytes: several release chunks behind the reader.
    let packets = kilobyte_packets(4000);
    let bytes = pcap_file(FileEndianness::Big, TsResolution::NanoSecond, &packets);
    let file = temp_capture(&bytes);
    let mut mapped = CaptureReader::open(file.path()).unwrap();
    assert!(matches!(mapped.stream.source, Source::Mapped { .. }));
    let first = mapped.next_frame().unwrap().unwrap().data.as_ptr();
    assert!(
        mapped.stream.bytes().as_ptr_range().contains(&first),
        "frame is copied"
    );
    let mapped = CaptureReader::open(file.path()).unwrap();
    assert_eq!(read_all(mapped), read_all(reader(bytes).unwrap()));
}

#[test]
fn mapped_file_errors_like_a_reader() {
    let whole = pcap_file(
        FileEndianness::Little,
        TsResolution::MicroSecond,
        &two_packets(),
    );
    // Cut inside the last record's data, inside its header, and inside
    // the file header; and an empty file.
    for cut in [whole.len() - 7, whole.len() - 100 - 9, 10, 0] {
        let bytes = &whole[..cut];
        let file = temp_capture(bytes);
        let from_file = CaptureReader::open(file.path());
        let from_buffer = reader(bytes.to_vec());
        match (from_file, from_buffer) {
            (Ok(mut a), Ok(mut b)) => loop {
                let (x, y) = (a.next_frame(), b.next_frame());
                assert_eq!(format!("{x:?}"), format!("{y:?}"), "cut at {cut}");
                if !matches!(x, Ok(Some(_))) {
                    break;
                }
            },
            (a, b) => assert_eq!(
                a.err().map(|e| e.to_string()),
                b.err().map(|e| e.to_string()),
                "cut at {cut}"
            ),
        }
    }
}

type Frames = Vec<(u64, Timestamp, LinkType, Vec<u8>, u32)>;

/// Every frame `next_frame` gives, and how reading ended.
fn frames_one_by_one(mut reader: CaptureReader) -> (Frames, String) {
    let mut frames = Vec::new();
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => frames.push(owned(&frame)),
            Ok(None) => return (frames, "ended".into()),
            Err(e) => return (frames, e.to_string()),
        }
    }
}

/// Every frame `read_frames` gives in runs of `run`, and how reading ended.
fn frames_in_runs(mut reader: CaptureReader, run: u64) -> (Frames, String) {
    let mut frames = Vec::new();
    loop {
        let (given, ended) = reader.read_frames(run, |frame| {
            frames.push(owned(frame));
            ControlFlow::Continue(())
        });
        assert!(given <= run);
        match ended {
            FramesRun::Full => assert_eq!(given, run),
            FramesRun::Stopped => panic!("nothing asked to stop"),
            FramesRun::Ended => return (frames, "ended".into()),
            FramesRun::Broke(e) => return (frames, e.to_string()),
        }
    }
}

fn owned(frame: &Frame<'_>) -> (u64, Timestamp, LinkType, Vec<u8>, u32) {
    (
        frame.number,
        frame.ts,
        frame.link,
        frame.data.to_vec(),
        frame.orig_len,
    )
}

#[test]
fn frames_in_runs_are_the_frames_one_by_one() {
    let mut files = Vec::new();
    for endianness in [FileEndianness::Little, FileEndianness::Big] {
        for resolution in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
            files.push(pcap_file(endianness, resolution, &kilobyte_packets(3000)));
            files.push(pcap_file(endianness, resolution, &two_packets()));
        }
    }
    let whole = pcap_file(
        FileEndianness::Little,
        TsResolution::MicroSecond,
        &kilobyte_packets(300),
    );
    // Cut inside a record's data and inside a record's header.
    files.push(whole[..whole.len() - 7].to_vec());
    files.push(whole[..whole.len() - 1000 - 9].to_vec());
    // An absurd length in the 101st record.
    let mut absurd = whole.clone();
    let at = 24 + 100 * (16 + 1000) + 8;
    absurd[at..at + 4].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    files.push(absurd);
    // A fraction of a second of a second or more (not framed in the loop's
    // way by any writer, but read).
    let mut late = whole.clone();
    late[24 + 4..24 + 8].copy_from_slice(&2_500_000u32.to_le_bytes());
    files.push(late);
    let mut pcapng = ethernet_pcapng(FileEndianness::Big);
    for i in 0..50u8 {
        pcapng
            .write_block(&enhanced(0, u64::from(i), 60, &[i; 60]))
            .unwrap();
    }
    files.push(pcapng.into_inner());
    for (i, bytes) in files.iter().enumerate() {
        let file = temp_capture(bytes);
        let expected = frames_one_by_one(reader(bytes.clone()).unwrap());
        assert!(!expected.0.is_empty(), "file {i}");
        for run in [1, 7, u64::MAX] {
            let mapped = CaptureReader::open(file.path()).unwrap();
            assert_eq!(frames_in_runs(mapped, run), expected, "file {i}, run {run}");
            let read = reader(bytes.clone()).unwrap();
            assert_eq!(frames_in_runs(read, run), expected, "file {i}, run {run}");
        }
        let trickled =
            CaptureReader::from_reader(Box::new(Trickle(io::Cursor::new(bytes.clone()))), "t");
        assert_eq!(frames_in_runs(trickled.unwrap(), 5), expected, "file {i}");
    }
}

#[test]
fn frames_in_runs_stop_when_asked() {
    let bytes = pcap_file(
        FileEndianness::Little,
        TsResolution::MicroSecond,
        &kilobyte_packets(100),
    );
    let file = temp_capture(&bytes);
    let mut mapped = CaptureReader::open(file.path()).unwrap();
    let mut seen = Vec::new();
    let (given, ended) = mapped.read_frames(50, |frame| {
        seen.push(frame.number);
        if frame.number == 30 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!((given, seen.len()), (30, 30));
    assert!(matches!(ended, FramesRun::Stopped));
    // Reading goes on after the frame it stopped at.
    assert_eq!(mapped.next_frame().unwrap().unwrap().number, 31);
}

// ---- pcapng ----

fn interface(linktype: DataLink, tsresol: Option<u8>) -> Block<'static> {
    Block::InterfaceDescription(InterfaceDescriptionBlock {
        linktype,
        snaplen: 0,
        options: tsresol
            .map(InterfaceDescriptionOption::IfTsResol)
            .into_iter()
            .collect(),
    })
}

/// An EPB whose raw timestamp field is `ticks` (pcap-file writes the
/// Duration's nanoseconds verbatim, whatever the interface's resolution).
fn enhanced(interface_id: u32, ticks: u64, orig_len: u32, data: &[u8]) -> Block<'_> {
    Block::EnhancedPacket(EnhancedPacketBlock {
        interface_id,
        timestamp: Duration::from_nanos(ticks),
        original_len: orig_len,
        data: Cow::Borrowed(data),
        options: vec![],
    })
}

fn pcapng_writer(endianness: FileEndianness) -> PcapNgWriter<Vec<u8>> {
    PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap()
}

/// A pcapng writer with one Ethernet interface (id 0) already described.
fn ethernet_pcapng(endianness: FileEndianness) -> PcapNgWriter<Vec<u8>> {
    let mut writer = pcapng_writer(endianness);
    writer
        .write_block(&interface(DataLink::ETHERNET, None))
        .unwrap();
    writer
}

#[test]
fn pcapng_interfaces_have_own_link_type_and_resolution() {
    for endianness in [FileEndianness::Little, FileEndianness::Big] {
        let mut writer = pcapng_writer(endianness);
        writer
            .write_block(&interface(DataLink::ETHERNET, None))
            .unwrap();
        writer
            .write_block(&interface(DataLink::LINUX_SLL, Some(9)))
            .unwrap();
        // 2^-20 s ticks
        writer
            .write_block(&interface(DataLink::RAW, Some(0x80 | 20)))
            .unwrap();
        let a = packet_data(1, 7);
        let b = packet_data(2, 8);
        let c = packet_data(3, 9);
        writer
            .write_block(&enhanced(0, 1_500_000_250, 7, &a))
            .unwrap();
        writer
            .write_block(&enhanced(1, 1_500_000_000_000_000_250, 100, &b))
            .unwrap();
        writer
            .write_block(&enhanced(2, (3 << 20) + (1 << 19), 9, &c))
            .unwrap();
        let mut reader = reader(writer.into_inner()).unwrap();
        assert_eq!(reader.format(), CaptureFormat::PcapNg);

        let first = reader.next_frame().unwrap().unwrap();
        assert_eq!(
            (first.number, first.link, first.data),
            (1, LinkType(1), &a[..])
        );
        assert_eq!(
            first.ts,
            Timestamp {
                secs: 1500,
                nanos: 250_000
            }
        );
        let second = reader.next_frame().unwrap().unwrap();
        assert_eq!((second.number, second.link), (2, LinkType(113)));
        assert_eq!((second.data, second.orig_len), (&b[..], 100));
        assert_eq!(
            second.ts,
            Timestamp {
                secs: 1_500_000_000,
                nanos: 250
            }
        );
        let third = reader.next_frame().unwrap().unwrap();
        assert_eq!(third.link, LinkType(101));
        assert_eq!(
            third.ts,
            Timestamp {
                secs: 3,
                nanos: 500_000_000
            }
        );
        assert!(reader.next_frame().unwrap().is_none());
    }
}

#[test]
fn pcapng_new_section_resets_interfaces_and_byte_order() {
    let mut writer = ethernet_pcapng(FileEndianness::Little);
    let a = packet_data(1, 4);
    writer.write_block(&enhanced(0, 0, 4, &a)).unwrap();
    let section = SectionHeaderBlock {
        endianness: FileEndianness::Big,
        ..Default::default()
    };
    writer.write_block(&Block::SectionHeader(section)).unwrap();
    writer.write_block(&interface(DataLink::RAW, None)).unwrap();
    let b = packet_data(2, 5);
    writer.write_block(&enhanced(0, 2_000_000, 5, &b)).unwrap();
    // A simple packet block: interface 0, no timestamp, length from orig_len.
    let c = packet_data(3, 6);
    writer
        .write_block(&Block::SimplePacket(SimplePacketBlock {
            original_len: 6,
            data: Cow::Borrowed(&c),
        }))
        .unwrap();

    let frames = read_all(reader(writer.into_inner()).unwrap());
    let summary: Vec<_> = frames.iter().map(|f| (f.0, f.2, f.3.clone())).collect();
    assert_eq!(
        summary,
        vec![
            (1, LinkType(1), a),
            (2, LinkType(101), b),
            (3, LinkType(101), c)
        ]
    );
    assert_eq!(frames[1].1.secs, 2);
}

#[test]
fn pcapng_unknown_interface_is_an_error() {
    let mut writer = ethernet_pcapng(FileEndianness::Little);
    let a = packet_data(1, 4);
    writer.write_block(&enhanced(0, 0, 4, &a)).unwrap();
    // The writer refuses unknown interface ids, so write the block raw.
    let mut body = Vec::new();
    for field in [5u32, 0, 0, 4, 4] {
        body.extend_from_slice(&field.to_le_bytes());
    }
    body.extend_from_slice(&a);
    let len = (body.len() + 12) as u32;
    let offset_of_bad_block = writer.get_ref().len() as u64;
    writer
        .write_raw_block(&RawBlock {
            type_: 6,
            initial_len: len,
            body: Cow::Owned(body),
            trailer_len: len,
        })
        .unwrap();
    let mut reader = reader(writer.into_inner()).unwrap();
    reader.next_frame().unwrap().unwrap();
    match reader.next_frame() {
        Err(CaptureError::UnknownInterface {
            frame,
            offset,
            interface_id,
            defined,
        }) => assert_eq!(
            (frame, offset, interface_id, defined),
            (2, offset_of_bad_block, 5, 1)
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn pcapng_caplen_beyond_block_is_absurd() {
    let mut writer = ethernet_pcapng(FileEndianness::Big);
    let epb_at = writer.get_ref().len();
    let a = packet_data(1, 8);
    writer.write_block(&enhanced(0, 0, 8, &a)).unwrap();
    let mut bytes = writer.into_inner();
    // caplen sits after type, length, interface id and the timestamp.
    let caplen_at = epb_at + 8 + 12;
    bytes[caplen_at..caplen_at + 4].copy_from_slice(&9000u32.to_be_bytes());
    match reader(bytes).unwrap().next_frame() {
        Err(CaptureError::AbsurdCaplen {
            frame: 1,
            caplen: 9000,
            limit: 8,
            offset,
        }) => assert_eq!(offset, epb_at as u64),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn pcapng_bad_block_length_is_corrupt() {
    let mut writer = ethernet_pcapng(FileEndianness::Little);
    let idb_at = writer.get_ref().len();
    writer
        .write_block(&interface(DataLink::ETHERNET, None))
        .unwrap();
    let mut bytes = writer.into_inner();
    bytes[idb_at + 4..idb_at + 8].copy_from_slice(&13u32.to_le_bytes());
    assert!(matches!(
        reader(bytes).unwrap().next_frame(),
        Err(CaptureError::CorruptBlock {
            block_type: 1,
            len: 13,
            ..
        })
    ));
}

#[test]
fn pcapng_truncated_block_is_reported() {
    let mut writer = ethernet_pcapng(FileEndianness::Little);
    let a = packet_data(1, 40);
    writer.write_block(&enhanced(0, 0, 40, &a)).unwrap();
    let epb_at = writer.get_ref().len() as u64;
    writer.write_block(&enhanced(0, 0, 40, &a)).unwrap();
    let mut bytes = writer.into_inner();
    bytes.truncate(bytes.len() - 1);
    let mut reader = reader(bytes).unwrap();
    reader.next_frame().unwrap().unwrap();
    assert!(matches!(
        reader.next_frame(),
        Err(CaptureError::TruncatedRecord { frame: 2, offset, need: 72, have: 71 }) if offset == epb_at
    ));
}

#[test]
fn pcapng_out_of_range_tsresol_is_rejected() {
    let mut writer = pcapng_writer(FileEndianness::Little);
    writer
        .write_block(&interface(DataLink::ETHERNET, Some(40)))
        .unwrap();
    assert!(matches!(
        reader(writer.into_inner()).unwrap().next_frame(),
        Err(CaptureError::BadTsResolution { if_tsresol: 40, .. })
    ));
}

#[test]
fn tsresol_forms() {
    assert_eq!(pcapng::ticks_per_sec(6), Some(1_000_000));
    assert_eq!(pcapng::ticks_per_sec(0x80 | 10), Some(1024));
    assert_eq!(pcapng::ticks_per_sec(20), None);
    assert_eq!(pcapng::ticks_per_sec(0x80 | 64), None);
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Arbitrary bytes after a valid file header never panic, and the
        /// reader ends (frame count is bounded by the input size).
        #[test]
        fn garbage_records_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), ng in any::<bool>()) {
            let mut bytes = if ng {
                let mut writer = pcapng_writer(FileEndianness::Little);
                writer.write_block(&interface(DataLink::ETHERNET, None)).unwrap();
                writer.into_inner()
            } else {
                pcap_file(FileEndianness::Little, TsResolution::MicroSecond, &[])
            };
            bytes.extend_from_slice(&body);
            let mut reader = reader(bytes).unwrap();
            let mut frames = 0;
            while let Ok(Some(_)) = reader.next_frame() {
                frames += 1;
                prop_assert!(frames <= body.len());
            }
        }
    }
}
