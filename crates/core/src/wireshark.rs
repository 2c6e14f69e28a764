//! Wireshark integration: installs the tcpshut Lua plugin and the `tcpshut`
//! configuration profile into the user's Wireshark folders, and builds the
//! command line that opens a capture with its sidecar.
//!
//! Folders (what Wireshark 4.0 to 4.6 read; see docs/wireshark.md):
//! - personal Lua plugins: `~/.local/lib/wireshark/plugins` on Linux and
//!   macOS (Wireshark 2.5 and later; `$XDG_CONFIG_HOME/wireshark/plugins` is
//!   only read for backward compatibility), `%APPDATA%\Wireshark\plugins` on
//!   Windows;
//! - personal configuration: `$WIRESHARK_CONFIG_DIR` if set, else on Unix
//!   `$XDG_CONFIG_HOME/wireshark` (default `~/.config/wireshark`), or the
//!   legacy `~/.wireshark` when only that one exists; `%APPDATA%\Wireshark` on
//!   Windows. Profiles live in its `profiles` folder.

pub mod folders;
pub mod native;

use crate::messages::shown;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
#[cfg(test)]
use tcpshut_engine::{Event, Severity};

/// The Lua plugin, embedded in the binary.
pub const PLUGIN_LUA: &str = include_str!("../../../lua/tcpshut.lua");
/// The `preferences` file of the `tcpshut` profile (adds the Shutdown column).
pub const PROFILE_PREFERENCES: &str = include_str!("../../../lua/profile/tcpshut/preferences");
/// The `colorfilters` file of the `tcpshut` profile: tcpshut's colouring
/// rules (event codes, severities), then Wireshark's default rules.
pub const PROFILE_COLORFILTERS: &str = include_str!("../../../lua/profile/tcpshut/colorfilters");
/// File name of the plugin in the plugins folder.
pub const PLUGIN_FILE: &str = "tcpshut.lua";
/// Name of the configuration profile.
pub const PROFILE_NAME: &str = "tcpshut";

#[cfg(test)]
/// The Wireshark expert group of an event's item, or `None` for the events
/// Wireshark's own TCP analysis already marks on the same frame (SYN,
/// SYN-ACK, the FINs and their ACK): an item of ours would only repeat it.
fn expert_group(event: Event) -> Option<&'static str> {
    match event {
        Event::Syn
        | Event::SynAck
        | Event::FinActive
        | Event::FinPassive
        | Event::FinOrderUnknown
        | Event::FinAcked => None,
        Event::FinSimultaneous
        | Event::FinRetransmit
        | Event::TimeWait
        | Event::DataToClosed
        | Event::RstAbort
        | Event::RstAfterClose
        | Event::RstRefused
        | Event::RstStray
        | Event::RstIdle
        | Event::PortReuse
        | Event::MidStream
        | Event::EndUnseen => Some("SEQUENCE"),
        // a FIN promises no more data
        Event::DataAfterFin => Some("PROTOCOL"),
        // an RST the receiver did not act on: out of window, maybe spoofed;
        // or one its claimed sender never sent
        Event::RstIgnored | Event::RstForged => Some("SECURITY"),
        // the capture holds only part of the header
        Event::OptionsCut => Some("UNDECODED"),
    }
}

/// First and last line of the generated block in `lua/tcpshut.lua`.
#[cfg(test)]
const EVENT_TABLE_BEGIN: &str = "-- BEGIN EVENT TABLE";
#[cfg(test)]
const EVENT_TABLE_END: &str = "-- END EVENT TABLE";

/// The rows of both plugins' EVENT_SPEC, one per event in [`Event::ALL`]:
/// `{ "code", GROUP, SEVERITY, "text" },` with the group and severity
/// names after their language's prefix (`G.`/`S.` in Lua, `PI_` in C), and
/// `no_group` where Wireshark's own TCP analysis already says it.
#[cfg(test)]
fn event_spec_rows(no_group: &str, group_prefix: &str, severity_prefix: &str) -> String {
    let mut rows = String::new();
    for &event in Event::ALL {
        let severity = match event.severity() {
            Severity::None | Severity::Chat => "CHAT",
            Severity::Note => "NOTE",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        };
        let group =
            expert_group(event).map_or(no_group.to_string(), |g| format!("{group_prefix}{g}"));
        rows.push_str(&format!(
            "    {{ \"{}\", {group}, {severity_prefix}{severity}, \"{}\" }},\n",
            event.code(),
            event.text()
        ));
    }
    rows
}

/// The plugin's event table, generated from [`Event::ALL`]: code, expert
/// group (`false`: no item), severity and text of every event, then the
/// Info tag code lists (FIN_CODES, RST_CODES, TAG_CODES) from [`info_tag`].
/// The plugin holds this block between its BEGIN and END lines, and a test
/// fails when they differ, so the engine's table is the one source.
#[cfg(test)]
fn lua_event_table() -> String {
    let mut lua = format!(
        "{EVENT_TABLE_BEGIN}: generated from Event::ALL (crates/engine/src/tracking/event.rs)\n\
         -- by lua_event_table() in crates/core/src/wireshark.rs; a test fails when they differ.\n\
         -- code, expert group (false: no item, Wireshark's TCP analysis says it), severity, text\n\
         local EVENT_SPEC = {{\n"
    );
    lua.push_str(&event_spec_rows("false", "G.", "S."));
    lua.push_str("}\n");
    lua.push_str(
        "-- The codes that give an Info tag (see \"The Info column tag\"), from info_tag():\n\
         -- FIN and RST kinds make its head, with these labels; TAG_CODES a part of their own.\n",
    );
    let table = |name: &str, entries: Vec<(&str, String)>| {
        let mut t = format!("local {name} = {{\n");
        for (code, value) in entries {
            t.push_str(&format!("    [\"{code}\"] = {value},\n"));
        }
        t.push_str("}\n");
        t
    };
    let labels = |rst: bool| {
        tag_heads(rst)
            .into_iter()
            .map(|(code, label)| (code, format!("\"{label}\"")))
            .collect()
    };
    lua.push_str(&table("FIN_CODES", labels(false)));
    lua.push_str(&table("RST_CODES", labels(true)));
    lua.push_str(&table(
        "TAG_CODES",
        tag_parts().map(|code| (code, "true".to_string())).collect(),
    ));
    lua.push_str(EVENT_TABLE_END);
    lua
}

