//! The Zeek model on hand-chained segments.

use super::*;
use crate::wire::segment::{TcpFlags, Timestamp};

const A: &str = "10.0.0.1:40000";
const B: &str = "10.0.0.2:80";

fn seg(from_a: bool, flags: u8, seq: u32, ack: u32, len: u32) -> Segment<'static> {
    let (src, dst) = if from_a { (A, B) } else { (B, A) };
    Segment::for_test(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        flags,
        seq,
        ack,
        len,
    )
}

const S: u8 = TcpFlags::SYN;
const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
const AK: u8 = TcpFlags::ACK;
const PA: u8 = TcpFlags::ACK | TcpFlags::PSH;
const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;
const R: u8 = TcpFlags::RST;
const RA: u8 = TcpFlags::RST | TcpFlags::ACK;

fn run(segs: &[(bool, u8, u32, u32, u32)]) -> (String, &'static str) {
    let mut t = ZeekConn::default();
    let first_a = segs[0].0;
    for &(a, fl, s, k, l) in segs {
        t.observe(&seg(a, fl, s, k, l), a == first_a, 0);
    }
    (t.history(), t.conn_state())
}

#[test]
fn normal_close_is_sf() {
    let (h, st) = run(&[
        (true, S, 100, 0, 0),
        (false, SA, 500, 101, 0),
        (true, AK, 101, 501, 0),
        (true, PA, 101, 501, 10),
        (false, AK, 501, 111, 0),
        (false, PA, 501, 111, 20),
        (true, FA, 111, 521, 0),
        (false, FA, 521, 112, 0),
        (true, AK, 112, 522, 0),
    ]);
    assert_eq!((h.as_str(), st), ("ShADadFf", "SF"));
}

#[test]
fn refused_is_rej() {
    let (h, st) = run(&[(true, S, 100, 0, 0), (false, RA, 0, 101, 0)]);
    assert_eq!((h.as_str(), st), ("Sr", "REJ"));
}

#[test]
fn syn_then_rst_is_rstos0_and_lone_rst_oth() {
    assert_eq!(
        run(&[(true, S, 100, 0, 0), (true, R, 101, 0, 0)]),
        ("SR".into(), "RSTOS0")
    );
    assert_eq!(run(&[(true, R, 101, 0, 0)]), ("R".into(), "OTH"));
}

#[test]
fn synack_first_then_ack_flips() {
    // Only the server's side was captured: SYN-ACK, ACK, FIN.
    let (h, _) = run(&[
        (true, SA, 500, 101, 0),
        (true, AK, 501, 101, 0),
        (true, FA, 501, 101, 0),
    ]);
    assert_eq!(h, "^haf");
}

#[test]
fn retransmissions_scale() {
    let mut segs = vec![
        (true, S, 100, 0, 0),
        (false, SA, 500, 101, 0),
        (true, AK, 101, 501, 0),
        (true, PA, 101, 501, 10),
    ];
    for _ in 0..10 {
        segs.push((true, PA, 101, 501, 10));
    }
    let (h, st) = run(&segs);
    assert_eq!((h.as_str(), st), ("ShADTT", "S1"));
}

#[test]
fn acked_but_unseen_data_is_a_gap() {
    let (h, _) = run(&[
        (true, S, 100, 0, 0),
        (false, SA, 500, 101, 0),
        (true, AK, 101, 501, 0),
        (true, PA, 111, 501, 10),
        (false, AK, 501, 121, 0),
    ]);
    assert_eq!(h, "ShADaG");
}

