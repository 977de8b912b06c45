//! Helpers of the reliability suites (the `faults` and `races` binaries)
//! only, and of the `runtime` binary's `io_driver` suite, for a test that
//! must have the process, and so async-io's reactor, to itself: a child
//! process for scenarios that may abort the whole process, a seeded
//! random number generator, a check that every worker thread still serves
//! tasks, and wakers and futures that misbehave.
//!
//! Only the suites that need it include this file, beside the support
//! module it builds on:
//!
//! ```ignore
//! #[path = "../support/mod.rs"]
//! mod support;
//! #[path = "../support/reliability.rs"]
//! mod reliability;
//! ```

#![allow(dead_code)]

use crate::support::{run_bounded, test_name, Finished, HANG_LIMIT};
use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::{scope, JoinHandle, Scope};
use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------
// A test in a child process.
// ---------------------------------------------------------------------

/// Environment variable that marks a child process started by
/// [`run_in_child`]; its value is the test the child runs.
pub const CHILD_ENV: &str = "CANCEL_SCOPE_RELIABILITY_CHILD";

/// Whether this process is a child started by [`run_in_child`] for the
/// calling test.
pub fn is_child() -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|t| t == test_name())
}

/// Runs the calling test of this test binary alone, in a child process,
/// and returns how it ended; a child still running after [`HANG_LIMIT`]
/// is killed. For scenarios that may abort the whole process: the parent
/// survives and reports the failure.
pub fn run_in_child() -> Finished {
    run_child(&["--nocapture"])
}

/// [`run_in_child`], with the harness capturing the test's output as it
/// does by default: what the child's stderr shows then was written past
/// the capture.
pub fn run_in_child_captured() -> Finished {
    run_child(&[])
}

fn run_child(extra: &[&str]) -> Finished {
    let test = test_name();
    let exe = std::env::current_exe().expect("the test binary's path");
    run_bounded(
        Command::new(exe)
            .args([test.as_str(), "--exact", "--test-threads=1"])
            .args(extra)
            .env(CHILD_ENV, &test),
        HANG_LIMIT,
    )
}

/// Fails unless the child process of [`run_in_child`] passed its test.
pub fn assert_child_passed(out: &Finished) {
    assert!(
        out.succeeded() && out.stdout.contains("1 passed"),
        "the child process running `{}` {}:\n--- stdout\n{}\n--- stderr\n{}",
        test_name(),
        out.verdict(HANG_LIMIT),
        out.stdout,
        out.stderr
    );
}

// ---------------------------------------------------------------------
// Seeded randomness.
// ---------------------------------------------------------------------

/// A small, fast, seeded PRNG (SplitMix64). Good enough to shape random
/// trees and pick random moments; not for anything else.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A new generator, seeded from this one.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// The seed of a randomized test: `RELIABILITY_SEED` if set, else
/// `default`. Tests print it so that a failing shape can be replayed.
pub fn seed(default: u64) -> u64 {
    match std::env::var("RELIABILITY_SEED") {
        Ok(s) => s.parse().expect("RELIABILITY_SEED must be a u64"),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------
// Workers that still serve.
// ---------------------------------------------------------------------

/// Tasks that spin, never yielding, until all of them run at the same
/// time: they meet only on as many distinct worker threads.
#[derive(Debug)]
pub struct Spinners {
    arrived: Arc<AtomicUsize>,
    n: usize,
    handles: Vec<JoinHandle<bool>>,
}

impl Spinners {
    /// Spawns `n` spinners into `s`; each gives up after `limit`.
    pub fn spawn(s: &Scope, n: usize, limit: Duration) -> Spinners {
        let arrived = Arc::new(AtomicUsize::new(0));
        let handles = (0..n)
            .map(|_| {
                let arrived = arrived.clone();
                s.spawn(async move {
                    arrived.fetch_add(1, SeqCst);
                    let start = Instant::now();
                    while arrived.load(SeqCst) < n {
                        if start.elapsed() > limit {
                            return false;
                        }
                        std::hint::spin_loop();
                    }
                    true
                })
            })
            .collect();
        Spinners {
            arrived,
            n,
            handles,
        }
    }

    /// Whether every spinner has started.
    pub fn all_started(&self) -> bool {
        self.arrived.load(SeqCst) >= self.n
    }

    /// Whether every spinner met the others before giving up.
    pub async fn met(self) -> bool {
        let mut all = true;
        for h in self.handles {
            all &= h.await == Ok(true);
        }
        all
    }
}

/// Whether every one of `n` workers of `rt` is alive and free: `n`
/// [`Spinners`] spawned from outside the runtime meet within
/// [`HANG_LIMIT`] (a worker that is gone or stuck keeps them apart).
///
/// While waiting, it keeps spawning no-op tasks, each of which wakes a
/// sleeping worker: so a missed wake-up of an idle worker is not mistaken
/// for a lost worker.
pub fn all_workers_serve(rt: &Runtime, n: usize) -> bool {
    let out = rt.block_on(scope(|s| async move {
        let spinners = Spinners::spawn(&s, n, HANG_LIMIT);
        let start = Instant::now();
        while !spinners.all_started() && start.elapsed() < HANG_LIMIT {
            drop(s.spawn(async {}));
            cancel_scope::task::yield_now().await;
        }
        spinners.met().await
    }));
    out == Ok(true)
}

/// Tasks of the scope run by [`assert_serves`].
const SERVE_TASKS: u64 = if cfg!(miri) { 20 } else { 200 };

/// Fails unless `rt` still runs new scopes to completion and each of its
/// `workers` threads still serves tasks.
pub fn assert_serves(rt: &Runtime, workers: usize) {
    let out = rt.block_on(scope(|s| async move {
        let handles: Vec<_> = (0..SERVE_TASKS)
            .map(|i| s.spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("a task of a healthy scope");
        }
        sum
    }));
    assert_eq!(
        out,
        Ok(SERVE_TASKS * (SERVE_TASKS - 1) / 2),
        "the runtime no longer runs scopes"
    );
    assert!(
        all_workers_serve(rt, workers),
        "fewer than {workers} workers still serve tasks"
    );
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

// ---------------------------------------------------------------------
// Wakers that misbehave, or do nothing.
// ---------------------------------------------------------------------

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// A waker that does nothing.
pub fn noop_waker() -> Waker {
    Waker::from(Arc::new(NoopWake))
}

/// A waker that records its wake-up and then panics with `message`.
pub struct PanickingWaker {
    /// Set just before the panic.
    pub woken: Arc<AtomicBool>,
    /// The panic message.
    pub message: &'static str,
}

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        panic!("{}", self.message);
    }
}

/// A waker that only records that it was woken.
pub struct FlagWaker(pub Arc<AtomicBool>);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// Polls `inner` with `waker` instead of the task's own waker, so that
/// whoever wakes `inner` calls `waker`. Sets `registered` after the first
/// `Pending`. Never woken through the task's waker, a task running it
/// stays parked until `inner` is ready and something else polls it.
pub struct WithWaker<F> {
    inner: Pin<Box<F>>,
    waker: Waker,
    registered: Option<Event>,
}

impl<F: Future> WithWaker<F> {
    /// Wraps `inner`.
    pub fn new(inner: F, waker: Waker, registered: Event) -> Self {
        WithWaker {
            inner: Box::pin(inner),
            waker,
            registered: Some(registered),
        }
    }
}

impl<F: Future> Future for WithWaker<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let out = this
            .inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker));
        if out.is_pending() {
            if let Some(e) = this.registered.take() {
                e.set();
            }
        }
        out
    }
}