/// Where an event goes in the plugins' Info column tag (see docs/wireshark.md
/// "The Info column tag"): FIN and RST kinds make its head, with these labels;
/// tagged codes a part of their own. An exhaustive match, so a new event has
/// to be placed here.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InfoTag {
    Fin(&'static str),
    Rst(&'static str),
    Part,
    None,
}

#[cfg(test)]
fn info_tag(event: Event) -> InfoTag {
    match event {
        Event::FinActive | Event::FinPassive | Event::FinOrderUnknown => InfoTag::Fin("FIN"),
        Event::FinSimultaneous => InfoTag::Fin("FIN (crossed)"),
        Event::FinRetransmit => InfoTag::Fin("FIN again"),
        Event::RstAbort => InfoTag::Rst("abort"),
        Event::RstAfterClose => InfoTag::Rst("after close"),
        Event::RstRefused => InfoTag::Rst("refused"),
        Event::RstIgnored => InfoTag::Rst("ignored"),
        Event::RstForged => InfoTag::Rst("forged"),
        Event::RstStray => InfoTag::Rst("stray"),
        Event::DataToClosed | Event::DataAfterFin | Event::PortReuse => InfoTag::Part,
        Event::Syn
        | Event::SynAck
        | Event::FinAcked
        | Event::TimeWait
        | Event::RstIdle
        | Event::MidStream
        | Event::OptionsCut
        | Event::EndUnseen => InfoTag::None,
    }
}

/// The codes whose Info tag is a FIN head (`rst` false) or an RST head
/// (`rst` true), with their labels, in [`Event::ALL`] order: both plugins'
/// FIN_CODES and RST_CODES.
#[cfg(test)]
fn tag_heads(rst: bool) -> Vec<(&'static str, &'static str)> {
    Event::ALL
        .iter()
        .filter_map(|&e| match info_tag(e) {
            InfoTag::Fin(label) if !rst => Some((e.code(), label)),
            InfoTag::Rst(label) if rst => Some((e.code(), label)),
            _ => None,
        })
        .collect()
}

/// The codes that make a part of their own in the Info tag, in
/// [`Event::ALL`] order: both plugins' TAG_CODES.
#[cfg(test)]
fn tag_parts() -> impl Iterator<Item = &'static str> {
    Event::ALL
        .iter()
        .filter(|&&e| info_tag(e) == InfoTag::Part)
        .map(|e| e.code())
}

/// First and last line of the generated block in `wireshark/native/tcpshut.c`.
#[cfg(test)]
const C_EVENT_TABLE_BEGIN: &str = "/* BEGIN EVENT TABLE";
#[cfg(test)]
const C_EVENT_TABLE_END: &str = "/* END EVENT TABLE */";

/// The native plugin's event table and Info tag code lists, generated from
/// [`Event::ALL`] like [`lua_event_table`]; a test fails when the block in
/// `wireshark/native/tcpshut.c` differs.
#[cfg(test)]
fn c_event_table() -> String {
    let mut c = format!(
        "{C_EVENT_TABLE_BEGIN}: generated from Event::ALL (crates/engine/src/tracking/event.rs)\n   \
         by c_event_table() in crates/core/src/wireshark.rs; a test fails when they differ. */\n\
         static const event_spec EVENT_SPEC[] = {{\n"
    );
    let c_list = |codes: Vec<String>| codes.join(", ");
    c.push_str(&event_spec_rows("0", "PI_", "PI_"));
    c.push_str("};\n");
    let pairs = |rst: bool| {
        c_list(
            tag_heads(rst)
                .into_iter()
                .map(|(code, label)| format!("{{ \"{code}\", \"{label}\" }}"))
                .collect(),
        )
    };
    let codes = |keep: &dyn Fn(Event) -> bool| {
        c_list(
            Event::ALL
                .iter()
                .filter(|&&e| keep(e))
                .map(|e| format!("\"{}\"", e.code()))
                .collect(),
        )
    };
    c.push_str(&format!(
        "static const char *const FIN_CODES[][2] = {{ {} }};\n",
        pairs(false)
    ));
    c.push_str(&format!(
        "static const char *const RST_CODES[][2] = {{ {} }};\n",
        pairs(true)
    ));
    c.push_str(&format!(
        "static const char *const TAG_CODES[] = {{ {} }};\n",
        c_list(tag_parts().map(|code| format!("\"{code}\"")).collect())
    ));
    c.push_str(&format!(
        "static const char *const QUIET_CODES[] = {{ {} }};\n",
        codes(&|e| info_tag(e) == InfoTag::None && expert_group(e).is_none())
    ));
    c.push_str(C_EVENT_TABLE_END);
    c
}

