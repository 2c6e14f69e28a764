//! Tests for link decoding: an IP+TCP packet is built with etherparse's
//! PacketBuilder, then wrapped by hand in each link/encapsulation header.

use etherparse::{IpNumber, PacketBuilder, TcpOptionElement, TcpOptionsIterator};

use super::*;
use crate::wire::segment::Timestamp;

const CLIENT4: [u8; 4] = [10, 0, 0, 1];
const SERVER4: [u8; 4] = [10, 0, 0, 2];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SEQ: u32 = 1000;

/// IPv4 SYN from 10.0.0.1:40000 to 10.0.0.2:80 with MSS, WS and SACK-perm.
fn ipv4_syn() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 80, SEQ, 64240)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
        ])
        .unwrap()
        .write(&mut out, &[])
        .unwrap();
    out
}

/// IPv4 FIN+ACK carrying `payload`.
fn ipv4_fin(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 80, SEQ, 502)
        .ack(77)
        .fin()
        .options(&[TcpOptionElement::MaximumSegmentSize(1400)])
        .unwrap()
        .write(&mut out, payload)
        .unwrap();
    out
}

/// IPv6 RST+ACK carrying `payload`.
fn ipv6_rst(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(40000, 443, SEQ, 0)
        .ack(5)
        .rst()
        .write(&mut out, payload)
        .unwrap();
    out
}

fn ipv4_udp() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .udp(5353, 53)
        .write(&mut out, b"query")
        .unwrap();
    out
}

// ---- link wrappers (headers etherparse cannot build) ----

fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A VLAN tag after its TPID: TCI, then the inner ether type.
fn vlan_tag(id: u16, inner: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&inner.to_be_bytes());
    out
}

fn with_prefix(prefix: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(payload);
    out
}

fn mpls_labels(labels: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let bottom = u32::from(i + 1 == labels.len());
        out.extend_from_slice(&((label << 12) | (bottom << 8) | 64).to_be_bytes());
    }
    out
}

fn pppoe_session(ppp_protocol: u16, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() + 2) as u16;
    let mut out = vec![0x11, 0x00, 0x12, 0x34];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&ppp_protocol.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn linux_sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    // packet type, ARPHRD_ETHER, address length, address (8)
    let mut out = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn linux_sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = protocol.to_be_bytes().to_vec();
    // reserved, interface index, ARPHRD_ETHER, packet type, address length
    out.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 4, 6]);
    out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    out.extend_from_slice(payload);
    out
}

fn nflog(family: u8, packet: &[u8]) -> Vec<u8> {
    let mut out = vec![family, 0, 0, 1];
    // NFULA_PACKET_HDR (type 1): 4-byte value
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&[0x08, 0x00, 1, 0]);
    // NFULA_PREFIX (type 10): "ab\0" padded to 4
    out.extend_from_slice(&7u16.to_le_bytes());
    out.extend_from_slice(&10u16.to_le_bytes());
    out.extend_from_slice(b"ab\0\0");
    // NFULA_PAYLOAD (type 9)
    out.extend_from_slice(&((packet.len() + 4) as u16).to_le_bytes());
    out.extend_from_slice(&9u16.to_le_bytes());
    out.extend_from_slice(packet);
    out
}

fn frame(link: LinkType, data: &[u8]) -> Frame<'_> {
    Frame {
        number: 7,
        ts: Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        },
        link,
        data,
        orig_len: data.len() as u32,
    }
}

fn decode_one(link: LinkType, data: &[u8]) -> (Option<Segment<'_>>, DecodeStats) {
    let mut stats = DecodeStats::default();
    let segment = decode(&frame(link, data), &mut stats);
    assert_eq!(stats.frames, 1);
    (segment, stats)
}

fn expect_segment(link: LinkType, data: &[u8]) -> Segment<'_> {
    let (segment, stats) = decode_one(link, data);
    assert_eq!(stats.tcp_segments, 1, "{stats:?}");
    segment.expect("a segment")
}

/// Asserts the segment is `ipv4_syn()` as built.
fn assert_is_syn(segment: &Segment<'_>) {
    assert_eq!(segment.src.to_string(), "10.0.0.1:40000");
    assert_eq!(segment.dst.to_string(), "10.0.0.2:80");
    assert_eq!(segment.seq, SEQ);
    assert_eq!(segment.flags, TcpFlags(TcpFlags::SYN));
    assert_eq!(segment.window, 64240);
    assert_eq!(segment.payload_len, 0);
    assert_eq!(segment.checksum_ok, Some(true));
}

