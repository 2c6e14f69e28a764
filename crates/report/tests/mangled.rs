//! Bad input never panics the report: every bundled capture, cut short at
//! many points and with bytes overwritten, aggregates (or fails cleanly),
//! and its document, HTML and ladders are made.

use std::path::Path;

use tcpshut_report::{html, ladder, CaptureAggregator, Document};

#[test]
fn mangled_captures_never_panic_the_report() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let mut tried = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng")
        ) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for variant in 0..8usize {
            let mut b = bytes.clone();
            // Deterministic damage: cut, and overwrite a stretch of bytes.
            let cut = b.len() * (variant + 1) / 9;
            b.truncate(cut.max(24));
            let at = (variant * 7919) % b.len();
            for (i, byte) in b.iter_mut().skip(at).take(16).enumerate() {
                *byte ^= (i as u8).wrapping_mul(37).wrapping_add(variant as u8);
            }
            let mut agg = CaptureAggregator::new(0, "mangled".into());
            if let Ok(summary) = tcpshut_engine::each_report_bytes(
                &b,
                "mangled",
                tcpshut_engine::Schedule::default(),
                &mut |r| agg.add(r),
            ) {
                let doc = Document::new(&agg.finish(&summary), 0);
                let page = html::render(&doc, &html::Ladders::new());
                assert!(page.len() < 2_000_000);
            }
            tried += 1;
        }
        // A ladder of a connection that does not exist is simply absent.
        let none = ladder::collect(&path, &std::collections::BTreeSet::from([u32::MAX])).unwrap();
        assert!(none.is_empty());
    }
    assert!(tried > 100, "{tried} mangled copies");
}
