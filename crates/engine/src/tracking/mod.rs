//! The tracking layer: segments grouped into connections ([`flow`],
//! [`connection`]), each endpoint following RFC 9293 states
//! ([`endpoint`]), the teardown events ([`event`]), the verdicts
//! inferred from the evidence ([`inference`]), when things happened
//! ([`timeline`]), resets after a silence ([`idle`]), and, beside each connection in the flow table, Zeek's
//! model of it ([`zeek`]).

pub(crate) mod connection;
pub(crate) mod endpoint;
pub(crate) mod event;
pub(crate) mod flow;
pub(crate) mod idle;
pub(crate) mod inference;
pub(crate) mod origin;
pub(crate) mod timeline;
pub(crate) mod zeek;
