//! Degraded captures: a full recording cut the way people really take
//! captures (headers only, one direction, started late, stopped early),
//! beside the full one, so that the manifest knows the truth.
//!
//! Each is made from a full recording by a documented transformation
//! (`testdata/degraded/manifest.json` names both); for each connection the
//! manifest keeps the truth (what the full recording proves) and marks,
//! per field, what the degraded wire can no longer prove, with the wider
//! answers that are then honest. The rules are those of
//! `docs/semantics.md` ("What the capture point saw"), applied here from
//! the frames alone, independently of tcpshut. An answer must be the
//! truth, or one of the wider answers where the wire cannot prove it;
//! never anything else.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::derive::{self, find, Pcap, Tcp};
use crate::manifest::{Capture, Side};
use tcpshut_lab::scenarios::{ClosedBy, Outcome, Role};
use tcpshut_lab::script::{Call, CLIENT_PORT};

/// The folder (under testdata) and the manifest of the degraded captures.
pub const DIR: &str = "degraded";

/// What a capture point missed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// `tcpdump -s N`: every frame cut to its first N bytes.
    Snaplen(usize),
    /// Only the frames one endpoint sent (true: the client).
    OnlyFrom(bool),
    /// Started after the ACK that completes the handshake.
    AfterHandshake,
    /// Started after the first frame carrying payload.
    AfterData,
    /// Started after the first FIN.
    AfterFirstFin,
    /// Stopped right after the first FIN.
    StopAfterFirstFin,
    /// Stopped right after the other endpoint's first FIN: the final
    /// ACKs unseen.
    StopAfterSecondFin,
}

use Condition::*;

impl Condition {
    fn suffix(self) -> String {
        match self {
            Snaplen(n) => format!("snap{n}"),
            OnlyFrom(true) => "client-only".into(),
            OnlyFrom(false) => "server-only".into(),
            AfterHandshake => "after-handshake".into(),
            AfterData => "after-data".into(),
            AfterFirstFin => "after-first-fin".into(),
            StopAfterFirstFin => "stop-after-first-fin".into(),
            StopAfterSecondFin => "stop-after-second-fin".into(),
        }
    }

    fn transformation(self) -> String {
        match self {
            Snaplen(n) => format!(
                "every frame cut to its first {n} bytes, the original length kept in the \
                 record header (what tcpdump -s {n} writes)"
            ),
            OnlyFrom(client) => format!(
                "keep only the frames the {} sent (tcpdump src host and port)",
                if client { "client" } else { "server" }
            ),
            AfterHandshake => {
                "drop the frames up to the ACK that completes the handshake (a capture \
                 started after it)"
                    .into()
            }
            AfterData => "drop the frames up to the first one carrying payload (a capture started \
                 after some data)"
                .into(),
            AfterFirstFin => "drop the frames up to the first FIN, inclusive".into(),
            StopAfterFirstFin => "drop every frame after the first FIN".into(),
            StopAfterSecondFin => "drop every frame after the first FIN of the endpoint that \
                 did not send the first FIN (the ACKs of the FINs that follow it unseen)"
                .into(),
        }
    }
}

/// The recordings degraded, and how.
const DEGRADED: &[(&str, &[Condition])] = &[
    (
        "close-client-first.pcap",
        &[
            Snaplen(54),
            Snaplen(64),
            Snaplen(96),
            OnlyFrom(true),
            OnlyFrom(false),
            AfterHandshake,
            AfterData,
            AfterFirstFin,
            StopAfterFirstFin,
            StopAfterSecondFin,
        ],
    ),
    ("close-client-first-ipv6.pcap", &[Snaplen(74)]),
    // Both FINs cross: both endpoints wait in CLOSING for ACKs the
    // capture does not show; the close is still whole (graceful).
    ("simultaneous-close.pcap", &[StopAfterSecondFin]),
    (
        "half-close-data-after-fin.pcap",
        &[
            Snaplen(64),
            OnlyFrom(true),
            OnlyFrom(false),
            AfterFirstFin,
            StopAfterFirstFin,
        ],
    ),
    (
        "shut_rdwr-server-first.pcap",
        &[OnlyFrom(true), OnlyFrom(false), StopAfterFirstFin],
    ),
    (
        "linger0-after-data.pcap",
        &[
            Snaplen(64),
            OnlyFrom(true),
            OnlyFrom(false),
            AfterHandshake,
            AfterData,
        ],
    ),
    (
        "linger0-no-data.pcap",
        &[OnlyFrom(true), OnlyFrom(false), AfterHandshake],
    ),
];

