//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the built `tcpshut` with `args`.
pub fn tcpshut<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(args)
        .output()
        .expect("tcpshut runs")
}

/// `tcpshut annotate CAPTURE --format json -o -`.
pub fn annotate_json(capture: &Path) -> Output {
    tcpshut(&[
        "annotate",
        capture.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        "-",
    ])
}

/// The built `tcpshut` with `args` and its standard input, output and
/// error piped, for the caller to spawn.
pub fn tcpshut_piped(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcpshut"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The repository's `testdata/`.
pub fn testdata() -> PathBuf {
    repo_root().join("testdata")
}

/// Every capture in `testdata/`, sorted.
pub fn testdata_captures() -> Vec<PathBuf> {
    captures_in(&testdata())
}

/// The `.pcap` and `.pcapng` files directly in `dir`, sorted; fails on an
/// empty folder (a test over none would prove nothing).
pub fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    all.sort();
    assert!(!all.is_empty(), "{} holds captures", dir.display());
    all
}

/// A synthetic capture of `connections` connections in `dir`, made by
/// `tcpshut-bench gen` (built beside tcpshut): about 500 open at a time,
/// and those in flight when the last one starts are still open at its
/// end.
pub fn generated_capture(dir: &Path, connections: u32) -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_tcpshut")).with_file_name("tcpshut-bench");
    assert!(
        bench.exists(),
        "{} is required (it generates the large capture): `cargo build -p tcpshut-bench` \
         (`bash scripts/test` builds it first)",
        bench.display()
    );
    let capture = dir.join(format!("synthetic-{connections}.pcap"));
    let out = Command::new(&bench)
        .args(["gen", "--connections", &connections.to_string(), "-o"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tcpshut-bench gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    capture
}

/// Fails the test, saying what is missing, when a program the test needs
/// cannot be run: a test never passes by skipping (`scripts/install-deps`
/// installs every tool the suite uses).
pub fn require_tool(program: &str, why: &str) {
    let found = Command::new(program)
        .arg(if program.starts_with("luac") {
            "-v"
        } else {
            "--version"
        })
        .output()
        .is_ok();
    assert!(
        found,
        "{program} is required ({why}) but not found; scripts/install-deps installs it"
    );
}

/// Splits CSV text (RFC 4180: quoted fields with doubled quotes, which may
/// hold commas and line ends) into records of fields.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Quotes a CSV field when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One TCP/IPv4 frame of a synthetic capture.
#[derive(Clone)]
pub struct Frame {
    pub secs: u32,
    pub usecs: u32,
    pub src: ([u8; 4], u16),
    pub dst: ([u8; 4], u16),
    /// TCP flag bits (FIN=1, SYN=2, RST=4, PSH=8, ACK=16).
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub payload: Vec<u8>,
}

/// Writes a classic little-endian pcap (microseconds, Ethernet) of `frames`.
pub fn write_pcap(path: &Path, frames: &[Frame]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for f in frames {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&f.src.1.to_be_bytes());
        tcp.extend_from_slice(&f.dst.1.to_be_bytes());
        tcp.extend_from_slice(&f.seq.to_be_bytes());
        tcp.extend_from_slice(&f.ack.to_be_bytes());
        tcp.extend_from_slice(&[0x50, f.flags]);
        tcp.extend_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(&f.payload);
        let total = (20 + tcp.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&f.src.0);
        ip.extend_from_slice(&f.dst.0);
        ip.extend_from_slice(&tcp);
        let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        eth.extend_from_slice(&ip);
        out.extend_from_slice(&f.secs.to_le_bytes());
        out.extend_from_slice(&f.usecs.to_le_bytes());
        out.extend_from_slice(&(eth.len() as u32).to_le_bytes());
        out.extend_from_slice(&(eth.len() as u32).to_le_bytes());
        out.extend_from_slice(&eth);
    }
    std::fs::write(path, out).unwrap();
}

/// Fails on any sign of a Lua error: tshark exits 0 even when a Lua plugin
/// fails, printing the error on stderr or into the dissection.
pub fn assert_no_lua_error(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for text in [&stdout, &stderr] {
        for sign in [
            "Lua Error",
            "Lua: Error",
            "stack traceback",
            "attempt to ",
            "bad argument",
            "Dissector bug",
        ] {
            assert!(
                !text.contains(sign),
                "{what}: Lua error ({sign:?}):\n--- stderr\n{stderr}\n--- stdout\n{}",
                stdout.chars().take(4000).collect::<String>()
            );
        }
    }
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{stderr}",
        out.status
    );
}

/// A JSON array of strings as `&str`s (panics on anything else: the
/// document is the one under test).
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}

/// A child's output as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `capture` copied into `dir` under its own name; the copy's path.
pub fn copy_into(dir: &Path, capture: &Path) -> PathBuf {
    let dest = dir.join(capture.file_name().unwrap());
    std::fs::copy(capture, &dest).unwrap();
    dest
}
