//! The Wireshark plugin's cost (issue #13): tshark and Wireshark reading a
//! capture with `lua/tcpshut.lua` against without it, side by side in one
//! run (the runs of each pair alternate, so both see the same load), after
//! checking that the plugin really annotates the capture.
//!
//! The targets, as CPU-time ratios (user + system of the one process;
//! the machine is shared, so wall times mostly measure the wait for a core):
//! - tshark with the plugin and the sidecar beside the capture, as `-n -r
//!   CAPTURE`, `-T fields -e frame.number` and `-q -z expert`: at most
//!   1.15 each;
//! - Wireshark (the Qt GUI, under Xvfb) opening the capture and going
//!   idle, with the plugin, the sidecar and the `tcpshut` profile (its
//!   Shutdown column and colouring rules), against Wireshark with neither
//!   plugin nor profile: at most 1.3;
//! - `tshark -n -r CAPTURE` with the plugin and no sidecar anywhere: at
//!   most 1.02.
//!
//! The native plugin's and the Lua plugin's `-r` and `-T fields` are also
//! measured in the chroots' Wireshark 4.4 and 4.6, against the same
//! target, one row per release.
//!
//! Shown beside them, with no target: the floor of any Lua post-dissector
//! (tshark with one that does nothing, against tshark alone), and the
//! route with no Lua at all: tshark without the plugin on the copy that
//! `tcpshut annotate --pcapng` writes (each packet's summary as its
//! comment), against tshark on the capture.
//!
//! This is the one place that measures the plugin (it replaced
//! `scripts/bench-wireshark.py`). The plugin is loaded with `-X
//! lua_script:` from the source tree and finds the sidecar beside the
//! capture, as an installed plugin does. Both programs run with a private
//! HOME that holds only the `tcpshut` profile, as `tcpshut wireshark
//! install` writes it (no personal plugins or preferences).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::leftovers::Leftovers;
use crate::measure::{self, Run};
use crate::targets::{Bound, Targets};
use crate::{instructions, paired};

/// The tables of `lua/tcpshut.lua` whose codes give a frame an Info tag.
const TAG_TABLES: &[&str] = &["FIN_CODES", "RST_CODES", "TAG_CODES"];

/// The profile `tcpshut wireshark install` writes (the Shutdown column).
const PROFILE: &str = "tcpshut";

/// The folders and environment of the plugin's runs.
struct Setup {
    script: PathBuf,
    /// The capture with its sidecars beside it.
    annotated: PathBuf,
    /// The same capture in a folder of its own, no sidecar anywhere.
    bare: PathBuf,
    /// `CAPTURE.tcpshut.pcapng` beside `annotated`: the packets with their
    /// summaries as comments.
    commented: PathBuf,
    /// A Lua post-dissector that does nothing (the floor).
    empty_script: PathBuf,
    home: PathBuf,
    /// The native plugin's runs, when it could be built.
    native: Option<Native>,
}

/// The native plugin (`wireshark/native`): a HOME whose personal plugin
/// folder holds it, one without, and the normal user both run as when the
/// benchmark runs as root (Wireshark loads no personal plugins for root).
/// Its runs and their baseline run alike, as that user.
struct Native {
    home: PathBuf,
    plain_home: PathBuf,
    user: Option<(u32, u32)>,
}

/// The normal user the native plugin runs as under root (the test suite's,
/// made by `scripts/install-deps`).
const NATIVE_USER: &str = "tcpshut-test";

impl Setup {
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env_remove("TCPSHUT_SIDECAR")
            .env_remove("WIRESHARK_CONFIG_DIR");
        c
    }

    fn tshark(&self, capture: &Path, plugin: bool) -> Command {
        self.tshark_with(capture, plugin.then_some(&self.script))
    }

    /// tshark on `capture`, with `script` (`-X lua_script:`) if given.
    fn tshark_with(&self, capture: &Path, script: Option<&PathBuf>) -> Command {
        let mut c = self.command("tshark");
        // its notes (running as root, no sidecar) are not measured
        c.stderr(Stdio::null()).arg("-n").arg("-r").arg(capture);
        if let Some(script) = script {
            c.arg("-X").arg(format!("lua_script:{}", script.display()));
        }
        c
    }

    /// `program` (its name and any arguments: a program under valgrind)
    /// as the native plugin's runs start it: with the plugin in its HOME
    /// or without, as the normal user under root.
    fn native_command(&self, program: &[&str], plugin: bool) -> Command {
        let native = self.native.as_ref().expect("native runs only when built");
        let home = if plugin {
            &native.home
        } else {
            &native.plain_home
        };
        let mut c = match native.user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .args(program);
                c
            }
            None => {
                let mut c = Command::new(program[0]);
                c.args(&program[1..]);
                c
            }
        };
        c.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env_remove("TCPSHUT_SIDECAR")
            .env_remove("WIRESHARK_CONFIG_DIR");
        c
    }

    /// tshark with the native plugin (or without it, as the same user).
    fn native_tshark(&self, capture: &Path, plugin: bool) -> Command {
        self.native_tshark_under(&[], capture, plugin)
    }

    /// The same, under `wrapper` (`valgrind --tool=cachegrind ...`).
    fn native_tshark_under(&self, wrapper: &[&str], capture: &Path, plugin: bool) -> Command {
        let program: Vec<&str> = wrapper.iter().copied().chain(["tshark"]).collect();
        let mut c = self.native_command(&program, plugin);
        c.stderr(Stdio::null()).arg("-n").arg("-r").arg(capture);
        c
    }

    /// Installs the `tcpshut` profile into the private HOME with `tcpshut
    /// wireshark install --lua` (nothing built), and removes the plugin it
    /// installs too: the
    /// runs load the source tree's script themselves, and only those with
    /// the plugin.
    fn install_profile(&self, tcpshut: &Path) -> anyhow::Result<()> {
        let out = self
            .command(tcpshut.to_str().context("tcpshut path")?)
            .args(["wireshark", "install", "--lua"])
            .stdout(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "tcpshut wireshark install failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let profile = self.home.join(".config/wireshark/profiles").join(PROFILE);
        if !profile.join("preferences").is_file() {
            bail!(
                "tcpshut wireshark install wrote no profile at {}",
                profile.display()
            );
        }
        for plugins in [".local/lib/wireshark", ".config/wireshark/plugins"] {
            let _ = std::fs::remove_dir_all(self.home.join(plugins));
        }
        Ok(())
    }
}