#[test]
fn ethernet_ipv4_syn_fills_everything() {
    let data = ethernet(0x0800, &ipv4_syn());
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_is_syn(&segment);
    assert_eq!(segment.frame, 7);
    assert_eq!(segment.ts.nanos, 5);
    assert_eq!(
        segment.options,
        TcpOptionsSummary {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            cut: false,
        }
    );
}

#[test]
fn options_are_only_read_on_syn() {
    let data = ethernet(0x0800, &ipv4_fin(b"bye"));
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_eq!(segment.flags.to_string(), "FA");
    assert_eq!(segment.ack, 77);
    assert_eq!(segment.options, TcpOptionsSummary::default());
    assert_eq!((segment.payload_len, segment.payload), (3, &b"bye"[..]));
}

#[test]
fn sender_marks_carry_ttl_ip_id_and_header_length() {
    // PacketBuilder writes IPv4 ID 0; set one to see it read back.
    let mut ip = ipv4_fin(b"x");
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    let data = ethernet(0x0800, &ip);
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_eq!(segment.marks.ttl, 64);
    assert_eq!(segment.marks.ip_id, Some(0x1234));
    // 20 bytes plus the 4-byte MSS option.
    assert_eq!(segment.marks.tcp_header_len, 24);
    assert!(segment.marks.has_options());
    let data = ethernet(0x86dd, &ipv6_rst(b""));
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_eq!(segment.marks.ttl, 64);
    assert_eq!(segment.marks.ip_id, None);
    assert!(!segment.marks.has_options());
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A 1-byte payload makes a 59-byte frame, below Ethernet's minimum.
    let mut data = ethernet(0x0800, &ipv4_fin(b"a"));
    assert!(data.len() < 60);
    data.resize(60, 0);
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_eq!((segment.payload_len, segment.payload), (1, &b"a"[..]));
    assert_eq!(segment.checksum_ok, Some(true));
}

#[test]
fn vlan_qinq_and_9100_tags() {
    for tpids in [&[0x8100][..], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
        let mut tags = Vec::new();
        for i in 0..tpids.len() {
            let inner = tpids.get(i + 1).copied().unwrap_or(0x0800);
            tags.extend(vlan_tag(100 + i as u16, inner));
        }
        let data = ethernet(tpids[0], &with_prefix(&tags, &ipv4_syn()));
        assert_is_syn(&expect_segment(linktype::ETHERNET, &data));
    }
}

#[test]
fn mpls_label_stack_to_ipv4_and_ipv6() {
    let data = ethernet(0x8847, &with_prefix(&mpls_labels(&[16, 17]), &ipv4_syn()));
    assert_is_syn(&expect_segment(linktype::ETHERNET, &data));
    let data = ethernet(0x8848, &with_prefix(&mpls_labels(&[20]), &ipv6_rst(b"")));
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_eq!(segment.dst.to_string(), "[2001:db8::2]:443");
}

#[test]
fn mpls_after_vlan() {
    let inner = with_prefix(&mpls_labels(&[16]), &ipv4_syn());
    let data = ethernet(0x8100, &with_prefix(&vlan_tag(5, 0x8847), &inner));
    assert_is_syn(&expect_segment(linktype::ETHERNET, &data));
}

#[test]
fn pppoe_over_qinq_ipv4_and_ipv6() {
    let mut tags = vlan_tag(10, 0x8100);
    tags.extend(vlan_tag(20, 0x8864));
    let data = ethernet(
        0x88a8,
        &with_prefix(&tags, &pppoe_session(0x0021, &ipv4_syn())),
    );
    assert_is_syn(&expect_segment(linktype::ETHERNET, &data));

    let data = ethernet(0x8864, &pppoe_session(0x0057, &ipv6_rst(b"x")));
    let segment = expect_segment(linktype::ETHERNET, &data);
    assert_eq!(segment.payload_len, 1);
    // PPP LCP is not IP.
    let data = ethernet(0x8864, &pppoe_session(0xc021, &[1, 1, 0, 4]));
    assert_eq!(decode_one(linktype::ETHERNET, &data).1.non_tcp, 1);
}

#[test]
fn cisco_fabricpath_inner_ethernet() {
    let inner = ethernet(0x0800, &ipv4_syn());
    let data = ethernet(0x8903, &with_prefix(&[0, 0], &inner));
    assert_is_syn(&expect_segment(linktype::ETHERNET, &data));
}

