//! The pipeline: a [`tracker`] takes each frame to its segment's facts
//! and concludes connections; a [`schedule`] (one pass, or two) turns
//! facts into rows for [`sinks`], rows waiting for their connection's
//! verdict in [`pending`] in one pass; [`summary`] is what a run found.

pub mod pending;
pub mod schedule;
pub mod sinks;
pub mod summary;
pub mod tracker;
