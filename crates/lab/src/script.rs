//! Scenario choreography: each side runs a list of [`Step`]s in a thread
//! inside its namespace; the sides synchronise through named marks on a
//! shared [`Board`], plus short sleeps so that wire order is reproducible.
//!
//! The runner also records which teardown-relevant socket calls the side
//! actually made (ground truth for the manifest), asking the kernel
//! (FIONREAD) whether data was still unread at close(), and when each
//! call began (the timeline `tcpshut lab` prints beside the segments).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use socket2::{Domain, Socket, Type};

use crate::netns::{self, Lab};

/// Port the server listens on.
pub const SERVER_PORT: u16 = 5000;
/// Port nobody listens on (refused connections).
pub const CLOSED_PORT: u16 = 5001;
/// Every client binds this port, so manifests do not churn between runs
/// (each recording has fresh namespaces, so nothing else holds it).
pub const CLIENT_PORT: u16 = 40000;
/// Guards every blocking call: a scenario that goes wrong fails, not hangs.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Socket calls relevant to teardown: the engine's vocabulary, so the
/// manifest speaks the same codes the inference does.
pub use tcpshut_engine::Call;

#[derive(Clone, Debug)]
pub enum Step {
    /// Server: bind and listen on [`SERVER_PORT`], then mark "listening".
    Listen,
    Accept,
    /// Client: bind [`CLIENT_PORT`] with SO_REUSEADDR, wait for
    /// "listening", connect to the server.
    Connect,
    /// Client: connect to [`CLOSED_PORT`]; must fail with ECONNREFUSED.
    ConnectRefused,
    Send(usize),
    /// Read exactly this many bytes.
    Recv(usize),
    /// One read() of whatever has arrived (blocks until something has).
    RecvSome,
    /// Read until end of stream; any data on the way is an error.
    RecvEof,
    Shutdown(Shutdown),
    /// SO_LINGER {on, this many seconds}: 0 makes close() reset.
    Linger(u32),
    Close,
    Sleep(u64),
    Mark(&'static str),
    Wait(&'static str),
    /// Numbered progress points, for steps written in a script file.
    Reached(u32),
    AwaitReached(u32),
    /// Drop incoming FINs in this side's namespace.
    DropFins,
    AllowFins,
    /// Drop incoming data segments from the server port (PSH set) in this
    /// side's namespace, until [`Step::AllowData`].
    DropData,
    AllowData,
    /// `sysctl -w KEY=VALUE` in this side's namespace.
    Sysctl(&'static str, &'static str),
    /// Server: like [`Step::Listen`], with SO_RCVBUF set before listen().
    ListenRcvbuf(usize),
    /// Server: like [`Step::Listen`], with TCP_FASTOPEN (queue 5) set.
    ListenFastOpen,
    /// Client: bind [`CLIENT_PORT`] and sendto(MSG_FASTOPEN) this many
    /// bytes: the connection opens with data on the SYN.
    ConnectFastOpen(usize),
    /// SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL of this many seconds.
    KeepAlive(u32),
    /// Non-blocking writes until the socket takes no more or this many
    /// bytes are queued; the count is published on the board under the name.
    SendAvailable(&'static str, usize),
    /// Read exactly the byte count published under the name.
    RecvCounted(&'static str),
    /// send() with MSG_MORE: held back, so a close() right after puts the
    /// FIN on the same segment.
    SendMore(usize),
}

impl Step {
    /// Choreography (marks, waits, sleeps): not a call the application
    /// makes, so not on the timeline.
    pub fn is_choreography(&self) -> bool {
        matches!(
            self,
            Step::Mark(_)
                | Step::Wait(_)
                | Step::Reached(_)
                | Step::AwaitReached(_)
                | Step::Sleep(_)
        )
    }

    /// Waits for the peer to do something (accept, reads): a script step
    /// after it need only wait for it to begin.
    pub fn waits_for_peer(&self) -> bool {
        matches!(
            self,
            Step::Accept | Step::Recv(_) | Step::RecvSome | Step::RecvEof | Step::RecvCounted(_)
        )
    }
}

/// How a step reads in `tcpshut lab --list` and on the timeline: the
/// script file's words where there are some (docs/lab.md).
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Listen => write!(f, "listen"),
            Step::Accept => write!(f, "accept"),
            Step::Connect => write!(f, "connect"),
            Step::ConnectRefused => write!(f, "connect (port {CLOSED_PORT}, refused)"),
            Step::Send(n) => write!(f, "send {n}"),
            Step::Recv(n) => write!(f, "recv {n}"),
            Step::RecvSome => write!(f, "recv"),
            Step::RecvEof => write!(f, "recv-eof"),
            Step::Shutdown(Shutdown::Read) => write!(f, "shutdown RD"),
            Step::Shutdown(Shutdown::Write) => write!(f, "shutdown WR"),
            Step::Shutdown(Shutdown::Both) => write!(f, "shutdown RDWR"),
            Step::Linger(secs) => write!(f, "linger on {secs}"),
            Step::Close => write!(f, "close"),
            Step::Sleep(ms) => write!(f, "sleep {ms}"),
            Step::Mark(name) => write!(f, "(mark {name})"),
            Step::Wait(name) => write!(f, "(wait for {name})"),
            Step::Reached(n) => write!(f, "(reached {n})"),
            Step::AwaitReached(n) => write!(f, "(wait for {n})"),
            Step::DropFins => write!(f, "nft: drop incoming FINs"),
            Step::AllowFins => write!(f, "nft: let FINs in again"),
            Step::DropData => write!(f, "nft: drop incoming data"),
            Step::AllowData => write!(f, "nft: let data in again"),
            Step::Sysctl(key, value) => write!(f, "sysctl {key}={value}"),
            Step::ListenRcvbuf(n) => write!(f, "listen (SO_RCVBUF {n})"),
            Step::ListenFastOpen => write!(f, "listen (TCP_FASTOPEN)"),
            Step::ConnectFastOpen(n) => write!(f, "connect (sendto MSG_FASTOPEN {n})"),
            Step::KeepAlive(secs) => write!(f, "keepalive {secs} s"),
            Step::SendAvailable(_, max) => write!(f, "send up to {max} (non-blocking)"),
            Step::RecvCounted(key) => write!(f, "recv everything of {key}"),
            Step::SendMore(n) => write!(f, "send {n} (MSG_MORE)"),
        }
    }
}

/// Named events both sides can signal and wait for.
#[derive(Default)]
pub struct Board {
    marks: Mutex<HashSet<Mark>>,
    cv: Condvar,
    counts: Mutex<HashMap<&'static str, usize>>,
}

/// A named mark of the scenario table, or a numbered one of a script file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mark {
    Named(&'static str),
    Numbered(u32),
}

impl Board {
    fn mark(&self, mark: Mark) {
        self.marks.lock().unwrap().insert(mark);
        self.cv.notify_all();
    }

