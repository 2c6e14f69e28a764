//! Compressed captures: gzip, zstd and lz4 (frame format), recognised by
//! their magic bytes, not by the file name (as Wireshark does), and
//! decompressed on a second thread so that decompression and analysis
//! run side by side.
//!
//! The decompressing thread hands over fixed-size chunks through a
//! bounded channel (and gets them back for reuse), so memory stays at a
//! few chunks whatever the size of the capture. The capture reader takes
//! each chunk as its buffer, as it is: the bytes are decompressed once
//! into it and not copied again. A corrupt or truncated
//! compressed stream is a read error at the point where it breaks: the
//! capture reader reports it as an early end, like a truncated capture,
//! after every whole record before it.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

/// A compression format tcpshut reads, or one it can only name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Lz4,
    /// Recognised, to be named in messages, but not read.
    Bzip2,
    Xz,
}

impl Compression {
    /// The compression `head` (a file's first bytes) starts with, if any.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        const MAGICS: [(&[u8], Compression); 5] = [
            (&[0x1f, 0x8b], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
            (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4),
            (b"BZh", Compression::Bzip2),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
        ];
        MAGICS
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map(|&(_, kind)| kind)
    }

    /// Its name in messages ("a gzip-compressed file").
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }

    /// Whether tcpshut decompresses it.
    pub fn supported(self) -> bool {
        matches!(
            self,
            Compression::Gzip | Compression::Zstd | Compression::Lz4
        )
    }

    /// A decompressing reader over `compressed`, on this thread.
    pub fn decoder(self, compressed: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            // Several gzip members one after the other (`cat a.gz b.gz`,
            // pigz) are one stream, as gzip -d reads them.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(compressed)?),
            Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(compressed)),
            Compression::Bzip2 | Compression::Xz => {
                return Err(io::Error::other(format!(
                    "{}-compressed captures are not read (gzip, zstd and lz4 are)",
                    self.name()
                )))
            }
        })
    }

    /// The chunks of `compressed` decompressed on a thread of its own,
    /// and how much of `compressed` that thread has consumed.
    pub(crate) fn threaded(
        self,
        compressed: Box<dyn Read + Send>,
    ) -> io::Result<(Threaded, Consumed)> {
        let consumed = Consumed::default();
        let counted = Box::new(Counted {
            inner: compressed,
            consumed: consumed.clone(),
        });
        let decoder = self.decoder(counted)?;
        Ok((Threaded::spawn(decoder, self)?, consumed))
    }
}

/// How many compressed bytes a decompressor has taken from its input so
/// far: progress through a compressed capture is counted in the file's
/// own bytes, as its decompressed size is unknown until the end.
#[derive(Clone, Debug, Default)]
pub struct Consumed(Arc<AtomicU64>);

