//! The report mix (`tcpshut-record --report-mix`): a few hundred real
//! connections in one namespace pair, with three problems planted in known
//! numbers, for `tcpshut report`'s tests (testdata/report-mix/):
//!
//! * `:8080` (api) reads 100 bytes of every request; one request in
//!   [`RESET_EVERY`] is 150 bytes, so the server's close() finds 50 bytes
//!   unread and resets. Otherwise it answers and closes first.
//! * `:9090` (batch): the client closes first after each answer, so the
//!   client piles up TIME-WAIT sockets towards it.
//! * `:5432` (leak): the server answers and never closes; the client
//!   closes, so each server socket stays in CLOSE-WAIT until the capture
//!   ends, at least [`HOLD_MS`] later.
//! * `:81`: nothing listens; every attempt is refused.
//!
//! The client makes the connections one after another, interleaving the
//! services; each server handles its connections in the order they come.
//! The refused attempts come last, [`HOLD_MS`] after the others.
//! The wire is checked (FIN/RST per side of every connection) before the
//! manifest is written.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use tcpshut_lab::netns::{self, Lab, CLIENT_V4, IFACE, SERVER_V4};
use tcpshut_lab::{tcpdump, wire};

pub const API_PORT: u16 = 8080;
pub const BATCH_PORT: u16 = 9090;
pub const LEAK_PORT: u16 = 5432;
pub const CLOSED_PORT: u16 = 81;
pub const API_CONNS: usize = 100;
/// One api connection in this many is reset (the first, then every fourth).
pub const RESET_EVERY: usize = 4;
pub const BATCH_CONNS: usize = 150;
pub const LEAK_CONNS: usize = 20;
pub const REFUSED_CONNS: usize = 10;
/// Pause before the refused attempts that end the capture: the least age
/// of the CLOSE-WAIT sockets.
pub const HOLD_MS: u64 = 1500;

const REQUEST: usize = 100;
const LONG_REQUEST: usize = 150;
const ANSWER: usize = 200;

/// What one service's connections did, for the manifest.
#[derive(Serialize)]
struct ServicePlan {
    service: String,
    connections: usize,
    description: &'static str,
    /// Calls made, with how many connections made them.
    client_calls: BTreeMap<&'static str, usize>,
    server_calls: BTreeMap<&'static str, usize>,
}

#[derive(Serialize)]
struct MixManifest {
    file: &'static str,
    packets: usize,
    connections: usize,
    services: Vec<ServicePlan>,
}

fn is_reset(i: usize) -> bool {
    i % RESET_EVERY == 0
}

fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::new(SERVER_V4.into(), port)
}

/// Serves `conns` connections on `port` with `serve`, in the server's
/// namespace; says "ready" once listening. Returns what `serve` kept open.
fn server(
    ns: &str,
    port: u16,
    conns: usize,
    ready: mpsc::Sender<()>,
    serve: impl Fn(usize, TcpStream) -> Result<Option<TcpStream>>,
) -> Result<Vec<TcpStream>> {
    netns::enter(ns)?;
    let listener =
        TcpListener::bind(server_addr(port)).with_context(|| format!("listen :{port}"))?;
    ready.send(()).ok();
    let mut kept = Vec::new();
    for i in 0..conns {
        let (stream, _) = listener.accept()?;
        kept.extend(serve(i, stream).with_context(|| format!(":{port} connection {i}"))?);
    }
    Ok(kept)
}

fn api(i: usize, mut s: TcpStream) -> Result<Option<TcpStream>> {
    let mut buf = [0u8; REQUEST];
    s.read_exact(&mut buf)?;
    if is_reset(i) {
        // The long request's last 50 bytes arrived with the rest (one
        // segment) and are unread: close() resets.
        return Ok(None);
    }
    s.write_all(&[b'a'; ANSWER])?;
    Ok(None)
}

