//! Deterministic synthetic captures for performance work: Ethernet/IPv4,
//! many interleaved connections, a realistic mix of teardowns.
//!
//! Same configuration, same bytes: every random choice comes from a
//! seeded generator, and timestamps are synthetic (no clock is read).
//! These captures measure speed and memory only; correctness rests on the
//! real-kernel captures in `testdata/`.
//!
//! Each connection does a handshake, one to three request/response rounds
//! separated by think time (keep-alive), then one teardown of [`MIX`].
//! Connections start at a steady rate chosen so that about `concurrency`
//! are open at a time; a longer capture has more connections over more
//! time, not more at once. The capture stops when the last connection
//! starts, so the connections still in flight then are left open.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use etherparse::{PacketBuilder, TcpOptionElement};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct GenConfig {
    pub connections: u32,
    /// Connections open at a time, on average.
    pub concurrency: u32,
    pub seed: u64,
}

/// What was generated.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenStats {
    pub packets: u64,
    pub bytes: u64,
    /// Most connections open (started, not finished) at one time.
    pub max_open: usize,
    /// Connections cut off by the end of the capture.
    pub left_open: usize,
    /// Capture time from first to last packet.
    pub span_secs: u64,
}

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Teardown {
    /// Client FIN, server ACK, server FIN, client ACK.
    GracefulClient,
    GracefulServer,
    /// Client shutdown(SHUT_WR) after its request; the server answers
    /// after the FIN, then closes.
    HalfClose,
    /// RST+ACK from a live endpoint after the exchange.
    RstAbort,
    /// Client close() after its request; the server's answer is reset.
    RstAfterClose,
    /// SYN answered by RST+ACK.
    Refused,
}

/// The mix of teardowns, in percent.
const MIX: [(Teardown, u64); 6] = [
    (Teardown::GracefulClient, 32),
    (Teardown::GracefulServer, 30),
    (Teardown::HalfClose, 10),
    (Teardown::RstAbort, 10),
    (Teardown::RstAfterClose, 8),
    (Teardown::Refused, 10),
];

/// Mean duration of a connection (think time dominates), for the start rate.
const MEAN_DURATION_US: u64 = 10_000_000;
/// Capture time of the first packet (2023-11-14), for stable output.
const EPOCH_SECS: u64 = 1_700_000_000;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// One packet of a connection's script.
#[derive(Clone, Copy, Debug)]
struct Pkt {
    ts_us: u64,
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u16,
}

/// One connection: its addresses and every packet it will send.
struct Script {
    id: u32,
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    pkts: Vec<Pkt>,
    next: usize,
}

/// Writes a connection's packets in order, keeping both sides' SND.NXT.
struct Conversation {
    t: u64,
    /// Next sequence number of the client and of the server.
    nxt: [u32; 2],
    pkts: Vec<Pkt>,
}

impl Conversation {
    /// Sends after `delay_us` (at least 1 µs, so times strictly increase).
    fn send(&mut self, from_client: bool, flags: u8, len: u16, delay_us: u64) {
        self.t += delay_us.max(1);
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        let seq = if flags == RST | ACK && self.pkts.len() == 1 {
            0 // a refusal: Linux answers a SYN with seq 0
        } else {
            self.nxt[me]
        };
        let ack = if flags & ACK != 0 { self.nxt[peer] } else { 0 };
        self.pkts.push(Pkt {
            ts_us: self.t,
            from_client,
            flags,
            seq,
            ack,
            len,
        });
        let consumed = u32::from(len) + u32::from(flags & (SYN | FIN) != 0);
        self.nxt[me] = self.nxt[me].wrapping_add(consumed);
    }
}

fn pick_teardown(rng: &mut Rng) -> Teardown {
    let mut roll = rng.range(0, 100);
    for (kind, percent) in MIX {
        if roll < percent {
            return kind;
        }
        roll -= percent;
    }
    Teardown::GracefulClient
}

