//! The Lua plugin and the profile in real tshark (issue #3).
//!
//! Each tshark run gets its own HOME and XDG_CONFIG_HOME, so nothing leaks
//! into (or from) the real user configuration.

use crate::util::{
    assert_no_lua_error, csv_field, parse_csv, repo_root, require_tool, strings, testdata_captures,
    write_pcap, Frame,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tcpshut_engine::{Event, Severity};

const HEADER: &str = "frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,events,calls,summary,severity,related";

/// The fields the plugin adds, in sidecar column order where they come from one.
const FIELDS: &[&str] = &[
    "frame.number",
    "tcpshut.conn",
    "tcpshut.events",
    "tcpshut.event",
    "tcpshut.sender_state",
    "tcpshut.receiver_state",
    "tcpshut.calls",
    "tcpshut.call",
    "tcpshut.summary",
    "tcpshut.severity",
    "tcpshut.related",
    "_ws.expert.message",
    "tcpshut.side",
    "tcpshut.outcome",
    "tcpshut.closer",
    "tcpshut.client",
    "tcpshut.server",
    "tcpshut.client_calls",
    "tcpshut.server_calls",
    "tcpshut.client_call",
    "tcpshut.server_call",
];

type Dissected = BTreeMap<String, Vec<String>>;

/// tshark's arguments for each frame's events and expert messages, a line
/// a frame.
const EVENTS_AND_EXPERTS: [&str; 6] = [
    "-T",
    "fields",
    "-e",
    "tcpshut.events",
    "-e",
    "_ws.expert.message",
];

mod install;
mod native;

fn plugin_script() -> PathBuf {
    repo_root().join("lua/tcpshut.lua")
}

/// The Wiresharks the plugin is tested in (issue #18): the host's tshark
/// (Debian 12: 4.0, Lua 5.2) and the tsharks of the chroots that
/// `scripts/wireshark-chroots` makes (Debian 13: 4.4, Debian sid: 4.6, both
/// Lua 5.4). Every tshark runs as the normal user `tcpshut-test` (made by
/// `scripts/install-deps`): 4.4 and later skip personal plugins for root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wireshark {
    V4_0,
    V4_4,
    V4_6,
}

/// The normal user the tests run Wireshark as.
const TEST_USER: &str = "tcpshut-test";

/// Runs `program` inside `root`, as `user` (uid:gid) when given, in `cwd`,
/// in a private mount namespace that shows the host's temporary folder
/// (where every sandbox lives), `/proc` and `/dev` in the chroot.
const IN_CHROOT: &str = r#"r=$1 t=$2 u=$3 cwd=$4; shift 4
mkdir -p "$r$t" && mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" && mount --bind "$t" "$r$t" || exit 125
exec chroot ${u:+--userspec="$u"} "$r" sh -c 'cd "$0" && exec "$@"' "$cwd" "$@""#;

