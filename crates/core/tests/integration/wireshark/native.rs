//! The native plugin (`wireshark/native`, issue #13) against the Lua
//! plugin: the same tshark runs with one and with the other give the same
//! output, byte for byte. The Lua plugin's own tests (the rest of this
//! module) say what that output must be; these say the C port shows
//! exactly that, on every test capture and on the hostile sidecars.
//!
//! The plugin is built here with `make -C wireshark/native` against the
//! installed Wireshark's headers (`scripts/install-deps` installs them) and
//! installed, as a user would, into the personal plugin folder of a
//! private HOME.

use super::{
    annotate_each, lua_clean_stdout, output_without_lua_error, preference, relaid_csv,
    sidecar_text, synthetic_capture, synthetic_frames, synthetic_rows,
    write_pcapng_with_custom_blocks, Sandbox, Wireshark,
};
use crate::util::{repo_root, testdata_captures, write_pcap, Frame};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `make -C wireshark/native`, once per test run and Wireshark: the
/// plugin built against that release's headers (the host's for 4.0, those
/// `scripts/wireshark-headers` unpacks beside each chroot for 4.4 and 4.6).
fn built_plugin(ws: Wireshark) -> &'static PathBuf {
    static BUILT: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    BUILT[ws as usize].get_or_init(|| {
        let dir = repo_root().join("wireshark/native");
        let out_dir = repo_root().join("target/wireshark-native");
        let mut release: Vec<String> = Vec::new();
        if let Some(root) = ws.root() {
            let headers = root.with_extension("headers");
            let version = std::fs::read_to_string(headers.join("VERSION")).unwrap_or_else(|e| {
                panic!(
                    "{ws:?}: no Wireshark headers at {} ({e}; scripts/wireshark-headers unpacks \
                     them, scripts/install-deps runs it)",
                    headers.display()
                )
            });
            let glib = Command::new("pkg-config")
                .args(["--cflags", "glib-2.0"])
                .output()
                .expect("pkg-config (scripts/install-deps installs it)");
            release = vec![
                format!("WS_VERSION={}", version.trim().split('-').next().unwrap()),
                format!(
                    "WS_CFLAGS=-I{} {}",
                    headers.join("usr/include/wireshark").display(),
                    String::from_utf8_lossy(&glib.stdout).trim()
                ),
                "WS_LIBS=".into(),
            ];
        }
        let make = |target: &str| {
            Command::new("make")
                .arg("-s")
                .arg("-C")
                .arg(&dir)
                .arg(format!("OUT={}", out_dir.display()))
                .args(&release)
                .arg(target)
                .output()
                .unwrap_or_else(|e| {
                    panic!("make (scripts/install-deps installs it and the headers): {e}")
                })
        };
        let built = make("all");
        assert!(
            built.status.success(),
            "{ws:?}: building the native plugin failed (scripts/install-deps installs \
             libwireshark-dev):\n{}{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        let so = make("print-so");
        PathBuf::from(String::from_utf8(so.stdout).unwrap().trim())
    })
}

/// The folder of the sandbox that [`native_home`] makes.
const NATIVE_HOME: &str = "native-home";

/// The folder of the sandbox that the install tests install into, for
/// [`Plugin::Installed`]: never touched by [`native_home`].
pub(super) const INSTALLED_HOME: &str = "installed-home";

/// A HOME (in the sandbox, owned by the test user) whose personal plugin
/// folder holds the native plugin, and no Lua plugin. A plugin already
/// there (installed by `tcpshut wireshark install --native`) is used as is.
fn native_home(sb: &Sandbox) -> PathBuf {
    let home = sb.path(NATIVE_HOME);
    let so = built_plugin(sb.ws);
    let version = so.parent().unwrap().file_name().unwrap();
    let epan = home
        .join(".local/lib/wireshark/plugins")
        .join(version)
        .join("epan");
    if !epan.join("tcpshut.so").exists() {
        std::fs::create_dir_all(&epan).unwrap();
        std::fs::copy(so, epan.join("tcpshut.so")).unwrap();
        if let Some((uid, gid)) = super::test_user() {
            std::os::unix::fs::chown(epan.join("tcpshut.so"), Some(uid), Some(gid)).unwrap();
            for dir in epan.ancestors().take_while(|d| d.starts_with(&home)) {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
            }
        }
    }
    home
}

