//! `tcpshut wireshark install --native` (issue #13), as the normal test
//! user in the host's Wireshark (Debian's 4.0 loads no personal C plugins
//! for root): it builds the plugin from the source in the binary and
//! installs it where tshark loads it, beside the Lua plugin; it refuses
//! folders another user could write, creating nothing; and without a
//! compiler it says so once and installs the Lua plugin alone (exit 4).

use super::native::{personal_epan, same_output, Mode, NATIVE_HOME};
use super::{test_user, Sandbox, Wireshark, TEST_USER};
use crate::util::testdata;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// The command builds and installs the native plugin where the user's
/// tshark loads it (`tshark -G plugins` lists it there), with the Lua
/// plugin and the profile; that tshark then shows a test capture exactly
/// as the Lua plugin alone does.
#[test]
fn install_native_installs_a_plugin_tshark_loads_and_that_annotates() {
    let sb = Sandbox::new(Wireshark::V4_0);
    let home = sb.path(NATIVE_HOME);
    user_folder(&home);
    let print = install_native(&sb, &home, None, &["--print"]);
    assert_eq!(
        print.status.code(),
        Some(0),
        "--print: {}",
        String::from_utf8_lossy(&print.stderr)
    );
    assert!(everything_below(&home).is_empty(), "--print wrote");

    let out = install_native(&sb, &home, None, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(out.stdout, print.stdout, "--print said other paths");
    let so = personal_epan(&home).join("tcpshut.so");
    let written: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
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
    let plugins = sb
        .tshark()
        .env("HOME", &home)
        .args(["-G", "plugins"])
        .output()
        .unwrap();
    let plugins = String::from_utf8_lossy(&plugins.stdout);
    assert!(
        plugins
            .lines()
            .any(|l| l.starts_with("tcpshut.so") && l.contains(&*so.to_string_lossy())),
        "tshark -G plugins does not list {}:\n{plugins}",
        so.display()
    );

    // tshark with this HOME (native plugin and Lua script installed)
    // against tshark with the Lua script alone.
    let name = "close-unread.pcap";
    let cap = sb.path(name);
    std::fs::copy(testdata().join(name), &cap).unwrap();
    assert!(sb.tcpshut(&["annotate", name]).status.success());
    same_output(&sb, name, &cap, &[], &[Mode::Fields]);
    assert!(
        everything_below(&temp_folder(&sb)).is_empty(),
        "the build folder is left"
    );
}

/// Ctrl-C (SIGINT to the process group, as a terminal sends it) while
/// the plugin is being built: the private build folder
/// (`$TMPDIR/tcpshut-native-XXXXXX`, mode 0700) is removed all the same,
/// and no plugin is installed.
#[test]
fn install_native_removes_its_build_folder_on_a_signal() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new(Wireshark::V4_0);
    let home = sb.home();
    let tmp = temp_folder(&sb);
    let mut command = install_native_command(&sb, &home, None, &[]);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tcpshut runs");
    let start = std::time::Instant::now();
    let source = loop {
        let made = everything_below(&tmp)
            .into_iter()
            .find(|p| p.ends_with("tcpshut.c"));
        if let Some(source) = made {
            break source;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the command ended before its build folder was seen"
        );
        assert!(
            start.elapsed().as_secs() < 60,
            "no build folder in {}",
            tmp.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let folder = source.parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", folder.display());
    // tcpshut leads the group (under root, setpriv execs it: same pid)
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = child.wait().unwrap();
    assert!(!ended.success(), "the command finished before the signal");
    // make and cc, in the same group, may still be ending
    let start = std::time::Instant::now();
    while !everything_below(&tmp).is_empty() && start.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        everything_below(&tmp).is_empty(),
        "left behind: {:?}",
        everything_below(&tmp)
    );
    assert!(!personal_epan(&home).join("tcpshut.so").exists());
}

/// `tcpshut wireshark install ARGS` (with `--print`, then without) in
/// `home` refuses `folder`: exit 1, one line naming it, nothing on
/// standard output, and nothing made or changed below `home` (no plugin,
/// no profile, no folder).
fn refuses(sb: &Sandbox, home: &Path, args: &[&str], folder: &Path) {
    let before = everything_below(home);
    for print in [true, false] {
        let mut cmd = install_command(sb, home, None, args);
        if print {
            cmd.arg("--print");
        }
        let out = cmd.output().expect("tcpshut runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{args:?} print {print}: {}", folder.display());
        assert_eq!(out.status.code(), Some(1), "{what}: installed: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "tcpshut: {}: not owned by you or writable by others; nothing was installed \
                 (Wireshark runs plugins from below it)\n",
                folder.display()
            ),
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
        assert!(everything_below(&temp_folder(sb)).is_empty(), "{what}");
    }
}

/// A group-writable `~/.local`, then a world-writable HOME: the command
/// refuses (exit 1), says which folder, and installs nothing, not even
/// the Lua plugin, and creates no folder.
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
        refuses(&sb, &shared, &["--native"], open);
    }
}

/// Plain `install` (the Lua plugin alone) checks the same folders as
/// `--native`, through the same function: a plugins folder owned by
/// another user, then one others can write, then a group-writable
/// `~/.local`: it refuses (exit 1, one line naming the folder), with and
/// without `--print`, and writes nothing, not even the profile.
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
    refuses(&sb, &home, &[], &plugins);
    user_folder(&plugins);
    mode(&plugins, 0o757);
    refuses(&sb, &home, &[], &plugins);
    mode(&plugins, 0o755);
    mode(&local, 0o775);
    refuses(&sb, &home, &[], &local);
    // the same folders, the user's alone: installed
    mode(&local, 0o755);
    let out = install_command(&sb, &home, None, &[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(plugins.join("tcpshut.lua").is_file());
}

/// Without a C compiler on PATH (make, pkg-config and tshark are there):
/// one line says so and what to install, the Lua plugin and the profile
/// are installed as without `--native`, no native plugin folder is made,
/// and the exit code is 4.
#[test]
fn install_native_without_a_compiler_installs_the_lua_plugin_and_exits_4() {
    let sb = Sandbox::new(Wireshark::V4_0);
    let bin = sb.path("bin-without-cc");
    std::fs::create_dir(&bin).unwrap();
    // setpriv: the command runs as the test user through it, found on this PATH
    for tool in ["make", "pkg-config", "tshark", "setpriv"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is not installed (scripts/install-deps)"));
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let home = sb.home();
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
    let written: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(written.len(), 3, "{written:?}");
    assert!(written.iter().all(|p| p.is_file()), "{written:?}");
    assert!(
        written[0].ends_with(".local/lib/wireshark/plugins/tcpshut.lua"),
        "{written:?}"
    );
    assert!(everything_below(&temp_folder(&sb)).is_empty());
    let plugins = home.join(".local/lib/wireshark/plugins");
    assert_eq!(
        everything_below(&plugins),
        std::slice::from_ref(&written[0])
    );
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
    let home = sb.path("root-home");
    std::fs::create_dir(&home).unwrap();
    std::fs::create_dir(sb.path("root-tmp")).unwrap();
    let out = sb
        .tcpshut_command(None)
        .args(["wireshark", "install", "--native"])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .env("TMPDIR", sb.path("root-tmp"))
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
