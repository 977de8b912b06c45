//! Runtimes for tests, and checks on what a runtime still holds.
//!
//! Every test builds its own runtime with [`runtime`] (a real or paused
//! clock, a worker count; workers named after the test), so that its live
//! counts describe that test alone.

use super::hang::wait_until;
use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::{scope, CancelHandle, CancelReason, JoinHandle};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;

/// The clock of a test runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Real time.
    Real,
    /// A paused, auto-advancing virtual clock (`Builder::start_paused`):
    /// long waits take no real time and exactly their virtual time. With
    /// one worker, events due at the same virtual instant also run in a
    /// fixed order.
    Paused,
}

/// A dedicated runtime with `workers` worker threads on `clock`. The
/// workers are named `<thread>-<i>` after the thread that builds the
/// runtime: the test's own, or the hang guard's, which bears the test's
/// name.
pub fn runtime(clock: Clock, workers: usize) -> Runtime {
    let name = thread::current().name().unwrap_or("test").to_string();
    Builder::new()
        .worker_threads(workers)
        .thread_name(name)
        .start_paused(clock == Clock::Paused)
        .build()
        .expect("start a runtime")
}

/// Runs `fut` as a task of `rt` and returns its output. Everything `fut`
/// waits for then wakes a task, and the thread calling this only collects
/// the result.
pub fn on_workers<T, F>(rt: &Runtime, fut: F) -> T
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt.block_on(scope(|s| async move { s.spawn(fut).await }))
        .expect("the root scope is never cancelled")
        .expect("the task is never cancelled")
}

/// Runs `fut` on `rt`; the first time it is `Pending` after `ready` was
/// set, sets `go`. A scope future that is still pending once its body has
/// ended is waiting for its tasks, which `go` then lets finish.
pub fn drive_until_waiting<F: Future>(
    rt: &Runtime,
    fut: F,
    ready: &AtomicBool,
    go: &cancel_scope::sync::Event,
) -> F::Output {
    let mut fut = Box::pin(fut);
    rt.block_on(std::future::poll_fn(|cx| {
        let polled = fut.as_mut().poll(cx);
        if polled.is_pending() && ready.load(SeqCst) {
            go.set();
        }
        polled
    }))
}

/// Asserts that `rt` holds no task, scope or timer any more.
pub fn assert_clean(rt: &Runtime) {
    assert_eq!(rt.live_tasks(), 0, "tasks left behind");
    assert_eq!(rt.live_scopes(), 0, "scopes left behind");
    assert_eq!(rt.pending_timers(), 0, "timers left behind");
}

/// Waits for `rt` to drop the tasks a cancel could not drop at once
/// because they were being polled, then asserts it holds nothing any more.
pub fn wait_clean(rt: &Runtime) {
    wait_until("the runtime to release its tasks and scopes", || {
        rt.live_tasks() == 0 && rt.live_scopes() == 0
    });
    assert_clean(rt);
}

/// The reason a scope was cancelled with, or `None` if it was not. Once
/// the scope is cancelled, `cancelled()` resolves at once, even after the
/// scope has ended.
pub fn reason_of(rt: &Runtime, h: &CancelHandle) -> Option<CancelReason> {
    h.is_cancelled()
        .then(|| rt.block_on(h.cancelled()).reason().clone())
}

/// The reason a task was cancelled with; fails if it finished instead.
/// Waits for the task to end (it usually has, with its scope).
pub fn cancel_reason<T>(handle: JoinHandle<T>) -> CancelReason {
    match futures_lite::future::block_on(handle) {
        Ok(_) => panic!("the task finished instead of being cancelled"),
        Err(c) => c.reason().clone(),
    }
}

/// [`cancel_reason`] of every handle, in order.
pub fn cancel_reasons<T>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> Vec<CancelReason> {
    handles.into_iter().map(cancel_reason).collect()
}
