//! One run of the experiment: a fresh lab, tcpdump on the client's veth,
//! the client's and the server's steps each in a thread inside its
//! namespace, a grace period for the last ACKs, then the capture stopped
//! and the lab removed (also on error).

use std::net::IpAddr;
use std::path::Path;
use std::thread::ScopedJoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::netns::{self, Lab};
use crate::script::{self, Board, Env, SideLog, Step};
use crate::tcpdump::{self, Tcpdump};

/// Capture keeps running this long after both scripts end, for the last
/// ACKs and retransmissions.
pub const GRACE: Duration = Duration::from_millis(300);

/// What one run did: each side's log (sockets it never closed are closed
/// only after the capture stopped, unrecorded), the packets tcpdump
/// says it captured, and the two addresses.
pub struct Run {
    pub client: SideLog,
    pub server: SideLog,
    pub captured: u64,
    pub client_ip: IpAddr,
    pub server_ip: IpAddr,
}

/// What a side's thread (from [`spawn_sides`]) logged.
pub fn join(handle: ScopedJoinHandle<'_, Result<SideLog>>) -> Result<SideLog> {
    handle.join().map_err(|_| anyhow!("side thread panicked"))?
}

/// One side of a run: the namespace it runs in, its address there, and
/// its steps.
pub struct Party<'a> {
    pub ns: &'a str,
    pub local: IpAddr,
    pub steps: &'a [Step],
}

/// Starts the client's and the server's steps (`parties`), each in a
/// thread of `scope` inside its namespace, sharing `board`, connecting to
/// `server`; failed calls noted and gone past when `keep_going` (see
/// [`Env::keep_going`]). [`join`] gives what each logged.
pub fn spawn_sides<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    parties: [Party<'env>; 2],
    board: &'env Board,
    server: IpAddr,
    keep_going: bool,
) -> [ScopedJoinHandle<'scope, Result<SideLog>>; 2] {
    parties.map(|party| {
        scope.spawn(move || {
            let env = Env {
                ns: party.ns,
                board,
                local: party.local,
                server,
                keep_going,
            };
            script::run_side(&env, party.steps)
        })
    })
}

/// How a run is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct Setup {
    pub ipv6: bool,
    pub capture: tcpdump::Options,
    /// Failed calls are noted and each side goes on (see [`Env::keep_going`]).
    pub keep_going: bool,
}

/// Runs `client` and `server` in a fresh lab, capturing into `file`.
pub fn run(client: &[Step], server: &[Step], setup: Setup, file: &Path) -> Result<Run> {
    let lab = Lab::new()?;
    let (client_ip, server_ip) = netns::addrs(setup.ipv6);
    let td = Tcpdump::start(&lab.client, netns::IFACE, file, setup.capture)?;
    let board = Board::default();
    let parties = [
        Party {
            ns: &lab.client,
            local: client_ip,
            steps: client,
        },
        Party {
            ns: &lab.server,
            local: server_ip,
            steps: server,
        },
    ];
    let (c, s) = std::thread::scope(|scope| {
        let [c, s] = spawn_sides(scope, parties, &board, server_ip, setup.keep_going);
        (join(c), join(s))
    });
    let (mut client, mut server) = (c.context("client")?, s.context("server")?);
    std::thread::sleep(GRACE);
    let captured = td.stop()?;
    // Sockets never closed (CLOSE-WAIT scenario) go only now, unrecorded.
    client.leftover.clear();
    server.leftover.clear();
    Ok(Run {
        client,
        server,
        captured,
        client_ip,
        server_ip,
    })
}
