//! Helpers shared by the reliability suites (`stress`, `faults`,
//! `bad_input`, `leaks`): dedicated runtimes, a hang guard, a small seeded
//! PRNG, futures that count their polls and drops, a check that every
//! worker thread still serves tasks, and a way to run a test that may
//! abort the process in a child process.

#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

// Not every test crate uses every helper.
#[allow(unused_imports)]
pub use support::{expect_panic, hang_guard_for, panic_message, DropCount as DropCounter};

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::scope;
use std::future::Future;
use std::pin::Pin;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test may run before it is declared hung. It detects
/// deadlocks; it measures no speed. Miri runs code thousands of times
/// slower, hence its larger bound.
pub const HANG_LIMIT: Duration = if cfg!(miri) {
    Duration::from_secs(3600)
} else {
    Duration::from_secs(120)
};

/// A boxed, sendable future, for recursive task trees.
pub type BoxFuture<T = ()> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A dedicated runtime with `workers` worker threads named `name-<n>`.
pub fn runtime(name: &str, workers: usize) -> Runtime {
    Builder::new()
        .worker_threads(workers)
        .thread_name(name)
        .build()
        .expect("start a runtime")
}

/// Runs `f` on its own thread and fails the caller if `f` has not returned
/// within [`HANG_LIMIT`]. A panic in `f` is resumed on the caller.
pub fn hang_guard<T, F>(what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    hang_guard_for(what, HANG_LIMIT, f)
}

/// Spins (yielding the OS thread) until `cond` holds; fails after
/// [`HANG_LIMIT`]. For waiting on state that has no event to wait for,
/// such as a runtime's counters settling after a worker's last release.
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

/// Whether every one of `n` workers of `rt` is alive and free: spawns `n`
/// tasks that spin, never yielding, until all `n` run at the same time,
/// which takes `n` distinct worker threads. Returns false if that has not
/// happened within [`HANG_LIMIT`] (a worker is gone or stuck).
///
/// While waiting, it keeps spawning no-op tasks from outside the runtime,
/// each of which wakes a sleeping worker: so a missed wake-up of an idle
/// worker is not mistaken for a lost worker (see [`spinners_meet`]).
pub fn all_workers_serve(rt: &Runtime, n: usize) -> bool {
    spinners_meet(rt, n, true, HANG_LIMIT)
}

/// Spawns `n` tasks from outside the runtime that spin, never yielding,
/// until all `n` run at the same time; returns whether they met within
/// `limit`. With `nudge`, keeps spawning no-op tasks while waiting.
pub fn spinners_meet(rt: &Runtime, n: usize, nudge: bool, limit: Duration) -> bool {
    let arrived = Arc::new(AtomicUsize::new(0));
    let out = rt.block_on(scope(|s| async move {
        let handles: Vec<_> = (0..n)
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
        if nudge {
            let start = Instant::now();
            while arrived.load(SeqCst) < n && start.elapsed() < limit {
                drop(s.spawn(async {}));
                cancel_scope::task::yield_now().await;
            }
        }
        let mut all = true;
        for h in handles {
            all &= h.await == Ok(true);
        }
        all
    }));
    out == Ok(true)
}

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

/// Broken rules, collected from any thread; the first few are kept.
#[derive(Debug, Default)]
pub struct Violations {
    count: AtomicUsize,
    first: Mutex<Vec<String>>,
}

impl Violations {
    /// Records a broken rule.
    pub fn record(&self, what: String) {
        if self.count.fetch_add(1, SeqCst) < 10 {
            self.first.lock().unwrap().push(what);
        }
    }

    /// Fails if anything was recorded.
    pub fn assert_none(&self, context: &str) {
        let n = self.count.load(SeqCst);
        assert!(
            n == 0,
            "{context}: {n} violations, first ones: {:#?}",
            self.first.lock().unwrap()
        );
    }
}

