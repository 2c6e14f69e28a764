//! Capture reading: pcap (µs/ns, both byte orders) and pcapng (several
//! sections and interfaces) into a stream of borrowed [`Frame`]s.
//!
//! STUB: the interface below is the contract; the implementation is owned
//! by the capture/link work item.

use std::path::Path;

use crate::segment::Timestamp;

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

/// Which container format a capture uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a pcap or pcapng file (first bytes {magic:02x?})")]
    NotACapture { magic: Vec<u8> },
}

/// Streams frames from a pcap or pcapng file.
pub struct CaptureReader {
    _private: (),
}

impl CaptureReader {
    /// Opens a capture and reads its file header.
    pub fn open(_path: &Path) -> Result<Self, CaptureError> {
        unimplemented!("capture reading")
    }

    /// The next frame, `Ok(None)` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        unimplemented!("capture reading")
    }

    pub fn format(&self) -> CaptureFormat {
        unimplemented!("capture reading")
    }
}
