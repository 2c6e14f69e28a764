//! The wire layer: capture files into frames ([`capture`]), frames into
//! TCP segments ([`link`], [`segment`]), and sequence arithmetic
//! ([`seq`]); [`source`] says where the bytes come from (a file or a
//! stream read once), [`compressed`] decompresses them. Nothing here
//! knows about connections.

pub mod capture;
pub mod compressed;
pub mod link;
pub mod segment;
pub mod seq;
pub mod source;
