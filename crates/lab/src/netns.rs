//! The virtual lab: two network namespaces (client, server) joined by a veth
//! pair, built with iproute2 and torn down by a Drop guard (and by the
//! interruption handler of `cleanup`).
//!
//! Every recording gets a fresh lab so no state (TIME-WAIT sockets, nftables
//! rules, neighbour entries) leaks from one scenario into the next.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cleanup::{self, PREFIX};
/// The veth end inside each namespace (names are per namespace, so fixed).
pub const IFACE: &str = "veth0";

pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// Runs a command and fails with its stderr if it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a command inside a namespace, as `ip netns exec NS ...`.
pub fn run_in(ns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Moves the calling thread into a named network namespace. Sockets the
/// thread creates afterwards live there; other threads are unaffected.
pub fn enter(ns: &str) -> Result<()> {
    let f = File::open(format!("/run/netns/{ns}")).with_context(|| format!("open netns {ns}"))?;
    // SAFETY: plain syscall on a valid fd; CLONE_NEWNET is allowed in a
    // multi-threaded process and only affects this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    Ok(())
}

/// A name for a new lab's namespaces, `PREFIX<pid>-<tag><serial>`: this
/// process's (see [`PREFIX`]) and never used before in it.
pub(crate) fn lab_name(tag: &str) -> String {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{tag}{n}", std::process::id())
}

/// Adds the namespaces `names`, told to `cleanup` first: whichever step
/// fails, or an interruption, removes those that exist.
pub(crate) fn add_namespaces(names: &[&str]) -> Result<()> {
    cleanup::with_namespaces(names, || {
        for ns in names {
            run("ip", &["netns", "add", ns])?;
        }
        Ok(())
    })
}

/// Deletes the namespaces `names` (a lab's, when it is dropped).
pub(crate) fn delete_namespaces(names: &[&str]) {
    for ns in names {
        cleanup::delete_namespace(ns);
    }
    cleanup::namespaces_gone(names);
}

/// A veth pair: [`IFACE`] in `ns`, its peer `peer` in `peer_ns`.
pub(crate) fn add_veth(ns: &str, peer: &str, peer_ns: &str) -> Result<()> {
    run(
        "ip",
        &[
            "-n", ns, "link", "add", IFACE, "type", "veth", "peer", "name", peer, "netns", peer_ns,
        ],
    )
}

/// Gives `iface` in `ns` the addresses `v4`/24 and `v6`/64, and brings it
/// and `lo` up.
pub(crate) fn address(ns: &str, iface: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> Result<()> {
    let v4 = format!("{v4}/24");
    let v6 = format!("{v6}/64");
    run("ip", &["-n", ns, "addr", "add", &v4, "dev", iface])?;
    // nodad: the address is usable at once instead of after ~1 s of
    // duplicate address detection.
    run("ip", &["-n", ns, "addr", "add", &v6, "dev", iface, "nodad"])?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    run("ip", &["-n", ns, "link", "set", iface, "up"])
}

/// Two namespaces with a veth pair; deleted on drop, even after an error.
pub struct Lab {
    pub client: String,
    pub server: String,
}

impl Lab {
    pub fn new() -> Result<Lab> {
        let base = lab_name("");
        // Construct the guard first: whatever step fails below, Drop removes
        // whichever namespaces already exist.
        let lab = Lab {
            client: format!("{base}-c"),
            server: format!("{base}-s"),
        };
        add_namespaces(&[&lab.client, &lab.server])?;
        add_veth(&lab.client, IFACE, &lab.server)?;
        address(&lab.client, IFACE, CLIENT_V4, CLIENT_V6)?;
        address(&lab.server, IFACE, SERVER_V4, SERVER_V6)?;
        lab.wait_carrier()?;
        Ok(lab)
    }

    /// The veth pair reports carrier asynchronously; sending before that
    /// would lose the SYN and add a retransmission to the capture.
    fn wait_carrier(&self) -> Result<()> {
        wait_until_up(&[(&self.client, IFACE), (&self.server, IFACE)])
    }

    /// Drops every TCP FIN arriving in `ns` (at prerouting, i.e. after the
    /// capture tap, so tcpdump still sees it).
    pub fn drop_fins(ns: &str) -> Result<()> {
        run_in(
            ns,
            &[
                "nft",
                "add table inet tsr; \
                 add chain inet tsr pre { type filter hook prerouting priority -300; }; \
                 add rule inet tsr pre tcp flags & fin == fin drop",
            ],
        )
    }

    /// Drops TCP data segments (PSH set) arriving in `ns` from the server
    /// port, after the capture tap; removed by [`Lab::allow_fins`] (same table).
    pub fn drop_data(ns: &str) -> Result<()> {
        run_in(
            ns,
            &[
                "nft",
                "add table inet tsr; \
                 add chain inet tsr pre { type filter hook prerouting priority -300; }; \
                 add rule inet tsr pre tcp sport 5000 tcp flags & psh == psh drop",
            ],
        )
    }

    /// Removes the rule installed by [`Lab::drop_fins`] or [`Lab::drop_data`].
    pub fn allow_fins(ns: &str) -> Result<()> {
        run_in(ns, &["nft", "delete table inet tsr"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        delete_namespaces(&[&self.client, &self.server]);
    }
}

/// Deletes namespaces left behind by earlier runs whose process is gone.
pub fn remove_stale() {
    for what in cleanup::remove_stale(&[]) {
        eprintln!("removed the stale {what}");
    }
}

/// Whether this process can build the lab: root or the capabilities
/// `ip netns` needs, network namespaces in the kernel, `ip` and
/// `tcpdump`. The error says what is missing.
pub fn preflight() -> std::result::Result<(), String> {
    // CAP_NET_ADMIN (12) for links and addresses, CAP_SYS_ADMIN (21) for
    // the bind mount `ip netns add` makes under /run/netns.
    const NEEDED: u64 = (1 << 12) | (1 << 21);
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0);
    if effective & NEEDED != NEEDED {
        return Err(
            "needs root (or the CAP_NET_ADMIN and CAP_SYS_ADMIN capabilities) to build \
                    network namespaces; run it with sudo"
                .into(),
        );
    }
    if !std::path::Path::new("/proc/self/ns/net").exists() {
        return Err("this kernel has no network namespaces (CONFIG_NET_NS)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("tcpdump", "tcpdump")] {
        let found = Command::new(tool)
            .arg(if tool == "ip" { "-V" } else { "--version" })
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!("needs `{tool}` (package {package})"));
        }
    }
    Ok(())
}

/// Client and server addresses for an IP version.
pub fn addrs(ipv6: bool) -> (IpAddr, IpAddr) {
    if ipv6 {
        (CLIENT_V6.into(), SERVER_V6.into())
    } else {
        (CLIENT_V4.into(), SERVER_V4.into())
    }
}

/// Waits (3 s at most) until every `(namespace, interface)` link reports
/// carrier: veth pairs come up asynchronously, and sending before that
/// would lose the SYN and add a retransmission to the capture.
pub(crate) fn wait_until_up(links: &[(&str, &str)]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3);
    for (ns, iface) in links {
        loop {
            let out = Command::new("ip")
                .args(["-n", ns, "-o", "link", "show", iface])
                .output()?;
            if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                break;
            }
            if Instant::now() > deadline {
                bail!("{iface} in {ns} never came up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}
