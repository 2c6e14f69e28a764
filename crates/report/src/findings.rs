//! Findings: plain-language diagnoses drawn from the aggregates, each with
//! its evidence (counts), how sure it is and why, and example
//! connections; ranked by severity, then by the connections affected.

use serde::Serialize;

use crate::aggregate::{Abort, Aggregate, SideKey, CLOSE_WAIT_LEAK_SECS, RST_SERIES};
use crate::example::{Example, Subject};
use crate::timewait::{port_pressure, EPHEMERAL_PORTS, TIME_WAIT_SECS};

/// A TIME-WAIT peak below this is not a finding: a few hundred sockets
/// cost a host nothing.
pub const TIME_WAIT_MIN_PEAK: u64 = 100;

/// An RST burst: a bucket of the RST timeline with at least this many
/// RSTs...
const BURST_MIN_RSTS: u64 = 20;
/// ... and this many times the mean of the non-empty buckets ...
const BURST_FACTOR: u64 = 4;
/// ... among at least this many non-empty buckets.
const BURST_MIN_BUCKETS: usize = 4;

/// How much a finding matters, most first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warn,
    Note,
    Info,
}

/// How sure a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// What a finding is about (its `kind` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Abort,
    ResetAfterClose,
    ForgedReset,
    TimeWait,
    CloseWait,
    Refused,
    RstBurst,
    FinRetransmit,
    HalfClose,
    IdleReset,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// From 1.
    pub rank: usize,
    pub kind: Kind,
    pub severity: Severity,
    /// The service, host or time it is about.
    pub subject: String,
    /// The diagnosis, in one sentence.
    pub title: String,
    /// What it means and what to do.
    pub advice: String,
    /// Connections concerned, and out of how many (of the subject).
    pub affected: u64,
    pub total: u64,
    /// The numbers it rests on, in words.
    pub evidence: Vec<String>,
    pub confidence: Confidence,
    pub confidence_why: String,
    pub examples: Vec<Example>,
}

