//! The `tcpshut lab --script FILE` format: one step per line, `SIDE STEP`,
//! in the order the steps should happen (docs/lab.md has the grammar).
//!
//! A script is turned into the two sides' [`Step`] lists the scenario
//! table uses, with numbered marks that keep the written order: a step
//! waits until the other side's latest earlier step has finished (or, if
//! that step waits for the peer — accept, recv — has begun), and, when
//! the side changes, [`PAUSE_MS`] more so that what the other side put on
//! the wire has arrived.

use std::fmt;
use std::net::Shutdown;

use crate::script::Step;

/// Pause when the side changes: longer than the delayed-ACK timer (40 ms),
/// far below the 200 ms retransmission timeout (as in the scenario table).
pub const PAUSE_MS: u64 = 100;
/// Bounds, so that a script cannot make a run unbounded.
pub const MAX_STEPS: usize = 200;
pub const MAX_SEND: usize = 1 << 20;
pub const MAX_SLEEP_MS: u64 = 5_000;
/// close() with SO_LINGER waits up to this long; above the blocking-call
/// timeout of 5 s the run would fail anyway.
pub const MAX_LINGER_SECS: u32 = 4;
/// Longest script file read, in bytes.
pub const MAX_BYTES: u64 = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Server => "server",
        })
    }
}

/// A syntax error, with its 1-based line number.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A parsed script: each side's steps, and the line each step came from.
#[derive(Debug)]
pub struct Script {
    /// The steps as written, in order.
    pub lines: Vec<(usize, Side, Step)>,
    pub client: Vec<Step>,
    pub server: Vec<Step>,
    client_lines: Vec<Option<usize>>,
    server_lines: Vec<Option<usize>>,
}

impl Script {
    /// The line a side's step (by index in its list) was written on.
    pub fn line_of(&self, side: Side, index: usize) -> Option<usize> {
        let lines = match side {
            Side::Client => &self.client_lines,
            Side::Server => &self.server_lines,
        };
        lines.get(index).copied().flatten()
    }
}

const GRAMMAR: &str = "connect, accept, send N, recv [N], recv-eof, shutdown RD|WR|RDWR, \
                       linger on SECS, close, sleep MS";

fn number<T: std::str::FromStr + PartialOrd + fmt::Display>(
    word: Option<&str>,
    what: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    let word = word.ok_or_else(|| format!("{what} is missing"))?;
    let n: T = word
        .parse()
        .map_err(|_| format!("{what} must be a number, not `{word}`"))?;
    if n < min || n > max {
        return Err(format!("{what} must be between {min} and {max}, not {n}"));
    }
    Ok(n)
}

/// One step, from the words after the side.
fn step(side: Side, words: &[&str]) -> Result<Step, String> {
    let (verb, args) = words
        .split_first()
        .ok_or_else(|| format!("a step is missing after `{side}` ({GRAMMAR})"))?;
    let arg = args.first().copied();
    let step = match *verb {
        "connect" if side == Side::Client => Step::Connect,
        "connect" => return Err("only the client connects".into()),
        "accept" if side == Side::Server => Step::Accept,
        "accept" => return Err("only the server accepts".into()),
        "send" => Step::Send(number(arg, "the byte count", 1, MAX_SEND)?),
        "recv" if arg.is_none() => Step::RecvSome,
        "recv" => Step::Recv(number(arg, "the byte count", 1, MAX_SEND)?),
        "recv-eof" | "recv-nothing" => Step::RecvEof,
        "shutdown" => match arg.map(str::to_ascii_uppercase).as_deref() {
            Some("RD" | "SHUT_RD") => Step::Shutdown(Shutdown::Read),
            Some("WR" | "SHUT_WR") => Step::Shutdown(Shutdown::Write),
            Some("RDWR" | "SHUT_RDWR") => Step::Shutdown(Shutdown::Both),
            Some(other) => return Err(format!("shutdown takes RD, WR or RDWR, not `{other}`")),
            None => return Err("shutdown takes RD, WR or RDWR".into()),
        },
        "linger" => {
            if arg != Some("on") {
                return Err("write `linger on SECS` (SO_LINGER {on, SECS})".into());
            }
            Step::Linger(number(args.get(1).copied(), "SECS", 0, MAX_LINGER_SECS)?)
        }
        "close" => Step::Close,
        "sleep" => Step::Sleep(number(arg, "the pause in ms", 0, MAX_SLEEP_MS)?),
        other => return Err(format!("unknown step `{other}` (steps: {GRAMMAR})")),
    };
    let expected = match step {
        Step::Send(_) | Step::Recv(_) | Step::Shutdown(_) | Step::Sleep(_) => 1,
        Step::Linger(_) => 2,
        _ => 0,
    };
    if args.len() > expected {
        return Err(format!(
            "`{verb}` takes {expected} argument(s); `{}` is one too many",
            args[expected]
        ));
    }
    Ok(step)
}

/// Parses a script; the first error names its line.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = content.split_whitespace().collect();
        let Some((first, rest)) = words.split_first() else {
            continue;
        };
        let side = match first.to_ascii_lowercase().as_str() {
            "client" => Side::Client,
            "server" => Side::Server,
            other => {
                return Err(ParseError {
                    line,
                    message: format!("a step starts with `client` or `server`, not `{other}`"),
                })
            }
        };
        let step = step(side, rest).map_err(|message| ParseError { line, message })?;
        if lines.len() == MAX_STEPS {
            return Err(ParseError {
                line,
                message: format!("more than {MAX_STEPS} steps"),
            });
        }
        lines.push((line, side, step));
    }
    if !lines
        .iter()
        .any(|(_, side, step)| *side == Side::Client && matches!(step, Step::Connect))
    {
        return Err(ParseError {
            line: lines.first().map_or(1, |l| l.0),
            message: "the script never connects (`client connect`)".into(),
        });
    }
    Ok(compile(lines))
}

