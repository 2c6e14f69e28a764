//! Community ID v1: the flow hash that Zeek, Suricata, Elastic, Malcolm
//! and others put beside their records, so that records of one
//! connection can be joined across tools.
//!
//! Computed as the published specification
//! (corelight/community-id-spec, `community-id.py`) says: the SHA-1 of
//! the seed (2 bytes, network order), the two addresses, the protocol
//! number, one zero byte of padding and the two ports (network order),
//! with the endpoints ordered so that both directions of a flow give the
//! same hash (the smaller address first; on equal addresses, the smaller
//! port), then base64-encoded and prefixed with the version, `1:`.
//! Tested against the specification's own baseline
//! (`testdata/third-party/community-id/`).

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// IANA protocol number of TCP.
pub const TCP: u8 = 6;

/// One flow as the specification hashes it: the protocol, and the two
/// ends in the order they were seen (either order gives the same ID).
/// `ports` is `None` for protocols without ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ports: Option<(u16, u16)>,
}

impl FlowTuple {
    /// A TCP connection between two sockets.
    pub fn tcp(a: SocketAddr, b: SocketAddr) -> FlowTuple {
        FlowTuple {
            proto: TCP,
            src: a.ip(),
            dst: b.ip(),
            ports: Some((a.port(), b.port())),
        }
    }

    /// The specification's hash input, endpoints ordered, in a buffer of
    /// its longest size (IPv6 with ports: 40 bytes), and its length.
    fn hash_input(&self, seed: u16) -> ([u8; 40], usize) {
        let (src_port, dst_port) = self.ports.unwrap_or((0, 0));
        // An address's bytes: an IPv4 address is the last 4 of its mapped form.
        let key = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 12),
            IpAddr::V6(v6) => (v6.octets(), 0),
        };
        let (src_key, dst_key) = (key(self.src), key(self.dst));
        let (src, dst) = (&src_key.0[src_key.1..], &dst_key.0[dst_key.1..]);
        // `is_lt` of the specification: addresses as bytes, then ports.
        let in_order = src < dst || (src == dst && src_port < dst_port);
        let ((a, a_port), (b, b_port)) = if in_order {
            ((src, src_port), (dst, dst_port))
        } else {
            ((dst, dst_port), (src, src_port))
        };
        let mut input = [0u8; 40];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            input[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        put(&seed.to_be_bytes());
        put(a);
        put(b);
        put(&[self.proto, 0]);
        if self.ports.is_some() {
            put(&a_port.to_be_bytes());
            put(&b_port.to_be_bytes());
        }
        (input, len)
    }

    /// The SHA-1 digest of the hash input.
    fn digest(&self, seed: u16) -> [u8; 20] {
        let (input, len) = self.hash_input(seed);
        Sha1::digest(&input[..len]).into()
    }

    /// The Community ID v1 string with `seed` (0 unless every tool of
    /// the site was configured with another), e.g.
    /// `1:wCb3OG7yAFWelaUydu0D+125CLM=`.
    pub fn community_id(&self, seed: u16) -> String {
        let digest = self.digest(seed);
        // "1:" and 28 base64 characters.
        let mut id = String::with_capacity(30);
        id.push_str("1:");
        base64::engine::general_purpose::STANDARD.encode_string(digest, &mut id);
        id
    }

    /// The variant without base64 (`--no-base64` in the reference
    /// tools): the digest in lower-case hex. Only the reference vectors
    /// use it (the tests).
    #[cfg(test)]
    pub fn community_id_hex(&self, seed: u16) -> String {
        let mut out = String::from("1:");
        for byte in self.digest(seed) {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

/// The Community ID (seed 0) of a TCP connection between `a` and `b`.
pub fn tcp(a: SocketAddr, b: SocketAddr) -> String {
    FlowTuple::tcp(a, b).community_id(0)
}

#[cfg(test)]
mod tests;
