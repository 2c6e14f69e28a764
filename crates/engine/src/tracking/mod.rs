//! The tracking layer: segments grouped into connections ([`flow`],
//! [`connection`]), each endpoint following RFC 9293 states
//! ([`endpoint`]), the teardown events ([`event`]), and the verdicts
//! inferred from the evidence ([`inference`]).

pub mod connection;
pub mod endpoint;
pub mod event;
pub mod flow;
pub mod inference;
