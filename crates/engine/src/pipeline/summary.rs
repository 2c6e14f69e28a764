//! What a run over a capture found: the capture's summary
//! ([`CaptureSummary`]), and what was kept of each connection
//! ([`Verdicts`], as much as [`Detail`] asks).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::output::reports::ConnectionReport;
use crate::tracking::inference::{ConnVerdict, Outcome, Unseen};
use crate::wire::capture::CaptureFormat;
use crate::wire::link::DecodeStats;

/// What the capture held, for the JSON header and the user.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaptureSummary {
    /// As text; a path that is not UTF-8 shows U+FFFD where its bytes are
    /// not, and its exact bytes are in `path_bytes`.
    #[serde(serialize_with = "path_text")]
    pub path: PathBuf,
    /// The path's bytes, only when it is not UTF-8 (Unix file names are
    /// any bytes): JSON strings cannot hold them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<Vec<u8>>,
    pub format: &'static str,
    pub frames: u64,
    pub connections: u32,
    pub decode: DecodeStats,
    /// What the capture point did not see, over the connections.
    pub sight: SightCounts,
    /// Why reading stopped before the end of the file, if it did: the
    /// capture was annotated up to its last whole record.
    pub incomplete: Option<String>,
}

/// Over a capture's connections: how many ended after the capture did
/// (`end_unseen`), and how many have wider answers, by what the capture
/// point did not see (`widened`: every cause, in `Unseen` order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SightCounts {
    pub end_unseen: u64,
    widened: [u64; Unseen::ALL.len()],
}

impl SightCounts {
    pub fn add(&mut self, verdict: &ConnVerdict) {
        self.end_unseen += u64::from(verdict.end_unseen_at.is_some());
        if let Some(cause) = verdict.widened {
            self.widened[cause as usize] += 1;
        }
    }
    /// The same, from a connection's report.
    pub fn add_report(&mut self, report: &ConnectionReport) {
        self.end_unseen += u64::from(report.notes.contains(&"end-unseen"));
        if let Some(cause) = report.widened {
            self.widened[cause as usize] += 1;
        }
    }
    /// Connections widened because of `cause`.
    pub fn widened(&self, cause: Unseen) -> u64 {
        self.widened[cause as usize]
    }
    pub fn widened_total(&self) -> u64 {
        self.widened.iter().sum()
    }
}

impl serde::Serialize for SightCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut by_cause = std::collections::BTreeMap::new();
        for cause in Unseen::ALL {
            by_cause.insert(cause.name(), self.widened(*cause));
        }
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("end_unseen", &self.end_unseen)?;
        map.serialize_entry("widened", &self.widened_total())?;
        map.serialize_entry("widened_by", &by_cause)?;
        map.end()
    }
}

impl CaptureSummary {
    /// What a read of the capture at `path` saw: the frame count and why it
    /// stopped early (as the schedule's frame loop returns them), the connections
    /// and the decoding counts.
    pub(crate) fn of_read(
        path: &Path,
        format: &'static str,
        (frames, incomplete): (u64, Option<String>),
        connections: u32,
        decode: DecodeStats,
    ) -> CaptureSummary {
        CaptureSummary {
            path: path.to_path_buf(),
            path_bytes: path
                .to_str()
                .is_none()
                .then(|| path.as_os_str().as_encoded_bytes().to_vec()),
            format,
            frames,
            connections,
            decode,
            sight: SightCounts::default(),
            incomplete,
        }
    }
}

/// A path as JSON text, lossily: `path_bytes` holds what is lost.
fn path_text<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

/// Connections whose verdict and peers [`Detail::Brief`] keeps.
pub const BRIEF_CONNECTIONS: usize = 20;

/// What a run keeps per connection for its result, besides the outcome
/// counts. Each level after `Brief` costs memory per connection of the
/// capture (two passes also keep every verdict, for pass 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// The verdicts and peers of the first [`BRIEF_CONNECTIONS`]
    /// connections only: memory does not grow with the capture.
    Brief,
    /// Every connection's verdict.
    Verdicts,
    /// Also each connection's client and server address.
    Peers,
    /// Also the full report (JSON `connections`, `tcpshut summary`).
    Reports,
}

/// A connection's client and server addresses, kept for every
/// connection of a capture: 38 bytes instead of two `SocketAddr`s' 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peers {
    ips: [IpAddr; 2],
    ports: [u16; 2],
}

impl Peers {
    pub(crate) fn new(client: SocketAddr, server: SocketAddr) -> Peers {
        Peers {
            ips: [client.ip(), server.ip()],
            ports: [client.port(), server.port()],
        }
    }
    pub fn client(&self) -> SocketAddr {
        SocketAddr::new(self.ips[0], self.ports[0])
    }
    pub fn server(&self) -> SocketAddr {
        SocketAddr::new(self.ips[1], self.ports[1])
    }
}

/// The result: the capture's summary and what was kept per connection.
pub struct Verdicts {
    pub capture: CaptureSummary,
    /// How many connections ended each way.
    pub outcomes: OutcomeCounts,
    /// Indexed by connection id: all, or with [`Detail::Brief`] the first
    /// [`BRIEF_CONNECTIONS`].
    pub verdicts: Vec<ConnVerdict>,
    /// Client and server address, indexed by connection id: as many as
    /// `verdicts` with [`Detail::Brief`], [`Detail::Peers`] or more,
    /// otherwise none.
    pub peers: Vec<Peers>,
    /// Reports in id order (empty unless [`Detail::Reports`]).
    pub reports: Vec<ConnectionReport>,
}

pub(crate) fn format_name(format: CaptureFormat) -> &'static str {
    match format {
        CaptureFormat::Pcap {
            nanosecond: false, ..
        } => "pcap",
        CaptureFormat::Pcap {
            nanosecond: true, ..
        } => "pcap-ns",
        CaptureFormat::PcapNg => "pcapng",
        CaptureFormat::Unknown => "unknown",
    }
}

/// How many connections ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts([u64; Outcome::ALL.len()]);

impl OutcomeCounts {
    pub fn add(&mut self, outcome: Outcome) {
        self.0[outcome as usize] += 1;
    }
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}
