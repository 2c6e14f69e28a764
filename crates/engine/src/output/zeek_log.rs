//! Zeek's `conn.log`: one line per Zeek connection (the [`ZeekRow`]s the
//! Zeek model computes, so a tcpshut connection that Zeek's timers would
//! split gives several lines), in Zeek's TSV form (`--format zeek`, with
//! the `#separator` … `#close` header lines exactly as Zeek's ASCII
//! writer prints them, so zeek-cut and Zeek log readers take it) or its
//! JSON form (`--format zeek-json`, one object per line, unset fields
//! left out, as Zeek writes with `LogAscii::use_json=T`).
//!
//! The standard conn.log columns come first, in Zeek's order; then
//! `community_id` (as Zeek's `policy/protocols/conn/community-id-logging`
//! adds it), then tcpshut's verdict under `tcpshut.`. Values follow
//! Zeek's `set_conn` (`base/protocols/conn/main.zeek`): `duration` and
//! the byte counts only when the duration is positive, `history` only
//! when not empty, `missed_bytes` always (0 without content gaps), the
//! packet and IP byte counts always (`use_conn_size_analyzer`'s default),
//! `ip_proto` 6; `tunnel_parents` holds a uid made from the connection's
//! tunnel ([`tunnel_uid`]). What Zeek fills from what tcpshut does not
//! have stays unset (`-`): `service` (Zeek's protocol analyzers),
//! `local_orig` and `local_resp` (only with `Site::local_nets`).
//!
//! The sink takes each connection's report as the connection leaves the
//! engine ([`RowSink::connection`], with Zeek's view), adds up its rows, and writes its
//! lines once its last row has gone by, then forgets it: one pass, as for
//! the CSV sidecar, holding only the connections whose rows are still
//! coming. Lines are therefore in the order their tcpshut connection's
//! last segment (a connection's lines together, by first frame) — as
//! Zeek writes a connection when it removes it, not when it starts.
//! `#open` is the time of the first TCP segment, `#close` of the latest.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use sha1::{Digest, Sha1};

use crate::output::reports::{ConnectionReport, EndpointReport};
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::CaptureSummary;
use crate::tracking::event::Event;
use crate::wire::segment::Timestamp;
use crate::wire::seq::seq_max;
use crate::wire::tunnel::Tunnel;

/// Which of Zeek's two log forms to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeekForm {
    /// Zeek's default tab-separated form with its header lines.
    Tsv,
    /// One JSON object per line.
    Json,
}

/// The columns, with their Zeek types, in order.
pub const FIELDS: [(&str, &str); 39] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
    ("community_id", "string"),
    ("tcpshut.conn", "count"),
    ("tcpshut.orig_side", "string"),
    ("tcpshut.outcome", "string"),
    ("tcpshut.closer", "string"),
    ("tcpshut.orig_calls", "string"),
    ("tcpshut.resp_calls", "string"),
    ("tcpshut.rst_cause", "string"),
    ("tcpshut.orig_state", "string"),
    ("tcpshut.resp_state", "string"),
    ("tcpshut.notes", "set[string]"),
    ("tcpshut.idle_reset", "interval"),
    ("tcpshut.orig_rst_forged", "bool"),
    ("tcpshut.resp_rst_forged", "bool"),
    ("tcpshut.orig_rst_evidence", "set[string]"),
    ("tcpshut.resp_rst_evidence", "set[string]"),
    ("tcpshut.tunnel", "string"),
];

