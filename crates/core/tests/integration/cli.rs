//! The `tcpshut` binary end to end: sidecars, goldens, batches, bad
//! input, exit codes.

use std::fs;
use std::path::Path;

use crate::util::{annotate_json, copy_into, strings, tcpshut, testdata, testdata_captures, text};

/// The connections sidecar goes beside a CSV sidecar (`NAME.csv` gives
/// `NAME.connections.csv`), never onto standard output, and agrees with
/// the JSON document's connections (issue #13).
#[test]
fn annotate_writes_the_connections_sidecar_beside_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let capture = copy_into(dir.path(), &testdata().join("port-reuse.pcap"));
    let out = tcpshut(&["annotate", capture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let beside =
        fs::read_to_string(dir.path().join("port-reuse.pcap.tcpshut.connections.csv")).unwrap();
    let other = dir.path().join("other.csv");
    let out = tcpshut(&[
        "annotate",
        capture.to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(dir.path().join("other.connections.csv")).unwrap(),
        beside
    );
    let out = tcpshut(&["annotate", capture.to_str().unwrap(), "-o", "-"]);
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("client_calls"));
    let json: serde_json::Value = serde_json::from_slice(&annotate_json(&capture).stdout).unwrap();
    let mut lines: Vec<&str> = beside.lines().collect();
    assert_eq!(
        lines.remove(0),
        "conn,client,server,outcome,closer,client_calls,server_calls,first_frame,last_frame,notes,tunnel"
    );
    let conns = json["connections"].as_array().unwrap();
    assert_eq!(lines.len(), conns.len());
    for c in conns {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{},", c["id"])))
            .unwrap();
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[1], c["client"].as_str().unwrap());
        assert_eq!(f[2], c["server"].as_str().unwrap());
        assert_eq!(f[3], c["outcome"].as_str().unwrap());
        assert_eq!(f[4], c["closer"].as_str().unwrap());
        assert_eq!(f[7], c["first_frame"].to_string());
        assert_eq!(f[8], c["last_frame"].to_string());
        let notes = strings(&c["notes"]);
        assert_eq!(f[9], notes.join(";"));
        assert_eq!(f[10], "", "no tunnel");
    }
}

