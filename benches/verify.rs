//! Benchmarks (filled in by the verify module work).
fn main() {}