/// `testdata/degraded/manifest.json`.
#[derive(Serialize, Deserialize)]
pub struct DegradedManifest {
    pub generator: String,
    pub captures: Vec<DegradedCapture>,
}

#[derive(Serialize, Deserialize)]
pub struct DegradedCapture {
    /// Relative to `testdata/degraded`.
    pub file: String,
    /// The full recording, relative to `testdata`.
    pub derived_from: String,
    pub condition: String,
    pub transformation: String,
    pub packets: usize,
    pub connections: Vec<Truth>,
    /// The frames show the connection's end: both endpoints' FINs, or an
    /// RST. Otherwise its last row and report must say `end-unseen`.
    pub end_seen: bool,
    /// Decode counters (tcpshut's JSON `capture.decode` names) that must
    /// come out exactly so, counted here from the full frames.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expected_decode: BTreeMap<String, u64>,
}

/// One connection: the truth, and what the degraded wire cannot prove.
#[derive(Serialize, Deserialize)]
pub struct Truth {
    pub client_addr: String,
    pub server_addr: String,
    /// Field (`outcome`, `closer`, `client.role`, `server.calls`, ...) →
    /// what the full recording proves (calls as in the CSV: steps joined
    /// by `>`, candidates by `|`).
    pub truth: BTreeMap<String, String>,
    /// Fields the degraded wire cannot prove → the wider answers that are
    /// honest there (the truth is always accepted too).
    pub unprovable: BTreeMap<String, Vec<String>>,
}

pub fn calls_text(steps: &[Vec<Call>]) -> String {
    steps
        .iter()
        .map(|step| {
            let mut codes: Vec<&str> = step.iter().map(|c| c.code()).collect();
            codes.sort_unstable();
            codes.join("|")
        })
        .collect::<Vec<_>>()
        .join(">")
}

/// The widest class of each step: any FIN is class 3 (classes 1 and 2 need
/// the peer's later data), any abort class 4 (class 5 needs every byte
/// received, from the start).
pub fn widened(steps: &[Vec<Call>]) -> String {
    use tcpshut_engine::{ABORT_AFTER_DATA, FIN_UNDECIDED};
    let wide: Vec<Vec<Call>> = steps
        .iter()
        .map(|step| {
            let abort = step
                .iter()
                .any(|c| matches!(c, Call::CloseUnread | Call::Linger0 | Call::ShutRd));
            if abort {
                ABORT_AFTER_DATA
            } else {
                FIN_UNDECIDED
            }
            .to_vec()
        })
        .collect();
    calls_text(&wide)
}

pub fn closer_of(client: Role, server: Role) -> &'static str {
    match (client, server) {
        (Role::Simultaneous, _) => "both",
        (Role::Active, _) => "client",
        (_, Role::Active) => "server",
        _ => "none",
    }
}

/// What the frames of one side show, for the provability rules.
#[derive(Default)]
pub struct SideSeen {
    /// It sent anything.
    pub sent: bool,
    /// It sent payload before `signal` of the other side (or at all, when
    /// the other side never signals).
    pub payload_before_peer_signal: bool,
    /// Frame index of its first FIN or RST+ACK.
    pub signal: Option<usize>,
}

pub fn seen(frames: &[Tcp]) -> [SideSeen; 2] {
    let side = |t: &Tcp| usize::from(t.src.1 != CLIENT_PORT);
    let mut out = [SideSeen::default(), SideSeen::default()];
    for (i, t) in frames.iter().enumerate() {
        let s = side(t);
        out[s].sent = true;
        if (t.fin || t.rst) && out[s].signal.is_none() && !t.syn {
            out[s].signal = Some(i);
        }
    }
    for (i, t) in frames.iter().enumerate() {
        let s = side(t);
        let before = out[1 - s].signal.is_none_or(|sig| i < sig);
        if t.payload > 0 && before {
            out[s].payload_before_peer_signal = true;
        }
    }
    out
}