impl Wireshark {
    /// The Debian suite of its chroot; `None` for the host's.
    fn suite(self) -> Option<&'static str> {
        match self {
            Wireshark::V4_0 => None,
            Wireshark::V4_4 => Some("trixie"),
            Wireshark::V4_6 => Some("sid"),
        }
    }

    /// How `tshark --version` starts in this Wireshark.
    fn version_line(self) -> &'static str {
        match self {
            Wireshark::V4_0 => "TShark (Wireshark) 4.0.",
            Wireshark::V4_4 => "TShark (Wireshark) 4.4.",
            Wireshark::V4_6 => "TShark (Wireshark) 4.6.",
        }
    }

    /// The chroot's folder (`$TCPSHUT_CHROOTS/SUITE`, by default under
    /// /var/cache/tcpshut/chroots), which must hold tshark.
    fn root(self) -> Option<PathBuf> {
        let suite = self.suite()?;
        let base = std::env::var_os("TCPSHUT_CHROOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/tcpshut/chroots"));
        let root = base.join(suite);
        assert!(
            root.join("usr/bin/tshark").is_file(),
            "{self:?}: no chroot with tshark at {} (scripts/wireshark-chroots makes it; \
             scripts/install-deps runs it)",
            root.display()
        );
        assert!(
            is_root(),
            "{self:?}: running tshark in the chroot {} needs root",
            root.display()
        );
        Some(root)
    }

    /// A command that runs `program` (a name on the chroot's PATH, or a file
    /// in a sandbox) in this Wireshark's system, in `cwd`, as `user` (when
    /// the tests run as root), else as whoever runs the tests.
    fn command(self, program: &Path, cwd: &Path, user: Option<&str>) -> Command {
        let user = user.and_then(user_when_root);
        match self.root() {
            None => {
                let mut cmd = match user {
                    Some((uid, gid)) => {
                        let mut c = Command::new("setpriv");
                        c.arg(format!("--reuid={uid}"))
                            .arg(format!("--regid={gid}"))
                            .args(["--clear-groups", "--"])
                            .arg(program);
                        c
                    }
                    None => Command::new(program),
                };
                cmd.current_dir(cwd);
                cmd
            }
            Some(root) => {
                let tmp = std::env::temp_dir().canonicalize().unwrap();
                let mut cmd = Command::new("unshare");
                cmd.args([
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    IN_CHROOT,
                    "sh",
                ])
                .arg(root)
                .arg(tmp)
                .arg(user.map(|(u, g)| format!("{u}:{g}")).unwrap_or_default())
                .arg(cwd)
                .arg(program);
                cmd
            }
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The user's uid and gid when the tests run as root (they then run
/// Wireshark as that user); `None` when they already run as a normal user.
fn user_when_root(name: &str) -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    Some(
        user_ids(name)
            .unwrap_or_else(|| panic!("no user {name} (scripts/install-deps creates it)")),
    )
}

/// The test user's uid and gid (see [`user_when_root`]).
fn test_user() -> Option<(u32, u32)> {
    user_when_root(TEST_USER)
}

/// A user's uid and gid, from /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// A private Wireshark configuration: HOME and XDG_CONFIG_HOME in a temp
/// dir owned by the test user, for one Wireshark.
struct Sandbox {
    dir: tempfile::TempDir,
    ws: Wireshark,
}

impl Sandbox {
    /// A sandbox with the plugin and the profile installed by `tcpshut
    /// wireshark install`, as a user would.
    fn installed(ws: Wireshark) -> Sandbox {
        let sb = Sandbox::new(ws);
        let out = sb.tcpshut(&["wireshark", "install", "--lua"]);
        assert!(
            out.status.success(),
            "{ws:?}: tcpshut wireshark install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sb
    }

    /// `tshark -z tcpshut,conns` on the capture `name` in the sandbox:
    /// the plugin's connections table, with no Lua error.
    fn connections_table(&self, name: &str) -> String {
        lua_clean_stdout(
            name,
            self.tshark_reading(&self.path(name))
                .args(["-q", "-z", "tcpshut,conns"]),
        )
    }

    /// `tshark -q -n -r CAPTURE -z expert` with the plugin and `sidecar`:
    /// the expert report, with no Lua error.
    fn expert_report(&self, capture: &Path, sidecar: &Path) -> String {
        lua_clean_stdout(
            "-z expert",
            self.tshark_reading(capture)
                .args(self.with_plugin(sidecar))
                .args(["-q", "-z", "expert"]),
        )
    }

    /// Copies `testdata/SOURCE` into the sandbox, under its file name.
    fn copy_testdata(&self, source: &str) -> PathBuf {
        let copy = self.path(Path::new(source).file_name().unwrap().to_str().unwrap());
        std::fs::copy(repo_root().join("testdata").join(source), &copy).unwrap();
        copy
    }

    /// `tcpshut annotate NAME` (a capture in the sandbox) as the test
    /// user, which must succeed.
    fn annotate(&self, name: &str) {
        let out = self.tcpshut(&["annotate", name]);
        assert!(
            out.status.success(),
            "{:?}: tcpshut annotate {name}: {}",
            self.ws,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The numbers of the frames of `capture` that the display filter
    /// `filter` keeps, with the plugin and `sidecar`.
    fn frames_matching(&self, capture: &Path, sidecar: &Path, filter: &str) -> Vec<String> {
        let args = [self.with_plugin(sidecar), vec!["-Y".into(), filter.into()]].concat();
        frame_numbers(&self.dissect(capture, &args, &["frame.number"]))
    }

    /// Writes the sidecar of `rows` as `name` in the sandbox.
    fn sidecar(&self, name: &str, rows: &[[String; 16]]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, sidecar_text(rows)).unwrap();
        path
    }

    /// [`Sandbox::copy_testdata`], then [`Sandbox::annotate`]: the copy.
    fn annotated_testdata(&self, source: &str) -> PathBuf {
        let cap = self.copy_testdata(source);
        self.annotate(cap.file_name().unwrap().to_str().unwrap());
        cap
    }

    fn new(ws: Wireshark) -> Sandbox {
        if ws == Wireshark::V4_0 {
            require_tool("tshark", "Wireshark plugin tests");
        }
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        if let Some((uid, gid)) = test_user() {
            for d in [dir.path(), &home] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
            }
        }
        Sandbox { dir, ws }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The built `tcpshut`, linked (or copied) into the sandbox so that the
    /// test user and the chroots can run it.
    fn tcpshut_binary(&self) -> PathBuf {
        let bin = self.path("tcpshut-bin");
        if !bin.exists() {
            let built = Path::new(env!("CARGO_BIN_EXE_tcpshut"));
            match std::fs::hard_link(built, &bin) {
                Ok(()) => {}
                // another thread linked it first: copying onto that link
                // would truncate the built binary itself
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) => {
                    std::fs::copy(built, &bin).unwrap();
                }
            }
        }
        bin
    }

    /// Runs the built `tcpshut` in this sandbox's Wireshark system with its
    /// HOME and config dir, as the test user (`as_user`) or as the caller.
    fn tcpshut_as(&self, args: &[&str], as_user: bool) -> std::process::Output {
        self.tcpshut_command(as_user.then_some(TEST_USER))
            .args(args)
            .output()
            .expect("tcpshut runs")
    }

    /// The built `tcpshut` as `user`, with this sandbox's HOME and config.
    fn tcpshut_command(&self, user: Option<&str>) -> Command {
        let mut cmd = self
            .ws
            .command(&self.tcpshut_binary(), self.dir.path(), user);
        cmd.env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join("cfg"))
            .env_remove("WIRESHARK_CONFIG_DIR")
            // `wireshark open` prints the command instead of starting a GUI
            .env("TCPSHUT_WIRESHARK", self.path("no-such-wireshark"));
        cmd
    }

    /// Runs the built `tcpshut` as the test user.
    fn tcpshut(&self, args: &[&str]) -> std::process::Output {
        self.tcpshut_as(args, true)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A copy of the plugin in the sandbox, readable wherever tshark runs.
    fn plugin(&self) -> PathBuf {
        let copy = self.path("tcpshut.lua");
        if !copy.exists() {
            std::fs::copy(plugin_script(), &copy).unwrap();
        }
        copy
    }

    /// tshark of this sandbox's Wireshark, as the test user.
    fn tshark(&self) -> Command {
        let mut cmd = self
            .ws
            .command(Path::new("tshark"), self.dir.path(), Some(TEST_USER));
        cmd.env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join("cfg"))
            .env_remove("TCPSHUT_SIDECAR")
            .env_remove("WIRESHARK_CONFIG_DIR");
        cmd
    }

    /// [`Sandbox::tshark`] reading `capture` with `-n -r`; the caller adds
    /// the rest.
    fn tshark_reading(&self, capture: &Path) -> Command {
        let mut cmd = self.tshark();
        cmd.args(["-n", "-r"]).arg(capture);
        cmd
    }

    /// Dissects `capture` with `args` added, returning each frame's fields.
    fn dissect(&self, capture: &Path, args: &[String], fields: &[&str]) -> Vec<Dissected> {
        let mut cmd = self.tshark_reading(capture);
        cmd.args(args);
        dissected_by(&format!("{:?}: tshark {args:?}", self.ws), &mut cmd, fields)
    }

    /// `-X lua_script:PLUGIN`: the plugin, as a script tshark loads.
    fn with_script(&self) -> [String; 2] {
        lua_script(&self.plugin())
    }

    /// `-X lua_script:PLUGIN -o tcpshut.sidecar:SIDECAR`.
    fn with_plugin(&self, sidecar: &Path) -> Vec<String> {
        [self.with_script(), preference(sidecar)].concat()
    }
}

/// `-X lua_script:SCRIPT`.
fn lua_script(script: &Path) -> [String; 2] {
    ["-X".into(), format!("lua_script:{}", script.display())]
}

/// `-o tcpshut.sidecar:SIDECAR`.
fn preference(sidecar: &Path) -> [String; 2] {
    [
        "-o".into(),
        format!("tcpshut.sidecar:{}", sidecar.display()),
    ]
}

/// Runs `cmd` (a tshark) and returns its standard output, which with its
/// standard error shows no Lua error (`what` names the run).
fn lua_clean_stdout(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert_no_lua_error(what, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` (a tshark, killed after `secs` seconds), which must end in
/// time and show no Lua error (`what` names the run).
fn output_without_lua_error(what: &str, cmd: Command, secs: u64) -> std::process::Output {
    let out = output_within(cmd, secs).unwrap_or_else(|| panic!("{what}: tshark hangs"));
    assert_no_lua_error(what, &out);
    out
}

/// Runs `cmd` (a tshark, no Lua error) with `-T json` and `fields`,
/// returning each frame's fields: every value a string.
fn dissected_by(what: &str, cmd: &mut Command, fields: &[&str]) -> Vec<Dissected> {
    cmd.args(["-T", "json"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("running tshark");
    assert_no_lua_error(what, &out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tshark -T json output: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    json.as_array()
        .expect("a JSON array")
        .iter()
        .map(|pkt| {
            let layers = &pkt["_source"]["layers"];
            let mut m = Dissected::new();
            for f in fields {
                if let Some(vals) = layers.get(*f) {
                    let vals = vals
                        .as_array()
                        .unwrap_or_else(|| panic!("{what}: {f} is not an array: {vals}"));
                    m.insert(
                        f.to_string(),
                        vals.iter()
                            .map(|v| {
                                v.as_str()
                                    .unwrap_or_else(|| panic!("{what}: {f}: not a string: {v}"))
                                    .to_string()
                            })
                            .collect(),
                    );
                }
            }
            m
        })
        .collect()
}

/// The paths a `tcpshut wireshark install` printed, one a line.
fn printed_paths(out: &std::process::Output) -> Vec<PathBuf> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Fails, showing its standard error, unless the run `out` succeeded.
fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The numbers of `frames`.
fn frame_numbers(frames: &[Dissected]) -> Vec<String> {
    frames.iter().map(|d| one(d, "frame.number")).collect()
}

/// The tcpshut expert items of `frames`: exactly one (`what` names the
/// run), returned.
fn the_one_error(what: &str, frames: &[Dissected]) -> String {
    let errs: Vec<String> = frames.iter().flat_map(tcpshut_experts).collect();
    assert_eq!(errs.len(), 1, "{what}: {errs:?}");
    errs.into_iter().next().unwrap()
}

/// Frame `num` of `frames` shows no row (a row rejected) and exactly one
/// tcpshut expert item, which holds `needle`; returns that item.
fn row_rejected(what: &str, frames: &[Dissected], num: &str, needle: &str) -> String {
    let d = frames
        .iter()
        .find(|d| one(d, "frame.number") == num)
        .unwrap();
    assert!(!has_tcpshut_fields(d), "{what} frame {num}: {d:?}");
    let errs = tcpshut_experts(d);
    assert_eq!(errs.len(), 1, "{what} frame {num}: {errs:?}");
    assert!(errs[0].contains(needle), "{what} frame {num}: {errs:?}");
    errs.into_iter().next().unwrap()
}

fn one(d: &Dissected, field: &str) -> String {
    d.get(field).map(|v| v.join(",")).unwrap_or_default()
}

fn has_tcpshut_fields(d: &Dissected) -> bool {
    d.keys().any(|k| k.starts_with("tcpshut."))
}

fn tcpshut_experts(d: &Dissected) -> Vec<String> {
    d.get("_ws.expert.message")
        .into_iter()
        .flatten()
        .filter(|m| m.contains("tcpshut"))
        .cloned()
        .collect()
}

/// The sidecar's columns the plugin shows as they are, each as the field
/// `tcpshut.NAME`. They are read by name, as the plugin does (a newer
/// sidecar may add columns or order them otherwise), with `frame`.
const SHOWN_AS_IS: &[&str] = &[
    "conn",
    "events",
    "sender_state",
    "receiver_state",
    "calls",
    "summary",
    "severity",
    "related",
];

/// Every frame with a sidecar row shows exactly that row; the others show
/// nothing. The sidecar's columns are found by their header names.
fn assert_frames_match_sidecar(what: &str, frames: &[Dissected], sidecar_text: &str) {
    let rows = parse_csv(sidecar_text);
    let header = &rows[0];
    let column: BTreeMap<&str, usize> = std::iter::once(&"frame")
        .chain(SHOWN_AS_IS)
        .map(|name| {
            let at = header.iter().position(|h| h == name).unwrap_or_else(|| {
                panic!("{what}: sidecar header {header:?} has no column {name}")
            });
            (*name, at)
        })
        .collect();
    let mut by_frame = BTreeMap::new();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len(), "{what}: sidecar row {row:?}");
        let cell: BTreeMap<&str, String> = column
            .iter()
            .map(|(name, at)| (*name, row[*at].clone()))
            .collect();
        by_frame.insert(cell["frame"].parse::<u64>().unwrap(), cell);
    }
    let mut seen = 0;
    for d in frames {
        let num: u64 = one(d, "frame.number").parse().unwrap();
        let Some(row) = by_frame.get(&num) else {
            assert!(
                !has_tcpshut_fields(d),
                "{what}: frame {num} has no row but shows {d:?}"
            );
            continue;
        };
        seen += 1;
        let events: Vec<String> = if row["events"].is_empty() {
            vec![]
        } else {
            row["events"].split(';').map(str::to_string).collect()
        };
        let got = |f: &str| one(d, f);
        for name in SHOWN_AS_IS {
            assert_eq!(
                got(&format!("tcpshut.{name}")),
                row[name],
                "{what}: frame {num} {name}"
            );
        }
        assert_eq!(
            d.get("tcpshut.event").cloned().unwrap_or_default(),
            events,
            "{what}: frame {num} event items"
        );
        let mut calls: Vec<String> = Vec::new();
        for call in row["calls"].split(['>', '|']).filter(|c| !c.is_empty()) {
            if !calls.iter().any(|c| c == call) {
                calls.push(call.to_string());
            }
        }
        assert_eq!(
            d.get("tcpshut.call").cloned().unwrap_or_default(),
            calls,
            "{what}: frame {num} call items"
        );
        // one expert item per event that has one, its text the code's own;
        // none of them an error about the sidecar
        let experts = tcpshut_experts(d);
        let expected: Vec<String> = events.iter().filter_map(|c| expert_text(c)).collect();
        assert_eq!(experts, expected, "{what}: frame {num} experts");
    }
    assert_eq!(
        seen,
        by_frame.len(),
        "{what}: rows for frames tshark did not show"
    );
}

/// The events Wireshark's TCP analysis already marks; the plugin adds no
/// expert item for them (issue #13).
const NO_EXPERT_ITEM: &[&str] = &[
    "syn",
    "syn-ack",
    "fin-active",
    "fin-passive",
    "fin-order-unknown",
    "fin-acked",
];

/// The expert item text of an event code, from the engine's table; `None`
/// for the events without an item.
fn expert_text(code: &str) -> Option<String> {
    let event = Event::ALL.iter().find(|e| e.code() == code)?;
    (!NO_EXPERT_ITEM.contains(&code)).then(|| format!("tcpshut {code}: {}", event.text()))
}

// ---------------------------------------------------------------------------
// A small synthetic capture and hand-made sidecars (test data, not truth).
// ---------------------------------------------------------------------------

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];

/// A frame of the synthetic connection at 1700000000 s and `usecs`,
/// from the client (`fwd`) or the server.
fn synthetic_frame(usecs: u32, fwd: bool, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Frame {
    let (c, s) = ((C, 40000), (S, 80));
    Frame {
        secs: 1_700_000_000,
        usecs,
        src: if fwd { c } else { s },
        dst: if fwd { s } else { c },
        flags,
        seq,
        ack,
        payload: payload.to_vec(),
    }
}

fn synthetic_frames() -> Vec<Frame> {
    let f = synthetic_frame;
    vec![
        f(0, true, 0x02, 100, 0, b""),
        f(1500, false, 0x12, 900, 101, b""),
        f(2000, true, 0x10, 101, 901, b""),
        f(300_000, true, 0x18, 101, 901, b"GET / HTTP/1.0\r\n\r\n"),
        f(300_001, true, 0x11, 119, 901, b""),
        f(400_000, false, 0x10, 901, 120, b""),
        f(500_000, false, 0x19, 901, 120, b"bye"),
        f(999_999, true, 0x14, 120, 0, b""),
    ]
}

/// Rows for the synthetic capture; frame 3 and frame 6 have none.
fn synthetic_rows() -> Vec<[String; 16]> {
    let row = |frame: u32,
               usecs: u32,
               fwd: bool,
               flags: &str,
               st: (&str, &str),
               events: &str,
               calls: &str,
               summary: &str,
               sev: &str,
               rel: &str| {
        let (a, b) = ("10.0.0.1:40000", "10.0.0.2:80");
        [
            frame.to_string(),
            format!("1700000000.{:06}000", usecs),
            "0".into(),
            (if fwd { a } else { b }).into(),
            (if fwd { b } else { a }).into(),
            flags.into(),
            "0".into(),
            "0".into(),
            "0".into(),
            st.0.into(),
            st.1.into(),
            events.into(),
            calls.into(),
            summary.into(),
            sev.into(),
            rel.into(),
        ]
    };
    let rows = vec![
        row(
            1,
            0,
            true,
            "S",
            ("SYN-SENT", "UNKNOWN"),
            "syn",
            "",
            "Client 10.0.0.1:40000 opens the connection",
            "chat",
            "",
        ),
        row(
            2,
            1500,
            false,
            "SA",
            ("SYN-RECEIVED", "SYN-SENT"),
            "syn-ack",
            "",
            "Server accepts",
            "chat",
            "1",
        ),
        row(
            4,
            300_000,
            true,
            "PA",
            ("ESTABLISHED", "ESTABLISHED"),
            "",
            "",
            "",
            "",
            "",
        ),
        row(
            5,
            300_001,
            true,
            "FA",
            ("FIN-WAIT-1", "CLOSE-WAIT"),
            "fin-active",
            "shut_wr>close_unread|linger0|shut_rd",
            "Client closes first (FIN): shutdown(SHUT_WR), a half-close; it keeps reading",
            "note",
            "",
        ),
        row(
            7,
            500_000,
            false,
            "FPA",
            ("LAST-ACK", "FIN-WAIT-2"),
            "fin-passive;data-to-closed",
            "shut_rdwr>close",
            "Server says \"bye\", then closes: data to a closed socket, unicode ✓",
            "warn",
            "5",
        ),
        row(
            8,
            999_999,
            true,
            "RA",
            ("CLOSED", "CLOSED"),
            "rst-after-close;rst-ignored",
            "",
            "Client resets: data arrived after it closed, \"connection reset by peer\"",
            "warn",
            "7",
        ),
    ];
    with_frame_numbers(rows, &synthetic_frames())
}

/// `rows` with the seq (relative to its direction's ISN, the first
/// frame's seq of that direction) and len of their frames in `frames`.
fn with_frame_numbers(mut rows: Vec<[String; 16]>, frames: &[Frame]) -> Vec<[String; 16]> {
    for r in &mut rows {
        let f = &frames[r[0].parse::<usize>().unwrap() - 1];
        let isn = frames.iter().find(|g| g.src == f.src).unwrap().seq;
        r[6] = f.seq.wrapping_sub(isn).to_string();
        r[8] = f.payload.len().to_string();
    }
    rows
}

fn sidecar_text(rows: &[[String; 16]]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let fields: Vec<String> = r.iter().map(|f| csv_field(f)).collect();
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    s
}

/// Writes the synthetic capture as `name` in the sandbox.
fn synthetic_capture(sb: &Sandbox, name: &str) -> PathBuf {
    let cap = sb.path(name);
    write_pcap(&cap, &synthetic_frames());
    cap
}

// ---------------------------------------------------------------------------

#[test]
fn lua_plugin_compiles_for_lua_5_2_and_5_4() {
    for luac in ["luac5.2", "luac5.4"] {
        require_tool(luac, "syntax check of lua/tcpshut.lua");
        let out = Command::new(luac)
            .arg("-p")
            .arg(plugin_script())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{luac} -p: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn plugin_never_evaluates_sidecar_text() {
    let lua = std::fs::read_to_string(plugin_script()).unwrap();
    for banned in ["loadstring", "dofile", "load(", "loadfile", "require"] {
        assert!(!lua.contains(banned), "lua/tcpshut.lua uses {banned}");
    }
}

fn handmade_sidecar_fields_match_rows(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let text = sidecar_text(&synthetic_rows());
    let side = sb.path("rows.csv");
    std::fs::write(&side, &text).unwrap();
    let frames = sb.dissect(&cap, &sb.with_plugin(&side), FIELDS);
    assert_eq!(frames.len(), 8);
    assert_frames_match_sidecar("hand-made sidecar", &frames, &text);

    // Filters on single event codes and on expert messages.
    assert_eq!(
        sb.frames_matching(&cap, &side, "tcpshut.event == \"rst-ignored\""),
        ["8"]
    );
    assert_eq!(
        sb.frames_matching(&cap, &side, "_ws.expert.message contains \"tcpshut\""),
        ["7", "8"]
    );

    // Expert severities as documented.
    let report = sb.expert_report(&cap, &side);
    let section = |name: &str| -> String {
        report
            .split("\n\n")
            .find(|p| p.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        section("Errors").contains("tcpshut rst-ignored"),
        "{report}"
    );
    assert!(
        section("Warns").contains("tcpshut rst-after-close"),
        "{report}"
    );
    assert!(
        section("Warns").contains("tcpshut data-to-closed"),
        "{report}"
    );
    for code in NO_EXPERT_ITEM {
        assert!(!report.contains(&format!("tcpshut {code}:")), "{report}");
    }
}

/// Issue #9: the plugin's expert items have the engine's severities and
/// texts, for every event code: one row per event, then `-z expert`.
fn expert_items_follow_the_engine_table(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let frames: Vec<Frame> = (0..Event::ALL.len())
        .map(|i| Frame {
            usecs: i as u32 * 10,
            ..synthetic_frames().remove(0)
        })
        .collect();
    let cap = sb.path("events.pcap");
    write_pcap(&cap, &frames);
    let template = synthetic_rows()[0].clone();
    let rows: Vec<[String; 16]> = Event::ALL
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut row = template.clone();
            row[0] = (i + 1).to_string();
            row[1] = format!("1700000000.{:06}000", i * 10);
            row[11] = event.code().to_string();
            row[14] = event.severity().code().to_string();
            row
        })
        .collect();
    let side = sb.sidecar("events.csv", &rows);
    let report = sb.expert_report(&cap, &side);
    // -z expert's sections, each a header line then its items
    let section_of = |text: &str| -> Option<String> {
        report
            .split("\n\n")
            .find(|p| p.contains(text))
            .map(|p| p.split_whitespace().next().unwrap_or_default().to_string())
    };
    for event in Event::ALL {
        let Some(text) = expert_text(event.code()) else {
            assert!(
                !report.contains(&format!("tcpshut {}:", event.code())),
                "{ws:?}: {} has an item: {report}",
                event.code()
            );
            continue;
        };
        let section = match event.severity() {
            Severity::Error => "Errors",
            Severity::Warn => "Warns",
            Severity::Note => "Notes",
            Severity::Chat | Severity::None => "Chats",
        };
        assert_eq!(
            section_of(&text).as_deref(),
            Some(section),
            "{ws:?}: {text}: {report}"
        );
    }
}

fn lookup_order_preference_argument_environment(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let good = sb.sidecar("good.csv", &synthetic_rows());
    let bad = sb.path("missing.csv");
    let run = |args: Vec<String>, env: Option<&Path>| -> Vec<Dissected> {
        let mut cmd = sb.tshark_reading(&cap);
        if let Some(e) = env {
            cmd.env("TCPSHUT_SIDECAR", e);
        }
        cmd.args(sb.with_script()).args(&args);
        dissected_by(
            &format!("{args:?}"),
            &mut cmd,
            &["frame.number", "tcpshut.events", "_ws.expert.message"],
        )
    };
    let annotated = |frames: &[Dissected]| one(&frames[0], "tcpshut.events") == "syn";
    let arg = |p: &Path| vec!["-X".into(), format!("lua_script1:{}", p.display())];
    // preference beats argument and environment
    let f = run([arg(&bad), preference(&good).into()].concat(), Some(&bad));
    assert!(annotated(&f), "{f:?}");
    // argument beats environment
    let f = run(arg(&good), Some(&bad));
    assert!(annotated(&f), "{f:?}");
    // environment alone
    let f = run(vec![], Some(&good));
    assert!(annotated(&f), "{f:?}");
    // an explicit path that cannot be read: one error, naming its source
    let f = run(vec![], Some(&bad));
    let err = the_one_error("TCPSHUT_SIDECAR unreadable", &f);
    assert!(err.contains("cannot read sidecar"), "{err:?}");
    assert!(err.contains("TCPSHUT_SIDECAR"), "{err:?}");
    // nothing set and nothing beside the capture: no fields, only the
    // quiet note on the first frame
    let f = run(vec![], None);
    assert!(f.iter().all(|d| !has_tcpshut_fields(d)), "{f:?}");
    let notes: Vec<Vec<String>> = f
        .iter()
        .map(tcpshut_experts)
        .filter(|e| !e.is_empty())
        .collect();
    assert_eq!(notes, [[NO_SIDECAR_NOTE]], "{notes:?}");
    assert_eq!(tcpshut_experts(&f[0]), [NO_SIDECAR_NOTE]);
}

fn profile_column_and_installed_plugin_find_sidecar_beside_capture(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let out = sb.tcpshut(&["wireshark", "install", "--lua"]);
    assert_succeeded(&out);
    let written = printed_paths(&out);
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(
        written
            .iter()
            .all(|p| p.starts_with(sb.home()) && p.exists()),
        "{written:?}"
    );
    let dir = sb.path("captures dir");
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("teardown.pcap");
    write_pcap(&cap, &synthetic_frames());
    let text = sidecar_text(&synthetic_rows());
    std::fs::write(dir.join("teardown.pcap.tcpshut.csv"), &text).unwrap();

    // No -X, no -o, no environment variable: the installed plugin finds the sidecar.
    let args: Vec<String> = vec!["-C".into(), "tcpshut".into()];
    let frames = sb.dissect(&cap, &args, FIELDS);
    assert_frames_match_sidecar(
        "installed plugin, sidecar beside the capture",
        &frames,
        &text,
    );

    // The profile's default output shows the column after Info.
    let out = lua_clean_stdout(
        "tshark -C tcpshut",
        sb.tshark_reading(&cap).args(["-C", "tcpshut"]),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{lines:?}");
    // (4.0 names the column's field _ws.col.Shutdown, 4.4 and later do not
    // register one: the text output is what all of them share.)
    for (line, d) in lines.iter().zip(&frames) {
        let summary = one(d, "tcpshut.summary");
        if !summary.is_empty() {
            assert!(line.ends_with(&format!(" {summary}")), "{line}");
        }
    }
    assert!(
        lines[0].ends_with(" Client 10.0.0.1:40000 opens the connection"),
        "{}",
        lines[0]
    );

    // Issue #18's "done when": plain `tshark -r CAP -T fields -e tcpshut.events`.
    let out = sb
        .tshark()
        .arg("-r")
        .arg(&cap)
        .args(["-T", "fields", "-e", "tcpshut.events"])
        .output()
        .unwrap();
    assert_no_lua_error("-T fields -e tcpshut.events", &out);
    let rows = synthetic_rows();
    let expected: Vec<String> = (1..=synthetic_frames().len())
        .map(|num| {
            let row = rows.iter().find(|r| r[0] == num.to_string());
            row.map(|r| r[11].clone()).unwrap_or_default()
        })
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        expected
    );

    // Only the protocol named in a filter: the frames with rows.
    let filtered = sb.dissect(&cap, &["-Y".into(), "tcpshut".into()], &["frame.number"]);
    assert_eq!(frame_numbers(&filtered), ["1", "2", "4", "5", "7", "8"]);

    // Issue #13 defect 6: the user's edits to the profile survive a second
    // install (which says so), and the profile still works.
    let prefs = written.iter().find(|p| p.ends_with("preferences")).unwrap();
    let edited = format!(
        "{}\n# mine\ntcp.relative_sequence_numbers: FALSE\n",
        std::fs::read_to_string(prefs).unwrap()
    );
    std::fs::write(prefs, &edited).unwrap();
    let out = sb.tcpshut(&["wireshark", "install", "--lua"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("kept your edited profile preferences"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(prefs).unwrap(), edited);
    let out = sb
        .tshark_reading(&cap)
        .args(["-C", "tcpshut"])
        .args(["-T", "fields", "-e", "tcp.seq", "-e", "tcpshut.summary"])
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    // the user's preference (absolute sequence numbers) and the plugin, both
    assert_eq!(
        first, "100\tClient 10.0.0.1:40000 opens the connection",
        "{ws:?}"
    );

    // Without the profile, no Shutdown column.
    let out = sb.tshark_reading(&cap).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("opens the connection"));
}

/// Runs the plugin with `sidecar` and returns the frames.
fn dissect_with(sb: &Sandbox, cap: &Path, sidecar: &Path) -> Vec<Dissected> {
    sb.dissect(cap, &sb.with_plugin(sidecar), FIELDS)
}

fn only_one_error(what: &str, frames: &[Dissected], needle: &str) {
    let err = the_one_error(what, frames);
    assert!(err.contains(needle), "{what}: {err:?}");
    assert!(
        frames.iter().all(|d| !has_tcpshut_fields(d)),
        "{what}: annotations shown: {frames:?}"
    );
}

fn sidecar_of_another_capture_does_not_match(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    // Same frames, one microsecond later: a sidecar of another capture.
    let mut rows = synthetic_rows();
    for r in &mut rows {
        let us: u64 = r[1][11..17].parse().unwrap();
        r[1] = format!("1700000000.{:06}000", us + 1);
    }
    let side = sb.sidecar("other.csv", &rows);
    only_one_error(
        "another capture",
        &dissect_with(&sb, &cap, &side),
        // the frame's time exactly, to the microsecond (not a double's noise)
        "frame 1 is at 1700000000.000000, its row at 1700000000.000001000",
    );

    // Frames renumbered (the first one dropped, as a read filter would).
    let renumbered = sb.path("renumbered.pcap");
    write_pcap(&renumbered, &synthetic_frames()[1..]);
    let side = sb.sidecar("rows.csv", &synthetic_rows());
    only_one_error(
        "renumbered",
        &dissect_with(&sb, &renumbered, &side),
        "does not match",
    );

    // Sub-microsecond differences are accepted (9-digit ts, microsecond capture).
    let mut rows = synthetic_rows();
    rows[0][1] = "1700000000.000000999".into();
    rows[1][1] = "1700000000.001499001".into();
    let text = sidecar_text(&rows);
    std::fs::write(&side, &text).unwrap();
    assert_frames_match_sidecar("sub-microsecond", &dissect_with(&sb, &cap, &side), &text);
}

fn truncated_or_misshapen_sidecars_give_one_error(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let full = sidecar_text(&synthetic_rows());
    let side = sb.path("bad.csv");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated mid-row",
            full[..full.len() - 20].to_string(),
            "truncated",
        ),
        (
            "truncated in a quoted field",
            full[..full.rfind("connection reset").unwrap()].to_string(),
            "truncated",
        ),
        (
            "a column missing",
            full.replacen("frame,ts", "frame,time", 1),
            "missing column ts in the header line",
        ),
        ("empty file", String::new(), "empty"),
        (
            "frames out of order",
            {
                let mut lines: Vec<&str> = full.lines().collect();
                lines.swap(2, 3);
                lines.join("\n") + "\n"
            },
            "increasing frame order",
        ),
    ];
    for (what, text, needle) in cases {
        std::fs::write(&side, text).unwrap();
        let frames = dissect_with(&sb, &cap, &side);
        only_one_error(what, &frames, needle);
        let err = the_one_error(what, &frames);
        assert!(
            err.starts_with("tcpshut: malformed sidecar"),
            "{what}: {err:?}"
        );
    }
}

/// `tshark -n -r CAPTURE` with the installed plugin's sidecar beside it:
/// the packet list, Info tags included (no tree: the plugin's fast path).
fn packet_list(sb: &Sandbox, cap: &Path) -> String {
    let out = sb.tshark_reading(cap).output().unwrap();
    assert_no_lua_error("tshark -r", &out);
    String::from_utf8(out.stdout).unwrap()
}

/// A CSV with its columns in reverse order and a column `future` (holding
/// `value`) second; without the column `drop` when given.
fn relaid_csv(text: &str, value: &str, drop: Option<&str>) -> String {
    let rows = parse_csv(text);
    let dropped = drop.map(|d| rows[0].iter().position(|c| c == d).unwrap());
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let mut fields: Vec<String> = row
                .iter()
                .enumerate()
                .filter(|(k, _)| Some(*k) != dropped)
                .map(|(_, f)| csv_field(f))
                .rev()
                .collect();
            let extra = if i == 0 { "future" } else { value };
            fields.insert(1, csv_field(extra));
            fields.join(",") + "\n"
        })
        .collect()
}

/// Both sidecars are read by their columns' names (docs/sidecar.md): in
/// another order and with a column the plugin does not know, every frame
/// shows what it shows with the sidecars as tcpshut wrote them, in the
/// tree and in the packet list; without a column the plugin uses, the
/// sidecar is refused once, naming the column and the file.
fn sidecar_columns_are_read_by_name(ws: Wireshark) {
    let sb = Sandbox::installed(ws);
    let name = "port-reuse.pcap";
    let cap = sb.annotated_testdata(name);
    let side = sb.path(&format!("{name}.tcpshut.csv"));
    let conns = sb.path(&format!("{name}.tcpshut.connections.csv"));
    let (rows, records) = (
        std::fs::read_to_string(&side).unwrap(),
        std::fs::read_to_string(&conns).unwrap(),
    );
    let fields = [
        FIELDS,
        &["tcpshut.related_by", "tcpshut.tunnel", "_ws.col.Info"],
    ]
    .concat();
    let tree = sb.dissect(&cap, &[], &fields);
    let list = packet_list(&sb, &cap);
    assert!(
        tree.iter().any(|d| !one(d, "tcpshut.calls").is_empty())
            && tree.iter().all(|d| !one(d, "tcpshut.outcome").is_empty())
            && list.contains("[FIN "),
        "{ws:?}: {tree:?} {list}"
    );

    // The segments' extra values hold a comma and quotes (CSV quoting);
    // no connections field needs quoting.
    let relaid = relaid_csv(&rows, "x,\"y\"", None);
    std::fs::write(&side, &relaid).unwrap();
    std::fs::write(&conns, relaid_csv(&records, "x", None)).unwrap();
    let relaid_tree = sb.dissect(&cap, &[], &fields);
    assert_eq!(relaid_tree, tree, "{ws:?}: relaid");
    // the tests' own check reads the sidecar by column name too
    assert_frames_match_sidecar(&format!("{ws:?}: relaid"), &relaid_tree, &relaid);
    assert_eq!(packet_list(&sb, &cap), list, "{ws:?}: relaid");

    std::fs::write(&side, relaid_csv(&rows, "x", Some("events"))).unwrap();
    let frames = sb.dissect(&cap, &[], FIELDS);
    only_one_error(
        &format!("{ws:?}: no events"),
        &frames,
        &format!(
            "malformed sidecar: missing column events in the header line; no annotations shown (sidecar {}",
            side.display()
        ),
    );

    std::fs::write(&side, &rows).unwrap();
    std::fs::write(&conns, relaid_csv(&records, "x", Some("outcome"))).unwrap();
    let frames = sb.dissect(&cap, &[], FIELDS);
    let warnings: Vec<String> = frames
        .iter()
        .flat_map(tcpshut_experts)
        .filter(|m| m.contains("connections sidecar"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "tcpshut: the connections sidecar cannot be used: missing column outcome in the header line in {}; \
             connection fields are not shown where it fails",
            conns.display()
        )],
        "{ws:?}"
    );
    assert!(
        frames.iter().all(|d| one(d, "tcpshut.outcome").is_empty())
            && frames.iter().any(|d| !one(d, "tcpshut.events").is_empty()),
        "{ws:?}: {frames:?}"
    );
}

fn hostile_and_malformed_rows_are_data_and_rejected_row_by_row(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let marker = sb.path("PWNED");
    let mut rows = synthetic_rows();
    // Lua code as a summary is shown as text and never run.
    let code = format!("]] os.execute('touch {}') --[[ \" , ;", marker.display());
    rows[0][13] = code.clone();
    // A huge field, an embedded NUL, an embedded line end, a bad number.
    rows[1][13] = "x".repeat(200_000);
    rows[2][13] = "nul\0here".into();
    rows[3][13] = "two\nlines".into();
    rows[4][7] = "12abc".into();
    let text = sidecar_text(&rows);
    let side = sb.path("hostile.csv");
    std::fs::write(&side, &text).unwrap();
    let frames = dissect_with(&sb, &cap, &side);
    assert!(!marker.exists(), "the sidecar ran code");

    let by_num = |n: &str| frames.iter().find(|d| one(d, "frame.number") == n).unwrap();
    assert_eq!(one(by_num("1"), "tcpshut.summary"), code);
    for (n, needle) in [
        ("2", "longer than"),
        ("4", "control character"),
        ("5", "control character"),
        ("7", "bad ack"),
    ] {
        let err = row_rejected(&format!("{ws:?}"), &frames, n, needle);
        assert!(
            err.starts_with(&format!("tcpshut: malformed sidecar row for frame {n}:")),
            "{err:?}"
        );
    }
    // The row after them is intact.
    assert_eq!(
        one(by_num("8"), "tcpshut.events"),
        "rst-after-close;rst-ignored"
    );
}

/// Issue #18's "done when", on every real capture: as a normal user,
/// `tcpshut wireshark install`, `tcpshut annotate CAPTURE`, then plain
/// `tshark -r CAPTURE` (no -X, no -o) shows exactly the sidecar's rows.
fn testdata_captures_match_their_sidecars(ws: Wireshark) {
    let captures = testdata_captures();
    let sb = Sandbox::installed(ws);
    annotate_each(&sb, &captures, |name, cap| {
        let text = std::fs::read_to_string(sb.path(&format!("{name}.tcpshut.csv"))).unwrap();
        let frames = sb.dissect(cap, &[], FIELDS);
        assert_frames_match_sidecar(&format!("{ws:?} {name}"), &frames, &text);
        assert_connection_fields(&sb, &format!("{ws:?} {name}"), name, &frames);
    });
}

/// Copies each capture into the sandbox, annotates it there and hands its
/// name and sandbox path to `check`; three at a time, since most of each
/// check is tshark starting up.
fn annotate_each(sb: &Sandbox, captures: &[PathBuf], check: impl Fn(&str, &Path) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(original) = captures.get(i) else {
                    break;
                };
                let name = original.file_name().unwrap().to_str().unwrap();
                let cap = sb.path(name);
                std::fs::copy(original, &cap).unwrap();
                sb.annotate(name);
                assert!(
                    sb.path(&format!("{name}.tcpshut.csv")).is_file(),
                    "tcpshut annotate {name}: no sidecar"
                );
                check(name, &cap);
            });
        }
    });
}

/// A rotated series (`annotate --series`): each file, opened alone in
/// tshark with the installed plugin, shows exactly its own sidecar's
/// rows, and every annotated frame its connection's verdict as the whole
/// recording gives it (ids and verdicts are the series').
fn series_files_match_their_own_sidecars(ws: Wireshark) {
    crate::util::require_tool("editcap", "splits a recording into a series");
    let sb = Sandbox::installed(ws);
    let whole = crate::util::testdata().join("report-mix/mix.pcap");
    std::fs::copy(&whole, sb.path("whole.pcap")).unwrap();
    let status = Command::new("editcap")
        .args(["-c", "520"])
        .arg(&whole)
        .arg(sb.path("part.pcap"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut parts: Vec<String> = std::fs::read_dir(sb.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("part_"))
        .collect();
    parts.sort();
    assert_eq!(parts.len(), 5);
    let mut args = vec!["annotate", "--series"];
    args.extend(parts.iter().map(String::as_str));
    let out = sb.tcpshut(&args);
    assert_succeeded(&out);
    for name in &parts {
        let text = std::fs::read_to_string(sb.path(&format!("{name}.tcpshut.csv"))).unwrap();
        let frames = sb.dissect(&sb.path(name), &[], FIELDS);
        assert_frames_match_sidecar(&format!("{ws:?} {name}"), &frames, &text);
        assert_connection_fields(&sb, &format!("{ws:?} {name}"), "whole.pcap", &frames);
    }
}

/// As root, `wireshark install` and `open` say so when this Wireshark will
/// skip the personal plugin (4.4 and later: no init.lua), and only then.
fn root_is_told_when_wireshark_skips_the_plugin(ws: Wireshark) {
    assert!(is_root(), "this test runs tcpshut and tshark as root");
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    std::fs::write(
        sb.path("syn.pcap.tcpshut.csv"),
        sidecar_text(&synthetic_rows()),
    )
    .unwrap();
    let skips = ws != Wireshark::V4_0;
    // root's own HOME: install refuses one another user owns or could
    // replace (the test user owns the sandbox)
    let own = tempfile::tempdir().unwrap();
    let home = own.path().join("root-home");
    std::fs::create_dir(&home).unwrap();
    for args in [
        &["wireshark", "install", "--lua"][..],
        &["wireshark", "open", "syn.pcap"][..],
    ] {
        let out = sb
            .tcpshut_command(None)
            .args(args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("cfg"))
            .output()
            .expect("tcpshut runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{ws:?} {args:?}: {stderr}");
        assert_eq!(
            stderr.contains("tcpshut: running as root: this Wireshark skips personal Lua plugins"),
            skips,
            "{ws:?} {args:?}: {stderr}"
        );
        if skips {
            assert!(stderr.contains("normal user"), "{stderr}");
        }
    }
    // What the warning says is true: as root, tshark loads the plugin or not.
    let out = ws
        .command(Path::new("tshark"), sb.dir.path(), None)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .arg("-r")
        .arg(&cap)
        .args(["-T", "fields", "-e", "tcpshut.events"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.contains("tcpshut.events"),
        skips,
        "{ws:?}: tshark as root: {stderr}"
    );
}

/// Issue #13 defect 7: a sidecar written by one user has the mode the
/// umask gives (not the temporary file's 0600), so another user's
/// Wireshark shows it; re-annotating keeps an existing sidecar's mode.
fn sidecars_of_another_user_are_shown(ws: Wireshark) {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::installed(ws);
    let cap = sb.copy_testdata("refused.pcap");
    let side = sb.path("refused.pcap.tcpshut.csv");
    // Annotated by the caller (root in CI), umask 022, on the host.
    let annotate = || {
        let out = Command::new("sh")
            .args(["-c", "umask 022 && exec \"$0\" annotate \"$1\" --pcapng"])
            .arg(env!("CARGO_BIN_EXE_tcpshut"))
            .arg(&cap)
            .output()
            .unwrap();
        assert_succeeded(&out);
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    annotate();
    assert_eq!(mode(&side), 0o644, "a new sidecar");
    assert_eq!(
        mode(&sb.path("refused.pcap.tcpshut.pcapng")),
        0o644,
        "the pcapng copy"
    );
    let text = std::fs::read_to_string(&side).unwrap();
    let frames = sb.dissect(&cap, &[], FIELDS);
    assert_frames_match_sidecar(&format!("{ws:?}: another user's sidecar"), &frames, &text);
    std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o640)).unwrap();
    annotate();
    assert_eq!(mode(&side), 0o640, "re-annotating keeps the mode");
}

/// Issue #13 defect 3: when frames share their time, a copy with frames
/// removed is still told apart from the sidecar, by addresses, ports and
/// flags; and defect 8: the message is short enough to keep the path.
fn mismatch_is_found_when_times_agree(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let same_time = |frames: Vec<Frame>| -> Vec<Frame> {
        frames
            .into_iter()
            .map(|f| Frame { usecs: 0, ..f })
            .collect()
    };
    let mut rows = synthetic_rows();
    for r in &mut rows {
        r[1] = "1700000000.000000000".into();
    }
    let text = sidecar_text(&rows);
    let side = sb.path(&format!(
        "{}.csv",
        "a-long-folder-name/".repeat(2).replace('/', "_")
    ));
    std::fs::write(&side, &text).unwrap();
    let whole = sb.path("whole.pcap");
    write_pcap(&whole, &same_time(synthetic_frames()));
    assert_frames_match_sidecar("same times", &dissect_with(&sb, &whole, &side), &text);
    for (removed, needle) in [
        // frame 2 (the server's SYN-ACK) removed: frame 2 is now the client's ACK
        (
            1,
            "frame 2 is 10.0.0.1:40000 > 10.0.0.2:80, its row 10.0.0.2:80 > 10.0.0.1:40000",
        ),
        // frame 4 (the client's data) removed: frame 4 is now its FIN
        (3, "frame 4 has flags FA, its row PA"),
    ] {
        let mut frames = same_time(synthetic_frames());
        frames.remove(removed);
        let cap = sb.path("cut.pcap");
        write_pcap(&cap, &frames);
        let got = dissect_with(&sb, &cap, &side);
        let err = the_one_error(&format!("{ws:?}"), &got);
        assert!(err.contains(needle), "{ws:?}: {err:?}");
        let name = side.file_name().unwrap().to_string_lossy();
        assert!(
            err.starts_with("tcpshut: the sidecar does not match this capture: ")
                && err.ends_with(&format!("; nothing shown (sidecar {name})")),
            "{err:?}"
        );
    }
}

/// Issue #13 defect 3, rows whose events are all quiet (`syn`, `syn-ack`,
/// `fin-acked`): without a tree they are not read, so not checked against
/// their frame either. Why the check still covers them: without a tree
/// the plugin shows only expert items and Info tags, which such a row
/// does not have, and every row that has one is checked before it shows.
/// So (1) a sidecar wrong in a quiet row only (the SYN-ACK's addresses
/// swapped) gives, without a tree, the very output of the right sidecar
/// (nothing of that row shows, right or wrong), and with a tree the
/// mismatch on that frame; (2) a capture whose first shifted row is quiet
/// (the SYN-ACK removed) shows, without a tree, the mismatch at the first
/// row that would show something, and no annotation at all.
fn quiet_rows_show_nothing_unchecked_without_a_tree(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "quiet.pcap");
    let good = sb.sidecar("good.csv", &synthetic_rows());
    let mut rows = synthetic_rows();
    assert_eq!(rows[1][11], "syn-ack");
    rows[1].swap(3, 4);
    let bad = sb.sidecar("bad.csv", &rows);
    let without_tree = |cap: &Path, sidecar: &Path| {
        lua_clean_stdout(
            &format!("{ws:?}"),
            sb.tshark_reading(cap)
                .args(sb.with_plugin(sidecar))
                .args(["-z", "expert"]),
        )
    };
    let shown = without_tree(&cap, &good);
    assert!(shown.contains("[FIN 10.0.0.1:40000: "), "{ws:?}:\n{shown}");
    assert_eq!(without_tree(&cap, &bad), shown, "{ws:?}");
    // with a tree: frame 1's row matched and shows; the mismatch on
    // frame 2, and nothing from there on
    let frames = dissect_with(&sb, &cap, &bad);
    only_one_error(
        "a quiet row wrong, with a tree",
        &frames[1..],
        "frame 2 is 10.0.0.2:80 > 10.0.0.1:40000, its row 10.0.0.1:40000 > 10.0.0.2:80",
    );

    let mut frames = synthetic_frames();
    frames.remove(1);
    let cut = sb.path("cut.pcap");
    write_pcap(&cut, &frames);
    let out = without_tree(&cut, &good);
    // -z expert's Errors: that one item, on the FIN's row, now frame 5
    assert_eq!(
        out.matches("the sidecar does not match this capture: ")
            .count(),
        1,
        "{ws:?}:\n{out}"
    );
    assert!(
        out.contains("the sidecar does not match this capture: frame 5 is at "),
        "{ws:?}:\n{out}"
    );
    assert!(
        !out.contains("[FIN ") && !out.contains("[RST "),
        "{ws:?}:\n{out}"
    );
}

/// Issue #13 defect 8, second round: Wireshark cuts an expert text at 240
/// bytes, and the mismatch message began with the sidecar's path, so a
/// long path (or IPv6 addresses) cut the reason off. The reason now comes
/// first and the sidecar's file name last, within the limit; the full
/// path, and where it was found, is the value of an item below it.
fn mismatch_message_keeps_its_reason_within_240_bytes(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = sb.path("v6.pcap");
    std::fs::copy(repo_root().join("testdata/refused-ipv6.pcap"), &cap).unwrap();
    sb.annotate("v6.pcap");
    // the RST's row with its endpoints swapped: that frame is not the row
    // (a row with events is checked without a tree too)
    let text = std::fs::read_to_string(sb.path("v6.pcap.tcpshut.csv")).unwrap();
    // not beside the capture (a pinned sidecar that does not match gives way to that one)
    std::fs::remove_file(sb.path("v6.pcap.tcpshut.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rst = lines
        .iter()
        .position(|l| l.contains("rst-refused"))
        .unwrap();
    let mut f: Vec<&str> = lines[rst].split(',').collect();
    f.swap(3, 4);
    let (frame, src, dst) = (f[0].to_string(), f[3].to_string(), f[4].to_string());
    lines[rst] = f.join(",");
    let deep = sb.path(&["a-folder-with-a-rather-long-name-for-its-sidecars"; 5].join("/"));
    std::fs::create_dir_all(&deep).unwrap();
    if let Some((uid, gid)) = test_user() {
        for d in deep
            .ancestors()
            .take_while(|d| d.starts_with(sb.dir.path()))
        {
            std::os::unix::fs::chown(d, Some(uid), Some(gid)).unwrap();
        }
    }
    let side = deep.join("v6.csv");
    assert!(side.as_os_str().len() > 240, "{}", side.display());
    std::fs::write(&side, lines.join("\n") + "\n").unwrap();
    let got = sb.dissect(
        &cap,
        &sb.with_plugin(&side),
        &["_ws.expert.message", "tcpshut.sidecar_file"],
    );
    let err = the_one_error(&format!("{ws:?}"), &got);
    let reason = format!("frame {frame} is {dst} > {src}, its row {src} > {dst}");
    assert!(
        err.contains(&reason) && err.ends_with("; nothing shown (sidecar v6.csv)"),
        "{ws:?}: {reason} in {err:?}"
    );
    assert!(err.len() < 240, "{ws:?}: {} bytes: {err:?}", err.len());
    let paths: Vec<&String> = got
        .iter()
        .flat_map(|d| d.get("tcpshut.sidecar_file").into_iter().flatten())
        .collect();
    assert_eq!(paths, [&side.display().to_string()], "{ws:?}");
}

/// Issue #13 defect 3, second round: when addresses, ports, flags and
/// times all agree (a client's data segments at one time, one removed),
/// the sequence number or the payload length tells the row is another
/// frame's.
fn mismatch_is_found_by_seq_and_length(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let c = (C, 40000);
    let f =
        |fwd, flags, seq, ack, payload: &[u8]| synthetic_frame(0, fwd, flags, seq, ack, payload);
    let frames = vec![
        f(true, 0x02, 100, 0, b""),
        f(false, 0x12, 900, 101, b""),
        f(true, 0x10, 101, 901, b""),
        f(true, 0x18, 101, 901, b"0123456789"),
        f(true, 0x18, 111, 901, b"abcdefghij"),
        f(true, 0x18, 121, 901, b"tail!"),
        f(true, 0x11, 126, 901, b""),
    ];
    let template = synthetic_rows()[2].clone();
    let rows: Vec<[String; 16]> = frames
        .iter()
        .enumerate()
        .map(|(i, fr)| {
            let mut r = template.clone();
            r[0] = (i + 1).to_string();
            r[1] = "1700000000.000000000".into();
            let fwd = fr.src == c;
            (r[3], r[4]) = if fwd {
                ("10.0.0.1:40000".into(), "10.0.0.2:80".into())
            } else {
                ("10.0.0.2:80".into(), "10.0.0.1:40000".into())
            };
            r[5] = match fr.flags {
                0x02 => "S",
                0x12 => "SA",
                0x10 => "A",
                0x18 => "PA",
                _ => "FA",
            }
            .into();
            r[11] = if fr.flags & 0x02 != 0 { "syn" } else { "" }.into();
            r[13] = String::new();
            r[14] = String::new();
            r
        })
        .collect();
    let rows = with_frame_numbers(rows, &frames);
    let text = sidecar_text(&rows);
    let side = sb.path("rows.csv");
    std::fs::write(&side, &text).unwrap();
    let whole = sb.path("whole.pcap");
    write_pcap(&whole, &frames);
    assert_frames_match_sidecar(
        &format!("{ws:?}: whole"),
        &dissect_with(&sb, &whole, &side),
        &text,
    );
    for (removed, needle) in [
        // the first 10-byte segment removed: frame 4 is the second one
        (3, "frame 4 has relative seq 11, its row 1"),
        // the second removed: frame 5 is the 5-byte tail
        (4, "frame 5 carries 5 payload bytes, its row 10"),
    ] {
        let mut cut = frames.clone();
        cut.remove(removed);
        let cap = sb.path("cut.pcap");
        write_pcap(&cap, &cut);
        let got = dissect_with(&sb, &cap, &side);
        let err = the_one_error(&format!("{ws:?}"), &got);
        assert!(err.contains(needle), "{ws:?}: {err:?}");
    }
}

/// The JSON document's connections, by id: client, server, outcome,
/// closer, and each side's calls as the CSV writes them.
fn json_connections(sb: &Sandbox, name: &str) -> BTreeMap<String, [String; 6]> {
    let out = sb.tcpshut(&["annotate", name, "--format", "json", "-o", "-"]);
    assert_succeeded(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = |ep: &serde_json::Value| -> String {
        ep["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| strings(step).join("|"))
            .collect::<Vec<_>>()
            .join(">")
    };
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (
                c["id"].to_string(),
                [
                    s("client"),
                    s("server"),
                    s("outcome"),
                    s("closer"),
                    calls(&c["endpoints"][0]),
                    calls(&c["endpoints"][1]),
                ],
            )
        })
        .collect()
}

/// Issue #13 "at a glance": every annotated frame carries its
/// connection's outcome, closer, client, server and each side's calls
/// (one item per call), as the JSON document has them.
fn assert_connection_fields(sb: &Sandbox, what: &str, name: &str, frames: &[Dissected]) {
    let conns = json_connections(sb, name);
    for d in frames {
        let conn = one(d, "tcpshut.conn");
        if conn.is_empty() {
            continue;
        }
        let num = one(d, "frame.number");
        let c = conns
            .get(&conn)
            .unwrap_or_else(|| panic!("{what}: frame {num}: no connection {conn} in the JSON"));
        for (field, want) in [
            "tcpshut.client",
            "tcpshut.server",
            "tcpshut.outcome",
            "tcpshut.closer",
            "tcpshut.client_calls",
            "tcpshut.server_calls",
        ]
        .iter()
        .zip(c.iter())
        {
            assert_eq!(&one(d, field), want, "{what}: frame {num} {field}");
        }
        for (field, calls) in [
            ("tcpshut.client_call", &c[4]),
            ("tcpshut.server_call", &c[5]),
        ] {
            let mut items: Vec<String> = Vec::new();
            for call in calls.split(['>', '|']).filter(|c| !c.is_empty()) {
                if !items.iter().any(|c| c == call) {
                    items.push(call.to_string());
                }
            }
            assert_eq!(
                d.get(field).cloned().unwrap_or_default(),
                items,
                "{what}: frame {num} {field}"
            );
        }
    }
}

/// Issue #13 "at a glance" on real captures: the Info column's tag on the
/// frames with events, filters on whole connections
/// (`tcpshut.outcome == "reset"`, one item per call so `shut_rd` is not
/// `shut_rdwr`), and a connections sidecar that cannot be trusted.
fn info_tag_and_connection_filters(ws: Wireshark) {
    let sb = Sandbox::installed(ws);
    for name in [
        "data-after-close.pcap",
        "shut_rd-client-first.pcap",
        "refused.pcap",
    ] {
        sb.annotated_testdata(name);
        assert!(sb
            .path(&format!("{name}.tcpshut.connections.csv"))
            .is_file());
    }
    let lines = |name: &str, filter: Option<&str>| -> Vec<String> {
        let mut cmd = sb.tshark_reading(&sb.path(name));
        if let Some(f) = filter {
            cmd.args(["-Y", f]);
        }
        lua_clean_stdout(name, &mut cmd)
            .lines()
            .map(str::to_string)
            .collect()
    };
    // data-after-close: the client close()s, the server's data is reset
    let all = lines("data-after-close.pcap", None);
    let tagged: Vec<&String> = all.iter().filter(|l| l.contains(" [")).collect();
    assert!(
        tagged
            .iter()
            .any(|l| l.ends_with(" [FIN client: close|shut_rdwr]")),
        "{ws:?}: {all:#?}"
    );
    assert!(
        tagged
            .iter()
            .any(|l| l.ends_with(" [data-after-fin; data-to-closed]")),
        "{ws:?}: {all:#?}"
    );
    assert!(
        tagged
            .iter()
            .any(|l| l.ends_with(" [RST client after close]")),
        "{ws:?}: {all:#?}"
    );
    // every frame of the reset connection, none of the others
    assert_eq!(
        lines(
            "data-after-close.pcap",
            Some("tcpshut.outcome == \"reset\"")
        )
        .len(),
        all.len()
    );
    assert!(lines(
        "data-after-close.pcap",
        Some("tcpshut.outcome == \"graceful\"")
    )
    .is_empty());
    assert_eq!(
        lines(
            "data-after-close.pcap",
            Some("tcpshut.client_call == \"shut_rdwr\"")
        )
        .len(),
        all.len()
    );
    assert!(lines(
        "data-after-close.pcap",
        Some("tcpshut.client_call == \"shut_rd\"")
    )
    .is_empty());
    let shut_rd = lines("shut_rd-client-first.pcap", None);
    assert_eq!(
        lines(
            "shut_rd-client-first.pcap",
            Some("tcpshut.client_call == \"shut_rd\"")
        )
        .len(),
        shut_rd.len(),
        "{ws:?}: {shut_rd:#?}"
    );
    let refused = lines("refused.pcap", None);
    assert!(
        refused.iter().any(|l| l.ends_with(" [RST server refused]")),
        "{ws:?}: {refused:#?}"
    );
    assert_eq!(
        lines("refused.pcap", Some("tcpshut.outcome == \"refused\"")).len(),
        refused.len()
    );

    // Related frames, both ways, with the kind of link.
    let links = sb.dissect(
        &sb.path("data-after-close.pcap"),
        &[],
        &[
            "frame.number",
            "tcpshut.related",
            "tcpshut.relation",
            "tcpshut.related_by",
            "tcpshut.related_by_relation",
        ],
    );
    let link = |n: usize, f: &str| one(&links[n - 1], f);
    assert_eq!(
        link(9, "tcpshut.relation"),
        "acknowledges this FIN",
        "{ws:?}"
    );
    assert_eq!(link(10, "tcpshut.relation"), "data sent after this FIN");
    assert_eq!(link(11, "tcpshut.related"), "10");
    assert_eq!(link(11, "tcpshut.relation"), "RST answering this data");
    assert_eq!(link(8, "tcpshut.related_by"), "9,10", "{ws:?}: {links:?}");
    assert_eq!(
        link(8, "tcpshut.related_by_relation"),
        "FIN acknowledged,FIN followed by data"
    );
    assert_eq!(link(10, "tcpshut.related_by"), "11");
    assert_eq!(
        link(10, "tcpshut.related_by_relation"),
        "answered by an RST"
    );
    let links = sb.dissect(
        &sb.path("refused.pcap"),
        &[],
        &[
            "tcpshut.relation",
            "tcpshut.related_by",
            "tcpshut.related_by_relation",
        ],
    );
    assert_eq!(one(&links[1], "tcpshut.relation"), "refuses this SYN");
    assert_eq!(one(&links[0], "tcpshut.related_by"), "2");
    assert_eq!(
        one(&links[0], "tcpshut.related_by_relation"),
        "refused by the RST"
    );

    // The connections table (tshark -z tcpshut,conns): a row per
    // connection with its outcome, closer, calls, frames, tcp.stream and
    // the filter that shows it.
    for name in ["port-reuse.pcap", "refused.pcap"] {
        if !sb.path(name).exists() {
            sb.annotated_testdata(name);
        }
        let table = sb.connections_table(name);
        let conns = json_connections(&sb, name);
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.contains("tcpshut.conn == "))
            .collect();
        assert_eq!(rows.len(), conns.len(), "{ws:?} {name}: {table}");
        let frames = sb.dissect(&sb.path(name), &[], &["tcpshut.conn", "tcp.stream"]);
        for (id, c) in &conns {
            let row = rows
                .iter()
                .find(|r| r.starts_with(&format!("{id} ")))
                .unwrap_or_else(|| panic!("{ws:?} {name}: no row {id}: {table}"));
            let words: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(
                words[1..5],
                [c[0].as_str(), c[1].as_str(), c[2].as_str(), c[3].as_str()],
                "{ws:?}: {row}"
            );
            let ours: Vec<&Dissected> = frames
                .iter()
                .filter(|d| &one(d, "tcpshut.conn") == id)
                .collect();
            assert_eq!(words[7], ours.len().to_string(), "{ws:?} frames: {row}");
            let mut streams: Vec<String> = ours.iter().map(|d| one(d, "tcp.stream")).collect();
            streams.dedup();
            assert!(
                words[8].starts_with(&streams.join(",")),
                "{ws:?}: {row} {streams:?}"
            );
            assert!(row.ends_with(&format!("tcpshut.conn == {id}")), "{row}");
        }
    }

    // A connections sidecar is data: a bad line, or a record whose
    // endpoints are not its rows', is not shown, and one warning says so.
    let conns = sb.path("data-after-close.pcap.tcpshut.connections.csv");
    let text = std::fs::read_to_string(&conns).unwrap();
    for (bad, needle) in [
        (
            text.replacen(",reset,", ",exploded,", 1),
            "1 malformed line(s), the first line 2",
        ),
        (
            text.replacen("10.77.0.2:5000", "10.9.9.9:5000", 1),
            "connection 0 is 10.77.0.1:40000 > 10.9.9.9:5000 there",
        ),
        (
            text.replacen(",closer,", ",closed,", 1),
            "missing column closer in the header line in ",
        ),
    ] {
        std::fs::write(&conns, &bad).unwrap();
        let frames = sb.dissect(&sb.path("data-after-close.pcap"), &[], FIELDS);
        assert!(
            frames.iter().all(|d| one(d, "tcpshut.outcome").is_empty()),
            "{ws:?}: {bad}"
        );
        let warnings: Vec<String> = frames
            .iter()
            .flat_map(tcpshut_experts)
            .filter(|m| m.contains("connections sidecar"))
            .collect();
        assert_eq!(warnings.len(), 1, "{ws:?}: {warnings:?}");
        assert!(warnings[0].contains(needle), "{ws:?}: {warnings:?}");
        // the rows themselves are still shown
        assert!(frames.iter().any(|d| !one(d, "tcpshut.events").is_empty()));
    }

    // The tunnel column is shown as tcpshut.tunnel on every frame of its
    // connection (the plugin's reading of the column: the engine's
    // values are checked in tunnels.rs); a sidecar written before that
    // column is still read, with no tunnel.
    let fields = [
        "frame.number",
        "tcpshut.conn",
        "tcpshut.outcome",
        "tcpshut.tunnel",
    ];
    let tunnel = "vxlan vni=77 192.0.2.1<>192.0.2.2 / gre key=42 2001:db8::1<>2001:db8::2";
    let with_tunnel: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\n"),
            _ => format!("{l}{tunnel}\n"),
        })
        .collect();
    let older: String = text
        .lines()
        .map(|l| {
            let l = l.strip_suffix(",tunnel").or_else(|| l.strip_suffix(','));
            format!("{}\n", l.expect("an empty tunnel column ends each line"))
        })
        .collect();
    for (sidecar, shown) in [(with_tunnel, tunnel), (older, "")] {
        std::fs::write(&conns, &sidecar).unwrap();
        let frames = sb.dissect(&sb.path("data-after-close.pcap"), &[], &fields);
        let rows: Vec<&Dissected> = frames
            .iter()
            .filter(|d| !one(d, "tcpshut.conn").is_empty())
            .collect();
        assert!(rows.len() > 5, "{ws:?}: {frames:?}");
        for d in rows {
            assert_eq!(one(d, "tcpshut.outcome"), "reset", "{ws:?}: {sidecar}");
            assert_eq!(one(d, "tcpshut.tunnel"), shown, "{ws:?}: {sidecar}");
        }
    }
}

/// Issue #13 "at a glance": the `tcpshut` profile's colouring rules mark
/// the teardown's frames by event and severity (tshark applies them with
/// `--color`), ahead of Wireshark's own "TCP RST" and "Bad TCP".
fn colouring_rules_mark_teardown_frames(ws: Wireshark) {
    let sb = Sandbox::installed(ws);
    let rules = |name: &str| -> BTreeMap<String, String> {
        let cap = sb.annotated_testdata(name);
        lua_clean_stdout(
            name,
            sb.tshark_reading(&cap)
                .args(["-C", "tcpshut", "--color"])
                .args([
                    "-T",
                    "fields",
                    "-e",
                    "frame.number",
                    "-e",
                    "frame.coloring_rule.name",
                ]),
        )
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect()
    };
    let by_frame = rules("data-after-close.pcap");
    assert_eq!(
        by_frame["8"], "tcpshut: severity note",
        "{ws:?}: {by_frame:?}"
    );
    assert_eq!(
        by_frame["10"], "tcpshut: data to a side that has closed",
        "{ws:?}"
    );
    assert_eq!(
        by_frame["11"], "tcpshut: RST after close (data to a closed socket)",
        "{ws:?}"
    );
    assert_eq!(by_frame["3"], "TCP", "{ws:?}: Wireshark's own rules follow");
    let by_frame = rules("rst-out-of-window.pcap");
    assert!(
        by_frame
            .values()
            .any(|r| r == "tcpshut: RST ignored (out of window or forged?)"),
        "{ws:?}: {by_frame:?}"
    );
    let by_frame = rules("linger0-after-data.pcap");
    assert!(
        by_frame.values().any(|r| r == "tcpshut: severity warn"),
        "{ws:?}: {by_frame:?}"
    );
}

/// The no-sidecar note's text (the expert item `tcpshut.no_sidecar`).
const NO_SIDECAR_NOTE: &str =
    "tcpshut: no sidecar for this capture; `tcpshut annotate CAPTURE` makes \
                               CAPTURE.tcpshut.csv beside it";

/// Issue #13 "at a glance": with no sidecar, one quiet note (an expert
/// item, chat) on the first frame saying how to make one, and nothing
/// more: in the tree (`-V`, also with `-2`), in `-z expert` and as a field,
/// exactly one, on frame 1; nothing on standard error, and plain `tshark
/// -r` prints what it prints without the plugin. With a sidecar beside
/// the capture, no note.
fn no_sidecar_note_once_on_the_first_frame(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "plain.pcap");
    let run = |extra: &[&str], plugin: bool| {
        let mut cmd = sb.tshark_reading(&cap);
        cmd.args(extra);
        if plugin {
            cmd.args(sb.with_script());
        }
        let out = cmd.output().unwrap();
        assert_no_lua_error(&format!("{ws:?} {extra:?}"), &out);
        assert!(out.status.success(), "{ws:?} {extra:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("tcpshut"), "{ws:?} {extra:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // the tree, once and twice through the capture: one note, in frame 1
    for extra in [&["-V"][..], &["-2", "-V"][..]] {
        let out = run(extra, true);
        let frames: Vec<&str> = out.split("\nFrame ").collect();
        let with_note: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.contains(NO_SIDECAR_NOTE))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(with_note, [1], "{ws:?} {extra:?}:\n{out}");
        // one item, a chat (-V prints its text as its label and its message)
        let item = format!("[Expert Info (Chat/Protocol): {NO_SIDECAR_NOTE}]");
        assert_eq!(out.matches(&item).count(), 1, "{ws:?} {extra:?}:\n{out}");
        assert_eq!(out.matches(NO_SIDECAR_NOTE).count(), 2, "{ws:?} {extra:?}");
    }
    // -z expert: one chat, counted once
    let out = run(&["-q", "-z", "expert"], true);
    let mut section = "";
    let mut found = Vec::new();
    for l in out.lines() {
        if !l.starts_with(' ') && l.contains(" (") {
            section = l;
        } else if l.contains(NO_SIDECAR_NOTE) {
            found.push((section, l.split_whitespace().next().unwrap_or_default()));
        }
    }
    assert_eq!(found.len(), 1, "{ws:?}:\n{out}");
    assert!(
        found[0].0.starts_with("Chats (") && found[0].1 == "1",
        "{ws:?}: {found:?}\n{out}"
    );
    // as a field: frame 1's only
    let out = run(
        &[
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ],
        true,
    );
    let noted: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(NO_SIDECAR_NOTE))
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(noted, ["1"], "{ws:?}:\n{out}");
    // plain tshark -r: as without the plugin
    assert_eq!(run(&[], true), run(&[], false), "{ws:?}");
    // plain summary lines that can show it: a column on the expert
    // message (by -o, or in the profile's preferences), and the long form
    // of -Y (4.4 and later): frame 1, once
    let on_frame_1 = |what: &str, out: &str| {
        let noted: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(NO_SIDECAR_NOTE))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(noted, ["1"], "{ws:?} {what}:\n{out}");
    };
    let column = r#""No.","%m","Expert","%Cus:_ws.expert.message""#;
    let option = format!("gui.column.format:{column}");
    on_frame_1("-o", &run(&["-o", &option], true));
    let prefs = sb.home().join("cfg/wireshark/preferences");
    std::fs::create_dir_all(prefs.parent().unwrap()).unwrap();
    std::fs::write(&prefs, format!("gui.column.format: {column}\n")).unwrap();
    on_frame_1("the profile's column", &run(&[], true));
    std::fs::remove_file(&prefs).unwrap();
    if ws != Wireshark::V4_0 {
        let out = run(&["--display-filter", "tcpshut.no_sidecar"], true);
        assert_eq!(out.lines().count(), 1, "{ws:?}:\n{out}");
        assert!(out.trim_start().starts_with("1 "), "{ws:?}:\n{out}");
    }

    std::fs::write(
        sb.path("plain.pcap.tcpshut.csv"),
        sidecar_text(&synthetic_rows()),
    )
    .unwrap();
    let annotated = run(&["-V"], true);
    assert!(!annotated.contains("no sidecar"), "{ws:?}: {annotated}");
    assert!(annotated.contains("TCP Shutdown"), "{ws:?}");
}

/// Issue #13 "at a glance": `tcpshut.conn` and Wireshark's `tcp.stream`
/// split a 4-tuple by different rules. Two captures where they really
/// differ: pop3.pcap (Zeek's test data), where a client's SYN is refused
/// and retried twice on the same ports (tcpshut: three refused attempts;
/// Wireshark 4.0: one stream, 4.4 and later: three streams too, one to
/// one), and syn-fin.pcap, where a SYN+FIN injected into
/// an established connection is ignored by the kernel (RFC 5961 4.2; one
/// connection for tcpshut) but starts a new stream in Wireshark. Each
/// frame's pair, and the connections table's streams and its (shared) and
/// (split) marks, follow from the frames.
fn conn_and_tcp_stream_differ_where_expected(ws: Wireshark) {
    let sb = Sandbox::installed(ws);
    // (capture, connections expected in one stream, connection expected in two streams)
    let retried: &[u32] = if ws == Wireshark::V4_0 {
        &[0, 1, 2]
    } else {
        &[]
    };
    for (source, shared, split) in [
        ("third-party/zeek__pop3__pop3.pcap", retried, None),
        ("syn-fin.pcap", &[][..], Some(0u32)),
    ] {
        let cap = sb.annotated_testdata(source);
        let name = cap.file_name().unwrap().to_str().unwrap();
        let frames = sb.dissect(&cap, &[], &["tcpshut.conn", "tcp.stream"]);
        let mut streams_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut conns_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for d in &frames {
            let (conn, stream) = (one(d, "tcpshut.conn"), one(d, "tcp.stream"));
            if conn.is_empty() || stream.is_empty() {
                continue;
            }
            let (conn, stream): (u32, u32) = (conn.parse().unwrap(), stream.parse().unwrap());
            let s = streams_of.entry(conn).or_default();
            if !s.contains(&stream) {
                s.push(stream);
            }
            let c = conns_of.entry(stream).or_default();
            if !c.contains(&conn) {
                c.push(conn);
            }
        }
        if !shared.is_empty() {
            let stream = streams_of[&shared[0]].clone();
            assert_eq!(stream.len(), 1, "{ws:?} {name}: {streams_of:?}");
            for c in shared {
                assert_eq!(streams_of[c], stream, "{ws:?} {name}: {streams_of:?}");
            }
            assert_eq!(conns_of[&stream[0]], shared, "{ws:?} {name}: {conns_of:?}");
        }
        if let Some(c) = split {
            assert_eq!(streams_of[&c].len(), 2, "{ws:?} {name}: {streams_of:?}");
        }
        if shared.is_empty() && split.is_none() {
            // one to one: each connection in a stream of its own
            assert!(
                streams_of.values().all(|s| s.len() == 1)
                    && conns_of.values().all(|c| c.len() == 1)
                    && streams_of.len() == 11,
                "{ws:?} {name}: {streams_of:?}"
            );
        }
        let table = sb.connections_table(name);
        for (conn, streams) in &streams_of {
            let row = table
                .lines()
                .find(|l| {
                    l.starts_with(&format!("{conn} "))
                        && l.ends_with(&format!("tcpshut.conn == {conn}"))
                })
                .unwrap_or_else(|| panic!("{ws:?} {name}: no row {conn}: {table}"));
            let mut sorted = streams.clone();
            sorted.sort_unstable();
            let list: Vec<String> = sorted.iter().map(u32::to_string).collect();
            let mark = if streams.len() > 1 {
                " (split)"
            } else if conns_of[&streams[0]].len() > 1 {
                " (shared)"
            } else {
                ""
            };
            assert!(
                row.contains(&format!(" {}{mark} ", list.join(","))),
                "{ws:?} {name}: {row}"
            );
        }
    }
}

/// Issue #13 defect 2: a sidecar set by preference belongs to its own
/// capture; another capture with its own sidecar beside it shows that one.
fn pinned_sidecar_applies_to_its_own_capture_only(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let a = synthetic_capture(&sb, "a.pcap");
    let a_text = sidecar_text(&synthetic_rows());
    let a_side = sb.path("a.pcap.tcpshut.csv");
    std::fs::write(&a_side, &a_text).unwrap();
    // b: the same connection a second later, with its own sidecar
    let b = sb.path("b.pcap");
    let b_frames: Vec<Frame> = synthetic_frames()
        .into_iter()
        .map(|f| Frame {
            secs: f.secs + 1,
            ..f
        })
        .collect();
    write_pcap(&b, &b_frames);
    let mut b_rows = synthetic_rows();
    for r in &mut b_rows {
        r[1] = r[1].replacen("1700000000.", "1700000001.", 1);
    }
    let b_text = sidecar_text(&b_rows);
    std::fs::write(sb.path("b.pcap.tcpshut.csv"), &b_text).unwrap();
    assert_frames_match_sidecar("a, pinned", &dissect_with(&sb, &a, &a_side), &a_text);
    assert_frames_match_sidecar(
        &format!("{ws:?}: b, a's sidecar pinned"),
        &dissect_with(&sb, &b, &a_side),
        &b_text,
    );
}

/// Issue #13 defect 8 and issue #10 item 10: descriptions for every field,
/// one item per call (`tcpshut.call == "shut_rd"` is not `shut_rdwr`), the
/// documented `in {…, …}` filter, and the values docs/sidecar.md forbids
/// (a state LISTEN, a severity critical, a ts with 6 decimals) rejected.
fn fields_filters_and_the_contract(ws: Wireshark) {
    // -G must come first, so the plugin is installed (in a sandbox of its own)
    let installed = Sandbox::installed(ws);
    let out = installed.tshark().args(["-G", "fields"]).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let ours: Vec<&str> = listing
        .lines()
        .filter(|l| {
            l.split('\t')
                .nth(2)
                .is_some_and(|a| a.starts_with("tcpshut."))
        })
        // (expert items are listed too, as FT_NONE fields without one)
        .filter(|l| l.split('\t').nth(3) != Some("FT_NONE"))
        .collect();
    assert!(ours.len() >= 10, "{ws:?}: {ours:?}");
    for line in &ours {
        let description = line.split('\t').nth(7).unwrap_or_default();
        assert!(!description.is_empty(), "{ws:?}: no description: {line}");
    }

    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let side = sb.sidecar("rows.csv", &synthetic_rows());
    let frames_matching = |filter: &str| sb.frames_matching(&cap, &side, filter);
    assert_eq!(
        frames_matching("tcpshut.calls contains \"shut_rd\""),
        ["5", "7"]
    );
    assert_eq!(frames_matching("tcpshut.call == \"shut_rd\""), ["5"]);
    assert_eq!(frames_matching("tcpshut.call == \"shut_rdwr\""), ["7"]);
    assert_eq!(
        frames_matching("tcpshut.event in {\"rst-after-close\", \"data-to-closed\"}"),
        ["7", "8"]
    );

    let mut rows = synthetic_rows();
    rows[0][9] = "LISTEN".into();
    rows[1][14] = "critical".into();
    rows[3][1] = "1700000000.300001".into();
    let bad = sb.sidecar("bad.csv", &rows);
    let frames = dissect_with(&sb, &cap, &bad);
    for (n, needle) in [
        ("1", "bad sender_state \"LISTEN\""),
        ("2", "bad severity \"critical\""),
        ("5", "exactly 9 decimals"),
    ] {
        row_rejected(&format!("{ws:?}"), &frames, n, needle);
    }
}

/// The synthetic frames as pcapng, with a custom block (0x00000BAD) and a
/// non-copyable one (0x40000BAD) after frame 2: Wireshark shows each as a
/// frame of its own.
fn write_pcapng_with_custom_blocks(path: &Path, frames: &[Frame]) {
    let classic = path.with_extension("tmp.pcap");
    write_pcap(&classic, frames);
    let bytes = std::fs::read(&classic).unwrap();
    std::fs::remove_file(&classic).unwrap();
    let block = |kind: u32, body: &[u8]| -> Vec<u8> {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (12 + body.len()) as u32;
        [
            &kind.to_le_bytes()[..],
            &len.to_le_bytes(),
            &body,
            &len.to_le_bytes(),
        ]
        .concat()
    };
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut out = block(
        0x0A0D_0D0A,
        &[
            &0x1A2B_3C4Du32.to_le_bytes()[..],
            &1u16.to_le_bytes(),
            &0u16.to_le_bytes(),
            &(-1i64).to_le_bytes(),
        ]
        .concat(),
    );
    out.extend(block(
        1,
        &[
            &1u16.to_le_bytes()[..],
            &0u16.to_le_bytes(),
            &65535u32.to_le_bytes(),
        ]
        .concat(),
    ));
    let mut at = 24;
    let mut n = 0;
    while at < bytes.len() {
        let (secs, usecs, caplen, len) = (
            le32(&bytes, at),
            le32(&bytes, at + 4),
            le32(&bytes, at + 8),
            le32(&bytes, at + 12),
        );
        let data = &bytes[at + 16..at + 16 + caplen as usize];
        let ticks = secs as u64 * 1_000_000 + usecs as u64;
        out.extend(block(
            6,
            &[
                &0u32.to_le_bytes()[..],
                &((ticks >> 32) as u32).to_le_bytes(),
                &(ticks as u32).to_le_bytes(),
                &caplen.to_le_bytes(),
                &len.to_le_bytes(),
                data,
            ]
            .concat(),
        ));
        at += 16 + caplen as usize;
        n += 1;
        if n == 2 {
            // a Private Enterprise Number, then the block's own data
            out.extend(block(
                0x0000_0BAD,
                &[&32473u32.to_le_bytes()[..], b"custom"].concat(),
            ));
            out.extend(block(
                0x4000_0BAD,
                &[&32473u32.to_le_bytes()[..], b"no copy"].concat(),
            ));
        }
    }
    std::fs::write(path, out).unwrap();
}

/// Issue #13 defect 4: in a pcapng with custom blocks, tcpshut numbers
/// frames as Wireshark does, so the sidecar matches.
fn pcapng_custom_blocks_are_numbered_like_wireshark(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = sb.path("custom.pcapng");
    write_pcapng_with_custom_blocks(&cap, &synthetic_frames());
    sb.annotate("custom.pcapng");
    let text = std::fs::read_to_string(sb.path("custom.pcapng.tcpshut.csv")).unwrap();
    let frames = sb.dissect(&cap, &[], &["frame.number"]);
    assert_eq!(frames.len(), 10, "{ws:?}: 8 packets and 2 custom blocks");
    let rows = parse_csv(&text);
    let numbers: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(numbers, ["1", "2", "5", "6", "7", "8", "9", "10"]);
    assert_frames_match_sidecar(
        &format!("{ws:?}: custom blocks"),
        &dissect_with(&sb, &cap, &sb.path("custom.pcapng.tcpshut.csv")),
        &text,
    );
}

/// Runs `cmd`, killing it after `secs` seconds; returns its output, or
/// `None` when it had to be killed.
fn output_within(mut cmd: Command, secs: u64) -> Option<std::process::Output> {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on threads so a full pipe cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (stdout, stderr) = (out_reader.join().unwrap(), err_reader.join().unwrap());
    status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    })
}

