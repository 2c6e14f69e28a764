//! tcpshut-parquet: tcpshut's results as two typed Parquet tables per
//! capture, for DuckDB, Spark, Athena or ClickHouse:
//!
//! - `segments`: the sidecar's columns, one row per TCP segment, with
//!   `ts` as a TIMESTAMP, `events` and `calls` as lists, numbers as
//!   integers, and the capture's path;
//! - `connections`: one row per connection, as the JSON document's
//!   `connections` (verdict, calls, final states, Zeek's view, Community
//!   ID, tunnel, the origin of each side's RSTs, idle resets), with the
//!   capture's path.
//!
//! Every capture's files share one schema, so the files of a directory
//! run read as one dataset (`read_parquet('dir/**/*.segments.parquet')`).
//! The heavy Arrow/Parquet dependency lives in this crate only.
//!
//! Memory stays flat: one pass over the capture, as for the CSV
//! sidecar; rows are gathered into Arrow column builders and written out
//! as a row group every [`ROWS_PER_GROUP`] segments (connections: every
//! [`CONNECTIONS_PER_GROUP`] reports, as connections leave the engine),
//! then the encoded bytes go to the output
//! (Arrow's writer wants a `Send` output; the sink hands it a shared
//! buffer and drains it after each row group).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder, UInt16Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescPtr, ColumnPath};

use tcpshut_engine::ConnectionReport;
use tcpshut_engine::Timestamp;
use tcpshut_engine::{CallSet, Event, TcpState};
use tcpshut_engine::{CaptureSummary, RowSink, Schedule};
use tcpshut_engine::{Row, Summary};

mod dictionary;
use dictionary::DictionaryColumn;

/// Rows per row group of the segments table: large enough for good
/// compression, small enough (a few MB of builders) to keep memory flat.
pub const ROWS_PER_GROUP: usize = 1 << 16;

/// Timestamps are microseconds since the epoch, in UTC: the unit Spark,
/// DuckDB and Athena all read as TIMESTAMP. Nanosecond captures keep
/// their exact time in the `ts_ns` column.
fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn micros(ts: Timestamp) -> i64 {
    ts.secs
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos / 1000))
}

fn nanos(ts: Timestamp) -> i64 {
    ts.secs
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.nanos))
}

fn list_of_strings() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The segments table's schema.
pub fn segments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("capture", DataType::Utf8, false),
        Field::new("frame", DataType::Int64, false),
        Field::new("ts", timestamp_type(), false),
        Field::new("ts_ns", DataType::Int64, false),
        Field::new("conn", DataType::Int64, false),
        Field::new("src", DataType::Utf8, false),
        Field::new("dst", DataType::Utf8, false),
        Field::new("flags", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("ack", DataType::Int64, false),
        Field::new("len", DataType::Int64, false),
        Field::new("sender_state", DataType::Utf8, false),
        Field::new("receiver_state", DataType::Utf8, false),
        Field::new("events", list_of_strings(), false),
        Field::new("calls", list_of_strings(), true),
        Field::new("summary", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("related", DataType::Int64, true),
    ]))
}

/// The connections table's schema.
pub fn connections_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let mut fields = vec![
        text("capture"),
        Field::new("id", DataType::Int64, false),
        text("client"),
        text("server"),
        text("client_ip"),
        Field::new("client_port", DataType::UInt16, false),
        text("server_ip"),
        Field::new("server_port", DataType::UInt16, false),
        text("community_id"),
        Field::new("first_frame", DataType::Int64, false),
        Field::new("last_frame", DataType::Int64, false),
        Field::new("first_ts", timestamp_type(), false),
        Field::new("last_ts", timestamp_type(), false),
        Field::new("rst_ts", timestamp_type(), true),
        text("handshake"),
        text("outcome"),
        text("closer"),
        Field::new("notes", list_of_strings(), false),
        text("zeek_conn_state"),
        text("zeek_history"),
    ];
    for side in SIDES {
        fields.extend([
            text(&format!("{side}_role")),
            text(&format!("{side}_closed_by")),
            text(&format!("{side}_calls")),
            text(&format!("{side}_state")),
            Field::new(format!("{side}_state_since"), timestamp_type(), false),
            Field::new(format!("{side}_fin_ts"), timestamp_type(), true),
            Field::new(format!("{side}_fin_retransmits"), DataType::Int64, false),
            Field::new(format!("{side}_data_after_fin"), DataType::Boolean, false),
        ]);
    }
    fields.extend([
        Field::new("tunnel", DataType::Utf8, true),
        Field::new("rsts", DataType::Int64, false),
        Field::new("idle_reset_secs", DataType::Float64, true),
    ]);
    for side in SIDES {
        fields.extend([
            Field::new(format!("{side}_rst_forged"), DataType::Boolean, true),
            Field::new(format!("{side}_rst_unchecked"), DataType::Boolean, true),
            Field::new(format!("{side}_rst_evidence"), list_of_strings(), true),
            Field::new(format!("{side}_rst_evidence_text"), list_of_strings(), true),
        ]);
    }
    Arc::new(Schema::new(fields))
}

/// The two endpoints' column prefixes, in the report's order.
const SIDES: [&str; 2] = ["client", "server"];

