//! `--series`: a real-kernel recording split into 5 files (by `editcap
//! -c`, renamed as `tcpdump -C` names its files) annotated as a series
//! gives each file the sidecar rows of the whole recording at that file's
//! own frame numbers, and every connection the whole's verdict in each
//! file it spans; a broken file in the middle is named and the rest kept.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{parse_csv, require_tool, tcpshut, testdata};

/// 280 connections, 2,600 frames; connection 2 open from frame 17 to 2,569.
fn whole() -> PathBuf {
    testdata().join("report-mix/mix.pcap")
}

const PER_FILE: usize = 520;

/// The recording split by `editcap -c` into `dir`, renamed `mix.pcap`,
/// `mix.pcap1`, ... `mix.pcap4` as `tcpdump -C` names a rotation.
fn split_like_tcpdump(dir: &Path) -> Vec<PathBuf> {
    require_tool("editcap", "splits a recording into a series");
    let parts = dir.join("parts");
    std::fs::create_dir(&parts).unwrap();
    let status = Command::new("editcap")
        .args(["-c", &PER_FILE.to_string()])
        .arg(whole())
        .arg(parts.join("part.pcap"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut split: Vec<PathBuf> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    split.sort();
    assert_eq!(split.len(), 5);
    let rotated = dir.join("rotated");
    std::fs::create_dir(&rotated).unwrap();
    let names: Vec<PathBuf> = (0..5)
        .map(|i| match i {
            0 => rotated.join("mix.pcap"),
            i => rotated.join(format!("mix.pcap{i}")),
        })
        .collect();
    for (from, to) in split.iter().zip(&names) {
        std::fs::rename(from, to).unwrap();
    }
    names
}

fn sidecar(capture: &Path, what: &str) -> Vec<Vec<String>> {
    let path = PathBuf::from(format!("{}.tcpshut.{what}", capture.display()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_csv(&text)
}

/// The whole recording's sidecars (rows, connections), header first.
fn whole_sidecars(dir: &Path) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let out = dir.join("whole.csv");
    let run = tcpshut(&[
        "annotate".as_ref(),
        whole().as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(run.status.success());
    let read = |p: &Path| parse_csv(&std::fs::read_to_string(p).unwrap());
    (read(&out), read(&dir.join("whole.connections.csv")))
}

/// A connection's verdict in the connections sidecar: outcome, closer,
/// both sides' calls.
fn verdict(line: &[String]) -> String {
    line[3..7].join(" ")
}

#[test]
fn a_tcpdump_rotation_in_a_directory_gives_each_file_the_whole_rows() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_like_tcpdump(dir.path());
    // Another capture in the same folder stays a capture of its own.
    let other = files[0].with_file_name("refused.pcap");
    std::fs::copy(testdata().join("refused.pcap"), &other).unwrap();
    let run = tcpshut(&[
        "annotate".as_ref(),
        "--series".as_ref(),
        files[0].parent().unwrap().as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("(5 files): 280 connections"), "{stdout}");
    assert!(stdout.contains("2 of 2 captures done"), "{stdout}");
    let (whole_rows, whole_conns) = whole_sidecars(dir.path());
    let header = &whole_rows[0];
    let related = header.iter().position(|h| h == "related").unwrap();
    let mut expected: Vec<Vec<Vec<String>>> = vec![vec![header.clone()]; 5];
    for row in &whole_rows[1..] {
        let frame: usize = row[0].parse().unwrap();
        let file = (frame - 1) / PER_FILE;
        let base = file * PER_FILE;
        let mut local = row.clone();
        local[0] = (frame - base).to_string();
        local[related] = match row[related].parse::<usize>() {
            Ok(f) if (f - 1) / PER_FILE == file => (f - base).to_string(),
            _ => String::new(),
        };
        expected[file].push(local);
    }
    let whole_verdicts: std::collections::BTreeMap<&str, String> = whole_conns[1..]
        .iter()
        .map(|line| (line[0].as_str(), verdict(line)))
        .collect();
    let whole_lines: std::collections::BTreeMap<&str, &Vec<String>> = whole_conns[1..]
        .iter()
        .map(|line| (line[0].as_str(), line))
        .collect();
    let mut spanning_all = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let rows = sidecar(file, "csv");
        assert_eq!(rows.len(), expected[index].len(), "{}", file.display());
        for (got, want) in rows.iter().zip(&expected[index]) {
            assert_eq!(got, want, "{}", file.display());
        }
        let conns = sidecar(file, "connections.csv");
        assert_eq!(conns[0], whole_conns[0]);
        for line in &conns[1..] {
            assert_eq!(
                verdict(line),
                whole_verdicts[line[0].as_str()],
                "{}",
                file.display()
            );
            // Addresses, notes and tunnel as the whole capture's line has
            // them (each file's sidecar is written from brief reports).
            let whole_line = whole_lines[line[0].as_str()];
            assert_eq!(line[1..3], whole_line[1..3], "{}", file.display());
            assert_eq!(line[9..], whole_line[9..], "{}", file.display());
            let (first, last): (usize, usize) =
                (line[7].parse().unwrap(), line[8].parse().unwrap());
            assert!(1 <= first && first <= last && last <= PER_FILE);
            if line[0] == "2" {
                spanning_all.push(verdict(line));
            }
        }
    }
    // The connection open across all five files has one verdict in each.
    assert_eq!(spanning_all.len(), 5);
    assert_eq!(spanning_all[0], whole_verdicts["2"]);
    // The other capture's sidecar is what annotating it alone writes.
    let alone = dir.path().join("alone.csv");
    assert!(tcpshut(&[
        "annotate".as_ref(),
        other.as_os_str(),
        "-o".as_ref(),
        alone.as_os_str()
    ])
    .status
    .success());
    assert_eq!(
        sidecar(&other, "csv"),
        parse_csv(&std::fs::read_to_string(&alone).unwrap())
    );
}

#[test]
fn without_series_the_files_are_captures_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_like_tcpdump(dir.path());
    let run = tcpshut(&["summary".as_ref(), files[0].parent().unwrap().as_os_str()]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("5 of 5 captures done"), "{stdout}");
    // The same files named, with --series: one table of 280 connections.
    let mut args = vec!["summary".as_ref(), "--series".as_ref()];
    args.extend(files.iter().rev().map(|f| f.as_os_str()));
    let run = tcpshut(&args);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("(5 files): 280 connections"), "{stdout}");
    assert!(
        stdout.starts_with(&format!("{} .. ", files[0].display())),
        "{stdout}"
    );
}

#[test]
fn a_broken_file_in_the_middle_is_named_and_the_rest_annotated() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_like_tcpdump(dir.path());
    let folder = files[0].parent().unwrap().as_os_str().to_owned();
    // Cut short: exit 3, named, its whole records annotated.
    let bytes = std::fs::read(&files[2]).unwrap();
    std::fs::write(&files[2], &bytes[..bytes.len() / 2 + 5]).unwrap();
    let run = tcpshut(&["annotate".as_ref(), "--series".as_ref(), folder.as_os_str()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("tcpshut: {}: incomplete:", files[2].display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "said once: {stderr}");
    let cut_rows = sidecar(&files[2], "csv").len() - 1;
    assert!(cut_rows > 0 && cut_rows < PER_FILE, "{cut_rows}");
    for file in [&files[0], &files[1], &files[3], &files[4]] {
        assert_eq!(sidecar(file, "csv").len(), PER_FILE + 1);
    }
    // No capture at all: exit 1, named, the others annotated, none beside it.
    std::fs::write(&files[2], b"this is no capture").unwrap();
    for file in &files {
        let _ = std::fs::remove_file(format!("{}.tcpshut.csv", file.display()));
    }
    let run = tcpshut(&["annotate".as_ref(), "--series".as_ref(), folder.as_os_str()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "tcpshut: {}: not a pcap or pcapng file",
            files[2].display()
        )),
        "{stderr}"
    );
    assert!(!Path::new(&format!("{}.tcpshut.csv", files[2].display())).exists());
    for file in [&files[0], &files[1], &files[3], &files[4]] {
        assert_eq!(sidecar(file, "csv").len(), PER_FILE + 1);
    }
}

#[test]
fn files_that_overlap_in_time_are_said_to() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_like_tcpdump(dir.path());
    let run = tcpshut(&[
        "summary".as_ref(),
        "--series".as_ref(),
        whole().as_os_str(),
        files[3].as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "tcpshut: {}: warning: the files overlap in time",
            files[3].display()
        )),
        "{stderr}"
    );
}