/// What the applications' calls make of a connection, field by field:
/// the outcome, and per side (client, server) its role, how it closed and
/// the calls the wire allows (`Truth::truth`).
pub fn truth_map(
    outcome: Outcome,
    sides: [(Role, ClosedBy, Vec<Vec<Call>>); 2],
) -> BTreeMap<String, String> {
    let mut truth = BTreeMap::new();
    truth.insert("outcome".to_string(), outcome.name().to_string());
    let closer = closer_of(sides[0].0, sides[1].0);
    truth.insert("closer".to_string(), closer.to_string());
    for (name, (role, closed_by, calls)) in ["client", "server"].into_iter().zip(sides) {
        truth.insert(format!("{name}.role"), role.name().into());
        truth.insert(format!("{name}.closed_by"), closed_by.name().into());
        truth.insert(format!("{name}.calls"), calls_text(&calls));
    }
    truth
}

/// The wider answers allowed per field, gathered rule by rule.
#[derive(Default)]
pub struct Allowed(BTreeMap<String, Vec<String>>);

impl Allowed {
    pub fn allow(&mut self, field: &str, answers: &[&str]) {
        let list = self.0.entry(field.to_string()).or_default();
        for a in answers {
            if !list.iter().any(|x| x == a) {
                list.push(a.to_string());
            }
        }
    }

    /// The connection's `Truth`: a wider answer equal to the truth says
    /// nothing more and is left out.
    pub fn judged(
        mut self,
        client_addr: &str,
        server_addr: &str,
        truth: BTreeMap<String, String>,
    ) -> Truth {
        self.0.retain(|field, answers| {
            answers.retain(|a| truth.get(field) != Some(a));
            !answers.is_empty()
        });
        Truth {
            client_addr: client_addr.to_string(),
            server_addr: server_addr.to_string(),
            truth,
            unprovable: self.0,
        }
    }
}

/// The truth and the unprovable fields of `full`'s only connection under
/// `condition`, given the frames that remain.
fn judge(full: &Capture, condition: Condition, kept: &[Tcp]) -> Result<Truth> {
    ensure!(full.connections.len() == 1, "{}: one connection", full.file);
    let conn = &full.connections[0];
    let sides: [(&str, &Side); 2] = [("client", &conn.client), ("server", &conn.server)];
    let side = |s: &Side| {
        (
            s.expected_role,
            s.expected_closed_by,
            s.expected_calls.clone(),
        )
    };
    let truth = truth_map(
        conn.expected_outcome,
        [side(&conn.client), side(&conn.server)],
    );
    let closer = truth["closer"].clone();
    let mut allowed = Allowed::default();
    let unknown = &["unknown"];
    let observed = seen(kept);
    let closer_index = match closer.as_str() {
        "client" => Some(0),
        "server" => Some(1),
        _ => None,
    };
    let widen_calls = |allowed: &mut Allowed, i: usize| {
        let (name, side) = sides[i];
        allowed.allow(&format!("{name}.calls"), &[&widened(&side.expected_calls)]);
    };
    match condition {
        // Every rule reads the fixed header and the IP length only; both
        // FINs tell the whole close without the ACKs that follow them.
        Snaplen(_) | StopAfterSecondFin => {}
        OnlyFrom(client) => {
            let unseen = usize::from(client);
            let seen_side = 1 - unseen;
            for field in ["outcome", "closer", "client.role", "server.role"] {
                allowed.allow(field, unknown);
            }
            allowed.allow(&format!("{}.closed_by", sides[unseen].0), unknown);
            allowed.allow(&format!("{}.calls", sides[unseen].0), &[""]);
            widen_calls(&mut allowed, seen_side);
        }
        AfterHandshake | AfterData | AfterFirstFin => {
            // A late start proves an endpoint open only by its payload
            // (before its peer's first signal, for the order of closes).
            let proven = |i: usize| observed[i].payload_before_peer_signal;
            let closer_told =
                closer_index.is_some_and(|c| proven(1 - c) && observed[c].signal.is_some());
            if !closer_told {
                for field in ["closer", "client.role", "server.role"] {
                    allowed.allow(field, unknown);
                }
            }
            for i in 0..2 {
                let has_payload = kept
                    .iter()
                    .any(|t| usize::from(t.src.1 != CLIENT_PORT) == i && t.payload > 0);
                if observed[i].signal.is_none() && !has_payload {
                    allowed.allow(&format!("{}.closed_by", sides[i].0), unknown);
                    allowed.allow(&format!("{}.calls", sides[i].0), &[""]);
                    allowed.allow("outcome", unknown);
                }
                widen_calls(&mut allowed, i);
            }
        }
        StopAfterFirstFin => {
            // Verdicts are as of the end of the capture: the other side
            // had not closed yet, the connection was half-closed; or
            // nothing answered the first FIN, and whether the other side
            // had closed (its FIN in flight) is untold.
            let first = observed
                .iter()
                .position(|s| s.signal.is_some())
                .context("a FIN")?;
            let other = 1 - first;
            allowed.allow("outcome", &["half-closed"]);
            allowed.allow(&format!("{}.closed_by", sides[other].0), &["none"]);
            allowed.allow(&format!("{}.calls", sides[other].0), &[""]);
            unanswered_fin(kept, &mut allowed);
            widen_calls(&mut allowed, first);
        }
    }
    Ok(allowed.judged(&conn.client_addr, &conn.server_addr, truth))
}

