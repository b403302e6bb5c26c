//! Benchmarks of the core message path.
fn main() {}