/// One column's value, typed as Zeek types it.
#[derive(Clone, Debug, PartialEq)]
enum Value<'a> {
    Unset,
    Time(Timestamp),
    /// Nanoseconds.
    Interval(i64),
    Count(u64),
    Port(u16),
    Addr(IpAddr),
    Bool(bool),
    Str(Cow<'a, str>),
    /// Zeek's `set[string]`, in tcpshut's order.
    Set(Vec<Cow<'a, str>>),
}

/// What one tcpshut connection contributes: its verdict (from the
/// report) and the Zeek connections it spans.
struct ConnLog {
    report: ConnectionReport,
    /// The first RST event that was not ignored, once seen.
    rst_cause: Option<Event>,
    lines: Vec<ZeekLine>,
    /// The line the next rows belong to.
    current: usize,
}

/// What the rows of one Zeek connection add up to.
#[derive(Clone, Debug, Default)]
struct ZeekLine {
    first_frame: u64,
    conn_state: &'static str,
    history: String,
    /// From Zeek's model: IP bytes by originator and responder, and the
    /// octets of the content gaps.
    ip_bytes: [u64; 2],
    missed_bytes: u64,
    first_ts: Timestamp,
    last_ts: Timestamp,
    /// The sender and receiver of the first segment.
    first_sender: Option<SocketAddr>,
    first_receiver: Option<SocketAddr>,
    /// Per direction, 0 being the first sender's.
    dirs: [Direction; 2],
}

/// One direction of a Zeek connection, in the sender's relative
/// sequence numbers, as Zeek's `TCP_Endpoint` counts its size.
#[derive(Clone, Copy, Debug, Default)]
struct Direction {
    pkts: u64,
    /// `start_seq`: the SYN's number, or one below the first octet seen
    /// (from the side's first segment or the peer's first ACK).
    start: Option<u32>,
    /// `last_seq`: the highest number past a segment (SYN, payload, FIN;
    /// an RST's payload is not counted).
    last: Option<u32>,
    /// `ack_seq`: the peer's highest acknowledgement (not from an RST).
    acked: Option<u32>,
    fin: bool,
}

impl Direction {
    /// A segment this side sent.
    fn sent(&mut self, row: &Row) {
        self.pkts += 1;
        let f = row.flags;
        self.start
            .get_or_insert(row.seq.wrapping_sub(u32::from(!f.syn())));
        let len = if f.rst() { 0 } else { row.len };
        let past = row
            .seq
            .wrapping_add(len + u32::from(f.syn()) + u32::from(f.fin()));
        self.last = Some(self.last.map_or(past, |last| seq_max(last, past)));
        self.fin |= f.fin();
    }

    /// A segment the peer sent, for its acknowledgement of this side.
    fn acked_by(&mut self, row: &Row) {
        if !row.flags.ack() || row.flags.rst() {
            return;
        }
        self.start.get_or_insert(row.ack.wrapping_sub(1));
        self.acked = Some(self.acked.map_or(row.ack, |a| seq_max(a, row.ack)));
    }

    /// `TCP_Endpoint::Size`: the octets between the start and the
    /// highest of `last_seq` and `ack_seq`, less the SYN's and the FIN's.
    fn bytes(&self) -> u64 {
        let Some(start) = self.start else { return 0 };
        let top = match (self.last, self.acked) {
            (Some(l), Some(a)) => seq_max(l, a),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return 0,
        };
        let size = u64::from(top.wrapping_sub(start)).saturating_sub(1);
        size.saturating_sub(u64::from(self.fin))
    }
}

impl ConnLog {
    fn new(report: &ConnectionReport) -> ConnLog {
        ConnLog {
            lines: report
                .zeek_rows
                .iter()
                .map(|z| ZeekLine {
                    first_frame: z.first_frame,
                    conn_state: z.conn_state,
                    history: z.history.clone(),
                    ip_bytes: z.ip_bytes,
                    missed_bytes: z.missed_bytes,
                    ..ZeekLine::default()
                })
                .collect(),
            report: report.clone(),
            rst_cause: None,
            current: 0,
        }
    }
}

/// Writes a conn.log.
pub struct ZeekLogSink<W: Write> {
    out: W,
    form: ZeekForm,
    /// The connections whose rows are still coming, by id.
    open: BTreeMap<u32, ConnLog>,
    /// Times of the first and the latest TCP segment.
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    header_written: bool,
    /// The TSV line being made, reused.
    line: String,
}

impl<W: Write> ZeekLogSink<W> {
    pub fn new(out: W, form: ZeekForm) -> Self {
        ZeekLogSink {
            out,
            form,
            open: BTreeMap::new(),
            first_ts: None,
            last_ts: None,
            header_written: false,
            line: String::new(),
        }
    }

    /// Writes the lines of a connection whose rows have all gone by
    /// (those of its Zeek connections that saw a row), after the header.
    fn write_conn(&mut self, conn: &ConnLog) -> io::Result<()> {
        if !self.header_written && self.form == ZeekForm::Tsv {
            write_header(&mut self.out, self.first_ts.unwrap_or_default())?;
        }
        self.header_written = true;
        for line in conn.lines.iter().filter(|l| l.first_sender.is_some()) {
            let values = values(conn, line);
            match self.form {
                ZeekForm::Tsv => write_tsv(&mut self.out, &values, &mut self.line)?,
                ZeekForm::Json => write_json(&mut self.out, &values)?,
            }
        }
        Ok(())
    }
}

impl<W: Write> RowSink for ZeekLogSink<W> {
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
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        Ok(())
    }

    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        self.open.insert(report.id, ConnLog::new(report));
        Ok(())
    }

    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.first_ts.get_or_insert(row.ts);
        self.last_ts = self.last_ts.max(Some(row.ts));
        let Some(conn) = self.open.get_mut(&row.conn) else {
            return Ok(());
        };
        if conn.rst_cause.is_none() {
            // An idle reset is forged or stray as well: the idle time is
            // the cause (the forgery is in `tcpshut.*_rst_forged`).
            conn.rst_cause = [
                Event::RstRefused,
                Event::RstAbort,
                Event::RstAfterClose,
                Event::RstIdle,
                Event::RstForged,
                Event::RstStray,
            ]
            .into_iter()
            .find(|&e| row.events.contains(e));
        }
        while conn
            .lines
            .get(conn.current + 1)
            .is_some_and(|next| next.first_frame <= row.frame)
        {
            conn.current += 1;
        }
        let Some(line) = conn.lines.get_mut(conn.current) else {
            return Ok(());
        };
        let sender = *line.first_sender.get_or_insert(row.src);
        if line.first_receiver.is_none() {
            line.first_receiver = Some(row.dst);
            line.first_ts = row.ts;
        }
        line.last_ts = row.ts;
        let from = usize::from(row.src != sender);
        line.dirs[from].sent(row);
        line.dirs[1 - from].acked_by(row);
        if row.frame >= conn.report.last_frame {
            if let Some(done) = self.open.remove(&row.conn) {
                self.write_conn(&done)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        // Every connection's last row has normally gone by; whatever
        // did not (a capture cut short) is written now, in id order.
        for (_, conn) in std::mem::take(&mut self.open) {
            self.write_conn(&conn)?;
        }
        if !self.header_written && self.form == ZeekForm::Tsv {
            write_header(&mut self.out, self.first_ts.unwrap_or_default())?;
        }
        if self.form == ZeekForm::Tsv {
            let last = self.last_ts.unwrap_or_default();
            writeln!(self.out, "#close\t{}", zeek_date(last))?;
        }
        self.out.flush()
    }
}