/// Issue #13 defect 5: a FIFO or a device as sidecar (set, or found beside
/// the capture) is never opened, and a sidecar shorter than its capture
/// says where it ends.
fn sidecars_that_are_not_regular_files_or_end_early(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let fifo = sb.path("fifo.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for sidecar in [
        fifo.clone(),
        PathBuf::from("/dev/zero"),
        sb.dir.path().to_path_buf(),
    ] {
        let mut cmd = sb.tshark_reading(&cap);
        cmd.args(sb.with_plugin(&sidecar))
            .args(["-T", "fields", "-e", "_ws.expert.message"]);
        let out =
            output_without_lua_error(&format!("{ws:?}: sidecar {}", sidecar.display()), cmd, 60);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let errors: Vec<&str> = stdout.lines().filter(|l| l.contains("tcpshut")).collect();
        assert_eq!(errors.len(), 1, "{ws:?} {}: {stdout}", sidecar.display());
        assert!(errors[0].contains("not a regular file"), "{errors:?}");
    }
    // A FIFO beside the capture is not a sidecar: the plugin stays silent.
    let beside = sb.path("beside.pcap");
    std::fs::copy(&cap, &beside).unwrap();
    let made = Command::new("mkfifo")
        .arg(sb.path("beside.pcap.tcpshut.csv"))
        .status()
        .unwrap();
    assert!(made.success());
    let mut cmd = sb.tshark_reading(&beside);
    cmd.args(sb.with_script()).args(EVENTS_AND_EXPERTS);
    let out = output_without_lua_error(&format!("{ws:?}: a FIFO beside the capture"), cmd, 60);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // no sidecar: the quiet note on the first frame, nothing else
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("tcpshut")).collect();
    assert!(
        lines.len() == 1 && lines[0].ends_with(&format!(",{NO_SIDECAR_NOTE}")),
        "{stdout}"
    );

    // The last two rows cut off (an interrupted run): frames 1-5 as in the
    // sidecar, one warning on frame 7 (the first TCP frame without a row).
    let rows = synthetic_rows();
    let short = sidecar_text(&rows[..rows.len() - 2]);
    let side = sb.path("short.csv");
    std::fs::write(&side, &short).unwrap();
    let frames = dissect_with(&sb, &cap, &side);
    let warnings: Vec<(String, Vec<String>)> = frames
        .iter()
        .map(|d| (one(d, "frame.number"), tcpshut_experts(d)))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    assert_eq!(warnings.len(), 1, "{ws:?}: {warnings:?}");
    assert_eq!(warnings[0].0, "6", "{warnings:?}");
    assert!(
        warnings[0].1[0].contains("the sidecar ends early: its last row is frame 5"),
        "{warnings:?}"
    );
    assert_frames_match_sidecar(&format!("{ws:?}: short"), &frames[..5], &short);
}

