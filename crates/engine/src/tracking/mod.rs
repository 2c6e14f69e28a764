//! The tracking layer: segments grouped into connections ([`flow`],
//! [`connection`]), each endpoint following RFC 9293 states
//! ([`endpoint`]), the teardown events ([`event`]), the verdicts
//! inferred from the evidence ([`inference`]), when things happened
//! ([`timeline`]), and, beside each connection in the flow table, Zeek's
//! model of it ([`zeek`]).

pub mod connection;
pub mod endpoint;
pub mod event;
pub mod flow;
pub mod inference;
pub mod origin;
pub mod timeline;
pub mod zeek;
