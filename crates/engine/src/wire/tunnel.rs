//! A segment's tunnel: the encapsulations it came through (VXLAN, Geneve,
//! GRE, ERSPAN, IP-in-IP and its IPv6 kin, Teredo, GTP-U), outermost
//! first. It is part of a connection's identity, so that two tenants'
//! identical inner 4-tuples in different VNIs (or GRE keys, or between
//! different tunnel endpoints) stay two connections.
//!
//! Fixed-size and `Copy` (no allocation per segment); an untunnelled
//! segment's tunnel is empty, and hashing or comparing it costs a byte.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

/// How many tunnels may nest (Zeek's `Tunnel::max_depth` is 2; one more
/// leaves room for a mirror session around a tenant's overlay). A frame
/// nested deeper is counted (`tunnel_too_deep`) and not decoded, so
/// crafted input cannot make decoding loop.
pub const MAX_TUNNEL_DEPTH: usize = 3;

/// The kind of one encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    /// VXLAN (RFC 7348), id: the VNI.
    Vxlan,
    /// Geneve (RFC 8926), id: the VNI.
    Geneve,
    /// GRE (RFC 2784, 2890), id: the key when present.
    Gre,
    /// ERSPAN type II in GRE, id: the session ID.
    ErspanII,
    /// ERSPAN type III in GRE, id: the session ID.
    ErspanIII,
    /// IPv4 in IPv4 (RFC 2003).
    IpInIp,
    /// IPv6 in IPv4 (RFC 4213).
    SixInFour,
    /// IPv4 in IPv6 (RFC 2473).
    FourInSix,
    /// IPv6 in IPv6 (RFC 2473).
    SixInSix,
    /// Teredo, IPv6 in UDP (RFC 4380).
    Teredo,
    /// GTP-U (3GPP TS 29.281); see [`TunnelLayer::id`] for the TEID.
    GtpU,
}

impl TunnelKind {
    /// Its name in the outputs.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanII => "erspan-ii",
            TunnelKind::ErspanIII => "erspan-iii",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::SixInFour => "6in4",
            TunnelKind::FourInSix => "4in6",
            TunnelKind::SixInSix => "6in6",
            TunnelKind::Teredo => "teredo",
            TunnelKind::GtpU => "gtp-u",
        }
    }

    /// What its header's identifier is called.
    pub fn id_name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan | TunnelKind::Geneve => "vni",
            TunnelKind::Gre => "key",
            TunnelKind::ErspanII | TunnelKind::ErspanIII => "session",
            TunnelKind::GtpU => "teid",
            _ => "id",
        }
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One encapsulation: its kind, identifier and outer endpoints (its
/// identity), and the outer UDP ports (not part of it).
#[derive(Clone, Copy, Debug)]
pub struct TunnelLayer {
    pub kind: TunnelKind,
    /// The VNI (VXLAN, Geneve), GRE key, or ERSPAN session ID, when the
    /// header carries one. Not the GTP-U TEID: each direction carries the
    /// TEID its receiver chose (TS 29.281 5.1), so a connection's two
    /// directions carry two (`teids`).
    pub id: Option<u32>,
    /// GTP-U: the TEID each of `ends` chose, carried by the packets sent
    /// to it, as far as seen (a segment's layer has one). Not hashed with
    /// the identity, since one packet shows one of the two; the flow table
    /// keeps connections whose TEIDs disagree apart ([`Tunnel::teids_agree`]).
    pub teids: [Option<u32>; 2],
    /// The outer IP addresses, the lower first: both directions of a
    /// connection (A to B inside B to A outside) share them.
    pub ends: [IpAddr; 2],
    /// The UDP ports of `ends`, in their order (0 for a tunnel not over
    /// UDP). Not part of the identity: a VXLAN sender picks its source
    /// port per flow, a GTP-U peer may answer from another port; Zeek's
    /// model of the connection compares them (its `EncapsulatingConn` of
    /// a UDP tunnel is the outer UDP connection).
    pub ports: [u16; 2],
}

impl TunnelLayer {
    /// A layer not over UDP, from the outer addresses in either order.
    pub fn new(kind: TunnelKind, id: Option<u32>, a: IpAddr, b: IpAddr) -> Self {
        TunnelLayer::over_udp(kind, id, (a, 0), (b, 0))
    }

    /// A layer from the outer addresses and UDP ports, in either order.
    pub fn over_udp(kind: TunnelKind, id: Option<u32>, a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        TunnelLayer {
            kind,
            id,
            teids: [None; 2],
            ends: [low.0, high.0],
            ports: [low.1, high.1],
        }
    }

    /// The layer with `teid`, the TEID the end `receiver` (address and
    /// port) chose, which a packet sent to it carries.
    pub fn with_teid_to(mut self, receiver: (IpAddr, u16), teid: u32) -> Self {
        let to = usize::from(receiver != (self.ends[0], self.ports[0]));
        self.teids[to] = Some(teid);
        self
    }

    /// Whether no end's TEID differs between the two layers (an end whose
    /// TEID one of them has not seen agrees).
    fn teids_agree(&self, other: &TunnelLayer) -> bool {
        self.teids.iter().zip(&other.teids).all(|pair| match pair {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
    }

    /// Kind, identifier and endpoints: what tells tunnels apart.
    fn identity(&self) -> (TunnelKind, Option<u32>, [IpAddr; 2]) {
        (self.kind, self.id, self.ends)
    }

    /// The same identity over the same outer UDP connection.
    fn same_outer_connection(&self, other: &TunnelLayer) -> bool {
        self == other && self.ports == other.ports
    }
}

/// The identity only (see [`TunnelLayer::ports`]).
impl PartialEq for TunnelLayer {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for TunnelLayer {}

impl Hash for TunnelLayer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl fmt::Display for TunnelLayer {
    /// `vxlan vni=77 10.0.0.1<>10.0.0.2`, `gtp-u teids=4097/8194 ...` (the
    /// TEID each end chose, `-` unseen; no comma: it fits a CSV field).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(id) = self.id {
            write!(f, " {}={id}", self.kind.id_name())?;
        }
        if self.teids.iter().any(Option::is_some) {
            let teid = |t: Option<u32>| t.map_or_else(|| "-".to_string(), |t| t.to_string());
            write!(f, " teids={}/{}", teid(self.teids[0]), teid(self.teids[1]))?;
        }
        write!(f, " {}<>{}", self.ends[0], self.ends[1])
    }
}

/// As JSON: `{"kind": "vxlan", "vni": 77, "endpoints": ["10.0.0.1", "10.0.0.2"]}`
/// (the identifier under its own name, absent when the header has none;
/// GTP-U's `"teids": [A, B]`, the TEID each endpoint chose, null unseen).
impl serde::Serialize for TunnelLayer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", self.kind.name())?;
        if let Some(id) = self.id {
            map.serialize_entry(self.kind.id_name(), &id)?;
        }
        if self.teids.iter().any(Option::is_some) {
            map.serialize_entry("teids", &self.teids)?;
        }
        map.serialize_entry("endpoints", &self.ends)?;
        map.end()
    }
}

