//! Captures as they arrive in the field: standard input and FIFOs (a real
//! `tcpdump -w -` pipe ended by SIGINT), and what a directory walk takes,
//! reports or skips.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::fifo::read_through_fifo;
use crate::util::{
    annotate_json, parse_csv, require_tool, tcpshut, tcpshut_piped, testdata, testdata_captures,
    text,
};

/// `tcpshut ARGS` with `input` on standard input.
fn tcpshut_fed(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = tcpshut_piped(args).spawn().expect("tcpshut runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        // tcpshut may refuse before reading: a closed pipe is fine then.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// The CSV sidecar of a capture file, as `-o -` writes it.
fn csv_of_file(capture: &Path) -> Vec<u8> {
    let out = tcpshut(&["annotate", capture.to_str().unwrap(), "-o", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out.stdout
}

#[test]
fn standard_input_gives_the_sidecar_of_the_file() {
    for capture in testdata_captures() {
        let bytes = fs::read(&capture).unwrap();
        let out = tcpshut_fed(&["annotate", "-", "-o", "-"], &bytes);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            out.stdout == csv_of_file(&capture),
            "{} through standard input",
            capture.display()
        );
    }
    // The JSON document needs pass 1's results first: two reads of a pipe
    // (the second from the spool).
    let capture = testdata().join("half-close-data-after-fin.pcap");
    let json = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["capture"]["path"] = serde_json::Value::Null;
        doc
    };
    let piped = tcpshut_fed(
        &["annotate", "-", "--format", "json", "-o", "-"],
        &fs::read(&capture).unwrap(),
    );
    assert_eq!(json(piped), json(annotate_json(&capture)));
}

#[test]
fn a_capture_that_is_not_a_regular_file_needs_output_named() {
    let bytes = fs::read(testdata().join("refused.pcap")).unwrap();
    for args in [
        &["annotate", "-"][..],
        &["annotate", "/dev/stdin"],
        &["annotate", "/proc/self/fd/0"],
        &["annotate", "-", "-o", "x.csv", "--pcapng"],
    ] {
        let out = tcpshut_fed(args, &bytes);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is not a regular file"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let out = tcpshut_fed(&["annotate", "-", "-", "-o", "-"], &bytes);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // summary writes nothing beside the capture: standard input is fine.
    let out = tcpshut_fed(&["summary", "-"], &bytes);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 connection (1 refused)"));
}

#[test]
fn a_fifo_is_read_like_standard_input() {
    let capture = testdata().join("close-client-first.pcap");
    let bytes = fs::read(&capture).unwrap();
    let out = read_through_fifo(bytes, |fifo| {
        tcpshut(&["annotate", fifo.to_str().unwrap(), "-o", "-"])
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == csv_of_file(&capture));
}

/// Counts the FIN segments in a pcap stream of Ethernet IPv4 frames, as
/// its bytes go by.
#[derive(Default)]
struct FinCounter {
    pending: Vec<u8>,
    header_seen: bool,
    fins: usize,
}

impl FinCounter {
    fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if !self.header_seen {
            if self.pending.len() < 24 {
                return;
            }
            self.pending.drain(..24);
            self.header_seen = true;
        }
        while self.pending.len() >= 16 {
            let caplen = u32::from_le_bytes(self.pending[8..12].try_into().unwrap()) as usize;
            if self.pending.len() < 16 + caplen {
                return;
            }
            let frame = &self.pending[16..16 + caplen];
            let tcp = 14 + usize::from(frame.get(14).map_or(0, |b| b & 0x0f)) * 4;
            if frame.get(tcp + 13).is_some_and(|flags| flags & 0x01 != 0) {
                self.fins += 1;
            }
            self.pending.drain(..16 + caplen);
        }
    }
}

/// Kills the test's process group if the test fails on the way, so that
/// no tcpdump is left behind (a passing test has waited for both).
struct KillGroupOnDrop(i32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: a signal to the process group this test made.
            unsafe { libc::killpg(self.0, libc::SIGKILL) };
        }
    }
}

/// A real `tcpdump -w -` on loopback into `tcpshut annotate - -o FILE`,
/// ended by SIGINT to both, as a terminal's Ctrl-C does: every packet
/// tcpdump wrote is a row of a complete sidecar, and tcpshut exits 0.
///
/// tcpdump drops what it has not written yet when SIGINT comes, and on a
/// busy machine that can be seconds of traffic; so the test relays the
/// pipe and sends SIGINT once every FIN has gone through it.
#[test]
fn a_tcpdump_pipe_ended_by_sigint_is_annotated_whole() {
    require_tool("tcpdump", "captures loopback traffic into a pipe");
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut tcpdump = Command::new("tcpdump")
        // In immediate mode each ring slot holds a whole snaplen: with the
        // default 256 KB there are 8 slots, and a busy machine drops
        // packets. Headers are enough here.
        .args([
            "-i",
            "lo",
            "-U",
            "--immediate-mode",
            "-s",
            "512",
            "-B",
            "8192",
        ])
        .args(["-n", "-w", "-"])
        .arg(format!("tcp port {port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("tcpdump runs");
    let group = tcpdump.id() as i32;
    let _cleanup = KillGroupOnDrop(group);
    // tcpdump says "listening on lo" once it captures.
    let mut tcpdump_err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    tcpdump_err.read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "tcpdump: {line}");
    let sidecar = dir.path().join("live.csv");
    let mut tcpshut = tcpshut_piped(&["annotate", "-", "-o", sidecar.to_str().unwrap()])
        .process_group(group)
        .spawn()
        .expect("tcpshut runs");
    let fins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let relay = {
        let mut from = tcpdump.stdout.take().unwrap();
        let mut to = tcpshut.stdin.take().unwrap();
        let fins = std::sync::Arc::clone(&fins);
        std::thread::spawn(move || {
            let mut counter = FinCounter::default();
            let mut buf = [0u8; 4096];
            loop {
                let n = from.read(&mut buf).unwrap();
                if n == 0 {
                    return;
                }
                to.write_all(&buf[..n]).unwrap();
                counter.feed(&buf[..n]);
                fins.store(counter.fins, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };

    // Three connections: the client sends, shuts down its side, reads the
    // server's answer; the server answers and closes.
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            conn.read_to_end(&mut request).unwrap();
            conn.write_all(&request).unwrap();
        }
    });
    for i in 0..3u8 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(&[b'a' + i; 100]).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        assert_eq!(answer.len(), 100);
    }
    server.join().unwrap();
    let waited = std::time::Instant::now();
    while fins.load(std::sync::atomic::Ordering::SeqCst) < 6 {
        assert!(
            waited.elapsed().as_secs() < 60,
            "tcpdump wrote {} of 6 FINs in a minute",
            fins.load(std::sync::atomic::Ordering::SeqCst)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The last ACKs follow the last FIN.
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: a signal to the process group made above.
    assert_eq!(unsafe { libc::killpg(group, libc::SIGINT) }, 0);
    relay.join().unwrap();

    let out = tcpshut.wait_with_output().unwrap();
    let _ = tcpdump.wait();
    let mut stats = String::new();
    tcpdump_err.read_to_string(&mut stats).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Every packet tcpdump wrote is a row of a complete sidecar.
    let captured: usize = stats
        .lines()
        .find_map(|l| l.strip_suffix(" packets captured"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("tcpdump's count: {stats}"));
    let rows = parse_csv(&fs::read_to_string(&sidecar).unwrap());
    assert_eq!(rows.len(), captured + 1, "a header and one row per packet");
    assert!(
        captured >= 3 * 7,
        "{captured} packets for three connections"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("3 connections ("), "{stdout}");
    let ends = rows
        .iter()
        .filter(|r| r.iter().any(|f| f.contains("fin-active")));
    assert_eq!(ends.count(), 3, "one active close per connection");
}

/// In a directory, files named or looking like captures that cannot be
/// used are errors, named, and the rest goes on; notes and sidecars are
/// skipped in silence.
#[test]
fn a_directory_walk_reports_what_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(testdata().join("refused.pcap")).unwrap();
    fs::write(dir.path().join("good.pcap"), &good).unwrap();
    fs::write(dir.path().join("notes.txt"), b"just notes").unwrap();
    fs::write(dir.path().join("good.pcap.tcpshut.csv"), b"frame\n").unwrap();
    fs::write(dir.path().join("damaged.pcap"), b"not a capture at all").unwrap();
    fs::write(dir.path().join("ring.pcap3"), b"").unwrap();
    // Looks like a capture by its first bytes, whatever its name.
    fs::write(dir.path().join("no-extension"), &good[..30]).unwrap();
    std::os::unix::fs::symlink("nowhere", dir.path().join("dangling.pcap")).unwrap();
    let out = tcpshut(&["annotate", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for name in [
        "damaged.pcap:",
        "ring.pcap3:",
        "dangling.pcap:",
        "no-extension:",
    ] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
    assert!(
        !stderr.contains("notes.txt") && !stderr.contains("tcpshut.csv"),
        "{stderr}"
    );
    assert!(dir.path().join("good.pcap.tcpshut.csv").exists());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("2 of 5 captures done, 3 failed, 1 incomplete"),
        "{stdout}"
    );
}

/// `gzip` as installed: the test compresses with the real tool, as users do.
fn gzip(path: &Path) -> std::path::PathBuf {
    require_tool("gzip", "compresses a capture as users do");
    let status = Command::new("gzip")
        .arg("-k")
        .arg("-f")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    name.into()
}

/// A gzip-compressed capture is read whatever its name: named on the
/// command line, found in a directory by its name or by its content, and
/// from standard input; a cut one exits 3 with what came before it
/// annotated; a bzip2 one is named in the error.
#[test]
fn compressed_captures_are_read_by_their_magic() {
    let dir = tempfile::tempdir().unwrap();
    let original = testdata().join("close-client-first.pcap");
    let plain = dir.path().join("plain.pcap");
    fs::copy(&original, &plain).unwrap();
    let expected = csv_of_file(&plain);
    let packed = gzip(&plain);
    fs::remove_file(&plain).unwrap();
    assert!(csv_of_file(&packed) == expected);
    let bytes = fs::read(&packed).unwrap();
    let out = tcpshut_fed(&["annotate", "-", "-o", "-"], &bytes);
    assert!(out.stdout == expected, "{}", text(&out.stderr));
    // Found by content in a directory, whatever its name.
    fs::rename(&packed, dir.path().join("trace-from-monday")).unwrap();
    fs::write(dir.path().join("cut.pcap.gz"), &bytes[..bytes.len() - 30]).unwrap();
    fs::write(dir.path().join("old.pcap.bz2"), b"BZh91AY&SY").unwrap();
    let out = tcpshut(&["annotate", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    // A failure (the bzip2 capture) outranks an incomplete capture.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        fs::read(dir.path().join("trace-from-monday.tcpshut.csv")).unwrap() == expected,
        "{stderr}"
    );
    assert!(stderr.contains("cut.pcap.gz: incomplete: "), "{stderr}");
    assert!(dir.path().join("cut.pcap.gz.tcpshut.csv").exists());
    assert!(
        stderr.contains("old.pcap.bz2: a bzip2-compressed file: tcpshut reads gzip-"),
        "{stderr}"
    );
}

/// `tcpshut ladder` reads its capture twice (the connection's report,
/// then its rows): from standard input it draws the same diagram as from
/// the file, the stream copied once to a spool that is gone afterwards.
#[test]
fn a_ladder_from_standard_input_is_the_ladder_of_the_file() {
    let capture = testdata().join("half-close-data-after-fin.pcap");
    let from_file = tcpshut(&["ladder", capture.to_str().unwrap(), "--conn", "0"]);
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    let bytes = fs::read(&capture).unwrap();
    let from_stdin = tcpshut_fed(&["ladder", "-", "--conn", "0"], &bytes);
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    // The same diagram, titled with the name given: `-`.
    let expected = text(&from_file.stdout).replace(capture.to_str().unwrap(), "-");
    assert!(
        text(&from_stdin.stdout) == expected,
        "{}",
        text(&from_stdin.stdout)
    );
}

/// An lz4 capture as the lz4 tool writes it (4 MB blocks: a capture of a
/// few MB is one block, which lz4 decompresses whole) cut inside its first
/// block ends like any cut compressed capture, not as a file that is no
/// capture: exit 3, the cause named once, and the sidecar written with
/// what came before the cut (no whole record).
#[test]
fn an_lz4_capture_cut_inside_its_first_block_is_incomplete() {
    require_tool("lz4", "compresses a capture as users do");
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pcap");
    fs::copy(testdata().join("close-client-first.pcap"), &plain).unwrap();
    let packed = dir.path().join("plain.pcap.lz4");
    let status = Command::new("lz4")
        .args(["-q", "-f"])
        .arg(&plain)
        .arg(&packed)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = fs::read(&packed).unwrap();
    let cut = dir.path().join("cut.pcap.lz4");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let sidecar = dir.path().join("cut.csv");
    let out = tcpshut(&[
        "annotate",
        cut.to_str().unwrap(),
        "-o",
        sidecar.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr.matches("cut.pcap.lz4: incomplete: ").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("lz4-compressed stream"), "{stderr}");
    let rows = fs::read_to_string(&sidecar).unwrap();
    assert_eq!(rows.lines().count(), 1, "the header alone: {rows}");
}

/// The records of a little-endian pcap, with `shift` seconds added to
/// their timestamps.
fn records_shifted(pcap: &[u8], shift: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let secs = u32::from_le_bytes(pcap[at..at + 4].try_into().unwrap());
        out.extend_from_slice(&(secs + shift).to_le_bytes());
        out.extend_from_slice(&pcap[at + 4..at + 16 + caplen]);
        at += 16 + caplen;
    }
    out
}

/// `summary -` prints each connection when it ends, while the input is
/// still open: a connection closed five minutes (capture time) before the
/// latest frame is printed before the writer closes the pipe.
#[test]
fn summary_of_standard_input_prints_connections_as_they_end() {
    let first = fs::read(testdata().join("close-client-first.pcap")).unwrap();
    let later = fs::read(testdata().join("refused.pcap")).unwrap();
    let mut stream = first.clone();
    stream.extend(records_shifted(&later, 300));
    let mut child = tcpshut_piped(&["summary", "-"])
        .spawn()
        .expect("tcpshut runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&stream).unwrap();
    stdin.flush().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let _ = lines_tx.send(line.unwrap());
        }
    });
    // The pipe is still open: the first connection is printed anyway.
    let timeout = std::time::Duration::from_secs(60);
    let header = lines.recv_timeout(timeout).expect("a header line");
    assert!(header.trim_start().starts_with("conn"), "{header}");
    let row = lines.recv_timeout(timeout).expect("the first connection");
    assert!(
        row.contains("10.77.0.1:40000") && row.contains("graceful"),
        "{row}"
    );
    drop(stdin);
    let rest: Vec<String> = lines.iter().collect();
    reader.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(rest.iter().any(|l| l.contains("refused")), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l == "-: 2 connections (1 graceful, 1 refused)"),
        "{rest:?}"
    );
}
