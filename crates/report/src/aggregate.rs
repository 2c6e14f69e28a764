//! Aggregates over connections: counts by service, port, client host,
//! outcome and cause; who closes first; call classes per side (a class
//! such as `close|shut_rdwr` is counted as it is, never split into
//! guesses); TIME-WAIT peaks; CLOSE-WAIT at the end; refusals; idle
//! resets per path; RSTs and
//! teardowns over time; half-close use; retransmitted FINs; and a few
//! example connections per subject.
//!
//! A [`CaptureAggregator`] takes one capture's connection reports as the
//! engine streams them ([`tcpshut_engine::each_report`]) and keeps only
//! these aggregates, so memory grows with services and hosts, not with
//! connections; [`Aggregate::merge`] combines captures in any grouping
//! with the same result.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use tcpshut_engine::CaptureSummary;
use tcpshut_engine::Side;
use tcpshut_engine::TcpState;
use tcpshut_engine::Timestamp;
use tcpshut_engine::{Call, CallSet, CallSteps, ClosedBy, Closer, Outcome, FIN_STILL_READING};
use tcpshut_engine::{ConnectionReport, EndpointReport};

use crate::example::{Example, Examples, Subject};
use crate::histogram::Histogram;
use crate::timewait::TimeWaitPeak;

/// Connections by outcome, in [`Outcome::ALL`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes(pub [u64; Outcome::ALL.len()]);

impl Outcomes {
    pub fn add(&mut self, outcome: Outcome) {
        self.0[outcome as usize] += 1;
    }
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome as usize]
    }
    fn merge(&mut self, other: &Outcomes) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

/// As an object keyed by outcome name, every outcome present.
impl Serialize for Outcomes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(Outcome::ALL.iter().map(|o| (o.name(), self.get(*o))))
    }
}

/// Connections by who closed first, in [`Closer::ALL`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Closers(pub [u64; Closer::ALL.len()]);

impl Closers {
    fn add(&mut self, closer: Closer) {
        self.0[closer as usize] += 1;
    }
    pub fn get(&self, closer: Closer) -> u64 {
        self.0[closer as usize]
    }
}

impl Serialize for Closers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(Closer::ALL.iter().map(|c| (c.name(), self.get(*c))))
    }
}

/// Connections, by outcome and by who closed first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub connections: u64,
    pub outcomes: Outcomes,
    pub closer: Closers,
}

impl Tally {
    fn add(&mut self, r: &ConnectionReport) {
        self.connections += 1;
        self.outcomes.add(r.outcome);
        self.closer.add(r.closer);
    }
    fn merge(&mut self, other: &Tally) {
        self.connections += other.connections;
        self.outcomes.merge(&other.outcomes);
        for (a, b) in self.closer.0.iter_mut().zip(other.closer.0) {
            *a += b;
        }
    }
}

/// How an endpoint ended its side abortively, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    /// RST after having received data: close() with unread data,
    /// SO_LINGER 0, or shutdown(SHUT_RD) then close().
    AfterData,
    /// RST without ever receiving data: SO_LINGER 0.
    WithoutData,
}

impl Abort {
    pub fn of(endpoint: &EndpointReport) -> Option<Abort> {
        if !matches!(endpoint.closed_by, ClosedBy::Rst | ClosedBy::FinRst) {
            return None;
        }
        let last = endpoint.calls.steps().last()?;
        if last.contains(Call::CloseUnread) {
            Some(Abort::AfterData)
        } else {
            Some(Abort::WithoutData)
        }
    }
}

