//! Compares our Zeek-compatible `zeek_conn_state` / `zeek_history` with
//! the conn.log baselines of Zeek's own test suite, for the `zeek` rows of
//! `../shared/realworld/MANIFEST.tsv` (see that folder's README.md).
//!
//! Each Zeek row is matched to one of our connections by its endpoint
//! pair (either order; repeated 4-tuples in order). Rows inside Teredo or
//! GTP tunnels (`"tunneled":true`) are excluded: tcpshut does not decode
//! tunnels. Rows that only print endpoint states (no conn_state and no
//! history) have nothing to compare and are skipped.
//!
//! Prints every disagreement and the agreement rates; asserts that at
//! least 95% of conn_state values and 90% of histories agree.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tcpshut_engine::report::ConnectionReport;

const MIN_STATE_AGREEMENT: f64 = 0.95;
const MIN_HISTORY_AGREEMENT: f64 = 0.90;

fn realworld_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/realworld")
}

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
}

fn load_manifest(dir: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (c_file, c_peer, c_exp) = (col("file"), col("peer"), col("peer_expectation"));
    let mut out = Vec::new();
    let mut tunneled = 0;
    let mut no_fields = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[c_peer] != "zeek" {
            continue;
        }
        let rows: Value = serde_json::from_str(cols[c_exp]).expect("peer_expectation JSON");
        for row in rows.as_array().expect("list") {
            let field = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
            if row.get("tunneled").and_then(Value::as_bool) == Some(true) {
                tunneled += 1;
                continue;
            }
            let (conn_state, history) = (field("conn_state"), field("history"));
            if conn_state.is_none() && history.is_none() {
                no_fields += 1;
                continue;
            }
            out.push(Expected {
                file: cols[c_file].to_owned(),
                orig: field("orig").and_then(|s| Ep::parse(&s)),
                resp: field("resp").and_then(|s| Ep::parse(&s)),
                conn_state,
                history,
            });
        }
    }
    println!(
        "excluded: {tunneled} tunneled rows (Teredo/GTP not decoded), \
         {no_fields} rows with endpoint states only"
    );
    out
}

fn report_addrs(r: &ConnectionReport) -> (SocketAddr, SocketAddr) {
    (
        r.client.parse().expect("client addr"),
        r.server.parse().expect("server addr"),
    )
}

/// Does our connection join this Zeek row? Rows without endpoints (one
/// zeek-cut baseline) join the capture's only connection.
fn joins(e: &Expected, r: &ConnectionReport, only_one: bool) -> bool {
    let (a, b) = report_addrs(r);
    match (e.orig, e.resp) {
        (Some(o), Some(p)) => (o.matches(&a) && p.matches(&b)) || (o.matches(&b) && p.matches(&a)),
        _ => only_one,
    }
}

#[test]
fn zeek_conn_state_and_history_agree_with_zeek_baselines() {
    let dir = realworld_dir();
    if !dir.join("MANIFEST.tsv").exists() {
        println!("{} not found: skipping the Zeek comparison", dir.display());
        return;
    }
    let expected = load_manifest(&dir);
    let mut outcomes = Vec::new();
    let mut file = String::new();
    let mut reports: Vec<ConnectionReport> = Vec::new();
    let mut used: Vec<bool> = Vec::new();
    for e in &expected {
        if e.file != file {
            file.clone_from(&e.file);
            reports = tcpshut_engine::verdicts(&dir.join(&file), true)
                .unwrap_or_else(|err| panic!("{file}: {err}"))
                .reports;
            used = vec![false; reports.len()];
        }
        let only_one = reports.len() == 1;
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
            got_state: got.map(|r| r.zeek_conn_state.to_owned()),
            want_history: e.history.clone(),
            got_history: got.map(|r| r.zeek_history.clone()),
        });
    }

    let tally = |want: fn(&Outcome) -> &Option<String>, got: fn(&Outcome) -> &Option<String>| {
        let compared: Vec<&Outcome> = outcomes.iter().filter(|o| want(o).is_some()).collect();
        let agree = compared.iter().filter(|o| want(o) == got(o)).count();
        (agree, compared.len())
    };
    let (state_ok, state_n) = tally(|o| &o.want_state, |o| &o.got_state);
    let (hist_ok, hist_n) = tally(|o| &o.want_history, |o| &o.got_history);

    println!("\nDisagreements (file | zeek orig > resp | field | zeek | tcpshut):");
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for o in &outcomes {
        if o.want_state.is_some() && o.want_state != o.got_state {
            println!(
                "  {} | {} | conn_state | {} | {}",
                o.file,
                o.who,
                dash(&o.want_state),
                dash(&o.got_state)
            );
        }
        if o.want_history.is_some() && o.want_history != o.got_history {
            println!(
                "  {} | {} | history | {} | {}",
                o.file,
                o.who,
                dash(&o.want_history),
                dash(&o.got_history)
            );
        }
    }
    let rate = |ok: usize, n: usize| if n == 0 { 1.0 } else { ok as f64 / n as f64 };
    let (state_rate, hist_rate) = (rate(state_ok, state_n), rate(hist_ok, hist_n));
    println!(
        "\nconn_state agreement: {state_ok}/{state_n} ({:.1}%)",
        100.0 * state_rate
    );
    println!(
        "history agreement:    {hist_ok}/{hist_n} ({:.1}%)",
        100.0 * hist_rate
    );
    assert!(
        state_rate >= MIN_STATE_AGREEMENT,
        "conn_state agreement {:.1}% is below {:.0}%",
        100.0 * state_rate,
        100.0 * MIN_STATE_AGREEMENT
    );
    assert!(
        hist_rate >= MIN_HISTORY_AGREEMENT,
        "history agreement {:.1}% is below {:.0}%",
        100.0 * hist_rate,
        100.0 * MIN_HISTORY_AGREEMENT
    );
}