/// Which plugin tshark runs with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Plugin {
    /// The Lua script, by `-X lua_script:`.
    Lua,
    /// The native plugin alone, built here, in the personal plugin folder
    /// of [`native_home`].
    Native,
    /// Whatever the personal plugin folders of the [`INSTALLED_HOME`]
    /// folder hold, as `tcpshut wireshark install` left them.
    Installed,
}

/// tshark reading `cap` (`-n -r`) with one plugin: the Lua script by
/// `-X lua_script:`, or the native one from the personal plugin folder.
fn tshark_with(sb: &Sandbox, plugin: Plugin, cap: &Path) -> Command {
    let mut cmd = sb.tshark_reading(cap);
    load_plugin(&mut cmd, sb, plugin);
    cmd
}

/// Makes `cmd` (a tshark) load one plugin: arguments added after any
/// already given, so `-G` can come first.
fn load_plugin(cmd: &mut Command, sb: &Sandbox, plugin: Plugin) {
    match plugin {
        Plugin::Lua => {
            cmd.args(sb.with_script());
        }
        Plugin::Native | Plugin::Installed => {
            let home = match plugin {
                Plugin::Native => native_home(sb),
                _ => sb.path(INSTALLED_HOME),
            };
            cmd.env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join("cfg"));
        }
    }
}

/// The tcpshut lines of `tshark -G fields` (abbreviation, type, name,
/// description of every field and expert item) with one plugin.
fn registered_fields(sb: &Sandbox, plugin: Plugin) -> Vec<String> {
    // -G must come first
    let mut cmd = sb.tshark();
    cmd.args(["-G", "fields"]);
    load_plugin(&mut cmd, sb, plugin);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Lua"),
        "{plugin:?}: tshark -G fields: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            f.len() > 2 && (f[2] == "tcpshut" || f[2].starts_with("tcpshut."))
        })
        .map(str::to_string)
        .collect()
}

/// The abbreviations of every tcpshut field, once per test run.
fn field_abbreviations(sb: &Sandbox) -> &'static [String] {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        registered_fields(sb, Plugin::Native)
            .iter()
            .map(|l| l.split('\t').nth(2).unwrap().to_string())
            .collect()
    })
}

/// How tshark is asked: with a tree (every tcpshut field, the Info column
/// and `-z expert`), without one (the packet list and `-z expert`: the
/// plugin's fast path), or the whole tree as text (`-V`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Mode {
    Fields,
    NoTree,
    Verbose,
}

/// The output of one tshark run, stdout and tcpshut's lines on stderr.
fn run(sb: &Sandbox, plugin: Plugin, cap: &Path, args: &[String], mode: Mode) -> String {
    let mut cmd = tshark_with(sb, plugin, cap);
    cmd.args(args);
    match mode {
        Mode::Fields => {
            cmd.args(["-T", "fields", "-E", "header=y", "-E", "occurrence=a"]);
            cmd.args([
                "-e",
                "frame.number",
                "-e",
                "_ws.col.Info",
                "-e",
                "_ws.expert.message",
            ]);
            for abbrev in field_abbreviations(sb) {
                cmd.arg("-e").arg(abbrev);
            }
            cmd.args(["-z", "expert"]);
        }
        Mode::NoTree => {
            cmd.args(["-z", "expert"]);
        }
        Mode::Verbose => {
            cmd.arg("-V");
        }
    }
    let what = format!("{plugin:?} {mode:?} {} {args:?}", cap.display());
    let out = output_without_lua_error(&what, cmd, 120);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("tcpshut")).collect();
    format!(
        "{}--- stderr (tcpshut)\n{}\n",
        String::from_utf8_lossy(&out.stdout),
        notes.join("\n")
    )
}