/// How much the part measures.
#[derive(Clone, Copy)]
pub struct Reps {
    /// Pairs of runs of the GUI rows, the Lua plugin's rows and the rows
    /// shown without a target (`--tool-reps`).
    pub tool: usize,
    /// Pairs of runs of the native plugin's tshark rows (`--plugin-reps`).
    pub native: usize,
    /// Frames of the cut the native rows' instructions are counted on
    /// (`--plugin-cut`; 0: not counted).
    pub cut: u64,
}

/// Measures the plugin on `capture` (annotated into `dir/plugin` first).
pub fn run(
    tcpshut: &Path,
    capture: &Path,
    dir: &Path,
    reps: Reps,
    targets: &mut Targets,
) -> anyhow::Result<()> {
    if !super::on_path("tshark") {
        println!("\nThe Wireshark plugin: tshark is not installed, skipped");
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../lua/tcpshut.lua")
        .canonicalize()
        .context("lua/tcpshut.lua")?;
    let work = dir.join("plugin");
    let _ = std::fs::remove_dir_all(&work);
    // the work folder, and the mount points made in the chroots, go when
    // the part ends, on an error too
    let mut left = Leftovers::default();
    left.tree(&work);
    let name = capture.file_name().context("capture name")?;
    let annotated = work.join("annotated").join(name);
    let mut commented = annotated.clone().into_os_string();
    commented.push(".tcpshut.pcapng");
    let setup = Setup {
        script,
        annotated,
        bare: work.join("bare").join(name),
        commented: commented.into(),
        empty_script: work.join("empty-postdissector.lua"),
        home: work.join("home"),
        native: None,
    };
    for place in [&setup.annotated, &setup.bare] {
        std::fs::create_dir_all(place.parent().unwrap())?;
        if std::fs::hard_link(capture, place).is_err() {
            std::fs::copy(capture, place)?;
        }
    }
    std::fs::create_dir_all(setup.home.join(".config/wireshark"))?;
    setup.install_profile(tcpshut)?;
    std::fs::write(
        &setup.empty_script,
        "local p = Proto(\"empty\", \"Empty post-dissector\")\n\
         function p.dissector() end\n\
         register_postdissector(p)\n",
    )?;
    let made = Command::new(tcpshut)
        .arg("annotate")
        .arg(&setup.annotated)
        .arg("--pcapng")
        .arg("--no-progress")
        .stdout(Stdio::null())
        .status()?;
    if !made.success() {
        bail!("tcpshut annotate {} failed", setup.annotated.display());
    }
    println!(
        "\nThe Wireshark plugin (`lua/tcpshut.lua`) on {}; {}; load average {}",
        name.to_string_lossy(),
        super::first_line("tshark", &["--version"]),
        load_average()
    );
    check_annotations(&setup)?;
    check_comments(&setup)?;
    let mut setup = setup;
    match native_setup(&work, &setup.home) {
        Ok(native) => setup.native = Some(native),
        Err(e) => println!("The native plugin is not measured: {e:#}"),
    }
    if setup.native.is_some() {
        check_native(&setup)?;
    }

    let mut modes = vec![
        Mode::Noise,
        Mode::Sidecar,
        Mode::Fields,
        Mode::Expert,
        Mode::NoSidecar,
        Mode::Floor,
        Mode::Comments,
    ];
    if setup.native.is_some() {
        modes.extend([
            Mode::NativeSidecar,
            Mode::NativeFields,
            Mode::NativeExpert,
            Mode::NativeNoSidecar,
        ]);
    }
    if super::on_path("wireshark") && super::on_path("Xvfb") {
        modes.push(Mode::Gui);
        if setup.native.is_some() {
            modes.push(Mode::NativeGui);
        }
    } else {
        println!("Wireshark (wireshark-qt) or Xvfb is not installed: the GUI is not measured");
    }
    let counted: Vec<Mode> = modes
        .iter()
        .copied()
        .filter(|m| m.native_tshark())
        .collect();
    let cuts = cuts(tcpshut, capture, &work, reps.cut, !counted.is_empty())?;
    let instructions = match &cuts {
        Some(cuts) => count_rows(cuts, &counted, Mode::bare, |capture, plugin, mode| {
            let mut c = setup.native_tshark_under(&valgrind_args(&cuts.valgrind), capture, plugin);
            c.args(mode.options());
            c
        })?,
        None => Vec::new(),
    };
    let cpus = measure::allowed_cpus();
    println!(
        "\nEach tshark row: pairs of runs without and with, the two runs of a pair started \
         together and bound to one CPU (they share it, so both see the same machine), the CPU \
         going round {cpus:?} and the side started first alternating from pair to pair; the GUI \
         rows: pairs one run after the other, in alternating order. {} pairs for the native \
         plugin's tshark rows and the A/A row, {} for the others. The ratio is the median of \
         the pairs' CPU ratios (with / without of one pair), [the smallest–the largest]; the \
         targets judge that median. The A/A row runs tshark alone on both sides: how far from \
         1.00 a ratio reads by noise alone.",
        reps.native, reps.tool
    );
    header("command");
    let mut floor = None;
    for mode in modes {
        let pairs = if mode.native_tshark() || mode == Mode::Noise {
            reps.native
        } else {
            reps.tool
        };
        let (without, with) = match mode {
            Mode::Gui => interleaved(pairs, |plugin| gui_run(&setup, plugin, false))?,
            Mode::NativeGui => interleaved(pairs, |plugin| gui_run(&setup, plugin, true))?,
            _ => paired::together(pairs, &cpus, |plugin| Ok(mode.command(&setup, plugin)))?,
        };
        let counted = instructions
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, ratio)| *ratio);
        let spread = row(
            mode.name(),
            &without,
            &with,
            counted,
            floor,
            mode.target(),
            targets,
        );
        if mode == Mode::Noise {
            floor = spread;
        }
    }
    releases(
        &setup,
        &work,
        reps,
        &cpus,
        cuts.as_ref(),
        targets,
        &mut left,
    )?;
    println!("load average after: {}", load_average());
    Ok(())
}

