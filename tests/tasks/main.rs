//! Tasks and their joining: `JoinHandle`, panics in tasks, `JoinSet`,
//! `race_ok` and supervision. One test binary, a module per theme.

#[path = "../support/mod.rs"]
mod support;

mod join;
mod join_set;
mod panic;
mod race_ok;
mod supervision;