/// Gap between connection starts, for `concurrency` open at a time.
fn start_gap_us(config: &GenConfig) -> u64 {
    (MEAN_DURATION_US / u64::from(config.concurrency.max(1))).max(1)
}

fn script(config: &GenConfig, id: u32) -> Script {
    let mut rng = Rng::new(config.seed, u64::from(id));
    let gap = start_gap_us(config);
    let start = u64::from(id) * gap + rng.range(0, gap);
    let kind = pick_teardown(&mut rng);
    let rtt = rng.range(2_000, 60_000);
    let half = rtt / 2;
    let mut c = Conversation {
        t: start,
        nxt: [rng.next() as u32, rng.next() as u32],
        pkts: Vec::with_capacity(40),
    };
    c.t -= 1; // the SYN goes out exactly at `start`
    c.send(true, SYN, 0, 1);
    if kind == Teardown::Refused {
        c.send(false, RST | ACK, 0, half);
    } else {
        c.send(false, SYN | ACK, 0, half);
        c.send(true, ACK, 0, half);
        let rounds = rng.range(1, 4);
        for round in 0..rounds {
            let last = round + 1 == rounds;
            if round > 0 {
                c.t += rng.range(500_000, 20_000_000); // think time
            }
            c.send(true, PSH | ACK, rng.range(60, 600) as u16, 1);
            let client_closed =
                last && matches!(kind, Teardown::HalfClose | Teardown::RstAfterClose) && {
                    c.send(true, FIN | ACK, 0, rng.range(20, 200));
                    true
                };
            c.send(false, ACK, 0, half);
            let segments = rng.range(4, 11);
            for n in 0..segments {
                c.send(
                    false,
                    PSH | ACK,
                    rng.range(20, 1000) as u16,
                    rng.range(30, 300),
                );
                if client_closed && kind == Teardown::RstAfterClose {
                    // close() with the answer still arriving: a bare RST.
                    c.send(true, RST, 0, rng.range(20, 100));
                    break;
                }
                if n % 2 == 1 || n + 1 == segments {
                    c.send(true, ACK, 0, rng.range(20, 100));
                }
            }
        }
        let (first, second) = match kind {
            Teardown::GracefulClient | Teardown::HalfClose => (true, false),
            Teardown::GracefulServer => (false, true),
            Teardown::RstAbort => {
                let client = rng.next() % 2 == 0;
                c.send(client, RST | ACK, 0, rng.range(100, 5_000));
                (client, client) // no FINs
            }
            Teardown::RstAfterClose | Teardown::Refused => (true, true),
        };
        if first != second {
            // A half-closing client sent its FIN after the request.
            if kind != Teardown::HalfClose {
                c.send(first, FIN | ACK, 0, rng.range(100, 50_000));
                c.send(second, ACK, 0, half);
            }
            c.send(second, FIN | ACK, 0, rng.range(50, 5_000));
            c.send(first, ACK, 0, half);
        }
    }
    let client = id % 4096;
    let server = id % 16;
    Script {
        id,
        client: (
            [10, 0, (client >> 8) as u8, client as u8],
            1024 + ((id / 4096) % 60_000) as u16,
        ),
        server: (
            [192, 168, 1, 1 + server as u8],
            if server % 2 == 0 { 443 } else { 80 },
        ),
        pkts: c.pkts,
        next: 0,
    }
}

/// Generates the capture described by `config` into `path`.
pub fn generate(config: &GenConfig, path: &Path) -> anyhow::Result<GenStats> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let stats = write_capture(config, &mut out)?;
    out.flush()?;
    Ok(stats)
}

