//! Bad input never loses work: byte-flipped and truncated copies of every
//! real-world capture in `testdata/third-party/` go through the engine's
//! two-pass `annotate` without a panic, and whatever is read gets exactly
//! one row per TCP frame, in frame order.

mod common;

/// Runs one mangled copy through the invariant checks; returns whether it
/// could be read at all.
fn run(name: &str, bytes: &[u8]) -> bool {
    tcpshut_engine::testing::annotate_checked(bytes, name).is_some()
}

/// Deterministic positions spread over the file (a small LCG).
fn positions(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut x = seed;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize % len.max(1)
        })
        .collect()
}

#[test]
fn mangled_realworld_captures_never_panic_and_keep_one_row_per_segment() {
    let dir = common::realworld_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "tsv" || e == "md"))
        .collect();
    files.sort();
    let (mut copies, mut readable) = (0, 0);
    for path in files {
        let original = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let len = original.len();
        let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
        // Truncated: inside the file header, inside early records, half-way,
        // one byte short.
        for cut in [10, 30, 100, len / 3, len / 2, len.saturating_sub(1)] {
            if cut < len {
                variants.push((format!("{name} cut at {cut}"), original[..cut].to_vec()));
            }
        }
        // Byte-flipped: one byte at a time near the start (headers), then
        // 8 and 64 bytes at once anywhere.
        for (i, at) in positions(len.min(256), 8, 1).into_iter().enumerate() {
            let mut b = original.clone();
            b[at] ^= 0xff;
            variants.push((format!("{name} flip {i} at {at}"), b));
        }
        for (seed, count) in [(2, 8), (3, 64)] {
            let mut b = original.clone();
            for at in positions(len, count, seed) {
                b[at] ^= 0x5a;
            }
            variants.push((format!("{name} {count} flips"), b));
        }
        for (label, bytes) in variants {
            copies += 1;
            readable += usize::from(run(&label, &bytes));
        }
    }
    eprintln!("{copies} mangled copies, {readable} readable as captures");
    assert!(copies > 0);
}
