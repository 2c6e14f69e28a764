//! Derived captures: cases the kernel will not produce on demand, made by
//! a documented transformation of a real recording (like the pcapng
//! conversion). Every derived file names its source and transformation in
//! the manifest (`derived_from`, `transformation`).
//!
//! Works on the raw records of an Ethernet/IPv4 pcap (16-byte record
//! header + frame), so untouched records stay byte-identical. Injected
//! segments are built with etherparse (correct checksums) from the
//! addresses of a real frame of the same connection.

use std::path::Path;

use anyhow::{bail, Context, Result};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

/// One pcap record: its 16-byte header and the frame.
#[derive(Clone)]
pub struct Record {
    pub header: [u8; 16],
    pub data: Vec<u8>,
}

/// A little-endian Ethernet pcap as written by tcpdump on the veth.
pub struct Pcap {
    pub file_header: Vec<u8>,
    pub records: Vec<Record>,
}

impl Pcap {
    pub fn read(path: &Path) -> Result<Pcap> {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        if bytes.len() < 24 || bytes[..4] != [0xd4, 0xc3, 0xb2, 0xa1] || bytes[20] != 1 {
            bail!("{}: not a little-endian Ethernet pcap", path.display());
        }
        let mut records = Vec::new();
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let header: [u8; 16] = bytes[at..at + 16].try_into()?;
            let caplen = u32::from_le_bytes(header[8..12].try_into()?) as usize;
            let data = bytes
                .get(at + 16..at + 16 + caplen)
                .context("record truncated")?
                .to_vec();
            records.push(Record { header, data });
            at += 16 + caplen;
        }
        Ok(Pcap {
            file_header: bytes[..24].to_vec(),
            records,
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = self.file_header.clone();
        for r in &self.records {
            out.extend_from_slice(&r.header);
            out.extend_from_slice(&r.data);
        }
        std::fs::write(path, out).with_context(|| path.display().to_string())
    }
}

/// The TCP facts of a frame the transformations need.
#[derive(Clone, Copy, Debug)]
pub struct Tcp {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: ([u8; 4], u16),
    pub dst: ([u8; 4], u16),
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// The ACK flag (a bare RST has none).
    pub ack_flag: bool,
    pub payload: usize,
}

impl Tcp {
    pub fn end_seq(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload as u32)
            .wrapping_add(u32::from(self.syn) + u32::from(self.fin))
    }
}

pub fn tcp(frame: &[u8]) -> Option<Tcp> {
    let sliced = SlicedPacket::from_ethernet(frame).ok()?;
    let mut tcp = tcp_of(&sliced)?;
    tcp.src_mac = frame[6..12].try_into().ok()?;
    tcp.dst_mac = frame[..6].try_into().ok()?;
    Some(tcp)
}

/// The TCP facts of an IPv4 packet (no link header: a router's `-i any`
/// capture; the MAC addresses are zero).
pub fn tcp_of_ip(packet: &[u8]) -> Option<Tcp> {
    tcp_of(&SlicedPacket::from_ip(packet).ok()?)
}

fn tcp_of(sliced: &SlicedPacket<'_>) -> Option<Tcp> {
    let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
        return None;
    };
    let Some(TransportSlice::Tcp(t)) = &sliced.transport else {
        return None;
    };
    Some(Tcp {
        src_mac: [0; 6],
        dst_mac: [0; 6],
        src: (ip.header().source(), t.source_port()),
        dst: (ip.header().destination(), t.destination_port()),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        syn: t.syn(),
        fin: t.fin(),
        rst: t.rst(),
        ack_flag: t.ack(),
        payload: t.payload().len(),
    })
}

/// Index of the first record matching `pred`.
pub fn find(p: &Pcap, pred: impl Fn(&Tcp) -> bool) -> Result<usize> {
    find_from(p, 0, pred)
}