/// The header lines of Zeek's ASCII writer (`Ascii::WriteHeader`). Zeek
/// stamps `#open` and `#close` with the wall clock; tcpshut uses the
/// capture's first and last packet times, so the same capture always
/// gives the same log.
fn write_header(out: &mut impl Write, open: Timestamp) -> io::Result<()> {
    out.write_all(b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n")?;
    writeln!(out, "#open\t{}", zeek_date(open))?;
    let names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
    let types: Vec<&str> = FIELDS.iter().map(|(_, ty)| *ty).collect();
    writeln!(out, "#fields\t{}", names.join("\t"))?;
    writeln!(out, "#types\t{}", types.join("\t"))
}

/// `%Y-%m-%d-%H-%M-%S` in UTC, as Zeek's `#open`/`#close` lines.
fn zeek_date(ts: Timestamp) -> String {
    let days = ts.secs.div_euclid(86_400);
    let secs = ts.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}-{:02}-{:02}-{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, chrono-compatible algorithms).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Zeek-style connection uid: `C` and 17 base62 digits, made from the
/// connection (its Community ID, first frame and time) instead of
/// randomness, so the same capture gives the same uids.
fn uid(community_id: &str, line: &ZeekLine) -> String {
    let mut hasher = Sha1::new();
    hasher.update(community_id.as_bytes());
    hasher.update(line.first_frame.to_be_bytes());
    hasher.update(line.first_ts.secs.to_be_bytes());
    hasher.update(line.first_ts.nanos.to_be_bytes());
    uid_of(hasher)
}

/// The uid Zeek's `tunnel_parents` names for a tunnelled connection: its
/// innermost encapsulating connection's. tcpshut logs no tunnel
/// connection, so the uid is made from the tunnel itself (every layer,
/// outermost first: the same tunnel always gives the same uid, and the
/// connections inside one tunnel share it); no line of the log has it.
fn tunnel_uid(tunnel: &Tunnel) -> String {
    let mut hasher = Sha1::new();
    hasher.update(b"tunnel ");
    hasher.update(tunnel.to_string().as_bytes());
    uid_of(hasher)
}

/// `C` and 17 base62 digits from the first 16 bytes of the digest.
fn uid_of(hasher: Sha1) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = hasher.finalize();
    let mut n = u128::from_be_bytes(digest[..16].try_into().expect("20-byte digest"));
    let mut out = String::from("C");
    for _ in 0..17 {
        out.push(DIGITS[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

/// The columns of one line, in [`FIELDS`] order.
fn values<'a>(conn: &'a ConnLog, line: &'a ZeekLine) -> [Value<'a>; FIELDS.len()] {
    let r = &conn.report;
    let (Some(first), Some(second)) = (line.first_sender, line.first_receiver) else {
        unreachable!("only lines with rows are written");
    };
    // Zeek's originator sent the first segment, unless it flipped roles
    // (each flip is a leading `^` in the history).
    let flips = line.history.bytes().take_while(|&b| b == b'^').count();
    let (orig, resp, orig_dir) = if flips % 2 == 0 {
        (first, second, 0)
    } else {
        (second, first, 1)
    };
    // The report lists the client's endpoint first.
    let orig_is_client = orig.to_string() == r.client;
    let (orig_end, resp_end) = if orig_is_client {
        (&r.endpoints[0], &r.endpoints[1])
    } else {
        (&r.endpoints[1], &r.endpoints[0])
    };
    let (orig_d, resp_d) = (&line.dirs[orig_dir], &line.dirs[1 - orig_dir]);
    let duration = nanos_between(line.first_ts, line.last_ts);
    // set_conn: the duration and sizes only for a positive duration.
    let if_lasted = |v: Value<'a>| if duration > 0 { v } else { Value::Unset };
    let text = |text: String| {
        if text.is_empty() {
            Value::Unset
        } else {
            Value::Str(Cow::Owned(text))
        }
    };
    let forged = |end: &'a EndpointReport| {
        end.rst_origin
            .as_ref()
            .map_or(Value::Unset, |o| Value::Bool(o.forged))
    };
    let evidence = |end: &'a EndpointReport| {
        end.rst_origin.as_ref().map_or(Value::Unset, |o| {
            Value::Set(o.evidence.iter().map(|s| Cow::Borrowed(s.code)).collect())
        })
    };
    let tunnelled = !r.tunnel.is_none();
    [
        Value::Time(line.first_ts),
        Value::Str(Cow::Owned(uid(&r.community_id, line))),
        Value::Addr(orig.ip()),
        Value::Port(orig.port()),
        Value::Addr(resp.ip()),
        Value::Port(resp.port()),
        Value::Str(Cow::Borrowed("tcp")),
        Value::Unset,
        if_lasted(Value::Interval(duration)),
        if_lasted(Value::Count(orig_d.bytes())),
        if_lasted(Value::Count(resp_d.bytes())),
        Value::Str(Cow::Borrowed(line.conn_state)),
        // local_orig, local_resp: only with Site::local_nets, which
        // tcpshut has no notion of.
        Value::Unset,
        Value::Unset,
        Value::Count(line.missed_bytes),
        text(line.history.clone()),
        Value::Count(orig_d.pkts),
        Value::Count(line.ip_bytes[0]),
        Value::Count(resp_d.pkts),
        Value::Count(line.ip_bytes[1]),
        if tunnelled {
            Value::Set(vec![Cow::Owned(tunnel_uid(&r.tunnel))])
        } else {
            Value::Unset
        },
        // ip_proto: TCP.
        Value::Count(6),
        Value::Str(Cow::Borrowed(&r.community_id)),
        Value::Count(u64::from(r.id)),
        Value::Str(Cow::Borrowed(if orig_is_client {
            "client"
        } else {
            "server"
        })),
        text(r.outcome.to_string()),
        text(r.closer.to_string()),
        text(orig_end.calls.to_string()),
        text(resp_end.calls.to_string()),
        conn.rst_cause
            .map_or(Value::Unset, |e| Value::Str(Cow::Borrowed(e.code()))),
        text(orig_end.final_state.to_string()),
        text(resp_end.final_state.to_string()),
        Value::Set(r.notes.iter().map(|n| Cow::Borrowed(*n)).collect()),
        r.idle_reset_secs
            .map_or(Value::Unset, |s| Value::Interval((s * 1e9).round() as i64)),
        forged(orig_end),
        forged(resp_end),
        evidence(orig_end),
        evidence(resp_end),
        if tunnelled {
            Value::Str(Cow::Owned(r.tunnel.to_string()))
        } else {
            Value::Unset
        },
    ]
}

/// Nanoseconds from `a` to `b`.
fn nanos_between(a: Timestamp, b: Timestamp) -> i64 {
    b.secs
        .saturating_sub(a.secs)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(b.nanos) - i64::from(a.nanos))
}

