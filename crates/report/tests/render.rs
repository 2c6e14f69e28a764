//! The pictures: a ladder is well-formed XML showing the segments, calls
//! and states; the HTML page is self-contained and bounded, whatever the
//! input (the third-party corpus, the mix).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tcpshut_report::{aggregate_capture, html, ladder, Aggregate, Document};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn page_of(paths: &[PathBuf]) -> String {
    let mut agg = Aggregate::default();
    for (i, p) in paths.iter().enumerate() {
        if let Ok((a, _)) = aggregate_capture(i, p) {
            agg.merge(a);
        }
    }
    let doc = Document::new(&agg, 0);
    let mut ladders = html::Ladders::new();
    for (capture, conn) in html::ladder_examples(&doc) {
        let found = ladder::collect(Path::new(&capture), &BTreeSet::from([conn])).unwrap();
        for (id, l) in found {
            ladders.insert((capture.clone(), id), l);
        }
    }
    html::render(&doc, &ladders)
}

#[test]
fn a_ladder_is_xml_with_the_teardown() {
    let mix = testdata().join("report-mix/mix.pcap");
    // Connection 1 is the first to :8080, reset by the server.
    let found = ladder::collect(&mix, &BTreeSet::from([1, 99_999])).unwrap();
    assert_eq!(found.keys().copied().collect::<Vec<_>>(), [1]);
    let l = &found[&1];
    assert_eq!((l.outcome, l.closer), ("reset", "server"));
    let svg = ladder::svg_document(l);
    let xml = roxmltree::Document::parse(&svg).expect("the SVG parses as XML");
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let texts: Vec<&str> = xml.descendants().filter_map(|n| n.text()).collect();
    let has = |s: &str| texts.iter().any(|t| t.contains(s));
    assert!(has("rst-abort"), "{texts:?}");
    assert!(has("calls close_unread|linger0|shut_rd"), "{texts:?}");
    assert!(has("ESTABLISHED") && has("CLOSED"), "{texts:?}");
    let arrows = xml
        .descendants()
        .filter(|n| n.tag_name().name() == "line" && n.attribute("marker-end").is_some())
        .count();
    assert_eq!(arrows, l.head.len() + l.tail.len());
}

/// A long connection keeps its first and last segments and says how many
/// are left out.
#[test]
fn a_long_ladder_is_cut_in_the_middle() {
    let found =
        ladder::collect(&testdata().join("zero-window.pcap"), &BTreeSet::from([0])).unwrap();
    let l = &found[&0];
    assert!(l.head.len() <= ladder::HEAD_ROWS && l.tail.len() <= ladder::TAIL_ROWS);
    let svg = ladder::svg_document(l);
    roxmltree::Document::parse(&svg).expect("XML");
    if l.omitted > 0 {
        assert!(svg.contains(&format!("{} segments not shown", l.omitted)));
    }
}

fn self_contained(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    for needle in ["src=", "href=", "@import", "url(http", "https://"] {
        assert!(!page.contains(needle), "the page refers to {needle}");
    }
    // Only the SVG namespace names a URL.
    assert_eq!(
        page.matches("http://").count(),
        page.matches("http://www.w3.org/2000/svg").count()
    );
}

#[test]
fn the_mix_page_has_findings_ladders_and_charts() {
    let page = page_of(&[testdata().join("report-mix/mix.pcap")]);
    self_contained(&page);
    assert!(page.contains("Client 10.77.0.1 holds up to 150 sockets in TIME-WAIT"));
    assert_eq!(
        page.matches("class=\"ladder\"").count(),
        4,
        "one ladder per finding"
    );
    assert_eq!(page.matches("class=\"chart\"").count(), 3);
    assert!(page.matches("class=\"sortable\"").count() >= 7);
}

#[test]
fn the_page_stays_small_on_the_third_party_corpus() {
    let mut all = Vec::new();
    for entry in walk(&testdata()) {
        all.push(entry);
    }
    assert!(all.len() > 100);
    let page = page_of(&all);
    self_contained(&page);
    assert!(page.len() < 2_000_000, "{} bytes", page.len());
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