/// `reps` runs without the plugin and `reps` with it, interleaved, each
/// pair in the other order than the one before (without first, then with
/// first, ...): a machine that slows down or speeds up within a pair
/// then weighs on both sides alike instead of always on the second run.
/// For the GUI rows only, whose runs cannot share a CPU as tshark's do
/// (`paired::together`): each waits for Wireshark to go idle.
fn interleaved(
    reps: usize,
    mut run: impl FnMut(bool) -> anyhow::Result<Run>,
) -> anyhow::Result<(Vec<Run>, Vec<Run>)> {
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let plugin_first = rep % 2 == 1;
        for plugin in [plugin_first, !plugin_first] {
            let measured = run(plugin)?;
            if plugin {
                with.push(measured);
            } else {
                without.push(measured);
            }
        }
    }
    Ok((without, with))
}

/// The head of a table of rows: `first` names the first column.
fn header(first: &str) {
    println!(
        "\n| {first} | pairs | CPU without | CPU with | CPU with / without: median of the pairs \
         [range] | wall without | wall with | instructions with / without |"
    );
    println!("|---|---|---|---|---|---|---|---|");
}

/// Prints one row (the medians of each side, the ratio of each pair's two
/// runs: their median and range; the instruction ratio if counted) and
/// checks the pairs' median ratio against `bound`, with the range, the
/// instruction ratio and the table's A/A row (`floor`, the noise) beside
/// it. Returns the pairs' spread.
fn row(
    name: &str,
    without: &[Run],
    with: &[Run],
    instructions: Option<f64>,
    floor: Option<paired::Spread>,
    bound: Bound,
    targets: &mut Targets,
) -> Option<paired::Spread> {
    let (a, b) = (measure::summarize(without), measure::summarize(with));
    let cpu = |runs: &[Run]| runs.iter().map(|r| r.cpu).collect::<Vec<_>>();
    let ratios = paired::pair_ratios(&cpu(without), &cpu(with));
    let Some(spread) = paired::Spread::of(&ratios) else {
        println!("| {name} | 0 | | | | | | |");
        return None;
    };
    let counted = instructions.map(|r| format!("{r:.3}")).unwrap_or_default();
    println!(
        "| {name} | {} | {:.2} s | {:.2} s | {} | {:.2} s | {:.2} s | {counted} |",
        spread.count,
        a.cpu.as_secs_f64(),
        b.cpu.as_secs_f64(),
        spread.show(),
        a.wall.as_secs_f64(),
        b.wall.as_secs_f64()
    );
    let mut note = format!(
        "{} pairs, {:.2}–{:.2}",
        spread.count, spread.min, spread.max
    );
    if let Some(r) = instructions {
        note.push_str(&format!("; instructions {r:.3}"));
        // Cachegrind counts user space only: the kernel time the plugin
        // adds (reading the sidecar, mapping its index) is shown beside it.
        if let Some(added) = paired::system_added(without, with) {
            note.push_str(&format!(", system CPU added {:+.1} ms", added * 1e3));
        }
    }
    if let (Some(aa), false) = (floor, matches!(bound, Bound::Shown)) {
        note.push_str(&format!("; A/A {}", aa.show()));
    }
    targets.check_noted(
        format!("Wireshark plugin: {name}, CPU with / without"),
        spread.median,
        bound,
        note,
    );
    Some(spread)
}

/// The cuts the native rows' instructions are counted on: the capture's
/// first frame and its first `frames` frames, each annotated by tcpshut
/// (its sidecar beside it) and each also alone in a folder (no sidecar).
struct Cuts {
    one: PathBuf,
    many: PathBuf,
    bare_one: PathBuf,
    bare_many: PathBuf,
    /// The frames in `many`, and in the whole capture.
    frames: u64,
    whole: u64,
    /// The valgrind that counts (the same inside the chroots).
    valgrind: instructions::Valgrind,
}

/// Makes the cuts in `work/cut` when `frames` > 0, `wanted` and valgrind
/// and editcap are there; otherwise says why there are none.
fn cuts(
    tcpshut: &Path,
    capture: &Path,
    work: &Path,
    frames: u64,
    wanted: bool,
) -> anyhow::Result<Option<Cuts>> {
    if frames == 0 || !wanted {
        return Ok(None);
    }
    let valgrind = match instructions::Valgrind::find() {
        Ok(v) => v,
        Err(e) => {
            println!("The native plugin's instructions are not counted: {e:#}");
            return Ok(None);
        }
    };
    if !super::on_path("editcap") {
        println!("The native plugin's instructions are not counted: no editcap (wireshark-common)");
        return Ok(None);
    }
    let whole = super::read_loop(capture, false)?.0;
    let frames = frames.min(whole).max(2);
    let name = capture.file_name().context("capture name")?;
    // absolute: the chroots see `work` at the same path
    let cut = work.canonicalize()?.join("cut");
    let place = |folder: &str| -> anyhow::Result<PathBuf> {
        let dir = cut.join(folder);
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(name))
    };
    let cuts = Cuts {
        one: place("one")?,
        many: place("many")?,
        bare_one: place("bare-one")?,
        bare_many: place("bare-many")?,
        frames,
        whole,
        valgrind,
    };
    for (path, bare, n) in [
        (&cuts.one, &cuts.bare_one, 1),
        (&cuts.many, &cuts.bare_many, frames),
    ] {
        instructions::cut(capture, path, n)?;
        std::fs::hard_link(path, bare).or_else(|_| std::fs::copy(path, bare).map(|_| ()))?;
        let made = Command::new(tcpshut)
            .arg("annotate")
            .arg(path)
            .arg("--no-progress")
            .stdout(Stdio::null())
            .status()?;
        if !made.success() {
            bail!("tcpshut annotate {} failed", path.display());
        }
    }
    println!(
        "Instructions (cachegrind) of the native plugin's tshark rows: counted on the capture's \
         first frame and first {frames} frames (each annotated), modelled for its {whole} frames \
         (start-up plus a cost a frame; crates/bench/src/instructions.rs)"
    );
    Ok(Some(cuts))
}

/// valgrind's launcher and arguments before the program it runs,
/// counting only.
fn valgrind_args(valgrind: &instructions::Valgrind) -> Vec<&str> {
    std::iter::once(valgrind.launcher.to_str().unwrap_or("valgrind"))
        .chain(instructions::CACHEGRIND.iter().copied())
        .collect()
}

