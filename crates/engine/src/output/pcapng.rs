//! The annotated pcapng copy: every frame of the capture, each TCP
//! segment's sentence as its comment.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use crate::capture::Frame;
use crate::reports::ConnectionReport;
use crate::rows::Row;
use crate::sinks::RowSink;
use crate::summary::CaptureSummary;

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