impl Consumed {
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The compressed input, counted as the decompressor reads it.
struct Counted {
    inner: Box<dyn Read + Send>,
    consumed: Consumed,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes per chunk handed from the decompressing thread: large enough
/// that the hand-over costs nothing, small enough to stay in the caches.
const CHUNK_LEN: usize = 256 * 1024;
/// Chunks in flight between the threads (memory: this many chunks, plus
/// one on each side).
const CHUNKS_IN_FLIGHT: usize = 4;
/// Bytes left free in front of each chunk's data: the reader moves the
/// unread end of its previous chunk (the start of a record) there and
/// reads on in place. Room for a record of the largest IP packet (64 KB,
/// segments merged by GRO included) with its record or block header; a
/// longer one is copied along with the chunk.
const HEADROOM: usize = 96 * 1024;

/// The reading side of a decompressing thread.
pub(crate) struct Threaded {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    /// The thread has said its last word (end, or an error).
    ended: bool,
}

impl Threaded {
    fn spawn(mut decoder: Box<dyn Read + Send>, kind: Compression) -> io::Result<Self> {
        let (full_tx, full) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (empty, empty_rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
        std::thread::Builder::new()
            .name(format!("tcpshut-{}", kind.name()))
            .spawn(move || loop {
                let mut chunk = empty_rx.try_recv().unwrap_or_default();
                chunk.resize(HEADROOM + CHUNK_LEN, 0);
                let (n, error) = fill(&mut *decoder, &mut chunk[HEADROOM..]);
                chunk.truncate(HEADROOM + n);
                // The reader is gone (it stopped early): so is the work.
                if n > 0 && full_tx.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Some(e) = error {
                    let why = format!("{}-compressed stream: {e}", kind.name());
                    let _ = full_tx.send(Err(io::Error::new(e.kind(), why)));
                    return;
                }
                if n == 0 {
                    let _ = full_tx.send(Ok(Vec::new()));
                    return;
                }
            })?;
        Ok(Threaded {
            full,
            empty,
            ended: false,
        })
    }

    /// Reads on past `buf[window]`, the bytes not yet used: the next chunk
    /// becomes `buf`, with those bytes moved in front of its data, and the
    /// old `buf` goes back to the thread for reuse. The new window, or
    /// `None` at the end of the stream (`buf` unchanged). A failure comes
    /// after every chunk before it.
    pub(crate) fn read_on(
        &mut self,
        buf: &mut Vec<u8>,
        window: Range<usize>,
    ) -> io::Result<Option<Range<usize>>> {
        if self.ended {
            return Ok(None);
        }
        let mut chunk = match self.full.recv() {
            Ok(Ok(chunk)) if !chunk.is_empty() => chunk,
            Ok(Ok(_)) | Err(_) => {
                self.ended = true;
                return Ok(None);
            }
            Ok(Err(err)) => {
                self.ended = true;
                return Err(err);
            }
        };
        let keep = window.len();
        let window = if keep <= HEADROOM {
            let from = HEADROOM - keep;
            chunk[from..HEADROOM].copy_from_slice(&buf[window]);
            std::mem::swap(buf, &mut chunk);
            from..buf.len()
        } else {
            // A record longer than the headroom: the chunk is copied.
            buf.copy_within(window, 0);
            buf.truncate(keep);
            buf.extend_from_slice(&chunk[HEADROOM..]);
            0..buf.len()
        };
        // Handed back for reuse; if the thread has ended, dropped.
        let _ = self.empty.try_send(chunk);
        Ok(Some(window))
    }
}

/// Reads into `buf` until it is full, the input ends or fails; how much
/// it got, and the failure (which comes after the bytes before it).
pub(crate) fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut have = 0;
    while have < buf.len() {
        match reader.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (have, Some(e)),
        }
    }
    (have, None)
}

/// `bytes` compressed the way the common tools write them (tests only:
/// the unit tests here, and `testing::compress` for the integration
/// tests): gzip at the default level, zstd level 3 with a checksum (as the
/// zstd tool writes), lz4 frames of 64 KB blocks (the lz4 tool writes
/// 4 MB ones; small blocks make a cut lose one).
#[cfg(any(test, feature = "testing"))]
pub fn compress(kind: Compression, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match kind {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        }
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
            enc.include_checksum(true).unwrap();
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        }
        Compression::Lz4 => {
            let info =
                lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max64KB);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        }
        other => panic!("{other:?} is not written here"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `chunks` gives, as the capture reader takes it: each
    /// time all but the last `keep(round)` bytes of the window used.
    fn read_to_end_keeping(
        mut chunks: Threaded,
        keep: impl Fn(usize) -> usize,
    ) -> (Vec<u8>, io::Result<()>) {
        let (mut buf, mut window, mut out) = (Vec::new(), 0..0, Vec::new());
        for round in 0.. {
            let kept = keep(round).min(window.len());
            out.extend_from_slice(&buf[window.start..window.end - kept]);
            match chunks.read_on(&mut buf, window.end - kept..window.end) {
                Ok(Some(next)) => window = next,
                Ok(None) => {
                    out.extend_from_slice(&buf[window.end - kept..window.end]);
                    return (out, Ok(()));
                }
                Err(e) => return (out, Err(e)),
            }
        }
        unreachable!()
    }

    fn read_to_end(chunks: Threaded) -> io::Result<Vec<u8>> {
        let (out, result) = read_to_end_keeping(chunks, |_| 0);
        result.map(|_| out)
    }

    const READ: [Compression; 3] = [Compression::Gzip, Compression::Zstd, Compression::Lz4];

    #[test]
    fn round_trips_across_many_chunks() {
        let plain: Vec<u8> = (0..3 * CHUNK_LEN + 12345)
            .map(|i| (i * 7 / 3) as u8)
            .collect();
        for kind in READ {
            let packed = compress(kind, &plain);
            assert_eq!(Compression::sniff(&packed), Some(kind));
            let len = packed.len() as u64;
            let (threaded, consumed) = kind.threaded(Box::new(io::Cursor::new(packed))).unwrap();
            assert!(read_to_end(threaded).unwrap() == plain, "{kind:?}");
            assert_eq!(consumed.bytes(), len, "{kind:?}: all of the input consumed");
        }
    }

    #[test]
    fn unread_bytes_carry_over_whether_or_not_they_fit_the_headroom() {
        let plain: Vec<u8> = (0..6 * CHUNK_LEN + 777).map(|i| (i % 251) as u8).collect();
        let packed = compress(Compression::Lz4, &plain);
        // Nothing, a record, the headroom, more than it, more than a chunk.
        let keeps = [0, 1500, HEADROOM, HEADROOM + 1, CHUNK_LEN + 10];
        let chunks = Compression::Lz4
            .threaded(Box::new(io::Cursor::new(packed)))
            .unwrap()
            .0;
        let (out, result) = read_to_end_keeping(chunks, |round| keeps[round % keeps.len()]);
        result.unwrap();
        assert!(out == plain, "{} bytes read of {}", out.len(), plain.len());
    }

    #[test]
    fn a_cut_or_corrupt_stream_gives_its_bytes_then_an_error() {
        let plain: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for kind in READ {
            let packed = compress(kind, &plain);
            let cut = packed[..packed.len() / 2].to_vec();
            let chunks = kind.threaded(Box::new(io::Cursor::new(cut))).unwrap().0;
            let (got, result) = read_to_end_keeping(chunks, |_| 0);
            let err = result.unwrap_err();
            assert!(err.to_string().starts_with(kind.name()), "{err}");
            assert!(plain.starts_with(&got), "{kind:?}: a prefix of the data");

            let mut flipped = packed.clone();
            let middle = flipped.len() / 2;
            for byte in &mut flipped[middle..middle + 64] {
                *byte ^= 0x5a;
            }
            // lz4 frames carry no checksum by default: corruption may pass
            // (zstd's and gzip's checksums catch it at the latest).
            let reader = kind.threaded(Box::new(io::Cursor::new(flipped))).unwrap().0;
            let read = read_to_end(reader);
            assert!(
                kind == Compression::Lz4 || read.is_err(),
                "{kind:?}: corruption is seen"
            );
        }
    }

    #[test]
    fn names_formats_it_does_not_read() {
        assert_eq!(Compression::sniff(b"BZh91AY"), Some(Compression::Bzip2));
        assert_eq!(
            Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            Some(Compression::Xz)
        );
        assert_eq!(Compression::sniff(&[0xd4, 0xc3, 0xb2, 0xa1]), None);
        let err = Compression::Xz
            .decoder(Box::new(io::empty()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("xz-compressed"), "{err}");
    }
}