/// How a table's columns are encoded, beyond the defaults (dictionary
/// pages, Snappy).
struct ColumnPlan<'a> {
    /// Counters that grow row after row: delta encoding, no dictionary.
    delta: &'a [&'a str],
    /// Numbers that rarely repeat (sequence and acknowledgment numbers): a
    /// dictionary would hold as many values as the rows, so plain.
    plain: &'a [&'a str],
    /// Texts and times that rarely repeat (a connection's client address
    /// and port, its Community ID, its sides' times): no dictionary,
    /// which would hold as many values as the rows (hashing each for
    /// nothing), so plain, and smaller after Snappy.
    unique: &'a [&'a str],
    /// The only columns with min/max statistics (`None`: all of them).
    /// The segments table keeps them for the capture, the frames, times
    /// and connection ids, which a reader skips row groups and files by:
    /// the texts' min/max prune nothing there (every row group holds
    /// most states, flags and sentences), and comparing every value was a
    /// tenth of writing the table; nor do those of `seq`, `ack` and `len`
    /// (every row group spans all of their range), which were 1.4 % of
    /// it. The connections table keeps them for its numbers, times and
    /// capture likewise (its texts' were a tenth of writing it).
    statistics: Option<&'a [&'a str]>,
}

/// Writer settings: dictionary pages for the repetitive texts (states,
/// flags, sentences, addresses), delta encoding for the counters, plain
/// for the numbers that do not repeat, statistics where they prune, and
/// Snappy over all.
fn properties(plan: &ColumnPlan<'_>) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROWS_PER_GROUP)
        .set_created_by(format!("tcpshut {}", env!("CARGO_PKG_VERSION")));
    for column in plan.delta {
        let path = ColumnPath::from(*column);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
    }
    for column in plan.unique {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    for column in plan.plain {
        let path = ColumnPath::from(*column);
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::PLAIN);
    }
    if let Some(columns) = plan.statistics {
        props = props.set_statistics_enabled(EnabledStatistics::None);
        for column in columns {
            props = props
                .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::Page);
        }
    }
    props.build()
}

/// The output Arrow's writer writes to: a buffer the sink drains into
/// its real output after each row group.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("parquet buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    /// Moves what was written so far to `out`.
    fn drain_into(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut bytes = self
            .0
            .lock()
            .map_err(|_| io::Error::other("parquet buffer poisoned"))?;
        out.write_all(&bytes)?;
        bytes.clear();
        Ok(())
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e)
}

fn arrow_error(e: arrow_schema::ArrowError) -> io::Error {
    io::Error::other(e)
}

/// One Parquet file written from record batches into a [`SharedBuf`].
struct TableWriter {
    writer: Option<ArrowWriter<SharedBuf>>,
}

impl TableWriter {
    fn new(buf: SharedBuf, schema: SchemaRef, plan: &ColumnPlan<'_>) -> io::Result<Self> {
        let writer =
            ArrowWriter::try_new(buf, schema, Some(properties(plan))).map_err(parquet_error)?;
        Ok(TableWriter {
            writer: Some(writer),
        })
    }

    /// Writes `batch` as (part of) a row group and ends the group.
    fn write_group(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("parquet table already closed"))?;
        writer.write(batch).map_err(parquet_error)?;
        writer.flush().map_err(parquet_error)
    }

    /// Writes the footer.
    fn close(&mut self) -> io::Result<()> {
        match self.writer.take() {
            Some(writer) => writer.close().map(drop).map_err(parquet_error),
            None => Ok(()),
        }
    }
}

/// Column builders for one row group of segments, for the columns Arrow's
/// writer encodes. The numbers that are never null go into plain
/// vectors, which become Arrow arrays without a copy: an Arrow builder's
/// append (which also counts validity) cost four times as many
/// instructions.
struct SegmentBuilders {
    frame: Vec<i64>,
    ts: Vec<i64>,
    ts_ns: Vec<i64>,
    conn: Vec<i64>,
    seq: Vec<i64>,
    ack: Vec<i64>,
    related: Int64Builder,
}

/// The text columns encoded here ([`dictionary`]), and `len`, each
/// value's dictionary index found from a key instead of by hashing it.
struct SegmentTexts {
    src: DictionaryColumn,
    dst: DictionaryColumn,
    /// Keyed by the flags' bits.
    flags: DictionaryColumn,
    /// A number, keyed by itself.
    len: DictionaryColumn,
    /// Keyed by the state's place in [`TcpState::ALL`].
    sender_state: DictionaryColumn,
    receiver_state: DictionaryColumn,
    /// Keyed by the event's number.
    events: DictionaryColumn,
    /// Keyed by the step's place in [`SegmentColumns::calls`].
    calls: DictionaryColumn,
    /// Keyed by the sentence's place in [`SegmentColumns::summaries`].
    summary: DictionaryColumn,
    /// Keyed by the severity's number.
    severity: DictionaryColumn,
}

/// Definition levels of the list columns (`events` is a list that is
/// never null, `calls` one that may be; their items may be null in the
/// schema but never are).
const EVENTS_EMPTY: u8 = 0;
const EVENTS_ITEM: u8 = 2;
const CALLS_NULL: u8 = 0;
const CALLS_EMPTY: u8 = 1;
const CALLS_ITEM: u8 = 3;

impl SegmentTexts {
    fn new(rows: usize) -> Self {
        let column = |keys: usize| DictionaryColumn::new(keys, rows);
        SegmentTexts {
            src: column(0),
            dst: column(0),
            flags: column(256),
            len: column(0),
            sender_state: column(TcpState::ALL.len()),
            receiver_state: column(TcpState::ALL.len()),
            events: column(Event::ALL.len()),
            calls: column(KNOWN_TEXTS),
            summary: column(KNOWN_TEXTS),
            severity: column(8),
        }
    }