/// Seconds with six decimals (Zeek's `%.6f` for `time` and `interval`),
/// rounded to the microsecond, added to `out`.
fn write_seconds(out: &mut String, nanos: i128) {
    let micros = (nanos + if nanos >= 0 { 500 } else { -500 }) / 1000;
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    write!(out, "{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
        .expect("writing to a String cannot fail");
}

impl Value<'_> {
    /// The value as Zeek's ASCII writer prints it; `None` when unset.
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Unset => None,
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "T" } else { "F" })),
            Value::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            _ => {
                let mut text = String::new();
                self.write_text(&mut text);
                Some(Cow::Owned(text))
            }
        }
    }

    /// [`Value::text`] added to `out` (nothing when unset), without a
    /// String of its own: a line has some forty values.
    fn write_text(&self, out: &mut String) {
        let done = match self {
            Value::Unset => Ok(()),
            Value::Time(ts) => {
                write_seconds(
                    out,
                    i128::from(ts.secs) * 1_000_000_000 + i128::from(ts.nanos),
                );
                Ok(())
            }
            Value::Interval(ns) => {
                write_seconds(out, i128::from(*ns));
                Ok(())
            }
            Value::Count(n) => write!(out, "{n}"),
            Value::Port(p) => write!(out, "{p}"),
            Value::Addr(a) => write!(out, "{a}"),
            Value::Bool(b) => {
                out.push_str(if *b { "T" } else { "F" });
                Ok(())
            }
            Value::Str(s) => {
                out.push_str(s);
                Ok(())
            }
            Value::Set(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(item);
                }
                Ok(())
            }
        };
        done.expect("writing to a String cannot fail");
    }
}

