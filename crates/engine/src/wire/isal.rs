//! gzip decompression with ISA-L's igzip, where the build found the
//! library (`build.rs`): the fastest streaming decoder measured, 0.16-0.23
//! s of CPU for the bench capture's gzip where zlib-rs takes 0.22-0.30 s
//! (docs/performance.md, "Sixth round"); on two cores a gzip capture's
//! decompression competes with annotate's two threads for CPU.
//!
//! The inflate state is allocated and driven by a small C file
//! (`csrc/isal_gzip.c`) compiled against the installed header, so its
//! layout never has to be restated here. The library is loaded at run
//! time ([`available`]): a binary built with ISA-L runs where it is
//! missing, with zlib-rs. Several gzip members one after the other are
//! one stream, as `gzip -d` (and flate2's `MultiGzDecoder`) read them.

use std::io::{self, Read};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// ISA-L's inflate state (opaque: only the C file sees inside).
#[repr(C)]
struct InflateState {
    _private: [u8; 0],
}

extern "C" {
    fn tcpshut_isal_load() -> i32;
    fn tcpshut_isal_new() -> *mut InflateState;
    fn tcpshut_isal_free(state: *mut InflateState);
    fn tcpshut_isal_reset(state: *mut InflateState);
    fn tcpshut_isal_inflate(
        state: *mut InflateState,
        input: *const u8,
        in_len: u32,
        in_used: *mut u32,
        out: *mut u8,
        out_len: u32,
        out_made: *mut u32,
        finished: *mut i32,
    ) -> i32;
}

/// Whether ISA-L's library is installed (loaded on the first call, once
/// for the process).
pub fn available() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    // SAFETY: the C side's loader runs once, before any other call to it
    // (every other call is made by a `GzDecoder`, made only after this).
    *LOADED.get_or_init(|| unsafe { tcpshut_isal_load() } == 1)
}

/// Compressed bytes read from the source at a time.
const INPUT_LEN: usize = 128 * 1024;

/// A gzip stream (one member or several) decompressed by ISA-L.
pub struct GzDecoder {
    source: Box<dyn Read + Send>,
    state: NonNull<InflateState>,
    input: Box<[u8]>,
    /// Compressed bytes not yet taken: `input[start..end]`.
    start: usize,
    end: usize,
    /// The source has ended.
    source_ended: bool,
    /// The current member is finished, its trailer checked.
    member_finished: bool,
}

// SAFETY: the state is owned by this decoder alone and only touched
// through `&mut self`; ISA-L keeps no thread-local data.
unsafe impl Send for GzDecoder {}

impl GzDecoder {
    pub fn new(source: Box<dyn Read + Send>) -> io::Result<Self> {
        if !available() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ISA-L's library (libisal.so.2) is not installed",
            ));
        }
        // SAFETY: allocates and initialises a state, or returns null.
        let state = NonNull::new(unsafe { tcpshut_isal_new() })
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "no memory for ISA-L"))?;
        Ok(GzDecoder {
            source,
            state,
            input: vec![0; INPUT_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
            source_ended: false,
            member_finished: false,
        })
    }

    /// Reads more compressed bytes when all are taken; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        if self.source_ended {
            return Ok(false);
        }
        loop {
            match self.source.read(&mut self.input) {
                Ok(0) => {
                    self.source_ended = true;
                    return Ok(false);
                }
                Ok(n) => {
                    (self.start, self.end) = (0, n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for GzDecoder {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let out_len = out.len().min(u32::MAX as usize);
        if out_len == 0 {
            return Ok(0);
        }
        loop {
            let more = self.refill()?;
            if self.member_finished {
                if !more {
                    return Ok(0);
                }
                // Bytes after a member: the next member (anything else is
                // an invalid header, as for `gzip -d`).
                // SAFETY: the state is valid (made in `new`).
                unsafe { tcpshut_isal_reset(self.state.as_ptr()) };
                self.member_finished = false;
            }
            let (mut in_used, mut out_made, mut finished) = (0u32, 0u32, 0i32);
            let pending = &self.input[self.start..self.end];
            // SAFETY: both buffers are valid for the lengths given, and
            // ISA-L keeps no pointer into them past the call.
            let code = unsafe {
                tcpshut_isal_inflate(
                    self.state.as_ptr(),
                    pending.as_ptr(),
                    pending.len() as u32,
                    &mut in_used,
                    out.as_mut_ptr(),
                    out_len as u32,
                    &mut out_made,
                    &mut finished,
                )
            };
            self.start += in_used as usize;
            if code < 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, why(code)));
            }
            self.member_finished = finished != 0;
            if out_made > 0 {
                return Ok(out_made as usize);
            }
            // Nothing out: the step needs more input than there is (and
            // took all there was: ISA-L keeps a partial symbol's bytes).
            if in_used == 0 && more && !self.member_finished {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ISA-L inflate made no progress",
                ));
            }
            if !more && !self.member_finished {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the compressed data ends before the gzip stream does",
                ));
            }
        }
    }
}