    /// The column encoded here of the schema's field `name`, if it is one.
    fn column(&mut self, name: &str) -> Option<&mut DictionaryColumn> {
        Some(match name {
            "src" => &mut self.src,
            "dst" => &mut self.dst,
            "flags" => &mut self.flags,
            "len" => &mut self.len,
            "sender_state" => &mut self.sender_state,
            "receiver_state" => &mut self.receiver_state,
            "events" => &mut self.events,
            "calls" => &mut self.calls,
            "summary" => &mut self.summary,
            "severity" => &mut self.severity,
            _ => return None,
        })
    }
}

/// The rows of the row group being gathered, and what they reuse.
struct SegmentColumns {
    builders: SegmentBuilders,
    texts: Box<SegmentTexts>,
    /// Rows each row group's builders are made for.
    capacity: usize,
    rows: usize,
    /// Row groups finished so far: the addresses' dictionary indices are
    /// those of one row group.
    group: u32,
    /// Reused for every text formatted from a `Display`.
    scratch: String,
    /// The addresses of the connections seen lately, as text.
    addresses: AddressTexts,
    /// The sentences written so far (a few dozen kinds in a capture).
    summaries: KnownTexts<Summary>,
    /// The call steps written so far (a dozen kinds).
    calls: KnownTexts<CallSet>,
}

/// Slots of [`AddressTexts`] (a power of two): more than the connections
/// of a capture that usually have rows in flight at once.
const ADDRESS_SLOTS: usize = 1 << 12;

/// Not yet in the row group's dictionary.
const NO_INDEX: u32 = u32::MAX;

/// The two addresses of a connection as text, formatted once per
/// connection, and their indices in the row group's `src` and `dst`
/// dictionaries: its rows repeat them, and formatting (or hashing) an
/// address for every row was a tenth of the segments table's cost.
/// Direct-mapped by connection id; a slot taken by another connection
/// is formatted again.
struct AddressTexts {
    slots: Vec<Option<ConnAddresses>>,
    /// The row group the indices below are of.
    group: u32,
    /// The indices of the addresses in this row group's `src` and `dst`
    /// dictionaries, by address: looked up once per connection and row
    /// group, so that an address many connections share (a server's) is
    /// in each dictionary once.
    src: HashMap<SocketAddr, u32>,
    dst: HashMap<SocketAddr, u32>,
}

struct ConnAddresses {
    conn: u32,
    addrs: [SocketAddr; 2],
    texts: [Box<str>; 2],
    /// The row group `src` and `dst` hold indices of.
    group: u32,
    /// Each address's index in the row group's `src` dictionary.
    src: [u32; 2],
    /// Each address's index in the row group's `dst` dictionary.
    dst: [u32; 2],
}

impl AddressTexts {
    fn new() -> Self {
        AddressTexts {
            slots: (0..ADDRESS_SLOTS).map(|_| None).collect(),
            group: 0,
            src: HashMap::new(),
            dst: HashMap::new(),
        }
    }

    /// Adds `src` and `dst` of a row of connection `conn` in row group
    /// `group` to their columns.
    fn push(
        &mut self,
        conn: u32,
        [src, dst]: [SocketAddr; 2],
        group: u32,
        texts: &mut SegmentTexts,
    ) {
        if self.group != group {
            self.group = group;
            self.src.clear();
            self.dst.clear();
        }
        let slot = &mut self.slots[conn as usize % ADDRESS_SLOTS];
        let fresh = match slot {
            Some(known) => {
                known.conn != conn || !known.addrs.contains(&src) || !known.addrs.contains(&dst)
            }
            None => true,
        };
        if fresh {
            *slot = Some(ConnAddresses {
                conn,
                addrs: [src, dst],
                texts: [src.to_string().into(), dst.to_string().into()],
                group,
                src: [NO_INDEX; 2],
                dst: [NO_INDEX; 2],
            });
        }
        let known = slot.as_mut().expect("filled above");
        if known.group != group {
            known.group = group;
            known.src = [NO_INDEX; 2];
            known.dst = [NO_INDEX; 2];
        }
        let (s, d) = (
            usize::from(known.addrs[0] != src),
            usize::from(known.addrs[0] != dst),
        );
        if known.src[s] == NO_INDEX {
            known.src[s] = *self
                .src
                .entry(src)
                .or_insert_with(|| texts.src.add(&known.texts[s]));
        }
        if known.dst[d] == NO_INDEX {
            known.dst[d] = *self
                .dst
                .entry(dst)
                .or_insert_with(|| texts.dst.add(&known.texts[d]));
        }
        texts.src.push(known.src[s]);
        texts.dst.push(known.dst[d]);
    }
}

/// Most values of a kind a capture shows (sentences, call steps) kept as
/// text, each formatted once; a value's key is its place here.
/// Bounded: past [`KNOWN_TEXTS`] kinds the rest have no key.
struct KnownTexts<T> {
    known: Vec<(T, Box<str>)>,
    /// Where the last one found is: rows in a row mostly share it.
    last: usize,
}

/// Values [`KnownTexts`] keeps.
const KNOWN_TEXTS: usize = 64;

