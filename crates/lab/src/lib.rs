//! tcpshut-lab: the seed experiment on a real Linux kernel. Two network
//! namespaces joined by a veth pair (`netns`), a client and a server
//! thread running scripted socket calls in them (`script`), tcpdump
//! capturing the client's veth (`tcpdump`), the scenario table with what
//! each side calls and what the wire must show (`scenarios`), and a reader
//! of the recorded FIN/RST counts, independent of the engine (`wire`).
//!
//! Used by `tcpshut lab` (crates/core) and by `tcpshut-record`
//! (crates/record), which records the test captures with it.

pub mod cleanup;
pub mod experiment;
pub mod netns;
pub mod router;
pub mod scenarios;
pub mod script;
pub mod script_file;
pub mod show;
pub mod tcpdump;
pub mod verify;
pub mod wire;
