//! Layers every message transport can use.

pub mod dedup;
mod extension;
pub mod timeout;

pub use extension::AddExtension;