/// The instruction ratio (with / without, each modelled for the whole
/// capture) of each of `rows`, `command(cut, plugin, row)` being the row's
/// command under cachegrind. The start-up (the one-frame cut) is counted
/// once for each side and kind of cut, not for each row: the options only
/// change what each frame costs.
fn count_rows<R: Copy>(
    cuts: &Cuts,
    rows: &[R],
    bare: impl Fn(R) -> bool,
    command: impl Fn(&Path, bool, R) -> Command,
) -> anyhow::Result<Vec<(R, f64)>> {
    // (bare, plugin) -> the one-frame count; without the plugin the
    // sidecar is not read, so both kinds of cut share one
    let mut start: Vec<((bool, bool), u64)> = Vec::new();
    let began = Instant::now();
    let mut runs = 0;
    let mut ratios = Vec::new();
    for &r in rows {
        let is_bare = bare(r);
        let mut whole = [0.0; 2];
        for plugin in [false, true] {
            let key = (is_bare && plugin, plugin);
            let (one, many) = if key.0 {
                (&cuts.bare_one, &cuts.bare_many)
            } else {
                (&cuts.one, &cuts.many)
            };
            let first = match start.iter().find(|(k, _)| *k == key) {
                Some(&(_, n)) => n,
                None => {
                    let n = instructions::count(&mut command(one, plugin, r))?;
                    runs += 1;
                    start.push((key, n));
                    n
                }
            };
            let counted = instructions::count(&mut command(many, plugin, r))?;
            runs += 1;
            whole[usize::from(plugin)] =
                instructions::whole(first, counted, cuts.frames, cuts.whole);
        }
        ratios.push((r, whole[1] / whole[0].max(1.0)));
    }
    println!(
        "(instructions: {runs} runs under cachegrind, {:.0} s)",
        began.elapsed().as_secs_f64()
    );
    Ok(ratios)
}

/// The chroots' tsharks the plugin also runs in (`scripts/wireshark-chroots`:
/// Debian 13's 4.4, Debian sid's 4.6), with the headers
/// `scripts/wireshark-headers` unpacks beside each for the native plugin.
const RELEASE_SUITES: &[&str] = &["trixie", "sid"];

/// One later release: its chroot, the native plugin built against its
/// headers in a HOME's personal plugin folder, a HOME without, and the
/// Lua script where the chroot sees it. Its runs run in the chroot as the
/// normal user, their baselines too (4.4 and later load no personal
/// plugins for root).
struct Release {
    version: String,
    root: PathBuf,
    home: PathBuf,
    plain_home: PathBuf,
    script: PathBuf,
    user: (u32, u32),
}

/// What is measured in each later release, with the plugin and without.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReleaseMode {
    /// A/A: that release's tshark alone on both sides (the noise).
    Noise,
    NativeSidecar,
    NativeFields,
    NativeExpert,
    NativeNoSidecar,
    LuaSidecar,
    LuaFields,
}

impl ReleaseMode {
    fn name(self, version: &str) -> String {
        let (plugin, command) = match self {
            ReleaseMode::Noise => {
                return format!(
                "{version}, A/A: tshark -n -r against itself (no plugin on either side: the noise)"
            )
            }
            ReleaseMode::NativeNoSidecar => {
                return format!("{version}, native plugin: tshark -n -r, no sidecar")
            }
            ReleaseMode::NativeSidecar => ("native plugin", "tshark -n -r"),
            ReleaseMode::NativeExpert => ("native plugin", "tshark -n -r -q -z expert"),
            ReleaseMode::NativeFields => {
                ("native plugin", "tshark -n -r -T fields -e frame.number")
            }
            ReleaseMode::LuaSidecar => ("Lua plugin", "tshark -n -r"),
            ReleaseMode::LuaFields => ("Lua plugin", "tshark -n -r -T fields -e frame.number"),
        };
        format!("{version}, {plugin}: {command}, with the sidecar")
    }

    fn native(self) -> bool {
        !matches!(
            self,
            ReleaseMode::LuaSidecar | ReleaseMode::LuaFields | ReleaseMode::Noise
        )
    }

    /// Whether it reads the copy with no sidecar anywhere.
    fn bare(self) -> bool {
        self == ReleaseMode::NativeNoSidecar
    }

    /// The issue's target for the ratio (as `Mode::target`).
    fn target(self) -> Bound {
        if self == ReleaseMode::Noise {
            Bound::Shown
        } else if self.bare() {
            Bound::AtMost(1.02)
        } else {
            Bound::AtMost(1.15)
        }
    }

    /// The options after `tshark -n -r CAPTURE`.
    fn options(self) -> &'static [&'static str] {
        match self {
            ReleaseMode::NativeFields | ReleaseMode::LuaFields => {
                &["-T", "fields", "-e", "frame.number"]
            }
            ReleaseMode::NativeExpert => &["-q", "-z", "expert"],
            ReleaseMode::Noise
            | ReleaseMode::NativeSidecar
            | ReleaseMode::NativeNoSidecar
            | ReleaseMode::LuaSidecar => &[],
        }
    }
}

/// Runs `program` in the chroot `root` as uid:gid, in a private mount
/// namespace that shows `work` (the captures, HOMEs and script) at the
/// same path, and `/proc` (the native plugin finds the sidecar there) and
/// `/dev`, as the tests do (crates/core/tests/integration/wireshark.rs).
/// With a valgrind (its tools' folder and launcher, `vl` and `vb`), those
/// are shown at `work/valgrind-lib` and `work/valgrind-bin` too. The
/// folder `work` is mounted on inside the chroot is made by [`releases`]
/// (and removed when the part ends), not here.
const IN_CHROOT: &str = r#"r=$1 w=$2 u=$3 vl=$4 vb=$5; shift 5
mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" && mount --bind "$w" "$r$w" || exit 125
if [ -n "$vl" ]; then mount --bind "$vl" "$r$w/valgrind-lib" && mount --bind "$vb" "$r$w/valgrind-bin" || exit 125; fi
exec chroot --userspec="$u" "$r" "$@""#;

impl Release {
    /// tshark in this release on `capture`, with one plugin or none.
    fn tshark(&self, work: &Path, capture: &Path, native: bool, plugin: bool) -> Command {
        self.tshark_under(None, work, capture, native, plugin)
    }