fn write_capture(config: &GenConfig, out: &mut impl Write) -> anyhow::Result<GenStats> {
    // pcap header: µs, version 2.4, snaplen 262144, Ethernet.
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&262_144u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;

    let mut payload_rng = Rng::new(config.seed, u64::MAX);
    let payload: Vec<u8> = (0..1100).map(|_| payload_rng.next() as u8).collect();
    let mut stats = GenStats::default();
    let mut frame = Vec::with_capacity(2048);
    let gap = start_gap_us(config);
    // The capture stops when the last connection starts.
    let end_us = u64::from(config.connections.saturating_sub(1)) * gap;
    let mut first_ts = None;
    let mut slots: Vec<Option<Script>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut open = 0usize;
    let mut heap: BinaryHeap<Reverse<(u64, u32, usize)>> = BinaryHeap::new();
    let mut next_id = 0u32;
    loop {
        // Start every connection whose SYN comes before the next packet.
        while next_id < config.connections {
            let next_start = u64::from(next_id) * gap;
            if heap
                .peek()
                .is_some_and(|Reverse((ts, _, _))| *ts < next_start)
            {
                break;
            }
            let s = script(config, next_id);
            next_id += 1;
            let first = s.pkts[0].ts_us;
            let id = s.id;
            let slot = free.pop().unwrap_or(slots.len());
            if slot == slots.len() {
                slots.push(None);
            }
            slots[slot] = Some(s);
            open += 1;
            stats.max_open = stats.max_open.max(open);
            heap.push(Reverse((first, id, slot)));
        }
        let Some(Reverse((ts, id, slot))) = heap.pop() else {
            break;
        };
        if ts > end_us {
            stats.left_open = open;
            break;
        }
        let s = slots[slot].as_mut().expect("scheduled script exists");
        let pkt = s.pkts[s.next];
        s.next += 1;
        write_packet(out, s, &pkt, &payload, &mut frame)?;
        stats.packets += 1;
        stats.bytes += 16 + frame.len() as u64;
        first_ts.get_or_insert(ts);
        stats.span_secs = (ts - first_ts.unwrap_or(ts)) / 1_000_000;
        if let Some(next) = s.pkts.get(s.next) {
            heap.push(Reverse((next.ts_us, id, slot)));
        } else {
            slots[slot] = None;
            free.push(slot);
            open -= 1;
        }
    }
    Ok(stats)
}

fn write_packet(
    out: &mut impl Write,
    s: &Script,
    pkt: &Pkt,
    payload: &[u8],
    frame: &mut Vec<u8>,
) -> anyhow::Result<()> {
    const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    let ((src, sport), (dst, dport), src_mac, dst_mac) = if pkt.from_client {
        (s.client, s.server, CLIENT_MAC, SERVER_MAC)
    } else {
        (s.server, s.client, SERVER_MAC, CLIENT_MAC)
    };
    let window = if pkt.flags & SYN != 0 { 64_240 } else { 502 };
    let mut tcp = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, pkt.seq, window);
    if pkt.flags & SYN != 0 {
        tcp = tcp
            .options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::WindowScale(7),
            ])
            .expect("options fit");
        tcp = tcp.syn();
    }
    if pkt.flags & ACK != 0 {
        tcp = tcp.ack(pkt.ack);
    }
    if pkt.flags & FIN != 0 {
        tcp = tcp.fin();
    }
    if pkt.flags & RST != 0 {
        tcp = tcp.rst();
    }
    if pkt.flags & PSH != 0 {
        tcp = tcp.psh();
    }
    let start = (pkt.seq % 64) as usize;
    let data = &payload[start..start + usize::from(pkt.len)];
    frame.clear();
    tcp.write(frame, data).context("building a packet")?;
    let ts = EPOCH_SECS * 1_000_000 + pkt.ts_us;
    let len = frame.len() as u32;
    out.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
    out.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(frame)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(config: &GenConfig) -> Vec<u8> {
        let mut out = Vec::new();
        write_capture(config, &mut out).unwrap();
        out
    }

    #[test]
    fn same_config_same_bytes() {
        let config = GenConfig {
            connections: 300,
            concurrency: 50,
            seed: 7,
        };
        assert_eq!(bytes(&config), bytes(&config));
        let other = GenConfig { seed: 8, ..config };
        assert_ne!(bytes(&config), bytes(&other));
    }
}
