//! The scenario table: what each side does, and what the wire must show
//! (FIN/RST counts per side, checked after recording) together with what a
//! correct analyser may infer from it (the manifest's expected_* fields).
//!
//! Expected calls follow the project's inference rules: the wire decides
//! between classes of calls and never claims more than it shows.

use std::net::Shutdown;

use crate::script::Step::{self, *};
use crate::wire::Counts;
pub use tcpshut_engine::{Call, ClosedBy, Outcome, Role};

/// What one side of one connection must look like.
#[derive(Clone, Debug)]
pub struct SideExpect {
    pub calls: Vec<Vec<Call>>,
    pub role: Role,
    pub closed_by: ClosedBy,
    /// FIN/RST segments this side must have sent, exactly.
    pub wire: Counts,
}

#[derive(Clone, Debug)]
pub struct ConnExpect {
    pub outcome: Outcome,
    pub client: SideExpect,
    pub server: SideExpect,
}

pub struct Scenario {
    pub name: String,
    pub description: String,
    pub client: Vec<Step>,
    pub server: Vec<Step>,
    pub conns: Vec<ConnExpect>,
}

// Candidate classes of the inference rules (each sorted). Restated here on
// purpose rather than taken from the engine: the manifest is the oracle the
// engine is tested against, written from docs/semantics.md.
/// Rule 3: a FIN and nothing later that tells more.
const FIN_ANY: &[Call] = &[Call::Close, Call::ShutRdwr, Call::ShutWr];
/// Rule 2: a FIN, then new peer data answered by a RST.
const FIN_CLOSED: &[Call] = &[Call::Close, Call::ShutRdwr];
/// Rule 1: a FIN, then new peer data ACKed.
const FIN_HALF: &[Call] = &[Call::ShutWr];
/// Rule 4: abortive RST after having received data.
const ABORT_AFTER_DATA: &[Call] = &[Call::CloseUnread, Call::Linger0, Call::ShutRd];
/// Rule 5: abortive RST, never received data.
const ABORT_NO_DATA: &[Call] = &[Call::Linger0];

/// Pause between one side's wire event and the other side's reaction:
/// longer than the delayed-ACK timer (40 ms), far below the 200 ms RTO.
const PAUSE: Step = Sleep(100);

fn side(calls: &[&[Call]], role: Role, closed_by: ClosedBy, wire: (u32, u32, u32)) -> SideExpect {
    SideExpect {
        calls: calls.iter().map(|c| c.to_vec()).collect(),
        role,
        closed_by,
        wire: Counts {
            fin: wire.0,
            rst_ack: wire.1,
            rst: wire.2,
        },
    }
}

/// A graceful closer/peer pair where both sides sent one FIN.
fn fin_pair(closer: &[Call]) -> (SideExpect, SideExpect) {
    (
        side(&[closer], Role::Active, ClosedBy::Fin, (1, 0, 0)),
        side(&[FIN_ANY], Role::Passive, ClosedBy::Fin, (1, 0, 0)),
    )
}

/// A graceful close the client starts: one FIN each, nothing that tells
/// more about either side's calls.
fn graceful_client_first() -> ConnExpect {
    let (client, server) = fin_pair(FIN_ANY);
    ConnExpect {
        outcome: Outcome::Graceful,
        client,
        server,
    }
}

/// The side that was only ever on the receiving end of the teardown.
fn silent_peer() -> SideExpect {
    side(&[], Role::Passive, ClosedBy::None, (0, 0, 0))
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Client,
    Server,
}

/// Opening and a small request/response, so both sides have received data.
fn start(who: Who) -> Vec<Step> {
    match who {
        Who::Client => vec![Connect, Send(100), Recv(200)],
        Who::Server => vec![Listen, Accept, Recv(100), Send(200)],
    }
}

fn with_start(who: Who, tail: &[Step]) -> Vec<Step> {
    let mut steps = start(who);
    steps.extend_from_slice(tail);
    steps
}

