//! The folders `tcpshut wireshark install` writes into: Wireshark runs
//! plugins from the plugin folders (the Lua plugin, and the C plugin of
//! `install --native`) and reads the `tcpshut` profile from its folder, so
//! install writes there only when every folder from `$HOME` (or, for a
//! configuration folder elsewhere, from that folder) down to the one it
//! writes into is the user's alone and none on the way (above `$HOME`,
//! behind a link) lets another user replace it, checked before anything is
//! created (the project's rule: never load or run code from a path another
//! user can write). Every folder goes through [`code_folder`] or
//! [`profile_folder`]; the native build's temporary folder, and the one
//! `wireshark open` writes its private copy of the Lua plugin into,
//! through [`safe_temporary_folder`].

use super::Env;
use crate::messages::shown;
use crate::output::Batch;
use std::path::Path;

/// What Wireshark does with what is installed below a folder, as a
/// refusal says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Plugins,
    Profile,
}

// Only the Unix checks refuse (Windows has no owner check here).
#[cfg_attr(not(unix), allow(dead_code))]
impl Use {
    fn reason(self) -> &'static str {
        match self {
            Use::Plugins => "Wireshark runs plugins from below it",
            Use::Profile => "Wireshark reads the tcpshut profile from below it",
        }
    }
}

/// Checks that `dir`, a folder Wireshark runs plugins from, and every
/// existing folder from `$HOME` down to it are the user's alone; with
/// `made`, then creates the missing ones ([`safe_folders`]) for that
/// batch, which removes them unless its files are put in place. On Windows, where the plugin folders are under
/// `%APPDATA%` and Wireshark does not check owners, only creates them.
pub fn code_folder(env: &Env, dir: &Path, made: Option<&mut Batch>) -> anyhow::Result<()> {
    checked_folder(env, dir, Use::Plugins, made)
}

/// [`code_folder`] for the `tcpshut` profile's folder, which may lie
/// outside `$HOME` (`$WIRESHARK_CONFIG_DIR`, `$XDG_CONFIG_HOME`): then the
/// folders from Wireshark's configuration folder down must be the user's
/// alone, and those above it must let nobody else replace it.
pub fn profile_folder(env: &Env, dir: &Path, made: Option<&mut Batch>) -> anyhow::Result<()> {
    checked_folder(env, dir, Use::Profile, made)
}

fn checked_folder(
    env: &Env,
    dir: &Path,
    usage: Use,
    made: Option<&mut Batch>,
) -> anyhow::Result<()> {
    if cfg!(unix) {
        let home = env.home()?;
        let top = if dir.starts_with(&home) {
            home
        } else {
            env.config_dir()?
        };
        return safe_folders(&top, dir, usage, made);
    }
    if let Some(made) = made {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        for folder in missing.into_iter().rev() {
            made.create_folder(folder, 0o755)
                .map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", shown(folder)))?;
        }
    }
    Ok(())
}

/// The user this process acts as (its effective uid): std has no call for
/// it, so libc's, on every Unix.
#[cfg(unix)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether `dir` is the user's alone: a folder owned by this user, and
/// writable by neither the group nor others.
#[cfg(unix)]
fn private_to_user(dir: &Path, usage: Use) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot check the folder: {e}", shown(dir)))?;
    if !meta.is_dir() {
        let below = match usage {
            Use::Plugins => "Wireshark's plugins go below it",
            Use::Profile => "the tcpshut profile goes below it",
        };
        anyhow::bail!(
            "{}: not a folder; nothing was installed ({below})",
            shown(dir)
        );
    }
    let uid = effective_uid();
    if meta.uid() != uid || meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{}: not owned by you or writable by others; nothing was installed ({})",
            shown(dir),
            usage.reason()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_to_user(_dir: &Path, _usage: Use) -> anyhow::Result<()> {
    Ok(())
}

/// What tcpshut would do below a temporary folder, as its refusal says
/// what was therefore not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporary {
    /// `install --native` builds the plugin there (and installs it).
    Build,
    /// `wireshark open` writes its private copy of the Lua plugin there,
    /// which Wireshark then runs.
    OpenScript,
}

/// The end of a refusal of a folder above the user's own: what was not
/// done, and why.
const ABOVE_INSTALL: &str = "nothing was installed \
     (another user could replace what tcpshut builds or installs below it)";

