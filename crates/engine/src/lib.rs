//! tcpshut-engine: reads pcap/pcapng captures and explains, segment by
//! segment, how every TCP connection was torn down and which socket calls
//! each application most likely made.
//!
//! Data flows one way, through four layers (folders) that are private to
//! the crate: `wire` (capture files to frames to TCP segments),
//! `tracking` (segments to connections, RFC 9293 endpoint states,
//! evidence and verdicts), `pipeline` (the `Tracker` driving one segment
//! at a time, and the schedules that run it over a capture in one
//! streaming pass or two) and `output` (one row per segment, reports per
//! connection, and the sinks that print them). docs/ARCHITECTURE.md draws
//! them.
//!
//! What the crate's users (the `tcpshut` CLI, `tcpshut report`, the
//! Parquet writer, the lab, the benchmark, the fuzz target and the tests)
//! need is re-exported here, and nothing else: this list is the whole
//! public API. Test-only checks are behind the `testing` feature.

mod output;
mod pipeline;
mod tracking;
mod wire;

// ---- Running the engine over a capture ----
pub use pipeline::schedule::{
    annotate, annotate_bytes, annotate_series, annotate_with, each_report, each_report_bytes,
    each_report_series, each_report_with, verdicts, verdicts_series, AnalyzeError, Schedule,
    MAX_HELD_ROWS,
};
pub use pipeline::sinks::{rows_sink, FormattedRows, Pass, RowFormatter, RowSink, Tee};
pub use pipeline::summary::{
    CaptureSummary, Detail, OutcomeCounts, Peers, SightCounts, Verdicts, BRIEF_CONNECTIONS,
};

// ---- Sinks ----
pub use output::connections_csv::{ConnectionsCsvSink, CONNECTIONS_HEADER};
pub use output::csv::{CsvSink, CSV_HEADER};
pub use output::json::JsonSink;
pub use output::memory::MemorySink;
pub use output::pcapng::PcapngCopy;
pub use output::series::{MakeFileSink, SeriesSink};
pub use output::zeek_log::{ZeekForm, ZeekLogSink};

// ---- What rows and reports say ----
pub use output::reports::{ConnectionReport, EndpointReport, SettledConnection};
pub use output::rows::{Row, Side, Summary};
pub use tracking::endpoint::TcpState;
pub use tracking::event::{Event, Severity};
pub use tracking::inference::{
    Call, CallSet, CallSteps, ClosedBy, Closer, ConnVerdict, Outcome, Role, Unseen,
    ABORT_AFTER_DATA, FIN_STILL_READING, FIN_UNDECIDED,
};
pub use tracking::zeek::ZeekRow;
pub use wire::segment::Timestamp;

// ---- Reading captures (finding them by content, streams, decoding) ----
pub use wire::capture::{
    file_looks_like_capture, starts_like_capture, CaptureError, CaptureReader, Frame, FramesRun,
    Record,
};
pub use wire::compressed::Compression;
pub use wire::link::{
    decode, decode_reassembling, set_tunnel_ports, tunnel_ports, DecodeOptions, DecodeStats,
    Fragments, TunnelError, TunnelPorts, MAX_HELD_FRAGMENTS, MAX_PORTS_PER_TUNNEL,
};
pub use wire::series::{FileSpan, Series, SeriesFile, SeriesLog};
pub use wire::source::{is_stream, stop_streams, WholeSpool, STDIN};
pub use wire::tunnel::{Tunnel, TunnelKind, TunnelLayer, MAX_TUNNEL_DEPTH};

// ---- The one-pass pipeline's parts, for `tcpshut-bench stages` ----
pub use pipeline::pending::PendingRows;
pub use pipeline::tracker::Tracker;

/// Test-only checks (cargo feature `testing`, enabled by the tests and
/// the fuzz target): the row invariants any input must satisfy, and that
/// every schedule writes the same rows; and captures compressed as the
/// common tools write them.
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::output::check::{annotate_checked, state_change_allowed};
    pub use crate::wire::compressed::compress;
}