/// Replaces the file or folder at `path` by `kind`: a FIFO, a folder, or a
/// file (`text`) that tshark's user cannot read.
fn make_not_regular_or_unreadable(path: &Path, kind: &str, text: &str) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).unwrap();
    } else if path.symlink_metadata().is_ok() {
        std::fs::remove_file(path).unwrap();
    }
    match kind {
        "FIFO" => assert!(Command::new("mkfifo").arg(path).status().unwrap().success()),
        "folder" => std::fs::create_dir(path).unwrap(),
        "unreadable" => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        _ => unreachable!("{kind}"),
    }
}

/// What the connections sidecar can be other than a readable regular
/// file, and what the plugins must then say of it.
const CONNECTIONS_NOT_USABLE: [(&str, &str); 3] = [
    ("FIFO", "not a regular file"),
    ("folder", "not a regular file"),
    ("unreadable", "Permission denied"),
];

/// Issue #13 defect 5, the connections sidecar: a FIFO there hung tshark
/// for good (plain `-r`, `-z expert`, `-z tcpshut,conns`), since the Lua
/// plugin opened it before checking it; a folder there is not read
/// either, and one that cannot be read was taken for none without a word.
/// Each is said once, naming the file, and the annotations still show.
fn connections_sidecar_not_regular_or_unreadable(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "conns.pcap");
    sb.annotate("conns.pcap");
    let conns = sb.path("conns.pcap.tcpshut.connections.csv");
    let text = std::fs::read_to_string(&conns).unwrap();
    for (kind, reason) in CONNECTIONS_NOT_USABLE {
        make_not_regular_or_unreadable(&conns, kind, &text);
        for args in [
            &[][..],
            &["-q", "-z", "expert"][..],
            &["-q", "-z", "tcpshut,conns"][..],
            &EVENTS_AND_EXPERTS[..],
        ] {
            let what = format!("{ws:?}: connections sidecar {kind}, tshark {args:?}");
            let mut cmd = sb.tshark_reading(&cap);
            cmd.args(sb.with_script()).args(args);
            let out = output_without_lua_error(&what, cmd, 60);
            assert!(out.status.success(), "{what}: {out:?}");
            if args.is_empty() {
                continue;
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let said: Vec<&str> = stdout
                .lines()
                .filter(|l| l.contains("connections sidecar"))
                .collect();
            assert_eq!(said.len(), 1, "{what}: said once:\n{stdout}");
            assert!(
                said[0].contains("conns.pcap.tcpshut.connections.csv") && said[0].contains(reason),
                "{what}: {said:?}"
            );
            if args[0] == "-T" {
                // the rows' annotations still show
                assert!(stdout.contains("fin-active"), "{what}:\n{stdout}");
            }
        }
    }
}

