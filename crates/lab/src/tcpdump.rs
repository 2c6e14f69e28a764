//! Drives tcpdump inside a namespace: start, wait until it is really
//! listening, stop with SIGINT, and check its own packet statistics.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Large enough for any frame veth hands us (GSO off or on).
const SNAPLEN: &str = "262144";

/// How the capture is taken.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `-i any -y LINUX_SLL2` instead of the veth with Ethernet headers.
    pub any_sll2: bool,
    /// `--time-stamp-precision=nano` (nanosecond pcap magic).
    pub nano: bool,
    /// `-s 80` instead of the full snaplen: frames cut after the TCP header.
    pub snap80: bool,
}

pub struct Tcpdump {
    child: Child,
    lines: Receiver<String>,
}

impl Tcpdump {
    /// Starts tcpdump in `ns` writing to `file`, returning once tcpdump has
    /// announced "listening on", i.e. its capture socket is open.
    pub fn start(ns: &str, iface: &str, file: &Path, opt: Options) -> Result<Tcpdump> {
        let mut cmd = Command::new("ip");
        let snaplen = if opt.snap80 { "80" } else { SNAPLEN };
        cmd.args(["netns", "exec", ns, "tcpdump", "-n", "-U", "-s", snaplen])
            // Without it TPACKET_V3 hands packets over in blocks retired by a
            // 1 s timeout, and whatever sits in the open block at SIGINT is
            // lost: short captures would come out empty.
            .arg("--immediate-mode")
            // Stay root: otherwise the files belong to the tcpdump user.
            .args(["-Z", "root"])
            // A 16 MiB ring (the default is 2 MiB): on a loaded machine
            // tcpdump may not run for a while, and what overflows the
            // ring is lost (and counted: `stop` refuses such a capture).
            .args(["-B", "16384"])
            .arg("-w")
            .arg(file);
        if opt.any_sll2 {
            cmd.args(["-i", "any", "-y", "LINUX_SLL2"]);
        } else {
            cmd.args(["-i", iface]);
        }
        if opt.nano {
            cmd.arg("--time-stamp-precision=nano");
        }
        // Only TCP: ARP, neighbour discovery and MLD would make packet
        // counts depend on timing without showing anything about teardown.
        cmd.arg("tcp");
        // `ip netns exec` execs tcpdump in place, so the child pid is
        // tcpdump's own and SIGINT reaches it directly.
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tcpdump")?;
        crate::cleanup::child_started(child.id());
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let td = Tcpdump { child, lines };
        loop {
            match td.lines.recv_timeout(Duration::from_secs(5)) {
                Ok(line) if line.contains("listening on") => return Ok(td),
                Ok(_) => continue,
                Err(_) => bail!("tcpdump did not start listening"),
            }
        }
    }

    /// Stops tcpdump with SIGINT (so it flushes and prints statistics) and
    /// returns the number of packets it says it captured.
    pub fn stop(mut self) -> Result<u64> {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let status = self.child.wait()?;
        crate::cleanup::child_gone(self.child.id());
        let stats: Vec<String> = self.lines.iter().collect();
        if !status.success() {
            bail!("tcpdump exited with {status}: {}", stats.join("; "));
        }
        let number = |what: &str| {
            stats.iter().find_map(|l| {
                l.strip_suffix(what)
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
        };
        let captured = number("packets captured").context("no tcpdump statistics")?;
        if let Some(dropped) = number("packets dropped by kernel").filter(|&d| d > 0) {
            bail!("tcpdump: {dropped} packets dropped by kernel");
        }
        Ok(captured)
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        // Only reached with tcpdump still running on an error path.
        let _ = self.child.kill();
        let _ = self.child.wait();
        crate::cleanup::child_gone(self.child.id());
    }
}
