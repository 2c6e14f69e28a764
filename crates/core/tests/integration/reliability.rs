//! The promises of `docs/reliability.md`, one test each: no capture is
//! ever replaced, resources stay bounded whatever the arguments, copies
//! are faithful, signals leave nothing behind, exit codes and messages
//! follow the contract, output is never half a document.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{copy_into, generated_capture, require_tool, tcpshut, testdata, text};

/// Runs `tcpshut` with its standard output a pipe whose reader has gone.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before tcpshut has read its first capture.
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// `tcpshut summary … | head`: a reader that stops early is a normal
/// end, exit 0, nothing on standard error; likewise for `annotate -o -`.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let all = testdata();
    let out = with_closed_stdout(&["summary", all.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let one = testdata().join("port-reuse.pcap");
    let out = with_closed_stdout(&["annotate", one.to_str().unwrap(), "-o", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("tcpshut: "),
        "{}",
        text(&out.stderr)
    );
}

/// `wireshark install` where the folders cannot be made is a failure
/// (1), not a usage error (2), and names the path that is in the way.
#[test]
fn wireshark_install_that_cannot_write_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // A HOME that is a file: no folder can be made under it, even as root.
    let home = dir.path().join("home");
    fs::write(&home, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["wireshark", "install", "--lua"])
        .env("HOME", &home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("WIRESHARK_CONFIG_DIR")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // said once, before anything is written
    assert_eq!(
        stderr,
        format!(
            "tcpshut: {}: not a folder; nothing was installed (Wireshark's plugins go below it)\n",
            home.display()
        )
    );
}

/// A stand-in for Wireshark that notes it ran, then exits with `code`.
#[cfg(unix)]
fn fake_wireshark(dir: &Path, code: i32) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join(format!("wireshark-{code}"));
    let mark = dir.join(format!("ran-{code}"));
    fs::write(
        &program,
        format!("#!/bin/sh\ntouch '{}'\nexit {code}\n", mark.display()),
    )
    .unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    (program, mark)
}

/// `wireshark open` checks for a display before starting Wireshark, and
/// waits for it: Wireshark's failure is tcpshut's failure (exit 1).
#[cfg(unix)]
#[test]
fn wireshark_open_says_when_it_cannot_show_and_when_wireshark_fails() {
    let dir = tempfile::tempdir().unwrap();
    let capture = copy_into(dir.path(), &testdata().join("refused.pcap"));
    let open = |program: &Path, display: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tcpshut"));
        command
            .args(["wireshark", "open"])
            .arg(&capture)
            .env("HOME", dir.path())
            .env("TCPSHUT_WIRESHARK", program)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY");
        if let Some(display) = display {
            command.env("DISPLAY", display);
        }
        command.output().unwrap()
    };
    let (fine, fine_ran) = fake_wireshark(dir.path(), 0);
    let out = open(&fine, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no display"), "{stderr}");
    assert!(
        !fine_ran.exists(),
        "Wireshark is not started without a display"
    );

    let out = open(&fine, Some(":0"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(fine_ran.exists());

    let (failing, failing_ran) = fake_wireshark(dir.path(), 3);
    let out = open(&failing, Some(":0"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(failing_ran.exists());
    assert!(stderr.contains("Wireshark failed"), "{stderr}");
}

/// Each cause is said once, a path once, and a file name cannot write
/// escape sequences or extra lines to the terminal.
#[test]
fn messages_say_each_thing_once_and_escape_file_names() {
    let out = tcpshut(&["summary", "/nonexistent/x.pcap"]);
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");

    let out = tcpshut(&["wireshark", "open", "/nonexistent/x.pcap"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("/nonexistent/x.pcap").count(), 1, "{stderr}");

    let hostile = "/nonexistent/a\x1b[2Jb\nc.pcap";
    let out = tcpshut(&["summary", hostile]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("a\\u{1b}[2Jb\\nc.pcap"), "{stderr:?}");

    // A file cut inside its header holds no capture: exit 1, pcap or pcapng.
    let dir = tempfile::tempdir().unwrap();
    for name in ["close-client-first.pcap", "close-unread.pcapng"] {
        let bytes = fs::read(testdata().join(name)).unwrap();
        let cut = dir.path().join(name);
        fs::write(&cut, &bytes[..20]).unwrap();
        let out = tcpshut(&["summary", cut.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("header truncated"), "{stderr}");
    }
    // First bytes are shown as hexadecimal numbers.
    let http = dir.path().join("x.pcap");
    fs::write(&http, b"GET / HTTP/1.1\r\n").unwrap();
    let out = tcpshut(&["summary", http.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("0x47 0x45 0x54 0x20"), "{stderr}");
}

/// A capture is never replaced: not through another name of the same
/// file (a hard link here; a bind mount is the same device and inode),
/// not as someone else's sidecar, and another capture only with
/// `--force`.
#[test]
fn a_capture_is_never_replaced_by_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let capture = copy_into(dir.path(), &testdata().join("refused.pcap"));
    let before = fs::read(&capture).unwrap();
    let alias = dir.path().join("alias.pcap");
    fs::hard_link(&capture, &alias).unwrap();
    let out = tcpshut(&[
        "annotate",
        capture.to_str().unwrap(),
        "-o",
        alias.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is an input of this run"), "{stderr}");
    assert_eq!(fs::read(&capture).unwrap(), before);

    // Another capture is kept unless --force.
    let other = copy_into(dir.path(), &testdata().join("port-reuse.pcap"));
    let other_before = fs::read(&other).unwrap();
    let args = [
        "annotate",
        capture.to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
    ];
    let out = tcpshut(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read(&other).unwrap(), other_before);
    let out = tcpshut(&[&args[..], &["--force"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(fs::read_to_string(&other).unwrap().starts_with("frame,"));

    // A sidecar's place taken by a capture (here the other name of an
    // input): that input fails, the rest of the batch goes on.
    let second = copy_into(dir.path(), &testdata().join("close-client-first.pcap"));
    let taken = dir.path().join("close-client-first.pcap.tcpshut.csv");
    fs::hard_link(&capture, &taken).unwrap();
    let out = tcpshut(&[
        "annotate",
        "--force",
        capture.to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("close-client-first.pcap.tcpshut.csv"),
        "{stderr}"
    );
    assert_eq!(fs::read(&capture).unwrap(), before);
    assert!(dir.path().join("refused.pcap.tcpshut.csv").exists());

    // tcpshut's own earlier pcapng copy is replaced without --force.
    for _ in 0..2 {
        let out = tcpshut(&["annotate", "--pcapng", capture.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
}

/// `--jobs` starts no more workers than the captures and a few per core,
/// and says when it caps.
#[test]
fn jobs_are_capped_and_the_cap_is_told() {
    let all = testdata();
    let out = tcpshut(&["summary", "--jobs", "4000", all.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("--jobs 4000 capped at"), "{stderr}");
    let one = tcpshut(&["summary", "--jobs", "1", all.to_str().unwrap()]);
    assert_eq!(out.stdout, one.stdout);
    let out = tcpshut(&["summary", "--jobs", "0", all.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // `report` runs its own pool: the same cap.
    let capture = all.join("refused.pcap");
    let out = tcpshut(&["report", "--jobs", "4000", capture.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("--jobs 4000 capped at"), "{stderr}");
    assert!(stderr.contains("1 worker for 1 capture"), "{stderr}");
}

/// A capture path that is not UTF-8 (any bytes make a Unix file name)
/// still gives one whole JSON document, its path kept exactly.
#[cfg(unix)]
#[test]
fn json_output_is_whole_whatever_the_path() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join(OsStr::from_bytes(b"caf\xe9-\xff.pcap"));
    fs::copy(testdata().join("port-reuse.pcap"), &capture).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .arg("annotate")
        .arg(&capture)
        .args(["--format", "json", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one whole JSON document");
    let bytes: Vec<u8> = doc["capture"]["path_bytes"]
        .as_array()
        .expect("path_bytes for a path that is not UTF-8")
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(bytes, capture.as_os_str().as_bytes());
    assert!(doc["capture"]["path"]
        .as_str()
        .unwrap()
        .ends_with("caf\u{fffd}-\u{fffd}.pcap"));
    assert_eq!(doc["connections"].as_array().unwrap().len(), 2);
    // A UTF-8 path has no path_bytes.
    let plain = tcpshut(&[
        "annotate",
        testdata().join("port-reuse.pcap").to_str().unwrap(),
        "--format",
        "json",
        "-o",
        "-",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(doc["capture"].get("path_bytes").is_none());
}

/// What tshark sees of each frame: number, time, lengths, interface,
/// the bytes' MD5 and the comments.
fn tshark_frames(capture: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("tshark")
        .args(["-n", "-o", "frame.generate_md5_hash:TRUE", "-T", "json"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
        ])
        .args(["-e", "frame.cap_len", "-e", "frame.interface_id"])
        .args(["-e", "frame.md5_hash", "-e", "frame.comment", "-r"])
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        capture.display(),
        text(&out.stderr)
    );
    let frames: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    frames
        .into_iter()
        .map(|f| f["_source"]["layers"].clone())
        .collect()
}

/// What capinfos says of a file, less its name, size and hashes: the
/// section's comment, OS and application, every interface's name,
/// filter, snaplen, time resolution and statistics.
fn capinfos(capture: &Path) -> Vec<String> {
    let out = Command::new("capinfos").arg(capture).output().unwrap();
    assert!(
        out.status.success(),
        "capinfos {}: {}",
        capture.display(),
        text(&out.stderr)
    );
    let skip = ["File name", "File size", "SHA", "RIPEMD"];
    text(&out.stdout)
        .lines()
        .filter(|l| !skip.iter().any(|s| l.starts_with(s)))
        .map(str::to_string)
        .collect()
}

/// Every block of `capture` that holds no packet, byte for byte.
fn other_blocks(capture: &Path) -> Vec<Vec<u8>> {
    use tcpshut_engine::{CaptureReader, Record};
    let mut reader = CaptureReader::open(capture).unwrap();
    let mut blocks = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        if let Record::Block(raw) = record {
            blocks.push(raw.bytes.to_vec());
        }
    }
    blocks
}

/// The `--pcapng` copy keeps everything: every block that holds no packet
/// byte for byte (section comments and options, interfaces, name
/// resolution, statistics, decryption secrets), and, as tshark reads it,
/// every packet's bytes, timestamp, lengths, interface and comments, with
/// tcpshut's summary added after any comments it had. A pcap becomes
/// pcapng with the same timestamps.
#[test]
fn pcapng_copies_keep_every_block_and_add_comments() {
    for tool in ["tshark", "capinfos", "editcap"] {
        require_tool(tool, "the pcapng copy's round trip");
    }
    let dir = tempfile::tempdir().unwrap();
    let third_party = testdata().join("third-party");
    // A capture with every kind of block: PcapPlusPlus's example (section
    // comment, OS and application, interface names, a filter, µs and ns
    // interfaces, packet comments, statistics) with decryption secrets
    // injected by editcap, followed by a second section (Zeek's LDAP
    // trace: 126 interfaces, name resolution).
    let example = third_party.join("pcapplusplus__pcapng-example.pcapng");
    let keys = dir.path().join("keys.txt");
    fs::write(&keys, "CLIENT_RANDOM 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f\n").unwrap();
    let with_secrets = dir.path().join("secrets.pcapng");
    let out = Command::new("editcap")
        .arg("--inject-secrets")
        .arg(format!("tls,{}", keys.display()))
        .arg(&example)
        .arg(&with_secrets)
        .output()
        .unwrap();
    assert!(out.status.success(), "editcap: {}", text(&out.stderr));
    let mut everything = fs::read(&with_secrets).unwrap();
    everything.extend(fs::read(third_party.join("zeek__ldap__gap-data-missing.pcapng")).unwrap());
    let everything_path = dir.path().join("everything.pcapng");
    fs::write(&everything_path, everything).unwrap();

    let captures = [
        everything_path,
        copy_into(
            dir.path(),
            &third_party.join("zeek__pcapng-multi-interface.pcapng"),
        ),
        copy_into(dir.path(), &testdata().join("close-unread.pcapng")),
        copy_into(dir.path(), &testdata().join("close-client-first.pcap")),
        copy_into(
            dir.path(),
            &testdata().join("shut_rdwr-client-first-nano.pcap"),
        ),
    ];
    let mut all_commented = 0;
    for capture in &captures {
        let name = capture.display();
        let out = tcpshut(&["annotate", "--pcapng", capture.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let copy = PathBuf::from(format!("{name}.tcpshut.pcapng"));
        let sidecar = fs::read_to_string(format!("{name}.tcpshut.csv")).unwrap();
        let mut summaries = std::collections::BTreeMap::new();
        for record in csv::Reader::from_reader(sidecar.as_bytes()).records() {
            let record = record.unwrap();
            if !record[13].is_empty() {
                summaries.insert(record[0].to_string(), record[13].to_string());
            }
        }
        let is_pcapng = capture.extension().is_some_and(|e| e == "pcapng");
        if is_pcapng {
            assert_eq!(other_blocks(&copy), other_blocks(capture), "{name}: blocks");
            assert_eq!(capinfos(&copy), capinfos(capture), "{name}: capinfos");
        }
        let (before, after) = (tshark_frames(capture), tshark_frames(&copy));
        assert_eq!(before.len(), after.len(), "{name}: frames");
        let mut commented = 0;
        for (mut expected, seen) in before.into_iter().zip(after) {
            let number = expected["frame.number"][0].as_str().unwrap().to_string();
            if let Some(summary) = summaries.get(&number) {
                let comments = expected
                    .as_object_mut()
                    .unwrap()
                    .entry("frame.comment")
                    .or_insert_with(|| serde_json::json!([]));
                comments
                    .as_array_mut()
                    .unwrap()
                    .push(summary.as_str().into());
                commented += 1;
            }
            if !is_pcapng {
                // A pcap has no interface numbers; the copy has interface 0.
                expected["frame.interface_id"] = serde_json::json!(["0"]);
            }
            assert_eq!(seen, expected, "{name}: frame {number}");
        }
        assert_eq!(commented, summaries.len(), "{name}: every summary");
        all_commented += commented;
    }
    assert!(all_commented >= 30, "{all_commented} comments added");
}

/// tcpshut's temporary files in `dir`.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".tcpshut-") && name.ends_with(".tmp")
        })
        .collect();
    found.sort();
    found
}

/// SIGINT, SIGTERM or SIGHUP while a large capture's sidecar and pcapng
/// copy are being written: the temporary files are removed, the older
/// sidecar stays as it was, and tcpshut ends by that signal.
#[cfg(target_os = "linux")]
#[test]
fn signals_leave_no_temporary_files() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let tcpshut_bin = Path::new(env!("CARGO_BIN_EXE_tcpshut"));
    let dir = tempfile::tempdir().unwrap();
    let capture = generated_capture(dir.path(), 2000);
    let sidecar = dir.path().join("large.pcap.tcpshut.csv");
    let copy = dir.path().join("large.pcap.tcpshut.pcapng");
    fs::write(&sidecar, "an older sidecar\n").unwrap();

    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let mut child = Command::new(tcpshut_bin)
            .args(["annotate", "--pcapng", "--no-progress"])
            .arg(&capture)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Both outputs (the sidecar and the copy) are being written.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let writing = temporary_files(dir.path());
            let sizes: Vec<u64> = writing
                .iter()
                .filter_map(|p| fs::metadata(p).ok().map(|m| m.len()))
                .collect();
            // (the connections sidecar's temporary file is the third,
            // written in larger steps)
            if sizes.iter().filter(|&&n| n > 0).count() >= 2 {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "signal {signal}: tcpshut finished before both outputs were being written"
            );
            assert!(
                Instant::now() < deadline,
                "signal {signal}: no outputs after 300 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: kill(2) on the child we started and have not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(signal), "{status:?}");
        assert_eq!(
            temporary_files(dir.path()),
            Vec::<PathBuf>::new(),
            "signal {signal}"
        );
        assert_eq!(fs::read_to_string(&sidecar).unwrap(), "an older sidecar\n");
        assert!(!copy.exists(), "signal {signal}");
        assert!(
            !dir.path()
                .join("large.pcap.tcpshut.connections.csv")
                .exists(),
            "signal {signal}"
        );
    }
}

/// On a run reading standard input, the first SIGINT ends the input (what
/// was read is written); a second SIGINT before that is done still removes
/// the temporary sidecar, as SIGTERM would, and leaves no output.
#[cfg(target_os = "linux")]
#[test]
fn a_second_sigint_on_standard_input_leaves_no_temporary_files() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["annotate", "--no-progress", "-", "-o"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The input stays open (a capture still running), so the sidecar is
    // still a temporary file.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&fs::read(testdata().join("close-unread.pcap")).unwrap())
        .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while temporary_files(dir.path()).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "tcpshut ended early");
        assert!(Instant::now() < deadline, "no temporary sidecar after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Two SIGINTs in a row: the second comes while the input is still
    // being drained (tcpshut waits for 300 ms of silence).
    for _ in 0..2 {
        // SAFETY: kill(2) on the child we started and have not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        std::thread::sleep(Duration::from_millis(30));
    }
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert_eq!(temporary_files(dir.path()), Vec::<PathBuf>::new());
    assert!(!out.exists());
}
