//! The output layer: one row per segment ([`rows`]), per-connection
//! reports ([`reports`]), and the sinks that print them: the CSV sidecar
//! ([`csv`], its fast path isolated in `csv_fast`), the JSON document
//! ([`json`]), the annotated pcapng copy ([`pcapng`]), Zeek's conn.log
//! ([`zeek_log`]) and rows kept in memory ([`memory`]); and the Community
//! ID flow hash ([`community_id`]). `check` (with
//! the `testing` feature) holds the invariants every output obeys.

#[cfg(feature = "testing")]
pub mod check;
pub mod community_id;
pub mod csv;
mod csv_fast;
pub mod json;
pub mod memory;
pub mod pcapng;
pub mod reports;
pub mod rows;
pub mod zeek_log;