fn scenario(
    name: &str,
    description: &str,
    client: Vec<Step>,
    server: Vec<Step>,
    conn: ConnExpect,
) -> Scenario {
    Scenario {
        name: name.into(),
        description: description.into(),
        client,
        server,
        conns: vec![conn],
    }
}

/// A connection where the client closes first; `closer`/`peer` are the
/// client's and server's steps after [`start`].
fn client_first(
    name: &str,
    description: &str,
    closer: &[Step],
    peer: &[Step],
    outcome: Outcome,
    (c, s): (SideExpect, SideExpect),
) -> Scenario {
    let conn = ConnExpect {
        outcome,
        client: c,
        server: s,
    };
    scenario(
        name,
        description,
        with_start(Who::Client, closer),
        with_start(Who::Server, peer),
        conn,
    )
}

/// The same teardown twice: `{base}-client-first` and `{base}-server-first`.
/// In `description`, "{first}" and "{peer}" name the two sides.
fn mirrored(
    base: &str,
    description: &str,
    closer: &[Step],
    peer: &[Step],
    outcome: Outcome,
    (ce, pe): (SideExpect, SideExpect),
) -> [Scenario; 2] {
    [Who::Client, Who::Server].map(|first| {
        let other = if first == Who::Client {
            Who::Server
        } else {
            Who::Client
        };
        let label = |w| if w == Who::Client { "client" } else { "server" };
        let (client, server, ce, pe) = if first == Who::Client {
            (closer, peer, ce.clone(), pe.clone())
        } else {
            (peer, closer, pe.clone(), ce.clone())
        };
        let conn = ConnExpect {
            outcome,
            client: ce,
            server: pe,
        };
        scenario(
            &format!("{base}-{}-first", label(first)),
            &description
                .replace("{first}", label(first))
                .replace("{peer}", label(other)),
            with_start(Who::Client, client),
            with_start(Who::Server, server),
            conn,
        )
    })
}

pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(mirrored(
        "shut_wr",
        "After a request/response, the {first} calls shutdown(SHUT_WR) (FIN); the {peer} reads EOF \
         and close()s (FIN); the {first} reads EOF and close()s, which sends nothing more. \
         The {first} ends in TIME-WAIT.",
        &[PAUSE, Shutdown(Shutdown::Write), RecvEof, Close],
        &[RecvEof, PAUSE, Close],
        Outcome::Graceful,
        fin_pair(FIN_ANY),
    ));
    v.extend(mirrored(
        "shut_rd",
        "After a request/response, the {first} calls shutdown(SHUT_RD), which sends nothing; the \
         {peer} then sends 300 bytes, which the {first} ACKs but never reads; the {first}'s later \
         close() finds them unread and sends RST+ACK. The {peer} close()s after the reset.",
        &[
            PAUSE,
            Shutdown(Shutdown::Read),
            Mark("shut"),
            Wait("sent"),
            PAUSE,
            Close,
            Mark("closed"),
        ],
        &[
            Wait("shut"),
            PAUSE,
            Send(300),
            Mark("sent"),
            Wait("closed"),
            PAUSE,
            Close,
        ],
        Outcome::Reset,
        (
            side(&[ABORT_AFTER_DATA], Role::Active, ClosedBy::Rst, (0, 1, 0)),
            silent_peer(),
        ),
    ));
    v.extend(mirrored(
        "shut_rdwr",
        "After a request/response, the {first} calls shutdown(SHUT_RDWR) (FIN); the {peer} reads \
         EOF and sends 300 bytes anyway, which the {first}'s kernel answers with a RST without ACK. \
         Both close() afterwards, which sends nothing.",
        &[PAUSE, Shutdown(Shutdown::Both), Wait("sent"), PAUSE, Close],
        &[RecvEof, PAUSE, Send(300), Mark("sent"), PAUSE, Close],
        Outcome::Reset,
        (side(&[FIN_CLOSED], Role::Active, ClosedBy::Fin, (1, 0, 1)), silent_peer()),
    ));
    v.extend(mirrored(
        "close",
        "After a request/response, the {first} close()s with everything read (FIN); the {peer} \
         reads EOF and close()s (FIN). The {first} ends in TIME-WAIT.",
        &[PAUSE, Close],
        &[RecvEof, PAUSE, Close],
        Outcome::Graceful,
        fin_pair(FIN_ANY),
    ));
    v.push(client_first(
        "linger0-after-data",
        "After a request/response (all data read), the client sets SO_LINGER {1,0} and close()s: \
         RST+ACK instead of a FIN. The server close()s after the reset.",
        &[PAUSE, Linger(0), Close, Mark("closed")],
        &[Wait("closed"), PAUSE, Close],
        Outcome::Reset,
        (
            side(&[ABORT_AFTER_DATA], Role::Active, ClosedBy::Rst, (0, 1, 0)),
            silent_peer(),
        ),
    ));
    v.push(scenario(
        "linger0-no-data",
        "The client sends 100 bytes but never receives any, sets SO_LINGER {1,0} and close()s: \
         RST+ACK. The server close()s after the reset.",
        vec![Connect, Send(100), PAUSE, Linger(0), Close, Mark("closed")],
        vec![Listen, Accept, Recv(100), Wait("closed"), PAUSE, Close],
        ConnExpect {
            outcome: Outcome::Reset,
            client: side(&[ABORT_NO_DATA], Role::Active, ClosedBy::Rst, (0, 1, 0)),
            server: silent_peer(),
        },
    ));
    v.push(scenario(
        "close-unread",
        "The client sends a request; the server answers with 200 bytes the client never reads; \
         the client's close() finds them unread and sends RST+ACK instead of a FIN.",
        vec![
            Connect,
            Send(100),
            Wait("sent"),
            PAUSE,
            Close,
            Mark("closed"),
        ],
        vec![
            Listen,
            Accept,
            Recv(100),
            Send(200),
            Mark("sent"),
            Wait("closed"),
            PAUSE,
            Close,
        ],
        ConnExpect {
            outcome: Outcome::Reset,
            client: side(&[ABORT_AFTER_DATA], Role::Active, ClosedBy::Rst, (0, 1, 0)),
            server: silent_peer(),
        },
    ));
    v.push(client_first(
        "half-close-data-after-fin",
        "Half-close: the client calls shutdown(SHUT_WR) (FIN), the server keeps sending 300 bytes, \
         which the client reads and ACKs; then the server close()s (FIN) and the client close()s.",
        &[PAUSE, Shutdown(Shutdown::Write), Recv(300), RecvEof, PAUSE, Close],
        &[RecvEof, PAUSE, Send(300), PAUSE, Close],
        Outcome::Graceful,
        fin_pair(FIN_HALF),
    ));
    v.push(client_first(
        "data-after-close",
        "The client close()s (FIN); the server reads EOF but still sends 300 bytes, which the \
         client's kernel answers with a RST without ACK. The server close()s after the reset.",
        &[PAUSE, Close],
        &[RecvEof, PAUSE, Send(300), PAUSE, Close],
        Outcome::Reset,
        (
            side(&[FIN_CLOSED], Role::Active, ClosedBy::Fin, (1, 0, 1)),
            silent_peer(),
        ),
    ));
    v.push(client_first(
        "shut_wr-then-close-unread",
        "The client calls shutdown(SHUT_WR) (FIN); the server sends 300 bytes, which the client \
         ACKs but never reads; the client's close() then sends RST+ACK. Two steps on the client.",
        &[
            PAUSE,
            Shutdown(Shutdown::Write),
            Wait("sent"),
            PAUSE,
            Close,
            Mark("closed"),
        ],
        &[
            RecvEof,
            PAUSE,
            Send(300),
            Mark("sent"),
            Wait("closed"),
            PAUSE,
            Close,
        ],
        Outcome::Reset,
        (
            side(
                &[FIN_HALF, ABORT_AFTER_DATA],
                Role::Active,
                ClosedBy::FinRst,
                (1, 1, 0),
            ),
            silent_peer(),
        ),
    ));
    // Each side drops incoming FINs while both close(), so both FINs are sent
    // before either is received; once the rules are gone the retransmissions
    // cross and both sides go through CLOSING to TIME-WAIT.
    let simultaneous = |me: &'static str, peer: &'static str| {
        [
            DropFins,
            Mark(me),
            Wait(peer),
            PAUSE,
            Close,
            PAUSE,
            AllowFins,
            Sleep(400),
        ]
    };
    let both = side(&[FIN_ANY], Role::Simultaneous, ClosedBy::Fin, (2, 0, 0));
    v.push(client_first(
        "simultaneous-close",
        "Simultaneous close: both sides close() at the same moment while each namespace drops \
         incoming FINs; both FINs are sent before either arrives, then their retransmissions \
         cross. Each side's FIN appears twice.",
        &simultaneous("c-drop", "s-drop"),
        &simultaneous("s-drop", "c-drop"),
        Outcome::Graceful,
        (both.clone(), both),
    ));
    let (mut closer, peer) = fin_pair(FIN_ANY);
    closer.wire.fin = 2;
    v.push(client_first(
        "fin-retransmit",
        "The client close()s; the server's namespace drops that first FIN, so the client \
         retransmits it (both copies are in this client-side capture); the server then reads EOF \
         and close()s.",
        &[Wait("drop"), PAUSE, Close, Mark("closed")],
        &[
            DropFins,
            Mark("drop"),
            Wait("closed"),
            PAUSE,
            AllowFins,
            RecvEof,
            PAUSE,
            Close,
        ],
        Outcome::Graceful,
        (closer, peer),
    ));
    let nothing = side(&[], Role::None, ClosedBy::None, (0, 0, 0));
    v.push(scenario(
        "refused",
        "The client connects to a port nobody listens on; the server's kernel answers the SYN \
         with RST+ACK. No application on the server side.",
        vec![ConnectRefused],
        vec![],
        ConnExpect {
            outcome: Outcome::Refused,
            client: nothing.clone(),
            server: SideExpect {
                wire: Counts {
                    rst_ack: 1,
                    ..Counts::default()
                },
                ..nothing
            },
        },
    ));
    let (server_closes, client_follows) = fin_pair(FIN_ANY);
    let (client_closes, server_follows) = fin_pair(FIN_ANY);
    v.push(Scenario {
        name: "port-reuse".into(),
        description: "Two connections on the same 4-tuple (client port bound with SO_REUSEADDR). \
                      First the server close()s first (and its TIME-WAIT accepts the next SYN), \
                      then the client close()s first."
            .into(),
        client: [
            start(Who::Client),
            vec![RecvEof, PAUSE, Close, PAUSE],
            start(Who::Client),
            vec![PAUSE, Close],
        ]
        .concat(),
        server: [
            start(Who::Server),
            vec![
                PAUSE,
                Close,
                Accept,
                Recv(100),
                Send(200),
                RecvEof,
                PAUSE,
                Close,
            ],
        ]
        .concat(),
        conns: vec![
            ConnExpect {
                outcome: Outcome::Graceful,
                client: client_follows,
                server: server_closes,
            },
            ConnExpect {
                outcome: Outcome::Graceful,
                client: client_closes,
                server: server_follows,
            },
        ],
    });
    let (closer, _) = fin_pair(FIN_ANY);
    v.push(client_first(
        "close-wait-at-end",
        "The client close()s (FIN); the server reads EOF but never close()s before the capture \
         stops: it is left in CLOSE-WAIT, the client in FIN-WAIT-2.",
        &[PAUSE, Close],
        &[RecvEof, Sleep(200)],
        Outcome::HalfClosed,
        (closer, silent_peer()),
    ));
    // ---- hard cases the kernel produces on demand ----
    v.push(client_first(
        "keepalive",
        "After a request/response the client turns on SO_KEEPALIVE with TCP_KEEPIDLE and \
         TCP_KEEPINTVL of 1 s and idles 2.5 s: its kernel sends keep-alive probes (no payload, \
         seq one below SND.NXT), which the server ACKs; then the client close()s (FIN) and the \
         server follows. The probes are not data.",
        &[KeepAlive(1), Sleep(2500), Close],
        &[RecvEof, PAUSE, Close],
        Outcome::Graceful,
        fin_pair(FIN_ANY),
    ));
    v.push(scenario(
        "zero-window",
        "The server listens with SO_RCVBUF 4096 and stops reading after the request/response; \
         the client queues up to 256 KiB without blocking, the server's window closes and the \
         client's kernel sends zero-window probes (no payload) for 1.5 s. The server then reads \
         everything, the client close()s (FIN) and the server follows.",
        [
            start(Who::Client),
            vec![
                SendAvailable("bulk", 256 * 1024),
                Mark("filled"),
                Wait("drained"),
                PAUSE,
                Close,
            ],
        ]
        .concat(),
        vec![
            ListenRcvbuf(4096),
            Accept,
            Recv(100),
            Send(200),
            Wait("filled"),
            Sleep(1500),
            RecvCounted("bulk"),
            Mark("drained"),
            RecvEof,
            PAUSE,
            Close,
        ],
        graceful_client_first(),
    ));
    let (server_closes, client_follows) = fin_pair(FIN_ANY);
    v.push(client_first(
        "fin-with-data",
        "The server sends its 200-byte reply with MSG_MORE and close()s at once: Linux puts the \
         FIN on the reply's segment (FIN+data). The client reads reply and EOF and close()s.",
        &[RecvEof, PAUSE, Close],
        &[],
        Outcome::Graceful,
        (client_follows, server_closes),
    ));
    // fin-with-data's server must not send its reply in `start`: replace it.
    let last = v.last_mut().expect("just pushed");
    last.server = vec![Listen, Accept, Recv(100), SendMore(200), Close];
    // TFO without cookies (0x1 client | 0x2 server | 0x4 client no cookie |
    // 0x200 server no cookie), so that the first SYN already carries data.
    v.push(scenario(
        "tfo",
        "TCP Fast Open: net.ipv4.tcp_fastopen=0x207 in both namespaces (no cookie needed), the \
         server sets TCP_FASTOPEN, the client sends its 100-byte request with \
         sendto(MSG_FASTOPEN): the request rides on the SYN. 200-byte reply, then the client \
         close()s (FIN) and the server follows.",
        vec![
            Sysctl("net.ipv4.tcp_fastopen", "519"),
            ConnectFastOpen(100),
            Recv(200),
            PAUSE,
            Close,
        ],
        vec![
            Sysctl("net.ipv4.tcp_fastopen", "519"),
            ListenFastOpen,
            Accept,
            Recv(100),
            Send(200),
            RecvEof,
            PAUSE,
            Close,
        ],
        graceful_client_first(),
    ));
    let (client_closes, server_follows) = fin_pair(FIN_ANY);
    v.push(scenario(
        "retransmit-across-fin",
        "The client's namespace drops the server's 200-byte reply once (nftables, after the \
         capture tap); the client calls shutdown(SHUT_WR) before the retransmission, which then \
         arrives after the client's FIN and is ACKed. A retransmission is not new data, so the \
         wire cannot tell shutdown(SHUT_WR) from close() here. Both close() afterwards.",
        vec![
            Connect,
            Send(100),
            DropData,
            Mark("drop"),
            Wait("sent"),
            Shutdown(Shutdown::Write),
            Sleep(50),
            AllowData,
            Recv(200),
            RecvEof,
            PAUSE,
            Close,
        ],
        vec![
            Listen,
            Accept,
            Recv(100),
            Wait("drop"),
            Send(200),
            Mark("sent"),
            RecvEof,
            Sleep(500),
            Close,
        ],
        ConnExpect {
            outcome: Outcome::Graceful,
            client: client_closes,
            server: server_follows,
        },
    ));
    let untouched = side(&[], Role::None, ClosedBy::None, (0, 0, 0));
    v.push(client_first(
        "open-at-end",
        "A request/response and nothing else: neither side closes before the capture stops.",
        &[PAUSE],
        &[PAUSE],
        Outcome::Open,
        (untouched.clone(), untouched),
    ));
    v
}
