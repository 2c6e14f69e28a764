//! The tracker: one segment at a time from frame to facts (decoding, the
//! flow table), and what is concluded of each connection that leaves the
//! table. Every schedule, `tcpshut-bench stages` and the tests drive the
//! same [`Tracker`], so they see the same facts and verdicts.

use std::path::Path;

use crate::output::reports::ConnectionReport;
use crate::pipeline::summary::{
    CaptureSummary, Detail, OutcomeCounts, Peers, SightCounts, Verdicts, BRIEF_CONNECTIONS,
};
use crate::tracking::connection::SegmentFacts;
use crate::tracking::flow::{Flow, FlowTable};
use crate::tracking::inference::ConnVerdict;
use crate::wire::capture::Frame;
use crate::wire::link::{self, DecodeOptions, DecodeStats, Fragments};
use crate::wire::segment::Segment;

/// Decoding, the flow table, and the conclusions of a pass.
pub struct Tracker {
    stats: DecodeStats,
    /// Segments of fragmented tunnel packets, until their last fragment.
    fragments: Fragments,
    options: DecodeOptions,
    table: FlowTable,
    kept: Conclusions,
}

impl Tracker {
    /// A tracker that concludes every connection leaving the flow table
    /// (its outcome is counted) and keeps what `detail` asks for. Zeek's
    /// view and checksums are followed only for reports, the one output
    /// that shows them.
    pub fn concluding(detail: Detail) -> Tracker {
        Tracker::with(detail, Some(false), false)
    }

    /// [`Tracker::concluding`] (or, with `all_verdicts`,
    /// [`Tracker::concluding_all`]) that also follows Zeek's model of every
    /// connection, so that each flow handed to `settled` carries it: for
    /// sinks that take each connection's report with Zeek's view as it
    /// leaves ([`RowSink::wants_zeek_view`]).
    ///
    /// [`RowSink::wants_zeek_view`]: crate::pipeline::sinks::RowSink::wants_zeek_view
    pub(crate) fn concluding_with_zeek(detail: Detail, all_verdicts: bool) -> Tracker {
        Tracker::with(detail, Some(all_verdicts), true)
    }

    /// [`Tracker::concluding`] that also keeps every verdict, whatever
    /// `detail` says: pass 1 of two, whose pass 2 needs them.
    pub(crate) fn concluding_all(detail: Detail) -> Tracker {
        Tracker::with(detail, Some(true), false)
    }

    /// A tracker that follows connections without concluding them: pass 2
    /// of two, which has pass 1's verdicts.
    pub fn following() -> Tracker {
        Tracker::with(Detail::Brief, None, false)
    }

    /// `all_verdicts`: `None` concludes nothing. `zeek`: follow Zeek's
    /// model even when `detail` keeps no reports.
    fn with(detail: Detail, all_verdicts: Option<bool>, zeek: bool) -> Tracker {
        let reports = all_verdicts.is_some() && detail == Detail::Reports;
        let table = if reports || zeek {
            FlowTable::new()
        } else {
            FlowTable::without_zeek()
        };
        // Verifying checksums reads every payload byte, and its only product
        // is the `bad_checksum` count, which only the full reports show (the
        // JSON document's `capture.decode`): the CSV sidecar never does.
        let options = DecodeOptions {
            verify_checksums: reports,
        };
        Tracker {
            stats: DecodeStats::default(),
            fragments: Fragments::new(),
            options,
            table,
            kept: Conclusions::new(detail, all_verdicts),
        }
    }

