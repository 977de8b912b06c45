//! The examples: every one in `examples/` builds and runs to a clean
//! exit, and the two seed examples as tests.

#[path = "../support/mod.rs"]
mod support;

mod run;
mod seeds;