/// What happened to one tracked future.
#[derive(Debug, Default)]
pub struct Probe {
    /// Times `poll` was entered.
    pub polls: AtomicUsize,
    /// Times `poll` was entered with a watched flag already set.
    pub late_polls: AtomicUsize,
    /// Whether it returned `Ready`.
    pub completed: AtomicBool,
    /// Times it was dropped.
    pub drops: AtomicUsize,
}

impl Probe {
    /// Times `poll` was entered.
    pub fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }

    /// Times it was dropped.
    pub fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }

    /// Whether it returned `Ready`.
    pub fn completed(&self) -> bool {
        self.completed.load(SeqCst)
    }
}

/// A future that reports to a [`Probe`] and checks, at each poll, that
/// none of the `watch` flags is set.
///
/// A watched flag is set right after a `cancel()` that reaches the
/// future's scope has returned (and every cancel running at the same time
/// has returned too). From then on the future may not be polled again,
/// except for one poll that a worker had already claimed when the cancel
/// ran: that worker enters the poll a moment later, and drops the future
/// when the poll returns. So: a future created while a flag was already
/// set must never be polled (its spawn was refused), and any other future
/// may begin at most one poll after a flag was set.
pub struct Tracked<F> {
    inner: Pin<Box<F>>,
    probe: Arc<Probe>,
    watch: Arc<[Arc<AtomicBool>]>,
    born_cancelled: bool,
    violations: Arc<Violations>,
}

impl<F: Future> Tracked<F> {
    /// Wraps `inner`.
    pub fn new(
        inner: F,
        probe: Arc<Probe>,
        watch: Arc<[Arc<AtomicBool>]>,
        violations: Arc<Violations>,
    ) -> Tracked<F> {
        let born_cancelled = watch.iter().any(|f| f.load(SeqCst));
        Tracked {
            inner: Box::pin(inner),
            probe,
            watch,
            born_cancelled,
            violations,
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.probe.polls.fetch_add(1, SeqCst);
        if this.born_cancelled {
            this.violations
                .record("a future spawned into a cancelled scope was polled".into());
        } else if this.watch.iter().any(|f| f.load(SeqCst))
            && this.probe.late_polls.fetch_add(1, SeqCst) >= 1
        {
            this.violations.record(format!(
                "a future was polled {} times after its scope's cancel() returned",
                this.probe.late_polls.load(SeqCst)
            ));
        }
        if this.probe.completed() {
            this.violations
                .record("a future was polled after it returned Ready".into());
        }
        let out = this.inner.as_mut().poll(cx);
        if out.is_ready() {
            this.probe.completed.store(true, SeqCst);
        }
        out
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        if self.probe.drops.fetch_add(1, SeqCst) != 0 {
            self.violations
                .record("a future was dropped more than once".into());
        }
    }
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// A waker that does nothing.
pub fn noop_waker() -> Waker {
    Waker::from(Arc::new(NoopWake))
}

/// Environment variable that marks a child process started by
/// [`run_in_child`].
pub const CHILD_ENV: &str = "CANCEL_SCOPE_RELIABILITY_CHILD";

/// Whether this process is a child started by [`run_in_child`] for `test`.
pub fn is_child_for(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|t| t == test)
}

/// Runs the test named `test` of this test binary alone, in a child
/// process, and returns how it ended. Used for scenarios that may abort
/// the whole process: the parent survives and reports the failure.
pub fn run_in_child(test: &str) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .output()
        .expect("run the test binary in a child process")
}

/// Fails unless the child process of [`run_in_child`] passed its test.
pub fn assert_child_passed(test: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child process running `{test}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
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
    registered: Option<cancel_scope::sync::Event>,
}

impl<F: Future> WithWaker<F> {
    /// Wraps `inner`.
    pub fn new(inner: F, waker: Waker, registered: cancel_scope::sync::Event) -> Self {
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

/// Panics with its message when dropped (unless already unwinding).
pub struct PanicOnDrop(pub &'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("{}", self.0);
        }
    }
}
