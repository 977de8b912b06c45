//! Cancel latency: how long a group of busy tasks takes to end once it is
//! cancelled, or once its deadline has passed. One function per runtime,
//! each returning the latency of one trial.
//!
//! A trial: `n` tasks are spawned into one group and loop on a [`Load`];
//! once every task has been polled (a latch counts them in) and they have
//! run for [`WARM`], the group is stopped by a [`Trigger`]. The latency
//! runs from the cancel call (or the deadline's instant) until the thread
//! that waits for the group has seen it end: our scope future resolved, a
//! peer's every `JoinHandle` awaited. The tasks never stop by themselves.
//!
//! - **cancel_scope**: the tasks of one scope; `cancel()` in its body, or
//!   a deadline set with `cancel_at`.
//! - **tokio**: `tokio::spawn`, stopped by `abort()` on every handle;
//!   for the deadline, the waiting thread sleeps until it
//!   (`tokio::time::sleep_until`), then aborts.
//! - **tokio_token**: each task races its loop against a clone of one
//!   `CancellationToken` in `tokio::select!`; `cancel()`, or for the
//!   deadline, a `sleep_until` and then `cancel()`.
//!
//! The loads are alike for every runtime: its own always-ready primitive
//! (ours: `Event::wait` on an event already set; tokio's: acquiring and
//! dropping a permit of a `Semaphore` that has plenty, which spends
//! tokio's budget as ours does), or 10 µs of computation then its own
//! `yield_now`.

use crate::latch::LATCHES;
use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::{scope, task};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long the tasks run after the last one started, before the cancel
/// or deadline: long enough that every task has been polled many times
/// and the queues are in their steady state.
pub const WARM: Duration = Duration::from_millis(2);

/// How far ahead of the moment it is set a deadline lies: the tasks keep
/// running meanwhile, so it comes due while the workers are busy.
pub const DEADLINE_AHEAD: Duration = Duration::from_millis(1);

/// The computation of a [`Load::Slice`] between two yields.
pub const SLICE: Duration = Duration::from_micros(10);

/// What each task does in its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Await the runtime's own primitive that is always ready.
    Ready,
    /// [`SLICE`] of computation, then the runtime's `yield_now`.
    Slice,
}

/// What stops the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A cancel call on the waiting thread.
    Cancel,
    /// A deadline [`DEADLINE_AHEAD`] of when it was set.
    Deadline,
}

impl Load {
    /// Its name in the benchmark's ids.
    pub fn name(self) -> &'static str {
        match self {
            Load::Ready => "ready",
            Load::Slice => "slice",
        }
    }
}

impl Trigger {
    /// Its name in the benchmark's ids.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Cancel => "cancel",
            Trigger::Deadline => "deadline",
        }
    }
}

/// Spins for [`SLICE`].
fn slice() {
    let start = Instant::now();
    while start.elapsed() < SLICE {
        std::hint::spin_loop();
    }
}

/// The latch the tasks count down at their first poll.
fn started() -> &'static crate::latch::Latch {
    &LATCHES[1]
}

// ----------------------------------------------------------------- ours

/// `n` tasks of one scope loop on `load`; the body stops them by `trigger`.
pub fn cancel_scope(rt: &Runtime, load: Load, trigger: Trigger, n: usize) -> Duration {
    started().arm(n);
    // A cancelled scope resolves to `Err`, dropping the body's value: the
    // start instant comes out through this cell.
    let start = Cell::new(None);
    let start = &start;
    let ready = Event::new();
    ready.set();
    let out = rt.block_on(scope(|s| async move {
        for _ in 0..n {
            let ready = ready.clone();
            s.spawn(async move {
                started().count_down();
                match load {
                    Load::Ready => loop {
                        ready.wait().await;
                    },
                    Load::Slice => loop {
                        slice();
                        task::yield_now().await;
                    },
                }
            });
        }
        started().wait().await;
        std::thread::sleep(WARM);
        match trigger {
            Trigger::Cancel => {
                start.set(Some(Instant::now()));
                s.cancel();
            }
            Trigger::Deadline => {
                let at = Instant::now() + DEADLINE_AHEAD;
                start.set(Some(at));
                s.cancel_at(at);
            }
        }
    }));
    let end = Instant::now();
    assert!(out.is_err(), "the scope was cancelled");
    end.saturating_duration_since(start.get().expect("the body ran"))
}

// ---------------------------------------------------------------- tokio

/// A semaphore that always has permits: tokio's always-ready primitive.
fn plenty() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(Semaphore::MAX_PERMITS / 2))
}

/// The loop of one tokio task; counts itself in at its first poll.
async fn tokio_loop(load: Load, permits: Arc<Semaphore>) {
    started().count_down();
    match load {
        Load::Ready => loop {
            drop(permits.acquire().await.expect("never closed"));
        },
        Load::Slice => loop {
            slice();
            tokio::task::yield_now().await;
        },
    }
}

/// Waits on the tokio runtime until the trigger is due; returns the
/// instant the latency counts from.
async fn tokio_trigger(trigger: Trigger) -> Instant {
    match trigger {
        Trigger::Cancel => Instant::now(),
        Trigger::Deadline => {
            let at = Instant::now() + DEADLINE_AHEAD;
            tokio::time::sleep_until(at.into()).await;
            at
        }
    }
}

/// `n` tokio tasks loop on `load`; each is `abort()`ed.
pub fn tokio_abort(
    rt: &tokio::runtime::Runtime,
    load: Load,
    trigger: Trigger,
    n: usize,
) -> Duration {
    started().arm(n);
    rt.block_on(async {
        let permits = plenty();
        let handles: Vec<_> = (0..n)
            .map(|_| tokio::spawn(tokio_loop(load, permits.clone())))
            .collect();
        started().wait().await;
        std::thread::sleep(WARM);
        let start = tokio_trigger(trigger).await;
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
        Instant::now().saturating_duration_since(start)
    })
}

/// `n` tokio tasks race their loop against one token in `select!`; the
/// token is cancelled.
pub fn tokio_token(
    rt: &tokio::runtime::Runtime,
    load: Load,
    trigger: Trigger,
    n: usize,
) -> Duration {
    started().arm(n);
    rt.block_on(async {
        let permits = plenty();
        let token = CancellationToken::new();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (token, work) = (token.clone(), tokio_loop(load, permits.clone()));
                tokio::spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = work => {}
                    }
                })
            })
            .collect();
        started().wait().await;
        std::thread::sleep(WARM);
        let start = tokio_trigger(trigger).await;
        token.cancel();
        for h in handles {
            let _ = h.await;
        }
        Instant::now().saturating_duration_since(start)
    })
}