/// `close 12, shutdown-wr 3`: a map's counts, most first (ties by name),
/// each written by `entry`, joined with commas (a service row's calls).
pub fn by_count(
    counts: &std::collections::BTreeMap<String, u64>,
    entry: impl Fn(&str, u64) -> String,
) -> String {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| entry(k, **n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `3,900`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12% (340/2,812)`; below 1 %, one decimal.
pub fn share(part: u64, whole: u64) -> String {
    let pct = if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    };
    let pct = if pct < 1.0 && part > 0 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.0}%")
    };
    format!("{pct} ({}/{})", thousands(part), thousands(whole))
}

/// `42 s`, `3.2 s`, `5 min 3 s`.
pub fn duration(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 600.0 {
        format!("{secs:.0} s")
    } else {
        let s = secs.round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    }
}

struct Draft {
    kind: Kind,
    severity: Severity,
    subject: String,
    title: String,
    advice: String,
    affected: u64,
    total: u64,
    evidence: Vec<String>,
    confidence: Confidence,
    confidence_why: String,
    examples: Vec<Example>,
}

/// Every finding, ranked.
pub fn findings(agg: &Aggregate) -> Vec<Finding> {
    let mut drafts = Vec::new();
    aborts(agg, &mut drafts);
    time_wait(agg, &mut drafts);
    close_wait(agg, &mut drafts);
    refused(agg, &mut drafts);
    idle_resets(agg, &mut drafts);
    rst_burst(agg, &mut drafts);
    per_service_notes(agg, &mut drafts);
    drafts.sort_by(|a, b| {
        (
            a.severity,
            std::cmp::Reverse(a.affected),
            a.kind,
            &a.subject,
        )
            .cmp(&(
                b.severity,
                std::cmp::Reverse(b.affected),
                b.kind,
                &b.subject,
            ))
    });
    drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| Finding {
            rank: i + 1,
            kind: d.kind,
            severity: d.severity,
            subject: d.subject,
            title: d.title,
            advice: d.advice,
            affected: d.affected,
            total: d.total,
            evidence: d.evidence,
            confidence: d.confidence,
            confidence_why: d.confidence_why,
            examples: d.examples,
        })
        .collect()
}

fn aborts(agg: &Aggregate, out: &mut Vec<Draft>) {
    for (&service, stats) in &agg.services {
        let total = stats.tally.connections;
        for side in [SideKey::Server, SideKey::Client] {
            for abort in [Abort::AfterData, Abort::WithoutData] {
                let n = stats.aborts[side.index()][abort as usize];
                if n == 0 {
                    continue;
                }
                let who = match side {
                    SideKey::Server => format!("{service}"),
                    SideKey::Client => format!("Clients of {service}"),
                };
                let verb = if side == SideKey::Server {
                    "resets"
                } else {
                    "reset"
                };
                let whose = if side == SideKey::Server {
                    "its"
                } else {
                    "their"
                };
                let peer = if side == SideKey::Server {
                    "client"
                } else {
                    "server"
                };
                let it = if side == SideKey::Server {
                    "it"
                } else {
                    "they"
                };
                let (what, calls) = match abort {
                    Abort::AfterData => (
                        format!("right after receiving data {it} did not read"),
                        "close() with unread data, or SO_LINGER 0 (or shutdown(SHUT_RD) then close())",
                    ),
                    Abort::WithoutData => (
                        "without having received anything".to_string(),
                        "close() with SO_LINGER 0",
                    ),
                };
                let title = format!(
                    "{who} {verb} {} of {whose} connections {what}: {calls}. The {peer} sees \"connection reset by peer\".",
                    share(n, total)
                );
                out.push(Draft {
                    kind: Kind::Abort,
                    severity: if n * 100 >= total { Severity::Warn } else { Severity::Note },
                    subject: service.to_string(),
                    title,
                    advice: format!(
                        "An abortive close discards data in flight both ways. If the {} application means to close, it should read what was sent (or shutdown(SHUT_WR) and drain) before close(); if it sets SO_LINGER 0, it should only do so on purpose.",
                        side.name()
                    ),
                    affected: n,
                    total,
                    evidence: vec![
                        format!("{} of {} connections end with an abortive RST from the {} (RST+ACK carrying its next sequence number)", thousands(n), thousands(total), side.name()),
                        format!("inferred calls: {calls}"),
                    ],
                    confidence: Confidence::High,
                    confidence_why: "Linux sends an RST+ACK at the sender's next sequence number only from tcp_send_active_reset(); which of the candidate calls it was, the wire cannot tell".into(),
                    examples: agg.examples.of(&Subject::Abort { service, side, abort: abort as u8 }),
                });
            }
        }
        if stats.forged_resets > 0 {
            let n = stats.forged_resets;
            out.push(Draft {
                kind: Kind::ForgedReset,
                severity: Severity::Warn,
                subject: service.to_string(),
                title: format!(
                    "{} of the connections of {service} are reset by a middlebox on the path, in an endpoint's name: neither application reset them.",
                    share(n, total)
                ),
                advice: "A firewall, IPS, load balancer or censor between the two sends these RSTs. Look for the device whose rules match this traffic; the endpoints' applications are not at fault.".into(),
                affected: n,
                total,
                evidence: vec![format!("{} connections end with an RST that its claimed sender did not send (TTL, a router seeing it once, the endpoint still sending: see each example's rst_origin)", thousands(n))],
                confidence: Confidence::High,
                confidence_why: "each RST differs from its claimed sender's own segments by a strong sign; a middlebox next to the endpoint would not be seen".into(),
                examples: agg.examples.of(&Subject::ForgedReset(service)),
            });
        }
        if stats.resets_after_close > 0 {
            let n = stats.resets_after_close;
            out.push(Draft {
                kind: Kind::ResetAfterClose,
                severity: Severity::Warn,
                subject: service.to_string(),
                title: format!(
                    "{} of the connections of {service} are reset because one side kept sending after its peer had closed (close() or shutdown(SHUT_RDWR)); the sender sees \"connection reset by peer\".",
                    share(n, total)
                ),
                advice: "The side that closes first should stop reading only when the protocol says nothing more will come; to keep reading after it is done sending, it should use shutdown(SHUT_WR).".into(),
                affected: n,
                total,
                evidence: vec![format!("{} resets answer data sent after the receiver's FIN", thousands(n))],
                confidence: Confidence::High,
                confidence_why: "the RST carries no ACK and follows the data at once, as Linux's reply to data for a closed socket".into(),
                examples: agg.examples.of(&Subject::ResetAfterClose(service)),
            });
        }
    }
}

fn time_wait(agg: &Aggregate, out: &mut Vec<Draft>) {
    for (key, tw) in &agg.time_wait {
        let (peak, _, exact) = tw.peak();
        if peak < TIME_WAIT_MIN_PEAK {
            continue;
        }
        let total = agg
            .services
            .get(&key.peer)
            .map_or(tw.total, |s| s.tally.connections);
        let (title, advice, severity) = match key.side {
            SideKey::Client => {
                let pct = port_pressure(peak);
                (
                    format!(
                        "Client {} holds up to {} sockets in TIME-WAIT towards {}: it closes first. That is {pct:.1}% of the {} local ports it can use towards that address and port.",
                        key.holder, thousands(peak), key.peer, thousands(EPHEMERAL_PORTS)
                    ),
                    "Each connection the client closes first keeps its local port for 60 s. Reuse connections (keep-alive, pooling), or let the server close first.".to_string(),
                    if pct >= 50.0 { Severity::Error } else { Severity::Warn },
                )
            }
            SideKey::Server => (
                format!(
                    "Server {} holds up to {} sockets in TIME-WAIT towards its clients: it closes first.",
                    key.peer, thousands(peak)
                ),
                "A server in TIME-WAIT costs memory, not ports; it is the usual price of a server that closes first (HTTP/1.0 style).".to_string(),
                Severity::Note,
            ),
        };
        out.push(Draft {
            kind: Kind::TimeWait,
            severity,
            subject: key.holder.to_string(),
            title,
            advice,
            affected: peak,
            total,
            evidence: vec![
                format!(
                    "{} connections left it in TIME-WAIT; {} {} within one {TIME_WAIT_SECS} s window, over all the captures",
                    thousands(tw.total),
                    if exact { "at most" } else { "at least" },
                    thousands(peak)
                ),
                format!("assumes Linux's fixed {TIME_WAIT_SECS} s TIME-WAIT and its default ip_local_port_range (32768-60999)"),
            ],
            confidence: Confidence::Medium,
            confidence_why: format!("the {TIME_WAIT_SECS} s TIME-WAIT is Linux's, not seen on the wire; sockets of connections outside the capture are not counted"),
            examples: agg.examples.of(&Subject::TimeWait(*key)),
        });
    }
}

fn close_wait(agg: &Aggregate, out: &mut Vec<Draft>) {
    for (&(service, side), cw) in &agg.close_wait {
        let total = agg
            .services
            .get(&service)
            .map_or(cw.connections, |s| s.tally.connections);
        let old = cw.older_than_limit;
        let (whose, app) = match side {
            SideKey::Server => (
                format!("{} connections of {service}", thousands(cw.connections)),
                "the server application",
            ),
            SideKey::Client => (
                format!(
                    "{} client sockets towards {service}",
                    thousands(cw.connections)
                ),
                "the client application",
            ),
        };
        let age = if old > 0 {
            format!(
                "{} of them for over {CLOSE_WAIT_LEAK_SECS:.0} s, the oldest for {}",
                thousands(old),
                duration(cw.oldest_secs)
            )
        } else {
            format!("the oldest for {}", duration(cw.oldest_secs))
        };
        out.push(Draft {
            kind: Kind::CloseWait,
            severity: if old > 0 { Severity::Error } else { Severity::Warn },
            subject: service.to_string(),
            title: format!(
                "{whose} were still in CLOSE-WAIT at the end of the capture ({age}): the peer closed, and {app} has not called close()."
            ),
            advice: format!("A socket stays in CLOSE-WAIT until its application closes it; if the count grows, {app} leaks sockets (a missing close() on end of file or on an error path)."),
            affected: cw.connections,
            total,
            evidence: vec![
                format!("{} sockets received their peer's FIN and sent nothing to close", thousands(cw.connections)),
                format!("oldest: the FIN came {} before the end of the capture", duration(cw.oldest_secs)),
            ],
            confidence: if cw.partial > 0 {
                Confidence::Low
            } else if old > 0 {
                Confidence::High
            } else {
                Confidence::Medium
            },
            confidence_why: if cw.partial > 0 {
                format!("{} of these connections were not seen opening (capture started late, or saw one direction only): their close() may have gone unseen", thousands(cw.partial))
            } else if old > 0 {
                format!("over {CLOSE_WAIT_LEAK_SECS:.0} s without a close() is no longer an application still finishing its work")
            } else {
                "the capture ended soon after the FIN: the application may still close them".into()
            },
            examples: agg.examples.of(&Subject::CloseWait(service, side)),
        });
    }
}

fn refused(agg: &Aggregate, out: &mut Vec<Draft>) {
    for (&service, stats) in &agg.services {
        let n = stats.tally.outcomes.get(tcpshut_engine::Outcome::Refused);
        if n == 0 {
            continue;
        }
        let hosts = stats.clients.len() as u64;
        out.push(Draft {
            kind: Kind::Refused,
            severity: Severity::Note,
            subject: service.to_string(),
            title: format!(
                "Nothing listens on {service}: {} connection attempt{} from {} host{} {} refused.",
                thousands(n),
                if n == 1 { "" } else { "s" },
                thousands(hosts),
                if hosts == 1 { "" } else { "s" },
                if n == 1 { "was" } else { "were" }
            ),
            advice: "The clients are configured with a port where no server runs (or the server was down); they see \"connection refused\".".into(),
            affected: n,
            total: stats.tally.connections,
            evidence: vec![format!("{} SYNs answered by RST+ACK", thousands(n))],
            confidence: Confidence::High,
            confidence_why: "an RST acknowledging the SYN is the kernel's answer for a port without a listener".into(),
            examples: agg.examples.of(&Subject::Refused(service)),
        });
    }
}

fn idle_resets(agg: &Aggregate, out: &mut Vec<Draft>) {
    for (&(client, service), idle) in &agg.idle {
        let n = idle.connections;
        let total = agg
            .services
            .get(&service)
            .map_or(n, |s| s.tally.connections);
        let stray = n - idle.forged;
        let by = match (idle.forged, stray) {
            (_, 0) => "an RST forged on the path in the peer's name".to_string(),
            (0, _) => "the peer's own RST: it no longer had the connection".to_string(),
            (f, s) => {
                format!("{f} forged on the path, {s} from a peer that no longer had the connection")
            }
        };
        out.push(Draft {
            kind: Kind::IdleReset,
            severity: Severity::Warn,
            subject: format!("{client} -> {service}"),
            title: format!(
                "Connections from {client} to {service} idle more than {} are reset: a middlebox idle timeout ({} of the connections of {service}).",
                duration(idle.shortest_secs),
                share(n, total)
            ),
            advice: "A NAT or stateful firewall on the path forgets connections that stay silent longer than its timeout; the next packet is reset. Enable TCP keepalive (or an application heartbeat) at an interval below the timeout, or raise the middlebox's timeout.".into(),
            affected: n,
            total,
            evidence: vec![
                format!(
                    "{} connections were reset by the first packet after {} to {} of silence",
                    thousands(n),
                    duration(idle.shortest_secs),
                    duration(idle.longest_secs)
                ),
                format!("the reset was {by}"),
            ],
            confidence: if idle.forged == n { Confidence::High } else { Confidence::Medium },
            confidence_why: if idle.forged == n {
                "the RSTs did not come from the peer (TTL or path), and each answered the first packet after the silence".into()
            } else {
                "a peer that rebooted during the silence answers the same way as one behind a NAT that forgot the mapping".into()
            },
            examples: agg.examples.of(&Subject::IdleReset(client, service)),
        });
    }
}

fn rst_burst(agg: &Aggregate, out: &mut Vec<Draft>) {
    // RSTs per bucket, and the connections they reset (same buckets).
    let buckets: Vec<(i64, u64)> = agg
        .rst_segments
        .iter()
        .map(|(start, c)| (start, c[0]))
        .collect();
    if buckets.len() < BURST_MIN_BUCKETS {
        return;
    }
    let all: u64 = buckets.iter().map(|b| b.1).sum();
    let mean = all / buckets.len() as u64;
    let Some(&(start, peak)) = buckets
        .iter()
        .max_by_key(|(start, n)| (*n, std::cmp::Reverse(*start)))
    else {
        return;
    };
    if peak < BURST_MIN_RSTS || peak < BURST_FACTOR * mean.max(1) {
        return;
    }
    let connections: u64 = agg
        .rsts
        .iter()
        .find(|(s, _)| *s == start)
        .map_or(0, |(_, c)| c.iter().sum());
    let all_connections: u64 = agg.rsts.iter().map(|(_, c)| c.iter().sum::<u64>()).sum();
    let width = agg.rst_segments.width_secs();
    out.push(Draft {
        kind: Kind::RstBurst,
        severity: Severity::Warn,
        subject: format!("{start}"),
        title: format!(
            "RST burst: {} RSTs within {width} s (from {start}, epoch seconds), {} of all RSTs, resetting {} connections.",
            thousands(peak),
            share(peak, all),
            thousands(connections)
        ),
        advice: "Resets bunched in time point to one event: a server restart, a deploy, a load balancer draining, a timeout hit by many at once.".into(),
        affected: connections,
        total: all_connections,
        evidence: vec![
            format!(
                "the busiest {width} s holds {} RSTs in {} connections; the mean of the {} periods with RSTs is {} RSTs",
                thousands(peak),
                thousands(connections),
                buckets.len(),
                thousands(mean)
            ),
            format!("connections by kind: {}", RST_SERIES.join(", ")),
        ],
        confidence: Confidence::Medium,
        confidence_why: "a burst is a pattern in time; its cause is not on the wire".into(),
        examples: agg.examples.of(&Subject::RstBucket(start)),
    });
}

fn per_service_notes(agg: &Aggregate, out: &mut Vec<Draft>) {
    for (&service, stats) in &agg.services {
        let total = stats.tally.connections;
        if stats.fin_retransmit_connections > 0 {
            let n = stats.fin_retransmit_connections;
            out.push(Draft {
                kind: Kind::FinRetransmit,
                severity: Severity::Note,
                subject: service.to_string(),
                title: format!(
                    "{} of the connections of {service} sent a FIN again ({} FINs retransmitted): the peer stopped acknowledging.",
                    share(n, total),
                    thousands(stats.fin_retransmits)
                ),
                advice: "The peer vanished (crashed, unplugged) or a firewall dropped its segments; the closing side retries until it gives up.".into(),
                affected: n,
                total,
                evidence: vec![format!("{} FINs at a sequence number already used by a FIN", thousands(stats.fin_retransmits))],
                confidence: Confidence::Medium,
                confidence_why: "a FIN lost before the capture point looks the same from here".into(),
                examples: agg.examples.of(&Subject::FinRetransmit(service)),
            });
        }
        if stats.half_close > 0 {
            let n = stats.half_close;
            out.push(Draft {
                kind: Kind::HalfClose,
                severity: Severity::Info,
                subject: service.to_string(),
                title: format!(
                    "{} of the connections of {service} use half-close: one side called shutdown(SHUT_WR) and kept reading what the other still sent.",
                    share(n, total)
                ),
                advice: "Not a problem: the protocol ends one direction first. Middleboxes that close on the first FIN break it.".into(),
                affected: n,
                total,
                evidence: vec![format!("in {} connections a side acknowledged new data after its own FIN", thousands(n))],
                confidence: Confidence::High,
                confidence_why: "data after the peer's FIN, acknowledged, is only possible with a half-close".into(),
                examples: agg.examples.of(&Subject::HalfClose(service)),
            });
        }
    }
}