#[test]
fn linux_cooked_v1_and_v2() {
    assert_is_syn(&expect_segment(
        linktype::LINUX_SLL,
        &linux_sll(0x0800, &ipv4_syn()),
    ));
    assert_is_syn(&expect_segment(
        linktype::LINUX_SLL2,
        &linux_sll2(0x0800, &ipv4_syn()),
    ));
    let data = linux_sll2(0x86dd, &ipv6_rst(b""));
    let segment = expect_segment(linktype::LINUX_SLL2, &data);
    assert_eq!(segment.flags.to_string(), "RA");
    // Protocol 0x0004 is Linux's 802.2 LLC, not an ether type.
    let (_, stats) = decode_one(linktype::LINUX_SLL, &linux_sll(0x0004, &ipv4_syn()));
    assert_eq!(stats.non_tcp, 1);
}

/// A cooked capture says whether a packet came in or went out (a router's
/// `-i any`: a forwarded packet both ways, a dropped one only in, one the
/// router made only out); other links do not.
#[test]
fn cooked_captures_tell_the_direction() {
    let mut incoming = linux_sll2(0x0800, &ipv4_syn());
    let outgoing = expect_segment(linktype::LINUX_SLL2, &incoming)
        .marks
        .outgoing;
    assert_eq!(outgoing, Some(true), "packet type 4, PACKET_OUTGOING");
    incoming[10] = 0; // PACKET_HOST
    let came_in = expect_segment(linktype::LINUX_SLL2, &incoming)
        .marks
        .outgoing;
    assert_eq!(came_in, Some(false));
    let mut v1 = linux_sll(0x0800, &ipv4_syn());
    assert_eq!(
        expect_segment(linktype::LINUX_SLL, &v1).marks.outgoing,
        Some(false)
    );
    v1[1] = 4;
    assert_eq!(
        expect_segment(linktype::LINUX_SLL, &v1).marks.outgoing,
        Some(true)
    );
    let frame = ethernet(0x0800, &ipv4_syn());
    assert_eq!(
        expect_segment(linktype::ETHERNET, &frame).marks.outgoing,
        None
    );
}

#[test]
fn raw_ip_link_types() {
    for link in [
        linktype::DLT_RAW,
        linktype::DLT_RAW_OPENBSD,
        linktype::RAW,
        linktype::IPV4,
    ] {
        assert_is_syn(&expect_segment(link, &ipv4_syn()));
    }
    for link in [linktype::RAW, linktype::IPV6] {
        let data = ipv6_rst(b"data");
        let segment = expect_segment(link, &data);
        assert_eq!(segment.src.to_string(), "[2001:db8::1]:40000");
        assert_eq!(segment.payload_len, 4);
        assert_eq!(segment.checksum_ok, Some(true));
    }
}

#[test]
fn loopback_family_in_either_byte_order() {
    for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        assert_is_syn(&expect_segment(
            linktype::NULL,
            &with_prefix(&family, &ipv4_syn()),
        ));
    }
    // AF_INET6 is 30 on macOS, 28 on FreeBSD, 24 on OpenBSD/NetBSD.
    for af_inet6 in [24u32, 28, 30] {
        let data = with_prefix(&af_inet6.to_le_bytes(), &ipv6_rst(b""));
        expect_segment(linktype::NULL, &data);
    }
    let data = with_prefix(&2u32.to_be_bytes(), &ipv4_syn());
    assert_is_syn(&expect_segment(linktype::LOOP, &data));
    // AF_APPLETALK
    let (_, stats) = decode_one(
        linktype::NULL,
        &with_prefix(&16u32.to_le_bytes(), &ipv4_syn()),
    );
    assert_eq!(stats.non_tcp, 1);
}

#[test]
fn nflog_payload_attribute() {
    assert_is_syn(&expect_segment(linktype::NFLOG, &nflog(2, &ipv4_syn())));
    expect_segment(linktype::NFLOG, &nflog(10, &ipv6_rst(b"")));
    let mut no_payload = nflog(2, &ipv4_syn());
    no_payload.truncate(4 + 8 + 8);
    assert_eq!(decode_one(linktype::NFLOG, &no_payload).1.non_tcp, 1);
}

