//! What every benchmark file shares: the three runtimes, configured alike
//! (two worker threads each), and the parked-task workload with its
//! counters.
//!
//! # The parked task
//!
//! [`parked_task`] is the future every runtime parks in the cancellation
//! benchmarks (and `limit` drops by hand). At its first poll it counts
//! itself in [`PARKED`] and then waits forever. It owns a [`DropGuard`], so
//! dropping it counts in `DROPPED`; that is how a benchmark knows that
//! every future is gone, whichever thread dropped it. The counters are
//! process-wide statics: benchmarks run one at a time, and [`reset`] starts
//! each iteration afresh.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

/// Worker threads of every runtime under test.
pub const WORKERS: usize = 2;

/// A boxed, sendable future, for recursive task trees.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Our runtime with [`WORKERS`] workers.
pub fn cancel_scope_rt() -> cancel_scope::runtime::Runtime {
    cancel_scope::runtime::Builder::new()
        .worker_threads(WORKERS)
        .build()
        .expect("start the cancel-scope runtime")
}

/// Tokio's multi-thread scheduler with [`WORKERS`] workers and no I/O or
/// timer driver (none of the benchmarks needs one).
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .expect("start the tokio runtime")
}

/// smol's executor (`async-executor`) run by [`WORKERS`] threads. The
/// benchmark's own thread drives its futures with `futures_lite`'s
/// `block_on`, like `block_on` of the other two runtimes.
pub struct Smol {
    ex: Arc<async_executor::Executor<'static>>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Smol {
    pub fn new() -> Smol {
        let ex = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads = (0..WORKERS)
            .map(|i| {
                let ex = ex.clone();
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("smol-{i}"))
                    .spawn(move || {
                        let _ = futures_lite::future::block_on(ex.run(stopped.recv()));
                    })
                    .expect("start a smol executor thread")
            })
            .collect();
        Smol {
            ex,
            stop: Some(stop),
            threads,
        }
    }

    pub fn spawn<F>(&self, future: F) -> async_executor::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.ex.spawn(future)
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        futures_lite::future::block_on(future)
    }
}

impl Drop for Smol {
    fn drop(&mut self) {
        // Closing the channel ends `ex.run` on every thread.
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Parked tasks that have been polled once.
pub static PARKED: AtomicUsize = AtomicUsize::new(0);
static PARK_TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static PARK_WAKER: Mutex<Option<Waker>> = Mutex::new(None);

/// Parked tasks whose futures have been dropped.
pub static DROPPED: AtomicUsize = AtomicUsize::new(0);
static DROP_TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static DROP_WAITER: Mutex<Option<Thread>> = Mutex::new(None);

/// Starts an iteration that will park `n` tasks; the calling thread is the
/// one [`wait_dropped`] parks.
pub fn reset(n: usize) {
    PARKED.store(0, SeqCst);
    PARK_TARGET.store(n, SeqCst);
    DROPPED.store(0, SeqCst);
    DROP_TARGET.store(n, SeqCst);
    *PARK_WAKER.lock().unwrap() = None;
    *DROP_WAITER.lock().unwrap() = Some(thread::current());
}

/// Counts a drop in `DROPPED`; the last one of an iteration unparks the
/// thread that called [`reset`].
pub struct DropGuard(());

impl Drop for DropGuard {
    fn drop(&mut self) {
        if DROPPED.fetch_add(1, AcqRel) + 1 == DROP_TARGET.load(Relaxed) {
            if let Some(t) = DROP_WAITER.lock().unwrap().as_ref() {
                t.unpark();
            }
        }
    }
}

/// Counts a parked task; the last one wakes [`all_parked`].
pub fn mark_parked() {
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
    let guard = DropGuard(());
    async move {
        let _guard = guard;
        mark_parked();
        std::future::pending::<()>().await
    }
}

/// Resolves once every task of this iteration has been polled once. Works
/// under any runtime's waker.
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

/// Blocks until every parked future of this iteration has been dropped.
pub fn wait_dropped() {
    let target = DROP_TARGET.load(Relaxed);
    while DROPPED.load(Acquire) < target {
        thread::park();
    }
}

/// Lets the last parked task finish returning `Pending` and the workers go
/// idle, so the clock starts with every task parked and every worker
/// asleep.
pub fn quiesce() {
    thread::sleep(Duration::from_micros(200));
}

/// A waker that does nothing, for polling futures by hand.
pub fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

/// Polls `future` once with a [`noop_waker`].
pub fn poll_once_by_hand<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    let waker = noop_waker();
    future.poll(&mut Context::from_waker(&waker))
}