/// The standard output of `tshark -n -r CAPTURE MODE` (no Lua error) with
/// a harness script that stands in for Wireshark's GUI: `stubs` (Lua,
/// over `_G`) for what the plugin calls, with a filter bar whose
/// `set_filter` keeps the filter in `filter` and whose `apply_filter`
/// prints it (`applied: FILTER`); then the plugin, then `tap` (Lua) on a
/// frame `Listener` named `tap`.
fn with_harness(
    sb: &Sandbox,
    what: &str,
    cap: &Path,
    mode: &str,
    stubs: &str,
    tap: &str,
) -> String {
    let harness = sb.path("harness.lua");
    std::fs::write(
        &harness,
        format!(
            r#"-- each script has an environment of its own over _G (4.4 and later)
local filter
{stubs}
_G.set_filter = function(f) filter = f end
_G.apply_filter = function() print("applied: " .. tostring(filter)) end
dofile("{}")
local tap = Listener.new("frame")
{tap}
"#,
            sb.plugin().display()
        ),
    )
    .unwrap();
    lua_clean_stdout(
        what,
        sb.tshark_reading(cap).arg(mode).args(lua_script(&harness)),
    )
}

/// Issue #13 "a click that filters to that connection": from Wireshark
/// 4.2 the packet list's context menu has "tcpshut > This connection",
/// which applies `tcpshut.conn == N` for the selected frame. No GUI here:
/// a harness script stands in for Wireshark's menu and filter bar (it
/// records what the plugin registers and the filter it sets), loads the
/// plugin, and on every frame calls the entry's action with that frame's
/// real fields, as Wireshark does on a right-click. 4.0 has no such menu
/// (the docs say what to click there instead).
fn packet_menu_filters_to_the_frames_connection(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "menu.pcap");
    let probe = sb.path("probe.lua");
    std::fs::write(
        &probe,
        "print(\"register_packet_menu \" .. (register_packet_menu and \"yes\" or \"no\"))\n",
    )
    .unwrap();
    let out = sb
        .tshark_reading(&cap)
        .args(["-c", "1"])
        .args(lua_script(&probe))
        .output()
        .unwrap();
    let has_menu = ws != Wireshark::V4_0;
    let want = format!(
        "register_packet_menu {}",
        if has_menu { "yes" } else { "no" }
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&want),
        "{ws:?}: {want}: {out:?}"
    );
    if !has_menu {
        return;
    }
    // two connections on one 4-tuple, the sidecar beside the capture
    let cap = sb.annotated_testdata("port-reuse.pcap");
    let text = std::fs::read_to_string(sb.path("port-reuse.pcap.tcpshut.csv")).unwrap();
    let conn_of: BTreeMap<u32, String> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[2].to_string())
        })
        .collect();
    let conns: std::collections::BTreeSet<&String> = conn_of.values().collect();
    assert!(conns.len() > 1, "{conns:?}");
    let stdout = with_harness(
        &sb,
        &format!("{ws:?}: packet menu"),
        &cap,
        "-V",
        r#"local action
_G.register_packet_menu = function(name, fn, required)
    action = fn
    print("menu: " .. name .. " | " .. tostring(required))
end"#,
        r#"function tap.packet(pinfo)
    filter = nil
    action(all_field_infos())
    print("frame " .. pinfo.number .. " filter " .. tostring(filter))
end"#,
    );
    let ours: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.starts_with("menu: ") || l.starts_with("frame ") || l.starts_with("applied: ")
        })
        .collect();
    let mut want =
        vec!["menu: tcpshut/This connection (tcpshut.conn == N) | tcpshut.conn".to_string()];
    let frames = stdout.lines().filter(|l| l.starts_with("Frame ")).count() as u32;
    for frame in 1..=frames {
        match conn_of.get(&frame) {
            Some(conn) => {
                want.push(format!("applied: tcpshut.conn == {conn}"));
                want.push(format!("frame {frame} filter tcpshut.conn == {conn}"));
            }
            // no row: no tcpshut.conn (Wireshark shows no entry there)
            None => want.push(format!("frame {frame} filter nil")),
        }
    }
    assert_eq!(ours, want, "{ws:?}:\n{stdout}");
}