/// Index of the first record from `start` on matching `pred`.
pub fn find_from(p: &Pcap, start: usize, pred: impl Fn(&Tcp) -> bool) -> Result<usize> {
    p.records[start..]
        .iter()
        .position(|r| tcp(&r.data).is_some_and(|t| pred(&t)))
        .map(|i| start + i)
        .context("no frame matches")
}

/// Flags of an injected segment.
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub ack: bool,
}

/// A TCP segment from `like.src` to `like.dst` (addresses and MACs of a
/// real frame), with correct IPv4 and TCP checksums.
pub fn build(like: &Tcp, seq: u32, ack: u32, flags: Flags, payload: &[u8]) -> Result<Vec<u8>> {
    let mut b = PacketBuilder::ethernet2(like.src_mac, like.dst_mac)
        .ipv4(like.src.0, like.dst.0, 64)
        .tcp(like.src.1, like.dst.1, seq, 64240);
    if flags.syn {
        b = b.syn();
    }
    if flags.fin {
        b = b.fin();
    }
    if flags.rst {
        b = b.rst();
    }
    if flags.ack {
        b = b.ack(ack);
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload)?;
    Ok(out)
}

/// A record for `data`, 1 µs after `before` (so timestamps stay ordered).
pub fn record_after(before: &Record, data: Vec<u8>) -> Record {
    let mut header = before.header;
    let usec = u32::from_le_bytes(header[4..8].try_into().unwrap()) + 1;
    let (sec_carry, usec) = if usec >= 1_000_000 {
        (1, usec - 1_000_000)
    } else {
        (0, usec)
    };
    let sec = u32::from_le_bytes(header[..4].try_into().unwrap()) + sec_carry;
    header[..4].copy_from_slice(&sec.to_le_bytes());
    header[4..8].copy_from_slice(&usec.to_le_bytes());
    set_lens(&mut header, data.len());
    Record { header, data }
}

fn set_lens(header: &mut [u8; 16], len: usize) {
    header[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    header[12..16].copy_from_slice(&(len as u32).to_le_bytes());
}

fn ipv4_checksum(header: &mut [u8]) {
    header[10] = 0;
    header[11] = 0;
    let mut sum = 0u32;
    for pair in header.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    header[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// Splits the IPv4 packet of record `i` into two fragments, the first
/// holding `first` bytes of IP payload (a multiple of 8).
pub fn fragment(p: &mut Pcap, i: usize, first: usize) -> Result<()> {
    assert!(first % 8 == 0);
    let rec = p.records[i].clone();
    let eth = &rec.data[..14];
    let ihl = usize::from(rec.data[14] & 0x0f) * 4;
    let ip_header = &rec.data[14..14 + ihl];
    let payload = &rec.data[14 + ihl..];
    if payload.len() <= first {
        bail!("frame {} too short to fragment", i + 1);
    }
    let make = |part: &[u8], offset: usize, more: bool| {
        let mut h = ip_header.to_vec();
        h[2..4].copy_from_slice(&((ihl + part.len()) as u16).to_be_bytes());
        let flags_off = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&flags_off.to_be_bytes());
        ipv4_checksum(&mut h);
        let mut data = eth.to_vec();
        data.extend_from_slice(&h);
        data.extend_from_slice(part);
        data
    };
    let a = make(&payload[..first], 0, true);
    let b = make(&payload[first..], first, false);
    let mut ra = rec.clone();
    set_lens(&mut ra.header, a.len());
    ra.data = a;
    let rb = record_after(&ra, b);
    p.records.splice(i..=i, [ra, rb]);
    Ok(())
}

/// Inserts 802.1Q/802.1ad tags (TPID, VLAN id), outermost first, after the
/// MAC addresses of every frame.
pub fn tag(p: &mut Pcap, tags: &[(u16, u16)]) {
    for r in &mut p.records {
        let mut inserted = Vec::new();
        for (tpid, vid) in tags {
            inserted.extend_from_slice(&tpid.to_be_bytes());
            inserted.extend_from_slice(&vid.to_be_bytes());
        }
        r.data.splice(12..12, inserted);
        let len = r.data.len();
        set_lens(&mut r.header, len);
    }
}
