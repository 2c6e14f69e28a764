//! The pipeline: one pass (or two) over a capture ([`analysis`]), rows
//! waiting for their connection's verdict ([`pending`]).

pub mod analysis;
pub mod pending;