/// Everything counted for one service (server address and port).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    pub tally: Tally,
    /// Inferred call classes per side, as written (`close|shut_rdwr`), with
    /// `-` for none.
    pub calls: [BTreeMap<String, u64>; 2],
    /// Abortive closes per side (client, server): after data, without.
    pub aborts: [[u64; 2]; 2],
    /// Resets that no abortive close explains: data sent to a peer that
    /// had closed, answered by an RST.
    pub resets_after_close: u64,
    /// Resets by RSTs forged on the path in an endpoint's name (idle
    /// resets apart: see [`Aggregate::idle`]).
    pub forged_resets: u64,
    /// Connections where a side half-closed: it sent its FIN and then
    /// acknowledged new data (shutdown(SHUT_WR)).
    pub half_close: u64,
    /// Connections with a retransmitted FIN, and the FINs sent again.
    pub fin_retransmit_connections: u64,
    pub fin_retransmits: u64,
    /// Distinct client hosts (for refusals: who tried).
    pub clients: BTreeSet<IpAddr>,
}

impl ServiceStats {
    fn merge(&mut self, other: &ServiceStats) {
        self.tally.merge(&other.tally);
        for side in 0..2 {
            for (k, v) in &other.calls[side] {
                *self.calls[side].entry(k.clone()).or_default() += v;
            }
            for kind in 0..2 {
                self.aborts[side][kind] += other.aborts[side][kind];
            }
        }
        self.resets_after_close += other.resets_after_close;
        self.forged_resets += other.forged_resets;
        self.half_close += other.half_close;
        self.fin_retransmit_connections += other.fin_retransmit_connections;
        self.fin_retransmits += other.fin_retransmits;
        self.clients.extend(other.clients.iter().copied());
    }
}

/// Sockets of one holder left in CLOSE-WAIT at the end of their captures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CloseWait {
    pub connections: u64,
    /// Age of the oldest, seconds: how long before the end of its capture
    /// the peer's FIN came (a lower bound of the leak's age).
    pub oldest_secs: f64,
    /// Those older than [`CLOSE_WAIT_LEAK_SECS`].
    pub older_than_limit: u64,
    /// Those whose connection the capture did not see open (no complete
    /// handshake): maybe seen in one direction only, so less certain.
    pub partial: u64,
}

/// CLOSE-WAIT older than this at the end of a capture is reported as old:
/// as long as Linux keeps a TIME-WAIT, far longer than an application
/// takes to react to end of file.
pub const CLOSE_WAIT_LEAK_SECS: f64 = 60.0;

/// Who holds TIME-WAIT sockets towards whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeWaitKey {
    pub holder: IpAddr,
    pub side: SideKey,
    /// The service: the one a client holder connected to, or a server
    /// holder's own.
    pub peer: SocketAddr,
}

/// [`Side`] with an order, for keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SideKey {
    Client,
    Server,
}

