//! The tracking layer: segments grouped into connections ([`flow`],
//! [`connection`]), each endpoint following RFC 9293 states
//! ([`endpoint`]), the teardown events ([`event`]), the verdicts
//! inferred from the evidence ([`inference`]), and when things happened
//! ([`timeline`]).

pub mod connection;
pub mod endpoint;
pub mod event;
pub mod flow;
pub mod inference;
pub mod timeline;
