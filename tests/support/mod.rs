//! What the integration tests share, one name for each idea:
//!
//! - `hang`: [`hang_guard`] (every test holds one while its body runs,
//!   `let _hang = hang_guard();`, bounded by [`HANG_LIMIT`]; one watchdog
//!   thread per test binary names a hung test and ends the binary),
//!   [`test_name`] and [`wait_until`];
//! - `runtime`: [`runtime`] (a real or paused [`Clock`], a worker count,
//!   workers named after the test), [`on_workers`], and checks on what a
//!   runtime still holds ([`assert_clean`], [`cancel_reason`], ...);
//! - `probe`: counting what happens to futures: [`Counter`] (with a guard
//!   that counts a drop) and [`Probes`] (futures that record their polls,
//!   late polls, completions and drops);
//! - `sync`: staging a test: [`Countdown`], [`arrive_and_park`],
//!   [`first_pending`], and [`Slot`] and [`Log`] to carry values out of a
//!   scope;
//! - `time`: [`ms`], [`secs`], [`timed`];
//! - `panics`: [`expect_panic`], [`panic_message`], [`PanicOnDrop`];
//! - `process`: [`run_bounded`], a child process with a time limit.
//!
//! The tests are a few binaries, one per theme, each a directory with a
//! `main.rs` that declares this module (`#[path = "../support/mod.rs"]`)
//! and one module per suite: `scope`, `runtime`, `tasks`, `faults`,
//! `races`, `servers`, `views` and `examples`. Two stay single files,
//! binaries of their own: `leaks.rs`, whose counting global allocator
//! sees every thread of the process (no other test may run beside it),
//! and `borrowed.rs`, the borrowing scopes, which the sanitizers run
//! whole. A test is named by its module: `cargo test --test scope
//! cancel::` runs the cancel suite.
//!
//! `reliability.rs` holds what only the reliability suites need (child
//! processes for tests that may abort, a seeded PRNG, `assert_serves`,
//! misbehaving wakers). It is not declared here: the binaries that need
//! it (`faults`, `races`, `runtime`) declare it beside this module, so
//! that the others do not build it.
//!
//! Every test binary uses a part of this module only, hence the
//! allowances for code and re-exports it leaves unused.

#![allow(dead_code, unused_imports)]

mod hang;
mod panics;
mod probe;
mod process;
mod runtime;
mod sync;
mod time;

pub use hang::*;
pub use panics::*;
pub use probe::*;
pub use process::*;
pub use runtime::*;
pub use sync::*;
pub use time::*;
