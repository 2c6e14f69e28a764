//! `tcpshut wireshark install` and `--native` (issue #13), as the normal test
//! user in the host's Wireshark (Debian's 4.0 loads no personal C plugins
//! for root): it builds the plugin from the source in the binary and
//! installs it where tshark loads it, beside the Lua plugin; it refuses
//! folders another user could write, creating nothing; and without a
//! compiler it says so once and installs the Lua plugin alone (exit 4
//! with `--native`, 0 without).

use super::native::{personal_epan, same_output_as, Mode, Plugin, INSTALLED_HOME};
use super::{printed_paths, test_user, Sandbox, Wireshark, TEST_USER};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// `tcpshut wireshark install ARGS` as the test user, with `home` as HOME
/// (its configuration in `home/cfg`), [`temp_folder`] as TMPDIR, and
/// `path` as PATH if given.
fn install_command(sb: &Sandbox, home: &Path, path: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = sb.tcpshut_command(Some(TEST_USER));
    cmd.args(["wireshark", "install"])
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .env("TMPDIR", temp_folder(sb))
        .env_remove("CC");
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd
}

/// [`install_command`] with `--native` first.
fn install_native_command(
    sb: &Sandbox,
    home: &Path,
    path: Option<&Path>,
    args: &[&str],
) -> Command {
    let mut cmd = install_command(sb, home, path, &["--native"]);
    cmd.args(args);
    cmd
}

/// [`install_native_command`], run to its end.
fn install_native(sb: &Sandbox, home: &Path, path: Option<&Path>, args: &[&str]) -> Output {
    install_native_command(sb, home, path, args)
        .output()
        .expect("tcpshut runs")
}

/// The temporary folder the command builds in (its TMPDIR), owned by the
/// test user: it must be empty once the command is done.
fn temp_folder(sb: &Sandbox) -> PathBuf {
    let tmp = sb.path("tmp");
    if !tmp.exists() {
        user_folder(&tmp);
    }
    tmp
}

