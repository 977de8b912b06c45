//! loom models of the task state word.
//!
//! Each model runs the protocol of `task/mod.rs` (runner, waker, canceller,
//! `JoinHandle`) over the real [`State`] transitions, with the future's slot
//! as a `loom::cell::UnsafeCell`, so loom checks in every interleaving that
//! the slot is never touched by two threads at once (rule F), that the
//! future is dropped exactly once, and that no wake-up is lost.
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.

use super::state::{
    Snapshot, State, ToCancelled, ToIdle, ToNotified, ToRunning, COMPLETE, JOIN_HANDLE,
};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::*};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A task reduced to what the state word guards.
struct Model {
    state: State,
    /// The future: `Some(polls)` while alive, `None` once dropped.
    future: UnsafeCell<Option<usize>>,
    drops: AtomicUsize,
    /// Set before a wake; a poll records whether it saw it.
    woken: AtomicUsize,
    last_poll_saw_wake: AtomicUsize,
    /// The join slot (rule J).
    output: Mutex<Option<&'static str>>,
}

impl Model {
    fn new() -> Arc<Model> {
        Arc::new(Model {
            state: State::new(),
            future: UnsafeCell::new(Some(0)),
            drops: AtomicUsize::new(0),
            woken: AtomicUsize::new(0),
            last_poll_saw_wake: AtomicUsize::new(0),
            output: Mutex::new(None),
        })
    }

    /// Touches the future as a poll would (rule F: we hold RUNNING).
    fn poll(&self) {
        self.future.with_mut(|f| {
            // SAFETY: loom's cell panics on a concurrent access instead;
            // this pointer is only used inside the closure.
            let f = unsafe { &mut *f };
            *f.as_mut().expect("never polled after it was dropped") += 1;
        });
        self.last_poll_saw_wake
            .store(self.woken.load(SeqCst), SeqCst);
    }

    /// Drops the future and completes, as `Task::complete` does.
    fn complete(&self, output: &'static str) {
        self.drop_future();
        let prev = self.state.transition_to_complete();
        self.deliver(prev, output);
    }

    fn drop_future(&self) {
        self.future.with_mut(|f| {
            // SAFETY: as in `poll`.
            let f = unsafe { &mut *f };
            assert!(f.take().is_some(), "dropped twice");
        });
        self.drops.fetch_add(1, SeqCst);
    }

    fn deliver(&self, prev: Snapshot, output: &'static str) {
        if prev.has(JOIN_HANDLE) {
            *self.output.lock().unwrap() = Some(output);
        }
    }

    /// A worker popped the task: run it once, requeueing as told.
    fn run(&self, ready_on_poll: Option<usize>) {
        loop {
            match self.state.transition_to_running() {
                ToRunning::Dead => return,
                ToRunning::Cancel => return self.complete("cancelled"),
                ToRunning::Poll => {}
            }
            self.poll();
            let polls = self.future.with(|f| {
                // SAFETY: as in `poll`.
                unsafe { (*f).unwrap() }
            });
            if ready_on_poll == Some(polls) {
                return self.complete("ready");
            }
            match self.state.transition_to_idle() {
                ToIdle::Idle => return,
                ToIdle::Reschedule => continue, // pushed and popped again
                ToIdle::Cancel => return self.complete("cancelled"),
            }
        }
    }

    fn wake(&self) -> bool {
        self.woken.store(1, SeqCst);
        self.state.transition_to_notified() == ToNotified::Submit
    }

    fn cancel(&self) {
        // As `Task::cancel`: an idle task is claimed and complete in one
        // step, and the claimer drops the future afterwards.
        if let ToCancelled::Claimed(prev) = self.state.transition_to_cancelled() {
            self.drop_future();
            self.deliver(prev, "cancelled");
        }
    }
}

/// A wake racing a poll is never lost: some poll sees it.
#[test]
fn wake_racing_poll() {
    loom::model(|| {
        let task = Model::new();
        let t = task.clone();
        let waker = thread::spawn(move || {
            if t.wake() {
                t.run(None);
            }
        });
        task.run(None);
        waker.join().unwrap();
        assert_eq!(task.last_poll_saw_wake.load(SeqCst), 1, "a wake was lost");
        assert_eq!(task.drops.load(SeqCst), 0);
    });
}

/// A wake racing a cancel: the future is dropped exactly once and never
/// polled afterwards (the `expect` in `poll`).
#[test]
fn wake_racing_cancel() {
    loom::model(|| {
        let task = Model::new();
        task.run(None); // polled once, now idle
        let t = task.clone();
        let waker = thread::spawn(move || {
            if t.wake() {
                t.run(None);
            }
        });
        task.cancel();
        waker.join().unwrap();
        assert_eq!(task.drops.load(SeqCst), 1);
        assert_eq!(*task.output.lock().unwrap(), Some("cancelled"));
    });
}

/// A cancel racing the poll that completes the task: exactly one of them
/// drops the future, and the output says which.
#[test]
fn cancel_racing_completion() {
    loom::model(|| {
        let task = Model::new();
        let t = task.clone();
        let runner = thread::spawn(move || t.run(Some(1)));
        task.cancel();
        runner.join().unwrap();
        assert_eq!(task.drops.load(SeqCst), 1);
        let output = task
            .output
            .lock()
            .unwrap()
            .expect("the handle gets an output");
        assert!(output == "ready" || output == "cancelled");
    });
}

/// The `JoinHandle` dropped while the task completes: the output is
/// either never stored, or stored and then taken by exactly one side.
#[test]
fn join_handle_drop_racing_completion() {
    loom::model(|| {
        let task = Model::new();
        let t = task.clone();
        let runner = thread::spawn(move || t.run(Some(1)));
        // The handle's drop, as `Join::detach` for a handle never polled:
        // clear the bit, then drop a stored output only if the task was
        // complete by then. If it was not, none is ever stored.
        let prev = task.state.drop_join_handle();
        let looked = prev.has(COMPLETE);
        let taken = looked.then(|| task.output.lock().unwrap().take()).flatten();
        runner.join().unwrap();
        let left = task.output.lock().unwrap().take();
        assert!(taken.is_none() || left.is_none(), "output seen twice");
        assert!(
            looked || left.is_none(),
            "output stored for a dropped handle"
        );
        assert_eq!(task.drops.load(SeqCst), 1);
    });
}

/// Two cancels racing each other and a runner: one drop in every order.
#[test]
fn concurrent_cancels_and_runner() {
    loom::model(|| {
        let task = Model::new();
        let (a, b) = (task.clone(), task.clone());
        let c1 = thread::spawn(move || a.cancel());
        let runner = thread::spawn(move || b.run(None));
        task.cancel();
        c1.join().unwrap();
        runner.join().unwrap();
        assert_eq!(task.drops.load(SeqCst), 1);
    });
}