/// `--format parquet`: both tables beside each file (their content is
/// checked in tcpshut-parquet's tests).
#[test]
fn each_file_of_a_series_gets_its_parquet_tables() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_like_tcpdump(dir.path());
    let folder = files[0].parent().unwrap().as_os_str().to_owned();
    let run = tcpshut(&[
        "annotate".as_ref(),
        "--series".as_ref(),
        "--format".as_ref(),
        "parquet".as_ref(),
        folder.as_os_str(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in &files {
        for table in ["segments", "connections"] {
            let path = PathBuf::from(format!("{}.tcpshut.{table}.parquet", file.display()));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
        }
        assert!(!PathBuf::from(format!("{}.tcpshut.csv", file.display())).exists());
    }
}

/// `report --series --html`: the series' findings and ladder diagrams are
/// the whole recording's.
#[test]
fn the_report_of_a_series_is_the_whole_report() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_like_tcpdump(dir.path());
    let folder = files[0].parent().unwrap().as_os_str().to_owned();
    let (series_page, whole_page) = (
        dir.path().join("series.html"),
        dir.path().join("whole.html"),
    );
    let run = tcpshut(&[
        "report".as_ref(),
        "--series".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        folder.as_os_str(),
        "--html".as_ref(),
        series_page.as_os_str(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let series: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let run = tcpshut(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        whole().as_os_str(),
        "--html".as_ref(),
        whole_page.as_os_str(),
    ]);
    assert!(run.status.success());
    let whole_doc: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    // The same findings, one capture; only the capture's name differs.
    let text = |v: &serde_json::Value, name: &str| v.to_string().replace(name, "CAPTURE");
    let series_name = format!("{} .. {} (5 files)", files[0].display(), files[4].display());
    assert_eq!(
        text(&series["findings"], &series_name),
        text(&whole_doc["findings"], &whole().display().to_string())
    );
    let ladders = |page: &Path| {
        std::fs::read_to_string(page)
            .unwrap()
            .matches("Ladder diagram of")
            .count()
    };
    assert!(ladders(&whole_page) > 0);
    assert_eq!(ladders(&series_page), ladders(&whole_page));
}

#[test]
fn series_refuses_what_it_cannot_write_per_file() {
    for extra in [
        &["--format", "json"][..],
        &["--format", "zeek"],
        &["--format", "zeek-json"],
        &["-o", "x.csv"],
        &["--pcapng"],
    ] {
        let mut args = vec!["annotate", "--series"];
        args.extend_from_slice(extra);
        let capture = whole();
        args.push(capture.to_str().unwrap());
        let run = tcpshut(&args);
        assert_eq!(run.status.code(), Some(2), "{extra:?}");
    }
    let run = tcpshut(&["summary", "--series", "-"]);
    assert_eq!(run.status.code(), Some(2));
}