/// Which conventions to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux, macOS and other Unix-like systems.
    Unix,
    Windows,
}

/// The environment the folder decisions depend on, captured once so the
/// logic can be tested without touching the process environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub os: Os,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub wireshark_config_dir: Option<PathBuf>,
    pub appdata: Option<PathBuf>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Env {
    /// Reads HOME, XDG_CONFIG_HOME, WIRESHARK_CONFIG_DIR and APPDATA.
    pub fn from_process() -> Env {
        Env {
            os: if cfg!(windows) { Os::Windows } else { Os::Unix },
            home: env_path("HOME").or_else(|| env_path("USERPROFILE")),
            xdg_config_home: env_path("XDG_CONFIG_HOME"),
            wireshark_config_dir: env_path("WIRESHARK_CONFIG_DIR"),
            appdata: env_path("APPDATA"),
        }
    }

    /// Wireshark's personal configuration folder.
    pub fn config_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.wireshark_config_dir {
            return Ok(dir.clone());
        }
        match self.os {
            Os::Windows => match &self.appdata {
                Some(appdata) => Ok(appdata.join("Wireshark")),
                None => bail!("APPDATA is not set: cannot find Wireshark's configuration folder"),
            },
            Os::Unix => {
                // Like GLib's g_get_user_config_dir: XDG_CONFIG_HOME only if absolute.
                let xdg = match &self.xdg_config_home {
                    Some(x) if x.is_absolute() => x.join("wireshark"),
                    _ => self.home()?.join(".config").join("wireshark"),
                };
                if !xdg.is_dir() {
                    let legacy = self.home()?.join(".wireshark");
                    if legacy.is_dir() {
                        return Ok(legacy);
                    }
                }
                Ok(xdg)
            }
        }
    }

    /// Wireshark's personal Lua plugins folder.
    pub fn plugins_dir(&self) -> Result<PathBuf> {
        match self.os {
            Os::Windows => Ok(self.config_dir()?.join("plugins")),
            Os::Unix => Ok(self
                .home()?
                .join(".local")
                .join("lib")
                .join("wireshark")
                .join("plugins")),
        }
    }

    /// Folders where Wireshark also picks up personal Lua plugins (the legacy
    /// configuration `plugins` folder on Unix), after [`Env::plugins_dir`].
    pub fn all_plugin_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.plugins_dir().into_iter().collect();
        if self.os == Os::Unix {
            if let Ok(cfg) = self.config_dir() {
                dirs.push(cfg.join("plugins"));
            }
        }
        dirs
    }

    /// The `tcpshut` profile folder.
    pub fn profile_dir(&self) -> Result<PathBuf> {
        Ok(self.config_dir()?.join("profiles").join(PROFILE_NAME))
    }

    /// Where the plugin is installed, if it is.
    pub fn installed_plugin(&self) -> Option<PathBuf> {
        self.all_plugin_dirs()
            .into_iter()
            .map(|d| d.join(PLUGIN_FILE))
            .find(|p| p.is_file())
    }

    /// Whether the `tcpshut` profile is installed.
    pub fn profile_installed(&self) -> bool {
        self.profile_dir()
            .map(|d| d.join("preferences").is_file())
            .unwrap_or(false)
    }

    fn home(&self) -> Result<PathBuf> {
        match &self.home {
            Some(h) => Ok(h.clone()),
            None => bail!("HOME is not set: cannot find Wireshark's folders"),
        }
    }
}

/// The files [`install`] writes, and what goes into each.
pub fn install_plan(env: &Env) -> Result<Vec<(PathBuf, &'static str)>> {
    Ok(vec![
        (env.plugins_dir()?.join(PLUGIN_FILE), PLUGIN_LUA),
        (env.profile_dir()?.join("preferences"), PROFILE_PREFERENCES),
        (
            env.profile_dir()?.join("colorfilters"),
            PROFILE_COLORFILTERS,
        ),
    ])
}

/// What [`install_with`] did: the files written (or, with `print_only`,
/// to be written), and notes for the user about files it kept.
#[derive(Debug, Default)]
pub struct Installed {
    pub written: Vec<PathBuf>,
    pub notes: Vec<String>,
    /// With `--native`: why the native plugin could not be built (what to
    /// install); the Lua plugin was installed alone.
    pub native_unavailable: Option<String>,
}

/// Whether an existing profile `preferences` file may be replaced by ours:
/// only when it is ours, unchanged (an older tcpshut's file starts with the
/// same first line and has nothing else set).
fn profile_is_ours(existing: &str) -> bool {
    existing == PROFILE_PREFERENCES
        || (existing.lines().next() == PROFILE_PREFERENCES.lines().next()
            && existing
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .all(|l| PROFILE_PREFERENCES.lines().any(|ours| ours == l)))
}

/// Installs the plugin and the profile for `env`; with `print_only`, only
/// says which paths it would write. Every folder it writes into must be
/// the user's alone ([`check_folders`]), checked before anything is
/// written, also with `print_only`. A profile file the user changed (in
/// Wireshark or by hand) is never overwritten: it is kept, and a note
/// says what it lacks and how to add it. All or nothing: see
/// [`put_in_place`].
pub fn install_with(env: &Env, print_only: bool) -> Result<Installed> {
    check_folders(env, None)?;
    install_files(env, None, print_only)
}

/// Checks every folder install writes into or makes (the native plugin's,
/// when given, the Lua plugins folder and the profile's), before anything
/// is built or written: [`folders::code_folder`],
/// [`folders::profile_folder`].
fn check_folders(env: &Env, native_dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = native_dir {
        folders::code_folder(env, dir, None)?;
    }
    folders::code_folder(env, &env.plugins_dir()?, None)?;
    folders::profile_folder(env, &env.profile_dir()?, None)
}

