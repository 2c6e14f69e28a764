//! The folders Wireshark runs plugins from: `tcpshut wireshark install`
//! (the Lua plugin) and `install --native` (the C plugin) write code there
//! only when every folder from `$HOME` down to the plugin's is the user's
//! alone, checked before anything is created (the project's rule: never
//! load or run code from a path another user can write). Both commands go
//! through [`code_folder`].

use super::Env;
use crate::messages::shown;
use std::path::Path;

/// Checks that `dir`, a folder Wireshark runs plugins from, and every
/// existing folder from `$HOME` down to it are the user's alone; with
/// `create`, then creates the missing ones ([`safe_folders`]). On Windows,
/// where the plugin folders are under `%APPDATA%` and Wireshark does not
/// check owners, only creates them.
pub fn code_folder(env: &Env, dir: &Path, create: bool) -> anyhow::Result<()> {
    if cfg!(unix) {
        return safe_folders(&env.home()?, dir, create);
    }
    if create {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", shown(dir)))?;
    }
    Ok(())
}

/// Whether `dir` is the user's alone: a folder owned by this user, and
/// writable by neither the group nor others.
#[cfg(unix)]
fn private_to_user(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot check the folder: {e}", shown(dir)))?;
    if !meta.is_dir() {
        anyhow::bail!(
            "{}: not a folder; nothing was installed (Wireshark's plugins go below it)",
            shown(dir)
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid || meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{}: not owned by you or writable by others; nothing was installed (Wireshark \
             runs plugins from below it)",
            shown(dir)
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_to_user(_dir: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Checks every existing folder from `home` down to `dest` (each must be
/// [`private_to_user`]), top down, before any is created; with `create`,
/// then creates the missing ones (mode 0755) one at a time, each checked
/// once made. `dest` must lie under `home`.
pub fn safe_folders(home: &Path, dest: &Path, create: bool) -> anyhow::Result<()> {
    let below = dest.strip_prefix(home).map_err(|_| {
        anyhow::anyhow!(
            "{}: the plugin folder is not under HOME ({})",
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
    for dir in &chain[..missing] {
        private_to_user(dir)?;
    }
    if create {
        for dir in &chain[missing..] {
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o755);
            }
            builder
                .create(dir)
                .map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", shown(dir)))?;
            private_to_user(dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn folders_are_checked_before_any_is_created() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let dest = dest_under(home.path());
        safe_folders(home.path(), &dest, true).unwrap();
        assert!(dest.is_dir());
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o022, 0, "{mode:o}");

        let home = tempfile::tempdir().unwrap();
        let local = home.path().join(".local");
        std::fs::create_dir(&local).unwrap();
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = safe_folders(home.path(), &dest_under(home.path()), true).unwrap_err();
        assert!(err.to_string().contains("not owned by you"), "{err}");
        assert!(!local.join("lib").exists(), "created below a shared folder");
        assert!(safe_folders(home.path(), Path::new("/elsewhere"), false).is_err());

        // a file on the way: said as such, not as a folder of another user
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".local"), "").unwrap();
        let err = safe_folders(home.path(), &dest_under(home.path()), true).unwrap_err();
        assert!(err.to_string().contains(".local: not a folder"), "{err}");
    }

    #[cfg(unix)]
    fn dest_under(home: &Path) -> std::path::PathBuf {
        home.join(".local/lib/wireshark/plugins/4.0/epan")
    }
}