fn batch(_: usize, mut s: TcpStream) -> Result<Option<TcpStream>> {
    let mut buf = [0u8; REQUEST];
    s.read_exact(&mut buf)?;
    s.write_all(&[b'b'; ANSWER])?;
    // The client closes first; then close.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    ensure!(rest.is_empty(), "unexpected data");
    Ok(None)
}

fn leak(_: usize, mut s: TcpStream) -> Result<Option<TcpStream>> {
    let mut buf = [0u8; REQUEST];
    s.read_exact(&mut buf)?;
    s.write_all(&[b'l'; ANSWER])?;
    // Never closed: the client's FIN leaves it in CLOSE-WAIT.
    Ok(Some(s))
}

/// A request, the answer, and the client's part of the teardown.
fn client_exchange(port: u16, request: usize, close_first: bool) -> Result<()> {
    let mut s = TcpStream::connect(server_addr(port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&vec![b'q'; request])?;
    let mut answer = vec![0u8; ANSWER];
    if request == LONG_REQUEST {
        let mut byte = [0u8; 1];
        return match s.read(&mut byte) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            other => bail!(":{port}: expected a reset, got {other:?}"),
        };
    }
    s.read_exact(&mut answer)?;
    if !close_first {
        // The server closes first: wait for its FIN.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)?;
    }
    Ok(())
}

fn client(ns: &str) -> Result<()> {
    netns::enter(ns)?;
    for i in 0..BATCH_CONNS {
        client_exchange(BATCH_PORT, REQUEST, true)?;
        if i < API_CONNS {
            let request = if is_reset(i) { LONG_REQUEST } else { REQUEST };
            client_exchange(API_PORT, request, false)?;
        }
        if i < LEAK_CONNS {
            client_exchange(LEAK_PORT, REQUEST, true)?;
        }
    }
    // The refusals come last, after a pause: the capture's end, and so the
    // age of the CLOSE-WAIT sockets, is their time.
    std::thread::sleep(Duration::from_millis(HOLD_MS));
    for _ in 0..REFUSED_CONNS {
        match TcpStream::connect(server_addr(CLOSED_PORT)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            other => bail!(":{CLOSED_PORT}: expected a refusal, got {other:?}"),
        }
    }
    Ok(())
}

/// Every connection's FINs and RSTs, per side, must be what was planted.
fn check_wire(conns: &[wire::Conn]) -> Result<()> {
    let count = |port: u16, f: &dyn Fn(&wire::Conn) -> bool| {
        conns
            .iter()
            .filter(|c| c.server.port() == port && f(c))
            .count()
    };
    let fin_each = |c: &wire::Conn| c.from_client.fin == 1 && c.from_server.fin == 1;
    let checks = [
        (
            API_PORT,
            "server RST+ACK, no FIN",
            count(API_PORT, &|c| {
                c.from_server.rst_ack == 1 && c.from_server.fin == 0
            }),
            API_CONNS.div_ceil(RESET_EVERY),
        ),
        (
            API_PORT,
            "one FIN each",
            count(API_PORT, &fin_each),
            API_CONNS - API_CONNS.div_ceil(RESET_EVERY),
        ),
        (
            BATCH_PORT,
            "one FIN each",
            count(BATCH_PORT, &fin_each),
            BATCH_CONNS,
        ),
        (
            LEAK_PORT,
            "client FIN only",
            count(LEAK_PORT, &|c| {
                c.from_client.fin == 1 && c.from_server.fin == 0
            }),
            LEAK_CONNS,
        ),
        (
            CLOSED_PORT,
            "refused",
            count(CLOSED_PORT, &|c| c.from_server.rst_ack == 1),
            REFUSED_CONNS,
        ),
    ];
    for (port, what, got, want) in checks {
        ensure!(
            got == want,
            ":{port}: {got} connections with {what}, expected {want}"
        );
    }
    let all = API_CONNS + BATCH_CONNS + LEAK_CONNS + REFUSED_CONNS;
    ensure!(
        conns.len() == all,
        "{} connections, expected {all}",
        conns.len()
    );
    ensure!(
        conns
            .iter()
            .all(|c| c.client.ip() == std::net::IpAddr::from(CLIENT_V4)),
        "a connection not opened by the client"
    );
    Ok(())
}

