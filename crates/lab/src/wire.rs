//! Reads back what was recorded: frames from pcap/pcapng, TCP segments from
//! frames, and per-connection FIN/RST counts used to check that the kernel
//! did what the scenario expects. Also converts pcap to pcapng.
//!
//! Deliberately independent of tcpshut-engine: the generator must not trust
//! the code its captures are meant to test.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{bail, Context, Result};
use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;
use serde::{Deserialize, Serialize};

/// Link-layer header length of LINUX_SLL2 (etherparse only knows SLL v1).
const SLL2_LEN: usize = 20;

/// FIN and RST segments one side sent in one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub fin: u32,
    /// RST with the ACK flag (abortive close, or refusing a SYN).
    pub rst_ack: u32,
    /// RST without ACK (answer to a segment that carried an ACK).
    pub rst: u32,
}

/// One connection as seen on the wire; the client is whoever sent the SYN.
#[derive(Debug)]
pub struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub from_client: Counts,
    pub from_server: Counts,
}

struct Frame {
    linktype: DataLink,
    data: Vec<u8>,
}

fn is_pcapng(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    File::open(path)?.read_exact(&mut magic)?;
    Ok(magic == [0x0a, 0x0d, 0x0d, 0x0a])
}

fn read_frames(path: &Path) -> Result<Vec<Frame>> {
    let file = BufReader::new(File::open(path).with_context(|| path.display().to_string())?);
    let mut frames = Vec::new();
    if is_pcapng(path)? {
        let mut reader = PcapNgReader::new(file)?;
        let mut links = Vec::new();
        while let Some(block) = reader.next_block() {
            match block? {
                Block::InterfaceDescription(idb) => links.push(idb.linktype),
                Block::EnhancedPacket(epb) => frames.push(Frame {
                    linktype: *links
                        .get(epb.interface_id as usize)
                        .context("packet before its interface")?,
                    data: epb.data.into_owned(),
                }),
                _ => {}
            }
        }
    } else {
        frames = read_pcap(file)?;
    }
    Ok(frames)
}

/// Plain pcap records, read by hand: pcap-file rejects `orig_len > snaplen`,
/// which is what every frame of a `tcpdump -s 80` capture looks like.
fn read_pcap(mut file: impl Read) -> Result<Vec<Frame>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let u32_at = |at: usize, big: bool| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let magic = u32_at(0, false).context("no pcap header")?;
    let big = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => false,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
        _ => bail!("not a pcap file"),
    };
    let linktype = DataLink::from(u32_at(20, big).context("pcap header truncated")?);
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let caplen = u32_at(at + 8, big).context("record header truncated")? as usize;
        let data = bytes
            .get(at + 16..at + 16 + caplen)
            .context("record truncated")?;
        frames.push(Frame {
            linktype,
            data: data.to_vec(),
        });
        at += 16 + caplen;
    }
    Ok(frames)
}

struct Segment {
    src: SocketAddr,
    dst: SocketAddr,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
}

fn decode(frame: &Frame) -> Result<Option<Segment>> {
    let sliced = match frame.linktype {
        // Lax: a snaplen-cut frame still has its TCP header.
        DataLink::ETHERNET => LaxSlicedPacket::from_ethernet(&frame.data)
            .map_err(|e| anyhow::anyhow!("undecodable frame: {e}"))?,
        DataLink::LINUX_SLL2 if frame.data.len() >= SLL2_LEN => {
            LaxSlicedPacket::from_ip(&frame.data[SLL2_LEN..])
                .map_err(|e| anyhow::anyhow!("undecodable frame: {e}"))?
        }
        other => bail!("unexpected link type {other:?}"),
    };
    let (src, dst): (IpAddr, IpAddr) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => return Ok(None),
    };
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Ok(None);
    };
    Ok(Some(Segment {
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
    }))
}

/// Packet count and connections in order of first appearance. A SYN
/// without ACK opens a new connection even on a reused 4-tuple.
pub fn connections(path: &Path) -> Result<(usize, Vec<Conn>)> {
    let frames = read_frames(path)?;
    let mut conns: Vec<Conn> = Vec::new();
    for frame in &frames {
        let Some(seg) = decode(frame)? else { continue };
        // A SYN with FIN or RST (injected into derived captures) opens nothing.
        if seg.syn && !seg.ack && !seg.fin && !seg.rst {
            // A retransmitted SYN belongs to the connection it repeats.
            let repeat = conns.last().is_some_and(|c| {
                c.client == seg.src
                    && c.server == seg.dst
                    && c.from_client == Counts::default()
                    && c.from_server == Counts::default()
            });
            if !repeat {
                conns.push(Conn {
                    client: seg.src,
                    server: seg.dst,
                    from_client: Counts::default(),
                    from_server: Counts::default(),
                });
            }
        }
        let known = |c: &Conn| {
            (c.client, c.server) == (seg.src, seg.dst) || (c.server, c.client) == (seg.src, seg.dst)
        };
        if !conns.iter().any(known) {
            // No SYN seen (derived mid-stream captures): the client is the
            // side that did not send from the server port.
            let (client, server) = if seg.src.port() == crate::script::SERVER_PORT {
                (seg.dst, seg.src)
            } else {
                (seg.src, seg.dst)
            };
            conns.push(Conn {
                client,
                server,
                from_client: Counts::default(),
                from_server: Counts::default(),
            });
        }
        let conn = conns
            .iter_mut()
            .rev()
            .find(|c| known(c))
            .expect("ensured above");
        let counts = if conn.client == seg.src {
            &mut conn.from_client
        } else {
            &mut conn.from_server
        };
        counts.fin += seg.fin as u32;
        match (seg.rst, seg.ack) {
            (true, true) => counts.rst_ack += 1,
            (true, false) => counts.rst += 1,
            _ => {}
        }
    }
    Ok((frames.len(), conns))
}

/// Rewrites a recorded pcap as pcapng: same packets, same timestamps (kept
/// at nanosecond resolution, declared via if_tsresol).
pub fn pcap_to_pcapng(pcap: &Path, pcapng: &Path) -> Result<()> {
    let mut reader = PcapReader::new(BufReader::new(File::open(pcap)?))?;
    let header = reader.header();
    let mut writer = PcapNgWriter::new(BufWriter::new(File::create(pcapng)?))?;
    writer.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: header.datalink,
        snaplen: header.snaplen,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Borrowed(crate::netns::IFACE)),
            // pcap-file writes EPB timestamps in nanoseconds whatever the
            // IDB says, so the IDB must say 10^-9.
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    })?;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt?;
        writer.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: pkt.timestamp,
            original_len: pkt.orig_len,
            data: pkt.data,
            options: vec![],
        })?;
    }
    Ok(())
}
