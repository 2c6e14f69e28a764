//! A FIFO that a thread fills, as a live capture tool feeds one
//! (`tcpdump -w fifo`): shared by the engine's tests and the CLI's
//! (`crates/core/tests/integration`, which includes this file by path).

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// What `read` makes of a FIFO through which a thread writes `bytes`; the
/// FIFO and its folder are gone afterwards.
pub fn read_through_fifo<T>(bytes: Vec<u8>, read: impl FnOnce(&Path) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("live.pcap");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "mkfifo (coreutils) is required"
    );
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    let read = read(&fifo);
    writer.join().unwrap();
    read
}
