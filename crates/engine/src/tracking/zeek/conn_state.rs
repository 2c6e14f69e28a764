//! conn.log's `conn_state` (`scripts/base/protocols/conn/main.zeek`),
//! from both endpoints' final Zeek states.

use super::session::{State, ZeekConn};

impl ZeekConn {
    /// Zeek's conn_state (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0,
    /// RSTRH, SH, SHR, OTH).
    pub fn conn_state(&self) -> &'static str {
        use State::*;
        let o = self.orig as usize;
        let (os, rs) = (self.ep[o].state, self.ep[1 - o].state);
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent)
                || (os == Reset && self.size(o) == 0 && self.size(1 - o) == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if !r_inactive {
                "RSTO"
            } else if self.history_is_syn_then_rst() {
                "RSTOS0"
            } else {
                "OTH"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if r_inactive {
                "SH"
            } else {
                "S2"
            }
        } else if rs == Closed {
            if o_inactive {
                "SHR"
            } else {
                "S3"
            }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }
}