/// Numbered marks of step `k`: it began, it finished.
fn began(k: usize) -> u32 {
    2 * k as u32
}

fn finished(k: usize) -> u32 {
    2 * k as u32 + 1
}

/// The two sides' step lists, keeping the written order.
fn compile(lines: Vec<(usize, Side, Step)>) -> Script {
    let mut script = Script {
        lines: Vec::new(),
        // The server listens before anything else happens.
        client: Vec::new(),
        server: vec![Step::Listen],
        client_lines: Vec::new(),
        server_lines: vec![None],
    };
    for (k, (line, side, step)) in lines.iter().enumerate() {
        let mut before = Vec::new();
        let other = lines[..k]
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| l.1 != *side);
        if let Some((j, (_, _, other_step))) = other {
            before.push(Step::AwaitReached(if other_step.waits_for_peer() {
                began(j)
            } else {
                finished(j)
            }));
        }
        if k > 0 && lines[k - 1].1 != *side {
            before.push(Step::Sleep(PAUSE_MS));
        }
        let (steps, origin) = match side {
            Side::Client => (&mut script.client, &mut script.client_lines),
            Side::Server => (&mut script.server, &mut script.server_lines),
        };
        for s in before {
            steps.push(s);
            origin.push(None);
        }
        steps.push(Step::Reached(began(k)));
        origin.push(None);
        steps.push(step.clone());
        origin.push(Some(*line));
        steps.push(Step::Reached(finished(k)));
        origin.push(None);
    }
    script.lines = lines;
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> ParseError {
        parse(text).expect_err("a syntax error")
    }

    #[test]
    fn every_step_kind_parses() {
        let s = parse(
            "# comment\n\
             client connect\n\
             server accept   # trailing comment\n\
             client send 100\n\
             server recv 100\n\
             server recv\n\
             client recv-eof\n\
             server recv-nothing\n\
             client shutdown WR\n\
             server shutdown rdwr\n\
             client shutdown SHUT_RD\n\
             client linger on 0\n\
             client sleep 10\n\
             client close\n",
        )
        .unwrap();
        let written: Vec<String> = s.lines.iter().map(|(_, _, st)| st.to_string()).collect();
        assert_eq!(
            written,
            [
                "connect",
                "accept",
                "send 100",
                "recv 100",
                "recv",
                "recv-eof",
                "recv-eof",
                "shutdown WR",
                "shutdown RDWR",
                "shutdown RD",
                "linger on 0",
                "sleep 10",
                "close"
            ]
        );
        assert_eq!(s.lines[0].0, 2);
        assert_eq!(s.lines[1].1, Side::Server);
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            ("client connect\nclient jump\n", 2, "unknown step `jump`"),
            (
                "client connect\n\nserver send\n",
                3,
                "the byte count is missing",
            ),
            (
                "client connect\nclient send lots\n",
                2,
                "must be a number, not `lots`",
            ),
            ("client connect\nclient send 0\n", 2, "between 1 and"),
            ("client connect\nclient send 2000000\n", 2, "between 1 and"),
            (
                "client connect\nclient shutdown BOTH\n",
                2,
                "RD, WR or RDWR, not `BOTH`",
            ),
            ("client connect\nclient shutdown\n", 2, "RD, WR or RDWR"),
            ("client connect\nclient linger 0\n", 2, "linger on SECS"),
            (
                "client connect\nclient linger on 60\n",
                2,
                "between 0 and 4",
            ),
            (
                "client connect\nclient sleep 99999\n",
                2,
                "between 0 and 5000",
            ),
            ("client connect\nclient close now\n", 2, "one too many"),
            (
                "client connect\nboth close\n",
                2,
                "`client` or `server`, not `both`",
            ),
            ("server connect\n", 1, "only the client connects"),
            ("client accept\n", 1, "only the server accepts"),
            ("client\n", 1, "a step is missing"),
            ("# nothing\nserver accept\n", 2, "never connects"),
            ("", 1, "never connects"),
        ];
        for (text, line, message) in cases {
            let e = error(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e}");
        }
        let long = "client connect\n".repeat(MAX_STEPS + 1);
        assert_eq!(error(&long).line, MAX_STEPS + 1);
        assert!(error(&long)
            .to_string()
            .starts_with(&format!("line {}: ", MAX_STEPS + 1)));
    }

    /// The written order is kept: a step waits for the other side's
    /// previous step to finish, or only to begin when that one waits for
    /// the peer, then pauses when the side changes.
    #[test]
    fn order_is_kept_with_marks() {
        let s =
            parse("client connect\nserver accept\nserver recv 10\nclient send 10\nclient close\n")
                .unwrap();
        use Step::*;
        let show = |steps: &[Step]| steps.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>();
        assert_eq!(
            show(&s.client),
            show(&[
                Reached(0),
                Connect,
                Reached(1),
                // recv 10 (step 2) waits for the peer: its start is enough.
                AwaitReached(4),
                Sleep(PAUSE_MS),
                Reached(6),
                Send(10),
                Reached(7),
                AwaitReached(4),
                Reached(8),
                Close,
                Reached(9),
            ])
        );
        assert_eq!(
            show(&s.server),
            show(&[
                Listen,
                AwaitReached(1),
                Sleep(PAUSE_MS),
                Reached(2),
                Accept,
                Reached(3),
                AwaitReached(1),
                Reached(4),
                Recv(10),
                Reached(5),
            ])
        );
        assert_eq!(s.line_of(Side::Client, 6), Some(4));
        assert_eq!(s.line_of(Side::Server, 4), Some(2));
        assert_eq!(s.line_of(Side::Server, 0), None);
    }
}
