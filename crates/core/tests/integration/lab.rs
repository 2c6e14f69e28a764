//! `tcpshut lab` on this machine's kernel (the suite runs as root, as CI
//! does): every scenario of the table verified, scripts of every step
//! kind giving the FIN/RST counts they must, the script parser's errors,
//! the root check, and nothing left behind after an interruption or a
//! crashed run.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{parse_csv, tcpshut, text};

/// The lab needs root; the suite runs as root (CI does). A suite run
/// without it fails here, saying so, instead of skipping.
fn require_root() {
    // SAFETY: trivial libc getter.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the lab tests need root (CI runs the suite as root)"
    );
    crate::util::require_tool("tcpdump", "the lab captures with it");
}

/// Namespaces named after `pid` that still exist.
fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("tcpshut-lab-{pid}-")))
        .map(String::from)
        .collect()
}

/// Runs tcpshut, checking afterwards that it left no namespace behind.
fn lab(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .arg("lab")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpshut runs");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(namespaces_of(pid), Vec::<String>::new(), "namespaces left");
    out
}

#[test]
fn list_is_the_recorders_table() {
    let out = tcpshut(&["lab", "--list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let table = tcpshut_lab::scenarios::all();
    assert_eq!(stdout.lines().count(), table.len(), "{stdout}");
    for (line, sc) in stdout.lines().zip(&table) {
        assert!(line.starts_with(&sc.name), "{line}");
        assert!(
            line.contains(" client: ") && line.contains("; server: "),
            "{line}"
        );
    }
    let shut_wr = stdout.lines().next().unwrap();
    assert!(shut_wr.contains("shutdown WR"), "{shut_wr}");
}

#[test]
fn verify_passes_every_scenario() {
    require_root();
    let started = Instant::now();
    let out = lab(&["--verify"]);
    let stdout = text(&out.stdout);
    let n = tcpshut_lab::scenarios::all().len();
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("{n}/{n} scenarios as the table expects on Linux ")),
        "{stdout}"
    );
    assert_eq!(stdout.matches("\nok ").count() + 1, n, "{stdout}");
    eprintln!(
        "tcpshut lab --verify: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// FIN and RST segments each side sent, counted from the sidecar's rows.
#[derive(Debug, PartialEq)]
struct Sent {
    client: FinRst,
    server: FinRst,
}

fn sent(sidecar: &Path) -> Sent {
    let rows = parse_csv(&std::fs::read_to_string(sidecar).unwrap());
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (src, flags) = (col("src"), col("flags"));
    let mut s = Sent {
        client: (0, 0),
        server: (0, 0),
    };
    for row in &rows[1..] {
        let side = if row[src].ends_with(":40000") {
            &mut s.client
        } else {
            &mut s.server
        };
        side.0 += usize::from(row[flags].contains('F'));
        side.1 += usize::from(row[flags].contains('R'));
    }
    s
}

const OPENING: &str = "client connect\nserver accept\nclient send 100\nserver recv 100\n\
                       server send 200\nclient recv 200\n";

/// FIN and RST segments one side sent.
type FinRst = (usize, usize);

/// Each step kind, in a script whose FIN/RST counts follow from it:
/// (name, steps after the opening, client's and server's (FIN, RST)).
const SCRIPTS: &[(&str, &str, FinRst, FinRst)] = &[
    (
        "shutdown-wr",
        "client shutdown WR\nserver recv-eof\nserver close\nclient recv-eof\nclient close\n",
        (1, 0),
        (1, 0),
    ),
    (
        "shutdown-rd",
        "client shutdown RD\nserver send 300\nclient close\nserver close\n",
        (0, 1),
        (0, 0),
    ),
    (
        "shutdown-rdwr",
        "client shutdown RDWR\nserver recv-nothing\nserver send 300\nclient close\nserver close\n",
        (1, 1),
        (0, 0),
    ),
    (
        "close-unread",
        "server send 50\nclient sleep 50\nclient close\nserver close\n",
        (0, 1),
        (0, 0),
    ),
    (
        "linger-0",
        "client linger on 0\nclient close\nserver recv\nserver close\n",
        (0, 1),
        (0, 0),
    ),
    (
        "linger-1",
        "client linger on 1\nclient close\nserver recv\nserver close\n",
        (1, 0),
        (1, 0),
    ),
    (
        "server-close",
        "server close\nclient recv\nclient close\n",
        (1, 0),
        (1, 0),
    ),
];

#[test]
fn scripts_of_every_step_kind_give_their_fin_and_rst_counts() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // Each run has namespaces of its own: all at once.
    let results: Vec<(String, Output, Sent)> = std::thread::scope(|scope| {
        let handles: Vec<_> = SCRIPTS
            .iter()
            .map(|(name, tail, _, _)| {
                let dir = dir.path();
                scope.spawn(move || {
                    let script = dir.join(format!("{name}.txt"));
                    std::fs::write(&script, format!("{OPENING}{tail}")).unwrap();
                    let out_dir = dir.join(name);
                    let out = lab(&[
                        "--script",
                        script.to_str().unwrap(),
                        "-o",
                        out_dir.to_str().unwrap(),
                    ]);
                    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
                    let counts = sent(&out_dir.join(format!("{name}.pcap.tcpshut.csv")));
                    (name.to_string(), out, counts)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((name, out, counts), (_, _, client, server)) in results.iter().zip(SCRIPTS) {
        assert_eq!(
            *counts,
            Sent {
                client: *client,
                server: *server
            },
            "{name}:\n{}",
            text(&out.stdout)
        );
    }
    // What a call returned is on the timeline.
    let linger0 = text(&results[4].1.stdout);
    assert!(linger0.contains("recv -> ECONNRESET"), "{linger0}");
    let rdwr = text(&results[2].1.stdout);
    assert!(rdwr.contains("recv-eof"), "{rdwr}");
}

#[test]
fn script_syntax_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.txt");
    std::fs::write(
        &script,
        "client connect\n# fine so far\nserver shutdown SIDEWAYS\n",
    )
    .unwrap();
    let out = tcpshut(&["lab", "--script", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "tcpshut: {}: line 3: shutdown takes RD, WR or RDWR, not `SIDEWAYS`\n",
            script.display()
        )
    );
    let missing = dir.path().join("missing.txt");
    let out = tcpshut(&["lab", "--script", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with(&format!("tcpshut: {}: ", missing.display())));
}

#[test]
fn without_the_capabilities_a_clear_message_and_exit_1() {
    // Root without any capability (empty bounding and inheritable sets):
    // what an unprivileged user has.
    let out = Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["lab", "close-client-first"])
        .output()
        .expect("setpriv (util-linux) runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .starts_with("tcpshut: lab: needs root (or the CAP_NET_ADMIN and CAP_SYS_ADMIN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_scenario_is_a_usage_error() {
    let out = tcpshut(&["lab", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tcpshut lab --list"));
}

#[test]
fn ctrl_c_removes_namespaces_and_temporary_files() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // keepalive idles 2.5 s: time to interrupt it mid-run.
    let child = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["lab", "keepalive", "-o"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while namespaces_of(pid).len() < 2 {
        assert!(Instant::now() < deadline, "the lab never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert_eq!(namespaces_of(pid), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_crashed_runs_leftovers_are_removed_next_time() {
    require_root();
    // A pid that is gone: a child that has exited and been reaped.
    let dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let ns = format!("tcpshut-lab-{pid}-0-c");
    let made = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    assert!(made.success());
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(format!(".tcpshut-lab-{pid}-0"));
    std::fs::create_dir_all(tmp.join("half")).unwrap();
    let out = lab(&["refused", "-o", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(namespaces_of(pid), Vec::<String>::new(), "{stderr}");
    assert!(!tmp.exists(), "{stderr}");
    // The namespace may have gone with a lab test running at the same
    // time; the directory in this -o DIR only with this run.
    assert!(stderr.contains(&format!("{}", tmp.display())), "{stderr}");
    assert!(dir.path().join("refused.pcap").exists());
}

#[test]
fn a_capture_is_never_replaced() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("refused.pcap"), "mine").unwrap();
    let out = lab(&["refused", "-o", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "tcpshut: {}: exists; a capture is never replaced (choose another -o DIR)\n",
            dir.path().join("refused.pcap").display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("refused.pcap")).unwrap(),
        "mine"
    );
}

#[test]
fn ipv6_runs_keep_their_capture_and_sidecar_in_dir() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = lab(&[
        "close-client-first",
        "--ipv6",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("As the scenario table expects"), "{stdout}");
    let sidecar = dir.path().join("close-client-first-ipv6.pcap.tcpshut.csv");
    assert!(dir.path().join("close-client-first-ipv6.pcap").exists());
    let rows = parse_csv(&std::fs::read_to_string(&sidecar).unwrap());
    assert_eq!(rows[1][3], "[fd77::1]:40000", "{:?}", rows[1]);
    // The connection's ladder diagram, as `tcpshut ladder` draws it.
    let svg =
        std::fs::read_to_string(dir.path().join("close-client-first-ipv6.conn0.svg")).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    assert!(svg.contains("fd77::1"), "{svg}");
    // Only these three files: the temporary directory is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

#[test]
fn under_sudo_what_is_kept_belongs_to_the_user() {
    use std::os::unix::fs::MetadataExt;
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept");
    let out = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["lab", "refused", "-o"])
        .arg(&kept)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65533")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for path in [
        kept.clone(),
        kept.join("refused.pcap"),
        kept.join("refused.pcap.tcpshut.csv"),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65533),
            "{}",
            path.display()
        );
    }
}
