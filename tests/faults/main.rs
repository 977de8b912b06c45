//! Faults and bad input, from the reliability suites: panics where the
//! runtime must survive them, misuse of the API, and the hang guard the
//! tests run under. One test binary, a module per suite.

#[path = "../support/reliability.rs"]
mod reliability;
#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod faults;
mod hang_guard;