/// Inserts an 8-byte IPv6 extension header of type `kind` after the fixed
/// header; `body` is its 6 bytes after next-header and length.
fn with_ipv6_extension(packet: &[u8], kind: u8, body: [u8; 6]) -> Vec<u8> {
    let mut out = packet[..40].to_vec();
    let next = out[6];
    out[6] = kind;
    let payload_len = u16::from_be_bytes([out[4], out[5]]) + 8;
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(&[next, 0]);
    out.extend_from_slice(&body);
    out.extend_from_slice(&packet[40..]);
    out
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    // Hop-by-hop with a PadN option.
    let packet = with_ipv6_extension(&ipv6_rst(b"hi"), 0, [1, 4, 0, 0, 0, 0]);
    let segment = expect_segment(linktype::RAW, &packet);
    assert_eq!(segment.payload_len, 2);
    assert_eq!(segment.checksum_ok, Some(true));
}

#[test]
fn fragments_are_counted_not_decoded() {
    let mut more_fragments = ipv4_fin(b"abcdefgh");
    more_fragments[6] |= 0x20;
    let mut later_fragment = ipv4_fin(b"abcdefgh");
    later_fragment[7] = 0x10;
    // IPv6 fragment header, offset 0, M flag set.
    let ipv6_fragment = with_ipv6_extension(&ipv6_rst(b"x"), 44, [0, 1, 0, 0, 0, 9]);
    for packet in [more_fragments, later_fragment, ipv6_fragment] {
        let (segment, stats) = decode_one(linktype::RAW, &packet);
        assert!(segment.is_none());
        assert_eq!(stats.ip_fragments, 1, "{stats:?}");
    }
}