/// The tunnels a segment came through, outermost first; empty for most.
#[derive(Clone, Copy, Debug)]
pub struct Tunnel {
    layers: [TunnelLayer; MAX_TUNNEL_DEPTH],
    depth: u8,
}

/// The unused slots' filler.
const NO_LAYER: TunnelLayer = TunnelLayer {
    kind: TunnelKind::IpInIp,
    id: None,
    teids: [None; 2],
    ends: [IpAddr::V4(Ipv4Addr::UNSPECIFIED); 2],
    ports: [0; 2],
};

/// The nesting is deeper than [`MAX_TUNNEL_DEPTH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep;

impl Tunnel {
    /// No tunnel.
    pub const NONE: Tunnel = Tunnel {
        layers: [NO_LAYER; MAX_TUNNEL_DEPTH],
        depth: 0,
    };

    /// The layers, outermost first.
    pub fn layers(&self) -> &[TunnelLayer] {
        &self.layers[..usize::from(self.depth)]
    }

    pub fn is_none(&self) -> bool {
        self.depth == 0
    }

    /// The same tunnels over the same outer UDP connections: what Zeek
    /// calls the same encapsulation (`EncapsulationStack`'s `==`).
    pub fn same_encapsulation(&self, other: &Tunnel) -> bool {
        self.depth == other.depth
            && self
                .layers()
                .iter()
                .zip(other.layers())
                .all(|(a, b)| a.same_outer_connection(b))
    }

    /// Whether a layer carries a GTP-U TEID (which the flow table then
    /// compares, [`Tunnel::teids_agree`]).
    pub fn carries_teid(&self) -> bool {
        self.layers()
            .iter()
            .any(|l| l.teids.iter().any(Option::is_some))
    }

    /// Whether the TEIDs of the same tunnels agree: no end chose two
    /// (the tunnels' identities are equal, as the flow table compares).
    pub fn teids_agree(&self, other: &Tunnel) -> bool {
        self.layers()
            .iter()
            .zip(other.layers())
            .all(|(a, b)| a.teids_agree(b))
    }

    /// Takes the TEIDs `seen` has that these layers have not seen yet.
    pub fn learn_teids(&mut self, seen: &Tunnel) {
        let depth = usize::from(self.depth);
        for (mine, theirs) in self.layers[..depth].iter_mut().zip(seen.layers()) {
            for (a, b) in mine.teids.iter_mut().zip(theirs.teids) {
                if a.is_none() {
                    *a = b;
                }
            }
        }
    }

