//! Writers: the CSV sidecar and the JSON document, as `docs/sidecar.md`
//! specifies them. Both stream rows as they come.

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

use crate::analysis::{CaptureSummary, RowSink};
use crate::annotate::Row;
use crate::capture::Frame;
use crate::report::ConnectionReport;

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
pub struct CsvSink<W: Write> {
    out: csv::Writer<W>,
    /// Reused text buffer: no allocation per row in the steady state.
    text: String,
}

impl<W: Write> CsvSink<W> {
    pub fn new(out: W) -> Self {
        CsvSink {
            out: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out),
            text: String::with_capacity(256),
        }
    }

    /// Formats `value` into the reused buffer and writes it as one field.
    fn field(&mut self, value: impl std::fmt::Display) -> io::Result<()> {
        self.text.clear();
        write!(self.text, "{value}").expect("writing to a String cannot fail");
        self.out
            .write_field(self.text.as_bytes())
            .map_err(io::Error::from)
    }

    fn number(&mut self, value: u64) -> io::Result<()> {
        let mut buf = itoa::Buffer::new();
        self.out
            .write_field(buf.format(value).as_bytes())
            .map_err(io::Error::from)
    }

    pub fn into_inner(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(|e| io::Error::new(e.error().kind(), e.error().to_string()))
    }
}

impl<W: Write> RowSink for CsvSink<W> {
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        self.out.write_record(CSV_HEADER).map_err(io::Error::from)
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.number(row.frame)?;
        self.field(row.ts)?;
        self.number(row.conn.into())?;
        self.field(row.src)?;
        self.field(row.dst)?;
        self.out
            .write_field(row.flags.letters().as_str())
            .map_err(io::Error::from)?;
        self.number(row.seq.into())?;
        self.number(row.ack.into())?;
        self.number(row.len.into())?;
        self.out
            .write_field(row.sender_state.name())
            .map_err(io::Error::from)?;
        self.out
            .write_field(row.receiver_state.name())
            .map_err(io::Error::from)?;
        self.field(row.events)?;
        match &row.calls {
            Some(calls) => self.field(calls)?,
            None => self.out.write_field("").map_err(io::Error::from)?,
        }
        self.field(row.summary)?;
        self.out
            .write_field(row.severity.code())
            .map_err(io::Error::from)?;
        match row.related {
            Some(frame) => self.number(frame)?,
            None => self.out.write_field("").map_err(io::Error::from)?,
        }
        self.out
            .write_record(None::<&[u8]>)
            .map_err(io::Error::from)
    }

    fn finish(&mut self) -> io::Result<()> {
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
