//! Helpers shared by the integration tests: dedicated runtimes, a hang
//! detector, futures that count their polls and drops, and small
//! synchronisation aids.

#![allow(dead_code)]

#[path = "../support/mod.rs"]
mod support;

// Not every test crate uses every helper.
#[allow(unused_imports)]
pub use support::{expect_panic, panic_message, DropCount};

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::sync::Event;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::Duration;

/// How long a test may run before it is declared hung. Far above what any
/// test needs: this turns a deadlock into a failure, it measures no speed.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// A dedicated runtime with `workers` worker threads.
pub fn runtime(workers: usize) -> Runtime {
    Builder::new()
        .worker_threads(workers)
        .thread_name("test-worker")
        .build()
        .expect("start a runtime")
}

/// Runs `f` on its own thread and fails the test if it does not finish
/// within [`HANG_LIMIT`]. A panic in `f` is resumed on the caller.
pub fn with_deadline<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    support::hang_guard_for("the test", HANG_LIMIT, f)
}

/// The slab key in the `Debug` output of a `Scope` or `CancelHandle`
/// (`... key: N ...`), if the output shows one.
pub fn debug_key(debug: &str) -> Option<usize> {
    let rest = &debug[debug.find("key: ")? + "key: ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Reads a counter.
pub fn get(counter: &AtomicUsize) -> usize {
    counter.load(SeqCst)
}

/// What one probed future went through.
#[derive(Debug, Default)]
pub struct Slot {
    /// Times its `poll` was entered.
    pub polls: AtomicUsize,
    /// Times its `poll` was entered after [`Probes::raise_fence`].
    pub late_polls: AtomicUsize,
    /// Times it returned `Ready`.
    pub completions: AtomicUsize,
    /// Times it was dropped.
    pub drops: AtomicUsize,
    /// The thread that dropped it (the last one, if dropped more than once).
    pub dropped_on: Mutex<Option<ThreadId>>,
}

/// A set of probed futures, indexed `0..n`, plus a fence: polls that begin
/// after the fence is raised are counted as late.
#[derive(Debug)]
pub struct Probes {
    slots: Box<[Slot]>,
    fence: AtomicBool,
}

impl Probes {
    /// `n` fresh slots.
    pub fn new(n: usize) -> Arc<Probes> {
        Arc::new(Probes {
            slots: (0..n).map(|_| Slot::default()).collect(),
            fence: AtomicBool::new(false),
        })
    }

    /// Wraps `fut` so that slot `i` records what happens to it.
    pub fn wrap<F: Future>(self: &Arc<Self>, i: usize, fut: F) -> Probed<F> {
        Probed {
            probes: self.clone(),
            index: i,
            inner: Box::pin(fut),
        }
    }

    /// Marks the point (right after `cancel()` returned) after which no
    /// cancelled future may be polled.
    pub fn raise_fence(&self) {
        self.fence.store(true, SeqCst);
    }

    /// Whether the fence is up.
    pub fn fence_is_up(&self) -> bool {
        self.fence.load(SeqCst)
    }

    /// Slot `i`.
    pub fn slot(&self, i: usize) -> &Slot {
        &self.slots[i]
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sum of `drops` over all slots.
    pub fn total_drops(&self) -> usize {
        self.slots.iter().map(|s| get(&s.drops)).sum()
    }

    /// Sum of `polls` over all slots.
    pub fn total_polls(&self) -> usize {
        self.slots.iter().map(|s| get(&s.polls)).sum()
    }

    /// Sum of `completions` over all slots.
    pub fn total_completions(&self) -> usize {
        self.slots.iter().map(|s| get(&s.completions)).sum()
    }

    /// Sum of `late_polls` over all slots.
    pub fn total_late_polls(&self) -> usize {
        self.slots.iter().map(|s| get(&s.late_polls)).sum()
    }

    /// Every probed future was dropped exactly once.
    pub fn assert_each_dropped_once(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            assert_eq!(
                get(&s.drops),
                1,
                "future {i} dropped {} times",
                get(&s.drops)
            );
        }
    }

    /// No probed future was polled after the fence went up. Only sound
    /// when every future's last poll began before the fence, e.g. each one
    /// had signalled from inside its (only) poll before the cancel.
    pub fn assert_no_late_polls(&self) {
        for (i, s) in self.slots.iter().enumerate() {
            assert_eq!(
                get(&s.late_polls),
                0,
                "future {i} was polled after its scope was cancelled"
            );
        }
    }
}

impl Probes {
    /// At most `workers` polls began after the fence, and at most one per
    /// future. A worker may have claimed a task for a poll just before the
    /// cancel and enter that poll just after the fence: one in-flight poll
    /// per worker is allowed, a second poll of a cancelled future never.
    pub fn assert_late_polls_at_most(&self, workers: usize) {
        for (i, s) in self.slots.iter().enumerate() {
            assert!(
                get(&s.late_polls) <= 1,
                "future {i} was polled {} times after its scope was cancelled",
                get(&s.late_polls)
            );
        }
        assert!(
            self.total_late_polls() <= workers,
            "{} polls began after cancel() returned, more than one per worker",
            self.total_late_polls()
        );
    }
}

/// A future that reports to a [`Probes`] slot.
#[derive(Debug)]
pub struct Probed<F> {
    probes: Arc<Probes>,
    index: usize,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Probed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let slot = &this.probes.slots[this.index];
        slot.polls.fetch_add(1, SeqCst);
        if this.probes.fence.load(SeqCst) {
            slot.late_polls.fetch_add(1, SeqCst);
        }
        let out = this.inner.as_mut().poll(cx);
        if out.is_ready() {
            slot.completions.fetch_add(1, SeqCst);
        }
        out
    }
}

impl<F> Drop for Probed<F> {
    fn drop(&mut self) {
        let slot = &self.probes.slots[self.index];
        *slot.dropped_on.lock().unwrap() = Some(thread::current().id());
        slot.drops.fetch_add(1, SeqCst);
    }
}

/// Sets an [`Event`] once `n` parties have arrived.
#[derive(Debug, Clone)]
pub struct Countdown {
    left: Arc<AtomicUsize>,
    done: Event,
}

impl Countdown {
    /// Waits for `n` arrivals (`n == 0` is already done).
    pub fn new(n: usize) -> Countdown {
        let done = Event::new();
        if n == 0 {
            done.set();
        }
        Countdown {
            left: Arc::new(AtomicUsize::new(n)),
            done,
        }
    }

    /// One party arrived.
    pub fn arrive(&self) {
        if self.left.fetch_sub(1, SeqCst) == 1 {
            self.done.set();
        }
    }

    /// Resolves once everyone arrived.
    pub async fn wait(&self) {
        self.done.wait().await
    }

    /// Whether everyone arrived.
    pub fn is_done(&self) -> bool {
        self.done.is_set()
    }
}

/// Marks that the current poll of a task has been entered, then parks the
/// task forever (it registers no waker).
pub async fn arrive_and_park(countdown: Countdown) {
    countdown.arrive();
    std::future::pending::<()>().await
}