/// The first teardown signal is a FIN its peer never answered: nothing
/// from the peer from then to the end of the capture. The peer's own close
/// may have been lost on the way, or be in flight: who closed first, the
/// peer's close and the outcome are untold (`docs/semantics.md`).
pub fn unanswered_fin(kept: &[Tcp], allowed: &mut Allowed) {
    let side = |t: &Tcp| usize::from(t.src.1 != CLIENT_PORT);
    let Some(at) = kept.iter().position(|t| (t.fin || t.rst) && !t.syn) else {
        return;
    };
    let closer = side(&kept[at]);
    if !kept[at].fin || kept[at..].iter().any(|t| side(t) != closer) {
        return;
    }
    let peer = ["client", "server"][1 - closer];
    for field in ["outcome", "closer", "client.role", "server.role"] {
        allowed.allow(field, &["unknown"]);
    }
    allowed.allow(&format!("{peer}.closed_by"), &["unknown"]);
    allowed.allow(&format!("{peer}.calls"), &[""]);
}

/// Where a full Ethernet frame's TCP header starts and ends, and whether
/// payload follows; `None` when it holds no TCP segment.
fn tcp_extent(frame: &[u8]) -> Option<(usize, usize, bool)> {
    let full = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let ip_header = match &full.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => ip.header().slice().len(),
        Some(etherparse::NetSlice::Ipv6(ip)) => ip.header().slice().len(),
        _ => return None,
    };
    let Some(etherparse::TransportSlice::Tcp(tcp)) = &full.transport else {
        return None;
    };
    let tcp_at = 14 + ip_header;
    let header_len = tcp.slice().len() - tcp.payload().len();
    Some((tcp_at, tcp_at + header_len, !tcp.payload().is_empty()))
}

/// Cuts every record to `snaplen` bytes and counts, from the full frames,
/// what a decoder can still use: segments whose TCP options or payload
/// were cut.
fn cut(p: &mut Pcap, snaplen: usize) -> Result<BTreeMap<String, u64>> {
    let (mut segments, mut options_cut, mut payload_cut) = (0, 0, 0);
    for r in &mut p.records {
        let Some((tcp_at, header_end, has_payload)) = tcp_extent(&r.data) else {
            continue;
        };
        ensure!(
            snaplen >= tcp_at + 16,
            "snaplen {snaplen} cuts the TCP fields"
        );
        segments += 1;
        options_cut += u64::from(snaplen < header_end);
        payload_cut += u64::from(snaplen < r.data.len() && has_payload);
        if r.data.len() > snaplen {
            r.data.truncate(snaplen);
            r.header[8..12].copy_from_slice(&(snaplen as u32).to_le_bytes());
        }
    }
    Ok(BTreeMap::from([
        ("options_cut".to_string(), options_cut),
        ("payload_cut".to_string(), payload_cut),
        ("tcp_segments".to_string(), segments),
        ("truncated".to_string(), 0),
    ]))
}

