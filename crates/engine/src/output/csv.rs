//! The CSV sidecar, as `docs/sidecar.md` specifies it: one row per
//! segment, streamed in page-aligned blocks. The fields every row has go
//! through the fast path ([`super::csv_fast`]); the rest (events, calls,
//! sentence, severity, and the rare IPv6 address or pre-1970 time) are
//! formatted with `Display` and quoted per RFC 4180 when they need it.

use std::fmt::{self, Write as _};
use std::hash::BuildHasher;
use std::io::{self, Write};

use rustc_hash::FxBuildHasher;

use super::csv_fast::Block;
use crate::output::reports::ConnectionReport;
use crate::output::rows::{Row, Summary};
use crate::pipeline::sinks::{FormattedRows, RowFormatter, RowSink};
use crate::pipeline::summary::CaptureSummary;
use crate::tracking::inference::CallSteps;

/// The sidecar's header, exactly.
pub const CSV_HEADER: [&str; 16] = [
    "frame",
    "ts",
    "conn",
    "src",
    "dst",
    "flags",
    "seq",
    "ack",
    "len",
    "sender_state",
    "receiver_state",
    "events",
    "calls",
    "summary",
    "severity",
    "related",
];

/// Writes one CSV row per segment.
///
/// Rows are formatted straight into a block of bytes (the fields every
/// row has through [`super::csv_fast`], everything else through its
/// `Display`) and handed to `out` in blocks: this runs once per segment
/// and dominates a run.
pub struct CsvSink<W: Write> {
    out: W,
    /// Formatted rows not yet handed to `out`.
    block: Box<Block>,
    /// The events, calls, sentence and severity fields of rows with
    /// events, by what they are made from: a capture has few distinct
    /// combinations, so each is formatted about once.
    tails: Vec<Option<(Tail, Vec<u8>)>>,
}

/// What a row's events, calls, sentence and severity fields are made of.
type Tail = (Option<CallSteps>, Summary);

/// Slots of [`CsvSink::tails`] (a power of two).
const TAIL_CACHE: usize = 256;

/// Rows are handed to the output in whole blocks of this size (the rest
/// waits for the next block): page-aligned writes of whole pages cost the
/// kernel (ext4 here) less per byte than writes that split pages (the
/// write stage of `tcpshut-bench stages` 0.12–0.20 s → 0.08–0.10 s).
const CSV_BLOCK: usize = 256 * 1024;

impl<W: Write> CsvSink<W> {
    pub fn new(out: W) -> Self {
        CsvSink {
            out,
            block: Box::new(Block::new(CSV_BLOCK + 1024)),
            tails: vec![None; TAIL_CACHE],
        }
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_block()?;
        Ok(self.out)
    }

    fn flush_block(&mut self) -> io::Result<()> {
        self.out.write_all(self.block.as_bytes())?;
        self.block.clear();
        Ok(())
    }

    /// The events, calls, sentence and severity fields of a row with
    /// events, from [`CsvSink::tails`] or formatted and kept there.
    fn tail(&mut self, row: &Row) {
        // The slot from the gist (hashing the whole summary cost ~170
        // instructions a row); the whole is compared.
        let slot = FxBuildHasher.hash_one((row.calls, row.summary.gist())) as usize % TAIL_CACHE;
        let tail: Tail = (row.calls, row.summary);
        if let Some((made_from, bytes)) = &self.tails[slot] {
            if *made_from == tail {
                self.block.put(bytes);
                return;
            }
        }
        let start = self.block.len();
        self.display(row.events);
        match &row.calls {
            Some(calls) => self.display(calls),
            None => self.text(""),
        }
        self.display(row.summary);
        self.text(row.severity.code());
        self.tails[slot] = Some((tail, self.block.as_bytes()[start..].to_vec()));
    }

    fn text(&mut self, value: &str) {
        self.block.put(value.as_bytes());
        self.block.comma();
    }

    /// Formats `value` as one field, quoted per RFC 4180 when it contains
    /// a comma, a quote or a line break.
    fn display(&mut self, value: impl fmt::Display) {
        let start = self.block.len();
        write!(Bytes(&mut self.block), "{value}").expect("writing to a block cannot fail");
        let field = &self.block.as_bytes()[start..];
        if field
            .iter()
            .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
        {
            let mut quoted = vec![b'"'];
            for &b in field {
                if b == b'"' {
                    quoted.push(b'"');
                }
                quoted.push(b);
            }
            quoted.push(b'"');
            self.block.truncate(start);
            self.block.put(&quoted);
        }
        self.block.comma();
    }

