//! tcpshut-engine: reads pcap/pcapng captures and explains, segment by
//! segment, how every TCP connection was torn down and which socket calls
//! each application most likely made.
//!
//! Data flows one way: [`capture`] yields frames, [`link`] decodes them
//! into [`segment::Segment`]s, [`flow`] groups segments into
//! [`connection`]s whose [`endpoint`]s follow RFC 9293 states,
//! [`inference`] turns the evidence into verdicts, [`rows`] makes one
//! row per segment, and the sinks ([`csv`], [`json`], [`pcapng`]) print them.
//! A [`tracker::Tracker`] drives one segment at a time from frame to
//! facts; a [`schedule`] runs it over a file in one streaming pass (rows
//! wait in [`pending`] for their connection's verdict), or two.

pub mod output;
pub mod pipeline;
pub mod tracking;
pub mod wire;

// The layers' modules under their short names, as the rest of the crate
// and its users name them.
#[cfg(feature = "testing")]
pub use output::check;
pub use output::{community_id, csv, json, memory, pcapng, reports, rows, zeek_log};
/// The output modules under the names they had (`annotate`, `report`),
/// for the code that still names them so.
pub use output::{reports as report, rows as annotate};
pub use pipeline::{pending, schedule, sinks, summary, tracker};

/// The pipeline's types under the name they had before it was split in
/// files (`analysis`), for the code that still names them so.
pub mod analysis {
    pub use crate::pipeline::schedule::*;
    pub use crate::pipeline::sinks::*;
    pub use crate::pipeline::summary::*;
}
pub use tracking::{connection, endpoint, event, flow, inference, origin, timeline, zeek};
pub use wire::{capture, compressed, link, segment, seq, source};

pub use analysis::{
    annotate, annotate_bytes, annotate_with, each_report, each_report_bytes, verdicts,
    AnalyzeError, CaptureSummary, Detail, OutcomeCounts, Pass, Peers, RowSink, Schedule, Tee,
    Verdicts, BRIEF_CONNECTIONS,
};
pub use csv::{CsvSink, CSV_HEADER};
pub use json::JsonSink;
pub use memory::MemorySink;
pub use pcapng::PcapngCopy;
pub use zeek_log::{ZeekForm, ZeekLogSink};