/// Issue #13, the connections table's click: its window (a Lua
/// TextWindow, whose lines report no click, cursor or selection in 4.0 to
/// 4.6) is editable, and "Filter to the marked connections" filters to the
/// connections whose lines the user marked with a `*`. The window's
/// functions are stood in for in real tshark (the GUI itself is driven by
/// scripts/check-wireshark-gui): the first button says nothing is marked
/// and filters nothing; one line marked gives `tcpshut.conn == 13`; every
/// reset line marked (spaces around the `*`) gives `tcpshut.conn in {...}`
/// with commas (4.0 needs them), which tshark accepts as a filter.
fn connections_table_filters_to_the_marked_lines(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = sb.annotated_testdata("report-mix/mix.pcap");
    let stdout = with_harness(
        &sb,
        &format!("{ws:?}: table"),
        &cap,
        "-q",
        r#"local menu_fn, text
local buttons = {}
_G.gui_enabled = function() return true end
_G.register_menu = function(name, fn) menu_fn = fn end
_G.retap_packets = function() end
_G.TextWindow = { new = function(title)
    local w = {}
    function w:set(t) text = t end
    function w:get_text() return text end
    function w:set_editable(e) print("editable: " .. tostring(e)) end
    function w:add_button(label, fn) buttons[#buttons + 1] = { label, fn } end
    return w
end }
_G.report_failure = function(m) print("failure: " .. m) end"#,
        r#"function tap.draw()
    menu_fn()
    print("first button: " .. buttons[1][1])
    local press = buttons[1][2]
    press()
    text = string.gsub(text, "\n(13 )", "\n*%1", 1)
    press()
    text = string.gsub(text, "\n%*", "\n")
    text = string.gsub(text, "\n(%d+ +%S+ +%S+ +reset )", "\n * %1")
    press()
end"#,
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // the reset connections, from the connections sidecar
    let conns = std::fs::read_to_string(sb.path("mix.pcap.tcpshut.connections.csv")).unwrap();
    let header: Vec<&str> = conns.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let reset: Vec<&str> = conns
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[at("outcome")] == "reset")
        .map(|f| f[at("conn")])
        .collect::<Vec<_>>();
    assert!(reset.len() > 1 && reset.contains(&"13"), "{reset:?}");
    let all_reset = format!("applied: tcpshut.conn in {{{}}}", reset.join(", "));
    assert_eq!(
        lines,
        [
            "editable: true",
            "first button: Filter to the marked connections",
            "failure: tcpshut: no connection is marked: type * at the start of a connection's \
             line in the table, then press the button again",
            "applied: tcpshut.conn == 13",
            all_reset.as_str(),
        ],
        "{ws:?}:\n{stdout}"
    );
    // the filter is one tshark accepts, and it keeps those connections' frames
    let filter = all_reset.trim_start_matches("applied: ");
    let outcomes = lua_clean_stdout(
        &format!("{ws:?}: {filter}"),
        sb.tshark_reading(&cap).args(sb.with_script()).args([
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "tcpshut.outcome",
        ]),
    );
    assert!(
        !outcomes.is_empty() && outcomes.lines().all(|l| l == "reset"),
        "{ws:?}: {outcomes}"
    );
}

/// The chroots hold the Wireshark they are meant to test.
fn tshark_is_the_expected_version(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let out = sb.tshark().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(ws.version_line()),
        "{ws:?}: tshark --version says {}",
        text.lines().next().unwrap_or_default()
    );
}