    /// Replaces the last field's comma with the end of the record.
    fn end_record(&mut self) -> io::Result<()> {
        self.block.close_record();
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.block.len() >= CSV_BLOCK {
            self.flush_whole_blocks()?;
        }
        Ok(())
    }

    /// Formats `row` into the block (not handed to the output yet).
    fn put_row(&mut self, row: &Row) {
        // The fields every row has, bounded in length, in place; IPv6
        // addresses and negative times are rare enough for `fmt`.
        let mut line = self.block.line();
        line.frame(row.frame);
        if !line.timestamp(row.ts) {
            line.done();
            self.display(row.ts);
            line = self.block.line();
        }
        if !line.conn_and_addrs(row.conn, &row.src, &row.dst) {
            line.number(row.conn.into());
            for addr in [&row.src, &row.dst] {
                if !line.addr(addr) {
                    line.done();
                    self.display(addr);
                    line = self.block.line();
                }
            }
        }
        line.flags(row.flags);
        line.number(row.seq.into());
        line.number(row.ack.into());
        line.number(row.len.into());
        line.states(row.sender_state, row.receiver_state);
        // Most rows have no events, hence no calls, sentence or severity,
        // and no related frame: their end is one copy.
        if row.events.is_empty() && row.related.is_none() {
            line.quiet_end();
            line.done();
            return;
        }
        if row.events.is_empty() {
            line.empty_fields::<4>();
        } else {
            line.done();
            self.tail(row);
            line = self.block.line();
        }
        match row.related {
            Some(frame) => line.number(frame),
            None => line.empty_fields::<1>(),
        }
        line.done();
        self.block.close_record();
    }

    /// Hands whole blocks to the output and keeps the rest, so that every
    /// write covers whole pages of the file at page-aligned offsets.
    fn flush_whole_blocks(&mut self) -> io::Result<()> {
        let whole = self.block.len() - self.block.len() % CSV_BLOCK;
        self.out.write_all(&self.block.as_bytes()[..whole])?;
        self.block.drop_front(whole);
        Ok(())
    }
}

/// `fmt::Write` into the block.
struct Bytes<'a>(&'a mut Block);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.put(s.as_bytes());
        Ok(())
    }
}

impl<W: Write> RowSink for CsvSink<W> {
    /// Rows are all the CSV holds: one pass will do.
    fn needs_first_pass(&self) -> bool {
        false
    }

    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        for name in CSV_HEADER {
            self.text(name);
        }
        self.end_record()
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.put_row(row);
        self.flush_if_full()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.flush_block()?;
        self.out.flush()
    }

    /// A row's line depends on the row alone (the caches only save work).
    fn row_formatter(&self) -> Option<Box<dyn RowFormatter>> {
        Some(Box::new(CsvRows(CsvSink::new(io::sink()))))
    }

    fn formatted_rows(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.block.put(bytes);
        self.flush_if_full()
    }
}

/// CSV lines made apart from the sink ([`RowSink::row_formatter`]), by
/// the same code.
struct CsvRows(CsvSink<io::Sink>);

impl RowFormatter for CsvRows {
    /// Into the block, as [`CsvSink::row`] (never written out: the block
    /// is handed over whole).
    fn format(&mut self, row: &Row) {
        self.0.put_row(row);
    }

    fn take(&mut self, room: FormattedRows) -> FormattedRows {
        let mut room = room.into_room();
        if room.len() < CSV_BLOCK {
            // A chunk's rows fit in a block as the sink's own do.
            room = vec![0; CSV_BLOCK + 1024];
        }
        let (bytes, len) = self.0.block.swap(room);
        FormattedRows::new(bytes, len)
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;

    /// Records the length of every write.
    #[derive(Default)]
    struct Writes(Vec<usize>, Vec<u8>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.len());
            self.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_write_but_the_last_is_whole_blocks() {
        let mut writes = Writes::default();
        let mut sink = CsvSink::new(&mut writes);
        let mut expected = Vec::new();
        for i in 0..200_000u64 {
            sink.text(&format!("row{i}"));
            sink.end_record().unwrap();
            expected.extend_from_slice(format!("row{i}\n").as_bytes());
        }
        sink.finish().unwrap();
        let (last, whole) = writes.0.split_last().unwrap();
        assert!(whole.len() > 1, "{:?}", writes.0);
        assert!(
            whole.iter().all(|len| len % CSV_BLOCK == 0),
            "{:?}",
            writes.0
        );
        assert!(*last < CSV_BLOCK);
        assert_eq!(writes.1, expected);
    }
}