    /// Signals a named mark from outside the two sides (a router's thread).
    pub fn mark_named(&self, name: &'static str) {
        self.mark(Mark::Named(name));
    }

    /// Waits for a named mark from outside the two sides.
    pub fn wait_named(&self, name: &'static str) -> Result<()> {
        self.wait(Mark::Named(name))
    }

    fn wait(&self, mark: Mark) -> Result<()> {
        let marks = self.marks.lock().unwrap();
        let (marks, _) = self
            .cv
            .wait_timeout_while(marks, TIMEOUT, |m| !m.contains(&mark))
            .unwrap();
        if !marks.contains(&mark) {
            bail!("timed out waiting for {mark:?}");
        }
        Ok(())
    }
}

fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<()> {
    // SAFETY: the option value is one int, passed with its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("setsockopt");
    }
    Ok(())
}

/// What a side did: the calls per connection (in the order this side
/// opened them), when each of its steps began (choreography left out),
/// and sockets it never closed, to be dropped only after the capture has
/// stopped.
#[derive(Default)]
pub struct SideLog {
    pub calls: Vec<Vec<Call>>,
    pub timeline: Vec<Called>,
    pub leftover: Vec<Socket>,
}

/// One call on the timeline: when it began, and what it returned where
/// that tells something (bytes read, end of stream, data left unread at
/// close(), an error such as ECONNRESET when the run keeps going).
#[derive(Clone, Debug)]
pub struct Called {
    pub at: SystemTime,
    pub step: Step,
    pub result: Option<String>,
}

/// An error as the C library names it (ECONNRESET, EPIPE, ...), or its
/// message when it is not an OS error.
fn short_error(err: &anyhow::Error) -> String {
    let os = err
        .chain()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    let name = match os {
        Some(libc::ECONNRESET) => "ECONNRESET",
        Some(libc::EPIPE) => "EPIPE",
        Some(libc::ENOTCONN) => "ENOTCONN",
        Some(libc::ECONNREFUSED) => "ECONNREFUSED",
        Some(libc::ETIMEDOUT) => "ETIMEDOUT",
        Some(libc::EAGAIN) => "EAGAIN (timed out)",
        Some(libc::EINVAL) => "EINVAL",
        _ => return format!("{:#}", err),
    };
    name.to_string()
}

struct Current {
    sock: Socket,
    /// SO_LINGER seconds, when set.
    linger: Option<u32>,
}

