//! Tunnels on the command line: `--vxlan-port` and kin, and the tunnel
//! in `summary`'s table.

use crate::util::{strings, tcpshut, testdata};

#[path = "../../../engine/tests/tunnels/wrap.rs"]
mod wrap;

#[test]
fn vxlan_on_another_port_is_decoded_with_vxlan_port() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("vxlan-8472.pcap");
    let wrapped = wrap::wrap_capture(
        &testdata().join("close-client-first.pcap"),
        wrap::Encap::VxlanOnPort(8472),
    );
    std::fs::write(&capture, wrapped).unwrap();
    let path = capture.to_str().unwrap();

    // On the IANA port only, the datagrams are UDP: no connection.
    let out = tcpshut(&["summary", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 connections"), "{stdout}");

    for args in [
        vec!["summary", "--vxlan-port", "8472", path],
        vec!["summary", path, "--vxlan-port", "9", "--vxlan-port", "8472"],
    ] {
        let out = tcpshut(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("1 connection (1 graceful)"), "{stdout}");
        let header = stdout.lines().nth(1).unwrap();
        assert!(header.trim_end().ends_with("tunnel"), "{stdout}");
        assert!(
            stdout.contains("vxlan vni=77 192.0.2.1<>192.0.2.2"),
            "{stdout}"
        );
    }
}

#[test]
fn too_many_tunnel_ports_are_a_usage_error() {
    let mut args = vec!["summary".to_string()];
    for port in 1..=65 {
        args.extend(["--gtp-port".to_string(), port.to_string()]);
    }
    args.push(
        testdata()
            .join("close-client-first.pcap")
            .display()
            .to_string(),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tcpshut(&args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("66 gtp ports given, at most 64"),
        "{stderr}"
    );
}

/// A tunnel as tcpshut shows it, from the JSON's list of layers:
/// `KIND [ID=N] A<>B`, outermost first, joined by ` / `.
fn tunnel_text(layers: &serde_json::Value) -> String {
    let layers = layers.as_array().expect("a tunnelled connection");
    let shown: Vec<String> = layers
        .iter()
        .map(|layer| {
            let layer = layer.as_object().unwrap();
            let mut text = layer["kind"].as_str().unwrap().to_string();
            for (key, value) in layer {
                if key == "teids" {
                    // The TEID each end chose, `-` until seen.
                    let teids: Vec<String> = value
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_u64().map_or("-".to_string(), |t| t.to_string()))
                        .collect();
                    text.push_str(&format!(" teids={}", teids.join("/")));
                } else if key != "kind" && key != "endpoints" {
                    text.push_str(&format!(" {key}={value}"));
                }
            }
            let ends = strings(&layer["endpoints"]);
            format!("{text} {}", ends.join("<>"))
        })
        .collect();
    shown.join(" / ")
}

/// The tunnel of a tunnelled connection in the tables: the connections
/// sidecar's `tunnel`, and conn.log's `tcpshut.tunnel` and
/// `tunnel_parents` (one uid per tunnel: the same on each line of it,
/// another for another tunnel), as the JSON document has it.
#[test]
fn the_tunnel_is_in_the_connections_sidecar_and_the_conn_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut parents = Vec::new();
    for (name, encap) in [
        ("vxlan.pcap", wrap::Encap::Vxlan(77)),
        ("vxlan-in-gre.pcap", wrap::Encap::VxlanInGre),
        ("gtp.pcap", wrap::Encap::GtpU),
    ] {
        let capture = dir.path().join(name);
        let wrapped = wrap::wrap_capture(&testdata().join("close-client-first.pcap"), encap);
        std::fs::write(&capture, wrapped).unwrap();
        let path = capture.to_str().unwrap();
        let run = |args: &[&str]| {
            let out = tcpshut(args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let doc: serde_json::Value =
            serde_json::from_str(&run(&["annotate", path, "--format", "json", "-o", "-"])).unwrap();
        let conns = doc["connections"].as_array().unwrap();
        assert_eq!(conns.len(), 1, "{name}");
        let tunnel = tunnel_text(&conns[0]["tunnel"]);
        assert!(
            tunnel.starts_with(["vxlan", "gre", "gtp-u"][parents.len()]),
            "{tunnel}"
        );

        run(&["annotate", path]);
        let sidecar = std::fs::read_to_string(format!("{path}.tcpshut.connections.csv")).unwrap();
        let mut lines = sidecar.lines();
        assert!(lines.next().unwrap().ends_with(",notes,tunnel"));
        let line = lines.next().unwrap();
        assert_eq!(line.rsplit(',').next().unwrap(), tunnel, "{name}: {line}");

        let log = run(&["annotate", path, "--format", "zeek-json", "-o", "-"]);
        let mut uids = Vec::new();
        for line in log.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(row["tcpshut.tunnel"], tunnel.as_str(), "{name}: {line}");
            let set = row["tunnel_parents"].as_array().expect("tunnel_parents");
            assert_eq!(set.len(), 1, "{line}");
            let uid = set[0].as_str().unwrap().to_string();
            assert!(uid.len() == 18 && uid.starts_with('C'), "{uid}");
            uids.push(uid);
        }
        uids.dedup();
        assert_eq!(uids.len(), 1, "{name}: one tunnel, one uid: {uids:?}");
        assert!(!parents.contains(&uids[0]), "{name}: another tunnel's uid");
        parents.push(uids.remove(0));
    }
    // Outside tunnels: no tunnel, unset tunnel_parents.
    let out = tcpshut(&[
        "annotate",
        testdata().join("close-client-first.pcap").to_str().unwrap(),
        "--format",
        "zeek-json",
        "-o",
        "-",
    ]);
    let log = String::from_utf8(out.stdout).unwrap();
    assert!(!log.is_empty());
    assert!(!log.contains("tunnel"), "{log}");
}
