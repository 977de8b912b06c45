//! The parked task and the counters that say when every parked future has
//! been polled, and when every counted future has been dropped.
//!
//! [`parked_task`] is the future every runtime parks in the cancellation
//! workloads (and `limit` drops by hand). At its first poll it counts
//! itself in `PARKED` and then waits forever. It owns a [`DropGuard`], so
//! dropping it counts in `DROPPED`, whichever thread drops it; the last
//! counted drop of an iteration stamps the time ([`wait_dropped`] returns
//! it), which is where the clock of a peer's cancel stops. The counters are
//! process-wide: workloads run one at a time, and [`reset`] starts each
//! iteration afresh.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Mutex;
use std::task::{Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

static PARKED: AtomicUsize = AtomicUsize::new(0);
static PARK_TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static PARK_WAKER: Mutex<Option<Waker>> = Mutex::new(None);

static DROPPED: AtomicUsize = AtomicUsize::new(0);
static DROP_TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static DROP_WAITER: Mutex<Option<Thread>> = Mutex::new(None);
static LAST_DROP: Mutex<Option<Instant>> = Mutex::new(None);

/// Starts an iteration that parks `parked` tasks and then counts `drops`
/// dropped guards (parked tasks, plus any other future that carries a
/// [`DropGuard`]). The calling thread is the one [`wait_dropped`] parks.
pub fn reset(parked: usize, drops: usize) {
    PARKED.store(0, SeqCst);
    PARK_TARGET.store(parked, SeqCst);
    DROPPED.store(0, SeqCst);
    DROP_TARGET.store(drops, SeqCst);
    *PARK_WAKER.lock().unwrap() = None;
    *LAST_DROP.lock().unwrap() = None;
    *DROP_WAITER.lock().unwrap() = Some(thread::current());
}

/// Parked tasks polled so far in this iteration.
pub fn parked() -> usize {
    PARKED.load(SeqCst)
}

/// Counted drops so far in this iteration.
pub fn dropped() -> usize {
    DROPPED.load(SeqCst)
}

/// Counts a drop; the last one of an iteration stamps the time and
/// unparks the thread that called [`reset`].
#[derive(Debug)]
pub struct DropGuard(());

impl DropGuard {
    /// A guard to move into a future.
    pub fn new() -> DropGuard {
        DropGuard(())
    }
}

impl Default for DropGuard {
    fn default() -> DropGuard {
        DropGuard::new()
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if DROPPED.fetch_add(1, AcqRel) + 1 == DROP_TARGET.load(Relaxed) {
            *LAST_DROP.lock().unwrap() = Some(Instant::now());
            if let Some(t) = DROP_WAITER.lock().unwrap().as_ref() {
                t.unpark();
            }
        }
    }
}

fn mark_parked() {
    if PARKED.fetch_add(1, SeqCst) + 1 == PARK_TARGET.load(Relaxed) {
        let waker = PARK_WAKER.lock().unwrap().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The task every runtime parks: counts itself at its first poll, then
/// waits forever; dropping it counts in `DROPPED`.
pub fn parked_task() -> impl Future<Output = ()> + Send + 'static {
    let guard = DropGuard::new();
    async move {
        let _guard = guard;
        mark_parked();
        std::future::pending::<()>().await
    }
}

/// Resolves once every parked task of this iteration has been polled once.
/// Works under any runtime's waker.
pub async fn all_parked() {
    futures_lite::future::poll_fn(|cx| {
        let target = PARK_TARGET.load(Relaxed);
        if PARKED.load(SeqCst) >= target {
            return Poll::Ready(());
        }
        *PARK_WAKER.lock().unwrap() = Some(cx.waker().clone());
        // Checked again after registering: the last `mark_parked` either
        // saw our waker or counted before this load.
        if PARKED.load(SeqCst) >= target {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Blocks until every counted future of this iteration has been dropped;
/// returns when the last one was.
pub fn wait_dropped() -> Instant {
    let target = DROP_TARGET.load(Relaxed);
    while DROPPED.load(Acquire) < target {
        thread::park();
    }
    LAST_DROP
        .lock()
        .unwrap()
        .expect("the last drop stamped the time")
}

/// Lets the last parked task finish returning `Pending` and the workers go
/// idle, so the clock starts with every task parked and every worker
/// asleep.
pub fn quiesce() {
    thread::sleep(Duration::from_micros(200));
}
