//! loom models of the task: the real task cell, its state word (flags and
//! reference count), its future cell (loom's `UnsafeCell`, through the
//! facade) and its join slot (loom's mutex), driven by model threads that
//! play the runner, wakers, cancellers and the `JoinHandle`.
//!
//! In every interleaving loom checks that the future is never touched by two
//! threads at once (rule "one owner of the future"), and each model asserts
//! that the future is dropped exactly once, never polled after a cancel
//! claimed it, that no wake-up is lost, that a task is never released while a
//! waker pushes it (rule "push before release"), that the handle gets exactly
//! the output the task ended with, and that the task is freed once, after its
//! last reference (a freed task still in use would show as a causality
//! violation on its cells).
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib
//! loom_models`.

use super::{Cancel, JoinHandle, Schedule, TaskId, TaskRef};
use crate::cancelled::{CancelReason, Cancelled};
use crate::loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// The scheduler of the model: a queue the model threads run from, and a
/// count of `release` calls (the runner's accounting).
#[derive(Clone, Default)]
struct Model {
    queue: Arc<Mutex<VecDeque<TaskRef>>>,
    released: Arc<AtomicUsize>,
}

impl Schedule for Model {
    fn schedule(&self, task: TaskRef) {
        // Rule "push before release": a task is not released while it is
        // pushed, so an owner reaching its own state here (a scope node) finds
        // it alive.
        assert_eq!(self.released.load(SeqCst), 0, "pushed after its release");
        self.queue.lock().push_back(task);
        assert_eq!(self.released.load(SeqCst), 0, "released during its push");
    }

    fn enter<R>(&self, _task: TaskId, poll: impl FnOnce() -> R) -> R {
        poll()
    }

    fn cancelled(&self) -> Cancelled {
        Cancelled::new(CancelReason::Explicit)
    }

    fn release(&self, _key: TaskId, _ended: super::Ended, panic: Option<super::Panic>) {
        assert!(panic.is_none());
        self.released.fetch_add(1, SeqCst);
    }
}

impl Model {
    /// A worker's turn: runs what is queued, until the queue is empty.
    fn run_queued(&self) {
        loop {
            let task = self.queue.lock().pop_front();
            match task {
                Some(task) => {
                    if let Some(task) = task.run() {
                        self.queue.lock().push_back(task);
                    }
                }
                None => return,
            }
        }
    }
}