/// One TSV line: fields separated by tabs, unset as `-`, empty as
/// `(empty)`; in strings, what Zeek escapes as `\xNN`: control bytes
/// (the separator among them), a backslash, and a whole field that would
/// read as unset or empty.
/// `line` is the caller's, reused from line to line.
fn write_tsv(out: &mut impl Write, values: &[Value<'_>], line: &mut String) -> io::Result<()> {
    line.clear();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            line.push('\t');
        }
        match value {
            Value::Unset => line.push('-'),
            Value::Set(items) if items.is_empty() => line.push_str("(empty)"),
            // Elements apart by the set separator, escaped in them.
            Value::Set(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    escape_into(line, item, true);
                }
            }
            Value::Str(text) if text.is_empty() => line.push_str("(empty)"),
            Value::Str(text) => escape_into(line, text, false),
            // Numbers, times, addresses and booleans: never empty, nothing
            // to escape.
            _ => value.write_text(line),
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// `in_set`: the set separator is escaped too.
fn escape_into(line: &mut String, text: &str, in_set: bool) {
    let whole = text == "-" || text == "(empty)";
    let plain = |b: u8| !b.is_ascii_control() && b != b'\\' && !(in_set && b == b',');
    if !whole && text.bytes().all(plain) {
        // The common case: nothing to escape, one copy.
        line.push_str(text);
        return;
    }
    for c in text.chars() {
        if whole || c.is_ascii_control() || c == '\\' || (in_set && c == ',') {
            line.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            line.push(c);
        }
    }
}

/// One JSON line: the set fields only; times and intervals as numbers of
/// seconds, counts and ports as integers.
fn write_json(out: &mut impl Write, values: &[Value<'_>]) -> io::Result<()> {
    let mut line = String::from("{");
    for ((name, _), value) in FIELDS.iter().zip(values) {
        let Some(text) = value.text() else { continue };
        if line.len() > 1 {
            line.push(',');
        }
        line.push_str(&serde_json::to_string(name).map_err(io::Error::other)?);
        line.push(':');
        match value {
            Value::Str(_) | Value::Addr(_) => {
                line.push_str(&serde_json::to_string(&text).map_err(io::Error::other)?)
            }
            Value::Set(items) => {
                line.push_str(&serde_json::to_string(items).map_err(io::Error::other)?)
            }
            Value::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
            _ => line.push_str(&text),
        }
    }
    line.push_str("}\n");
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_like_zeeks() {
        let at = |secs| Timestamp { secs, nanos: 0 };
        assert_eq!(zeek_date(at(0)), "1970-01-01-00-00-00");
        // 2019-11-08 11:44:16 UTC, the #open of a Zeek log.
        assert_eq!(zeek_date(at(1_573_213_456)), "2019-11-08-11-44-16");
        assert_eq!(zeek_date(at(951_782_400)), "2000-02-29-00-00-00");
        assert_eq!(zeek_date(at(-1)), "1969-12-31-23-59-59");
    }

    fn seconds(nanos: i128) -> String {
        let mut text = String::new();
        write_seconds(&mut text, nanos);
        text
    }

    #[test]
    fn seconds_have_six_rounded_decimals() {
        assert_eq!(seconds(1_521_911_721_255_387_400), "1521911721.255387");
        assert_eq!(seconds(999_999_600), "1.000000");
        assert_eq!(seconds(4_266_000), "0.004266");
    }

    #[test]
    fn strings_escape_what_zeek_escapes() {
        let mut line = String::new();
        escape_into(&mut line, "a\tb\\c,d", false);
        assert_eq!(line, "a\\x09b\\x5cc,d");
        line.clear();
        escape_into(&mut line, "a,b", true);
        assert_eq!(line, "a\\x2cb");
        line.clear();
        escape_into(&mut line, "-", false);
        assert_eq!(line, "\\x2d");
    }

    #[test]
    fn uids_look_like_zeeks_and_differ() {
        let line = ZeekLine::default();
        let a = uid("1:abc", &line);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with('C') && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, uid("1:abd", &line));
        assert_eq!(a, uid("1:abc", &line), "deterministic");
    }
}
