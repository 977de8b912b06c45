//! The hang guard: every test runs its body under [`hang_guard`], so that
//! a deadlock becomes a failure instead of a stuck test run. The bound
//! detects hangs; it measures no speed.

use std::sync::mpsc;
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

/// Runs `f` on a thread of its own, named after the calling thread (the
/// test), and fails the test if `f` has not returned within
/// [`HANG_LIMIT`]. A panic in `f` is resumed on the caller.
pub fn hang_guard<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let name = thread::current().name().unwrap_or("the test").to_string();
    hang_guard_for(&name, HANG_LIMIT, f)
}

/// [`hang_guard`] with a bound of its own, for the few runs that are
/// meant to be much longer or much shorter than [`HANG_LIMIT`]; `what`
/// names the guarded thread and the failure.
pub fn hang_guard_for<T, F>(what: &str, limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(());
            out
        })
        .expect("spawn a guarded thread");
    match rx.recv_timeout(limit) {
        Ok(()) => match handle.join().expect("the guarded thread catches panics") {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(_) => panic!("{what} did not finish within {limit:?}: it hangs"),
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

/// The name the test harness gave the calling thread: the test's path,
/// such as `cancel::a_cancel_reaches_every_task`.
pub fn test_name() -> String {
    thread::current().name().unwrap_or("the test").to_string()
}
