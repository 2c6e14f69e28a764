//! One test binary for the CLI and its Wireshark plugin (ripgrep style):
//! each module covers one area, sharing the helpers in `util`.

mod cli;
mod field;
// The engine's tests' FIFO, fed by a thread: one helper for both crates.
#[path = "../../../engine/tests/common/fifo.rs"]
mod fifo;
#[cfg(target_os = "linux")]
mod lab;
mod reliability;
mod report;
mod series;
mod tunnels;
mod util;
mod wireshark;
mod zeek_log;