/// A folder in the sandbox owned by the test user.
fn user_folder(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    if let Some((uid, gid)) = test_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Everything below `dir` (folders included), sorted.
fn everything_below(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .collect();
    all.sort();
    all
}

/// Fails when anything is below `dir` (`what` says when).
fn assert_nothing_below(dir: &Path, what: &str) {
    let left = everything_below(dir);
    assert!(left.is_empty(), "{what}: left behind: {left:?}");
}

/// The tcpshut plugins `tshark -G plugins` lists with `home` as HOME (the
/// files it loaded them from), sorted.
fn loaded_plugins(sb: &Sandbox, home: &Path) -> Vec<PathBuf> {
    let out = sb
        .tshark()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .args(["-G", "plugins"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let mut files: Vec<PathBuf> = listed
        .lines()
        .filter(|l| l.starts_with("tcpshut."))
        .filter_map(|l| l.rsplit('\t').next())
        .map(|path| PathBuf::from(path.trim()))
        .collect();
    files.sort();
    files
}

/// Plain `install` (no option) builds and installs the native plugin
/// where the user's tshark loads it (`tshark -G plugins` lists it there),
/// with the Lua plugin and the profile: the same files `--native --print`
/// names. Which one annotates: with the Lua script moved
/// away (`-G plugins` lists the .so alone), that tshark shows a test
/// capture exactly as the Lua plugin alone does; with both as installed,
/// the same again, so the Lua script adds nothing of its own.
#[test]
fn install_builds_the_native_plugin_by_default_that_tshark_loads_and_that_annotates() {
    let sb = Sandbox::new(Wireshark::V4_0);
    let home = sb.path(INSTALLED_HOME);
    user_folder(&home);
    let print = install_native(&sb, &home, None, &["--print"]);
    assert_eq!(
        print.status.code(),
        Some(0),
        "--print: {}",
        String::from_utf8_lossy(&print.stderr)
    );
    assert!(everything_below(&home).is_empty(), "--print wrote");

    let out = install_command(&sb, &home, None, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(out.stdout, print.stdout, "--print said other paths");
    let so = personal_epan(&home).join("tcpshut.so");
    let written = printed_paths(&out);
    assert_eq!(written.len(), 4, "{written:?}");
    assert_eq!(written[0], so);
    assert!(written.iter().all(|p| p.is_file()), "{written:?}");
    assert!(
        written[1].ends_with(".local/lib/wireshark/plugins/tcpshut.lua"),
        "{written:?}"
    );
    let epan = so.parent().unwrap();
    assert_eq!(
        everything_below(epan),
        std::slice::from_ref(&so),
        "a temporary file left behind"
    );
    let lua = &written[1];
    assert_eq!(
        loaded_plugins(&sb, &home),
        [so.clone(), lua.clone()],
        "tshark -G plugins"
    );

    // Which plugin does the work: the installed native plugin alone (the
    // Lua script moved out of the plugins folder, so tshark lists only the
    // .so) shows a test capture exactly as the Lua plugin alone does.
    let cap = sb.annotated_testdata("close-unread.pcap");
    let aside = sb.path("tcpshut.lua.aside");
    std::fs::rename(lua, &aside).unwrap();
    assert_eq!(
        loaded_plugins(&sb, &home),
        std::slice::from_ref(&so),
        "tshark -G plugins"
    );
    same_output_as(
        &sb,
        Plugin::Installed,
        "the native plugin alone",
        &cap,
        &[],
        &[Mode::Fields],
    );
    // Both, as installed: the same again, so the Lua script annotated
    // nothing more (fields would show twice, expert items count double).
    std::fs::rename(&aside, lua).unwrap();
    same_output_as(
        &sb,
        Plugin::Installed,
        "both plugins",
        &cap,
        &[],
        &[Mode::Fields],
    );
    assert_nothing_below(&temp_folder(&sb), "the build folder");
}

/// A folder in the sandbox with links to `tools` (found on this PATH), to
/// give the command as its PATH; setpriv too, since the command runs as
/// the test user through it.
fn tools_folder(sb: &Sandbox, name: &str, tools: &[&str]) -> PathBuf {
    let bin = sb.path(name);
    std::fs::create_dir(&bin).unwrap();
    for tool in tools.iter().chain(&["setpriv"]) {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is not installed (scripts/install-deps)"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    bin
}

/// Starts `cmd` with its output discarded.
fn spawn_quietly(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the command runs")
}

/// What `found` finds, asked every 5 ms while `child` runs: fails when
/// `child` ends first (saying `ended`) or after a minute (`never`).
fn while_running<T>(
    child: &mut Child,
    ended: &str,
    never: &str,
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = found() {
            return found;
        }
        assert!(child.try_wait().unwrap().is_none(), "{ended}");
        assert!(start.elapsed().as_secs() < 60, "{never}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `kill ARGS` (a signal, then whom), which must succeed.
fn kill(args: &[&str]) {
    let status = Command::new("kill").args(args).status().unwrap();
    assert!(status.success(), "kill {args:?}");
}

/// Whether the process `pid` still runs (exists and is not a zombie).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, f)| f.split_whitespace().next());
        !matches!(state, Some("Z" | "X" | "x"))
    })
}

/// Processes a test started indirectly, ended (SIGKILL) when it ends,
/// whether it passed or not.
struct EndOnDrop(Vec<u32>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if runs(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// SIGTERM to tcpshut alone (`kill PID`, as a service manager or a user
/// sends it, not to its process group) while the plugin is being built:
/// make and what it runs are in a process group of their own, which
/// tcpshut ends and waits for, then it removes the build folder and ends
/// by SIGTERM (shells say 143). The build is a stand-in `make` on PATH
/// that never ends and runs a child, as make runs cc; both note their pids.
#[test]
fn install_native_ends_its_build_on_a_sigterm_to_itself_alone() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let bin = tools_folder(&sb, "bin-slow-make", &["cc", "pkg-config", "tshark"]);
    let pids = sb.path("build-pids");
    let make = bin.join("make");
    std::fs::write(
        &make,
        format!(
            "#!/bin/sh\nPATH=/usr/bin:/bin\nsleep 3600 &\necho \"$$ $!\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\nwait\n",
            pids.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&make, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = sb.home();
    let tmp = temp_folder(&sb);
    let mut child = spawn_quietly(&mut install_native_command(&sb, &home, Some(&bin), &[]));
    let build: Vec<u32> = while_running(
        &mut child,
        "the command ended before its build started",
        "the build never started",
        || {
            let text = std::fs::read_to_string(&pids).ok()?;
            Some(
                text.split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect(),
            )
        },
    );
    assert_eq!(build.len(), 2, "{build:?}");
    let _build = EndOnDrop(build.clone());
    assert!(build.iter().all(|&pid| runs(pid)), "{build:?}");
    assert_eq!(
        everything_below(&tmp).len(),
        3,
        "the build folder, its source and Makefile"
    );
    // tcpshut alone (under root, setpriv execs it: same pid)
    kill(&["-TERM", &child.id().to_string()]);
    let ended = child.wait().unwrap();
    assert_eq!(ended.signal(), Some(15), "{ended:?}");
    for pid in build {
        assert!(!runs(pid), "build process {pid} outlived tcpshut");
    }
    assert_nothing_below(&tmp, "SIGTERM");
    assert!(!personal_epan(&home).join("tcpshut.so").exists());
}

/// Ctrl-C (SIGINT to the process group, as a terminal sends it) while
/// the plugin is being built: the real build (make and cc, in a group of
/// their own that the SIGINT does not reach) is ended by tcpshut, and the
/// private build folder (`$TMPDIR/tcpshut-native-XXXXXX`, mode 0700) is
/// gone when tcpshut ends; no plugin is installed.
#[test]
fn install_native_removes_its_build_folder_on_a_signal() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let home = sb.home();
    let tmp = temp_folder(&sb);
    let mut command = install_native_command(&sb, &home, None, &[]);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = spawn_quietly(&mut command);
    let source = while_running(
        &mut child,
        "the command ended before its build folder was seen",
        &format!("no build folder in {}", tmp.display()),
        || {
            everything_below(&tmp)
                .into_iter()
                .find(|p| p.ends_with("tcpshut.c"))
        },
    );
    let folder = source.parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", folder.display());
    // tcpshut leads the group (under root, setpriv execs it: same pid)
    kill(&["-INT", "--", &format!("-{}", child.id())]);
    let ended = child.wait().unwrap();
    assert!(!ended.success(), "the command finished before the signal");
    // make and cc, in a group of their own that the terminal's SIGINT
    // does not reach, were ended by tcpshut before it removed the folder
    assert_nothing_below(&tmp, "SIGINT");
    assert!(!personal_epan(&home).join("tcpshut.so").exists());
}

/// A signal (SIGTERM to tcpshut alone) while `install` makes the folders
/// of a fresh HOME: the install is all or nothing, so the folders it made
/// go with its temporary files, and HOME is as empty as before. strace
/// holds each `mkdir` for 0.3 s (`delay_exit`) so that the signal comes
/// while the folders are being made; tcpshut ends by SIGTERM.
#[test]
fn install_interrupted_by_a_signal_leaves_no_folder_it_made() {
    use std::os::unix::process::ExitStatusExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    crate::util::require_tool("strace", "the test that interrupts install");
    let home = sb.home();
    assert!(everything_below(&home).is_empty());
    let install = install_command(&sb, &home, None, &["--lua"]);
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=mkdir,mkdirat"])
        .args(["-e", "inject=mkdir,mkdirat:delay_exit=300000"])
        .arg(install.get_program())
        .args(install.get_args());
    for (name, value) in install.get_envs() {
        match value {
            Some(value) => traced.env(name, value),
            None => traced.env_remove(name),
        };
    }
    let mut strace = spawn_quietly(traced.current_dir(install.get_current_dir().unwrap_or(&home)));
    while_running(
        &mut strace,
        "install ended before it made a folder",
        "install made no folder",
        || home.join(".local").exists().then_some(()),
    );
    // tcpshut is strace's child (setpriv execs it: same pid)
    let pid = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id()))
        .unwrap()
        .trim()
        .to_string();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(comm.starts_with("tcpshut"), "{pid}: {comm}");
    kill(&["-TERM", &pid]);
    let ended = strace.wait().unwrap();
    assert_eq!(ended.signal(), Some(15), "{ended:?}");
    assert_nothing_below(&home, "install interrupted");
}

/// What install says of a folder of the user's own that another user can
/// write, or of one they own.
const NOT_PRIVATE: &str = "not owned by you or writable by others; nothing was installed \
                           (Wireshark runs plugins from below it)";
/// What it says of one above those (above `$HOME`, or the build's
/// temporary folder) that lets another user replace what is below it.
const NOT_SAFE_ABOVE: &str = "not owned by you or root, or writable by others; nothing was \
                              installed (another user could replace what tcpshut builds or \
                              installs below it)";

/// `tcpshut wireshark install ARGS` (with `--print`, then without) in
/// `home` refuses `folder` for `why`: exit 1, one line naming it, nothing
/// on standard output, and nothing made or changed below `home` (no
/// plugin, no profile, no folder) nor in the temporary folder.
fn refuses(sb: &Sandbox, home: &Path, args: &[&str], folder: &Path, why: &str) {
    refuses_with(sb, home, None, args, folder, why)
}

/// [`refuses`], with `config` as XDG_CONFIG_HOME when given.
fn refuses_with(
    sb: &Sandbox,
    home: &Path,
    config: Option<&Path>,
    args: &[&str],
    folder: &Path,
    why: &str,
) {
    let before = everything_below(home);
    for print in [true, false] {
        let mut cmd = install_command(sb, home, None, args);
        if let Some(config) = config {
            cmd.env("XDG_CONFIG_HOME", config);
        }
        if print {
            cmd.arg("--print");
        }
        let out = cmd.output().expect("tcpshut runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{args:?} print {print}: {}", folder.display());
        assert_eq!(out.status.code(), Some(1), "{what}: installed: {stderr}");
        assert_eq!(
            stderr,
            format!("tcpshut: {}: {why}\n", folder.display()),
            "{what}"
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            everything_below(home),
            before,
            "{what}: something was made below {}",
            home.display()
        );
        assert_nothing_below(&temp_folder(sb), &what);
    }
}

/// A folder `lodger` of the test user's in the sandbox's folder `name`,
/// which `owner` (another user's uid and gid) owns: the lodger's path,
/// and the owner's folder as install names it (resolved).
fn lodged(sb: &Sandbox, name: &str, lodger: &str, owner: (u32, u32)) -> (PathBuf, PathBuf) {
    let theirs = sb.path(name);
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(owner.0), Some(owner.1)).unwrap();
    let lodger = theirs.join(lodger);
    user_folder(&lodger);
    (lodger, std::fs::canonicalize(&theirs).unwrap())
}

/// `tcpshut wireshark install --lua` in `home`, which must succeed.
fn installs_lua(sb: &Sandbox, home: &Path) {
    let out = install_command(sb, home, None, &["--lua"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A group-writable `~/.local`, then a world-writable HOME, then a
/// temporary folder anyone can write: the command refuses (exit 1), says
/// which folder, and installs nothing, not even the Lua plugin, and
/// creates no folder.
#[test]
fn install_native_refuses_folders_others_can_write_and_creates_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let shared = sb.path("shared-home");
    let local = shared.join(".local");
    user_folder(&shared);
    user_folder(&local);
    for (open, mode) in [(&local, 0o775), (&shared, 0o757)] {
        for d in [&shared, &local] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(mode)).unwrap();
        refuses(&sb, &shared, &["--native"], open, NOT_PRIVATE);
    }
    // a temporary folder anyone can write (not sticky): the build folder
    // made there could be swapped for another user's, Makefile and all
    let home = sb.home();
    let tmp = temp_folder(&sb);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o777)).unwrap();
    let real = std::fs::canonicalize(&tmp).unwrap();
    refuses(&sb, &home, &["--native"], &real, NOT_SAFE_ABOVE);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `install --lua` (the Lua plugin alone) checks the same folders as
/// `--native`, through the same function: a plugins folder owned by
/// another user, then one others can write, then a group-writable
/// `~/.local`, then a HOME in a folder another user owns: it refuses
/// (exit 1, one line naming the folder), with and without `--print`, and
/// writes nothing, not even the profile.
#[test]
fn install_refuses_plugin_folders_of_other_users_and_creates_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let (other_uid, other_gid) = super::user_when_root("tcpshut-other")
        .expect("another user's folder needs root: run the tests as root");
    let home = sb.path("lua-home");
    let local = home.join(".local");
    let plugins = local.join("lib/wireshark/plugins");
    for dir in plugins.ancestors().take_while(|d| d.starts_with(&home)) {
        user_folder(dir);
    }
    let mode = |dir: &Path, mode: u32| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    std::os::unix::fs::chown(&plugins, Some(other_uid), Some(other_gid)).unwrap();
    refuses(&sb, &home, &["--lua"], &plugins, NOT_PRIVATE);
    user_folder(&plugins);
    mode(&plugins, 0o757);
    refuses(&sb, &home, &["--lua"], &plugins, NOT_PRIVATE);
    mode(&plugins, 0o755);
    mode(&local, 0o775);
    refuses(&sb, &home, &["--lua"], &local, NOT_PRIVATE);
    // a HOME in a folder another user owns, who could replace it
    let (lodger, real) = lodged(&sb, "theirs", "home", (other_uid, other_gid));
    refuses(&sb, &lodger, &["--lua"], &real, NOT_SAFE_ABOVE);
    // the same folders, the user's alone: installed
    mode(&local, 0o755);
    installs_lua(&sb, &home);
    assert!(plugins.join("tcpshut.lua").is_file());
}

/// What install says of a folder on the way to the profile that another
/// user owns or can write.
const PROFILE_NOT_PRIVATE: &str = "not owned by you or writable by others; nothing was \
                                   installed (Wireshark reads the tcpshut profile from below it)";

/// The profile's folders get the plugin folders' check, before anything
/// is written: a configuration folder (XDG_CONFIG_HOME) another user owns,
/// then one its group can write, then one that is a link into a folder
/// anyone can write (judged where it leads), then one outside HOME in a
/// folder another user owns: refused (exit 1, one line naming the folder,
/// with and without `--print`), and nothing written, not even the plugin.
#[test]
fn install_refuses_profile_folders_of_other_users_and_creates_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let (other_uid, other_gid) = super::user_when_root("tcpshut-other")
        .expect("another user's folder needs root: run the tests as root");
    let home = sb.path("profile-home");
    let cfg = home.join("cfg");
    user_folder(&home);
    user_folder(&cfg);
    std::os::unix::fs::chown(&cfg, Some(other_uid), Some(other_gid)).unwrap();
    refuses(&sb, &home, &["--lua"], &cfg, PROFILE_NOT_PRIVATE);
    user_folder(&cfg);
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o775)).unwrap();
    refuses(&sb, &home, &["--lua"], &cfg, PROFILE_NOT_PRIVATE);
    std::fs::remove_dir(&cfg).unwrap();
    let open = sb.path("open");
    user_folder(&open.join("cfg"));
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(open.join("cfg"), &cfg).unwrap();
    let real_open = std::fs::canonicalize(&open).unwrap();
    refuses(&sb, &home, &["--lua"], &real_open, NOT_SAFE_ABOVE);
    std::fs::remove_file(&cfg).unwrap();
    let (lodger, real) = lodged(&sb, "their-config", "cfg", (other_uid, other_gid));
    refuses_with(&sb, &home, Some(&lodger), &["--lua"], &real, NOT_SAFE_ABOVE);
    // the same, the user's alone: installed
    installs_lua(&sb, &home);
    assert!(cfg.join("wireshark/profiles/tcpshut/preferences").is_file());
}