impl<T: PartialEq + Copy + std::fmt::Display> KnownTexts<T> {
    fn new() -> Self {
        KnownTexts {
            known: Vec::new(),
            last: 0,
        }
    }

    /// `value`'s key and its text, kept; or, with no room left, `None`
    /// and the text formatted into `scratch`.
    fn of<'a>(&'a mut self, value: &T, scratch: &'a mut String) -> (Option<usize>, &'a str) {
        use std::fmt::Write as _;
        let found = match self.known.get(self.last) {
            Some((kind, _)) if kind == value => Some(self.last),
            _ => self.known.iter().position(|(kind, _)| kind == value),
        };
        if let Some(at) = found {
            self.last = at;
            return (Some(at), &self.known[at].1);
        }
        scratch.clear();
        write!(scratch, "{value}").expect("writing to a String cannot fail");
        if self.known.len() < KNOWN_TEXTS {
            self.known.push((*value, scratch.as_str().into()));
            self.last = self.known.len() - 1;
            return (Some(self.last), scratch);
        }
        (None, scratch)
    }

    /// The dictionary index of `value` in `column`, whose keys are this
    /// set's.
    fn index(&mut self, value: &T, scratch: &mut String, column: &mut DictionaryColumn) -> u32 {
        let key = match self.known.get(self.last) {
            Some((kind, _)) if kind == value => Some(self.last),
            _ => None,
        };
        if let Some(index) = key.and_then(|key| column.known(key)) {
            return index;
        }
        match self.of(value, scratch) {
            (Some(key), text) => column.index(key, text),
            (None, text) => column.index_of_text(text),
        }
    }
}

impl SegmentBuilders {
    /// Builders with room for `rows` rows, so that they do not grow (and
    /// copy what they hold) as a row group fills: the growing was a
    /// twentieth of writing the table.
    fn with_capacity(rows: usize) -> Self {
        let ints = || Vec::with_capacity(rows);
        SegmentBuilders {
            frame: ints(),
            ts: ints(),
            ts_ns: ints(),
            conn: ints(),
            seq: ints(),
            ack: ints(),
            related: Int64Builder::with_capacity(rows),
        }
    }

    /// The columns Arrow's writer encodes, in the schema's order, for
    /// `rows` rows of `capture`.
    fn finish(mut self, capture: &str, rows: usize) -> Vec<ArrayRef> {
        vec![
            capture_column(capture, rows),
            Arc::new(Int64Array::from(self.frame)),
            Arc::new(TimestampMicrosecondArray::from(self.ts).with_timezone("UTC")),
            Arc::new(Int64Array::from(self.ts_ns)),
            Arc::new(Int64Array::from(self.conn)),
            Arc::new(Int64Array::from(self.seq)),
            Arc::new(Int64Array::from(self.ack)),
            Arc::new(self.related.finish()),
        ]
    }
}

/// `capture` for each of `rows` rows, as a dictionary array of one value:
/// the column is the same for every row, so no row copies it (a
/// `StringBuilder` append a row, ~50 instructions). Arrow's writer takes
/// a dictionary array for a text field and encodes its values as those
/// of a text array, to the same bytes.
fn capture_column(capture: &str, rows: usize) -> ArrayRef {
    let keys = Int32Array::from(vec![0; rows]);
    let values: ArrayRef = Arc::new(StringArray::from(vec![capture]));
    Arc::new(DictionaryArray::<Int32Type>::new(keys, values))
}

impl SegmentColumns {
    /// Columns for row groups of `capacity` rows.
    fn new(capacity: usize) -> Self {
        SegmentColumns {
            builders: SegmentBuilders::with_capacity(capacity),
            texts: Box::new(SegmentTexts::new(capacity)),
            capacity,
            rows: 0,
            group: 0,
            scratch: String::new(),
            addresses: AddressTexts::new(),
            summaries: KnownTexts::new(),
            calls: KnownTexts::new(),
        }
    }

    fn push(&mut self, row: &Row) {
        let texts = &mut self.texts;
        self.builders.frame.push(row.frame as i64);
        self.builders.ts.push(micros(row.ts));
        self.builders.ts_ns.push(nanos(row.ts));
        self.builders.conn.push(i64::from(row.conn));
        self.addresses
            .push(row.conn, [row.src, row.dst], self.group, texts);
        let flags = usize::from(row.flags.0);
        let index = match texts.flags.known(flags) {
            Some(index) => index,
            None => texts.flags.insert(flags, row.flags.letters().as_str()),
        };
        texts.flags.push(index);
        self.builders.seq.push(i64::from(row.seq));
        self.builders.ack.push(i64::from(row.ack));
        let len = texts.len.number_index(row.len);
        texts.len.push(len);
        for (state, column) in [
            (row.sender_state, &mut texts.sender_state),
            (row.receiver_state, &mut texts.receiver_state),
        ] {
            let index = column.index(state as usize, state.name());
            column.push(index);
        }
        let mut first = true;
        for event in row.events.iter() {
            let index = texts.events.index(event as usize, event.code());
            texts.events.push_item(index, first, EVENTS_ITEM);
            first = false;
        }
        if first {
            texts.events.push_no_items(EVENTS_EMPTY);
        }
        match &row.calls {
            Some(calls) if !calls.steps().is_empty() => {
                for (i, step) in calls.steps().iter().enumerate() {
                    let index = self.calls.index(step, &mut self.scratch, &mut texts.calls);
                    texts.calls.push_item(index, i == 0, CALLS_ITEM);
                }
            }
            Some(_) => texts.calls.push_no_items(CALLS_EMPTY),
            None => texts.calls.push_no_items(CALLS_NULL),
        }
        let index = self
            .summaries
            .index(&row.summary, &mut self.scratch, &mut texts.summary);
        texts.summary.push(index);
        let severity = texts
            .severity
            .index(row.severity as usize, row.severity.code());
        texts.severity.push(severity);
        self.builders
            .related
            .append_option(row.related.map(|f| f as i64));
        self.rows += 1;
    }