/// `wireshark install --print` says where, writes nothing; `wireshark open`
/// annotates a capture whose sidecar is missing and, without Wireshark,
/// prints the command to run.
#[test]
fn install_print_and_open_without_wireshark() {
    let sb = Sandbox::new(Wireshark::V4_0);
    let out = sb.tcpshut(&["wireshark", "install", "--lua", "--print"]);
    assert_succeeded(&out);
    let paths = printed_paths(&out);
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths
        .iter()
        .all(|p| p.starts_with(sb.home()) && !p.exists()));

    let cap = sb.path("open me.pcap");
    std::fs::copy(repo_root().join("testdata/refused.pcap"), &cap).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["wireshark", "open"])
        .arg(&cap)
        .env("HOME", sb.home())
        .env("XDG_CONFIG_HOME", sb.home().join("cfg"))
        .env("TCPSHUT_WIRESHARK", sb.path("no-such-wireshark"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_succeeded(&out);
    let sidecar = sb.path("open me.pcap.tcpshut.csv");
    assert!(sidecar.exists(), "the sidecar was made first");
    assert!(stdout.contains("Wireshark is not installed"), "{stdout}");
    assert!(stdout.contains("-o 'tcpshut.sidecar:"), "{stdout}");
    assert!(stdout.contains("lua_script:"), "{stdout}");
}

/// Issue #13 defect 1: `wireshark open` without an installed plugin never
/// hands Wireshark a script from a folder another user could have made.
/// The attack, with two local users: tcpshut-other plants
/// `tcpshut-VERSION/tcpshut.lua` (the fixed path of earlier versions) in a
/// shared temporary folder; tcpshut-test runs `tcpshut wireshark open`, then
/// the command it prints, with tshark in place of wireshark.
#[test]
fn open_never_runs_a_script_another_user_planted() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert!(
        is_root(),
        "the attack needs two users: run the tests as root"
    );
    let ws = Wireshark::V4_0;
    let sb = Sandbox::new(ws);
    let (other_uid, other_gid) = user_when_root("tcpshut-other").unwrap();
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = sb.path("shared-tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let marker = shared.join("PWNED");
    let planted_dir = shared.join(format!("tcpshut-{}", env!("CARGO_PKG_VERSION")));
    std::fs::create_dir(&planted_dir).unwrap();
    let planted = planted_dir.join("tcpshut.lua");
    std::fs::write(
        &planted,
        format!(
            "local f = io.open(\"{}\", \"w\") if f then f:write(\"ran\") f:close() end",
            marker.display()
        ),
    )
    .unwrap();
    for p in [&planted_dir, &planted] {
        std::os::unix::fs::chown(p, Some(other_uid), Some(other_gid)).unwrap();
    }
    let cap = sb.copy_testdata("refused.pcap");
    // the test user's own folder (open now refuses a temporary folder
    // below one that others can write and is not sticky: see the next test)
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = sb
        .tcpshut_command(Some(TEST_USER))
        .args(["wireshark", "open", "refused.pcap"])
        .env("TMPDIR", &shared)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_succeeded(&out);
    let script = stdout
        .split_whitespace()
        .find_map(|w| w.trim_matches('\'').strip_prefix("lua_script:"))
        .unwrap_or_else(|| panic!("no lua_script in {stdout}"));
    let script = PathBuf::from(script);
    assert_ne!(script, planted, "the planted script is loaded");
    let folder = std::fs::metadata(script.parent().unwrap()).unwrap();
    assert_eq!(
        folder.permissions().mode() & 0o777,
        0o700,
        "{}",
        script.display()
    );
    assert_eq!(Some(folder.uid()), test_user().map(|u| u.0));

    // The command it printed, run with tshark: annotations, and no planted code ran.
    let sidecar = sb.path("refused.pcap.tcpshut.csv");
    let frames = sb.dissect(
        &cap,
        &[lua_script(&script), preference(&sidecar)].concat(),
        FIELDS,
    );
    assert!(!marker.exists(), "the planted script ran");
    assert_frames_match_sidecar(
        "open's script",
        &frames,
        &std::fs::read_to_string(&sidecar).unwrap(),
    );
}

/// `wireshark open` without an installed plugin writes its private copy
/// of the script below TMPDIR only where `install --native` would build:
/// with a TMPDIR anyone can write and that is not sticky, another user
/// could swap the private folder for theirs, script and all, before
/// Wireshark reads it. It refuses in the project's error form (exit 1,
/// one line naming the folder) and writes nothing there.
#[test]
fn open_refuses_a_temporary_folder_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    sb.copy_testdata("refused.pcap");
    let tmp = sb.path("open-tmp");
    std::fs::create_dir(&tmp).unwrap();
    let open = |mode: u32| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
        sb.tcpshut_command(Some(TEST_USER))
            .args(["wireshark", "open", "refused.pcap"])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap()
    };
    let out = open(0o777);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "tcpshut: {}: not owned by you or root, or writable by others; the plugin was not \
             written there and Wireshark was not started (another user could replace the \
             plugin's copy below it before Wireshark runs it)\n",
            std::fs::canonicalize(&tmp).unwrap().display()
        )
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "written below TMPDIR"
    );
    // the same folder made sticky, as /tmp is: the private copy is made
    let out = open(0o1777);
    assert_succeeded(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("lua_script:{}", tmp.display())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Each Wireshark test, once per Wireshark: `wireshark::v4_4::NAME`.
macro_rules! in_every_wireshark {
    ($($name:ident),* $(,)?) => {
        in_every_wireshark!(@version v4_0, V4_0, $($name),*);
        in_every_wireshark!(@version v4_4, V4_4, $($name),*);
        in_every_wireshark!(@version v4_6, V4_6, $($name),*);
    };
    (@version $module:ident, $version:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Wireshark::$version);
                }
            )*
        }
    };
}