/// `--native` whose profile cannot be written (its folder the user's, but
/// read-only), after the plugin was built: nothing is installed, not the
/// native plugin, not the Lua plugin, no folder is made, the build folder
/// is gone, and one line says what failed and that nothing was installed
/// (exit 1).
#[test]
fn install_native_that_cannot_write_the_profile_installs_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let home = sb.path("read-only-profile");
    let profile = home.join("cfg/wireshark/profiles/tcpshut");
    for dir in profile.ancestors().take_while(|d| d.starts_with(&home)) {
        user_folder(dir);
    }
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = everything_below(&home);
    let out = install_native(&sb, &home, None, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "tcpshut: {}: cannot create a temporary file: Permission denied (os error 13); \
             nothing was installed (what was there before is as it was)\n",
            profile.display()
        )
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(everything_below(&home), before, "something was installed");
    assert_nothing_below(&temp_folder(&sb), "the profile not written");
}

/// Without a C compiler on PATH (make, pkg-config and tshark are there):
/// one line says so and what to install, the Lua plugin and the profile
/// are installed as without `--native`, no native plugin folder is made,
/// and the exit code is 4. tshark then loads the Lua plugin (and no .so)
/// from there, and it annotates a test capture.
#[test]
fn install_native_without_a_compiler_installs_the_lua_plugin_and_exits_4() {
    let sb = Sandbox::new(Wireshark::V4_0);
    let bin = tools_folder(&sb, "bin-without-cc", &["make", "pkg-config", "tshark"]);
    let home = sb.path(INSTALLED_HOME);
    user_folder(&home);
    let out = install_native(&sb, &home, Some(&bin), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("native")).collect();
    assert_eq!(
        said,
        [
            "tcpshut: wireshark install --native: cannot build the native plugin: no C \
             compiler (cc is not on PATH; on Debian/Ubuntu: apt install gcc); installed the \
             Lua plugin only"
        ],
        "{stderr}"
    );
    let written = printed_paths(&out);
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(written.iter().all(|p| p.is_file()), "{written:?}");
    assert!(
        written[0].ends_with(".local/lib/wireshark/plugins/tcpshut.lua"),
        "{written:?}"
    );
    assert_nothing_below(&temp_folder(&sb), "no compiler");
    let plugins = home.join(".local/lib/wireshark/plugins");
    assert_eq!(
        everything_below(&plugins),
        std::slice::from_ref(&written[0])
    );
    assert_eq!(loaded_plugins(&sb, &home), [written[0].clone()]);
    let cap = sb.annotated_testdata("close-unread.pcap");
    same_output_as(
        &sb,
        Plugin::Installed,
        "the fallback",
        &cap,
        &[],
        &[Mode::Fields],
    );
}

