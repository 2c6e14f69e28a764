//! Helpers shared by the report's integration tests.

use tcpshut_report::findings::{Kind, Severity};
use tcpshut_report::Document;

/// Each finding as the tests compare it: rank, kind, severity, subject,
/// affected and total.
pub fn ranked(doc: &Document) -> Vec<(usize, Kind, Severity, &str, u64, u64)> {
    doc.findings
        .iter()
        .map(|f| {
            (
                f.rank,
                f.kind,
                f.severity,
                f.subject.as_str(),
                f.affected,
                f.total,
            )
        })
        .collect()
}