    /// The same, under cachegrind when given this machine's valgrind.
    fn tshark_under(
        &self,
        valgrind: Option<&instructions::Valgrind>,
        work: &Path,
        capture: &Path,
        native: bool,
        plugin: bool,
    ) -> Command {
        let home = if native && plugin {
            &self.home
        } else {
            &self.plain_home
        };
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(IN_CHROOT)
            .arg("sh")
            .arg(&self.root)
            .arg(work)
            .arg(format!("{}:{}", self.user.0, self.user.1));
        match valgrind {
            Some(v) => c.arg(&v.lib).arg(&v.launcher),
            None => c.args(["", ""]),
        };
        c.args(["env", "-u", "TCPSHUT_SIDECAR", "-u", "WIRESHARK_CONFIG_DIR"])
            .arg(format!("HOME={}", home.display()))
            .arg(format!(
                "XDG_CONFIG_HOME={}",
                home.join(".config").display()
            ));
        if valgrind.is_some() {
            c.arg(format!(
                "VALGRIND_LIB={}",
                work.join("valgrind-lib").display()
            ))
            .arg(work.join("valgrind-bin"))
            .args(instructions::CACHEGRIND);
        }
        c.args(["tshark", "-n", "-r"])
            .arg(capture)
            .stderr(Stdio::null());
        if plugin && !native {
            c.arg("-X")
                .arg(format!("lua_script:{}", self.script.display()));
        }
        c
    }
}

/// The plugins in the chroots' later releases (4.4, 4.6): the native
/// plugin's `-r`, `-T fields -e frame.number`, `-q -z expert` and `-r` on
/// the copy without a sidecar, the Lua plugin's first two, each against
/// that release's tshark alone, after checking that both
/// give the same packet list with its Info tags. `-T fields` is where 4.0
/// builds a shown tree and 4.2 and later one primed with the -e fields.
fn releases(
    setup: &Setup,
    work: &Path,
    reps: Reps,
    cpus: &[usize],
    cuts: Option<&Cuts>,
    targets: &mut Targets,
    left: &mut Leftovers,
) -> anyhow::Result<()> {
    let base = std::env::var_os("TCPSHUT_CHROOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/tcpshut/chroots"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("\nThe later releases (chroots) are not measured: running tshark in a chroot needs root");
        return Ok(());
    }
    let user = user_ids(NATIVE_USER)
        .with_context(|| format!("no user {NATIVE_USER} (scripts/install-deps makes it)"))?;
    // the chroot sees `work` at the same path: both must be absolute
    let work = &work.canonicalize()?;
    let capture = &setup.annotated.canonicalize()?;
    let bare = &setup.bare.canonicalize()?;
    let script = work.join("tcpshut.lua");
    std::fs::copy(&setup.script, &script)?;
    // valgrind's tools and launcher are shown inside the chroots there
    if cuts.is_some() {
        std::fs::create_dir_all(work.join("valgrind-lib"))?;
        std::fs::write(work.join("valgrind-bin"), "")?;
    }
    for suite in RELEASE_SUITES {
        let root = base.join(suite);
        let headers = base.join(format!("{suite}.headers"));
        if !root.join("usr/bin/tshark").is_file() || !headers.join("VERSION").is_file() {
            println!(
                "\n{suite}: no chroot with tshark and headers under {} (scripts/wireshark-chroots, \
                 scripts/wireshark-headers): not measured",
                base.display()
            );
            continue;
        }
        // the mount point of `work` inside the chroot (IN_CHROOT), removed
        // when the part ends
        left.make_folders(&root.join(work.strip_prefix("/")?))?;
        let release = release_setup(work, suite, &root, &headers, &script, user)?;
        check_release(&release, work, capture)?;
        let modes = [
            ReleaseMode::Noise,
            ReleaseMode::NativeSidecar,
            ReleaseMode::NativeFields,
            ReleaseMode::NativeExpert,
            ReleaseMode::NativeNoSidecar,
            ReleaseMode::LuaSidecar,
            ReleaseMode::LuaFields,
        ];
        let counted: Vec<ReleaseMode> = modes.into_iter().filter(|m| m.native()).collect();
        let instructions = match cuts {
            Some(cuts) => count_rows(
                cuts,
                &counted,
                ReleaseMode::bare,
                |capture, plugin, mode| {
                    let mut c =
                        release.tshark_under(Some(&cuts.valgrind), work, capture, true, plugin);
                    c.args(mode.options());
                    c
                },
            )?,
            None => Vec::new(),
        };
        header(&format!("Wireshark {} (chroot {suite})", release.version));
        let mut floor = None;
        for mode in modes {
            let file = if mode.bare() { bare } else { capture };
            let command = |plugin: bool| {
                // A/A: the native rows' baseline on both sides
                let (native, plugin) = match mode {
                    ReleaseMode::Noise => (true, false),
                    _ => (mode.native(), plugin),
                };
                let mut c = release.tshark(work, file, native, plugin);
                c.args(mode.options());
                Ok(c)
            };
            let pairs = if mode.native() || mode == ReleaseMode::Noise {
                reps.native
            } else {
                reps.tool
            };
            let (without, with) = paired::together(pairs, cpus, command)?;
            let counted = instructions
                .iter()
                .find(|(m, _)| *m == mode)
                .map(|(_, ratio)| *ratio);
            let spread = row(
                &mode.name(&release.version),
                &without,
                &with,
                counted,
                floor,
                mode.target(),
                targets,
            );
            if mode == ReleaseMode::Noise {
                floor = spread;
            }
        }
    }
    Ok(())
}

/// Builds the native plugin against `headers` (as the tests do) and makes
/// the release's two HOMEs in `work`, owned by `user`.
fn release_setup(
    work: &Path,
    suite: &str,
    root: &Path,
    headers: &Path,
    script: &Path,
    user: (u32, u32),
) -> anyhow::Result<Release> {
    let full = std::fs::read_to_string(headers.join("VERSION"))?;
    let full = full
        .trim()
        .split('-')
        .next()
        .unwrap_or_default()
        .to_string();
    let glib = Command::new("pkg-config")
        .args(["--cflags", "glib-2.0"])
        .output()
        .context("pkg-config (scripts/install-deps installs it)")?;
    let release = [
        format!("WS_VERSION={full}"),
        format!(
            "WS_CFLAGS=-I{} {}",
            headers.join("usr/include/wireshark").display(),
            String::from_utf8_lossy(&glib.stdout).trim()
        ),
        "WS_LIBS=".to_string(),
    ];
    let so = make_native(&work.join(format!("native-build-{suite}")), &release)?;
    let version = so
        .parent()
        .and_then(Path::file_name)
        .context("plugin folder")?
        .to_string_lossy()
        .into_owned();
    let home = work.join(format!("native-home-{suite}"));
    let plain_home = work.join(format!("plain-home-{suite}"));
    let epan = home
        .join(".local/lib/wireshark/plugins")
        .join(&version)
        .join("epan");
    std::fs::create_dir_all(&epan)?;
    std::fs::copy(&so, epan.join("tcpshut.so"))?;
    for h in [&home, &plain_home] {
        std::fs::create_dir_all(h.join(".config/wireshark"))?;
        chown_tree(h, user.0, user.1)?;
    }
    Ok(Release {
        version,
        root: root.to_path_buf(),
        home,
        plain_home,
        script: script.to_path_buf(),
        user,
    })
}

