//! tcpshut-report: diagnoses the system, not one connection. It folds the
//! engine's per-connection reports ([`tcpshut_engine::each_report`]) of one
//! or many captures into aggregates ([`aggregate`]), draws ranked,
//! plain-language findings from them ([`findings`]) with example
//! connections ([`example`]), and renders the result ([`document`]: the
//! JSON schema; [`terminal`]; [`html`]), plus the ladder diagram of one
//! connection ([`ladder`]).
//!
//! Memory grows with services and hosts, never with connections or files:
//! each capture streams into a [`aggregate::CaptureAggregator`], and
//! captures merge.

pub mod aggregate;
pub mod chart;
pub mod document;
pub mod example;
pub mod findings;
pub mod histogram;
pub mod html;
pub mod ladder;
pub mod terminal;
pub mod timewait;

use std::path::Path;

pub use aggregate::{Aggregate, CaptureAggregator};
pub use document::Document;
use tcpshut_engine::{AnalyzeError, CaptureSummary, Schedule};

/// [`aggregate_capture`] over a rotated series, read as one capture and
/// named as the series is.
pub fn aggregate_series(
    position: usize,
    series: &tcpshut_engine::Series,
    schedule: Schedule,
) -> Result<(Aggregate, CaptureSummary), AnalyzeError> {
    let mut agg = CaptureAggregator::new(position, series.name());
    let summary = tcpshut_engine::each_report_series(series, schedule, &mut |r| agg.add(r))?;
    Ok((agg.finish(&summary), summary))
}

/// The aggregates of one capture, and what the read saw (frames, why it
/// stopped early); `position` is its place among the inputs (it orders
/// examples across captures).
pub fn aggregate_capture(
    position: usize,
    path: &Path,
) -> Result<(Aggregate, CaptureSummary), AnalyzeError> {
    aggregate_capture_as(
        position,
        path,
        path.display().to_string(),
        Schedule::default(),
    )
}

/// [`aggregate_capture`] of the capture read from `read_from` (a copy of
/// a stream), named `name` (as the user named the stream), on one thread
/// or two as `schedule` says (the aggregates are the same).
pub fn aggregate_capture_as(
    position: usize,
    read_from: &Path,
    name: String,
    schedule: Schedule,
) -> Result<(Aggregate, CaptureSummary), AnalyzeError> {
    let mut agg = CaptureAggregator::new(position, name);
    let summary = tcpshut_engine::each_report_with(read_from, schedule, &mut |r| agg.add(r))?;
    Ok((agg.finish(&summary), summary))
}