// Only the Unix checks refuse (Windows has no owner check here).
#[cfg_attr(not(unix), allow(dead_code))]
impl Temporary {
    fn refusal(self) -> &'static str {
        match self {
            Temporary::Build => ABOVE_INSTALL,
            Temporary::OpenScript => {
                "the plugin was not written there and Wireshark was not started \
                 (another user could replace the plugin's copy below it before Wireshark runs it)"
            }
        }
    }
}

/// Whether `dir`, a folder above the user's own (`/`, `/home`, `/tmp`),
/// leaves what the user has below it alone: owned by root or the user, and
/// writable by nobody else, or else sticky (`/tmp`: nobody else can
/// rename or remove what the user made there). `refusal` ends the error:
/// what was not done, and why.
#[cfg(unix)]
fn safe_above(dir: &Path, refusal: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot check the folder: {e}", shown(dir)))?;
    let uid = effective_uid();
    let sticky = meta.mode() & 0o1000 != 0;
    if (meta.uid() != uid && meta.uid() != 0) || (meta.mode() & 0o022 != 0 && !sticky) {
        anyhow::bail!(
            "{}: not owned by you or root, or writable by others; {refusal}",
            shown(dir)
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn safe_above(_dir: &Path, _refusal: &str) -> anyhow::Result<()> {
    Ok(())
}

/// Checks the real path (links resolved) of `deepest`, an existing folder
/// on the way from `home` to the plugin folder (or the folder `home` is
/// to be made in): the folders from `/` down to `home`'s real path must be
/// [`safe_above`], and those below it [`private_to_user`]. A link on the
/// way (`~/.local` to a shared disk) is thereby judged by where it leads.
/// `refusal` ends the error for a folder above `home`.
fn real_path_is_safe(
    home: Option<(&Path, Use)>,
    deepest: &Path,
    refusal: &str,
) -> anyhow::Result<()> {
    let real = std::fs::canonicalize(deepest)
        .map_err(|e| anyhow::anyhow!("{}: cannot check the folder: {e}", shown(deepest)))?;
    let real_home = home.and_then(|(home, usage)| Some((std::fs::canonicalize(home).ok()?, usage)));
    let mut above: Vec<&Path> = real.ancestors().collect();
    above.reverse();
    for dir in above {
        match &real_home {
            Some((real_home, usage)) if dir.starts_with(real_home) => private_to_user(dir, *usage)?,
            _ => safe_above(dir, refusal)?,
        }
    }
    Ok(())
}

/// Checks that `dir` (the temporary folder the native plugin is built
/// in, or `wireshark open` writes its private copy of the plugin into)
/// and every folder above its real path are [`safe_above`]: a private
/// folder made there cannot be replaced by another user's (with their
/// Makefile, or their Lua) between its making and its use.
pub fn safe_temporary_folder(dir: &Path, usage: Temporary) -> anyhow::Result<()> {
    real_path_is_safe(None, dir, usage.refusal())
}

/// Checks every existing folder from `home` down to `dest` (each must be
/// [`private_to_user`]), top down, and the real path they lead to
/// ([`real_path_is_safe`]: the folders above `home` too), before any is
/// created; with `made`, then creates the missing ones (mode 0755) one at
/// a time for that batch ([`Batch::create_folder`]: removed unless its
/// files are put in place, also on a signal), each checked once made.
/// `dest` must lie under `home`.
fn safe_folders(
    home: &Path,
    dest: &Path,
    usage: Use,
    made: Option<&mut Batch>,
) -> anyhow::Result<()> {
    let below = dest.strip_prefix(home).map_err(|_| {
        anyhow::anyhow!(
            "{}: the folder is not under HOME or the configuration folder ({})",
            shown(dest),
            shown(home)
        )
    })?;
    let mut chain = vec![home.to_path_buf()];
    for part in below.components() {
        chain.push(chain[chain.len() - 1].join(part));
    }
    let missing = chain
        .iter()
        .position(|d| std::fs::symlink_metadata(d).is_err())
        .unwrap_or(chain.len());
    let deepest = match missing {
        // HOME itself is missing: the folder it is to be made in
        0 => home.parent().unwrap_or(home),
        _ => &chain[missing - 1],
    };
    real_path_is_safe(Some((home, usage)), deepest, ABOVE_INSTALL)?;
    for dir in &chain[..missing] {
        private_to_user(dir, usage)?;
    }
    if let Some(made) = made {
        for dir in &chain[missing..] {
            made.create_folder(dir, 0o755)
                .map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", shown(dir)))?;
            private_to_user(dir, usage)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`safe_folders`] making the missing folders for good (their batch
    /// committed with no files).
    fn kept_folders(home: &Path, dest: &Path, usage: Use) -> anyhow::Result<()> {
        let mut batch = Batch::default();
        safe_folders(home, dest, usage, Some(&mut batch))?;
        batch.commit()
    }

    #[cfg(unix)]
    #[test]
    fn folders_are_checked_before_any_is_created() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let dest = dest_under(home.path());
        kept_folders(home.path(), &dest, Use::Plugins).unwrap();
        assert!(dest.is_dir());
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o022, 0, "{mode:o}");

        let home = tempfile::tempdir().unwrap();
        let local = home.path().join(".local");
        std::fs::create_dir(&local).unwrap();
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = safe_folders(
            home.path(),
            &dest_under(home.path()),
            Use::Plugins,
            Some(&mut Batch::default()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not owned by you"), "{err}");
        assert!(!local.join("lib").exists(), "created below a shared folder");
        assert!(safe_folders(home.path(), Path::new("/elsewhere"), Use::Plugins, None).is_err());

        // a file on the way: said as such, not as a folder of another user
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".local"), "").unwrap();
        let err = safe_folders(
            home.path(),
            &dest_under(home.path()),
            Use::Plugins,
            Some(&mut Batch::default()),
        )
        .unwrap_err();
        assert!(err.to_string().contains(".local: not a folder"), "{err}");
    }

    /// The folders above HOME, and a link on the way, are judged too: a
    /// HOME in a folder anyone can write (not sticky) is refused, one in a
    /// sticky folder (`/tmp`) is not, and `~/.local` as a link into a folder
    /// anyone can write is refused, naming that folder.
    #[cfg(unix)]
    #[test]
    fn folders_above_home_and_behind_links_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |dir: &Path, mode: u32| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let top = tempfile::tempdir().unwrap();
        let shared = top.path().join("shared");
        let home = shared.join("home");
        std::fs::create_dir_all(&home).unwrap();
        mode(&shared, 0o777);
        let err = kept_folders(&home, &dest_under(&home), Use::Plugins).unwrap_err();
        let real_shared = std::fs::canonicalize(&shared).unwrap();
        assert!(
            err.to_string().starts_with(&format!(
                "{}: not owned by you or root",
                real_shared.display()
            )),
            "{err}"
        );
        assert!(
            !home.join(".local").exists(),
            "created below a shared folder"
        );
        mode(&shared, 0o1777);
        kept_folders(&home, &dest_under(&home), Use::Plugins).unwrap();

        let home = top.path().join("home2");
        std::fs::create_dir(&home).unwrap();
        let elsewhere = top.path().join("open");
        std::fs::create_dir_all(elsewhere.join("local")).unwrap();
        mode(&elsewhere, 0o777);
        std::os::unix::fs::symlink(elsewhere.join("local"), home.join(".local")).unwrap();
        let err = kept_folders(&home, &dest_under(&home), Use::Plugins).unwrap_err();
        let real_elsewhere = std::fs::canonicalize(&elsewhere).unwrap();
        assert!(
            err.to_string().starts_with(&format!(
                "{}: not owned by you or root",
                real_elsewhere.display()
            )),
            "{err}"
        );
        assert!(!elsewhere.join("local/lib").exists());
        mode(&elsewhere, 0o755);
        kept_folders(&home, &dest_under(&home), Use::Plugins).unwrap();
        assert!(elsewhere
            .join("local/lib/wireshark/plugins/4.0/epan")
            .is_dir());
    }

    /// A temporary folder anyone can write (not sticky) is no place to
    /// build in; a sticky one (`/tmp`) or a private one is.
    #[cfg(unix)]
    #[test]
    fn build_folders_go_only_where_no_one_else_can_replace_them() {
        use std::os::unix::fs::PermissionsExt;
        let top = tempfile::tempdir().unwrap();
        let tmp = top.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        safe_temporary_folder(&tmp, Temporary::Build).unwrap();
        for (mode, safe) in [(0o777, false), (0o1777, true), (0o775, false)] {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                safe_temporary_folder(&tmp, Temporary::Build).is_ok(),
                safe,
                "{mode:o}"
            );
        }
    }

    #[cfg(unix)]
    fn dest_under(home: &Path) -> std::path::PathBuf {
        home.join(".local/lib/wireshark/plugins/4.0/epan")
    }
}