/// Plain `install` where the native plugin cannot be built (no C compiler
/// on PATH): the Lua plugin and the profile, one line saying why the
/// native plugin is missing and what to install, and exit 0: only
/// `--native` makes that exit 4. `--lua` builds nothing and says nothing
/// of it; `--lua` with `--native` is a usage error (exit 2).
#[test]
fn install_without_a_compiler_installs_the_lua_plugin_says_why_and_succeeds() {
    let sb = Sandbox::new(Wireshark::V4_0);
    let bin = tools_folder(&sb, "bin-without-cc", &["make", "pkg-config", "tshark"]);
    let why = "tcpshut: wireshark install: installed the Lua plugin only: the native plugin, \
               much cheaper per frame, cannot be built here: no C compiler (cc is not on \
               PATH; on Debian/Ubuntu: apt install gcc)";
    for (name, args, said) in [
        ("home-default", &[][..], vec![why]),
        ("home-lua", &["--lua"][..], vec![]),
    ] {
        let home = sb.path(name);
        user_folder(&home);
        let out = install_command(&sb, &home, Some(&bin), args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("native")).collect();
        assert_eq!(lines, said, "{args:?}: {stderr}");
        let written = printed_paths(&out);
        assert_eq!(written.len(), 3, "{args:?}: {written:?}");
        assert_eq!(loaded_plugins(&sb, &home), [written[0].clone()], "{args:?}");
        assert_nothing_below(&temp_folder(&sb), &format!("{args:?}"));
    }
    let home = sb.path("home-both");
    user_folder(&home);
    let out = install_command(&sb, &home, Some(&bin), &["--lua", "--native"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(everything_below(&home).is_empty(), "a usage error wrote");
}

/// As root, the command installs the native plugin into root's folder but
/// says that Wireshark will not load it there, which `tshark -G plugins`
/// as root confirms.
#[test]
fn install_native_as_root_says_the_plugin_will_not_load() {
    assert!(
        super::is_root(),
        "run the tests as root: this is root's case"
    );
    let sb = Sandbox::new(Wireshark::V4_0);
    // root's own folders: install refuses those below the test user's
    // sandbox, which that user could replace
    let own = tempfile::tempdir().unwrap();
    let home = own.path().join("root-home");
    std::fs::create_dir(&home).unwrap();
    std::fs::create_dir(own.path().join("root-tmp")).unwrap();
    let out = sb
        .tcpshut_command(None)
        .args(["wireshark", "install", "--native"])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .env("TMPDIR", own.path().join("root-tmp"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let so = personal_epan(&home).join("tcpshut.so");
    assert!(so.is_file(), "{stderr}");
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("loads no personal C plugins for root"))
        .collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    let plugins = Command::new("tshark")
        .args(["-G", "plugins"])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .output()
        .unwrap();
    let plugins = String::from_utf8_lossy(&plugins.stdout);
    assert!(
        !plugins.lines().any(|l| l.starts_with("tcpshut.so")),
        "root's tshark loads the native plugin: the warning is wrong:\n{plugins}"
    );
    assert!(plugins.contains("tcpshut.lua"), "{plugins}");
}