/// Both plugins annotate in this release before it is measured: the same
/// packet list, with Info tags on it.
fn check_release(release: &Release, work: &Path, capture: &Path) -> anyhow::Result<()> {
    let list = |native: bool| -> anyhow::Result<Vec<u8>> {
        let out = release
            .tshark(work, capture, native, true)
            .stderr(Stdio::piped())
            .output()?;
        if !out.status.success() {
            bail!(
                "Wireshark {}: tshark with the {} plugin failed: {}",
                release.version,
                if native { "native" } else { "Lua" },
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    };
    let (lua, native) = (list(false)?, list(true)?);
    let tagged = String::from_utf8_lossy(&native)
        .lines()
        .filter(|l| l.ends_with(']') && l.contains(" ["))
        .count();
    if lua != native || tagged == 0 {
        bail!(
            "Wireshark {}: the native plugin's packet list differs from the Lua plugin's, or has \
             no Info tags ({tagged}); nothing measured",
            release.version
        );
    }
    println!(
        "Wireshark {}: the native and the Lua plugin give the same packet list, {tagged} frames tagged",
        release.version
    );
    Ok(())
}

/// What is measured, with the plugin and without.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A/A: `tshark -n -r` on the capture, without the plugin, on both
    /// sides (as the native rows' baseline runs it when built): the noise.
    Noise,
    /// `tshark -n -r` on the capture with its sidecar beside it.
    Sidecar,
    /// The same with `-T fields -e frame.number` (a tree is built).
    Fields,
    /// The same with `-q -z expert` (the expert tap).
    Expert,
    /// `tshark -n -r` on the capture with no sidecar anywhere.
    NoSidecar,
    /// Wireshark opening the capture with its sidecar, until idle.
    Gui,
    /// `tshark -n -r` with a Lua post-dissector that does nothing.
    Floor,
    /// `tshark -n -r` without the plugin on the commented pcapng copy.
    Comments,
    /// The same as Sidecar, Fields, Expert, NoSidecar and Gui with the
    /// native plugin (`wireshark/native`) instead of the Lua one.
    NativeSidecar,
    NativeFields,
    NativeExpert,
    NativeNoSidecar,
    NativeGui,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Noise => "A/A: tshark -n -r against itself (no plugin on either side: the noise)",
            Mode::Sidecar => "tshark -n -r, with the sidecar",
            Mode::Fields => "tshark -n -r -T fields -e frame.number, with the sidecar",
            Mode::Expert => "tshark -n -r -q -z expert, with the sidecar",
            Mode::NoSidecar => "tshark -n -r, no sidecar",
            Mode::Gui => "Wireshark opens the capture and goes idle, with the sidecar",
            Mode::Floor => "tshark -n -r, an empty Lua post-dissector instead (the floor)",
            Mode::Comments => "tshark -n -r, no plugin, the --pcapng copy (summaries as comments)",
            Mode::NativeSidecar => "native plugin: tshark -n -r, with the sidecar",
            Mode::NativeFields => {
                "native plugin: tshark -n -r -T fields -e frame.number, with the sidecar"
            }
            Mode::NativeExpert => "native plugin: tshark -n -r -q -z expert, with the sidecar",
            Mode::NativeNoSidecar => "native plugin: tshark -n -r, no sidecar",
            Mode::NativeGui => {
                "native plugin: Wireshark opens the capture and goes idle, with the sidecar"
            }
        }
    }

    /// The issue's target for the ratio of CPU times (none for the figures
    /// shown beside them).
    fn target(self) -> Bound {
        match self {
            Mode::Sidecar | Mode::Fields | Mode::Expert => Bound::AtMost(1.15),
            Mode::NativeSidecar | Mode::NativeFields | Mode::NativeExpert => Bound::AtMost(1.15),
            Mode::NoSidecar | Mode::NativeNoSidecar => Bound::AtMost(1.02),
            Mode::Gui | Mode::NativeGui => Bound::AtMost(1.3),
            Mode::Noise | Mode::Floor | Mode::Comments => Bound::Shown,
        }
    }

    /// The options after `tshark -n -r CAPTURE` (the Lua and the native
    /// rows alike).
    fn options(self) -> &'static [&'static str] {
        match self {
            Mode::Fields | Mode::NativeFields => &["-T", "fields", "-e", "frame.number"],
            Mode::Expert | Mode::NativeExpert => &["-q", "-z", "expert"],
            _ => &[],
        }
    }

    /// Whether it reads the copy with no sidecar anywhere.
    fn bare(self) -> bool {
        matches!(self, Mode::NoSidecar | Mode::NativeNoSidecar)
    }

    /// The native plugin's tshark rows: their targets are within reach,
    /// so they get `--plugin-reps` pairs and an instruction count.
    fn native_tshark(self) -> bool {
        matches!(
            self,
            Mode::NativeSidecar | Mode::NativeFields | Mode::NativeExpert | Mode::NativeNoSidecar
        )
    }

    /// The command of one tshark run, with (the plugin; for Floor the
    /// empty post-dissector, for Comments the commented copy) or without
    /// (tshark alone on the capture). Not for the GUI rows (`gui_run`).
    fn command(self, setup: &Setup, plugin: bool) -> Command {
        let capture = if self.bare() {
            &setup.bare
        } else {
            &setup.annotated
        };
        match self {
            Mode::Noise if setup.native.is_some() => setup.native_tshark(capture, false),
            Mode::Noise => setup.tshark(capture, false),
            Mode::Floor => {
                setup.tshark_with(&setup.annotated, plugin.then_some(&setup.empty_script))
            }
            Mode::Comments => {
                let capture = if plugin {
                    &setup.commented
                } else {
                    &setup.annotated
                };
                setup.tshark(capture, false)
            }
            _ if self.native_tshark() => {
                let mut c = setup.native_tshark(capture, plugin);
                c.args(self.options());
                c
            }
            _ => {
                let mut c = setup.tshark(capture, plugin);
                c.args(self.options());
                c
            }
        }
    }
}

