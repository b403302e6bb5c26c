//! Layers every message transport can use.

pub mod dedup;
pub mod timeout;