#[test]
fn non_tcp_frames_are_counted() {
    let mut arp = ethernet(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    let udp = ethernet(0x0800, &ipv4_udp());
    let llc = ethernet(0x0026, &[0x42, 0x42, 3]);
    for data in [arp, udp, llc] {
        let (segment, stats) = decode_one(linktype::ETHERNET, &data);
        assert!(segment.is_none());
        assert_eq!(stats.non_tcp, 1, "{stats:?}");
    }
}

#[test]
fn unknown_link_types_are_counted() {
    let data = ipv4_syn();
    let (segment, stats) = decode_one(LinkType(147), &data);
    assert!(segment.is_none());
    assert_eq!(stats.unknown_link, 1);
}

#[test]
fn frames_cut_before_the_window_are_truncated() {
    let full = ethernet(0x0800, &ipv4_syn());
    // Cut just before the window, inside the numbers, inside IP, inside
    // Ethernet.
    for len in [14 + 20 + 15, 14 + 20 + 10, 14 + 12, 10] {
        let (segment, stats) = decode_one(linktype::ETHERNET, &full[..len]);
        assert!(segment.is_none(), "cut at {len}");
        assert_eq!(stats.truncated, 1, "cut at {len}: {stats:?}");
    }
    // Empty frames of every link type.
    for link in [
        linktype::NULL,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        linktype::NFLOG,
    ] {
        assert_eq!(decode_one(link, &[]).1.truncated, 1, "{link:?}");
    }
    let mpls_cut = ethernet(0x8847, &mpls_labels(&[16])[..3]);
    assert_eq!(decode_one(linktype::ETHERNET, &mpls_cut).1.truncated, 1);
}

#[test]
fn cut_options_leave_the_fixed_header_usable() {
    // tcpdump -s 54 (Ethernet, IPv4): the 20-byte fixed header only; -s 64:
    // part of the options. The SYN's 12 bytes of options are cut either way.
    let full = ethernet(0x0800, &ipv4_syn());
    for len in [54, 14 + 20 + 16, 64] {
        let (segment, stats) = decode_one(linktype::ETHERNET, &full[..len]);
        let segment = segment.unwrap_or_else(|| panic!("cut at {len}: {stats:?}"));
        assert_eq!((segment.src.port(), segment.dst.port()), (40000, 80));
        assert_eq!((segment.seq, segment.window), (SEQ, 64240));
        assert!(segment.flags.syn() && !segment.flags.ack());
        assert!(segment.options.cut, "cut at {len}");
        assert_eq!(segment.options.window_scale, None);
        assert_eq!(segment.checksum_ok, None);
        assert_eq!(
            (stats.options_cut, stats.payload_cut, stats.truncated),
            (1, 0, 0)
        );
    }
    // A FIN carrying 1000 bytes, cut inside its options: payload length
    // from the IP header, nothing captured of it.
    let fin = ethernet(0x0800, &ipv4_fin(&[9; 1000]));
    let (segment, stats) = decode_one(linktype::ETHERNET, &fin[..56]);
    let segment = segment.expect("decoded");
    assert_eq!((segment.payload_len, segment.payload.len()), (1000, 0));
    assert_eq!(segment.end_seq(), SEQ + 1001);
    assert_eq!((stats.options_cut, stats.payload_cut), (1, 1));
    // IPv6, tcpdump -s 74: Ethernet, IPv6 and the fixed TCP header.
    let rst = ethernet(0x86dd, &ipv6_rst(&[]));
    let segment = expect_segment(linktype::ETHERNET, &rst[..74]);
    assert!(segment.flags.rst() && !segment.options.cut);
    // A data offset below 5 is no header at all.
    let mut bad = ethernet(0x0800, &ipv4_syn());
    bad[14 + 20 + 12] = 0x40;
    assert_eq!(decode_one(linktype::ETHERNET, &bad[..60]).1.truncated, 1);
}

#[test]
fn snaplen_cut_segment_keeps_wire_length() {
    let payload = [0x55u8; 1000];
    let full = ethernet(0x0800, &ipv4_fin(&payload));
    let tcp_header_end = 14 + 20 + 24;
    let cut = &full[..tcp_header_end + 100];
    let segment = expect_segment(linktype::ETHERNET, cut);
    assert_eq!(segment.payload_len, 1000);
    assert_eq!(segment.payload, &payload[..100]);
    assert_eq!(segment.checksum_ok, None);
    assert_eq!(segment.end_seq(), SEQ + 1001);

    let data = ipv6_rst(&payload);
    let segment = expect_segment(linktype::RAW, &data[..40 + 20 + 10]);
    assert_eq!((segment.payload_len, segment.payload.len()), (1000, 10));
}

#[test]
fn bad_checksum_is_counted_and_segment_kept() {
    let mut data = ethernet(0x0800, &ipv4_fin(b"hello"));
    let last = data.len() - 1;
    data[last] ^= 0xff;
    let (segment, stats) = decode_one(linktype::ETHERNET, &data);
    assert_eq!(segment.unwrap().checksum_ok, Some(false));
    assert_eq!((stats.tcp_segments, stats.bad_checksum), (1, 1));
}

#[test]
fn stats_accumulate_over_frames() {
    let mut stats = DecodeStats::default();
    let syn = ethernet(0x0800, &ipv4_syn());
    let udp = ethernet(0x0800, &ipv4_udp());
    for data in [&syn, &udp, &syn] {
        decode(&frame(linktype::ETHERNET, data), &mut stats);
    }
    decode(&frame(LinkType(9999), &syn), &mut stats);
    assert_eq!(
        stats,
        DecodeStats {
            frames: 4,
            tcp_segments: 2,
            non_tcp: 1,
            unknown_link: 1,
            ..Default::default()
        }
    );
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const LINKS: [LinkType; 12] = [
        linktype::NULL,
        linktype::ETHERNET,
        linktype::DLT_RAW,
        linktype::DLT_RAW_OPENBSD,
        linktype::RAW,
        linktype::LOOP,
        linktype::LINUX_SLL,
        linktype::IPV4,
        linktype::IPV6,
        linktype::NFLOG,
        linktype::LINUX_SLL2,
        LinkType(42),
    ];

    proptest! {
        /// Any bytes, any link type: no panic, and exactly one counter moves.
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), link in 0..LINKS.len()) {
            let (segment, stats) = decode_one(LINKS[link], &data);
            let outcomes = stats.tcp_segments + stats.non_tcp + stats.truncated
                + stats.ip_fragments + stats.unknown_link;
            prop_assert_eq!(outcomes, 1);
            prop_assert_eq!(segment.is_some(), stats.tcp_segments == 1);
        }

        /// Any cut of a real segment's frame: no panic, and a segment comes
        /// out exactly when the TCP fields up to the window are there.
        #[test]
        fn cuts_of_a_frame(len in 0usize..80) {
            let full = ethernet(0x0800, &ipv4_fin(&[7; 20]));
            let len = len.min(full.len());
            let (segment, _) = decode_one(linktype::ETHERNET, &full[..len]);
            prop_assert_eq!(segment.is_some(), len >= 14 + 20 + 16);
            if let Some(segment) = segment {
                prop_assert_eq!(segment.payload_len, 20);
            }
        }
    }
}

/// `inner` in an IPv4 packet (10.9.0.1 to 10.9.0.2) of `protocol`.
fn outer_ipv4(protocol: IpNumber, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
        .write(&mut out, protocol, inner)
        .unwrap();
    out
}

/// `payload` in a UDP datagram to `port`, in IPv4.
fn outer_udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
        .udp(50_000, port)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn vxlan(vni: u32, inner_ethernet: &[u8]) -> Vec<u8> {
    let mut header = vec![0x08, 0, 0, 0];
    header.extend_from_slice(&(vni << 8).to_be_bytes());
    outer_udp(4789, &with_prefix(&header, inner_ethernet))
}

