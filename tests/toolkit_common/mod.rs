//! Helpers shared by the cancellation-toolkit tests: runtimes with a real
//! or a paused (virtual) clock, a hang guard, drop counters, a slot to
//! carry values out of a scope, and a future that reports its first
//! suspension.

#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::{scope, CancelHandle, CancelReason};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

/// How long a test may run before it counts as hung. Far above what any
/// test needs: it turns a deadlock into a failure and measures no speed.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// A runtime with a paused, auto-advancing virtual clock. With one
/// worker, events due at the same virtual instant also run in a fixed
/// order; tests of the clock itself use more.
pub fn paused(workers: usize) -> Runtime {
    Builder::new()
        .worker_threads(workers)
        .thread_name("toolkit-paused")
        .start_paused(true)
        .build()
        .expect("start a paused runtime")
}

/// A runtime on the real clock.
pub fn real(workers: usize) -> Runtime {
    Builder::new()
        .worker_threads(workers)
        .thread_name("toolkit-real")
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

/// Runs `f` on its own thread; fails the test if it has not finished
/// within [`HANG_LIMIT`]. A panic in `f` is resumed here.
pub fn guard<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    support::hang_guard_for("the test", HANG_LIMIT, f)
}

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A shared counter.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, SeqCst);
    }

    /// The current count.
    pub fn get(&self) -> usize {
        self.0.load(SeqCst)
    }

    /// A guard that adds one to this counter when it is dropped.
    pub fn on_drop(&self) -> OnDrop {
        OnDrop(self.clone())
    }
}

/// Adds one to its counter when dropped; move it into a future to count
/// that future's drop.
#[derive(Debug)]
pub struct OnDrop(Counter);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.inc();
    }
}

/// A place to carry a value (a handle, a result) out of a scope.
#[derive(Debug)]
pub struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Arc::new(Mutex::new(None)))
    }
}

impl<T> Slot<T> {
    /// An empty slot.
    pub fn new() -> Slot<T> {
        Slot::default()
    }

    /// Stores `value`, replacing what was there.
    pub fn put(&self, value: T) {
        *self.0.lock().unwrap() = Some(value);
    }

    /// Takes the value out; panics if there is none.
    pub fn take(&self) -> T {
        self.0
            .lock()
            .unwrap()
            .take()
            .expect("the slot should hold a value")
    }

    /// Whether the slot holds a value.
    pub fn is_some(&self) -> bool {
        self.0.lock().unwrap().is_some()
    }
}

/// A shared, ordered log of events (or a bag of values to carry out).
#[derive(Debug)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T> Log<T> {
    /// An empty log.
    pub fn new() -> Log<T> {
        Log::default()
    }

    /// Appends an entry.
    pub fn push(&self, entry: T) {
        self.0.lock().unwrap().push(entry);
    }

    /// Takes every entry out.
    pub fn drain(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Clone> Log<T> {
    /// A copy of the entries so far.
    pub fn entries(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}

/// Wraps a future and sends one message the first time it returns
/// `Pending`: by then it has registered its waker, so whatever it waits
/// for must now wake it rather than be seen at the first poll.
#[derive(Debug)]
pub struct FirstPending<F> {
    inner: Pin<Box<F>>,
    tx: Option<mpsc::Sender<()>>,
}

/// See [`FirstPending`].
pub fn first_pending<F: Future>(fut: F, tx: mpsc::Sender<()>) -> FirstPending<F> {
    FirstPending {
        inner: Box::pin(fut),
        tx: Some(tx),
    }
}

impl<F: Future> Future for FirstPending<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let polled = self.inner.as_mut().poll(cx);
        if polled.is_pending() {
            if let Some(tx) = self.tx.take() {
                let _ = tx.send(());
            }
        }
        polled
    }
}

/// Asserts that `rt` holds no task, scope or timer any more.
pub fn assert_clean(rt: &Runtime) {
    assert_eq!(rt.live_tasks(), 0, "tasks left behind");
    assert_eq!(rt.live_scopes(), 0, "scopes left behind");
    assert_eq!(rt.pending_timers(), 0, "timers left behind");
}

/// The reason a scope was cancelled with, or `None` if it was not. Once
/// the scope is cancelled, `cancelled()` resolves at once, even after the
/// scope has ended.
pub fn reason_of(rt: &Runtime, h: &CancelHandle) -> Option<CancelReason> {
    h.is_cancelled()
        .then(|| rt.block_on(h.cancelled()).reason().clone())
}

/// Waits (in real time, a bounded while) for `rt` to drop the tasks a
/// cancel could not drop at once because they were being polled, then
/// asserts it holds nothing any more.
pub fn wait_clean(rt: &Runtime) {
    let start = std::time::Instant::now();
    while (rt.live_tasks() != 0 || rt.live_scopes() != 0)
        && start.elapsed() < Duration::from_secs(5)
    {
        thread::sleep(Duration::from_millis(1));
    }
    assert_clean(rt);
}
