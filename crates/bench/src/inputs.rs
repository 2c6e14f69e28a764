//! The inputs of the field (docs/inputs.md) in the benchmark: the same
//! capture compressed with gzip, zstd and lz4 (each with its tool's
//! default level), and read from a pipe, against the plain file. Every run
//! writes the plain file's sidecar, so only the input differs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::Summary;
use crate::targets::{Bound, Targets};
use crate::Tool;

/// How each compressed copy is written, and its suffix.
const FORMATS: [(&str, &str); 3] = [("gzip", "gz"), ("zstd", "zst"), ("lz4", "lz4")];

/// `plain` compressed as `format` (kept beside it, written once), read
/// back from the disk like every capture the benchmark measures.
fn compressed(plain: &Path, format: &str, suffix: &str) -> anyhow::Result<PathBuf> {
    let mut name = plain.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    let path = PathBuf::from(name);
    if !path.exists() {
        write_compressed(plain, format, &path)?;
    }
    crate::read_back_from_disk(&path)?;
    Ok(path)
}

/// Writes `plain` compressed as `format` to `path`, through a partial
/// file renamed into place.
fn write_compressed(plain: &Path, format: &str, path: &Path) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    let mut input = std::io::BufReader::new(std::fs::File::open(plain)?);
    match format {
        "gzip" => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
            std::io::copy(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
        "zstd" => {
            let mut enc = zstd::Encoder::new(out, 3)?;
            enc.include_checksum(true)?;
            std::io::copy(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
        _ => {
            let info =
                lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max4MB);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            std::io::copy(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
    }
    std::fs::rename(&partial, path)?;
    eprintln!(
        "compressed {} with {format}: {} MB",
        path.display(),
        std::fs::metadata(path)?.len() / 1_000_000
    );
    Ok(())
}

/// The sidecar every run writes: the plain capture's.
fn sidecar(plain: &Path) -> PathBuf {
    let mut name = plain.as_os_str().to_owned();
    name.push(".tcpshut.csv");
    PathBuf::from(name)
}

/// The tools: the plain file first (the base of the ratios), then each
/// compressed copy, then the pipe.
pub fn tools(tcpshut: &Path, plain: &Path, reps: usize) -> anyhow::Result<Vec<Tool>> {
    let annotate = |input: PathBuf, name: &'static str| {
        let bin = tcpshut.to_path_buf();
        Tool {
            name,
            command: Box::new(move |plain: &Path| {
                let mut c = Command::new(&bin);
                c.arg("annotate")
                    .arg(&input)
                    .arg("-o")
                    .arg(sidecar(plain))
                    .arg("--no-progress");
                c
            }),
            reps,
        }
    };
    let mut tools = vec![annotate(plain.to_path_buf(), "tcpshut annotate FILE.pcap")];
    let names = [
        "tcpshut annotate FILE.pcap.gz",
        "tcpshut annotate FILE.pcap.zst",
        "tcpshut annotate FILE.pcap.lz4",
    ];
    for ((format, suffix), name) in FORMATS.iter().zip(names) {
        tools.push(annotate(compressed(plain, format, suffix)?, name));
    }
    let bin = tcpshut.to_path_buf();
    tools.push(Tool {
        name: "tcpshut annotate - (a pipe from cat FILE.pcap)",
        command: Box::new(move |plain: &Path| {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(r#"cat "$1" | "$0" annotate - -o "$2" --no-progress"#)
                .arg(&bin)
                .arg(plain)
                .arg(sidecar(plain));
            c
        }),
        reps,
    });
    Ok(tools)
}

/// Each input's wall time against the plain file's (target: at most 1.3
/// for the compressed ones; the pipe's is shown).
pub fn check_ratios(tools: &[Tool], results: &[Summary], targets: &mut Targets) {
    for (tool, r) in tools.iter().zip(results).skip(1) {
        let bound = if tool.name.contains("pipe") {
            Bound::Shown
        } else {
            Bound::AtMost(1.3)
        };
        targets.check(
            format!("wall time, {} / the plain file", tool.name),
            Targets::ratio(r.wall, results[0].wall),
            bound,
        );
    }
}