/// Applies `condition` to `p`; returns the decode counters to expect
/// (snaplen only).
fn degrade(p: &mut Pcap, condition: Condition) -> Result<BTreeMap<String, u64>> {
    let from_client = |t: &Tcp| t.src.1 == CLIENT_PORT;
    match condition {
        Snaplen(n) => return cut(p, n),
        OnlyFrom(client) => p
            .records
            .retain(|r| derive::tcp(&r.data).is_some_and(|t| from_client(&t) == client)),
        AfterHandshake => {
            let ack = find(p, |t| from_client(t) && !t.syn && t.payload == 0 && !t.fin)?;
            p.records.drain(..=ack);
        }
        AfterData => {
            let data = find(p, |t| t.payload > 0)?;
            p.records.drain(..=data);
        }
        AfterFirstFin => {
            let fin = find(p, |t| t.fin)?;
            p.records.drain(..=fin);
        }
        StopAfterFirstFin => {
            let fin = find(p, |t| t.fin)?;
            p.records.truncate(fin + 1);
        }
        StopAfterSecondFin => {
            let first = find(p, |t| t.fin)?;
            let first_from_client =
                derive::tcp(&p.records[first].data).is_some_and(|t| from_client(&t));
            let second = find(p, |t| t.fin && from_client(t) != first_from_client)?;
            p.records.truncate(second + 1);
        }
    }
    Ok(BTreeMap::new())
}

/// The frames show a connection's end: both endpoints' FINs, or an RST
/// (IPv4 or IPv6, whole Ethernet frames).
fn end_seen<'f>(frames: impl Iterator<Item = &'f [u8]>) -> bool {
    let (mut fin, mut rst) = ([false; 2], false);
    for frame in frames {
        let Ok(sliced) = etherparse::SlicedPacket::from_ethernet(frame) else {
            continue;
        };
        let Some(etherparse::TransportSlice::Tcp(t)) = &sliced.transport else {
            continue;
        };
        fin[usize::from(t.source_port() == CLIENT_PORT)] |= t.fin() && !t.syn();
        rst |= t.rst();
    }
    fin == [true; 2] || rst
}

/// Every degraded file name, for `--list`.
pub fn degraded_list() -> Vec<(String, &'static str, String)> {
    DEGRADED
        .iter()
        .flat_map(|(from, conditions)| {
            conditions
                .iter()
                .map(move |c| (file_name(from, *c), *from, c.transformation()))
        })
        .collect()
}

fn file_name(from: &str, condition: Condition) -> String {
    let stem = from.trim_end_matches(".pcap");
    format!("{stem}--{}.pcap", condition.suffix())
}

/// Makes every degraded capture from the recordings in `out` (their
/// manifest entries in `entries`) into `out/degraded`, with its manifest.
pub fn degrade_all(out: &Path, entries: &[Capture]) -> Result<()> {
    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir)?;
    let mut captures = Vec::new();
    for (from, conditions) in DEGRADED {
        let full = entries
            .iter()
            .find(|c| c.file == *from)
            .with_context(|| format!("degraded captures need {from} recorded first"))?;
        for &condition in *conditions {
            let mut p = Pcap::read(&out.join(from))?;
            let expected_decode = degrade(&mut p, condition)
                .with_context(|| format!("{from}: {}", condition.suffix()))?;
            let kept: Vec<Tcp> = p
                .records
                .iter()
                .filter_map(|r| derive::tcp(&r.data))
                .collect();
            let file = file_name(from, condition);
            p.write(&dir.join(&file))?;
            // A snaplen keeps every frame's flags, but its frames no
            // longer parse whole: judged from the full ones.
            let frames = match condition {
                Snaplen(_) => Pcap::read(&out.join(from))?.records,
                _ => p.records.clone(),
            };
            let end_seen = end_seen(frames.iter().map(|r| r.data.as_slice()));
            captures.push(DegradedCapture {
                end_seen,
                connections: vec![judge(full, condition, &kept)?],
                file,
                derived_from: from.to_string(),
                condition: condition.suffix(),
                transformation: condition.transformation(),
                packets: p.records.len(),
                expected_decode,
            });
        }
    }
    let manifest = DegradedManifest {
        generator: "tcpshut-record".into(),
        captures,
    };
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    let path = dir.join("manifest.json");
    std::fs::write(&path, text).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_widen_to_the_broadest_class() {
        use Call::*;
        assert_eq!(widened(&[vec![ShutWr]]), "close|shut_rdwr|shut_wr");
        assert_eq!(
            widened(&[vec![ShutWr], vec![Linger0]]),
            "close|shut_rdwr|shut_wr>close_unread|linger0|shut_rd"
        );
        assert_eq!(calls_text(&[vec![ShutRdwr, Close]]), "close|shut_rdwr");
    }
}
