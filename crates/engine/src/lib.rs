//! tcpshut-engine: reads pcap/pcapng captures and explains, segment by
//! segment, how every TCP connection was torn down and which socket calls
//! each application most likely made.
//!
//! Data flows one way: [`capture`] yields frames, [`link`] decodes them
//! into [`segment::Segment`]s, [`flow`] groups segments into connections,
//! [`endpoint`] tracks each side's RFC 9293 state, [`inference`] turns the
//! evidence into verdicts, [`annotate`] produces one row per segment, and
//! [`writer`] prints rows as CSV or JSON.

pub mod capture;
pub mod link;
pub mod segment;
pub mod seq;
