//! The per-connection report: the `connections` of the JSON document and
//! the table `tcpshut summary` prints.

use crate::output::community_id;
use crate::output::csv_fast::socket_addr_text;
use crate::output::rows::Side;
use crate::tracking::connection::Connection;
use crate::tracking::endpoint::TcpState;
use crate::tracking::inference::{CallSteps, ClosedBy, Closer, ConnVerdict, Outcome, Role, Unseen};
use crate::tracking::origin::Origin;
use crate::tracking::zeek::{ZeekRow, ZeekTracker};
use crate::wire::segment::Timestamp;
use crate::wire::tunnel::Tunnel;

/// One endpoint of a finished connection.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EndpointReport {
    pub addr: String,
    pub side: Side,
    pub role: Role,
    pub closed_by: ClosedBy,
    pub calls: CallSteps,
    pub final_state: TcpState,
    /// When it entered `final_state` (capture time).
    pub state_since: Timestamp,
    /// When it sent its first FIN.
    pub fin_ts: Option<Timestamp>,
    /// FINs it sent again: its peer did not acknowledge the first.
    pub fin_retransmits: u32,
    /// It sent new payload after receiving the peer's FIN (half-close in use).
    pub data_after_fin: bool,
    /// Frames the verdict rests on.
    pub evidence: Vec<u64>,
    /// Who really sent the RSTs in its name (absent when it sent none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rst_origin: Option<RstOrigin>,
}

/// The evidence on an endpoint's RSTs (`tracking/origin.rs`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RstOrigin {
    /// The evidence says a middlebox forged them.
    pub forged: bool,
    /// Too few of the endpoint's own segments to compare with.
    pub unchecked: bool,
    /// Each sign: `code` (ttl, ip-id-copied, keeps-sending, ...) and text.
    pub evidence: Vec<OriginSign>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct OriginSign {
    pub code: &'static str,
    pub text: String,
}

impl RstOrigin {
    fn of(origin: Origin, forged: bool) -> RstOrigin {
        RstOrigin {
            forged,
            unchecked: origin.unchecked,
            evidence: origin
                .signs
                .iter()
                .map(|s| OriginSign {
                    code: s.code(),
                    text: s.to_string(),
                })
                .collect(),
        }
    }
}

/// One connection, client endpoint first.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConnectionReport {
    pub id: u32,
    pub client: String,
    pub server: String,
    /// The tunnels its segments came through, outermost first (absent
    /// when there are none).
    #[serde(skip_serializing_if = "Tunnel::is_none")]
    pub tunnel: Tunnel,
    /// Community ID v1 (seed 0) of the 4-tuple, to join with Zeek,
    /// Suricata and others (`community_id`).
    pub community_id: String,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Times of the first and last segment.
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Time of the first RST, of any kind.
    pub rst_ts: Option<Timestamp>,
    /// RSTs sent on the connection, by either side.
    pub rsts: u32,
    /// The first RST came right after the first packet following this
    /// many seconds of silence, and was forged or stray: a NAT or firewall
    /// dropped the idle connection's state (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_reset_secs: Option<f64>,
    /// `complete`, `partial` or `none`.
    pub handshake: &'static str,
    pub outcome: Outcome,
    pub closer: Closer,
    /// The answers are wider than a whole capture would make them, and
    /// what the capture point did not see that made them so (null: not
    /// widened).
    pub widened: Option<Unseen>,
    pub notes: Vec<&'static str>,
    /// conn_state and history of the first Zeek connection (see
    /// docs/zeek.md).
    pub zeek_conn_state: &'static str,
    pub zeek_history: String,
    /// Every Zeek connection this connection spans, in order; more than
    /// one when Zeek's timers split it. The first repeats
    /// `zeek_conn_state` and `zeek_history`.
    pub zeek_rows: Vec<ZeekRow>,
    pub endpoints: [EndpointReport; 2],
}

/// How much of a [`ConnectionReport`] a sink reads: the SHA-1 Community
/// ID, Zeek's view, the evidence frames, the RST origins and the endpoints'
/// own address strings cost about three quarters of a report, and the
/// connections sidecar shows none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportKind {
    /// [`ConnectionReport::brief`].
    Brief,
    /// [`ConnectionReport::new`].
    Full,
}

impl ConnectionReport {
    /// The report of `conn`, with Zeek's model of it when the pass kept
    /// one beside it (without, the Zeek fields are those of a connection
    /// Zeek never saw start).
    pub fn new(
        conn: &Connection,
        zeek: Option<&ZeekTracker>,
        verdict: &ConnVerdict,
    ) -> ConnectionReport {
        let mut report = ConnectionReport::brief(conn, verdict);
        let unseen = ZeekTracker::default();
        let zeek = zeek.unwrap_or(&unseen);
        report.community_id = community_id::tcp(conn.endpoints[0].addr, conn.endpoints[1].addr);
        report.zeek_conn_state = zeek.conn_state();
        report.zeek_history = zeek.history();
        report.zeek_rows = zeek.rows();
        let client = verdict.client.index;
        let [first, second] = &mut report.endpoints;
        for (end, i, addr) in [
            (first, client, &report.client),
            (second, 1 - client, &report.server),
        ] {
            end.addr.clone_from(addr);
            end.evidence = conn.evidence[i].frames();
            end.rst_origin = conn
                .origin
                .judge(i)
                .map(|o| RstOrigin::of(o, verdict.endpoints[i].rst_forged));
        }
        report
    }

