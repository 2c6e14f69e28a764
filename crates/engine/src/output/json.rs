//! The JSON document, as `docs/sidecar.md` specifies it: the capture's
//! summary, every connection's report, then the segments, streamed.

use std::io::{self, Write};

use crate::output::reports::ConnectionReport;
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::CaptureSummary;
use crate::wire::tunnel::Tunnel;

/// A segment as the JSON document shows it: the CSV's fields, with
/// `events` as a list, and its connection's tunnel when it has one.
#[derive(serde::Serialize)]
struct JsonSegment<'a> {
    frame: u64,
    ts: String,
    conn: u32,
    src: String,
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<&'a Tunnel>,
    flags: &'a str,
    seq: u32,
    ack: u32,
    len: u32,
    sender_state: &'static str,
    receiver_state: &'static str,
    events: crate::tracking::event::EventSet,
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
    /// The tunnelled connections' tunnels, by id (empty without tunnels).
    tunnels: Vec<(u32, Tunnel)>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink {
            out,
            rows: 0,
            tunnels: Vec::new(),
        }
    }
}

/// The tunnel of connection `conn` among `tunnels` (sorted by id).
fn tunnel_of(tunnels: &[(u32, Tunnel)], conn: u32) -> Option<&Tunnel> {
    let at = tunnels.binary_search_by_key(&conn, |(id, _)| *id).ok()?;
    Some(&tunnels[at].1)
}

impl<W: Write> RowSink for JsonSink<W> {
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        connections: &[ConnectionReport],
    ) -> io::Result<()> {
        // Each value is made whole before any of it is written: a value
        // that cannot be serialized leaves no half document behind.
        let mut value = serde_json::to_vec(capture)?;
        self.out.write_all(b"{\"capture\":")?;
        self.out.write_all(&value)?;
        self.out.write_all(b",\n\"connections\":[")?;
        self.tunnels = connections
            .iter()
            .filter(|conn| !conn.tunnel.is_none())
            .map(|conn| (conn.id, conn.tunnel))
            .collect();
        self.tunnels.sort_unstable_by_key(|(id, _)| *id);
        for (i, conn) in connections.iter().enumerate() {
            value.clear();
            serde_json::to_writer(&mut value, conn)?;
            self.out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            self.out.write_all(&value)?;
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
            tunnel: tunnel_of(&self.tunnels, row.conn),
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
