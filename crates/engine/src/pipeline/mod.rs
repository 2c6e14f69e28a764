//! The pipeline: a [`tracker`] takes each frame to its segment's facts
//! and concludes connections; a [`schedule`] (one pass, or two) turns
//! facts into rows for [`sinks`], rows waiting for their connection's
//! verdict in [`pending`] in one pass (beyond a budget, on a [`spill`]
//! file); [`summary`] is what a run found.

pub(crate) mod pending;
pub(crate) mod schedule;
pub(crate) mod sinks;
pub(crate) mod spill;
pub(crate) mod summary;
pub(crate) mod tracker;