    /// The rows gathered so far, as a row group for [`SegmentsWriter`];
    /// the columns start again, the texts' in `spare` (emptied) if given.
    fn take_group(&mut self, capture: &str, spare: Option<Box<SegmentTexts>>) -> SegmentGroup {
        let full = std::mem::replace(
            &mut self.builders,
            SegmentBuilders::with_capacity(self.capacity),
        );
        let texts = std::mem::replace(
            &mut self.texts,
            spare.unwrap_or_else(|| Box::new(SegmentTexts::new(self.capacity))),
        );
        let rows = std::mem::take(&mut self.rows);
        self.group = self.group.wrapping_add(1);
        SegmentGroup {
            arrays: full.finish(capture, rows),
            texts,
        }
    }
}

/// A row group of segments on its way to the encoding thread: the
/// columns Arrow's writer encodes, in the schema's order, and the texts.
struct SegmentGroup {
    arrays: Vec<ArrayRef>,
    texts: Box<SegmentTexts>,
}

/// The segments table's file: Arrow's writer encodes the numbers but
/// `len`, and the capture, [`dictionary`] the other texts and `len`, column by column into each
/// row group (Arrow's lower-level API, `ArrowRowGroupWriterFactory`,
/// with the file and settings `ArrowWriter` would make).
struct SegmentsWriter {
    file: Option<SerializedFileWriter<SharedBuf>>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    descriptors: Vec<ColumnDescPtr>,
    groups: usize,
}

impl SegmentsWriter {
    fn new(buf: SharedBuf, plan: &ColumnPlan<'_>) -> io::Result<Self> {
        let schema = segments_schema();
        let (file, columns) = ArrowWriter::try_new(buf, schema.clone(), Some(properties(plan)))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(parquet_error)?;
        let descriptors = file.schema_descr().columns().to_vec();
        Ok(SegmentsWriter {
            file: Some(file),
            columns,
            schema,
            descriptors,
            groups: 0,
        })
    }

    /// Writes one row group (its texts are left empty, for the next).
    fn write_group(&mut self, group: &mut SegmentGroup) -> io::Result<()> {
        let texts = &mut group.texts;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("parquet table already closed"))?;
        let writers = self
            .columns
            .create_column_writers(self.groups)
            .map_err(parquet_error)?;
        self.groups += 1;
        let mut arrays = std::mem::take(&mut group.arrays).into_iter();
        let mut row_group = file.next_row_group().map_err(parquet_error)?;
        // One leaf column per field: no field is a struct.
        for ((field, mut writer), descriptor) in self
            .schema
            .fields()
            .iter()
            .zip(writers)
            .zip(&self.descriptors)
        {
            match texts.column(field.name()) {
                Some(column) => column.write_to(descriptor.clone(), &mut row_group),
                None => {
                    let array = arrays
                        .next()
                        .ok_or_else(|| io::Error::other("a segments column is missing"))?;
                    compute_leaves(field, &array)
                        .and_then(|leaves| leaves.iter().try_for_each(|leaf| writer.write(leaf)))
                        .and_then(|()| writer.close())
                        .and_then(|chunk| chunk.append_to_row_group(&mut row_group))
                }
            }
            .map_err(parquet_error)?;
        }
        row_group.close().map_err(parquet_error).map(drop)
    }

    /// Writes the footer.
    fn close(&mut self) -> io::Result<()> {
        match self.file.take() {
            Some(file) => file.close().map(drop).map_err(parquet_error),
            None => Ok(()),
        }
    }
}

/// The address and the port of a socket address as the reports write it
/// (`192.0.2.1:80`, `[2001:db8::1]:80`: `SocketAddr`'s text, never with a
/// scope), cut apart instead of parsed: parsing both addresses twice a
/// connection was a sixth of the connections table's cost. What does not
/// look like one gives an empty address and port 0.
fn ip_and_port(text: &str) -> (&str, u16) {
    let cut = text.rsplit_once(':').and_then(|(ip, port)| {
        let ip = match ip.strip_prefix('[') {
            Some(v6) => v6.strip_suffix(']')?,
            None => ip,
        };
        Some((ip, port.parse().ok()?))
    });
    cut.unwrap_or(("", 0))
}

