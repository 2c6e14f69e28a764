//! The output layer: one row per segment ([`rows`]), per-connection
//! reports ([`reports`]), and the sinks that print them: the CSV sidecar
//! ([`csv`], its fast path isolated in `csv_fast`), the JSON document
//! ([`json`]), the connections sidecar ([`connections_csv`]), the annotated pcapng copy ([`pcapng`]), Zeek's conn.log
//! ([`zeek_log`]) and rows kept in memory ([`memory`]); and the Community
//! ID flow hash ([`community_id`]). `check` (with
//! the `testing` feature) holds the invariants every output obeys.

#[cfg(feature = "testing")]
pub(crate) mod check;
pub(crate) mod community_id;
pub(crate) mod connections_csv;
pub(crate) mod csv;
mod csv_fast;
pub(crate) mod json;
pub(crate) mod memory;
pub(crate) mod pcapng;
pub(crate) mod reports;
pub(crate) mod rows;
pub(crate) mod series;
pub(crate) mod zeek_log;
