//! Compares our Zeek-compatible `zeek_conn_state` / `zeek_history` with
//! the conn.log baselines of Zeek's own test suite, for the `zeek` rows of
//! `testdata/third-party/MANIFEST.tsv` (see that folder's README.md).
//!
//! One tcpshut connection can span several Zeek connections: Zeek removes
//! a connection on timers (5 s after an unanswered SYN, 5 s after a close
//! or a RST, inactivity…) and starts a new one with the next packet. Each
//! report lists the Zeek connections it spans in `zeek_rows`. Each Zeek
//! baseline row is matched to the next unused one of our Zeek rows with
//! the same endpoint pair (either order; repeated 4-tuples in order).
//! Rows inside Teredo or GTP tunnels (`"tunneled":true`) are compared
//! like the others. Rows that only print endpoint states
//! (no conn_state and no history) have nothing to compare and are
//! skipped.
//!
//! Rows of a 4-tuple for which Zeek logged a different number of
//! connections than we derived are reported separately.
//!
//! Prints every disagreement and the agreement rates; asserts that every
//! conn_state value and history agrees, over all rows and on 4-tuples
//! both tools delimit alike.

mod common;

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use tcpshut_engine::ConnectionReport;
use tcpshut_engine::ZeekRow;

/// conn_state and history over every compared row (see docs/zeek.md).
const MIN_AGREEMENT_ALL_ROWS: f64 = 1.0;
/// conn_state and history on 4-tuples both tools delimit alike.
const MIN_AGREEMENT: f64 = 1.0;

/// An endpoint as a Zeek row names it: `ip:port`, `[v6]:port`, or (in one
/// zeek-cut baseline without the port) a bare address.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ep {
    Full(SocketAddr),
    Host(IpAddr),
}

impl Ep {
    fn parse(s: &str) -> Option<Ep> {
        s.parse()
            .map(Ep::Full)
            .ok()
            .or_else(|| s.parse().map(Ep::Host).ok())
    }

    fn matches(self, addr: &SocketAddr) -> bool {
        match self {
            Ep::Full(a) => a == *addr,
            Ep::Host(ip) => ip == addr.ip(),
        }
    }
}

struct Expected {
    file: String,
    orig: Option<Ep>,
    resp: Option<Ep>,
    conn_state: Option<String>,
    history: Option<String>,
}

struct Outcome {
    file: String,
    who: String,
    want_state: Option<String>,
    got_state: Option<String>,
    want_history: Option<String>,
    got_history: Option<String>,
    /// Zeek logged a different number of connections for this 4-tuple
    /// than we did: its timers split (or we split) the traffic otherwise.
    split_differently: bool,
}

fn load_manifest() -> Vec<Expected> {
    let mut out = Vec::new();
    let mut no_fields = 0;
    for peer_row in common::peer_rows("zeek") {
        let row = &peer_row.expectation;
        let field = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
        let (conn_state, history) = (field("conn_state"), field("history"));
        if conn_state.is_none() && history.is_none() {
            no_fields += 1;
            continue;
        }
        out.push(Expected {
            file: peer_row.file,
            orig: field("orig").and_then(|s| Ep::parse(&s)),
            resp: field("resp").and_then(|s| Ep::parse(&s)),
            conn_state,
            history,
        });
    }
    println!("excluded: {no_fields} rows with endpoint states only");
    out
}

/// One Zeek connection we derived: its tcpshut connection's endpoints,
/// and the row.
struct Ours {
    a: SocketAddr,
    b: SocketAddr,
    row: ZeekRow,
}

/// Our Zeek rows for a capture, in connection order, then row order.
fn our_rows(reports: &[ConnectionReport]) -> Vec<Ours> {
    let mut out = Vec::new();
    for r in reports {
        assert_eq!(
            (r.zeek_rows[0].conn_state, &r.zeek_rows[0].history),
            (r.zeek_conn_state, &r.zeek_history),
            "zeek_conn_state/zeek_history are the first Zeek row"
        );
        for row in &r.zeek_rows {
            out.push(Ours {
                a: r.client.parse().expect("client addr"),
                b: r.server.parse().expect("server addr"),
                row: row.clone(),
            });
        }
    }
    out
}

/// Does our row join this Zeek row? Rows without endpoints (one zeek-cut
/// baseline) join the capture's only connection.
fn joins(e: &Expected, r: &Ours, only_one: bool) -> bool {
    let (a, b) = (r.a, r.b);
    match (e.orig, e.resp) {
        (Some(o), Some(p)) => (o.matches(&a) && p.matches(&b)) || (o.matches(&b) && p.matches(&a)),
        _ => only_one,
    }
}