in_every_wireshark!(
    tshark_is_the_expected_version,
    series_files_match_their_own_sidecars,
    pcapng_custom_blocks_are_numbered_like_wireshark,
    mismatch_is_found_when_times_agree,
    quiet_rows_show_nothing_unchecked_without_a_tree,
    mismatch_message_keeps_its_reason_within_240_bytes,
    mismatch_is_found_by_seq_and_length,
    info_tag_and_connection_filters,
    no_sidecar_note_once_on_the_first_frame,
    packet_menu_filters_to_the_frames_connection,
    connections_table_filters_to_the_marked_lines,
    conn_and_tcp_stream_differ_where_expected,
    colouring_rules_mark_teardown_frames,
    pinned_sidecar_applies_to_its_own_capture_only,
    fields_filters_and_the_contract,
    sidecars_that_are_not_regular_files_or_end_early,
    connections_sidecar_not_regular_or_unreadable,
    sidecars_of_another_user_are_shown,
    expert_items_follow_the_engine_table,
    root_is_told_when_wireshark_skips_the_plugin,
    handmade_sidecar_fields_match_rows,
    lookup_order_preference_argument_environment,
    profile_column_and_installed_plugin_find_sidecar_beside_capture,
    sidecar_of_another_capture_does_not_match,
    truncated_or_misshapen_sidecars_give_one_error,
    sidecar_columns_are_read_by_name,
    hostile_and_malformed_rows_are_data_and_rejected_row_by_row,
    testdata_captures_match_their_sidecars
);
