//! `--format zeek` and `--format zeek-json`: the conn.log is read back by
//! a reader that follows Zeek's header rules as zeek-cut does (the
//! separator from the `#separator` line, every other header line split
//! on it, columns named by `#fields`, typed by `#types`, `#unset_field`
//! and `#empty_field` for missing and empty values), and must hold the
//! JSON document's Zeek rows, Community IDs and verdicts, and the packet
//! counts and sizes of Zeek's own baselines.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::util::{captures_in, repo_root, require_tool, strings, tcpshut, testdata_captures};

/// A Zeek ASCII log as its header describes it.
struct ZeekLog {
    path: String,
    fields: Vec<String>,
    types: Vec<String>,
    /// Each row by column name; unset values are absent.
    rows: Vec<BTreeMap<String, String>>,
    closed: bool,
}

/// Undoes Zeek's `\xNN` escapes.
fn unescape(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') && i + 4 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn read_zeek_log(text: &str) -> ZeekLog {
    let mut lines = text.lines();
    let first = lines.next().expect("a header");
    let sep = unescape(first.strip_prefix("#separator ").expect("#separator first"));
    let mut header: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut closed = false;
    for line in lines {
        assert!(!closed, "nothing follows #close: {line}");
        if let Some(meta) = line.strip_prefix('#') {
            let mut parts = meta.split(sep.as_str()).map(str::to_owned);
            let key = parts.next().unwrap();
            closed = key == "close";
            header.insert(key, parts.collect());
            continue;
        }
        let fields = &header["fields"];
        let values: Vec<&str> = line.split(sep.as_str()).collect();
        assert_eq!(values.len(), fields.len(), "{line}");
        let unset = &header["unset_field"][0];
        let empty = &header["empty_field"][0];
        rows.push(
            fields
                .iter()
                .zip(values)
                .filter(|(_, v)| v != unset)
                .map(|(f, v)| {
                    let v = if v == empty {
                        String::new()
                    } else {
                        unescape(v)
                    };
                    (f.clone(), v)
                })
                .collect(),
        );
    }
    for key in [
        "set_separator",
        "empty_field",
        "unset_field",
        "path",
        "open",
    ] {
        assert_eq!(header[key].len(), 1, "#{key} has one value");
    }
    assert_eq!(header["open"][0].len(), "2019-11-08-11-44-16".len());
    ZeekLog {
        path: header["path"][0].clone(),
        fields: header["fields"].clone(),
        types: header["types"].clone(),
        rows,
        closed,
    }
}

/// Every value parses as its column's Zeek type.
fn check_types(log: &ZeekLog) {
    assert_eq!(log.fields.len(), log.types.len());
    for row in &log.rows {
        for (field, ty) in log.fields.iter().zip(&log.types) {
            let Some(v) = row.get(field) else { continue };
            let ok = match ty.as_str() {
                "time" | "interval" => {
                    v.parse::<f64>().is_ok() && v.split('.').nth(1).map(str::len) == Some(6)
                }
                "count" => v.parse::<u64>().is_ok(),
                "port" => v.parse::<u16>().is_ok(),
                "addr" => v.parse::<IpAddr>().is_ok(),
                "enum" | "string" => !v.is_empty(),
                // Empty (`(empty)`), or elements that are not.
                "set[string]" => v.is_empty() || v.split(',').all(|e| !e.is_empty()),
                "bool" => v == "T" || v == "F",
                other => panic!("unknown type {other}"),
            };
            assert!(ok, "{field} ({ty}) = {v:?}");
        }
    }
}