#[test]
fn annotate_writes_the_sidecar_beside_an_untouched_capture() {
    let dir = tempfile::tempdir().unwrap();
    let capture = copy_into(
        dir.path(),
        &testdata().join("half-close-data-after-fin.pcap"),
    );
    let before = fs::read(&capture).unwrap();
    let out = tcpshut(&["annotate", capture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read(&capture).unwrap(),
        before,
        "the capture is never modified"
    );

    let sidecar = fs::read_to_string(
        dir.path()
            .join("half-close-data-after-fin.pcap.tcpshut.csv"),
    )
    .expect("sidecar written beside the capture");
    let mut lines = sidecar.lines();
    assert_eq!(
        lines.next(),
        Some("frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,events,calls,summary,severity,related")
    );
    assert!(sidecar.contains("data-after-fin"));
    assert!(sidecar.contains(",shut_wr,"));
    // Nothing but the capture, its sidecar and the connections sidecar:
    // no temporary file left.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
    // The short summary names the connection and what the client called.
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 connection (1 graceful)"), "{stdout}");
    assert!(stdout.contains("client shut_wr"), "{stdout}");
}

/// Goldens: `tcpshut annotate -o -` of every capture equals the committed
/// `testdata/golden/NAME.tcpshut.csv`. Set UPDATE_GOLDEN=1 to rewrite them
/// after an intended change, and review the diff.
#[test]
fn sidecars_match_the_goldens() {
    let golden_dir = testdata().join("golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differ = Vec::new();
    for capture in testdata_captures() {
        let out = tcpshut(&["annotate", capture.to_str().unwrap(), "-o", "-"]);
        assert!(
            out.status.success(),
            "{}: {}",
            capture.display(),
            text(&out.stderr)
        );
        let name = format!(
            "{}.tcpshut.csv",
            capture.file_name().unwrap().to_string_lossy()
        );
        let golden = golden_dir.join(&name);
        if update {
            fs::create_dir_all(&golden_dir).unwrap();
            fs::write(&golden, &out.stdout).unwrap();
        } else if fs::read(&golden).ok().as_deref() != Some(&out.stdout[..]) {
            differ.push(name);
        }
    }
    assert!(differ.is_empty(), "differ from their goldens: {differ:?}");
}

#[test]
fn json_document_has_capture_connections_and_segments() {
    let capture = testdata().join("port-reuse.pcap");
    let out = annotate_json(&capture);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[1]["notes"][0], "port-reuse");
    assert_eq!(conns[0]["endpoints"][0]["side"], "client");
    // The reused 4-tuple: one Community ID for both connections.
    let id = conns[0]["community_id"].as_str().unwrap();
    assert!(id.starts_with("1:") && id.len() == 30, "{id}");
    assert_eq!(conns[1]["community_id"], id);
    // zeek_rows: every Zeek connection, the first one repeating the
    // zeek_conn_state / zeek_history pair.
    for c in conns {
        let rows = c["zeek_rows"].as_array().unwrap();
        assert!(!rows.is_empty());
        assert_eq!(rows[0]["conn_state"], c["zeek_conn_state"]);
        assert_eq!(rows[0]["history"], c["zeek_history"]);
        assert_eq!(rows[0]["first_frame"], c["first_frame"]);
    }
    let segments = doc["segments"].as_array().unwrap();
    assert_eq!(
        segments.len() as u64,
        doc["capture"]["decode"]["tcp_segments"].as_u64().unwrap()
    );
    assert!(segments.iter().any(|s| s["events"]
        .as_array()
        .unwrap()
        .contains(&"port-reuse".into())));
    // Frame order.
    let frames: Vec<u64> = segments
        .iter()
        .map(|s| s["frame"].as_u64().unwrap())
        .collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_batch_goes_on_past_bad_files_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    copy_into(dir.path(), &testdata().join("refused.pcap"));
    fs::write(dir.path().join("empty.pcap"), b"").unwrap();
    fs::write(
        dir.path().join("notes.pcap"),
        b"this is not a capture at all",
    )
    .unwrap();
    let good_bytes = fs::read(testdata().join("close-client-first.pcap")).unwrap();
    fs::write(
        dir.path().join("cut.pcap"),
        &good_bytes[..good_bytes.len() - 7],
    )
    .unwrap();
    // The walk takes empty.pcap and notes.pcap by their names (and fails
    // on them), and so does the command line.
    let out = tcpshut(&[
        "annotate",
        dir.path().to_str().unwrap(),
        dir.path().join("empty.pcap").to_str().unwrap(),
        dir.path().join("notes.pcap").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    // Failures outrank an incomplete capture: exit code 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("empty.pcap:"), "{stderr}");
    assert!(stderr.contains("notes.pcap:"), "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("tcpshut: ")),
        "{stderr}"
    );
    assert!(dir.path().join("refused.pcap.tcpshut.csv").exists());
    assert!(dir.path().join("cut.pcap.tcpshut.csv").exists());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("2 of 6 captures done, 4 failed, 1 incomplete"),
        "{stdout}"
    );
}

#[test]
fn a_truncated_capture_is_annotated_up_to_its_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(testdata().join("close-client-first.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    fs::write(&cut, &good[..good.len() - 7]).unwrap();
    let out = tcpshut(&["annotate", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("incomplete"));
    let full = tcpshut(&[
        "annotate",
        testdata().join("close-client-first.pcap").to_str().unwrap(),
        "-o",
        "-",
    ]);
    let partial = fs::read_to_string(dir.path().join("cut.pcap.tcpshut.csv")).unwrap();
    assert_eq!(
        partial.lines().count() + 1,
        text(&full.stdout).lines().count()
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = tcpshut(&["annotate", "a.pcap", "b.pcap", "-o", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tcpshut(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    // Writing over the capture itself is refused, and the capture survives.
    let dir = tempfile::tempdir().unwrap();
    let capture = copy_into(dir.path(), &testdata().join("refused.pcap"));
    let before = fs::read(&capture).unwrap();
    let out = tcpshut(&[
        "annotate",
        capture.to_str().unwrap(),
        "-o",
        capture.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read(&capture).unwrap(), before);
}

#[test]
fn a_missing_file_is_named_in_the_error() {
    let out = tcpshut(&["summary", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("tcpshut: /nonexistent/x.pcap: "));
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    copy_into(&sub, &testdata().join("refused.pcap"));
    std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
    let out = tcpshut(&["summary", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("loop"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("refused"));
}

#[test]
fn output_is_the_same_whatever_the_parallelism() {
    let dir = testdata();
    let one = tcpshut(&["summary", "--jobs", "1", dir.to_str().unwrap()]);
    let two = tcpshut(&["summary", "--jobs", "2", dir.to_str().unwrap()]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert_eq!(one.stdout, two.stdout);
}

#[test]
fn summary_table_shows_calls_and_final_states() {
    let out = tcpshut(&[
        "summary",
        testdata()
            .join("shut_wr-then-close-unread.pcap")
            .to_str()
            .unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("shut_wr>close_unread|linger0|shut_rd"),
        "{stdout}"
    );
    assert!(stdout.contains("CLOSED"), "{stdout}");
}

/// Offset of the `n`th (1-based) record header of a little-endian pcap.
fn pcap_record_offset(bytes: &[u8], n: usize) -> usize {
    let mut at = 24;
    for _ in 1..n {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    at
}

#[test]
fn an_absurd_record_length_ends_the_capture_there_not_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(testdata().join("close-client-first.pcap")).unwrap();
    let at = pcap_record_offset(&bytes, 4);
    // Frame 4's captured length: 4 GiB - 256, far above any snaplen.
    bytes[at + 8..at + 12].copy_from_slice(&0xffff_ff00u32.to_le_bytes());
    let bad = dir.path().join("absurd.pcap");
    fs::write(&bad, &bytes).unwrap();
    copy_into(dir.path(), &testdata().join("refused.pcap"));
    let out = tcpshut(&["annotate", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("absurd.pcap"), "{stderr}");
    assert!(stderr.contains("exceeds"), "{stderr}");
    let sidecar = fs::read_to_string(dir.path().join("absurd.pcap.tcpshut.csv")).unwrap();
    let frames: Vec<&str> = sidecar
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        frames,
        ["1", "2", "3"],
        "annotated up to the last whole record"
    );
    assert!(dir.path().join("refused.pcap.tcpshut.csv").exists());
}

/// A capture none of whose frames can be decoded cannot be used: an
/// error naming it (exit 1), no sidecar, and the rest of the batch goes on.
#[test]
fn a_capture_of_an_unknown_link_type_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(testdata().join("close-client-first.pcap")).unwrap();
    // Link type 999: nothing tcpshut decodes.
    bytes[20..24].copy_from_slice(&999u32.to_le_bytes());
    let capture = dir.path().join("odd.pcap");
    fs::write(&capture, &bytes).unwrap();
    copy_into(dir.path(), &testdata().join("refused.pcap"));
    let out = tcpshut(&["annotate", dir.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("odd.pcap: none of its 11 frames has a link type tcpshut decodes"),
        "{stderr}"
    );
    assert!(!dir.path().join("odd.pcap.tcpshut.csv").exists());
    assert!(dir.path().join("refused.pcap.tcpshut.csv").exists());
    let out = tcpshut(&["summary", capture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_fails_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = copy_into(dir.path(), &testdata().join("close-client-first.pcap"));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    copy_into(dir.path(), &testdata().join("refused.pcap"));
    // Root reads files whatever their mode (CAP_DAC_OVERRIDE): there the
    // file is readable and the failure can't be provoked this way.
    let readable = fs::File::open(&locked).is_ok();
    let out = tcpshut(&["annotate", dir.path().to_str().unwrap()]);
    assert!(dir.path().join("refused.pcap.tcpshut.csv").exists());
    if readable {
        eprintln!("running as root: chmod 000 does not stop reads, skipping that assertion");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    } else {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("close-client-first.pcap"));
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
}

/// `--pcapng` writes the same packets, byte for byte and in order, with
/// each row's summary as the packet's comment.
#[test]
fn pcapng_copy_carries_the_summaries_as_comments() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use tcpshut_engine::CaptureReader;

    let dir = tempfile::tempdir().unwrap();
    let capture = copy_into(dir.path(), &testdata().join("close-client-first-sll2.pcap"));
    let out = tcpshut(&["annotate", capture.to_str().unwrap(), "--pcapng"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let sidecar =
        fs::read_to_string(dir.path().join("close-client-first-sll2.pcap.tcpshut.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(sidecar.as_bytes());
    let summaries: Vec<(u64, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].parse().unwrap(), r[13].to_string())
        })
        .collect();

    let copy = fs::File::open(
        dir.path()
            .join("close-client-first-sll2.pcap.tcpshut.pcapng"),
    )
    .unwrap();
    let mut copy = PcapNgReader::new(copy).unwrap();
    let mut original = CaptureReader::open(&capture).unwrap();
    let mut frame = 0u64;
    while let Some(block) = copy.next_block() {
        let Block::EnhancedPacket(packet) = block.unwrap() else {
            continue;
        };
        frame += 1;
        let source = original
            .next_frame()
            .unwrap()
            .expect("same number of frames");
        assert_eq!(&packet.data[..], source.data, "frame {frame} bytes");
        let comment = packet.options.iter().find_map(|o| match o {
            EnhancedPacketOption::Comment(c) => Some(c.to_string()),
            _ => None,
        });
        let expected = summaries
            .iter()
            .find(|(f, _)| *f == frame)
            .map(|(_, s)| s.clone())
            .filter(|s| !s.is_empty());
        assert_eq!(comment, expected, "frame {frame} comment");
    }
    assert!(original.next_frame().unwrap().is_none());
    assert!(summaries.iter().any(|(_, s)| s.contains("closes first")));
}

/// `annotate`'s per-connection lines stay short on a capture of many
/// connections; `summary` still lists them all.
#[test]
fn the_short_summary_stays_short() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/third-party/zeek__ssh__ssh.pcap");
    let out = tcpshut(&["annotate", capture.to_str().unwrap(), "-o", "-"]);
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  #")).collect();
    assert_eq!(lines.len(), 20, "{stderr}");
    assert!(stderr.contains("... and 3 more"), "{stderr}");
    let all = tcpshut(&["summary", capture.to_str().unwrap()]);
    // The counts, the header, 23 rows, what is left at the end, and the
    // one answer widened by the late start.
    assert_eq!(text(&all.stdout).lines().count(), 1 + 1 + 23 + 1 + 1);
}

/// `summary --only` narrows the table to some outcomes; the counts still
/// cover every connection.
#[test]
fn summary_only_shows_the_outcomes_asked_for() {
    let dir = testdata();
    let out = tcpshut(&["summary", "--only", "reset,refused", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            let cell = l.trim_start();
            l.starts_with("  ")
                && !["conn", "at the end", "end unseen:", "widened:"]
                    .iter()
                    .any(|start| cell.starts_with(start))
        })
        .collect();
    assert!(!rows.is_empty(), "{stdout}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" reset ") || r.contains(" refused ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("(1 graceful)"),
        "counts still cover everything"
    );
    let bad = tcpshut(&["summary", "--only", "bogus", dir.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `summary` tallies the sockets still held at the end of the capture:
/// the CLOSE-WAIT leak and the TIME-WAIT of the side that closed first.
#[test]
fn summary_counts_what_is_left_holding_a_socket() {
    let out = tcpshut(&[
        "summary",
        testdata().join("close-wait-at-end.pcap").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("at the end: 1 in CLOSE-WAIT (client 0, server 1), 1 in FIN-WAIT-2 (client 1, server 0)"),
        "{stdout}"
    );
    let out = tcpshut(&["summary", testdata().join("refused.pcap").to_str().unwrap()]);
    assert!(!text(&out.stdout).contains("at the end"));
}

#[test]
fn headers_only_captures_are_used_and_said_so() {
    // tcpdump -s 64 of a real close: every segment's options are cut.
    let capture = testdata().join("degraded/close-client-first--snap64.pcap");
    let out = tcpshut(&["summary", capture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 connection (1 graceful)"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: 11 segments had their TCP options cut by the snaplen"),
        "{stderr}"
    );
    let json = annotate_json(&capture);
    assert!(json.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["capture"]["decode"]["options_cut"], 11);
    assert_eq!(doc["capture"]["decode"]["truncated"], 0);
    assert!(text(&json.stderr).contains("options cut"));
    assert_eq!(doc["segments"][0]["events"][1], "options-cut");
}

/// A little-endian pcap's records cut to `snaplen` bytes each, the
/// original length kept (what `tcpdump -s N` writes).
fn cut_records(pcap: &[u8], snaplen: usize) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let mut header = pcap[at..at + 16].to_vec();
        let caplen = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let kept = caplen.min(snaplen);
        header[8..12].copy_from_slice(&(kept as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&pcap[at + 16..at + 16 + kept]);
        at += 16 + caplen;
    }
    out
}

/// `annotate`'s short summary says what the snaplen cut and what the
/// capture point did not see, as `summary` and the JSON do.
#[test]
fn annotate_summary_counts_cut_segments_and_partial_sight() {
    let tmp = tempfile::tempdir().unwrap();
    let annotate = |capture: &Path| {
        let out = tcpshut(&["annotate", capture.to_str().unwrap(), "-o", "-"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    let snap = annotate(&testdata().join("degraded/close-client-first--snap64.pcap"));
    assert!(
        snap.contains("1 connection (1 graceful), 11 segments (11 options cut, 2 payload cut) -> standard output"),
        "{snap}"
    );
    let one_way = annotate(&testdata().join("degraded/close-client-first--client-only.pcap"));
    assert!(
        one_way.contains("1 connection (1 unknown), 6 segments -> standard output\n  end unseen: 1 of 1 connections still open when the capture stopped\n  widened: 1 connection: 1 answer widened because the capture saw one direction only\n"),
        "{one_way}"
    );
    // Cut inside the TCP header (Ethernet 14 + IPv4 20 + 10 bytes of TCP):
    // no frame can be used, and the summary says how many.
    let short = tmp.path().join("short.pcap");
    let full = fs::read(testdata().join("close-client-first.pcap")).unwrap();
    fs::write(&short, cut_records(&full, 44)).unwrap();
    let cut = annotate(&short);
    assert!(
        cut.contains("0 connections, 0 segments, 11 frames too short to use -> standard output"),
        "{cut}"
    );
    let whole = annotate(&testdata().join("close-client-first.pcap"));
    assert!(
        whole.contains("1 connection (1 graceful), 11 segments -> standard output\n  #0 "),
        "{whole}"
    );
}

/// The files of one table of a `-o DIR` Parquet dataset, sorted.
fn dataset_files(dir: &Path, table: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(table))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn parquet_with_a_directory_writes_one_dataset_for_every_capture() {
    let tmp = tempfile::tempdir().unwrap();
    // Two captures of the same name in different folders, and a third.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    fs::copy(testdata().join("refused.pcap"), a.join("x.pcap")).unwrap();
    fs::copy(testdata().join("close-unread.pcap"), b.join("x.pcap")).unwrap();
    fs::copy(testdata().join("port-reuse.pcap"), b.join("_y.pcap")).unwrap();
    let dataset = tmp.path().join("dataset");
    let run = || {
        tcpshut(&[
            "annotate",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--format",
            "parquet",
            "-o",
            dataset.to_str().unwrap(),
        ])
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let segments = dataset_files(&dataset, "segments");
    assert_eq!(segments, dataset_files(&dataset, "connections"));
    assert_eq!(segments.len(), 3, "{segments:?}");
    for name in &segments {
        // HASH-NAME.parquet: 12 hex digits first, never hidden from Spark.
        let (hash, rest) = name.split_once('-').unwrap();
        assert!(hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(rest.ends_with(".pcap.parquet"), "{name}");
        let bytes = fs::read(dataset.join("segments").join(name)).unwrap();
        assert_eq!(&bytes[..4], b"PAR1", "{name} is Parquet");
    }
    // Nothing beside the captures.
    assert!(!a.join("x.pcap.tcpshut.segments.parquet").exists());
    // Again: each capture replaces its own files.
    let out = run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(dataset_files(&dataset, "segments"), segments);

    // -o - and -o FILE are refused, as usage errors.
    let refused = |dest: &str| {
        tcpshut(&[
            "annotate",
            a.to_str().unwrap(),
            "--format",
            "parquet",
            "-o",
            dest,
        ])
    };
    let out = refused("-");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let out = refused(file.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a directory"));
}
