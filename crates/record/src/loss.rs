//! Lost FINs and RSTs, recorded for real: the router namespace of
//! `router.rs` drops a teardown segment on its way (once, so that its
//! retransmission passes, or for good). A drop inside the sender's own
//! namespace would be reported to the sender as a failed send; on the
//! path, the sender's kernel sees it leave and behaves as on a real
//! network (retransmits a FIN, forgets the connection after an RST).
//!
//! Captured at the client, at the server and on the router (`-i any`:
//! a forwarded packet seen twice, a dropped one once, on its way in). The
//! manifest entry of each
//! capture keeps the truth (what the applications called) and marks, per
//! field, what that capture point's wire can no longer prove, with the
//! wider answers that are honest there; the rules below read the frames
//! alone, independently of tcpshut.

use anyhow::{ensure, Result};

use crate::degrade::{self, truth_map, Allowed, Truth};
use crate::derive;
use crate::router::{Loss, Middlebox, RouterScenario};
use tcpshut_lab::router::{CLIENT, SERVER};
use tcpshut_lab::scenarios::{self, ClosedBy, ConnExpect, Outcome, Role, SideExpect};
use tcpshut_lab::script::{Call, Step, CLIENT_PORT, SERVER_PORT};

/// The loss scenarios: a base scenario of the table, the segment dropped.
pub fn scenarios() -> Vec<RouterScenario> {
    let table = scenarios::all();
    let base = |name: &str| {
        table
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no scenario {name}"))
    };
    let close = base("close-client-first");
    let linger = base("linger0-after-data");
    let lose = |rst, from_client, once| {
        Middlebox::Lose(Loss {
            rst,
            from_client,
            once,
        })
    };
    let side = |calls: &[Call], role, closed_by| SideExpect {
        calls: if calls.is_empty() {
            Vec::new()
        } else {
            vec![calls.to_vec()]
        },
        role,
        closed_by,
        wire: Default::default(),
    };
    use tcpshut_engine::{ABORT_AFTER_DATA, FIN_UNDECIDED};
    // The client resets; the server's later close() still sends a FIN (its
    // kernel never got the reset).
    let reset_then_fin = ConnExpect {
        outcome: Outcome::Reset,
        client: side(ABORT_AFTER_DATA, Role::Active, ClosedBy::Rst),
        server: side(FIN_UNDECIDED, Role::Passive, ClosedBy::Fin),
    };
    // Without its close(), the server holds the connection open past the
    // end of the capture (the socket is closed after tcpdump stopped).
    let mut server_open = close.server.clone();
    let kept = server_open
        .iter()
        .position(|s| matches!(s, Step::RecvEof))
        .expect("the server reads to the end");
    server_open.truncate(kept);
    vec![
        RouterScenario {
            name: "first-fin-lost-once",
            description: "The client close()s first; the router drops its FIN once; the client \
                 retransmits it (after its RTO, about 200 ms), and the close goes on as usual.",
            client: close.client.clone(),
            server: close.server.clone(),
            middlebox: lose(false, true, true),
            forged: &[],
            truth: Some(close.conns[0].clone()),
        },
        RouterScenario {
            name: "final-fin-lost-once",
            description: "The client close()s first; the server answers with its own close(), \
                 whose FIN the router drops once; the server retransmits it.",
            client: close.client.clone(),
            server: close.server.clone(),
            middlebox: lose(false, false, true),
            forged: &[],
            truth: Some(close.conns[0].clone()),
        },
        RouterScenario {
            name: "rst-lost-once",
            description: "The client sets SO_LINGER {1,0} and close()s: the router drops the \
                 RST+ACK. The server, which never learns of it, close()s: its FIN reaches the \
                 client's kernel, which has no connection left and answers with a bare RST \
                 (which passes).",
            client: linger.client.clone(),
            server: linger.server.clone(),
            middlebox: lose(true, true, true),
            forged: &[],
            truth: Some(reset_then_fin.clone()),
        },
        RouterScenario {
            name: "first-fin-lost",
            description: "The client close()s first; the router drops every FIN of the client. \
                 The client retransmits it, unanswered; the server, which never learns of it, \
                 holds the connection open until the capture stops.",
            client: close.client.clone(),
            server: server_open,
            middlebox: lose(false, true, false),
            forged: &[],
            truth: Some(ConnExpect {
                outcome: Outcome::HalfClosed,
                client: side(FIN_UNDECIDED, Role::Active, ClosedBy::Fin),
                server: side(&[], Role::Passive, ClosedBy::None),
            }),
        },
        RouterScenario {
            name: "final-fin-lost",
            description: "The client close()s first; the server answers with its own close(), \
                 and the router drops every FIN of the server: the server retransmits it, \
                 unanswered, the client waits in FIN-WAIT-2.",
            client: close.client.clone(),
            server: close.server.clone(),
            middlebox: lose(false, false, false),
            forged: &[],
            truth: Some(close.conns[0].clone()),
        },
        RouterScenario {
            name: "rst-lost",
            description: "The client sets SO_LINGER {1,0} and close()s; the router drops every \
                 RST of the client. The server close()s: its FIN is answered by the client's \
                 kernel with bare RSTs, dropped too; the server retransmits its FIN, unanswered.",
            client: linger.client.clone(),
            server: linger.server.clone(),
            middlebox: lose(true, true, false),
            forged: &[],
            truth: Some(reset_then_fin),
        },
    ]
}