fn run(capture: &Path, format: &str) -> String {
    let out = tcpshut(&[
        "annotate".as_ref(),
        capture.as_os_str(),
        "--format".as_ref(),
        format.as_ref(),
        "-o".as_ref(),
        "-".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One line per Zeek row of the JSON document, with its conn_state,
/// history and first packet's endpoints, and the connection's Community
/// ID and verdict; the JSON form holds the same values.
#[test]
fn conn_log_holds_the_zeek_rows_and_verdicts_of_the_json() {
    let mut lines = 0;
    for capture in testdata_captures() {
        let log = read_zeek_log(&run(&capture, "zeek"));
        assert_eq!(log.path, "conn");
        assert!(log.closed, "{}: #close ends the log", capture.display());
        check_types(&log);
        let doc: serde_json::Value = serde_json::from_str(&run(&capture, "json")).unwrap();
        // Lines in the order their connection's last segment went by (as
        // Zeek writes a connection when it removes it), a connection's
        // lines together by first frame; ties in id order.
        let mut expected = Vec::new();
        for c in doc["connections"].as_array().unwrap() {
            for z in c["zeek_rows"].as_array().unwrap() {
                let key = (
                    c["last_frame"].as_u64().unwrap(),
                    c["id"].as_u64().unwrap(),
                    z["first_frame"].as_u64().unwrap(),
                );
                expected.push((key, c, z));
            }
        }
        expected.sort_by_key(|(key, _, _)| *key);
        assert_eq!(log.rows.len(), expected.len(), "{}", capture.display());
        for (row, (_, c, z)) in log.rows.iter().zip(&expected) {
            let what = format!("{}: {row:?}", capture.display());
            assert_eq!(row["tcpshut.conn"], c["id"].to_string(), "{what}");
            assert_eq!(
                row["conn_state"],
                z["conn_state"].as_str().unwrap(),
                "{what}"
            );
            assert_eq!(
                row.get("history").map_or("", String::as_str),
                z["history"].as_str().unwrap(),
                "{what}"
            );
            assert_eq!(row["community_id"], c["community_id"].as_str().unwrap());
            assert_eq!(row["tcpshut.outcome"], c["outcome"].as_str().unwrap());
            // The originator's side, and its address among the endpoints.
            let orig = orig_resp(row).0.to_string();
            let side = &row["tcpshut.orig_side"];
            assert_eq!(orig, c[side.as_str()].as_str().unwrap(), "{what}");
            // Zeek's originator sent the first packet, unless Zeek flipped
            // the roles (a leading `^`).
            let first = doc["segments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["frame"] == z["first_frame"])
                .unwrap();
            let flipped = z["history"].as_str().unwrap().starts_with('^');
            let first_sender = first[if flipped { "dst" } else { "src" }].as_str().unwrap();
            assert_eq!(orig, first_sender, "{what}");
            assert_eq!(row["proto"], "tcp");
            assert!(row["uid"].starts_with('C') && row["uid"].len() == 18);
        }
        // The JSON form: the same rows, the same values, unset left out.
        let json_rows: Vec<serde_json::Value> = run(&capture, "zeek-json")
            .lines()
            .map(|l| serde_json::from_str(l).expect("one object per line"))
            .collect();
        assert_eq!(json_rows.len(), log.rows.len());
        for (j, t) in json_rows.iter().zip(&log.rows) {
            let j = j.as_object().unwrap();
            let json_keys: Vec<&String> = j.keys().collect();
            let tsv_keys: Vec<&String> = t.keys().collect();
            assert_eq!(json_keys.len(), tsv_keys.len(), "{j:?} vs {t:?}");
            for (k, v) in t {
                let jv = &j[k.as_str()];
                let same = match jv {
                    serde_json::Value::String(s) => s == v,
                    serde_json::Value::Number(n) => {
                        n.to_string().parse::<f64>().unwrap() == v.parse::<f64>().unwrap()
                    }
                    serde_json::Value::Bool(b) => v == if *b { "T" } else { "F" },
                    serde_json::Value::Array(items) => {
                        let items: Vec<&str> = items.iter().map(|i| i.as_str().unwrap()).collect();
                        items.join(",") == *v
                    }
                    other => panic!("{k}: {other}"),
                };
                assert!(same, "{k}: {jv} vs {v}");
            }
        }
        lines += log.rows.len();
    }
    assert!(lines > 30, "{lines} lines");
}

/// Packet counts and sizes where Zeek's own baselines print them
/// (testdata/third-party/MANIFEST.tsv, from zeek/zeek's btests).
#[test]
fn packet_counts_and_sizes_match_zeeks_baselines() {
    let corpus = repo_root().join("testdata/third-party");
    // fin_retransmission: orig_pkts 3, resp_pkts 2.
    let log = read_zeek_log(&run(
        &corpus.join("zeek__tcp__fin_retransmission.pcap"),
        "zeek",
    ));
    assert_eq!(log.rows.len(), 1);
    assert_eq!(log.rows[0]["id.orig_h"], "10.1.30.117");
    assert_eq!(log.rows[0]["id.orig_p"], "55344");
    assert_eq!(log.rows[0]["orig_pkts"], "3");
    assert_eq!(log.rows[0]["resp_pkts"], "2");
    // rst-inject-rae: orig_pkts 4, resp_pkts 5, the responder's size 0
    // (not the huge size an RST-initialised sequence would give).
    let log = read_zeek_log(&run(&corpus.join("zeek__tcp__rst-inject-rae.pcap"), "zeek"));
    assert_eq!(log.rows.len(), 1);
    let row = &log.rows[0];
    assert_eq!(
        (row["id.orig_h"].as_str(), row["id.orig_p"].as_str()),
        ("1.2.0.2", "2527")
    );
    assert_eq!(
        (row["orig_pkts"].as_str(), row["resp_pkts"].as_str()),
        ("4", "5")
    );
    assert_eq!(row["resp_bytes"], "0");
}

/// Where Zeek's own conn.log baselines name the originator and the
/// responder, our lines with the same endpoints and history name them
/// the same way round: the originator (flips included) is Zeek's.
#[test]
fn originators_are_zeeks() {
    let corpus = repo_root().join("testdata/third-party");
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).unwrap();
    let (mut compared, mut agreed) = (0, 0);
    let mut logs: BTreeMap<String, ZeekLog> = BTreeMap::new();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[9] != "zeek" {
            continue;
        }
        let expectations: Vec<serde_json::Value> = serde_json::from_str(cols[10]).unwrap();
        for e in expectations {
            let (Some(orig), Some(resp), Some(history)) = (
                e["orig"].as_str(),
                e["resp"].as_str(),
                e["history"].as_str(),
            ) else {
                continue;
            };
            let (Ok(orig), Ok(resp)) = (orig.parse::<SocketAddr>(), resp.parse::<SocketAddr>())
            else {
                continue;
            };
            let log = logs
                .entry(cols[0].to_owned())
                .or_insert_with(|| read_zeek_log(&run(&corpus.join(cols[0]), "zeek")));
            let same_pair = |row: &&BTreeMap<String, String>| {
                let (o, r) = orig_resp(row);
                ((o, r) == (orig, resp) || (o, r) == (resp, orig))
                    && row.get("history").map(String::as_str) == Some(history)
            };
            let Some(row) = log.rows.iter().find(same_pair) else {
                continue;
            };
            compared += 1;
            if orig_resp(row).0 == orig {
                agreed += 1;
            } else {
                eprintln!("{}: {orig} -> {resp} {history}: ours {row:?}", cols[0]);
            }
        }
    }
    println!("{agreed} of {compared} rows agree");
    assert!(compared >= 20, "{compared} rows compared");
    assert_eq!(agreed, compared, "originators that differ from Zeek's");
}

/// A line's originator and responder.
fn orig_resp(row: &BTreeMap<String, String>) -> (SocketAddr, SocketAddr) {
    let end = |role: &str| {
        SocketAddr::new(
            row[&format!("id.{role}_h")].parse().unwrap(),
            row[&format!("id.{role}_p")].parse().unwrap(),
        )
    };
    (end("orig"), end("resp"))
}

/// The RST columns on the recordings made through a router (forged RSTs,
/// idle resets, and their genuine controls): `tcpshut.rst_cause` is the
/// first RST segment's cause, `tcpshut.idle_reset`, `tcpshut.notes` and
/// each side's `rst_forged`/`rst_evidence` are the JSON document's.
#[test]
fn rst_causes_idle_resets_and_rst_origins_are_the_jsons() {
    const CAUSES: [&str; 6] = [
        "rst-refused",
        "rst-abort",
        "rst-after-close",
        "rst-idle",
        "rst-forged",
        "rst-stray",
    ];
    let mut captures: Vec<_> = std::fs::read_dir(repo_root().join("testdata/router"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    captures.sort();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for capture in &captures {
        let log = read_zeek_log(&run(capture, "zeek"));
        check_types(&log);
        let doc: serde_json::Value = serde_json::from_str(&run(capture, "json")).unwrap();
        let segments = doc["segments"].as_array().unwrap();
        for row in &log.rows {
            let what = format!("{}: {row:?}", capture.display());
            let id: u64 = row["tcpshut.conn"].parse().unwrap();
            let c = doc["connections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .unwrap();
            let cause = segments.iter().filter(|s| s["conn"] == id).find_map(|s| {
                let events = s["events"].as_array().unwrap();
                CAUSES
                    .iter()
                    .find(|cause| events.iter().any(|e| e == **cause))
            });
            assert_eq!(
                row.get("tcpshut.rst_cause").map(String::as_str),
                cause.copied(),
                "{what}"
            );
            if let Some(cause) = cause {
                *seen.entry(cause.to_string()).or_default() += 1;
            }
            let idle = row
                .get("tcpshut.idle_reset")
                .map(|v| v.parse::<f64>().unwrap());
            match (idle, c["idle_reset_secs"].as_f64()) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-6, "{what}"),
                (got, want) => assert_eq!(got, want, "{what}"),
            }
            let notes = strings(&c["notes"]);
            assert_eq!(row["tcpshut.notes"], notes.join(","), "{what}");
            // The report lists the client first.
            let orig_is_client = row["tcpshut.orig_side"] == "client";
            for (prefix, client) in [("orig", orig_is_client), ("resp", !orig_is_client)] {
                let end = &c["endpoints"][if client { 0 } else { 1 }];
                let origin = &end["rst_origin"];
                let forged = origin["forged"]
                    .as_bool()
                    .map(|f| if f { "T" } else { "F" });
                let key = format!("tcpshut.{prefix}_rst_forged");
                assert_eq!(row.get(&key).map(String::as_str), forged, "{what}");
                if forged == Some("T") {
                    *seen.entry("forged side".to_string()).or_default() += 1;
                }
                let codes = origin["evidence"].as_array().map(|signs| {
                    let codes: Vec<&str> =
                        signs.iter().map(|s| s["code"].as_str().unwrap()).collect();
                    codes.join(",")
                });
                let key = format!("tcpshut.{prefix}_rst_evidence");
                assert_eq!(row.get(&key).cloned(), codes, "{what}");
            }
        }
    }
    for cause in [
        "rst-idle",
        "rst-forged",
        "rst-abort",
        "rst-refused",
        "forged side",
    ] {
        assert!(
            seen.get(cause).is_some_and(|&n| n > 0),
            "no {cause} in {seen:?}"
        );
    }
}

/// `orig_ip_bytes` and `resp_ip_bytes` add up the IP lengths each way, as
/// tshark reads them from the same packets (IPv4 `ip.len`, IPv6 40 +
/// `ipv6.plen`): per directed address pair, over all the lines of a
/// capture. `ip_proto` is 6 and `missed_bytes` is set on every line.
#[test]
fn ip_bytes_are_the_ip_lengths_tshark_reads() {
    require_tool("tshark", "reading IP lengths independently");
    type Pair = (SocketAddr, SocketAddr);
    let mut compared = 0;
    for capture in testdata_captures() {
        // tshark reassembles IP fragments, tcpshut does not.
        if capture.ends_with("ip-fragments.pcap") {
            continue;
        }
        let log = read_zeek_log(&run(&capture, "zeek"));
        let mut ours: BTreeMap<Pair, u64> = BTreeMap::new();
        for row in &log.rows {
            assert_eq!(row["ip_proto"], "6");
            assert!(row["missed_bytes"].parse::<u64>().is_ok());
            let (orig, resp) = orig_resp(row);
            *ours.entry((orig, resp)).or_default() += row["orig_ip_bytes"].parse::<u64>().unwrap();
            *ours.entry((resp, orig)).or_default() += row["resp_ip_bytes"].parse::<u64>().unwrap();
        }
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&capture)
            .args(["-Y", "tcp", "-T", "fields", "-E", "separator=/t"])
            .args(["-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport"])
            .args(["-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"])
            .args(["-e", "ip.len", "-e", "ipv6.plen"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tshark on {}", capture.display());
        let mut theirs: BTreeMap<Pair, u64> = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            // Tunnelled or nested headers list several values: the
            // innermost (last) is the TCP packet's.
            let last = |s: &str| s.rsplit(',').next().unwrap_or("").to_owned();
            let host = |v4: &str, v6: &str| -> IpAddr {
                let v = if v4.is_empty() { last(v6) } else { last(v4) };
                v.parse().unwrap()
            };
            let src = SocketAddr::new(host(f[0], f[1]), f[2].parse().unwrap());
            let dst = SocketAddr::new(host(f[3], f[4]), f[5].parse().unwrap());
            let len: u64 = if f[6].is_empty() {
                40 + last(f[7]).parse::<u64>().unwrap()
            } else {
                last(f[6]).parse().unwrap()
            };
            *theirs.entry((src, dst)).or_default() += len;
        }
        // A direction that sent nothing has no packet for tshark.
        ours.retain(|_, bytes| *bytes > 0);
        assert_eq!(ours, theirs, "{}", capture.display());
        compared += ours.len();
    }
    assert!(compared >= 80, "{compared} directions compared");
}

/// `missed_bytes` counts the octets of the content gaps Zeek reports, and
/// Zeek reports a gap exactly when it writes `g` (both under the same
/// condition, TCP_Reassembler::Gap): on the corpus, lines whose history
/// has a `g` have missed bytes, the others none.
#[test]
fn missed_bytes_go_with_the_gap_letter() {
    let corpus = repo_root().join("testdata/third-party");
    let (mut with_gap, mut lines) = (0, 0);
    for capture in captures_in(&corpus) {
        let log = read_zeek_log(&run(&capture, "zeek"));
        for row in &log.rows {
            let history = row.get("history").map_or("", String::as_str);
            let gap = history.contains(['g', 'G']);
            let missed: u64 = row["missed_bytes"].parse().unwrap();
            assert_eq!(gap, missed > 0, "{}: {row:?}", capture.display());
            with_gap += usize::from(gap);
            lines += 1;
        }
    }
    assert!(with_gap >= 3, "{with_gap} of {lines} lines have gaps");
}
