//! The wire layer: capture files into frames ([`capture`]), frames into
//! TCP segments ([`link`], [`segment`]), and sequence arithmetic
//! ([`seq`]); [`tunnel`] is what a segment was encapsulated in; [`source`] says where the bytes come from (a file or a
//! stream read once), [`compressed`] decompresses them. Nothing here
//! knows about connections.

pub(crate) mod capture;
pub(crate) mod compressed;
pub(crate) mod link;
pub(crate) mod segment;
pub(crate) mod seq;
pub(crate) mod series;
pub(crate) mod source;
pub(crate) mod tunnel;