impl Drop for GzDecoder {
    fn drop(&mut self) {
        // SAFETY: made by `tcpshut_isal_new`, freed once.
        unsafe { tcpshut_isal_free(self.state.as_ptr()) }
    }
}

/// What an ISA-L inflate error code means (igzip_lib.h).
fn why(code: i32) -> String {
    match code {
        -1 => "invalid deflate block".into(),
        -2 => "invalid deflate symbol".into(),
        -3 => "invalid back-reference distance".into(),
        -4 => "invalid gzip header".into(),
        -5 => "gzip header names an unsupported compression method".into(),
        -6 => "checksum mismatch".into(),
        other => format!("ISA-L inflate error {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, so every step of the
    /// decoder sees input cut at every kind of place.
    struct Dribble {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            self.step = self.step % 13 + 1;
            Ok(n)
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        super::super::compressed::compress(super::super::compressed::Compression::Gzip, bytes)
    }

    /// Where the header is, the library is too (both come with
    /// libisal-dev): these tests must not pass by falling back.
    #[test]
    fn the_library_is_loaded() {
        assert!(available(), "libisal.so.2 did not load");
    }

    fn decode(source: impl Read + Send + 'static, out_len: usize) -> io::Result<Vec<u8>> {
        let mut decoder = GzDecoder::new(Box::new(source))?;
        let mut got = Vec::new();
        let mut buf = vec![0; out_len];
        loop {
            match decoder.read(&mut buf)? {
                0 => return Ok(got),
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 27) as u8 ^ (i / 977) as u8)
            .collect()
    }

    /// The same bytes as flate2's `MultiGzDecoder` (the reference) gives,
    /// for members one after the other, whatever the read sizes.
    #[test]
    fn gives_what_flate2_gives_for_members_one_after_the_other() {
        let (a, b) = (sample(300_000), sample(70_001));
        let mut packed = gzip(&a);
        packed.extend(gzip(&b));
        packed.extend(gzip(&[]));
        let mut reference = Vec::new();
        flate2::read::MultiGzDecoder::new(&packed[..])
            .read_to_end(&mut reference)
            .unwrap();
        assert_eq!(reference.len(), a.len() + b.len());
        for out_len in [1, 4096, 256 * 1024] {
            let got = decode(io::Cursor::new(packed.clone()), out_len).unwrap();
            assert!(got == reference, "whole input, reads of {out_len}");
        }
        let dribble = Dribble {
            bytes: packed,
            at: 0,
            step: 1,
        };
        assert!(decode(dribble, 777).unwrap() == reference, "input dribbled");
    }

    #[test]
    fn a_cut_a_corruption_or_trailing_garbage_is_an_error() {
        let plain = sample(200_000);
        let packed = gzip(&plain);
        for cut in [1, 10, packed.len() / 2, packed.len() - 1] {
            let err = decode(io::Cursor::new(packed[..cut].to_vec()), 4096).unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::UnexpectedEof,
                "cut at {cut}: {err}"
            );
        }
        // The trailer's CRC-32 catches what the deflate structure lets by.
        let mut flipped = packed.clone();
        let crc_at = flipped.len() - 8;
        flipped[crc_at] ^= 1;
        let err = decode(io::Cursor::new(flipped), 4096).unwrap_err();
        assert_eq!(err.to_string(), "checksum mismatch");

        let mut trailing = packed;
        trailing.extend_from_slice(b"trailing bytes that are not a gzip member");
        let err = decode(io::Cursor::new(trailing), 4096).unwrap_err();
        assert_eq!(err.to_string(), "invalid gzip header");
    }
}
