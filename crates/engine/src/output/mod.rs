//! The output layer: one row per segment ([`annotate`]), per-connection
//! reports ([`report`], with Zeek's view), Zeek's conn.log ([`zeek_log`]),
//! the Community ID flow hash
//! ([`community_id`]), and the sinks that print
//! them ([`writer`]). [`check`] holds the invariants every output obeys.

pub mod annotate;
pub mod check;
pub mod community_id;
pub mod report;
pub mod writer;
pub mod zeek_log;