/// Runs a tracker over `(millis, from_a, flags, seq, ack, len)` and
/// returns its Zeek rows as `(conn_state, history)`.
fn run_timed(segs: &[(i64, bool, u8, u32, u32, u32)]) -> Vec<(&'static str, String)> {
    let mut t = ZeekTracker::default();
    let first_a = segs[0].1;
    for (frame, &(ms, a, fl, s, k, l)) in segs.iter().enumerate() {
        let mut sg = seg(a, fl, s, k, l);
        sg.frame = frame as u64 + 1;
        sg.ts = Timestamp {
            secs: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
        };
        t.observe(&sg, a == first_a);
    }
    let rows = t.rows();
    assert_eq!(rows[0].conn_state, t.conn_state());
    assert_eq!(rows[0].history, t.history());
    rows.into_iter()
        .map(|r| (r.conn_state, r.history))
        .collect()
}

fn rows(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    v.iter().map(|&(s, h)| (s, h.to_owned())).collect()
}

#[test]
fn unanswered_syn_expires_after_the_attempt_delay() {
    // Only the client is captured: SYN, ACK, data within 5 s, then
    // more data and a FIN later (ssh.client-side-half-duplex).
    let segs = [
        (0, true, S, 100, 0, 0),
        (100, true, AK, 101, 501, 0),
        (200, true, PA, 101, 501, 10),
        (5_000, true, PA, 111, 501, 10),
        (6_000, true, AK, 121, 501, 0),
        (7_000, true, FA, 121, 501, 0),
    ];
    assert_eq!(run_timed(&segs), rows(&[("S0", "SAD"), ("SH", "DAF")]));
    // Everything before the delay: one connection.
    let mut early = segs;
    for (i, s) in early[3..].iter_mut().enumerate() {
        s.0 = 4_997 + i as i64;
    }
    assert_eq!(run_timed(&early), rows(&[("SH", "SADF")]));
}

#[test]
fn reset_connection_is_deleted_after_the_close_delay() {
    // Refused-after-accept, then data 16 s later that the server
    // resets (modbus-and-non-modbus-p502).
    let segs = [
        (0, true, S, 100, 0, 0),
        (1, false, SA, 500, 101, 0),
        (100, true, R, 101, 0, 0),
        (16_000, true, PA, 101, 501, 10),
        (16_001, false, R, 501, 0, 0),
    ];
    assert_eq!(run_timed(&segs), rows(&[("RSTO", "ShR"), ("RSTRH", "Dr")]));
}

#[test]
fn closed_connection_is_deleted_and_the_next_one_may_flip() {
    // A normal close, then the server's RST 6 s later: a new Zeek
    // connection, flipped because its source port is a server's.
    let segs = [
        (0, true, S, 100, 0, 0),
        (1, false, SA, 500, 101, 0),
        (2, true, AK, 101, 501, 0),
        (3, true, FA, 101, 501, 0),
        (4, false, FA, 501, 102, 0),
        (5, true, AK, 102, 502, 0),
        (6_005, false, RA, 502, 102, 0),
    ];
    assert_eq!(run_timed(&segs), rows(&[("SF", "ShAFf"), ("RSTRH", "^r")]));
}

#[test]
fn idle_connection_expires_after_the_inactivity_timeout() {
    let segs = [
        (0, true, PA, 101, 501, 10),
        (1, false, AK, 501, 111, 0),
        (300_001, true, PA, 101, 501, 10),
    ];
    assert_eq!(run_timed(&segs), rows(&[("OTH", "Da"), ("OTH", "D")]));
    let mut active = segs;
    active[2].0 = 300_000;
    assert_eq!(run_timed(&active), rows(&[("OTH", "DaT")]));
}

#[test]
fn one_sided_close_expires_after_the_partial_close_delay() {
    // Mid-stream: the client's data, then the server's first packet
    // is a FIN; the client answers 4 s later.
    let segs = [
        (0, true, PA, 101, 501, 10),
        (1_000, false, FA, 501, 111, 0),
        (4_001, true, AK, 111, 502, 0),
    ];
    assert_eq!(run_timed(&segs), rows(&[("SHR", "Df"), ("OTH", "A")]));
    let mut early = segs;
    early[2].0 = 3_999;
    assert_eq!(run_timed(&early), rows(&[("SHR", "DfA")]));
}