impl SideKey {
    pub fn of(side: Side) -> SideKey {
        match side {
            Side::Client => SideKey::Client,
            Side::Server => SideKey::Server,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SideKey::Client => "client",
            SideKey::Server => "server",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Idle resets on one path (client host to service): connections reset
/// by the first packet after a silence (`tcpshut_engine::idle`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct IdleResets {
    pub connections: u64,
    /// Of them, the RST was forged in the peer's name (else stray).
    pub forged: u64,
    /// The shortest and longest silence before one, seconds.
    pub shortest_secs: f64,
    pub longest_secs: f64,
}

impl IdleResets {
    fn add(&mut self, secs: f64, forged: bool) {
        self.merge(&IdleResets {
            connections: 1,
            forged: u64::from(forged),
            shortest_secs: secs,
            longest_secs: secs,
        });
    }

    fn merge(&mut self, other: &IdleResets) {
        if self.connections == 0 {
            *self = *other;
            return;
        }
        self.connections += other.connections;
        self.forged += other.forged;
        self.shortest_secs = self.shortest_secs.min(other.shortest_secs);
        self.longest_secs = self.longest_secs.max(other.longest_secs);
    }
}

/// Series of the RST histogram: connections with an RST, by the kind that
/// explains the outcome.
pub const RST_SERIES: [&str; 3] = ["abortive", "refused", "other"];

/// The aggregates of one or more captures.
#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    pub captures: u64,
    /// Captures read only up to a damaged record.
    pub incomplete: u64,
    pub frames: u64,
    pub tally: Tally,
    pub services: BTreeMap<SocketAddr, ServiceStats>,
    pub ports: BTreeMap<u16, Tally>,
    pub clients: BTreeMap<IpAddr, Tally>,
    /// Connections by outcome and cause ([`cause`]).
    pub causes: BTreeMap<(&'static str, String), u64>,
    pub time_wait: BTreeMap<TimeWaitKey, TimeWaitPeak>,
    /// By service and the side that holds the socket.
    pub close_wait: BTreeMap<(SocketAddr, SideKey), CloseWait>,
    /// Idle resets by client host and service.
    pub idle: BTreeMap<(IpAddr, SocketAddr), IdleResets>,
    /// Teardowns over time, by outcome ([`Outcome::ALL`] order).
    pub teardowns: Histogram<{ Outcome::ALL.len() }>,
    /// Connections with an RST over time ([`RST_SERIES`]), by their first.
    pub rsts: Histogram<3>,
    /// RSTs over time, each connection's at the time of its first (they
    /// come within moments of each other); the same buckets as `rsts`.
    pub rst_segments: Histogram<1>,
    pub examples: Examples,
}

impl Aggregate {
    /// Adds another aggregate (another capture, or group of them).
    pub fn merge(&mut self, other: Aggregate) {
        self.captures += other.captures;
        self.incomplete += other.incomplete;
        self.frames += other.frames;
        self.tally.merge(&other.tally);
        for (k, v) in &other.services {
            self.services.entry(*k).or_default().merge(v);
        }
        for (k, v) in &other.ports {
            self.ports.entry(*k).or_default().merge(v);
        }
        for (k, v) in &other.clients {
            self.clients.entry(*k).or_default().merge(v);
        }
        for (k, v) in other.causes {
            *self.causes.entry(k).or_default() += v;
        }
        for (k, v) in &other.time_wait {
            self.time_wait.entry(*k).or_default().merge(v);
        }
        for (k, v) in other.close_wait {
            let cw = self.close_wait.entry(k).or_default();
            cw.connections += v.connections;
            cw.oldest_secs = cw.oldest_secs.max(v.oldest_secs);
            cw.older_than_limit += v.older_than_limit;
            cw.partial += v.partial;
        }
        for (k, v) in &other.idle {
            self.idle.entry(*k).or_default().merge(v);
        }
        self.teardowns.merge(&other.teardowns);
        self.rsts.merge(&other.rsts);
        self.rst_segments.merge(&other.rst_segments);
        self.examples.merge(other.examples);
        self.examples.widen_rst_buckets(self.rsts.width_secs());
    }
}

/// A connection's cause, within its outcome, in words short enough for a
/// table: who ended it and with which class of calls.
pub fn cause(r: &ConnectionReport) -> String {
    let calls = |e: &EndpointReport| calls_text(&e.calls);
    match r.outcome {
        Outcome::Refused => "nothing listening (SYN answered by RST)".into(),
        Outcome::Unknown => "the capture cannot tell (started late, or one direction)".into(),
        Outcome::Open => match open_state(r) {
            Some((side, state)) => format!("{} in {state} at the end", side.name()),
            None => "open at the end".into(),
        },
        Outcome::Reset => {
            for (i, e) in r.endpoints.iter().enumerate() {
                if let Some(abort) = Abort::of(e) {
                    let side = if i == 0 { "client" } else { "server" };
                    return match abort {
                        Abort::AfterData => format!("{side} aborts after data ({})", calls(e)),
                        Abort::WithoutData => format!("{side} aborts (linger0)"),
                    };
                }
            }
            if r.idle_reset_secs.is_some() {
                return "idle reset (the path dropped its state)".into();
            }
            if r.notes.contains(&"rst-forged") {
                return "RST forged on the path".into();
            }
            match r.closer {
                Closer::Client | Closer::Server => format!(
                    "{} closed ({}); later data reset",
                    r.closer,
                    calls(&r.endpoints[usize::from(r.closer == Closer::Server)])
                ),
                _ => "RST".into(),
            }
        }
        Outcome::Graceful | Outcome::HalfClosed => match r.closer {
            Closer::Client | Closer::Server => {
                let e = &r.endpoints[usize::from(r.closer == Closer::Server)];
                format!("{} closes first ({})", r.closer, calls(e))
            }
            Closer::Both => "simultaneous close".into(),
            Closer::None => "no FIN seen first".into(),
            Closer::Unknown => "who closed first is unknown".into(),
        },
    }
}

/// The side of an open connection that still holds a socket waiting for
/// its application (CLOSE-WAIT) or its peer (FIN-WAIT-2), if any.
fn open_state(r: &ConnectionReport) -> Option<(SideKey, TcpState)> {
    for state in [TcpState::CloseWait, TcpState::FinWait2] {
        for e in &r.endpoints {
            if e.final_state == state {
                return Some((SideKey::of(e.side), state));
            }
        }
    }
    None
}

/// Call steps as `close|shut_rdwr` (steps joined by `>`), `-` for none.
pub fn calls_text(calls: &CallSteps) -> String {
    if calls.is_empty() {
        "-".into()
    } else {
        calls.to_string()
    }
}

fn millis(ts: Timestamp) -> i64 {
    ts.secs
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos / 1_000_000))
}