fn manifest(packets: usize, connections: usize) -> MixManifest {
    let resets = API_CONNS.div_ceil(RESET_EVERY);
    let plan = |port: u16,
                connections,
                description,
                client: &[(&'static str, usize)],
                server: &[(&'static str, usize)]| ServicePlan {
        service: server_addr(port).to_string(),
        connections,
        description,
        client_calls: client.iter().copied().collect(),
        server_calls: server.iter().copied().collect(),
    };
    MixManifest {
        file: "mix.pcap",
        packets,
        connections,
        services: vec![
            plan(BATCH_PORT, BATCH_CONNS, "request, answer; the client closes first (TIME-WAIT on the client)", &[("close", BATCH_CONNS)], &[("close", BATCH_CONNS)]),
            plan(API_PORT, API_CONNS, "one request in four is 150 bytes, of which the server reads 100 and closes (close() with unread data: RST); the others are answered and the server closes first", &[("close", API_CONNS)], &[("close", API_CONNS - resets), ("close_unread", resets)]),
            plan(LEAK_PORT, LEAK_CONNS, "request, answer; the client closes, the server never does (CLOSE-WAIT)", &[("close", LEAK_CONNS)], &[]),
            plan(CLOSED_PORT, REFUSED_CONNS, "nothing listens: connect() is refused", &[("connect", REFUSED_CONNS)], &[]),
        ],
    }
}

/// Records testdata/report-mix/mix.pcap and its manifest mix.json.
pub fn record(out: &Path) -> Result<()> {
    fs::create_dir_all(out)?;
    let file = out.join("mix.pcap");
    let lab = Lab::new()?;
    let opts = tcpdump::Options {
        any_sll2: false,
        nano: false,
        snap80: false,
    };
    let capture = tcpdump::Tcpdump::start(&lab.client, IFACE, &file, opts)?;
    let (ready_tx, ready) = mpsc::channel();
    let leaked = std::thread::scope(|scope| -> Result<Vec<TcpStream>> {
        let ns = lab.server.as_str();
        let servers = [
            (
                API_PORT,
                API_CONNS,
                api as fn(usize, TcpStream) -> Result<Option<TcpStream>>,
            ),
            (BATCH_PORT, BATCH_CONNS, batch),
            (LEAK_PORT, LEAK_CONNS, leak),
        ]
        .map(|(port, conns, serve)| {
            let tx = ready_tx.clone();
            scope.spawn(move || server(ns, port, conns, tx, serve))
        });
        for _ in 0..servers.len() {
            ready
                .recv_timeout(Duration::from_secs(5))
                .context("a server did not start listening")?;
        }
        let client_ns = lab.client.as_str();
        scope
            .spawn(move || client(client_ns))
            .join()
            .expect("client thread")?;
        let mut kept = Vec::new();
        for s in servers {
            kept.extend(s.join().expect("server thread")?);
        }
        Ok(kept)
    })?;
    // Time for the last segments to reach tcpdump.
    std::thread::sleep(Duration::from_millis(200));
    let captured = capture.stop()?;
    // Only now: the capture must end with the leaked sockets still open.
    drop(leaked);
    drop(lab);
    let (packets, conns) = wire::connections(&file)?;
    ensure!(
        packets as u64 == captured,
        "file holds {packets} packets, tcpdump captured {captured}"
    );
    check_wire(&conns)?;
    let manifest = manifest(packets, conns.len());
    fs::write(
        out.join("mix.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    println!(
        "{}: {packets} packets, {} connections",
        file.display(),
        conns.len()
    );
    Ok(())
}
