//! The hang guard: every test holds a [`HangGuard`] for as long as its
//! body runs (`let _hang = hang_guard();` first), so that a deadlock
//! becomes a failure naming the test instead of a stuck test run. The
//! bound detects hangs; it measures no speed.
//!
//! One watchdog thread per test binary, started by the first guard,
//! sleeps until the earliest deadline among the guards alive. A guard
//! costs a lock, a push and a removal; the test body runs on the test's
//! own thread. When a deadline passes, the watchdog names the test on
//! stderr and aborts the binary: a hung thread cannot be made to fail,
//! and the run must end.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test (or one wait inside it) may take before it counts as
/// hung. Far above what any test needs. Miri runs code thousands of times
/// slower, hence its larger bound.
pub const HANG_LIMIT: Duration = if cfg!(miri) {
    Duration::from_secs(3600)
} else {
    Duration::from_secs(120)
};

/// Held by a test while it runs: if it is still alive [`HANG_LIMIT`]
/// (or its own limit) after it was made, the watchdog reports the test
/// as hung and aborts the test binary. Dropping it (also by a panic's
/// unwinding) ends the watch.
#[must_use = "the watch ends when the guard is dropped"]
#[derive(Debug)]
pub struct HangGuard {
    id: u64,
}

/// Watches the calling test (named after its thread, as the test harness
/// names it) for [`HANG_LIMIT`].
pub fn hang_guard() -> HangGuard {
    hang_guard_for(&test_name(), HANG_LIMIT)
}

/// A [`HangGuard`] with a bound of its own, for the few runs that are
/// meant to be much longer or much shorter than [`HANG_LIMIT`]; `what`
/// names the failure.
pub fn hang_guard_for(what: &str, limit: Duration) -> HangGuard {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    static START: Once = Once::new();
    START.call_once(|| {
        thread::Builder::new()
            .name("hang-watchdog".to_string())
            .spawn(watch)
            .expect("spawn the hang watchdog");
    });
    let id = NEXT_ID.fetch_add(1, Relaxed);
    watched().push(Watched {
        id,
        what: what.to_string(),
        limit,
        deadline: Instant::now() + limit,
    });
    WATCHDOG.changed.notify_one();
    HangGuard { id }
}

impl Drop for HangGuard {
    fn drop(&mut self) {
        // A later earliest deadline needs no wake-up: the watchdog, woken
        // early, looks again.
        watched().retain(|w| w.id != self.id);
    }
}

/// What the guards alive are named after, for the guard's own tests.
pub fn watched_names() -> Vec<String> {
    watched().iter().map(|w| w.what.clone()).collect()
}

/// The name the test harness gave the calling thread: the test's path,
/// such as `cancel::a_cancel_reaches_every_task`.
pub fn test_name() -> String {
    thread::current().name().unwrap_or("the test").to_string()
}

/// One guard alive.
struct Watched {
    id: u64,
    what: String,
    limit: Duration,
    deadline: Instant,
}

/// The guards alive, and the condition variable the watchdog sleeps on.
struct Watchdog {
    watched: Mutex<Vec<Watched>>,
    changed: Condvar,
}

static WATCHDOG: Watchdog = Watchdog {
    watched: Mutex::new(Vec::new()),
    changed: Condvar::new(),
};

/// The guards alive; a test that panicked while holding the lock leaves
/// the list whole, so poisoning is ignored.
fn watched() -> MutexGuard<'static, Vec<Watched>> {
    WATCHDOG
        .watched
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The watchdog thread: sleeps until the earliest deadline (or until a
/// guard is made), and aborts the process once a deadline has passed.
fn watch() {
    let mut watched = watched();
    loop {
        let now = Instant::now();
        watched = match watched.iter().min_by_key(|w| w.deadline) {
            None => WATCHDOG
                .changed
                .wait(watched)
                .unwrap_or_else(PoisonError::into_inner),
            Some(w) if w.deadline <= now => {
                // Straight to the process's stderr: `eprintln!` here would
                // go to the output the harness captures for the test that
                // started this thread, which the abort throws away.
                let _ = writeln!(
                    io::stderr(),
                    "\n{} did not finish within {:?}: it hangs; aborting the test binary",
                    w.what,
                    w.limit
                );
                std::process::abort();
            }
            Some(w) => {
                let wait = w.deadline - now;
                WATCHDOG
                    .changed
                    .wait_timeout(watched, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}

/// Spins (yielding the OS thread) until `cond` holds; fails after
/// [`HANG_LIMIT`]. For state that has no event to wait for, such as a
/// runtime's counts settling after a worker's last release.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < HANG_LIMIT,
            "timed out after {HANG_LIMIT:?} waiting for {what}"
        );
        thread::yield_now();
    }
}
