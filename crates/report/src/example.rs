//! Example connections: for each subject a finding can be about (a
//! service that aborts, a holder of TIME-WAIT sockets, ...), the first
//! few connections in input order, with where to find them: capture,
//! connection id, frames, and Wireshark display filters to paste.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;
use tcpshut_engine::ConnectionReport;

use crate::aggregate::{SideKey, TimeWaitKey};

/// Examples kept per subject.
pub const EXAMPLES_PER_SUBJECT: usize = 3;

/// Frames of an example listed at most (the verdict's evidence).
const FRAMES_PER_EXAMPLE: usize = 8;

/// What a set of examples illustrates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// A side of a service that closes abortively; `abort` is
    /// [`crate::aggregate::Abort`] as a number.
    Abort {
        service: SocketAddr,
        side: SideKey,
        abort: u8,
    },
    ResetAfterClose(SocketAddr),
    ForgedReset(SocketAddr),
    TimeWait(TimeWaitKey),
    CloseWait(SocketAddr, SideKey),
    Refused(SocketAddr),
    HalfClose(SocketAddr),
    FinRetransmit(SocketAddr),
    /// Idle resets from a client host to a service.
    IdleReset(std::net::IpAddr, SocketAddr),
    /// Connections whose first RST falls in the RST timeline's bucket
    /// starting at this time (epoch seconds).
    RstBucket(i64),
}

/// One example connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Example {
    pub capture: String,
    /// The connection's id in `tcpshut summary` and the sidecar's `conn`.
    pub conn: u32,
    pub client: String,
    pub server: String,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Frames the verdict rests on (at most eight).
    pub frames: Vec<u64>,
    /// With the tcpshut Wireshark plugin and the sidecar.
    pub filter_tcpshut: String,
    /// Plain Wireshark: the 4-tuple within the connection's frames.
    pub filter: String,
}

impl Example {
    pub fn of(capture: &str, r: &ConnectionReport) -> Example {
        let mut frames: Vec<u64> = r
            .endpoints
            .iter()
            .flat_map(|e| e.evidence.iter().copied())
            .collect();
        frames.sort_unstable();
        frames.dedup();
        frames.truncate(FRAMES_PER_EXAMPLE);
        Example {
            capture: capture.to_string(),
            conn: r.id,
            client: r.client.clone(),
            server: r.server.clone(),
            first_frame: r.first_frame,
            last_frame: r.last_frame,
            frames,
            filter_tcpshut: format!("tcpshut.conn == {}", r.id),
            filter: four_tuple_filter(&r.client, &r.server, r.first_frame, r.last_frame),
        }
    }
}

/// `ip.addr == A && tcp.port == P && ...` within the frame range (a 4-tuple
/// can be reused by a later connection).
fn four_tuple_filter(client: &str, server: &str, first: u64, last: u64) -> String {
    let (Ok(c), Ok(s)) = (client.parse::<SocketAddr>(), server.parse::<SocketAddr>()) else {
        return format!("frame.number >= {first} && frame.number <= {last}");
    };
    let field = if c.is_ipv6() { "ipv6.addr" } else { "ip.addr" };
    format!(
        "{field} == {} && tcp.port == {} && {field} == {} && tcp.port == {} && frame.number >= {first} && frame.number <= {last}",
        c.ip(),
        c.port(),
        s.ip(),
        s.port()
    )
}

/// The first [`EXAMPLES_PER_SUBJECT`] connections of each subject, by
/// (input position, connection id): the same whatever order they came in.
#[derive(Clone, Debug, Default)]
pub struct Examples(BTreeMap<Subject, Vec<(Position, Example)>>);

/// Where a connection is among the inputs: input position, connection id.
pub type Position = (usize, u32);

impl Examples {
    /// Offers the connection at `position` (input, id); `make` builds it
    /// only if it is kept.
    pub fn offer(
        &mut self,
        subject: Subject,
        position: (usize, u32),
        make: impl FnOnce() -> Example,
    ) {
        let kept = self.0.entry(subject).or_default();
        let at = kept.partition_point(|(p, _)| *p < position);
        if at >= EXAMPLES_PER_SUBJECT || kept.get(at).is_some_and(|(p, _)| *p == position) {
            return;
        }
        kept.insert(at, (position, make()));
        kept.truncate(EXAMPLES_PER_SUBJECT);
    }

    /// Moves the examples of RST timeline buckets to the buckets of a
    /// timeline `width` seconds wide (it widened), keeping the first of
    /// each.
    pub fn widen_rst_buckets(&mut self, width: i64) {
        let moved: Vec<(Subject, Vec<(Position, Example)>)> = self
            .0
            .iter()
            .filter(|(s, _)| matches!(s, Subject::RstBucket(start) if start.rem_euclid(width) != 0))
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        for (subject, list) in moved {
            self.0.remove(&subject);
            let Subject::RstBucket(start) = subject else {
                continue;
            };
            let wide = Subject::RstBucket(start.div_euclid(width) * width);
            for (position, example) in list {
                self.offer(wide, position, || example);
            }
        }
    }

    pub fn merge(&mut self, other: Examples) {
        for (subject, list) in other.0 {
            for (position, example) in list {
                self.offer(subject, position, || example);
            }
        }
    }

    pub fn of(&self, subject: &Subject) -> Vec<Example> {
        self.0
            .get(subject)
            .map(|v| v.iter().map(|(_, e)| e.clone()).collect())
            .unwrap_or_default()
    }
}