/// Checks that the plugin annotates the capture before its cost is
/// measured, as the GUI runs show it: tshark with the `tcpshut` profile
/// (`-C`, the profile the GUI runs use) prints the profile's columns, and
/// every frame whose row has a FIN, RST or data-after-close event has its
/// Info tag (no other frame has one), and every frame whose row has a
/// summary shows it in the Shutdown column (no other frame shows one).
fn check_annotations(setup: &Setup) -> anyhow::Result<()> {
    let mut sidecar = setup.annotated.clone().into_os_string();
    sidecar.push(".tcpshut.csv");
    let text = std::fs::read_to_string(&sidecar)
        .with_context(|| format!("{}", Path::new(&sidecar).display()))?;
    let codes = tag_codes(&std::fs::read_to_string(&setup.script)?)?;
    let rows = sidecar_rows(&text)?;
    // the frames whose events give an Info tag, and the summaries shown
    let expected: Vec<u64> = rows
        .iter()
        .filter(|r| r.events.split(';').any(|c| codes.iter().any(|t| t == c)))
        .map(|r| r.frame)
        .collect();
    let summaries: Vec<(u64, String)> = rows
        .into_iter()
        .filter(|r| !r.summary.is_empty())
        .map(|r| (r.frame, r.summary))
        .collect();
    let out = setup
        .tshark(&setup.annotated, true)
        .args(["-C", PROFILE, "-T", "tabs"])
        .stderr(Stdio::piped())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("Lua") {
        bail!("tshark with the plugin and the {PROFILE} profile failed: {stderr}");
    }
    let (mut tagged, mut shown) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // the profile's last two columns: Info, then Shutdown
        let columns: Vec<&str> = line.split('\t').collect();
        let (Some(frame), [.., info, shutdown]) = (
            columns.first().and_then(|f| f.trim().parse::<u64>().ok()),
            columns.as_slice(),
        ) else {
            bail!("tshark -C {PROFILE}: not a packet line with Info and Shutdown: {line:?}");
        };
        if has_info_tag(info) {
            tagged.push(frame);
        }
        if !shutdown.is_empty() {
            shown.push((frame, shutdown.to_string()));
        }
    }
    if tagged != expected {
        let missing = expected.iter().filter(|f| !tagged.contains(f)).count();
        bail!(
            "the plugin did not annotate the capture: {} frames should carry an Info tag, {} do \
             ({missing} missing); nothing measured",
            expected.len(),
            tagged.len()
        );
    }
    if shown != summaries {
        let wrong = summaries.iter().filter(|s| !shown.contains(s)).count();
        bail!(
            "the {PROFILE} profile's Shutdown column: {} frames should show their summary, \
             {} show one ({wrong} missing or different); nothing measured",
            summaries.len(),
            shown.len()
        );
    }
    println!(
        "Checked first, in tshark with the {PROFILE} profile: the {} frames with FIN, RST or \
         data-after-close events carry their Info tag, the {} with a summary show it in the \
         Shutdown column.",
        expected.len(),
        summaries.len()
    );
    Ok(())
}

/// Checks that the `--pcapng` copy carries the annotations before tshark
/// is timed on it: the frames with a packet comment are those whose
/// sidecar row has a summary.
fn check_comments(setup: &Setup) -> anyhow::Result<()> {
    let mut sidecar = setup.annotated.clone().into_os_string();
    sidecar.push(".tcpshut.csv");
    let text = std::fs::read_to_string(&sidecar)
        .with_context(|| format!("{}", Path::new(&sidecar).display()))?;
    let expected: Vec<u64> = sidecar_rows(&text)?
        .iter()
        .filter(|r| !r.summary.is_empty())
        .map(|r| r.frame)
        .collect();
    let out = setup
        .tshark(&setup.commented, false)
        .args(["-Y", "frame.comment", "-T", "fields", "-e", "frame.number"])
        .output()?;
    let commented: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if !out.status.success() || commented != expected {
        bail!(
            "{}: {} frames should carry a packet comment, {} do; nothing measured",
            setup.commented.display(),
            expected.len(),
            commented.len()
        );
    }
    println!(
        "Checked: the {} frames whose row has a summary carry it as a packet comment in the --pcapng copy.",
        expected.len()
    );
    Ok(())
}

/// A sidecar row's frame, events and summary.
struct Row {
    frame: u64,
    events: String,
    summary: String,
}

/// The sidecar's rows, read by the header's column names.
fn sidecar_rows(sidecar: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = csv::Reader::from_reader(sidecar.as_bytes());
    let headers = rows.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("the sidecar has no column {name}"))
    };
    let (frame, events, summary) = (column("frame")?, column("events")?, column("summary")?);
    rows.records()
        .map(|row| {
            let row = row?;
            Ok(Row {
                frame: row[frame].parse()?,
                events: row[events].to_string(),
                summary: row[summary].to_string(),
            })
        })
        .collect()
}

/// The codes of the plugin's tag tables (`local FIN_CODES = { ["fin-active"]
/// = "FIN", ... }`), read from the script itself so the check follows it.
fn tag_codes(script: &str) -> anyhow::Result<Vec<String>> {
    let mut codes = Vec::new();
    for table in TAG_TABLES {
        let start = script
            .find(&format!("local {table} = {{"))
            .with_context(|| format!("lua/tcpshut.lua has no table {table}"))?;
        let body = &script[start..];
        let body = &body[..body.find('}').context("unclosed table")?];
        for part in body.split("[\"").skip(1) {
            if let Some(end) = part.find("\"]") {
                codes.push(part[..end].to_string());
            }
        }
    }
    if codes.is_empty() {
        bail!("lua/tcpshut.lua: no tag codes found");
    }
    Ok(codes)
}

/// Whether a line of `tshark -r` ends with the plugin's Info tag: a last
/// bracket that starts with one of the tag's heads.
fn has_info_tag(line: &str) -> bool {
    let Some(at) = line.rfind(" [") else {
        return false;
    };
    let tag = &line[at + 2..];
    tag.ends_with(']')
        && ["FIN ", "RST ", "data-", "port-reuse"]
            .iter()
            .any(|head| tag.starts_with(head))
}

