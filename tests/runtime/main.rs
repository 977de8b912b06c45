//! The runtime and its time: the builder and `block_on`, shutdown, the
//! paused clock and deadlines, the budget of a poll, the blocking pool,
//! wake-ups behind a busy worker and the I/O driver. One test binary, a
//! module per theme.

#[path = "../support/reliability.rs"]
mod reliability;
#[path = "../support/mod.rs"]
mod support;

mod basics;
mod budget;
mod deadlines;
mod io_driver;
mod shutdown;
mod spawn_blocking;
mod virtual_clock;
mod woken_behind_busy;
