//! testdata/manifest.json: the ground truth shipped next to the captures.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use tcpshut_lab::scenarios::{ClosedBy, Outcome, Role};
use tcpshut_lab::script::Call;
use tcpshut_lab::wire::Counts;

#[derive(Serialize, Deserialize)]
pub struct Manifest {
    pub generator: String,
    /// Kernel the captures were recorded on (uname -r).
    pub kernel: String,
    pub captures: Vec<Capture>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Capture {
    pub file: String,
    pub scenario: String,
    pub description: String,
    pub variant: Variant,
    pub packets: usize,
    /// In order of first appearance in the capture.
    pub connections: Vec<Connection>,
    /// The recording this capture was derived from (derived captures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
    /// What was done to `derived_from` to make this capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation: Option<String>,
    /// Events tcpshut must write on particular frames (the frames a hard
    /// case is about); other frames are not constrained by this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_events: Vec<FrameEvents>,
    /// Decode counters (tcpshut's JSON `capture.decode` names) that must
    /// come out exactly so, counted by the generator itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_decode: Option<std::collections::BTreeMap<String, u64>>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FrameEvents {
    /// 1-based frame number.
    pub frame: usize,
    /// Event codes, in the sidecar's order; empty: no event at all.
    pub events: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Variant {
    /// 4 or 6.
    pub ip: u8,
    /// pcap link type name: ETHERNET or LINUX_SLL2.
    pub link_type: String,
    /// pcap (microseconds), pcap-nsec, or pcapng.
    pub format: String,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Connection {
    /// The connect() caller, as ip:port ([ip]:port for IPv6).
    pub client_addr: String,
    /// The accept() side.
    pub server_addr: String,
    pub expected_outcome: Outcome,
    pub client: Side,
    pub server: Side,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Side {
    /// Teardown-relevant calls the application actually made, in order.
    pub calls: Vec<Call>,
    /// What the wire allows one to infer: steps, each a sorted candidate list.
    pub expected_calls: Vec<Vec<Call>>,
    pub expected_role: Role,
    pub expected_closed_by: ClosedBy,
    /// FIN / RST segments this side sent (checked when recording).
    pub segments: Counts,
}

impl Manifest {
    /// The manifest in `path`, if there is a readable one.
    pub fn load(path: &Path) -> Option<Manifest> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| path.display().to_string())
    }
}