    /// Adds the next layer inside.
    pub fn push(&mut self, layer: TunnelLayer) -> Result<(), TooDeep> {
        let slot = self
            .layers
            .get_mut(usize::from(self.depth))
            .ok_or(TooDeep)?;
        *slot = layer;
        self.depth += 1;
        Ok(())
    }
}

impl Default for Tunnel {
    fn default() -> Self {
        Tunnel::NONE
    }
}

/// Only the layers in use count.
impl PartialEq for Tunnel {
    fn eq(&self, other: &Self) -> bool {
        self.layers() == other.layers()
    }
}

impl Eq for Tunnel {}

impl Hash for Tunnel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.layers().hash(state);
    }
}

impl fmt::Display for Tunnel {
    /// The layers outermost first, joined by ` / `; empty without.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, layer) in self.layers().iter().enumerate() {
            if i > 0 {
                f.write_str(" / ")?;
            }
            write!(f, "{layer}")?;
        }
        Ok(())
    }
}

/// As JSON: the list of layers, outermost first.
impl serde::Serialize for Tunnel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.layers())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vxlan(vni: u32, a: &str, b: &str) -> TunnelLayer {
        TunnelLayer::new(
            TunnelKind::Vxlan,
            Some(vni),
            a.parse().unwrap(),
            b.parse().unwrap(),
        )
    }

    #[test]
    fn both_directions_share_a_layer() {
        assert_eq!(
            vxlan(7, "10.0.0.1", "10.0.0.2"),
            vxlan(7, "10.0.0.2", "10.0.0.1")
        );
        assert_ne!(
            vxlan(7, "10.0.0.1", "10.0.0.2"),
            vxlan(8, "10.0.0.1", "10.0.0.2")
        );
    }

    #[test]
    fn depth_is_bounded_and_unused_slots_do_not_count() {
        let mut t = Tunnel::NONE;
        for vni in 0..MAX_TUNNEL_DEPTH as u32 {
            t.push(vxlan(vni, "10.0.0.1", "10.0.0.2")).unwrap();
        }
        assert_eq!(t.push(vxlan(9, "10.0.0.1", "10.0.0.2")), Err(TooDeep));
        let mut one = Tunnel::NONE;
        one.push(vxlan(0, "10.0.0.1", "10.0.0.2")).unwrap();
        let mut other = Tunnel::NONE;
        other.push(vxlan(0, "10.0.0.2", "10.0.0.1")).unwrap();
        assert_eq!(one, other);
        assert_ne!(one, t);
        assert_eq!(Tunnel::NONE, Tunnel::default());
    }

    #[test]
    fn shown_without_commas() {
        let mut t = Tunnel::NONE;
        t.push(vxlan(77, "10.0.0.2", "10.0.0.1")).unwrap();
        t.push(TunnelLayer::new(
            TunnelKind::SixInFour,
            None,
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
        ))
        .unwrap();
        assert_eq!(
            t.to_string(),
            "vxlan vni=77 10.0.0.1<>10.0.0.2 / 6in4 192.0.2.1<>192.0.2.2"
        );
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"[{"kind":"vxlan","vni":77,"endpoints":["10.0.0.1","10.0.0.2"]},{"kind":"6in4","endpoints":["192.0.2.1","192.0.2.2"]}]"#
        );
    }

    #[test]
    fn gtp_teids_are_learnt_per_end_and_tell_connections_apart() {
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let layer = |from: IpAddr, to: IpAddr, teid: u32| {
            let mut t = Tunnel::NONE;
            t.push(
                TunnelLayer::over_udp(TunnelKind::GtpU, None, (from, 2152), (to, 2152))
                    .with_teid_to((to, 2152), teid),
            )
            .unwrap();
            t
        };
        let mut conn = layer(a, b, 7);
        let back = layer(b, a, 9);
        // One identity both ways; the TEIDs are learnt, not compared by `==`.
        assert_eq!(conn, back);
        assert!(conn.teids_agree(&back) && conn.carries_teid());
        conn.learn_teids(&back);
        assert_eq!(conn.to_string(), "gtp-u teids=9/7 192.0.2.1<>192.0.2.2");
        assert_eq!(
            serde_json::to_string(&conn).unwrap(),
            r#"[{"kind":"gtp-u","teids":[9,7],"endpoints":["192.0.2.1","192.0.2.2"]}]"#
        );
        assert!(conn.teids_agree(&layer(a, b, 7)));
        assert!(!conn.teids_agree(&layer(a, b, 8)));
        assert!(!conn.teids_agree(&layer(b, a, 10)));
        assert!(!Tunnel::NONE.carries_teid());
        assert_eq!(
            layer(b, a, 9).to_string(),
            "gtp-u teids=9/- 192.0.2.1<>192.0.2.2"
        );
    }
}