/// When a connection was torn down, for the timeline: its first RST if an
/// RST decided it, else its last FIN, else its last segment.
fn teardown_time(r: &ConnectionReport) -> Timestamp {
    match (r.outcome, r.rst_ts) {
        (Outcome::Reset | Outcome::Refused, Some(ts)) => ts,
        _ => r
            .endpoints
            .iter()
            .filter_map(|e| e.fin_ts)
            .max()
            .unwrap_or(r.last_ts),
    }
}

/// One capture's aggregates, fed one connection report at a time.
pub struct CaptureAggregator {
    capture: usize,
    path: String,
    agg: Aggregate,
    /// Latest segment time seen: the end of the capture, once all are in.
    end: Option<Timestamp>,
    /// CLOSE-WAIT sockets, aged at the end (open connections only: the
    /// engine hands them over last, so this holds what is open at the end).
    close_wait: Vec<((SocketAddr, SideKey), Timestamp, bool)>,
}

impl CaptureAggregator {
    /// `capture` orders examples across captures (the input's position).
    pub fn new(capture: usize, path: String) -> Self {
        CaptureAggregator {
            capture,
            path,
            agg: Aggregate::default(),
            end: None,
            close_wait: Vec::new(),
        }
    }

    pub fn add(&mut self, r: &ConnectionReport) {
        let (Ok(client), Ok(server)) = (
            r.client.parse::<SocketAddr>(),
            r.server.parse::<SocketAddr>(),
        ) else {
            return;
        };
        self.end = self.end.max(Some(r.last_ts));
        let agg = &mut self.agg;
        agg.tally.add(r);
        agg.ports.entry(server.port()).or_default().add(r);
        agg.clients.entry(client.ip()).or_default().add(r);
        *agg.causes.entry((r.outcome.name(), cause(r))).or_default() += 1;
        let mut subjects = Vec::new();
        let mut note = |subject: Subject| subjects.push(subject);

        let service = agg.services.entry(server).or_default();
        service.tally.add(r);
        service.clients.insert(client.ip());
        let mut abortive = false;
        for (i, e) in r.endpoints.iter().enumerate() {
            *service.calls[i].entry(calls_text(&e.calls)).or_default() += 1;
            if let Some(abort) = Abort::of(e) {
                abortive = true;
                service.aborts[i][abort as usize] += 1;
                note(Subject::Abort {
                    service: server,
                    side: SideKey::of(e.side),
                    abort: abort as u8,
                });
            }
            if e.final_state == TcpState::TimeWait {
                // A client's sockets are counted per service (each takes a
                // local port towards it); a server's per its own service.
                let holder = if i == 0 { client.ip() } else { server.ip() };
                let peer = server;
                let key = TimeWaitKey {
                    holder,
                    side: SideKey::of(e.side),
                    peer,
                };
                agg.time_wait
                    .entry(key)
                    .or_default()
                    .enter(millis(e.state_since));
                note(Subject::TimeWait(key));
            }
            if e.final_state == TcpState::CloseWait {
                let key = (server, SideKey::of(e.side));
                let partial = r.handshake != "complete";
                self.close_wait.push((key, e.state_since, partial));
                note(Subject::CloseWait(key.0, key.1));
            }
        }
        // Neither endpoint aborted: the path reset it (idle resets are
        // counted per path below), or late data was.
        if r.outcome == Outcome::Reset && !abortive && r.idle_reset_secs.is_none() {
            if r.notes.contains(&"rst-forged") {
                service.forged_resets += 1;
                note(Subject::ForgedReset(server));
            } else {
                service.resets_after_close += 1;
                note(Subject::ResetAfterClose(server));
            }
        }
        if r.outcome == Outcome::Refused {
            note(Subject::Refused(server));
        }
        if let Some(secs) = r.idle_reset_secs {
            let forged = r.notes.contains(&"rst-forged");
            agg.idle
                .entry((client.ip(), server))
                .or_default()
                .add(secs, forged);
            note(Subject::IdleReset(client.ip(), server));
        }
        // Half-close in use: a side sent its FIN and still read (class 1).
        let still_reading = CallSet::of(FIN_STILL_READING);
        if r.endpoints
            .iter()
            .any(|e| e.calls.steps().first() == Some(&still_reading))
        {
            service.half_close += 1;
            note(Subject::HalfClose(server));
        }
        let fins: u64 = r
            .endpoints
            .iter()
            .map(|e| u64::from(e.fin_retransmits))
            .sum();
        if fins > 0 {
            service.fin_retransmit_connections += 1;
            service.fin_retransmits += fins;
            note(Subject::FinRetransmit(server));
        }
        agg.teardowns.add(teardown_time(r).secs, r.outcome as usize);
        if let Some(ts) = r.rst_ts {
            let series = match r.outcome {
                Outcome::Refused => 1,
                _ if abortive => 0,
                _ => 2,
            };
            let before = agg.rsts.width_secs();
            agg.rsts.add(ts.secs, series);
            agg.rst_segments.add_n(ts.secs, 0, u64::from(r.rsts.max(1)));
            let width = agg.rsts.width_secs();
            if width != before {
                agg.examples.widen_rst_buckets(width);
            }
            note(Subject::RstBucket(ts.secs.div_euclid(width) * width));
        }
        for subject in subjects {
            agg.examples
                .offer(subject, (self.capture, r.id), || Example::of(&self.path, r));
        }
    }

    /// The capture's aggregates, once every report is in.
    pub fn finish(mut self, summary: &CaptureSummary) -> Aggregate {
        self.agg.captures = 1;
        self.agg.frames = summary.frames;
        self.agg.incomplete = u64::from(summary.incomplete.is_some());
        let end = self.end.unwrap_or_default();
        for (key, since, partial) in self.close_wait {
            let age = end.secs_since(since).max(0.0);
            let cw = self.agg.close_wait.entry(key).or_default();
            cw.connections += 1;
            cw.oldest_secs = cw.oldest_secs.max(age);
            cw.older_than_limit += u64::from(age > CLOSE_WAIT_LEAK_SECS);
            cw.partial += u64::from(partial);
        }
        self.agg
    }
}
