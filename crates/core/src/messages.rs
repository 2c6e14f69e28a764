//! What tcpshut says on standard error: one line per problem,
//! `tcpshut: PATH: error`, with each cause said once and file names
//! escaped, so that a hostile name cannot move the cursor, clear the
//! screen or forge a line of its own.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// `path` for a message: printable characters as they are, control
/// characters (ESC, newline, tab, DEL, C1) and bytes that are not UTF-8
/// as `\xNN`-style escapes, and a backslash doubled so escapes are
/// unambiguous.
pub fn shown(path: &Path) -> String {
    escaped(path.as_os_str().as_encoded_bytes())
}

/// Text from outside (a file name, a program's name) made safe to print.
pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// An error and its causes in one line, each cause said once: an error
/// whose text already ends with its cause's (`cannot read: No such file
/// or directory (os error 2)`, whose source is that same OS error) does
/// not repeat it.
pub fn describe(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The `tcpshut: PATH: error` line.
pub fn error_line(path: &Path, err: &anyhow::Error) -> String {
    format!("tcpshut: {}: {}", shown(path), describe(err))
}

/// Prints a line on standard error. A standard error that cannot be
/// written to is ignored: there is nowhere else to say it, and the exit
/// code still tells.
pub fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Whether `err` comes from a reader that went away (`tcpshut … | head`):
/// a normal end for a command's output, not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bad_bytes_are_escaped() {
        assert_eq!(escaped(b"plain name.pcap"), "plain name.pcap");
        assert_eq!(escaped(b"a\x1b[2Jb\nc\td\\e"), "a\\u{1b}[2Jb\\nc\\td\\\\e");
        assert_eq!(escaped(b"caf\xc3\xa9 \xff\xfe"), "café \\xff\\xfe");
        assert_eq!(escaped("\u{9b}x".as_bytes()), "\\u{9b}x");
    }

    #[test]
    fn an_os_error_is_said_once() {
        // The engine's errors show their OS error and also give it as
        // their source.
        let read = tcpshut_engine::CaptureError::Io(io::Error::from_raw_os_error(28));
        let err = anyhow::Error::new(read).context("out.csv");
        let once = describe(&err);
        assert_eq!(once.matches("os error 28").count(), 1, "{once}");
        assert!(once.starts_with("out.csv: cannot read: "), "{once}");
    }
}
