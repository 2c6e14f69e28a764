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

/// The kernel the manifest names: the one its recordings were made on.
/// Re-deriving (`--only derived`) records nothing, so the manifest keeps the
/// kernel it had; a partial run on another kernel that keeps older
/// recordings names both, so no capture is credited to a kernel that did
/// not make it.
pub fn manifest_kernel(
    recorded_on: Option<String>,
    this_kernel: &str,
    recorded_now: usize,
    entries: usize,
) -> String {
    match recorded_on {
        Some(old) if recorded_now == 0 => old,
        Some(old) if old != this_kernel && !old.is_empty() && recorded_now < entries => {
            eprintln!(
                "note: the manifest now names two kernels: older recordings were made on {old}, \
                 this run's on {this_kernel}"
            );
            if old.split(" + ").any(|k| k == this_kernel) {
                old
            } else {
                format!("{old} + {this_kernel}")
            }
        }
        _ => this_kernel.to_string(),
    }
}

/// The committed captures against what their applications called: every
/// connection's inferred calls, role, closed_by and outcome must match the
/// manifest, and every inferred step must contain a call the application
/// really made (`tcpshut_lab::verify::connection_differences`, the check
/// a lab run gets).
#[cfg(test)]
mod tests {
    use super::*;
    use tcpshut_lab::scenarios::{ConnExpect, SideExpect};
    use tcpshut_lab::verify::connection_differences;

    fn expect(side: &Side) -> SideExpect {
        SideExpect {
            calls: side.expected_calls.clone(),
            role: side.expected_role,
            closed_by: side.expected_closed_by,
            wire: side.segments,
        }
    }

    #[test]
    fn every_capture_matches_what_its_applications_called() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        let path = testdata.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (it is committed)", path.display()));
        let manifest: Manifest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            manifest.captures.len() >= 20,
            "the manifest lists the scenarios"
        );
        let mut problems = Vec::new();
        let mut connections = 0;
        for capture in &manifest.captures {
            let file = &capture.file;
            let result =
                tcpshut_engine::verdicts(&testdata.join(file), tcpshut_engine::Detail::Reports)
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                result.capture.incomplete.is_none(),
                "{file} reads to the end"
            );
            if capture.connections.len() != result.reports.len() {
                problems.push(format!(
                    "{file}: {} connections, expected {}",
                    result.reports.len(),
                    capture.connections.len()
                ));
                continue;
            }
            for (i, (want, got)) in capture.connections.iter().zip(&result.reports).enumerate() {
                connections += 1;
                for (field, value, expected) in [
                    ("client", &got.client, &want.client_addr),
                    ("server", &got.server, &want.server_addr),
                ] {
                    if value != expected {
                        problems.push(format!(
                            "{file} connection {i}: {field} {value}, expected {expected}"
                        ));
                    }
                }
                let exp = ConnExpect {
                    outcome: want.expected_outcome,
                    client: expect(&want.client),
                    server: expect(&want.server),
                };
                let made = [want.client.calls.as_slice(), want.server.calls.as_slice()];
                problems.extend(
                    connection_differences(i, &exp, made, got)
                        .into_iter()
                        .map(|p| format!("{file} {p}")),
                );
            }
        }
        for p in &problems {
            eprintln!("MISMATCH {p}");
        }
        assert!(
            problems.is_empty(),
            "{} mismatches over {connections} connections",
            problems.len()
        );
    }

    #[test]
    fn manifest_kernel_is_the_recordings_kernel() {
        let old = || Some("6.1.0-old".to_string());
        // --only derived: nothing recorded, the recorded kernel stays.
        assert_eq!(manifest_kernel(old(), "6.12-new", 0, 40), "6.1.0-old");
        // Everything re-recorded: this kernel.
        assert_eq!(manifest_kernel(old(), "6.12-new", 40, 40), "6.12-new");
        // Some re-recorded on another kernel, the rest kept: both.
        assert_eq!(
            manifest_kernel(old(), "6.12-new", 3, 40),
            "6.1.0-old + 6.12-new"
        );
        // Same kernel: said once.
        assert_eq!(manifest_kernel(old(), "6.1.0-old", 3, 40), "6.1.0-old");
        // No manifest yet.
        assert_eq!(manifest_kernel(None, "6.12-new", 3, 3), "6.12-new");
    }
}