/// The step that failed, with its index in the side's list (a script
/// file maps it back to its line).
#[derive(Debug)]
pub struct StepFailed {
    pub index: usize,
    pub step: Step,
}

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} ({})", self.index, self.step)
    }
}

/// Everything a side needs besides its steps.
pub struct Env<'a> {
    pub ns: &'a str,
    pub board: &'a Board,
    pub local: std::net::IpAddr,
    pub server: std::net::IpAddr,
    /// A failed call is noted on the timeline and the side goes on (a
    /// script's recv after a reset shows ECONNRESET); otherwise the run
    /// fails (the scenario table's runs must go as written).
    pub keep_going: bool,
}

fn unread(sock: &Socket) -> Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return Err(std::io::Error::last_os_error()).context("FIONREAD");
    }
    Ok(n as usize)
}

fn open(cur: &Option<Current>) -> Result<&Socket> {
    cur.as_ref().map(|c| &c.sock).context("no open connection")
}

fn new_socket(addr: SocketAddr) -> Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    Ok(s)
}

/// Runs one side's steps in the calling thread, after moving it into the
/// side's namespace.
pub fn run_side(env: &Env, steps: &[Step]) -> Result<SideLog> {
    netns::enter(env.ns)?;
    let mut log = SideLog::default();
    let mut listener: Option<Socket> = None;
    let mut cur: Option<Current> = None;
    let server = |port| SocketAddr::new(env.server, port);
    for (i, step) in steps.iter().enumerate() {
        if matches!(step, Step::Connect | Step::ConnectFastOpen(_)) {
            // Waiting for the listener is choreography: the call's time
            // is when connect() itself begins.
            env.board
                .wait(Mark::Named("listening"))
                .with_context(|| StepFailed {
                    index: i,
                    step: step.clone(),
                })?;
        }
        if !step.is_choreography() {
            log.timeline.push(Called {
                at: SystemTime::now(),
                step: step.clone(),
                result: None,
            });
        }
        let mut note = None;
        let res: Result<()> = (|| {
            match step {
                Step::Listen | Step::ListenRcvbuf(_) | Step::ListenFastOpen => {
                    let s = new_socket(server(SERVER_PORT))?;
                    s.set_reuse_address(true)?;
                    if let Step::ListenRcvbuf(n) = step {
                        s.set_recv_buffer_size(*n)?;
                    }
                    if let Step::ListenFastOpen = step {
                        setsockopt_int(&s, libc::IPPROTO_TCP, libc::TCP_FASTOPEN, 5)?;
                    }
                    s.bind(&server(SERVER_PORT).into())?;
                    s.listen(8)?;
                    listener = Some(s);
                    env.board.mark(Mark::Named("listening"));
                }
                Step::Accept => {
                    let l = listener.as_ref().context("accept without listen")?;
                    let (s, _) = l.accept()?;
                    s.set_read_timeout(Some(TIMEOUT))?;
                    s.set_write_timeout(Some(TIMEOUT))?;
                    log.leftover.extend(cur.take().map(|c| c.sock));
                    cur = Some(Current {
                        sock: s,
                        linger: None,
                    });
                    log.calls.push(Vec::new());
                }
                Step::Connect => {
                    let s = new_socket(server(SERVER_PORT))?;
                    s.set_reuse_address(true)?;
                    s.bind(&SocketAddr::new(env.local, CLIENT_PORT).into())?;
                    s.connect(&server(SERVER_PORT).into())?;
                    log.leftover.extend(cur.take().map(|c| c.sock));
                    cur = Some(Current {
                        sock: s,
                        linger: None,
                    });
                    log.calls.push(Vec::new());
                }
                Step::ConnectFastOpen(n) => {
                    let s = new_socket(server(SERVER_PORT))?;
                    s.set_reuse_address(true)?;
                    s.bind(&SocketAddr::new(env.local, CLIENT_PORT).into())?;
                    let payload = vec![b'x'; *n];
                    let sent = s.send_to_with_flags(
                        &payload,
                        &server(SERVER_PORT).into(),
                        libc::MSG_FASTOPEN,
                    )?;
                    if sent != *n {
                        bail!("MSG_FASTOPEN sent {sent} of {n} bytes");
                    }
                    log.leftover.extend(cur.take().map(|c| c.sock));
                    cur = Some(Current {
                        sock: s,
                        linger: None,
                    });
                    log.calls.push(Vec::new());
                }
                Step::KeepAlive(secs) => {
                    let s = open(&cur)?;
                    s.set_keepalive(true)?;
                    let secs = *secs as libc::c_int;
                    setsockopt_int(s, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
                    setsockopt_int(s, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs)?;
                }
                Step::SendAvailable(key, max) => {
                    let s = open(&cur)?;
                    s.set_nonblocking(true)?;
                    let chunk = vec![b'x'; 4096];
                    let mut total = 0;
                    while total < *max {
                        let want = chunk.len().min(max - total);
                        match s.send(&chunk[..want]) {
                            Ok(n) => total += n,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    s.set_nonblocking(false)?;
                    env.board.counts.lock().unwrap().insert(key, total);
                }
                Step::RecvCounted(key) => {
                    let n = *env
                        .board
                        .counts
                        .lock()
                        .unwrap()
                        .get(key)
                        .context("count not published")?;
                    let mut buf = vec![0u8; n];
                    open(&cur)?.read_exact(&mut buf)?;
                }
                Step::SendMore(n) => {
                    let payload = vec![b'x'; *n];
                    let sent = open(&cur)?.send_with_flags(&payload, libc::MSG_MORE)?;
                    if sent != *n {
                        bail!("MSG_MORE sent {sent} of {n} bytes");
                    }
                }
                Step::ConnectRefused => {
                    let s = new_socket(server(CLOSED_PORT))?;
                    s.bind(&SocketAddr::new(env.local, CLIENT_PORT).into())?;
                    match s.connect(&server(CLOSED_PORT).into()) {
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                        other => bail!("expected ECONNREFUSED, got {other:?}"),
                    }
                    // close() of a socket that never connected: not a teardown.
                    log.calls.push(Vec::new());
                }
                Step::Send(n) => {
                    let payload = vec![b'x'; *n];
                    open(&cur)?.write_all(&payload)?;
                }
                Step::Recv(n) => {
                    let mut buf = vec![0u8; *n];
                    open(&cur)?.read_exact(&mut buf)?;
                }
                Step::RecvSome => {
                    // How much one read() gets depends on timing; the
                    // wire shows it, the timeline need not.
                    let mut buf = vec![0u8; 65536];
                    note = Some(match open(&cur)?.read(&mut buf)? {
                        0 => "0: end of stream".to_string(),
                        n => format!("{n} bytes"),
                    });
                }
                Step::RecvEof => {
                    let mut buf = [0u8; 64];
                    let got = open(&cur)?.read(&mut buf)?;
                    if got != 0 {
                        bail!("expected end of stream, got {got} bytes");
                    }
                }
                Step::Shutdown(how) => {
                    open(&cur)?.shutdown(*how)?;
                    log.calls
                        .last_mut()
                        .context("no connection")?
                        .push(match how {
                            Shutdown::Write => Call::ShutWr,
                            Shutdown::Read => Call::ShutRd,
                            Shutdown::Both => Call::ShutRdwr,
                        });
                }
                Step::Linger(secs) => {
                    let c = cur.as_mut().context("no open connection")?;
                    c.sock
                        .set_linger(Some(Duration::from_secs(u64::from(*secs))))?;
                    c.linger = Some(*secs);
                }
                Step::Close => {
                    let c = cur.take().context("no open connection")?;
                    let left = unread(&c.sock)?;
                    if left > 0 {
                        note = Some(format!("{left} bytes unread"));
                    }
                    let call = if c.linger == Some(0) {
                        Call::Linger0
                    } else if left > 0 {
                        Call::CloseUnread
                    } else {
                        Call::Close
                    };
                    log.calls.last_mut().context("no connection")?.push(call);
                    drop(c.sock);
                }
                Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                Step::Mark(name) => env.board.mark(Mark::Named(name)),
                Step::Wait(name) => env.board.wait(Mark::Named(name))?,
                Step::Reached(n) => env.board.mark(Mark::Numbered(*n)),
                Step::AwaitReached(n) => env.board.wait(Mark::Numbered(*n))?,
                Step::DropFins => Lab::drop_fins(env.ns)?,
                Step::AllowFins => Lab::allow_fins(env.ns)?,
                Step::DropData => Lab::drop_data(env.ns)?,
                Step::AllowData => Lab::allow_fins(env.ns)?,
                Step::Sysctl(key, value) => {
                    netns::run_in(env.ns, &["sysctl", "-q", "-w", &format!("{key}={value}")])?
                }
            }
            Ok(())
        })();
        let res = match res {
            Err(err) if env.keep_going && !step.is_choreography() => {
                note = Some(short_error(&err));
                Ok(())
            }
            other => other,
        };
        res.with_context(|| StepFailed {
            index: i,
            step: step.clone(),
        })?;
        if let (Some(note), false) = (note, step.is_choreography()) {
            if let Some(last) = log.timeline.last_mut() {
                last.result = Some(note);
            }
        }
    }
    log.leftover.extend(cur.map(|c| c.sock));
    log.leftover.extend(listener);
    Ok(log)
}