/// Wireshark (Qt) opening `capture` on a private Xvfb display, until it
/// goes idle: its CPU time (from /proc, sampled every 100 ms) once it has
/// not grown for 2 s, and the wall time to that point. The plugin is given
/// with `-X lua_script:`, the sidecar is found beside the capture.
fn gui_run(setup: &Setup, plugin: bool, native: bool) -> anyhow::Result<Run> {
    // Xvfb picks a free display and writes its number on the descriptor given.
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xvfb")?;
    let display = {
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().unwrap()).read_line(&mut line)?;
        line.trim().to_string()
    };
    let result = (|| {
        if display.is_empty() {
            bail!("Xvfb gave no display number");
        }
        // no dialogs: not the warning about running as root, no update check
        std::fs::write(
            setup.home.join(".config/wireshark/recent_common"),
            "privs.warn_if_elevated: FALSE\n",
        )?;
        let mut cmd = if native {
            setup.native_command(&["wireshark"], plugin)
        } else {
            setup.command("wireshark")
        };
        cmd.env("DISPLAY", format!(":{display}"))
            .args(["-o", "gui.update.enabled:FALSE", "-r"])
            .arg(&setup.annotated);
        if native {
            if plugin {
                // the profile's Shutdown column and colouring rules, as above
                cmd.args(["-C", PROFILE]);
            }
        } else if plugin {
            // as `tcpshut wireshark open` runs it: the profile's Shutdown
            // column and colouring rules, which tshark showed filled above
            cmd.args(["-C", PROFILE, "-X"])
                .arg(format!("lua_script:{}", setup.script.display()));
        }
        let start = Instant::now();
        let mut ws = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting wireshark")?;
        let stat = format!("/proc/{}/stat", ws.id());
        let (mut last, mut since) = (Duration::ZERO, Instant::now());
        let idle = loop {
            std::thread::sleep(Duration::from_millis(100));
            let Some(cpu) = cpu_time(&stat) else {
                bail!("wireshark ended before going idle ({:?})", ws.try_wait());
            };
            if cpu > last + Duration::from_millis(10) {
                (last, since) = (cpu, Instant::now());
            } else if since.elapsed() >= Duration::from_secs(2) {
                break Run {
                    wall: since - start,
                    cpu: last,
                    system: None,
                    max_rss: 0,
                };
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("wireshark did not go idle in 10 minutes");
            }
        };
        let _ = ws.kill();
        let _ = ws.wait();
        Ok(idle)
    })();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    result
}

/// Builds the native plugin (`make -C wireshark/native`) into `work` and
/// makes its two HOMEs there: with the plugin and the `tcpshut` profile
/// (copied from `profile_home`), and without either.
fn native_setup(work: &Path, profile_home: &Path) -> anyhow::Result<Native> {
    let so = make_native(&work.join("native-build"), &[])?;
    let version = so
        .parent()
        .and_then(Path::file_name)
        .context("plugin folder")?;
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        Some(user_ids(NATIVE_USER).with_context(|| {
            format!("running as root, and no user {NATIVE_USER} to run Wireshark as (scripts/install-deps makes it)")
        })?)
    } else {
        None
    };
    let home = work.join("native-home");
    let plain_home = work.join("native-plain-home");
    let epan = home
        .join(".local/lib/wireshark/plugins")
        .join(version)
        .join("epan");
    std::fs::create_dir_all(&epan)?;
    std::fs::copy(&so, epan.join("tcpshut.so"))?;
    let profiles = home.join(".config/wireshark/profiles");
    std::fs::create_dir_all(profiles.join(PROFILE))?;
    let from = profile_home
        .join(".config/wireshark/profiles")
        .join(PROFILE);
    for entry in std::fs::read_dir(&from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), profiles.join(PROFILE).join(entry.file_name()))?;
    }
    std::fs::create_dir_all(plain_home.join(".config/wireshark"))?;
    for h in [&home, &plain_home] {
        std::fs::write(
            h.join(".config/wireshark/recent_common"),
            "privs.warn_if_elevated: FALSE\n",
        )?;
        if let Some((uid, gid)) = user {
            chown_tree(h, uid, gid)?;
        }
    }
    Ok(Native {
        home,
        plain_home,
        user,
    })
}

/// `make -C wireshark/native` into `out_dir`, with `vars` (another
/// release's headers), and the path of the plugin it built.
fn make_native(out_dir: &Path, vars: &[String]) -> anyhow::Result<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wireshark/native");
    let make = |target: &str| -> anyhow::Result<String> {
        let out = Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&source)
            .arg(format!("OUT={}", out_dir.display()))
            .args(vars)
            .arg(target)
            .output()
            .context("make (scripts/install-deps installs it)")?;
        if !out.status.success() {
            bail!(
                "make -C wireshark/native failed (libwireshark-dev missing?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    make("all")?;
    Ok(PathBuf::from(make("print-so")?))
}

/// Gives a folder and everything in it to uid:gid.
fn chown_tree(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// A user's uid and gid, from /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The native plugin really annotates: its Info tags on the packet list
/// are the Lua plugin's, line for line (a plugin that loaded nothing, or
/// the capture unreadable by the user it runs as, would give none).
fn check_native(setup: &Setup) -> anyhow::Result<()> {
    let lua = setup.tshark(&setup.annotated, true).output()?;
    let native = setup
        .native_tshark(&setup.annotated, true)
        .stderr(Stdio::piped())
        .output()?;
    if !native.status.success() {
        bail!(
            "tshark with the native plugin failed: {}",
            String::from_utf8_lossy(&native.stderr)
        );
    }
    let tagged = |out: &[u8]| -> usize {
        String::from_utf8_lossy(out)
            .lines()
            .filter(|l| l.ends_with(']') && l.contains(" ["))
            .count()
    };
    if lua.stdout != native.stdout || tagged(&native.stdout) == 0 {
        bail!(
            "the native plugin's packet list differs from the Lua plugin's ({} tagged lines against {})",
            tagged(&native.stdout),
            tagged(&lua.stdout)
        );
    }
    println!(
        "native plugin (`wireshark/native`): the same packet list as the Lua plugin, {} frames tagged",
        tagged(&native.stdout)
    );
    Ok(())
}

/// User plus system CPU time of a process, from its /proc/PID/stat.
fn cpu_time(stat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(stat).ok()?;
    // fields after the command name (which is in parentheses): state is
    // the 3rd field, utime the 14th, stime the 15th
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
