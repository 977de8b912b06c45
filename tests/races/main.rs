//! Races and stress, from the reliability suites: cancels racing the
//! rest of the runtime, and the runtime under load. One test binary, a
//! module per suite.

#[path = "../support/reliability.rs"]
mod reliability;
#[path = "../support/mod.rs"]
mod support;

mod scope_races;
mod stress;
