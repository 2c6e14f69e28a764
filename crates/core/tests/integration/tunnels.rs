//! Tunnels on the command line: `--vxlan-port` and kin, and the tunnel
//! in `summary`'s table.

use crate::util::{tcpshut, testdata};

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