/// Both plugins give the same output for `cap` with `args`, in `modes`.
pub(super) fn same_output(sb: &Sandbox, what: &str, cap: &Path, args: &[String], modes: &[Mode]) {
    same_output_as(sb, Plugin::Native, what, cap, args, modes);
}

/// tshark with `other` gives the same output for `cap` with `args`, in
/// `modes`, as with the Lua plugin, and that output shows something.
pub(super) fn same_output_as(
    sb: &Sandbox,
    other: Plugin,
    what: &str,
    cap: &Path,
    args: &[String],
    modes: &[Mode],
) {
    for &mode in modes {
        let lua = run(sb, Plugin::Lua, cap, args, mode);
        let native = run(sb, other, cap, args, mode);
        if lua != native {
            let diff: Vec<String> = lua
                .lines()
                .zip(native.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .map(|(i, (a, b))| format!("line {}:\n  lua:    {a}\n  native: {b}", i + 1))
                .collect();
            panic!(
                "{what} ({mode:?}): the output with {other:?} differs from the Lua plugin's \
                 ({} lines against {}):\n{}",
                native.lines().count(),
                lua.lines().count(),
                diff.join("\n")
            );
        }
        assert!(
            shows_tcpshut(&lua, mode) || what.contains("silent"),
            "{what} ({mode:?}): neither plugin showed anything, nothing was compared:\n{lua}"
        );
    }
}

/// Whether `output` (from `run`) shows anything of tcpshut's: on stdout
/// past the `-T fields` header (which names tcpshut's fields whatever the
/// plugins did), or in a note on stderr (`run` always adds the notes'
/// heading, so the heading alone says nothing).
fn shows_tcpshut(output: &str, mode: Mode) -> bool {
    let (stdout, notes) = output
        .split_once("--- stderr (tcpshut)\n")
        .unwrap_or((output, ""));
    let shown = match mode {
        Mode::Fields => stdout.split_once('\n').map_or("", |(_, rows)| rows),
        Mode::NoTree | Mode::Verbose => stdout,
    };
    shown.contains("tcpshut") || !notes.trim().is_empty()
}

/// The same protocol, fields (abbreviations, types, names, descriptions)
/// and expert items as the Lua plugin.
fn registers_the_lua_plugins_fields(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let lua = registered_fields(&sb, Plugin::Lua);
    let native = registered_fields(&sb, Plugin::Native);
    assert!(lua.len() > 40, "{ws:?}: the Lua plugin's fields: {lua:?}");
    assert_eq!(lua, native, "{ws:?}: tshark -G fields");
}

/// Every test capture with the sidecar `tcpshut annotate` writes beside
/// it (found by both plugins there): every field, the Info column and
/// `-z expert`, with a tree and without.
fn testdata_captures_show_the_same(ws: Wireshark) {
    let captures = testdata_captures();
    let sb = Sandbox::new(ws);
    // In 4.4 and 4.6 with a tree only (CI time): the paths without one are
    // the same C code, compared in 4.0 and in the hostile cases everywhere.
    let modes: &[Mode] = if ws == Wireshark::V4_0 {
        &[Mode::Fields, Mode::NoTree]
    } else {
        &[Mode::Fields]
    };
    annotate_each(&sb, &captures, |name, cap| {
        same_output(&sb, &format!("{ws:?} {name}"), cap, &[], modes);
    });
    // The whole tree of a few, the connection subtree and back links included.
    let verbose: &[&str] = if ws == Wireshark::V4_0 {
        &["close-unread.pcap", "port-reuse.pcap", "refused-ipv6.pcap"]
    } else {
        &["close-unread.pcap"]
    };
    for &name in verbose {
        same_output(&sb, name, &sb.path(name), &[], &[Mode::Verbose]);
    }
}

/// The hostile sidecars of the Lua plugin's tests: not regular files, cut
/// short, another capture's, out of shape, malformed rows, columns in
/// another order, a capture with custom pcapng blocks, no sidecar at all.
fn hostile_sidecars_give_the_same_messages(ws: Wireshark) {
    let all = [Mode::Fields, Mode::NoTree, Mode::Verbose];
    let sb = Sandbox::new(ws);
    let cap = synthetic_capture(&sb, "syn.pcap");
    let rows = synthetic_rows();
    let full = sidecar_text(&rows);

    let fifo = sb.path("fifo.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for sidecar in [
        fifo,
        PathBuf::from("/dev/zero"),
        sb.dir.path().to_path_buf(),
        sb.path("no-such.csv"),
    ] {
        let what = format!("sidecar {}", sidecar.display());
        same_output(&sb, &what, &cap, &preference(&sidecar), &all);
    }

    let mut texts: Vec<(&str, String)> = vec![
        ("short", sidecar_text(&rows[..rows.len() - 2])),
        ("truncated mid-row", full[..full.len() - 20].to_string()),
        (
            "truncated in a quoted field",
            full[..full.rfind("connection reset").unwrap()].to_string(),
        ),
        (
            "a column missing",
            full.replacen("frame,ts", "frame,time", 1),
        ),
        ("empty", String::new()),
        ("out of order", {
            let mut lines: Vec<&str> = full.lines().collect();
            lines.swap(2, 3);
            lines.join("\n") + "\n"
        }),
        ("reordered columns", relaid_csv(&full, "x", None)),
        (
            "reordered, quoted extra",
            relaid_csv(&full, "a \"b\", c", None),
        ),
        ("without ack", relaid_csv(&full, "", Some("ack"))),
        ("without events", relaid_csv(&full, "", Some("events"))),
        ("CRLF", full.replace('\n', "\r\n")),
    ];
    let mut hostile = rows.clone();
    hostile[0][13] = "]] os.execute('touch /tmp/x') --[[ \" , ;".into();
    hostile[1][13] = "x".repeat(200_000);
    hostile[2][13] = "nul\0here".into();
    hostile[3][13] = "two\nlines".into();
    hostile[4][7] = "12abc".into();
    hostile[5][11] = "rst-abort;no-such-code".into();
    hostile[5][13] = "caf\u{e9} \u{1F600}".into();
    texts.push(("hostile rows", sidecar_text(&hostile)));
    // Another capture's sidecar: one microsecond later.
    let mut later = rows.clone();
    for r in &mut later {
        let us: u64 = r[1][11..17].parse().unwrap();
        r[1] = format!("1700000000.{:06}000", us + 1);
    }
    texts.push(("another capture's", sidecar_text(&later)));
    for (what, text) in &texts {
        let side = sb.path("case.csv");
        std::fs::write(&side, text).unwrap();
        same_output(&sb, what, &cap, &preference(&side), &all);
    }

    // Beside a good sidecar, a connections sidecar that is a FIFO, a
    // folder, or unreadable: said once, the same way.
    let side = sb.path("with-conns.csv");
    std::fs::write(&side, &full).unwrap();
    for (kind, _) in super::CONNECTIONS_NOT_USABLE {
        super::make_not_regular_or_unreadable(
            &sb.path("with-conns.connections.csv"),
            kind,
            "conn\n",
        );
        let what = format!("connections sidecar {kind}");
        same_output(&sb, &what, &cap, &preference(&side), &all);
    }

    // Times that agree, a frame removed: addresses, flags, seq decide.
    let same_time = |frames: Vec<Frame>| -> Vec<Frame> {
        frames
            .into_iter()
            .map(|f| Frame { usecs: 0, ..f })
            .collect()
    };
    let mut at_once = rows.clone();
    for r in &mut at_once {
        r[1] = "1700000000.000000000".into();
    }
    let side = sb.sidecar("at-once.csv", &at_once);
    for removed in [1, 3, 5] {
        let mut frames = same_time(synthetic_frames());
        frames.remove(removed);
        let cut = sb.path("cut.pcap");
        write_pcap(&cut, &frames);
        same_output(
            &sb,
            &format!("frame {removed} removed"),
            &cut,
            &preference(&side),
            &all,
        );
    }

    // Custom pcapng blocks: numbered as Wireshark does, sidecar beside.
    let custom = sb.path("custom.pcapng");
    write_pcapng_with_custom_blocks(&custom, &synthetic_frames());
    sb.annotate("custom.pcapng");
    same_output(&sb, "custom blocks", &custom, &[], &all);

    // No sidecar anywhere: one quiet note on the first frame, nothing else.
    let bare = sb.path("bare.pcap");
    std::fs::copy(&cap, &bare).unwrap();
    same_output(&sb, "no sidecar", &bare, &[], &all);
    let text = run(&sb, Plugin::Native, &bare, &[], Mode::NoTree);
    assert_eq!(text.matches(super::NO_SIDECAR_NOTE).count(), 1, "{text}");
    // plain summary lines, where only a column on the expert message or a
    // display filter on the note can show it (the long option, 4.4 on)
    let mut plain: Vec<Vec<&str>> = vec![vec![
        "-o",
        r#"gui.column.format:"No.","%m","Expert","%Cus:_ws.expert.message""#,
    ]];
    if ws != Wireshark::V4_0 {
        plain.push(vec!["--display-filter", "tcpshut.no_sidecar"]);
    }
    for args in plain {
        let output = |plugin| {
            lua_clean_stdout(
                &format!("{plugin:?} {args:?}"),
                tshark_with(&sb, plugin, &bare).args(&args),
            )
        };
        let native = output(Plugin::Native);
        // the column's text, or the one frame the filter keeps
        let shown = if args[0] == "-o" {
            native.matches(super::NO_SIDECAR_NOTE).count()
        } else {
            native.lines().count()
        };
        assert_eq!(shown, 1, "{args:?}: {native}");
        assert_eq!(output(Plugin::Lua), native, "{args:?}");
    }
    // With nothing to show past the first frame, the native plugin stops
    // being called in a tshark that dissects each frame once; -2 dissects
    // every frame again, and the second pass must show the note, or the
    // error, on the first frame again.
    let two_passes = |mut args: Vec<String>| {
        args.push("-2".into());
        args
    };
    same_output(&sb, "no sidecar, -2", &bare, &two_passes(Vec::new()), &all);
    same_output(
        &sb,
        "an unreadable sidecar, -2",
        &cap,
        &two_passes(preference(&sb.path("no-such.csv")).into()),
        &all,
    );
}

/// `-T fields` whose `-e` fields are none of the plugin's: in 4.0 tshark
/// builds a shown tree there, and the native plugin adds no items to it
/// unless something primes them (`wireshark/native`, "a shown tree nobody
/// reads"). What each of these reads must stay what the Lua plugin, which
/// adds every item, gives: the Info column and `-z expert` (no priming), a
/// display filter on a field, on an expert item and on an expert message,
/// a custom column (in 4.0) and a tap's field, and the option forms tshark's getopt
/// takes (`-Tfields`, `-eframe.number`). Each case must select or count
/// something, or it would compare nothing.
fn fields_of_others_give_the_same(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let cap = sb.annotated_testdata("close-unread.pcap");
    let column = r#"gui.column.format:"No.","%m","Shutdown","%Cus:tcpshut.summary:0:R""#;
    // each frame's number, and `more`
    let numbers_and =
        |more: &[&'static str]| [&["-T", "fields", "-e", "frame.number"][..], more].concat();
    let cases: &[(Vec<&str>, &str)] = &[
        (numbers_and(&["-e", "_ws.col.Info", "-z", "expert"]), "RST"),
        (
            vec!["-Tfields", "-eframe.number", "-Y", "tcpshut.events"],
            "\n",
        ),
        (numbers_and(&["-Y", "tcpshut.rst_abort"]), "\n"),
        (
            numbers_and(&["-Y", "_ws.expert.message contains \"tcpshut\""]),
            "\n",
        ),
        (
            numbers_and(&["-e", "_ws.col.Shutdown", "-o", column]),
            "RST",
        ),
        (
            numbers_and(&["-q", "-z", "io,stat,0,COUNT(tcpshut.event)tcpshut.event"]),
            "COUNT",
        ),
    ];
    for (args, shows) in cases {
        if ws != Wireshark::V4_0 && args.contains(&column) {
            continue; // 4.4 and 4.6 do not take an -o column as an -e field
        }
        let output = |plugin: Plugin| {
            lua_clean_stdout(
                &format!("{ws:?} {plugin:?} {args:?}"),
                tshark_with(&sb, plugin, &cap).args(args),
            )
        };
        let (lua, native) = (output(Plugin::Lua), output(Plugin::Native));
        // a tap's table: its one interval counted some events
        let counted = !lua.contains("COUNT")
            || lua
                .lines()
                .any(|l| l.contains(" <> ") && !l.contains("|     0 |"));
        assert!(
            lua.contains(shows) && !lua.starts_with('\n') && counted,
            "{ws:?} {args:?}: the Lua plugin's output shows nothing to compare:\n{lua}"
        );
        assert_eq!(lua, native, "{ws:?} {args:?}: the native plugin differs");
    }
}

/// Where the sidecar comes from, native against Lua: the preference, then
/// the script argument (`-X lua_script1:`), then `TCPSHUT_SIDECAR`, then
/// the sidecar beside the capture; and a sidecar named by any of the first
/// three belongs to its own capture only: another capture falls back to
/// the one beside it, or says it does not match when there is none. Each
/// candidate is a copy of the right sidecar with its summaries marked, so
/// the output names the one used.
fn lookup_order_and_pinned_fallback_are_the_same(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let (name, other) = ("close-unread.pcap", "port-reuse.pcap");
    for n in [name, other] {
        sb.annotated_testdata(n);
    }
    let cap = sb.path(name);
    let beside = std::fs::read_to_string(sb.path(&format!("{name}.tcpshut.csv"))).unwrap();
    let marked = |source: &str| {
        let path = sb.path(&format!("{source}.csv"));
        std::fs::write(
            &path,
            beside.replace("Client ", &format!("Client ({source}) ")),
        )
        .unwrap();
        path
    };
    let (pref, arg, env) = (
        marked("preference"),
        marked("argument"),
        marked("environment"),
    );
    let fields = [
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "tcpshut.summary",
        "-e",
        "_ws.expert.message",
    ];
    // what each run gives, with the source whose mark must show
    let output = |plugin: Plugin,
                  cap: &Path,
                  pref: Option<&Path>,
                  arg: Option<&Path>,
                  env: Option<&Path>| {
        let mut cmd = tshark_with(&sb, plugin, cap);
        if let Some(arg) = arg {
            cmd.args(["-X", &format!("lua_script1:{}", arg.display())]);
        }
        if let Some(pref) = pref {
            cmd.args(preference(pref));
        }
        if let Some(env) = env {
            cmd.env("TCPSHUT_SIDECAR", env);
        }
        cmd.args(fields);
        let out = output_without_lua_error(&format!("{ws:?} {plugin:?}"), cmd, 120);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (p, a, e) = (
        Some(pref.as_path()),
        Some(arg.as_path()),
        Some(env.as_path()),
    );
    let cases: [(&str, &Path, _, _, _, &str); 6] = [
        ("all three", cap.as_path(), p, a, e, "(preference)"),
        ("argument and environment", &cap, None, a, e, "(argument)"),
        ("environment", &cap, None, None, e, "(environment)"),
        ("none", &cap, None, None, None, "Client aborts"),
        // pinned to close-unread's sidecar, another capture with its own
        (
            "preference, another capture",
            &sb.path(other),
            p,
            None,
            None,
            "port reuse",
        ),
        (
            "environment, another capture",
            &sb.path(other),
            None,
            None,
            e,
            "port reuse",
        ),
    ];
    for (what, cap, pref, arg, env, shows) in cases {
        let lua = output(Plugin::Lua, cap, pref, arg, env);
        assert!(
            lua.contains(shows) && !lua.contains("does not match"),
            "{ws:?} {what}: the Lua plugin shows no {shows:?}:\n{lua}"
        );
        let native = output(Plugin::Native, cap, pref, arg, env);
        assert_eq!(lua, native, "{ws:?} {what}: the native plugin differs");
    }
    // pinned, and the other capture has no sidecar of its own: a mismatch
    let bare = sb.path("bare.pcap");
    std::fs::copy(sb.path(other), &bare).unwrap();
    let lua = output(Plugin::Lua, &bare, p, None, None);
    assert!(lua.contains("does not match"), "{ws:?}: {lua}");
    assert_eq!(
        lua,
        output(Plugin::Native, &bare, p, None, None),
        "{ws:?}: pinned, no sidecar beside"
    );
}

/// With both installed (the native plugin and the Lua script in the
/// plugin folders), only the native one dissects and the Lua script adds
/// the connections table: the output is the Lua plugin's alone.
fn with_both_installed_only_the_native_one_dissects(ws: Wireshark) {
    let sb = Sandbox::new(ws);
    let home = native_home(&sb);
    let lua_dir = home.join(".local/lib/wireshark/plugins");
    std::fs::copy(sb.plugin(), lua_dir.join("tcpshut.lua")).unwrap();
    if let Some((uid, gid)) = super::test_user() {
        std::os::unix::fs::chown(lua_dir.join("tcpshut.lua"), Some(uid), Some(gid)).unwrap();
    }
    let cap = sb.annotated_testdata("close-unread.pcap");
    for args in [
        vec![
            "-T",
            "fields",
            "-e",
            "tcpshut.events",
            "-e",
            "_ws.col.Info",
            "-z",
            "expert",
        ],
        vec!["-q", "-z", "tcpshut,conns"],
    ] {
        let both = lua_clean_stdout(
            &format!("{ws:?}: both plugins {args:?}"),
            sb.tshark_reading(&cap)
                .env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join("cfg"))
                .args(&args),
        );
        let lua = tshark_with(&sb, Plugin::Lua, &cap)
            .args(&args)
            .output()
            .unwrap();
        let lua = String::from_utf8_lossy(&lua.stdout);
        assert!(
            lua.contains("rst-abort") || lua.contains("close_unread"),
            "{args:?}: {lua}"
        );
        assert_eq!(both, lua, "{ws:?}: both installed, {args:?}");
    }
}

/// Each test, once per Wireshark: `wireshark::native::v4_4::NAME`.
macro_rules! in_every_wireshark {
    ($($name:ident => $test:ident),* $(,)?) => {
        in_every_wireshark!(@version v4_0, V4_0, $($name => $test),*);
        in_every_wireshark!(@version v4_4, V4_4, $($name => $test),*);
        in_every_wireshark!(@version v4_6, V4_6, $($name => $test),*);
    };
    (@version $module:ident, $version:ident, $($name:ident => $test:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    super::$name(super::Wireshark::$version);
                }
            )*
        }
    };
}

in_every_wireshark!(
    registers_the_lua_plugins_fields => native_plugin_registers_the_lua_plugins_fields,
    testdata_captures_show_the_same => native_plugin_shows_the_same_on_testdata_captures,
    hostile_sidecars_give_the_same_messages => native_plugin_gives_the_same_messages_on_hostile_sidecars,
    with_both_installed_only_the_native_one_dissects => native_plugin_with_the_lua_script_installed_dissects_once,
    fields_of_others_give_the_same => native_plugin_gives_the_same_with_fields_of_others,
    lookup_order_and_pinned_fallback_are_the_same => native_plugin_finds_the_same_sidecar_as_the_lua_plugin,
);

/// The plugin folder `tcpshut wireshark install --native` installs into,
/// under `home`, for the host's Wireshark (the folder `make` names).
pub(super) fn personal_epan(home: &Path) -> PathBuf {
    let version = built_plugin(Wireshark::V4_0)
        .parent()
        .unwrap()
        .file_name()
        .unwrap();
    home.join(".local/lib/wireshark/plugins")
        .join(version)
        .join("epan")
}
