//! `WantConnection`: which side Zeek calls the originator when a
//! connection does not start with a plain SYN, from its likely server
//! ports.

use super::session::ZeekConn;
use crate::wire::segment::Segment;

/// Ports Zeek treats as likely servers when a connection starts without a
/// SYN (`likely_server_ports`, filled by the analyzers a default `zeek`
/// run loads). This is our approximation of that table.
pub(super) fn likely_server_port(port: u16) -> bool {
    matches!(
        port,
        21 | 22
            | 23
            | 25
            | 53
            | 80
            | 81
            | 88
            | 110
            | 111
            | 113
            | 135
            | 139
            | 143
            | 389
            | 443
            | 445
            | 465
            | 502
            | 563
            | 585
            | 587
            | 614
            | 631
            | 636
            | 989
            | 990
            | 992
            | 993
            | 995
            | 1080
            | 1883
            | 2049
            | 3128
            | 3268
            | 3306
            | 3389
            | 5222
            | 5223
            | 5269
            | 5432
            | 6379
            | 6666..=6669 | 8000 | 8080 | 8888 | 20000
    )
}

impl ZeekConn {
    /// `WantConnection` at the first packet: a connection that does not
    /// start with a plain SYN is flipped when its source port looks like
    /// a server's.
    pub(super) fn want_connection(&mut self, seg: &Segment<'_>) {
        let f = seg.flags;
        if f.syn() && !f.ack() {
            return;
        }
        let (src, dst) = (seg.src.port(), seg.dst.port());
        if !likely_server_port(src) {
            return;
        }
        let flip = if likely_server_port(dst) {
            !f.syn() && src < dst
        } else {
            true
        };
        if flip {
            self.flip_roles();
        }
    }
}