    /// The frame's TCP segment, if it has one (counted in the decoding
    /// statistics either way).
    #[inline]
    pub fn decode<'a>(&mut self, frame: &Frame<'a>) -> Option<Segment<'a>> {
        link::decode_reassembling(frame, &mut self.stats, &mut self.fragments, self.options)
    }

    /// Routes a segment to its connection: what it meant, as far as the
    /// segments so far tell.
    #[inline]
    pub fn observe(&mut self, seg: &Segment<'_>) -> SegmentFacts {
        self.table.observe(seg)
    }

    /// Concludes the connections that left the flow table since the last
    /// call, in id order, handing each flow (its connection, and Zeek's
    /// model of it when the tracker follows Zeek) to `settled` with its
    /// verdict (a tracker that concludes nothing drops them).
    #[inline]
    pub fn conclude_retired(&mut self, settled: impl FnMut(&Flow, ConnVerdict)) {
        // Called after every segment, most of which retire nothing.
        if self.table.has_retired() {
            self.kept.conclude_all(self.table.drain_retired(), settled);
        }
    }

    /// The end of the capture: concludes every connection still held (as
    /// [`Tracker::conclude_retired`] does), and returns what was kept with
    /// the summary of the read that fed it (`path`, `format`, and the frame
    /// count and why reading stopped early, if it did).
    pub fn finish(
        self,
        settled: impl FnMut(&Flow, ConnVerdict),
        path: &Path,
        format: &'static str,
        read: (u64, Option<String>),
    ) -> Verdicts {
        let connections = self.table.connections_seen();
        let mut kept = self.kept;
        kept.conclude_all(self.table.finish(), settled);
        let capture = CaptureSummary::of_read(path, format, read, connections, self.stats);
        kept.into_verdicts(capture)
    }

    /// The tracker's conclusions, taken out to be drawn on another thread
    /// ([`Tracker::hand_over_unconcluded`]); the tracker keeps none.
    pub(crate) fn take_conclusions(&mut self) -> Conclusions {
        std::mem::replace(&mut self.kept, Conclusions::new(Detail::Brief, None))
    }

    /// The connections that left the flow table since the last call, in
    /// id order, not concluded: for the schedule on two threads, whose
    /// rows thread concludes them with the conclusions of
    /// [`Tracker::take_conclusions`] (the tracking thread is the longer
    /// of the two). `each` may give back for each the box of a connection
    /// done with, for a new one ([`FlowTable::exchange_retired`]).
    #[inline]
    pub(crate) fn hand_over_unconcluded(
        &mut self,
        each: impl FnMut(Box<Flow>) -> Option<Box<Flow>>,
    ) {
        // Most segments retire nothing: no iterator made and dropped.
        if self.table.has_retired() {
            self.table.exchange_retired(each);
        }
    }

    /// The end of the capture for [`Tracker::hand_over_unconcluded`]: every
    /// connection still held, in id order, and the summary of the read
    /// (its `sight` for [`Conclusions::into_verdicts`] to fill in).
    pub(crate) fn finish_unconcluded(
        self,
        each: impl FnMut(Box<Flow>),
        path: &Path,
        format: &'static str,
        read: (u64, Option<String>),
    ) -> CaptureSummary {
        let connections = self.table.connections_seen();
        self.table.finish().into_iter().for_each(each);
        CaptureSummary::of_read(path, format, read, connections, self.stats)
    }
}

/// What a pass that follows connections to their end keeps of each: its
/// outcome, and what `detail` asks for.
pub(crate) struct Conclusions {
    detail: Detail,
    /// Keep every verdict whatever `detail` says: pass 2 needs them.
    /// `None`: conclude nothing.
    all_verdicts: Option<bool>,
    outcomes: OutcomeCounts,
    sight: SightCounts,
    verdicts: Vec<ConnVerdict>,
    peers: Vec<Peers>,
    reports: Vec<ConnectionReport>,
}

impl Conclusions {
    fn new(detail: Detail, all_verdicts: Option<bool>) -> Self {
        Conclusions {
            detail,
            all_verdicts,
            outcomes: OutcomeCounts::default(),
            sight: SightCounts::default(),
            verdicts: Vec::new(),
            peers: Vec::new(),
            reports: Vec::new(),
        }
    }

    /// Concludes connections that left the flow table, in id order.
    fn conclude_all(
        &mut self,
        flows: impl IntoIterator<Item = Box<Flow>>,
        mut settled: impl FnMut(&Flow, ConnVerdict),
    ) {
        if self.all_verdicts.is_none() {
            return;
        }
        for flow in flows {
            let verdict = self.conclude(&flow);
            settled(&flow, verdict);
        }
    }

    /// Records a connection that left the flow table; returns its verdict.
    pub(crate) fn conclude(&mut self, flow: &Flow) -> ConnVerdict {
        self.conclude_as(flow, flow.conn.verdict())
    }

    /// [`Conclusions::conclude`] with the connection's `verdict` worked
    /// out already (by the tracking thread at the end of a capture).
    pub(crate) fn conclude_as(&mut self, flow: &Flow, verdict: ConnVerdict) -> ConnVerdict {
        let conn = &flow.conn;
        self.outcomes.add(verdict.outcome);
        self.sight.add(&verdict);
        let slot = conn.id as usize;
        let brief = self.detail == Detail::Brief;
        let first = slot < BRIEF_CONNECTIONS;
        if brief && !first && self.all_verdicts != Some(true) {
            return verdict;
        }
        if self.verdicts.len() <= slot {
            self.verdicts.resize(slot + 1, ConnVerdict::default());
        }
        self.verdicts[slot] = verdict;
        if (brief && first) || self.detail >= Detail::Peers {
            let client = verdict.client.index;
            let both = Peers::new(conn.endpoints[client].addr, conn.endpoints[1 - client].addr);
            if self.peers.len() <= slot {
                self.peers.resize(slot + 1, both);
            }
            self.peers[slot] = both;
        }
        if self.detail == Detail::Reports {
            let zeek = flow.zeek.as_deref();
            self.reports
                .push(ConnectionReport::new(conn, zeek, &verdict));
        }
        verdict
    }

    /// What was kept, with the summary of the read (whose `sight` is
    /// filled in from the connections concluded).
    pub(crate) fn into_verdicts(mut self, mut capture: CaptureSummary) -> Verdicts {
        capture.sight = self.sight;
        self.reports.sort_unstable_by_key(|r| r.id);
        Verdicts {
            capture,
            outcomes: self.outcomes,
            verdicts: self.verdicts,
            peers: self.peers,
            reports: self.reports,
        }
    }
}

#[cfg(test)]
mod teardown;