/// Why an existing profile file is kept rather than replaced, if it is:
/// it is not tcpshut's own, unchanged.
fn kept_profile_file(path: &Path, contents: &str) -> Option<String> {
    let existing = std::fs::read_to_string(path).ok()?;
    if contents == PROFILE_PREFERENCES && !profile_is_ours(&existing) {
        let column = if existing.contains("%Cus:tcpshut.summary") {
            "it already has the Shutdown column"
        } else {
            "the Shutdown column was not added: in Wireshark, Edit > Preferences > \
             Appearance > Columns, add a Custom column with the field tcpshut.summary"
        };
        return Some(format!(
            "tcpshut: {}: kept your edited profile preferences ({column})",
            shown(path)
        ));
    }
    // Wireshark rewrites the file when the rules are edited in View >
    // Coloring Rules: anything but ours, unchanged, is the user's.
    if contents == PROFILE_COLORFILTERS && existing != PROFILE_COLORFILTERS {
        let rules = if existing.contains("tcpshut.") {
            "it has tcpshut rules"
        } else {
            "tcpshut's rules were not added: in Wireshark, View > Coloring Rules > \
             Import, the file lua/profile/tcpshut/colorfilters"
        };
        return Some(format!(
            "tcpshut: {}: kept your edited colouring rules ({rules})",
            shown(path)
        ));
    }
    None
}

/// The files of [`install_plan`] (after `native`, the native plugin and
/// its contents, when built), less the profile files the user edited,
/// put in place together unless `print_only`.
fn install_files(
    env: &Env,
    native: Option<(PathBuf, Vec<u8>)>,
    print_only: bool,
) -> Result<Installed> {
    let mut installed = Installed::default();
    let mut files: Vec<(PathBuf, std::borrow::Cow<'static, [u8]>)> = native
        .into_iter()
        .map(|(path, so)| (path, so.into()))
        .collect();
    for (path, contents) in install_plan(env)? {
        match kept_profile_file(&path, contents) {
            Some(note) => installed.notes.push(note),
            None => files.push((path, contents.as_bytes().into())),
        }
    }
    installed.written = files.iter().map(|(path, _)| path.clone()).collect();
    if !print_only {
        put_in_place(env, &files)?;
    }
    Ok(installed)
}

/// Makes the missing folders of `files` (each checked once made, as
/// [`check_folders`] checked the others), writes every file to a
/// temporary file beside it, then renames them all into place
/// ([`crate::output::Batch`]). All or nothing: when a step fails, what
/// this run renamed is taken back (the files it replaced put back) and
/// the folders it made are removed, and the error says so, once.
fn put_in_place(env: &Env, files: &[(PathBuf, std::borrow::Cow<'static, [u8]>)]) -> Result<()> {
    let profile = env.profile_dir()?;
    // The batch removes the folders it made unless its files are put in
    // place: on an error (dropped or failed commit) and on a signal.
    let done = (|| -> Result<()> {
        let mut batch = crate::output::Batch::default();
        for (path, contents) in files {
            let dir = path.parent().context("a file in a folder")?;
            if dir == profile {
                folders::profile_folder(env, dir, Some(&mut batch))?;
            } else {
                folders::code_folder(env, dir, Some(&mut batch))?;
            }
            batch.stage(path, contents)?;
        }
        batch.commit()
    })();
    let Err(err) = done else {
        return Ok(());
    };
    Err(anyhow::anyhow!(
        "{}; nothing was installed (what was there before is as it was)",
        crate::messages::describe(&err)
    ))
}

/// Installs the Lua plugin into the personal Lua plugins folder and the
/// `tcpshut` profile into the personal profiles folder, each file atomically.
/// With `print_only`, writes nothing and says what it would write; the
/// caller prints the paths and the notes.
pub fn install(print_only: bool) -> Result<Installed> {
    install_with(&Env::from_process(), print_only)
}

/// `install --native`: builds the native plugin from the embedded source
/// ([`native::build`]) and installs it into the personal plugin folder of
/// its Wireshark release, together with the Lua plugin and the profile as
/// [`install_with`] does (the Lua script then adds only the connections
/// table), all or nothing. Every folder it writes into is checked before
/// anything is built or created ([`check_folders`]); one another user
/// could write is an error, and nothing is installed. When the native plugin
/// cannot be built here, [`Installed::native_unavailable`] says why and
/// the Lua plugin is installed alone. With `print_only`, checks the same
/// and builds and writes nothing.
pub fn install_native_with(env: &Env, print_only: bool) -> Result<Installed> {
    use native::NativeError;
    let mut native_file = None;
    let mut unavailable = None;
    match native::release() {
        Ok(release) => {
            let dir = native::native_dir(env, &release)?;
            check_folders(env, Some(&dir))?;
            // make runs the Makefile written into a folder made there:
            // nobody else may be able to swap that folder for theirs.
            folders::safe_temporary_folder(&std::env::temp_dir(), folders::Temporary::Build)?;
            let built = if print_only {
                Ok(Vec::new())
            } else {
                native::build(&release)
            };
            match built {
                Ok(so) => native_file = Some((dir.join(native::NATIVE_FILE), so)),
                Err(NativeError::Unavailable(why)) => unavailable = Some(why),
                Err(NativeError::Refused(err)) => return Err(err),
            }
        }
        Err(NativeError::Unavailable(why)) => {
            check_folders(env, None)?;
            unavailable = Some(why);
        }
        Err(NativeError::Refused(err)) => return Err(err),
    }
    let mut installed = install_files(env, native_file, print_only)?;
    installed.native_unavailable = unavailable;
    Ok(installed)
}

/// [`install_native_with`] for this process's environment.
pub fn install_native(print_only: bool) -> Result<Installed> {
    install_native_with(&Env::from_process(), print_only)
}

/// Whether this process runs as root (Unix; never on Windows, where
/// Wireshark does not check).
fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        folders::effective_uid() == 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Whether a Wireshark `init.lua` lets personal Lua plugins run for root:
/// a line `run_user_scripts_when_superuser = true`.
fn init_lua_allows_root(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        line.strip_prefix("run_user_scripts_when_superuser")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .is_some_and(|value| {
                value
                    .trim()
                    .strip_prefix("true")
                    .is_some_and(|end| end.is_empty() || end.trim_start().starts_with("--"))
            })
    })
}

/// The folders Wireshark looks for its global `init.lua` in, from the
/// text of `tshark -G folders`: "Global configuration" (4.0, 4.2) and
/// "Global Lua Plugins" (4.4 and later).
fn init_lua_folders(folders: &str) -> Vec<PathBuf> {
    folders
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| matches!(name.trim(), "Global configuration" | "Global Lua Plugins"))
        .map(|(_, path)| PathBuf::from(path.trim()))
        .collect()
}

