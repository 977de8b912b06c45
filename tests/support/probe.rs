//! Counting what happens to futures: a shared [`Counter`] (with a guard
//! that counts a drop), and [`Probed`], a future wrapper that records in a
//! [`Probe`] its polls, late polls, completions and drops.
//!
//! A *fence* is a flag raised right after a `cancel()` returned: a poll
//! that begins once a fence of its future is up is *late*. A worker may
//! have claimed a task for a poll just before the cancel and enter that
//! poll just after the fence, so one late poll per worker can be allowed,
//! a second late poll of one future never.

use std::future::Future;
use std::ops::Index;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};

/// A shared counter.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Adds one; returns the new count.
    pub fn inc(&self) -> usize {
        self.0.fetch_add(1, SeqCst) + 1
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

/// Adds one to its counter when dropped; move it into a future (or make
/// it a task's output) to count that future's (or output's) drop.
#[derive(Debug)]
pub struct OnDrop(Counter);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.inc();
    }
}

/// A flag that makes later polls late; see the module docs.
pub type Fence = Arc<AtomicBool>;

/// What the futures wrapped with one probe went through (usually one
/// future; summed when several share it).
#[derive(Debug, Default)]
pub struct Probe {
    polls: AtomicUsize,
    late_polls: AtomicUsize,
    polls_after_ready: AtomicUsize,
    completions: AtomicUsize,
    drops: AtomicUsize,
    dropped_on: Mutex<Option<ThreadId>>,
}

impl Probe {
    /// A fresh probe.
    pub fn new() -> Arc<Probe> {
        Arc::default()
    }

    /// Wraps `fut` so that this probe records what happens to it, with no
    /// fence (no poll counts as late).
    pub fn wrap<F: Future>(self: &Arc<Self>, fut: F) -> Probed<F> {
        Probed::new(fut, self.clone(), Arc::new([]))
    }

    /// Times `poll` was entered.
    pub fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }

    /// Times `poll` was entered with a fence up.
    pub fn late_polls(&self) -> usize {
        self.late_polls.load(SeqCst)
    }

    /// Times `poll` was entered after the future had returned `Ready`.
    pub fn polls_after_ready(&self) -> usize {
        self.polls_after_ready.load(SeqCst)
    }

    /// Times `poll` returned `Ready`.
    pub fn completions(&self) -> usize {
        self.completions.load(SeqCst)
    }

    /// Times a wrapped future was dropped.
    pub fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }

    /// The thread that dropped a wrapped future (the last one, if several).
    pub fn dropped_on(&self) -> Option<ThreadId> {
        *self.dropped_on.lock().unwrap()
    }
}

/// A future that reports to a [`Probe`], and counts a poll as late when
/// one of its fences is up.
#[derive(Debug)]
pub struct Probed<F> {
    inner: Pin<Box<F>>,
    probe: Arc<Probe>,
    fences: Arc<[Fence]>,
    ready: bool,
}

impl<F: Future> Probed<F> {
    /// Wraps `inner`, reporting to `probe`, late once any of `fences` is up.
    pub fn new(inner: F, probe: Arc<Probe>, fences: Arc<[Fence]>) -> Probed<F> {
        Probed {
            inner: Box::pin(inner),
            probe,
            fences,
            ready: false,
        }
    }
}

impl<F: Future> Future for Probed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.probe.polls.fetch_add(1, SeqCst);
        if this.fences.iter().any(|f| f.load(SeqCst)) {
            this.probe.late_polls.fetch_add(1, SeqCst);
        }
        if this.ready {
            this.probe.polls_after_ready.fetch_add(1, SeqCst);
        }
        let out = this.inner.as_mut().poll(cx);
        if out.is_ready() {
            this.ready = true;
            this.probe.completions.fetch_add(1, SeqCst);
        }
        out
    }
}

impl<F> Drop for Probed<F> {
    fn drop(&mut self) {
        *self.probe.dropped_on.lock().unwrap() = Some(thread::current().id());
        self.probe.drops.fetch_add(1, SeqCst);
    }
}

/// `n` probes, indexed `0..n` (`probes[i]`), sharing one fence.
#[derive(Debug)]
pub struct Probes {
    probes: Box<[Arc<Probe>]>,
    fence: Arc<[Fence]>,
}

impl Probes {
    /// `n` fresh probes.
    pub fn new(n: usize) -> Arc<Probes> {
        Arc::new(Probes {
            probes: (0..n).map(|_| Probe::new()).collect(),
            fence: Arc::new([Fence::default()]),
        })
    }

    /// Wraps `fut` so that probe `i` records what happens to it.
    pub fn wrap<F: Future>(&self, i: usize, fut: F) -> Probed<F> {
        Probed::new(fut, self.probes[i].clone(), self.fence.clone())
    }

    /// Marks the point (right after `cancel()` returned) after which no
    /// cancelled future may be polled.
    pub fn raise_fence(&self) {
        self.fence[0].store(true, SeqCst);
    }

    /// Whether the fence is up.
    pub fn fence_is_up(&self) -> bool {
        self.fence[0].load(SeqCst)
    }

    /// Number of probes.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// Whether there are no probes.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    /// Sum of [`Probe::drops`] over all probes.
    pub fn total_drops(&self) -> usize {
        self.probes.iter().map(|p| p.drops()).sum()
    }

    /// Sum of [`Probe::polls`] over all probes.
    pub fn total_polls(&self) -> usize {
        self.probes.iter().map(|p| p.polls()).sum()
    }

    /// Sum of [`Probe::completions`] over all probes.
    pub fn total_completions(&self) -> usize {
        self.probes.iter().map(|p| p.completions()).sum()
    }

    /// Sum of [`Probe::late_polls`] over all probes.
    pub fn total_late_polls(&self) -> usize {
        self.probes.iter().map(|p| p.late_polls()).sum()
    }

    /// Every probed future was dropped exactly once.
    pub fn assert_each_dropped_once(&self) {
        for (i, p) in self.probes.iter().enumerate() {
            assert_eq!(p.drops(), 1, "future {i} dropped {} times", p.drops());
        }
    }

    /// No probed future was polled after the fence went up. Only sound
    /// when every future's last poll began before the fence, e.g. each one
    /// had signalled from inside its (only) poll before the cancel.
    pub fn assert_no_late_polls(&self) {
        for (i, p) in self.probes.iter().enumerate() {
            assert_eq!(
                p.late_polls(),
                0,
                "future {i} was polled after its scope was cancelled"
            );
        }
    }

    /// At most `workers` polls began after the fence, and at most one per
    /// future (see the module docs).
    pub fn assert_late_polls_at_most(&self, workers: usize) {
        for (i, p) in self.probes.iter().enumerate() {
            assert!(
                p.late_polls() <= 1,
                "future {i} was polled {} times after its scope was cancelled",
                p.late_polls()
            );
        }
        assert!(
            self.total_late_polls() <= workers,
            "{} polls began after cancel() returned, more than one per worker",
            self.total_late_polls()
        );
    }
}

impl Index<usize> for Probes {
    type Output = Probe;

    fn index(&self, i: usize) -> &Probe {
        &self.probes[i]
    }
}