    /// The report of `conn` without what costs most and only some outputs
    /// show, for sinks that take no more ([`RowSink::brief_reports`]):
    /// `community_id`, `zeek_conn_state`, `zeek_history`, `zeek_rows` and
    /// each endpoint's `addr` and `evidence` are empty, and `rst_origin`
    /// is `None`. Everything else is as in [`ConnectionReport::new`].
    ///
    /// [`RowSink::brief_reports`]: crate::pipeline::sinks::RowSink::brief_reports
    pub fn brief(conn: &Connection, verdict: &ConnVerdict) -> ConnectionReport {
        let client = verdict.client.index;
        let endpoint = |i: usize| EndpointReport {
            addr: String::new(),
            side: Side::of(i, verdict),
            role: verdict.endpoints[i].role,
            closed_by: verdict.endpoints[i].closed_by,
            calls: verdict.endpoints[i].calls,
            final_state: conn.endpoints[i].state,
            state_since: conn.timeline.state_since[i],
            fin_ts: conn.timeline.fin[i],
            fin_retransmits: conn.timeline.fin_retransmits[i],
            data_after_fin: conn.timeline.data_after_fin[i],
            evidence: Vec::new(),
            rst_origin: None,
        };
        let h = conn.handshake;
        let handshake = match (h.syn, h.syn_ack, h.ack) {
            (true, true, true) => "complete",
            (false, false, _) => "none",
            _ => "partial",
        };
        let mut notes = Vec::new();
        each_note(conn, verdict, |note| notes.push(note));
        ConnectionReport {
            id: conn.id,
            client: socket_addr_text(&conn.endpoints[client].addr),
            server: socket_addr_text(&conn.endpoints[1 - client].addr),
            tunnel: *conn.tunnel(),
            community_id: String::new(),
            first_frame: conn.first_frame,
            last_frame: conn.last_frame,
            first_ts: conn.timeline.first,
            last_ts: conn.timeline.last,
            rst_ts: conn.timeline.rst,
            rsts: conn.timeline.rsts,
            idle_reset_secs: verdict
                .idle_reset
                .map(|idle| f64::from(idle.idle_ms) / 1000.0),
            handshake,
            outcome: verdict.outcome,
            closer: verdict.closer,
            widened: verdict.widened,
            notes,
            zeek_conn_state: "",
            zeek_history: String::new(),
            zeek_rows: Vec::new(),
            endpoints: [endpoint(client), endpoint(1 - client)],
        }
    }
}

/// The notes of `conn`, settled as `verdict`, in the order a report lists
/// them: for [`ConnectionReport::brief`], and for a line written straight
/// from the connection (the connections sidecar's).
pub(crate) fn each_note(
    conn: &Connection,
    verdict: &ConnVerdict,
    mut note: impl FnMut(&'static str),
) {
    let client = verdict.client.index;
    let states = [
        conn.endpoints[client].state,
        conn.endpoints[1 - client].state,
    ];
    let mut note_if = |cond: bool, text| {
        if cond {
            note(text)
        }
    };
    note_if(conn.mid_stream, "mid-stream");
    note_if(verdict.client.guessed, "client-guessed");
    note_if(conn.reuses.is_some(), "port-reuse");
    note_if(verdict.simultaneous, "simultaneous-close");
    note_if(conn.rst_ignored, "rst-ignored");
    let sight = conn.sight();
    note_if(sight.unseen.contains(&true), "one-direction");
    note_if(conn.evidence.iter().any(|e| e.fin_unseen), "fin-unseen");
    note_if(verdict.end_unseen_at.is_some(), "end-unseen");
    note_if(verdict.endpoints.iter().any(|e| e.rst_forged), "rst-forged");
    note_if(verdict.idle_reset.is_some(), "idle-reset");
    note_if(
        (0..2).any(|i| conn.origin.judge(i).is_some_and(|o| o.unchecked)),
        "rst-origin-unchecked",
    );
    note_if(states.contains(&TcpState::CloseWait), "close-wait-at-end");
    note_if(states.contains(&TcpState::FinWait2), "fin-wait-2-at-end");
}

/// A connection whose verdict is settled, as the one-pass schedules hand
/// it to [`RowSink::settled`]: its report is made only for a sink that
/// asks for it ([`SettledConnection::report`]), so that a sink writing a
/// few of a report's fields can take them from the connection instead
/// (the connections sidecar: a brief report, made and dropped, was
/// three fifths of its ~2,200 instructions a connection).
///
/// [`RowSink::settled`]: crate::pipeline::sinks::RowSink::settled
pub struct SettledConnection<'a> {
    pub(crate) conn: &'a Connection,
    /// Zeek's view of it, when the pass followed one.
    pub(crate) zeek: Option<&'a ZeekTracker>,
    pub(crate) verdict: &'a ConnVerdict,
}

impl SettledConnection<'_> {
    /// Its report: [`ConnectionReport::brief`] when `brief`, else
    /// [`ConnectionReport::new`] (with Zeek's view, if followed).
    pub fn report(&self, brief: bool) -> ConnectionReport {
        if brief {
            ConnectionReport::brief(self.conn, self.verdict)
        } else {
            ConnectionReport::new(self.conn, self.zeek, self.verdict)
        }
    }
}