/// The truth of the connection, and what the wire at `point` (`client`,
/// `server`, or `router`: every forwarded packet twice, a dropped one
/// once) cannot prove, read from its TCP segments `kept`.
pub fn judge(truth: &ConnExpect, point: &str, kept: &[derive::Tcp]) -> Result<Truth> {
    ensure!(!kept.is_empty(), "{point}: no TCP frames");
    let side = |s: &SideExpect| (s.role, s.closed_by, s.calls.clone());
    let map = truth_map(truth.outcome, [side(&truth.client), side(&truth.server)]);
    let mut allowed = Allowed::default();
    let sender = |t: &derive::Tcp| usize::from(t.src.1 != CLIENT_PORT);
    let names = ["client", "server"];
    for (i, name) in names.iter().enumerate() {
        let sent: Vec<&derive::Tcp> = kept.iter().filter(|t| sender(t) == i).collect();
        let signalled = sent
            .iter()
            .any(|t| !t.syn && (t.fin || (t.rst && t.ack_flag)));
        let bare_rst = sent.iter().any(|t| t.rst && !t.ack_flag);
        if signalled || map[&format!("{name}.closed_by")] == "none" {
            continue;
        }
        // Its close never reached this capture point.
        allowed.allow(&format!("{name}.calls"), &[""]);
        if bare_rst {
            // Its kernel answered with a bare RST: it no longer had the
            // connection, it closed where this point could not see.
            allowed.allow(&format!("{name}.closed_by"), &["unknown"]);
            for field in ["closer", "client.role", "server.role"] {
                allowed.allow(field, &["unknown"]);
            }
        } else {
            // Nothing shows it closed: as far as this point saw, it had not.
            allowed.allow(&format!("{name}.closed_by"), &["none", "unknown"]);
            allowed.allow("outcome", &["open", "half-closed", "unknown"]);
        }
    }
    if !kept.iter().any(|t| !t.syn && (t.fin || t.rst)) {
        // No teardown at all reached this point: open, as far as it saw.
        for field in ["closer", "client.role", "server.role"] {
            allowed.allow(field, &["none", "unknown"]);
        }
    }
    degrade::unanswered_fin(kept, &mut allowed);
    Ok(allowed.judged(
        &format!("{CLIENT}:{CLIENT_PORT}"),
        &format!("{SERVER}:{SERVER_PORT}"),
        map,
    ))
}