/// When run as root, what to tell the user if Wireshark will skip the
/// personal plugin: Wireshark runs personal Lua plugins (and -X lua_script)
/// for root only when its global `init.lua` sets
/// `run_user_scripts_when_superuser = true`. Debian's 4.0 ships one that
/// does; 4.4 and later ship no `init.lua`, so they skip the plugin without
/// a word. `None` when not root or when the plugin will load.
pub fn root_skip_warning() -> Option<String> {
    if !running_as_root() {
        return None;
    }
    let folders = Command::new("tshark")
        .args(["-G", "folders"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned());
    let allowed = folders.as_deref().is_some_and(|folders| {
        init_lua_folders(folders).iter().any(|dir| {
            std::fs::read_to_string(dir.join("init.lua")).is_ok_and(|t| init_lua_allows_root(&t))
        })
    });
    if allowed {
        return None;
    }
    let which = if folders.is_some() {
        "this Wireshark skips personal Lua plugins for root"
    } else {
        "Wireshark 4.4 and later skip personal Lua plugins for root (tshark was not found to check this one)"
    };
    Some(format!(
        "tcpshut: running as root: {which} (no init.lua sets run_user_scripts_when_superuser), \
         so the tcpshut plugin will not load, not even with -X lua_script. Run Wireshark as \
         your normal user (capturing needs only the wireshark group), or see \
         \"Running as root\" in docs/wireshark.md"
    ))
}

/// When run as root, what to tell the user about the native plugin just
/// installed: Wireshark never loads personal C plugins for root (any
/// release: `wsutil/plugins.c` skips the personal folder when
/// `started_with_special_privs()`), without a word. `None` when not root.
pub fn root_native_warning() -> Option<String> {
    running_as_root().then(|| {
        "tcpshut: running as root: Wireshark loads no personal C plugins for root, so the \
         native plugin will not load for root; run `tcpshut wireshark install --native` as the \
         user who runs Wireshark"
            .to_string()
    })
}

/// The Wireshark program: `$TCPSHUT_WIRESHARK` if set, else `wireshark`.
pub fn wireshark_program() -> OsString {
    std::env::var_os("TCPSHUT_WIRESHARK")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("wireshark"))
}

/// Writes a copy of the embedded plugin into a fresh private folder
/// (`mkdtemp`, mode 0700, `<temp>/tcpshut-XXXXXX/tcpshut.lua`) and returns
/// its path. Never a fixed path in the shared temporary folder: another
/// user could create that folder first and put their own Lua there, which
/// Wireshark would then run with our rights. The folder is kept: Wireshark
/// reads the script for as long as it runs (and again on "Reload Lua
/// Plugins"). The temporary folder is checked first, as `install
/// --native` checks the one it builds in: where others can write to it
/// and it is not sticky, another user could swap the private folder for
/// theirs, script and all, before Wireshark reads it.
pub fn private_plugin_copy() -> Result<PathBuf> {
    folders::safe_temporary_folder(&std::env::temp_dir(), folders::Temporary::OpenScript)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("tcpshut-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let dir = builder
        .tempdir()
        .context("creating a private folder for the plugin")?
        .keep();
    let path = dir.join(PLUGIN_FILE);
    std::fs::write(&path, PLUGIN_LUA).with_context(|| format!("{}: cannot write", shown(&path)))?;
    Ok(path)
}

/// Builds the command line for `env`: `-C tcpshut` when the profile is
/// installed, `-o tcpshut.sidecar:SIDECAR` always, and
/// `-X lua_script:SCRIPT` only when the plugin is not installed (loading it
/// twice would register the protocol twice).
pub fn open_command_with(
    env: &Env,
    program: OsString,
    capture: &Path,
    sidecar: &Path,
    script: &Path,
) -> Command {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut cmd = Command::new(program);
    if env.profile_installed() {
        cmd.arg("-C").arg(PROFILE_NAME);
    }
    let mut pref = OsString::from("tcpshut.sidecar:");
    pref.push(abs(sidecar).as_os_str());
    cmd.arg("-o").arg(pref);
    if env.installed_plugin().is_none() {
        let mut x = OsString::from("lua_script:");
        x.push(abs(script).as_os_str());
        cmd.arg("-X").arg(x);
    }
    cmd.arg("-r").arg(abs(capture));
    cmd
}

/// The command that opens `capture` in Wireshark with its sidecar, the
/// Shutdown column (when the profile is installed) and the plugin (from the
/// plugins folder, or else from a [`private_plugin_copy`]).
pub fn open_command(capture: &Path, sidecar: &Path) -> Result<Command> {
    let env = Env::from_process();
    let script = match env.installed_plugin() {
        Some(installed) => installed,
        None => private_plugin_copy()?,
    };
    Ok(open_command_with(
        &env,
        wireshark_program(),
        capture,
        sidecar,
        &script,
    ))
}

/// Where `program` would be run from: itself when it names a path, else
/// the first executable of that name on `PATH`.
pub fn find_program(program: &Path) -> Option<PathBuf> {
    let runnable = |p: &Path| {
        #[cfg(unix)]
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| {
            #[cfg(unix)]
            let executable = m.permissions().mode() & 0o111 != 0;
            #[cfg(not(unix))]
            let executable = true;
            m.is_file() && executable
        })
    };
    if program.components().count() > 1 {
        return runnable(program).then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
}

/// Why Wireshark could not show a window here, if it could not: on Unix
/// other than macOS it needs an X11 or Wayland display.
pub fn no_display() -> Option<&'static str> {
    let unix_desktop = cfg!(all(unix, not(target_os = "macos")));
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    (unix_desktop && !set("DISPLAY") && !set("WAYLAND_DISPLAY"))
        .then_some("no display (DISPLAY and WAYLAND_DISPLAY are not set)")
}