/// What the probe future saw and did, shared with the model.
#[derive(Default)]
struct Seen {
    polls: AtomicUsize,
    drops: AtomicUsize,
    /// Set by a "producer" before it wakes the task.
    produced: AtomicBool,
    /// Whether the last poll saw `produced`.
    consumed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// A future that records its polls and drops, keeps its latest waker, and
/// is ready at its `ready_at`-th poll (never, if 0).
struct Probe {
    seen: Arc<Seen>,
    ready_at: usize,
}

impl Future for Probe {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let seen = &self.seen;
        assert_eq!(seen.drops.load(SeqCst), 0, "polled after it was dropped");
        let polls = seen.polls.fetch_add(1, SeqCst) + 1;
        seen.consumed.store(seen.produced.load(SeqCst), SeqCst);
        *seen.waker.lock() = Some(cx.waker().clone());
        if polls == self.ready_at {
            Poll::Ready(polls)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.seen.drops.fetch_add(1, SeqCst);
    }
}

/// Spawns a probe task as `Scope::spawn` does: queued, with a handle.
fn spawn(model: &Model, ready_at: usize) -> (Arc<Seen>, TaskRef, JoinHandle<usize>) {
    let seen = Arc::new(Seen::default());
    let probe = Probe {
        seen: seen.clone(),
        ready_at,
    };
    let (task, handle) = super::new(probe, model.clone());
    model.schedule(task.clone());
    (seen, task, handle)
}

/// Polls a handle once, from a thread that is not a task.
fn poll_handle(handle: &mut JoinHandle<usize>) -> Poll<Result<usize, Cancelled>> {
    let waker = waker_fn::waker_fn(|| {});
    Pin::new(handle).poll(&mut Context::from_waker(&waker))
}

/// The accounting a scope would do for a cancel: a canceller that dropped
/// the future counts it, else the runner releases it.
fn cancel(task: &TaskRef, model: &Model) {
    if let Cancel::Dropped(panic) = task.cancel() {
        assert!(panic.is_none());
        model.released.fetch_add(1, SeqCst);
    }
}

/// A wake racing the poll that registers the waker: the wake is never
/// lost, so some later poll sees what the producer published.
#[test]
fn wake_racing_poll() {
    loom::model(|| {
        let model = Model::default();
        let (seen, task, _handle) = spawn(&model, 0);
        model.run_queued(); // first poll: registers its waker
        let producer = {
            let seen = seen.clone();
            thread::spawn(move || {
                seen.produced.store(true, SeqCst);
                let waker = seen.waker.lock().clone().expect("registered");
                waker.wake();
            })
        };
        model.run_queued();
        producer.join().unwrap();
        model.run_queued();
        assert!(seen.consumed.load(SeqCst), "a wake was lost");
        assert_eq!(seen.drops.load(SeqCst), 0);
        // Break the cycle task -> future -> waker -> task.
        cancel(&task, &model);
        seen.waker.lock().take();
    });
}

/// A wake racing a cancel: the future is dropped exactly once, never
/// polled afterwards, and the handle sees the cancel.
#[test]
fn wake_racing_cancel() {
    loom::model(|| {
        let model = Model::default();
        let (seen, task, mut handle) = spawn(&model, 0);
        model.run_queued();
        let waker = seen.waker.lock().clone().expect("registered");
        let runner = {
            let model = model.clone();
            thread::spawn(move || {
                waker.wake();
                model.run_queued();
            })
        };
        cancel(&task, &model);
        runner.join().unwrap();
        model.run_queued();
        assert_eq!(seen.drops.load(SeqCst), 1);
        assert_eq!(model.released.load(SeqCst), 1);
        let out = poll_handle(&mut handle);
        assert!(matches!(out, Poll::Ready(Err(_))), "{out:?}");
        seen.waker.lock().take();
    });
}

/// A cancel racing the poll that completes the task: exactly one of them
/// drops the future, and the handle's output says which.
#[test]
fn cancel_racing_completion() {
    loom::model(|| {
        let model = Model::default();
        let (seen, task, mut handle) = spawn(&model, 1);
        let runner = {
            let model = model.clone();
            thread::spawn(move || model.run_queued())
        };
        cancel(&task, &model);
        runner.join().unwrap();
        assert_eq!(seen.drops.load(SeqCst), 1);
        assert_eq!(model.released.load(SeqCst), 1);
        match poll_handle(&mut handle) {
            Poll::Ready(Ok(1)) => assert_eq!(seen.polls.load(SeqCst), 1),
            Poll::Ready(Err(_)) => assert!(seen.polls.load(SeqCst) <= 1),
            other => panic!("the handle got {other:?}"),
        }
        seen.waker.lock().take();
    });
}

/// The `JoinHandle` dropped while the task completes: the output is
/// dropped exactly once, by whichever side sees it last, and the future
/// once.
#[test]
fn join_handle_drop_racing_completion() {
    loom::model(|| {
        let model = Model::default();
        let (seen, _task, handle) = spawn(&model, 1);
        let runner = {
            let model = model.clone();
            thread::spawn(move || model.run_queued())
        };
        drop(handle);
        runner.join().unwrap();
        assert_eq!(seen.drops.load(SeqCst), 1);
        assert_eq!(model.released.load(SeqCst), 1);
        seen.waker.lock().take();
    });
}

/// An output that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// The `JoinHandle` dropped while its task stores the output (rule "output
/// through the join slot"): once both are done the output has been dropped, by
/// the handle or taken back by the runner, and not left in the task for
/// whoever frees it (the model still holds a reference, so nobody has freed
/// it).
#[test]
fn join_handle_drop_racing_delivery() {
    loom::model(|| {
        let model = Model::default();
        let drops = Arc::new(AtomicUsize::new(0));
        let output = Counted(drops.clone());
        let (task, handle) = super::new(async move { output }, model.clone());
        model.schedule(task.clone());
        let runner = {
            let model = model.clone();
            thread::spawn(move || model.run_queued())
        };
        drop(handle);
        runner.join().unwrap();
        assert_eq!(model.released.load(SeqCst), 1);
        assert_eq!(drops.load(SeqCst), 1, "an output outlived its handle");
        drop(task);
    });
}

/// Two cancels racing each other and a runner: one drop, one release, in
/// every order.
#[test]
fn concurrent_cancels_and_runner() {
    loom::model(|| {
        let model = Model::default();
        let (seen, task, _handle) = spawn(&model, 0);
        let canceller = {
            let (task, model) = (task.clone(), model.clone());
            thread::spawn(move || cancel(&task, &model))
        };
        let runner = {
            let model = model.clone();
            thread::spawn(move || model.run_queued())
        };
        cancel(&task, &model);
        canceller.join().unwrap();
        runner.join().unwrap();
        model.run_queued();
        assert_eq!(seen.drops.load(SeqCst), 1);
        assert_eq!(model.released.load(SeqCst), 1);
        seen.waker.lock().take();
    });
}
