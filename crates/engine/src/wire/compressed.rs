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
            Compression::Lz4 => Box::new(Chunked::new(Lz4Frames::new(compressed))),
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
        let (filler, in_flight): (Box<dyn FillChunk>, usize) = match self {
            // Whole blocks decompressed straight into the chunk: a chunk
            // holds up to 4 MB, so fewer of them are in flight.
            Compression::Lz4 => (Box::new(Lz4Frames::new(counted)), 1),
            _ => (Box::new(Streamed(self.decoder(counted)?)), CHUNKS_IN_FLIGHT),
        };
        Ok((Threaded::spawn(filler, self, in_flight)?, consumed))
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
/// Chunks in flight between the threads for gzip and zstd (memory: this
/// many chunks, plus one on each side, plus one changing hands, 6.7 MB;
/// lz4's larger chunks have one in flight: `Lz4Frames`). Three threads
/// share two cores, and the more the decompressing thread may run ahead,
/// the less often a core waits for the scheduler to wake the thread that
/// could use it: the bench capture's `.zst` took 0.352 s with 4, 0.311 s
/// with 16 and 0.313 s with 32 (`.gz` 0.327, 0.321 s).
const CHUNKS_IN_FLIGHT: usize = 16;
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
    fn spawn(
        mut decoder: Box<dyn FillChunk>,
        kind: Compression,
        in_flight: usize,
    ) -> io::Result<Self> {
        let (full_tx, full) = mpsc::sync_channel(in_flight);
        let (empty, empty_rx) = mpsc::sync_channel::<Vec<u8>>(in_flight + 2);
        std::thread::Builder::new()
            .name(format!("tcpshut-{}", kind.name()))
            .spawn(move || loop {
                let mut chunk = empty_rx.try_recv().unwrap_or_default();
                let error = decoder.fill_chunk(&mut chunk);
                let n = chunk.len() - HEADROOM;
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

/// What the decompressing thread runs: one call fills one chunk.
trait FillChunk: Send {
    /// Decompresses into `chunk` after its [`HEADROOM`] (whatever its
    /// length and contents were: chunks are reused), leaving its length at
    /// the headroom plus the bytes written; the failure, if any, comes
    /// after those bytes. No bytes and no failure: the end.
    fn fill_chunk(&mut self, chunk: &mut Vec<u8>) -> Option<io::Error>;
}

/// A streaming decoder (gzip, zstd): its output copied from its window
/// into each chunk of [`CHUNK_LEN`].
struct Streamed(Box<dyn Read + Send>);

impl FillChunk for Streamed {
    fn fill_chunk(&mut self, chunk: &mut Vec<u8>) -> Option<io::Error> {
        chunk.resize(HEADROOM + CHUNK_LEN, 0);
        let (n, error) = fill(&mut *self.0, &mut chunk[HEADROOM..]);
        chunk.truncate(HEADROOM + n);
        error
    }
}

/// A [`FillChunk`] read as a plain reader on the caller's thread (the
/// first bytes of a compressed file, to recognise what it holds).
struct Chunked<F> {
    filler: F,
    chunk: Vec<u8>,
    /// Where the unread bytes of `chunk` start.
    at: usize,
    /// The failure that came after `chunk`'s bytes.
    error: Option<io::Error>,
}

impl<F: FillChunk> Chunked<F> {
    fn new(filler: F) -> Self {
        Chunked {
            filler,
            chunk: Vec::new(),
            at: 0,
            error: None,
        }
    }
}

impl<F: FillChunk> Read for Chunked<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.chunk.len() {
            if let Some(error) = self.error.take() {
                return Err(error);
            }
            self.error = self.filler.fill_chunk(&mut self.chunk);
            self.at = HEADROOM;
            if self.chunk.len() == HEADROOM {
                return self.error.take().map_or(Ok(0), Err);
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The LZ4 frame format (lz4's `doc/lz4_Frame_format.md`), read here
/// rather than by `lz4_flex::frame::FrameDecoder` so that each block is
/// decompressed straight into the chunk: that decoder decompresses into
/// a buffer of its own and copies out of it, a copy of every byte (a
/// third of the decompressing thread's instructions). `lz4_flex::block`
/// decompresses each block.
///
/// A chunk holds whole blocks: [`CHUNK_LEN`], or one block when a frame's
/// blocks are larger (up to 4 MB, as the lz4 tool writes them), so one
/// chunk is in flight: at most four chunks of 4 MB + [`HEADROOM`] (one
/// filling, one queued, the reader's, one changing hands), the compressed
/// block being read (up to 4 MB) and, for linked blocks, the last 64 KB
/// decompressed. Frames follow one another (`cat a.lz4 b.lz4`); skippable
/// frames are skipped; a frame's header checksum, its block checksums and
/// content checksum (when its flags say it has them) and its content size
/// are checked, as the lz4 tool does. Frames with a dictionary id (which
/// need a dictionary given from outside) and the legacy format are not
/// read.
struct Lz4Frames {
    input: Box<dyn Read + Send>,
    /// The frame being read, once its header is.
    frame: Option<Lz4Frame>,
    /// The compressed block being read.
    block: Vec<u8>,
    /// Linked blocks: the frame's last [`LZ4_WINDOW`] decompressed bytes,
    /// which the next block may refer to.
    window: Vec<u8>,
}

/// What a frame's header says, and what has been read of it.
struct Lz4Frame {
    block_max: usize,
    linked: bool,
    block_checksums: bool,
    content_checksum: Option<twox_hash::XxHash32>,
    content_size: Option<u64>,
    decompressed: u64,
}

/// How far back an lz4 match may reach.
const LZ4_WINDOW: usize = 64 * 1024;
const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_SKIPPABLE: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads `buf` whole, or nothing at the end of the input (`Ok(false)`);
/// an end part of the way is an error.
fn read_all_or_none(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let (n, error) = fill(input, buf);
    match error {
        Some(e) => Err(e),
        None if n == 0 => Ok(false),
        None if n < buf.len() => Err(io::ErrorKind::UnexpectedEof.into()),
        None => Ok(true),
    }
}

fn read_u32(input: &mut dyn Read) -> io::Result<u32> {
    let mut word = [0u8; 4];
    input.read_exact(&mut word)?;
    Ok(u32::from_le_bytes(word))
}

fn check_xxh32(what: &str, data: &[u8], expected: u32) -> io::Result<()> {
    let found = twox_hash::XxHash32::oneshot(0, data);
    if found == expected {
        Ok(())
    } else {
        Err(invalid(format!("lz4 {what} checksum mismatch")))
    }
}

impl Lz4Frames {
    fn new(input: Box<dyn Read + Send>) -> Self {
        Lz4Frames {
            input,
            frame: None,
            block: Vec::new(),
            window: Vec::new(),
        }
    }

    /// Reads up to the next frame's header; `false` at the end of the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let mut magic = [0u8; 4];
            if !read_all_or_none(&mut *self.input, &mut magic)? {
                return Ok(false);
            }
            match u32::from_le_bytes(magic) {
                LZ4_MAGIC => break,
                m if LZ4_SKIPPABLE.contains(&m) => {
                    let len = u64::from(read_u32(&mut *self.input)?);
                    let skipped = io::copy(&mut (&mut *self.input).take(len), &mut io::sink())?;
                    if skipped < len {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                LZ4_LEGACY_MAGIC => {
                    return Err(invalid("legacy lz4 format (lz4 -l): not read".into()))
                }
                m => return Err(invalid(format!("not an lz4 frame (magic {m:#010x})"))),
            }
        }
        // FLG, BD, up to 8 bytes of content size and 4 of dictionary id,
        // then the header checksum.
        let mut header = [0u8; 15];
        self.input.read_exact(&mut header[..2])?;
        let (flg, bd) = (header[0], header[1]);
        if flg >> 6 != 0b01 {
            return Err(invalid(format!("lz4 frame version {} not read", flg >> 6)));
        }
        if flg & 0b10 != 0 || bd & 0b1000_1111 != 0 {
            return Err(invalid("lz4 frame header's reserved bits set".into()));
        }
        let block_max = match bd >> 4 {
            4 => 64 * 1024,
            5 => 256 * 1024,
            6 => 1024 * 1024,
            7 => 4 * 1024 * 1024,
            code => return Err(invalid(format!("lz4 block size code {code} not defined"))),
        };
        let mut len = 2;
        let has_size = flg & 0b1000 != 0;
        if has_size {
            len += 8;
        }
        if flg & 0b1 != 0 {
            len += 4;
        }
        self.input.read_exact(&mut header[2..len + 1])?;
        if (twox_hash::XxHash32::oneshot(0, &header[..len]) >> 8) as u8 != header[len] {
            return Err(invalid("lz4 frame header checksum mismatch".into()));
        }
        if flg & 0b1 != 0 {
            return Err(invalid(
                "lz4 frame needs a dictionary (dictionary id set): not read".into(),
            ));
        }
        let content_size =
            has_size.then(|| u64::from_le_bytes(header[2..10].try_into().expect("8 bytes")));
        self.window.clear();
        self.frame = Some(Lz4Frame {
            block_max,
            linked: flg & 0b10_0000 == 0,
            block_checksums: flg & 0b1_0000 != 0,
            content_checksum: (flg & 0b100 != 0).then(|| twox_hash::XxHash32::with_seed(0)),
            content_size,
            decompressed: 0,
        });
        Ok(true)
    }

    /// Reads the frame's next block into `out` (at least a block's
    /// maximum size long): how many bytes it decompressed to, or `None`
    /// at the frame's end mark.
    fn next_block(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let frame = self.frame.as_mut().expect("inside a frame");
        let size = read_u32(&mut *self.input)?;
        if size == 0 {
            if let Some(hasher) = &frame.content_checksum {
                let expected = read_u32(&mut *self.input)?;
                if hasher.finish_32() != expected {
                    return Err(invalid("lz4 content checksum mismatch".into()));
                }
            }
            if frame.content_size.is_some_and(|s| s != frame.decompressed) {
                return Err(invalid(format!(
                    "lz4 frame of {} bytes where its header says {}",
                    frame.decompressed,
                    frame.content_size.unwrap_or_default()
                )));
            }
            self.frame = None;
            return Ok(None);
        }
        let stored = size & 0x8000_0000 != 0;
        let len = (size & 0x7fff_ffff) as usize;
        if len > frame.block_max {
            return Err(invalid(format!(
                "lz4 block of {len} bytes in a frame of {}-byte blocks",
                frame.block_max
            )));
        }
        let n = if stored {
            self.input.read_exact(&mut out[..len])?;
            if frame.block_checksums {
                check_xxh32("block", &out[..len], read_u32(&mut *self.input)?)?;
            }
            len
        } else {
            // Grown to the largest block, never shrunk: no zeroing again.
            if self.block.len() < len {
                self.block.resize(len, 0);
            }
            let block = &mut self.block[..len];
            self.input.read_exact(block)?;
            if frame.block_checksums {
                check_xxh32("block", block, read_u32(&mut *self.input)?)?;
            }
            let out = &mut out[..frame.block_max];
            if frame.linked {
                lz4_flex::block::decompress_into_with_dict(block, out, &self.window)
            } else {
                lz4_flex::block::decompress_into(block, out)
            }
            .map_err(|e| invalid(format!("lz4 block: {e}")))?
        };
        let out = &out[..n];
        if let Some(hasher) = &mut frame.content_checksum {
            use std::hash::Hasher;
            hasher.write(out);
        }
        frame.decompressed += n as u64;
        if frame.linked {
            // The next block's dictionary: the last 64 KB of the frame.
            let keep = LZ4_WINDOW.saturating_sub(n).min(self.window.len());
            self.window.drain(..self.window.len() - keep);
            self.window
                .extend_from_slice(&out[n.saturating_sub(LZ4_WINDOW)..]);
        }
        Ok(Some(n))
    }
}

impl FillChunk for Lz4Frames {
    fn fill_chunk(&mut self, chunk: &mut Vec<u8>) -> Option<io::Error> {
        let mut have = 0;
        let error = loop {
            if self.frame.is_none() {
                match self.next_frame() {
                    Ok(true) => {}
                    Ok(false) => break None,
                    Err(e) => break Some(e),
                }
            }
            let block_max = self.frame.as_ref().map_or(0, |f| f.block_max);
            // Whole blocks only: the chunk ends where the next might not fit.
            if have > 0 && have + block_max > CHUNK_LEN.max(block_max) {
                break None;
            }
            let end = HEADROOM + have + block_max;
            if have == 0 && chunk.capacity() < end {
                // Zeroed by the allocator (fresh pages), not by a memset
                // of up to 4 MB.
                *chunk = vec![0; end];
            } else if chunk.len() < end {
                chunk.resize(end, 0);
            }
            match self.next_block(&mut chunk[HEADROOM + have..end]) {
                Ok(Some(n)) => have += n,
                Ok(None) => {}
                Err(e) => break Some(e),
            }
        };
        chunk.truncate(HEADROOM + have);
        if chunk.len() < HEADROOM {
            chunk.resize(HEADROOM, 0);
        }
        error
    }
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

    /// `bytes` as one lz4 frame written as `info` says.
    fn lz4_frame(info: lz4_flex::frame::FrameInfo, bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// What the decompressing thread gives of lz4 `packed`, and how it ends.
    fn read_lz4(packed: Vec<u8>) -> (Vec<u8>, io::Result<()>) {
        let chunks = Compression::Lz4
            .threaded(Box::new(io::Cursor::new(packed)))
            .unwrap()
            .0;
        read_to_end_keeping(chunks, |_| 0)
    }

    fn lz4_plain(len: usize) -> Vec<u8> {
        // Compressible, with matches reaching back across blocks.
        (0..len)
            .map(|i| ((i / 3) % 251) as u8 ^ (i >> 17) as u8)
            .collect()
    }

    /// An lz4 frame's header length (magic to checksum), from its flags.
    fn lz4_header_len(packed: &[u8]) -> usize {
        7 + if packed[4] & 0b1000 != 0 { 8 } else { 0 }
    }

    #[test]
    fn lz4_frames_of_every_kind_read_whole() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let plain = lz4_plain(9 * 1024 * 1024 + 4321);
        let sizes = [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ];
        for size in sizes {
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                let info = FrameInfo::new()
                    .block_size(size)
                    .block_mode(mode)
                    .block_checksums(true)
                    .content_checksum(true)
                    .content_size(Some(plain.len() as u64));
                let (got, result) = read_lz4(lz4_frame(info, &plain));
                result.unwrap();
                assert!(got == plain, "{size:?} {mode:?}");
            }
        }
    }

    #[test]
    fn lz4_frames_follow_one_another_and_skippable_frames_are_skipped() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let plain = lz4_plain(3 * 1024 * 1024);
        let (a, b) = plain.split_at(1_000_000);
        let skippable = |len: u32| {
            let mut frame = 0x184D_2A53u32.to_le_bytes().to_vec();
            frame.extend(len.to_le_bytes());
            frame.extend(vec![0xee; len as usize]);
            frame
        };
        let mut packed = skippable(10);
        packed.extend(lz4_frame(
            FrameInfo::new().block_size(BlockSize::Max64KB),
            a,
        ));
        packed.extend(skippable(0));
        packed.extend(lz4_frame(
            FrameInfo::new()
                .block_size(BlockSize::Max4MB)
                .block_mode(BlockMode::Linked),
            b,
        ));
        packed.extend(skippable(70_000));
        let (got, result) = read_lz4(packed);
        result.unwrap();
        assert!(got == plain);
    }

    #[test]
    fn lz4_damage_gives_the_bytes_before_it_then_an_error() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let plain = lz4_plain(300 * 1024);
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Linked)
            .block_checksums(true)
            .content_checksum(true);
        let good = lz4_frame(info, &plain);
        let first_block = lz4_header_len(&good);
        let block_len = |at: usize| {
            u32::from_le_bytes(good[at..at + 4].try_into().unwrap()) as usize & 0x7fff_ffff
        };
        // Where the second block starts (size, data, checksum).
        let second_block = first_block + 4 + block_len(first_block) + 4;
        let last = good.len() - 4;
        type Damage = (&'static str, Box<dyn Fn(&mut Vec<u8>)>, usize, &'static str);
        let cases: [Damage; 8] = [
            (
                "header checksum",
                Box::new(|p| p[6] ^= 1),
                0,
                "header checksum",
            ),
            ("reserved bit", Box::new(|p| p[5] |= 1), 0, "reserved"),
            (
                "block cut short",
                Box::new(move |p| p.truncate(second_block + 10)),
                64 * 1024,
                "",
            ),
            (
                "block larger than the frame's blocks",
                Box::new(move |p| p[second_block + 2] = 0x10),
                64 * 1024,
                "lz4 block of",
            ),
            (
                "block checksum",
                Box::new(move |p| p[second_block + 20] ^= 0x40),
                64 * 1024,
                "block checksum",
            ),
            (
                "content checksum",
                Box::new(move |p| p[last] ^= 1),
                plain.len(),
                "content checksum",
            ),
            (
                "not a frame after the first",
                Box::new(|p| p.extend_from_slice(b"garbage!")),
                plain.len(),
                "not an lz4 frame",
            ),
            (
                "a dictionary id",
                Box::new(|p| {
                    // FLG with the dictionary bit, BD, a dictionary id, and
                    // the header checksum that goes with them.
                    let mut header = vec![0x64 | 1, 0x40, 1, 2, 3, 4];
                    let hc = (twox_hash::XxHash32::oneshot(0, &header) >> 8) as u8;
                    header.push(hc);
                    p.truncate(4);
                    p.extend(header);
                }),
                0,
                "dictionary",
            ),
        ];
        for (what, damage, whole, message) in cases {
            let mut packed = good.clone();
            damage(&mut packed);
            let (got, result) = read_lz4(packed);
            let err = result.expect_err(what);
            assert!(err.to_string().contains(message), "{what}: {err}");
            assert_eq!(got.len(), whole, "{what}: the whole blocks before it");
            assert!(got == plain[..whole], "{what}");
        }
    }

    #[test]
    fn an_lz4_stream_cut_anywhere_gives_a_prefix_then_an_error() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let plain = lz4_plain(200 * 1024);
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(mode)
                .content_checksum(true);
            let packed = lz4_frame(info, &plain);
            for cut in (1..packed.len()).step_by(packed.len() / 97) {
                let (got, result) = read_lz4(packed[..cut].to_vec());
                assert!(result.is_err(), "{mode:?}, cut at {cut}");
                assert!(plain.starts_with(&got), "{mode:?}, cut at {cut}");
            }
        }
    }

    #[test]
    fn lz4_chunks_hold_whole_blocks_and_carry_unread_bytes_over() {
        use lz4_flex::frame::{BlockSize, FrameInfo};
        let plain = lz4_plain(9 * 1024 * 1024 + 777);
        let packed = lz4_frame(FrameInfo::new().block_size(BlockSize::Max4MB), &plain);
        let chunks = Compression::Lz4
            .threaded(Box::new(io::Cursor::new(packed)))
            .unwrap()
            .0;
        let keeps = [0, 1500, HEADROOM, HEADROOM + 1, CHUNK_LEN + 10];
        let (out, result) = read_to_end_keeping(chunks, |round| keeps[round % keeps.len()]);
        result.unwrap();
        assert!(out == plain, "{} bytes read of {}", out.len(), plain.len());

        let mut filler = Lz4Frames::new(Box::new(io::Cursor::new(lz4_frame(
            FrameInfo::new().block_size(BlockSize::Max64KB),
            &plain[..CHUNK_LEN + 1],
        ))));
        let mut chunk = Vec::new();
        assert!(filler.fill_chunk(&mut chunk).is_none());
        assert_eq!(chunk.len(), HEADROOM + CHUNK_LEN, "four 64 KB blocks");
        assert!(filler.fill_chunk(&mut chunk).is_none());
        assert_eq!(chunk.len(), HEADROOM + 1, "then the last byte's block");
        assert!(filler.fill_chunk(&mut chunk).is_none());
        assert_eq!(chunk.len(), HEADROOM, "then the end");
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