/// The command as one line a POSIX shell would run as is.
pub fn shell_words(command: &Command) -> String {
    let quote = |word: &std::ffi::OsStr| {
        let word = word.to_string_lossy();
        let plain = word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
        if plain && !word.is_empty() {
            word.into_owned()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_env(home: &Path) -> Env {
        Env {
            os: Os::Unix,
            home: Some(home.to_path_buf()),
            xdg_config_home: None,
            wireshark_config_dir: None,
            appdata: None,
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn unix_default_folders() {
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        assert_eq!(
            env.plugins_dir().unwrap(),
            home.path().join(".local/lib/wireshark/plugins")
        );
        assert_eq!(
            env.profile_dir().unwrap(),
            home.path().join(".config/wireshark/profiles/tcpshut")
        );
    }

    #[test]
    fn xdg_config_home_and_wireshark_config_dir() {
        let home = tempfile::tempdir().unwrap();
        let mut env = unix_env(home.path());
        env.xdg_config_home = Some(home.path().join("cfg"));
        assert_eq!(env.config_dir().unwrap(), home.path().join("cfg/wireshark"));
        // A relative XDG_CONFIG_HOME is ignored, as GLib does.
        env.xdg_config_home = Some(PathBuf::from("relative"));
        assert_eq!(
            env.config_dir().unwrap(),
            home.path().join(".config/wireshark")
        );
        env.wireshark_config_dir = Some(home.path().join("ws"));
        assert_eq!(
            env.profile_dir().unwrap(),
            home.path().join("ws/profiles/tcpshut")
        );
        // The Lua plugins folder does not follow the configuration folder on Unix.
        assert_eq!(
            env.plugins_dir().unwrap(),
            home.path().join(".local/lib/wireshark/plugins")
        );
    }

    #[test]
    fn legacy_dot_wireshark_only_when_xdg_folder_is_missing() {
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        std::fs::create_dir_all(home.path().join(".wireshark")).unwrap();
        assert_eq!(env.config_dir().unwrap(), home.path().join(".wireshark"));
        std::fs::create_dir_all(home.path().join(".config/wireshark")).unwrap();
        assert_eq!(
            env.config_dir().unwrap(),
            home.path().join(".config/wireshark")
        );
    }

    #[test]
    fn windows_folders() {
        let env = Env {
            os: Os::Windows,
            home: Some(PathBuf::from("C:/Users/u")),
            xdg_config_home: None,
            wireshark_config_dir: None,
            appdata: Some(PathBuf::from("C:/Users/u/AppData/Roaming")),
        };
        assert_eq!(
            env.plugins_dir().unwrap(),
            PathBuf::from("C:/Users/u/AppData/Roaming/Wireshark/plugins")
        );
        assert_eq!(
            env.profile_dir().unwrap(),
            PathBuf::from("C:/Users/u/AppData/Roaming/Wireshark/profiles/tcpshut")
        );
    }

    #[test]
    fn missing_home_is_an_error() {
        let env = Env {
            os: Os::Unix,
            home: None,
            xdg_config_home: None,
            wireshark_config_dir: None,
            appdata: None,
        };
        assert!(env.plugins_dir().is_err());
        assert!(install_with(&env, true).is_err());
    }

    #[test]
    fn print_only_writes_nothing_and_install_writes_both_files() {
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        let paths = install_with(&env, true).unwrap().written;
        assert_eq!(
            paths,
            vec![
                home.path().join(".local/lib/wireshark/plugins/tcpshut.lua"),
                home.path()
                    .join(".config/wireshark/profiles/tcpshut/preferences"),
                home.path()
                    .join(".config/wireshark/profiles/tcpshut/colorfilters"),
            ]
        );
        assert!(paths.iter().all(|p| !p.exists()));
        assert!(env.installed_plugin().is_none());
        assert!(!env.profile_installed());

        let written = install_with(&env, false).unwrap().written;
        assert_eq!(written, paths);
        assert_eq!(std::fs::read_to_string(&paths[0]).unwrap(), PLUGIN_LUA);
        assert_eq!(
            std::fs::read_to_string(&paths[1]).unwrap(),
            PROFILE_PREFERENCES
        );
        assert_eq!(env.installed_plugin(), Some(paths[0].clone()));
        assert!(env.profile_installed());
        // Again, over the existing files; no temporary file is left behind.
        install_with(&env, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(&paths[2]).unwrap(),
            PROFILE_COLORFILTERS
        );
        for (dir, files) in [
            (paths[0].parent().unwrap(), 1),
            (paths[1].parent().unwrap(), 2),
        ] {
            let names: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names.len(), files, "{names:?}");
        }
    }

    #[test]
    fn edited_profile_is_kept_and_an_unchanged_one_updated() {
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        let prefs = env.profile_dir().unwrap().join("preferences");
        std::fs::create_dir_all(prefs.parent().unwrap()).unwrap();
        // an older tcpshut's file (a comment changed): replaced
        std::fs::write(
            &prefs,
            PROFILE_PREFERENCES.replace("after Info", "after the Info"),
        )
        .unwrap();
        let done = install_with(&env, false).unwrap();
        assert_eq!(done.written.len(), 3);
        assert!(done.notes.is_empty());
        assert_eq!(
            std::fs::read_to_string(&prefs).unwrap(),
            PROFILE_PREFERENCES
        );
        // the user's edits: kept, and said
        let edited = format!("{PROFILE_PREFERENCES}gui.font_name: Mono 12\n");
        std::fs::write(&prefs, &edited).unwrap();
        let done = install_with(&env, false).unwrap();
        assert_eq!(done.written.len(), 2);
        assert_eq!(std::fs::read_to_string(&prefs).unwrap(), edited);
        assert!(
            done.notes[0].contains("kept your edited profile"),
            "{:?}",
            done.notes
        );
        assert!(done.notes[0].contains("already has the Shutdown column"));
        std::fs::write(&prefs, "gui.font_name: Mono 12\n").unwrap();
        let done = install_with(&env, false).unwrap();
        assert!(
            done.notes[0].contains("tcpshut.summary"),
            "{:?}",
            done.notes
        );
        // colouring rules edited in Wireshark: kept, and said
        let colours = env.profile_dir().unwrap().join("colorfilters");
        let mine = "@Mine@tcp.port == 22@[0,0,0][65535,65535,65535]\n";
        std::fs::write(&colours, mine).unwrap();
        let done = install_with(&env, false).unwrap();
        assert_eq!(std::fs::read_to_string(&colours).unwrap(), mine);
        assert!(
            done.notes
                .iter()
                .any(|n| n.contains("kept your edited colouring rules")
                    && n.contains("were not added")),
            "{:?}",
            done.notes
        );
    }

    /// Names in `dir` (none when it does not exist), sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A rename that fails after others were done (the profile's
    /// `colorfilters` is a folder, which no file can replace): the files
    /// already renamed are taken back, an older plugin put back as it was
    /// (content and mode), the folders the run made removed, no temporary
    /// file or kept link left, and the error says so once.
    #[cfg(unix)]
    #[test]
    fn a_failed_install_leaves_everything_as_it_was() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        let profile = env.profile_dir().unwrap();
        std::fs::create_dir_all(profile.join("colorfilters/in-the-way")).unwrap();
        let failed = |env: &Env| {
            let err = install_with(env, false).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "{}: cannot rename into place: Is a directory (os error 21); nothing was \
                     installed (what was there before is as it was)",
                    profile.join("colorfilters").display()
                )
            );
            assert_eq!(names_in(&profile), ["colorfilters"]);
        };
        // a fresh HOME: the plugin folders made for the plugin are gone
        failed(&env);
        assert_eq!(names_in(home.path()), [".config"]);
        // an older plugin: put back as it was
        let plugins = env.plugins_dir().unwrap();
        std::fs::create_dir_all(&plugins).unwrap();
        let old = plugins.join(PLUGIN_FILE);
        std::fs::write(&old, "-- an older tcpshut.lua\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o640)).unwrap();
        failed(&env);
        assert_eq!(names_in(&plugins), [PLUGIN_FILE]);
        assert_eq!(
            std::fs::read_to_string(&old).unwrap(),
            "-- an older tcpshut.lua\n"
        );
        let mode = std::fs::metadata(&old).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // out of the way: installed, the older plugin replaced
        std::fs::remove_dir_all(profile.join("colorfilters")).unwrap();
        assert_eq!(install_with(&env, false).unwrap().written.len(), 3);
        assert_eq!(std::fs::read_to_string(&old).unwrap(), PLUGIN_LUA);
        assert_eq!(names_in(&plugins), [PLUGIN_FILE]);
        assert_eq!(names_in(&profile), ["colorfilters", "preferences"]);
    }

    /// The profile's folders are checked as the plugin's are, before
    /// anything is written: a configuration folder others can write
    /// (under HOME), and one outside HOME in a folder anyone can write
    /// (not sticky) or behind a link into one, stop the install with
    /// nothing written, not even the plugin.
    #[cfg(unix)]
    #[test]
    fn profile_folders_are_checked_before_anything_is_written() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |dir: &Path, mode: u32| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let top = tempfile::tempdir().unwrap();
        let home = top.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut env = unix_env(&home);
        let refused = |env: &Env, folder: &Path, why: &str| {
            for print_only in [true, false] {
                let err = install_with(env, print_only).unwrap_err().to_string();
                assert_eq!(
                    err,
                    format!("{}: {why}", folder.display()),
                    "print_only {print_only}"
                );
            }
            assert!(env.installed_plugin().is_none());
            assert!(!env.profile_installed());
        };
        let not_private = "not owned by you or writable by others; nothing was installed \
                           (Wireshark reads the tcpshut profile from below it)";
        let not_safe_above = "not owned by you or root, or writable by others; nothing was \
                              installed (another user could replace what tcpshut builds or \
                              installs below it)";
        let config = home.join(".config");
        std::fs::create_dir(&config).unwrap();
        mode(&config, 0o775);
        refused(&env, &config, not_private);
        mode(&config, 0o755);
        // Wireshark's configuration folder outside HOME
        let open = top.path().join("open");
        std::fs::create_dir_all(open.join("ws")).unwrap();
        mode(&open, 0o777);
        let real_open = std::fs::canonicalize(&open).unwrap();
        env.wireshark_config_dir = Some(open.join("ws"));
        refused(&env, &real_open, not_safe_above);
        // ... or behind a link into such a folder
        env.wireshark_config_dir = None;
        std::os::unix::fs::symlink(open.join("ws"), config.join("wireshark")).unwrap();
        refused(&env, &real_open, not_safe_above);
        mode(&open, 0o1777);
        install_with(&env, false).unwrap();
        assert!(open.join("ws/profiles/tcpshut/preferences").is_file());
    }

    #[test]
    fn open_command_adds_lua_script_only_when_not_installed() {
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        let cap = home.path().join("a b.pcap");
        let side = home.path().join("a b.pcap.tcpshut.csv");
        let script = home.path().join("s/tcpshut.lua");
        let cmd = open_command_with(&env, "wireshark".into(), &cap, &side, &script);
        assert_eq!(cmd.get_program(), "wireshark");
        assert_eq!(
            args(&cmd),
            vec![
                "-o".to_string(),
                format!("tcpshut.sidecar:{}", side.display()),
                "-X".to_string(),
                format!("lua_script:{}", script.display()),
                "-r".to_string(),
                cap.display().to_string(),
            ]
        );
        install_with(&env, false).unwrap();
        let cmd = open_command_with(&env, "wireshark".into(), &cap, &side, &script);
        assert_eq!(
            args(&cmd),
            vec![
                "-C".to_string(),
                "tcpshut".to_string(),
                "-o".to_string(),
                format!("tcpshut.sidecar:{}", side.display()),
                "-r".to_string(),
                cap.display().to_string(),
            ]
        );
    }

    #[test]
    fn plugin_event_table_is_generated_from_the_engine() {
        let begin = PLUGIN_LUA.find(EVENT_TABLE_BEGIN).expect("BEGIN line");
        let end = PLUGIN_LUA.find(EVENT_TABLE_END).expect("END line") + EVENT_TABLE_END.len();
        let expected = lua_event_table();
        for event in Event::ALL {
            assert!(!event.text().contains(['"', '\\']), "{event}: a Lua string");
        }
        assert!(
            PLUGIN_LUA[begin..end] == expected,
            "lua/tcpshut.lua's event table or Info tag codes differ from Event::ALL and info_tag(); replace its block with:\n{expected}"
        );
    }

    #[test]
    fn native_plugin_event_table_is_generated_from_the_engine() {
        let source = include_str!("../../../wireshark/native/tcpshut.c");
        let begin = source.find(C_EVENT_TABLE_BEGIN).expect("BEGIN line");
        let end = source.find(C_EVENT_TABLE_END).expect("END line") + C_EVENT_TABLE_END.len();
        let expected = c_event_table();
        assert!(
            source[begin..end] == expected,
            "wireshark/native/tcpshut.c's event table differs from Event::ALL; replace its block with:\n{expected}"
        );
    }

    #[test]
    fn init_lua_lets_root_run_plugins_only_when_it_says_true() {
        assert!(init_lua_allows_root(
            "-- comment\nrun_user_scripts_when_superuser = true\n"
        ));
        assert!(init_lua_allows_root(
            "  run_user_scripts_when_superuser=true -- yes\n"
        ));
        assert!(!init_lua_allows_root(
            "run_user_scripts_when_superuser = false\n"
        ));
        assert!(!init_lua_allows_root(
            "-- run_user_scripts_when_superuser = true\n"
        ));
        assert!(!init_lua_allows_root(
            "run_user_scripts_when_superuser = true_or_not\n"
        ));
        assert!(!init_lua_allows_root(""));
    }

    #[test]
    fn init_lua_folders_from_tshark_g_folders() {
        let text = "Temp:\t/tmp\nGlobal configuration:\t/usr/share/wireshark\n\
                    Global Lua Plugins:  \t/usr/lib/x86_64-linux-gnu/wireshark/plugins\n\
                    Personal Lua Plugins:\t/root/.local/lib/wireshark/plugins\n";
        assert_eq!(
            init_lua_folders(text),
            vec![
                PathBuf::from("/usr/share/wireshark"),
                PathBuf::from("/usr/lib/x86_64-linux-gnu/wireshark/plugins")
            ]
        );
    }

    #[test]
    fn plugin_in_legacy_folder_counts_as_installed() {
        let home = tempfile::tempdir().unwrap();
        let env = unix_env(home.path());
        let legacy = home.path().join(".config/wireshark/plugins/tcpshut.lua");
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, PLUGIN_LUA).unwrap();
        assert_eq!(env.installed_plugin(), Some(legacy));
    }
}
