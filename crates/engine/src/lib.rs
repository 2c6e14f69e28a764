//! tcpshut-engine: reads pcap/pcapng captures and explains, segment by
//! segment, how every TCP connection was torn down and which socket calls
//! each application most likely made.
//!
//! Data flows one way: [`capture`] yields frames, [`link`] decodes them
//! into [`segment::Segment`]s, [`flow`] groups segments into
//! [`connection`]s whose [`endpoint`]s follow RFC 9293 states,
//! [`inference`] turns the evidence into verdicts, [`annotate`] makes one
//! row per segment, and [`writer`] prints rows as CSV or JSON.
//! [`analysis`] runs the whole pipeline over a file in one streaming pass
//! (rows wait in [`pending`] for their connection's verdict), or two.

pub mod analysis;
pub mod annotate;
pub mod capture;
pub mod check;
pub mod connection;
pub mod endpoint;
pub mod event;
pub mod flow;
pub mod inference;
pub mod link;
pub mod pending;
pub mod report;
pub mod segment;
pub mod seq;
pub mod writer;
pub mod zeek;

pub use analysis::{
    annotate, annotate_bytes, annotate_with, verdicts, AnalyzeError, CaptureSummary, Detail,
    OutcomeCounts, Pass, Peers, RowSink, Schedule, Tee, Verdicts, BRIEF_CONNECTIONS,
};
pub use writer::{CsvSink, JsonSink, PcapngCommentSink, CSV_HEADER};
