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

fn join(handle: ScopedJoinHandle<'_, Result<SideLog>>) -> Result<SideLog> {
    handle.join().map_err(|_| anyhow!("side thread panicked"))?
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
    let env = |ns, local| Env {
        ns,
        board: &board,
        local,
        server: server_ip,
        keep_going: setup.keep_going,
    };
    let (c, s) = std::thread::scope(|scope| {
        let c = scope.spawn(|| script::run_side(&env(&lab.client, client_ip), client));
        let s = scope.spawn(|| script::run_side(&env(&lab.server, server_ip), server));
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