/// The connections of one capture as a batch.
fn connections_batch(capture: &str, reports: &[ConnectionReport]) -> io::Result<RecordBatch> {
    use std::fmt::Write as _;
    // Texts the reports hold, copied once into the column.
    let strings = |f: &dyn Fn(&ConnectionReport) -> &str| -> ArrayRef {
        let mut b = StringBuilder::new();
        for r in reports {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    // Texts made from the reports, each into one reused String.
    let shown = |f: &dyn Fn(&ConnectionReport, &mut String) -> std::fmt::Result| -> ArrayRef {
        let mut b = StringBuilder::new();
        let mut text = String::new();
        for r in reports {
            text.clear();
            f(r, &mut text).expect("writing to a String cannot fail");
            b.append_value(&text);
        }
        Arc::new(b.finish())
    };
    let ints = |f: &dyn Fn(&ConnectionReport) -> i64| -> ArrayRef {
        let mut b = Int64Builder::new();
        for r in reports {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let ports = |f: &dyn Fn(&ConnectionReport) -> u16| -> ArrayRef {
        let mut b = UInt16Builder::new();
        for r in reports {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&ConnectionReport) -> Option<Timestamp>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        for r in reports {
            b.append_option(f(r).map(micros));
        }
        Arc::new(b.finish())
    };
    let mut captures = StringBuilder::with_capacity(reports.len(), reports.len() * capture.len());
    for _ in reports {
        captures.append_value(capture);
    }
    let mut notes = ListBuilder::new(StringBuilder::new());
    for r in reports {
        for note in &r.notes {
            notes.values().append_value(note);
        }
        notes.append(true);
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(captures.finish()),
        ints(&|r| i64::from(r.id)),
        strings(&|r| &r.client),
        strings(&|r| &r.server),
        strings(&|r| ip_and_port(&r.client).0),
        ports(&|r| ip_and_port(&r.client).1),
        strings(&|r| ip_and_port(&r.server).0),
        ports(&|r| ip_and_port(&r.server).1),
        strings(&|r| &r.community_id),
        ints(&|r| r.first_frame as i64),
        ints(&|r| r.last_frame as i64),
        times(&|r| Some(r.first_ts)),
        times(&|r| Some(r.last_ts)),
        times(&|r| r.rst_ts),
        strings(&|r| r.handshake),
        shown(&|r, out| write!(out, "{}", r.outcome)),
        shown(&|r, out| write!(out, "{}", r.closer)),
        Arc::new(notes.finish()),
        strings(&|r| r.zeek_conn_state),
        strings(&|r| &r.zeek_history),
    ];
    for i in 0..SIDES.len() {
        let mut data_after_fin = BooleanBuilder::new();
        for r in reports {
            data_after_fin.append_value(r.endpoints[i].data_after_fin);
        }
        columns.extend([
            strings(&|r| r.endpoints[i].role.name()),
            strings(&|r| r.endpoints[i].closed_by.name()),
            shown(&|r, out| write!(out, "{}", r.endpoints[i].calls)),
            shown(&|r, out| write!(out, "{}", r.endpoints[i].final_state)),
            times(&|r| Some(r.endpoints[i].state_since)),
            times(&|r| r.endpoints[i].fin_ts),
            ints(&|r| i64::from(r.endpoints[i].fin_retransmits)),
            Arc::new(data_after_fin.finish()),
        ]);
    }
    let mut tunnel = StringBuilder::new();
    let mut idle_reset = Float64Builder::new();
    for r in reports {
        tunnel.append_option((!r.tunnel.is_none()).then(|| r.tunnel.to_string()));
        idle_reset.append_option(r.idle_reset_secs);
    }
    columns.extend([
        Arc::new(tunnel.finish()) as ArrayRef,
        ints(&|r| i64::from(r.rsts)),
        Arc::new(idle_reset.finish()),
    ]);
    for i in 0..SIDES.len() {
        let mut forged = BooleanBuilder::new();
        let mut unchecked = BooleanBuilder::new();
        let mut codes = ListBuilder::new(StringBuilder::new());
        let mut texts = ListBuilder::new(StringBuilder::new());
        for r in reports {
            let origin = r.endpoints[i].rst_origin.as_ref();
            forged.append_option(origin.map(|o| o.forged));
            unchecked.append_option(origin.map(|o| o.unchecked));
            match origin {
                Some(o) => {
                    for sign in &o.evidence {
                        codes.values().append_value(sign.code);
                        texts.values().append_value(&sign.text);
                    }
                    codes.append(true);
                    texts.append(true);
                }
                None => {
                    codes.append(false);
                    texts.append(false);
                }
            }
        }
        columns.extend([
            Arc::new(forged.finish()) as ArrayRef,
            Arc::new(unchecked.finish()),
            Arc::new(codes.finish()),
            Arc::new(texts.finish()),
        ]);
    }
    RecordBatch::try_new(connections_schema(), columns).map_err(arrow_error)
}

/// Connections per row group of the connections table: a row is some
/// 300 bytes of builders, so a group holds a few MB.
pub const CONNECTIONS_PER_GROUP: usize = 1 << 14;

/// What the sink's thread hands the encoding thread, in order.
enum Job {
    Segments(SegmentGroup),
    /// A row group of connections: the capture and its reports.
    Connections(String, Vec<ConnectionReport>),
}

/// Row groups in flight to the encoding thread besides the one it
/// encodes: one, so that the sink's thread gathers the next meanwhile
/// and memory holds at most three row groups of each table.
const GROUPS_IN_FLIGHT: usize = 1;

/// Where the row groups are encoded (Arrow's writer, the dictionary
/// pages, Snappy). On a thread of its own while the sink's thread gathers
/// the next rows, when annotate runs on two threads: on the benchmark's
/// capture encoding is about half of the Parquet rows thread's work, and
/// annotate's own two threads leave the second core partly idle. The
/// encoded bytes go into the two tables' [`SharedBuf`]s, which the sink's
/// thread drains into its outputs. On the sink's own thread when the run
/// has one thread (`--jobs 1`, a batch's workers, one core): a third
/// thread there would outnumber the threads `--jobs` asked for.
enum Encoder {
    Thread {
        jobs: Option<std::sync::mpsc::SyncSender<Job>>,
        /// Texts of row groups written, emptied, to gather the next ones in.
        spare: std::sync::mpsc::Receiver<Box<SegmentTexts>>,
        thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    },
    Inline {
        // Boxed: the writers are large, and the sink holds one or the other.
        tables: Option<Box<(SegmentsWriter, TableWriter)>>,
        spare: Option<Box<SegmentTexts>>,
    },
}

/// Encodes `job` into its table; a segments group's emptied texts back.
fn encode(
    job: Job,
    segments: &mut SegmentsWriter,
    connections: &mut TableWriter,
) -> io::Result<Option<Box<SegmentTexts>>> {
    match job {
        Job::Segments(mut group) => {
            segments.write_group(&mut group)?;
            Ok(Some(group.texts))
        }
        Job::Connections(capture, reports) => {
            connections.write_group(&connections_batch(&capture, &reports)?)?;
            Ok(None)
        }
    }
}

/// Writes both tables' footers.
fn close_tables(segments: &mut SegmentsWriter, connections: &mut TableWriter) -> io::Result<()> {
    segments.close()?;
    connections.close()
}

impl Encoder {
    fn start(
        mut segments: SegmentsWriter,
        mut connections: TableWriter,
        own_thread: bool,
    ) -> io::Result<Self> {
        use std::sync::mpsc;
        if !own_thread {
            return Ok(Encoder::Inline {
                tables: Some(Box::new((segments, connections))),
                spare: None,
            });
        }
        let (jobs, todo) = mpsc::sync_channel::<Job>(GROUPS_IN_FLIGHT);
        let (give_back, spare) = mpsc::channel();
        let thread = std::thread::Builder::new().name("parquet".into()).spawn(
            move || -> io::Result<()> {
                for job in todo {
                    if let Some(texts) = encode(job, &mut segments, &mut connections)? {
                        let _ = give_back.send(texts);
                    }
                }
                close_tables(&mut segments, &mut connections)
            },
        )?;
        Ok(Encoder::Thread {
            jobs: Some(jobs),
            spare,
            thread: Some(thread),
        })
    }

    /// Emptied texts of a written row group, to gather the next one in.
    fn spare(&mut self) -> Option<Box<SegmentTexts>> {
        match self {
            Encoder::Thread { spare, .. } => spare.try_recv().ok(),
            Encoder::Inline { spare, .. } => spare.take(),
        }
    }

    /// Hands `job` over (or encodes it, inline); if the thread stopped,
    /// its error.
    fn send(&mut self, job: Job) -> io::Result<()> {
        match self {
            Encoder::Thread { jobs, .. } => {
                let sent = match jobs {
                    Some(jobs) => jobs.send(job).is_ok(),
                    None => false,
                };
                if sent {
                    Ok(())
                } else {
                    self.finish()
                        .and(Err(io::Error::other("parquet encoding thread stopped")))
                }
            }
            Encoder::Inline { tables, spare } => {
                let (segments, connections) = &mut **tables
                    .as_mut()
                    .ok_or_else(|| io::Error::other("parquet tables already closed"))?;
                if let Some(texts) = encode(job, segments, connections)? {
                    *spare = Some(texts);
                }
                Ok(())
            }
        }
    }

    /// Waits for every row group and the footers to be written.
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Encoder::Thread { jobs, thread, .. } => {
                *jobs = None;
                match thread.take() {
                    Some(thread) => thread.join().unwrap_or_else(|_| {
                        Err(io::Error::other("parquet encoding thread panicked"))
                    }),
                    None => Ok(()),
                }
            }
            Encoder::Inline { tables, .. } => match tables.take() {
                Some(mut both) => {
                    let (segments, connections) = &mut *both;
                    close_tables(segments, connections)
                }
                None => Ok(()),
            },
        }
    }
}

/// Writes the two tables of one capture in one pass, as the CSV sidecar
/// is: the segments as rows leave the engine, the connections as their
/// reports do ([`RowSink::connection`], with Zeek's view), each a row
/// group at a time, encoded on a thread of its own ([`Encoder`]). Only
/// the rows of the current row groups are held. (When another sink
/// makes the run take two passes from the start, the reports come in
/// pass 1, before [`RowSink::begin`] names the capture: they wait for
/// it.)
pub struct ParquetSink<S: Write, C: Write> {
    segments: S,
    segments_buf: SharedBuf,
    connections: C,
    connections_buf: SharedBuf,
    encoder: Encoder,
    capture: String,
    columns: SegmentColumns,
    rows_per_group: usize,
    /// Reports waiting for the next row group of the connections table.
    reports: Vec<ConnectionReport>,
    /// [`RowSink::begin`] has named the capture: row groups may go.
    begun: bool,
    connections_per_group: usize,
}

impl<S: Write, C: Write> ParquetSink<S, C> {
    /// A sink writing the segments table to `segments` and the
    /// connections table to `connections`, encoding on a thread of its
    /// own.
    pub fn new(segments: S, connections: C) -> io::Result<Self> {
        Self::with_encoder(segments, connections, true)
    }

    /// [`ParquetSink::new`] for a run on `schedule`: the encoding thread
    /// only when the run itself has two threads, so that a run on one
    /// (`--jobs 1`, a batch's workers) stays on one.
    pub fn for_schedule(segments: S, connections: C, schedule: &Schedule) -> io::Result<Self> {
        let threaded = matches!(schedule, Schedule::OnePassThreaded { .. });
        Self::with_encoder(segments, connections, threaded)
    }

    fn with_encoder(segments: S, connections: C, own_thread: bool) -> io::Result<Self> {
        let segments_buf = SharedBuf::default();
        let connections_buf = SharedBuf::default();
        let segments_writer = SegmentsWriter::new(
            segments_buf.clone(),
            &ColumnPlan {
                delta: &["frame", "ts", "ts_ns", "conn", "related"],
                plain: &["seq", "ack"],
                unique: &[],
                statistics: Some(&["capture", "frame", "ts", "ts_ns", "conn", "related"]),
            },
        )?;
        let connections_writer = TableWriter::new(
            connections_buf.clone(),
            connections_schema(),
            &ColumnPlan {
                delta: &["id", "first_frame", "last_frame", "first_ts", "last_ts"],
                plain: &[],
                unique: &[
                    "client",
                    "community_id",
                    "rst_ts",
                    "client_state_since",
                    "client_fin_ts",
                    "server_state_since",
                    "server_fin_ts",
                ],
                statistics: Some(&[
                    "capture",
                    "id",
                    "client_port",
                    "server_port",
                    "first_frame",
                    "last_frame",
                    "first_ts",
                    "last_ts",
                    "rst_ts",
                    "client_state_since",
                    "client_fin_ts",
                    "client_fin_retransmits",
                    "server_state_since",
                    "server_fin_ts",
                    "server_fin_retransmits",
                    "rsts",
                    "idle_reset_secs",
                ]),
            },
        )?;
        Ok(ParquetSink {
            segments,
            segments_buf,
            connections,
            connections_buf,
            encoder: Encoder::start(segments_writer, connections_writer, own_thread)?,
            capture: String::new(),
            columns: SegmentColumns::new(ROWS_PER_GROUP),
            rows_per_group: ROWS_PER_GROUP,
            reports: Vec::new(),
            begun: false,
            connections_per_group: CONNECTIONS_PER_GROUP,
        })
    }

    /// Ends a segments row group every `rows` rows (at least 1) instead
    /// of every [`ROWS_PER_GROUP`], and a connections row group every
    /// `rows` connections instead of every [`CONNECTIONS_PER_GROUP`].
    pub fn with_rows_per_group(mut self, rows: usize) -> Self {
        self.rows_per_group = rows.max(1);
        self.connections_per_group = rows.max(1);
        self.columns = SegmentColumns::new(self.rows_per_group.min(ROWS_PER_GROUP));
        self
    }

    /// Hands what the encoding thread wrote so far to the outputs.
    fn drain(&mut self) -> io::Result<()> {
        self.segments_buf.drain_into(&mut self.segments)?;
        self.connections_buf.drain_into(&mut self.connections)
    }

    fn write_connections(&mut self) -> io::Result<()> {
        if !self.reports.is_empty() {
            let reports = std::mem::take(&mut self.reports);
            self.encoder
                .send(Job::Connections(self.capture.clone(), reports))?;
            self.drain()?;
        }
        Ok(())
    }

    fn write_segments(&mut self) -> io::Result<()> {
        if self.columns.rows > 0 {
            let spare = self.encoder.spare();
            let group = self.columns.take_group(&self.capture, spare);
            self.encoder.send(Job::Segments(group))?;
            self.drain()?;
        }
        Ok(())
    }
}

impl<S: Write, C: Write> RowSink for ParquetSink<S, C> {
    fn needs_first_pass(&self) -> bool {
        false
    }

    fn wants_connections(&self) -> bool {
        true
    }

    fn wants_zeek_view(&self) -> bool {
        true
    }

    /// The reports come through [`RowSink::connection`], whatever the
    /// schedule: those given here are ignored.
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        self.capture = capture.path.display().to_string();
        self.begun = true;
        while self.reports.len() >= self.connections_per_group {
            let rest = self.reports.split_off(self.connections_per_group);
            self.write_connections()?;
            self.reports = rest;
        }
        Ok(())
    }

    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        self.reports.push(report.clone());
        if self.begun && self.reports.len() >= self.connections_per_group {
            self.write_connections()?;
        }
        Ok(())
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.columns.push(row);
        if self.columns.rows >= self.rows_per_group {
            self.write_segments()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_segments()?;
        self.write_connections()?;
        self.encoder.finish()?;
        self.drain()?;
        self.segments.flush()?;
        self.connections.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::ip_and_port;
    use std::net::SocketAddr;

    #[test]
    fn ip_and_port_cut_as_socket_addr_reads_them() {
        for text in [
            "192.0.2.1:80",
            "10.0.0.255:65535",
            "[2001:db8::1]:443",
            "[::ffff:192.0.2.1]:8080",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(
                ip_and_port(text),
                (addr.ip().to_string().as_str(), addr.port()),
                "{text}"
            );
        }
        for garbage in [
            "",
            "no port",
            "[2001:db8::1:80",
            "192.0.2.1:port",
            "192.0.2.1:70000",
        ] {
            assert_eq!(ip_and_port(garbage), ("", 0), "{garbage:?}");
        }
    }
}