#[test]
fn vxlan_carries_its_vni_and_outer_endpoints() {
    let packet = vxlan(0x00ab_cdef, &ethernet(0x0800, &ipv4_syn()));
    let segment = expect_segment(linktype::RAW, &packet);
    assert_is_syn(&segment);
    assert_eq!(
        segment.tunnel().to_string(),
        "vxlan vni=11259375 10.9.0.1<>10.9.0.2"
    );
}

#[test]
fn gre_routing_entries_are_stepped_over() {
    // Flags R; protocol IPv4; checksum/offset; one SRE (family 1, length
    // 4) and the null SRE.
    let mut header = vec![0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0];
    header.extend_from_slice(&[0x00, 0x01, 0x00, 0x04, 1, 2, 3, 4, 0, 0, 0, 0]);
    let packet = outer_ipv4(IpNumber::GRE, &with_prefix(&header, &ipv4_syn()));
    let segment = expect_segment(linktype::RAW, &packet);
    assert_eq!(
        segment.tunnel().layers()[0].kind,
        crate::wire::tunnel::TunnelKind::Gre
    );
}

#[test]
fn tunnel_header_errors_carry_their_numbers() {
    use crate::wire::tunnel::TunnelKind;
    let ports = TunnelPorts::default();
    let outer = (IpAddr::from(CLIENT4), IpAddr::from(SERVER4));
    let udp = |port: u16, payload: &[u8]| {
        let mut datagram = vec![0xc3, 0x50];
        datagram.extend_from_slice(&port.to_be_bytes());
        datagram.extend_from_slice(&[0, 0, 0, 0]);
        datagram.extend_from_slice(payload);
        datagram
    };
    let cases: [(IpNumber, Vec<u8>, TunnelError); 5] = [
        (
            IpNumber::UDP,
            udp(4789, &[0x08, 0, 0]),
            TunnelError::Truncated {
                kind: TunnelKind::Vxlan,
                needed: 8,
                available: 3,
            },
        ),
        (
            IpNumber::UDP,
            udp(6081, &[0x40, 0, 0x65, 0x58, 0, 0, 1, 0]),
            TunnelError::Version {
                kind: TunnelKind::Geneve,
                version: 1,
            },
        ),
        (
            IpNumber::GRE,
            vec![0x00, 0x01, 0x88, 0x0b],
            TunnelError::Version {
                kind: TunnelKind::Gre,
                version: 1,
            },
        ),
        (
            IpNumber::UDP,
            // GTP-U echo request: no user packet.
            udp(2152, &[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
            TunnelError::Payload {
                kind: TunnelKind::GtpU,
                value: 1,
            },
        ),
        (
            IpNumber::GRE,
            // ERSPAN III without room for its 12-byte header.
            vec![0x00, 0x00, 0x22, 0xeb, 0x20, 0, 0, 6, 0, 0],
            TunnelError::Truncated {
                kind: TunnelKind::ErspanIII,
                needed: 12,
                available: 6,
            },
        ),
    ];
    for (protocol, payload, want) in cases {
        let got = tunnels::decapsulate(protocol, &payload, outer, &ports);
        assert_eq!(got.err(), Some(want), "{want}");
    }
}

#[test]
fn nesting_deeper_than_the_bound_is_counted_not_decoded() {
    let mut packet = ipv4_syn();
    for _ in 0..crate::wire::tunnel::MAX_TUNNEL_DEPTH {
        packet = outer_ipv4(IpNumber::IPV4, &packet);
    }
    assert_eq!(
        expect_segment(linktype::RAW, &packet)
            .tunnel()
            .layers()
            .len(),
        3
    );
    let deeper = outer_ipv4(IpNumber::IPV4, &packet);
    let (segment, stats) = decode_one(linktype::RAW, &deeper);
    assert!(segment.is_none());
    assert_eq!(stats.tunnel_too_deep, 1, "{stats:?}");
}

#[test]
fn a_cut_tunnel_keeps_what_it_could_read() {
    // The outer packet cut inside the inner TCP header's options: the
    // fixed header is there, so the segment is decoded, options cut.
    let packet = vxlan(5, &ethernet(0x0800, &ipv4_syn()));
    let cut = &packet[..packet.len() - 8];
    let segment = expect_segment(linktype::RAW, cut);
    assert!(segment.options.cut);
    // Cut inside the VXLAN header: truncated.
    let (segment, stats) = decode_one(linktype::RAW, &packet[..20 + 8 + 4]);
    assert!(segment.is_none());
    assert_eq!(stats.truncated, 1, "{stats:?}");
}

#[test]
fn teredo_is_found_by_its_shape_on_any_port() {
    let mut inner = Vec::new();
    let teredo_client = [
        0x20, 0x01, 0, 0, 0x41, 0x37, 0x9e, 0x50, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    PacketBuilder::ipv6(teredo_client, SERVER6, 64)
        .tcp(40000, 80, SEQ, 100)
        .syn()
        .write(&mut inner, &[])
        .unwrap();
    let packet = outer_udp(32_900, &inner);
    let segment = expect_segment(linktype::RAW, &packet);
    assert_eq!(
        segment.tunnel().layers()[0].kind,
        crate::wire::tunnel::TunnelKind::Teredo
    );
    // Not a Teredo address: an IPv6 packet in UDP on another port is not taken.
    let mut other = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(40000, 80, SEQ, 100)
        .syn()
        .write(&mut other, &[])
        .unwrap();
    let packet = outer_udp(32_900, &other);
    let (segment, stats) = decode_one(linktype::RAW, &packet);
    assert!(segment.is_none());
    assert_eq!(stats.non_tcp, 1);
}

#[test]
fn a_fragmented_tunnel_packet_is_handed_on_at_its_last_fragment() {
    let whole = outer_udp(2152, &{
        let inner = ipv4_fin(&[7; 600]);
        let mut gtp = vec![0x30, 0xff];
        gtp.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        gtp.extend_from_slice(&[0, 0, 0, 9]);
        gtp.extend_from_slice(&inner);
        gtp
    });
    // Split after 200 bytes of IP payload (25 blocks of 8), ID 0x1234.
    let header = &whole[..20];
    let mut first = header.to_vec();
    first[4..6].copy_from_slice(&[0x12, 0x34]);
    first[6] = 0x20;
    first[2..4].copy_from_slice(&(220u16).to_be_bytes());
    first.extend_from_slice(&whole[20..220]);
    let mut last = header.to_vec();
    last[4..6].copy_from_slice(&[0x12, 0x34]);
    last[6..8].copy_from_slice(&25u16.to_be_bytes());
    last[2..4].copy_from_slice(&((20 + whole.len() - 220) as u16).to_be_bytes());
    last.extend_from_slice(&whole[220..]);
    let mut stats = DecodeStats::default();
    let mut fragments = Fragments::new();
    let options = DecodeOptions::default();
    let held = decode_reassembling(
        &frame(linktype::RAW, &first),
        &mut stats,
        &mut fragments,
        options,
    );
    assert!(held.is_none());
    let mut at_last = frame(linktype::RAW, &last);
    at_last.number = 8;
    let segment = decode_reassembling(&at_last, &mut stats, &mut fragments, options)
        .expect("the segment, at the last fragment");
    assert_eq!((segment.frame, segment.payload_len), (8, 600));
    assert!(segment.reassembled && segment.payload_captured());
    assert_eq!(
        (stats.tcp_segments, stats.ip_fragments, stats.payload_cut),
        (1, 1, 0)
    );
    // Without the first fragment's state (one frame at a time), both are fragments.
    let mut alone = DecodeStats::default();
    decode(&frame(linktype::RAW, &first), &mut alone);
    decode(&frame(linktype::RAW, &last), &mut alone);
    assert_eq!((alone.tcp_segments, alone.ip_fragments), (0, 2));
}

/// IPv4 FIN+ACK with a 4-byte IP option (IHL 6), carrying `payload`.
fn ipv4_with_ip_option(payload: &[u8]) -> Vec<u8> {
    let mut ip = ipv4_fin(payload);
    // Router Alert (RFC 2113) after the fixed header; total length and
    // IHL grow by 4 (the checksum is not checked by the decoder).
    ip.splice(20..20, [0x94, 0x04, 0, 0]);
    ip[0] = 0x46;
    let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip
}

/// The shortcut for plain Ethernet/IPv4 gives exactly the IP fields the
/// general path gives, or leaves the frame to it: checked on whole
/// frames, on every cut, and with each header byte changed (ether type,
/// version, IHL, lengths, fragment bits, protocol).
#[test]
fn plain_ipv4_shortcut_agrees_with_the_general_path() {
    let mut bases = vec![
        ethernet(0x0800, &ipv4_syn()),
        ethernet(0x0800, &ipv4_fin(b"bye")),
        ethernet(0x0800, &ipv4_udp()),
        ethernet(0x0800, &ipv4_with_ip_option(b"data")),
    ];
    let mut padded = ethernet(0x0800, &ipv4_fin(b"a"));
    padded.resize(60, 0);
    bases.push(padded);
    let mut variants = Vec::new();
    for base in &bases {
        variants.push(base.clone());
        variants.extend((0..base.len()).map(|len| base[..len].to_vec()));
        for at in 12..base.len().min(14 + 24) {
            for value in [0x00, 0x01, 0x05, 0x20, 0x33, 0x40, 0x45, 0x4f, 0x80, 0xff] {
                let mut changed = base.clone();
                changed[at] = value;
                variants.push(changed);
            }
        }
    }
    let (mut shortcut, mut general_only) = (0, 0);
    for data in &variants {
        let frame = frame(linktype::ETHERNET, data);
        let general = ip_packet(frame.link, frame.data).and_then(IpFields::of);
        match plain_ipv4(&frame) {
            Some(fast) => {
                assert_eq!(Ok(fast), general, "frame {data:02x?}");
                shortcut += 1;
            }
            None => general_only += u32::from(general.is_ok()),
        }
    }
    // Every base takes it but the one with an IP option.
    for (i, base) in bases.iter().enumerate() {
        let plain = plain_ipv4(&frame(linktype::ETHERNET, base));
        assert_eq!(plain.is_some(), i != 3, "base {i}");
    }
    // Both paths were taken by frames the general path decodes.
    assert!(
        shortcut > 100 && general_only > 10,
        "{shortcut} {general_only}"
    );
    // Other links never take the shortcut.
    let raw = ipv4_syn();
    assert!(plain_ipv4(&frame(linktype::RAW, &raw)).is_none());
}

/// A SYN's options as etherparse's options iterator gives them: what
/// `syn_options`, which walks them by hand, is held to.
fn syn_options_by_etherparse(options: &[u8]) -> TcpOptionsSummary {
    let mut summary = TcpOptionsSummary::default();
    for option in TcpOptionsIterator::from_slice(options).map_while(Result::ok) {
        match option {
            TcpOptionElement::MaximumSegmentSize(mss) => summary.mss = Some(mss),
            TcpOptionElement::WindowScale(shift) => summary.window_scale = Some(shift),
            TcpOptionElement::SelectiveAcknowledgementPermitted => summary.sack_permitted = true,
            _ => {}
        }
    }
    summary
}

#[test]
fn syn_options_walk_as_etherparse_walks() {
    let mut cases: Vec<Vec<u8>> = vec![
        // Linux: MSS, SACK permitted, timestamps, NOP, window scale.
        vec![
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ],
        // Windows: MSS, NOP, WS, NOP, NOP, SACK permitted.
        vec![2, 4, 5, 180, 1, 3, 3, 8, 1, 1, 4, 2],
        // A kind the walk does not know (MPTCP) before the window scale.
        vec![2, 4, 5, 180, 30, 4, 0, 0, 3, 3, 7, 0],
        // The end of the list before the window scale.
        vec![2, 4, 5, 180, 0, 0, 3, 3, 7, 0],
        // Lengths not their kind's, or past the header.
        vec![2, 5, 5, 180, 0, 3, 3, 7],
        vec![3, 3, 7, 2, 4, 5],
        vec![3, 2, 7, 4, 2],
        vec![4, 3, 0, 2, 4, 1, 0],
        vec![5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 3, 3, 9],
        vec![5, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 3, 3, 9],
        vec![5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 3, 3, 9],
        vec![5],
        vec![8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 2, 4, 1, 0],
        vec![8, 9, 0, 0, 0, 1, 0, 0, 0, 2, 2, 4, 1, 0],
        vec![2],
        vec![2, 4],
        vec![1, 1, 1],
        vec![],
    ];
    // And a few thousand lists drawn from the kinds and lengths the walk
    // tells apart (xorshift, so every run draws the same).
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bytes = [0u8, 1, 2, 3, 4, 5, 8, 2, 3, 4, 10, 18, 26, 34, 30, 255];
    for _ in 0..5000 {
        let len = (next() % 41) as usize;
        cases.push((0..len).map(|_| bytes[(next() % 16) as usize]).collect());
    }
    for options in cases {
        assert_eq!(
            syn_options(&options),
            syn_options_by_etherparse(&options),
            "{options:?}"
        );
    }
}