/// Do two Zeek rows name the same endpoint pair (either order)?
fn same_pair(x: &Expected, y: &Expected) -> bool {
    (x.orig == y.orig && x.resp == y.resp) || (x.orig == y.resp && x.resp == y.orig)
}

#[test]
fn zeek_conn_state_and_history_agree_with_zeek_baselines() {
    let dir = common::realworld_dir();
    let expected = load_manifest();
    let mut outcomes = Vec::new();
    let mut file = String::new();
    let mut reports: Vec<Ours> = Vec::new();
    let mut used: Vec<bool> = Vec::new();
    let mut only_one = false;
    for e in &expected {
        if e.file != file {
            file.clone_from(&e.file);
            let conns = tcpshut_engine::verdicts(&dir.join(&file), tcpshut_engine::Detail::Reports)
                .unwrap_or_else(|err| panic!("{file}: {err}"))
                .reports;
            only_one = conns.len() == 1;
            reports = our_rows(&conns);
            used = vec![false; reports.len()];
        }
        let zeek_rows = expected
            .iter()
            .filter(|x| x.file == e.file && same_pair(x, e))
            .count();
        let ours = reports.iter().filter(|r| joins(e, r, only_one)).count();
        let hit = (0..reports.len()).find(|&i| !used[i] && joins(e, &reports[i], only_one));
        if let Some(i) = hit {
            used[i] = true;
        }
        let got = hit.map(|i| &reports[i]);
        let show = |ep: Option<Ep>| match ep {
            Some(Ep::Full(a)) => a.to_string(),
            Some(Ep::Host(ip)) => ip.to_string(),
            None => "?".into(),
        };
        outcomes.push(Outcome {
            file: e.file.clone(),
            who: format!("{} > {}", show(e.orig), show(e.resp)),
            want_state: e.conn_state.clone(),
            got_state: got.map(|r| r.row.conn_state.to_owned()),
            want_history: e.history.clone(),
            got_history: got.map(|r| r.row.history.clone()),
            split_differently: zeek_rows != ours,
        });
    }

    type Field = fn(&Outcome) -> &Option<String>;
    let fields: [(&str, Field, Field); 2] = [
        ("conn_state", |o| &o.want_state, |o| &o.got_state),
        ("history", |o| &o.want_history, |o| &o.got_history),
    ];
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for split in [false, true] {
        println!(
            "\n{} (file | zeek orig > resp | field | zeek | tcpshut):",
            if split {
                "Disagreements on 4-tuples Zeek split differently from us"
            } else {
                "Disagreements on 4-tuples both tools delimit alike"
            }
        );
        for o in outcomes.iter().filter(|o| o.split_differently == split) {
            for (name, want, got) in fields {
                if want(o).is_some() && want(o) != got(o) {
                    println!(
                        "  {} | {} | {name} | {} | {}",
                        o.file,
                        o.who,
                        dash(want(o)),
                        dash(got(o))
                    );
                }
            }
        }
    }

    // Agreement over all rows, and over the rows whose connection both
    // tools delimit alike (the per-packet model, without splitting).
    let rate = |name: &str, want: Field, got: Field, alike_only: bool| {
        let compared: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| want(o).is_some() && !(alike_only && o.split_differently))
            .collect();
        let agree = compared.iter().filter(|o| want(o) == got(o)).count();
        let rate = agree as f64 / compared.len().max(1) as f64;
        println!(
            "{name} agreement{}: {agree}/{} ({:.1}%)",
            if alike_only {
                " (same delimitation)"
            } else {
                " (all rows)         "
            },
            compared.len(),
            100.0 * rate
        );
        rate
    };
    println!();
    for (name, want, got) in fields {
        let all = rate(name, want, got, false);
        let alike = rate(name, want, got, true);
        assert!(
            alike >= MIN_AGREEMENT,
            "{name} agreement {:.1}% is below {:.0}%",
            100.0 * alike,
            100.0 * MIN_AGREEMENT
        );
        assert!(
            all >= MIN_AGREEMENT_ALL_ROWS,
            "{name} agreement over all rows {:.1}% is below {:.0}%",
            100.0 * all,
            100.0 * MIN_AGREEMENT_ALL_ROWS
        );
    }
}
