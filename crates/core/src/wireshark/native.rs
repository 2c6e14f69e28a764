//! `tcpshut wireshark install --native`: builds the native (C) plugin from
//! the source embedded in the binary against the installed Wireshark's
//! headers, and installs it into the personal plugin folder
//! (`~/.local/lib/wireshark/plugins/MAJOR.MINOR/epan/tcpshut.so`).
//!
//! Wireshark runs code from that folder, so every folder from `$HOME` down
//! to it must be the user's and writable by nobody else, checked before
//! anything is created ([`super::folders`]); the build happens in a fresh private folder
//! (`mkdtemp`, 0700) removed afterwards. When the build is not possible
//! (no compiler, make, pkg-config or headers, or headers of another
//! release than the installed tshark), [`NativeError::Unavailable`] says
//! what to install and the caller installs the Lua plugin alone.

use super::Env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The plugin's C source, embedded in the binary.
pub const NATIVE_SOURCE: &str = include_str!("../../../../wireshark/native/tcpshut.c");
/// Its Makefile (flags, `-Werror` included), embedded alike.
pub const NATIVE_MAKEFILE: &str = include_str!("../../../../wireshark/native/Makefile");
/// File name of the native plugin in its folder.
pub const NATIVE_FILE: &str = "tcpshut.so";

/// Why the native plugin was not installed.
#[derive(Debug)]
pub enum NativeError {
    /// It cannot be built here: what is missing and what to install.
    Unavailable(String),
    /// A folder on the way from `$HOME` is not the user's alone, or a
    /// write failed: nothing is installed.
    Refused(anyhow::Error),
}

impl From<anyhow::Error> for NativeError {
    fn from(err: anyhow::Error) -> NativeError {
        NativeError::Refused(err)
    }
}

/// The Wireshark release the plugin is built for: `MAJOR.MINOR` of the
/// headers (`pkg-config --modversion wireshark`), which must be that of
/// the installed tshark when there is one (the plugin ABI changes with
/// every minor release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub headers: String,
    pub minor: String,
}

/// `MAJOR.MINOR` of a version (`4.0.17` -> `4.0`).
fn major_minor(version: &str) -> Option<String> {
    let mut parts = version.trim().split('.');
    let major = parts.next().filter(|p| p.parse::<u32>().is_ok())?;
    let minor = parts.next().filter(|p| p.parse::<u32>().is_ok())?;
    Some(format!("{major}.{minor}"))
}

/// The version on `tshark --version`'s first line
/// (`TShark (Wireshark) 4.0.17 (Git v4.0.17 ...)` -> `4.0.17`).
fn tshark_version(text: &str) -> Option<&str> {
    text.lines()
        .next()?
        .strip_prefix("TShark (Wireshark) ")?
        .split_whitespace()
        .next()
}

/// The C compiler make will run: `$CC` (its first word) or `cc`.
fn compiler() -> String {
    std::env::var("CC")
        .ok()
        .and_then(|cc| cc.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "cc".to_string())
}

/// Runs `program args` and returns its standard output, if it ran and succeeded.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks that the native plugin can be built here and for which release:
/// the tools are on PATH, pkg-config finds the headers, and their release
/// is the installed tshark's.
pub fn release() -> Result<Release, NativeError> {
    let unavailable = |what: String| Err(NativeError::Unavailable(what));
    let cc = compiler();
    let apt = "on Debian/Ubuntu: apt install";
    for (program, package) in [
        (cc.as_str(), "gcc"),
        ("make", "make"),
        ("pkg-config", "pkg-config"),
    ] {
        if super::find_program(Path::new(program)).is_none() {
            let what = if program == cc { "C compiler" } else { program };
            return unavailable(format!(
                "no {what} ({program} is not on PATH; {apt} {package})"
            ));
        }
    }
    let Some(headers) = output_of("pkg-config", &["--modversion", "wireshark"]) else {
        return unavailable(format!(
            "no Wireshark headers (pkg-config finds no wireshark; {apt} libwireshark-dev)"
        ));
    };
    let headers = headers.trim().to_string();
    let Some(minor) = major_minor(&headers) else {
        return unavailable(format!(
            "pkg-config gives an unknown Wireshark version `{headers}`"
        ));
    };
    if let Some(text) = output_of("tshark", &["--version"]) {
        if let Some(installed) = tshark_version(&text) {
            if major_minor(installed).as_deref() != Some(minor.as_str()) {
                return unavailable(format!(
                    "the Wireshark headers are {headers} but tshark is {installed}, and a \
                     plugin loads only in the release it was built for (install the \
                     libwireshark-dev of Wireshark {installed})"
                ));
            }
        }
    }
    Ok(Release { headers, minor })
}

/// The folder the native plugin goes into for `release`.
pub fn native_dir(env: &Env, release: &Release) -> anyhow::Result<PathBuf> {
    Ok(env.plugins_dir()?.join(&release.minor).join("epan"))
}

/// Builds the plugin for `release` from the embedded source in a fresh
/// private folder (removed when done, also on error or a signal, once
/// make and the compilers it runs have ended), with the Makefile's own
/// flags, and returns the built library. The caller has checked the
/// temporary folder with [`super::folders::safe_temporary_folder`].
pub fn build(release: &Release) -> Result<Vec<u8>, NativeError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("tcpshut-native-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let work = crate::output::TemporaryFolder::create(&builder).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot create a private build folder: {e}",
            crate::messages::shown(&std::env::temp_dir())
        )
    })?;
    let src = work.path();
    for (name, text) in [("tcpshut.c", NATIVE_SOURCE), ("Makefile", NATIVE_MAKEFILE)] {
        std::fs::write(src.join(name), text).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot write: {e}",
                crate::messages::shown(&src.join(name))
            )
        })?;
    }
    let out = src.join("out");
    // In a process group of its own, ended with make's children on a
    // signal before the folder is removed (crate::child_group).
    let made = crate::child_group::output(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(src)
            .arg(format!("OUT={}", out.display()))
            // the installed Wireshark's headers, not another release's
            .env_remove("WS_VERSION")
            .env_remove("WS_CFLAGS")
            .env_remove("WS_LIBS")
            .stdin(Stdio::null()),
    )
    .map_err(|e| NativeError::Unavailable(format!("cannot run make: {e}")))?;
    if !made.status.success() {
        let errors = String::from_utf8_lossy(&made.stderr);
        let errors: Vec<&str> = errors.lines().filter(|l| !l.trim().is_empty()).collect();
        let last = &errors[errors.len().saturating_sub(5)..];
        return Err(NativeError::Unavailable(format!(
            "building against the Wireshark {} headers failed ({}): {}",
            release.headers,
            made.status,
            last.join(" | ")
        )));
    }
    let so = out.join(&release.minor).join(NATIVE_FILE);
    std::fs::read(&so).map_err(|e| {
        NativeError::Unavailable(format!(
            "the build made no {}: {e}",
            crate::messages::shown(&so)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_pkg_config_and_tshark() {
        assert_eq!(major_minor("4.0.17\n").as_deref(), Some("4.0"));
        assert_eq!(major_minor("4.6").as_deref(), Some("4.6"));
        assert_eq!(major_minor("4"), None);
        assert_eq!(major_minor("x.y.z"), None);
        assert_eq!(
            tshark_version(
                "TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as 4.0.17-0+deb12u3).\n\nCopyright"
            ),
            Some("4.0.17")
        );
        assert_eq!(tshark_version("Running as user \"root\"\n"), None);
    }
}
