//! A worker's LIFO slot: the task to run next, which other workers can
//! take when the owner does not come back to it.
//!
//! A task woken on a worker likely needs what the waking task just
//! produced, so the worker runs it next, from this slot, instead of
//! queueing it behind older work (ping-pong over a channel stays on one
//! core, and wakes nobody). But the waking task may go on computing for a
//! long time without yielding; then the woken task must not wait for it.
//! So the slot is shared: the owner fills and empties it, and an idle
//! worker watching for stuck tasks (`idle/mod.rs`) takes a task that has sat
//! in it since its previous look.
//!
//! # State word
//!
//! | `state`  | meaning                          | who leaves it, to what             |
//! |----------|----------------------------------|------------------------------------|
//! | `EMPTY`  | no task                          | the owner only, to `FULL` (a push) |
//! | `FULL`   | `task` holds a task              | whoever CASes it to `LOCKED`       |
//! | `LOCKED` | one thread is moving the task    | that thread, to `FULL` or `EMPTY`  |
//!
//! **Rule "one hand in the slot".** `task` is touched only by the owner while
//! the state is `EMPTY` (nobody else leaves `EMPTY`), or by the one thread
//! that moved the state from `FULL` to `LOCKED`, until it stores the next
//! state. The `Release` store that ends each access pairs with the `Acquire`
//! load or CAS that begins the next one.
//!
//! The owner's push into an empty slot is two plain stores; its take is one
//! CAS. Nobody ever waits for the slot: an owner that finds a thief holding it
//! queues its task instead. `stamp` counts the owner's pushes, so a watcher
//! can tell a task that has waited since its last look from a new one.

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicU32, AtomicU8, Ordering::*};
use crate::task::TaskRef;

const EMPTY: u8 = 0;
const FULL: u8 = 1;
const LOCKED: u8 = 2;

/// One worker's LIFO slot; see the module docs.
pub(crate) struct LifoSlot {
    state: AtomicU8,
    /// Rule "one hand in the slot".
    task: UnsafeCell<Option<TaskRef>>,
    /// Pushes so far (wrapping); written by the owner only.
    stamp: AtomicU32,
}

// SAFETY: `task` is the only field that is not `Sync`; rule "one hand in the
// slot" gives one thread at a time access to it, handed over by the state
// word's Release/Acquire pairs, and a `TaskRef` may move between threads.
unsafe impl Sync for LifoSlot {}

/// What a watcher saw in a slot: compare with the next look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Look {
    full: bool,
    stamp: u32,
}

impl LifoSlot {
    pub(crate) fn new() -> LifoSlot {
        LifoSlot {
            state: AtomicU8::new(EMPTY),
            task: UnsafeCell::new(None),
            stamp: AtomicU32::new(0),
        }
    }

    /// Owner: puts `task` in the slot. Returns the task that must go to
    /// the queue instead: the one it displaced, or `task` itself if a
    /// thief is taking the old one this instant (never wait for a thief:
    /// it may have been preempted).
    pub(crate) fn push(&self, task: TaskRef) -> Option<TaskRef> {
        let stamp = self.stamp.load(Relaxed).wrapping_add(1);
        self.stamp.store(stamp, Relaxed);
        if self.state.load(Acquire) == EMPTY {
            // SAFETY: rule "one hand in the slot"; the state is EMPTY and we
            // are the owner, the only one that leaves EMPTY.
            self.task.with_mut(|t| unsafe { *t = Some(task) });
            self.state.store(FULL, Release);
            return None;
        }
        if !self.lock() {
            return Some(task);
        }
        // SAFETY: rule "one hand in the slot"; we moved the state to LOCKED.
        let old = self.task.with_mut(|t| unsafe { (*t).replace(task) });
        self.state.store(FULL, Release);
        old
    }

    /// Owner: takes the slot's task, if any.
    pub(crate) fn pop(&self) -> Option<TaskRef> {
        if self.state.load(Relaxed) == EMPTY {
            return None;
        }
        // Fails only if a thief is taking it: then it is the thief's.
        self.take()
    }

    /// Any thread: takes the slot's task if it is `FULL`.
    pub(crate) fn take(&self) -> Option<TaskRef> {
        if !self.lock() {
            return None;
        }
        // SAFETY: rule "one hand in the slot"; we moved the state to LOCKED.
        let task = self.task.with_mut(|t| unsafe { (*t).take() });
        self.state.store(EMPTY, Release);
        task
    }

    /// Watcher: what the slot holds now, to compare with the next look.
    pub(crate) fn look(&self) -> Look {
        let full = self.state.load(Acquire) != EMPTY;
        Look {
            full,
            stamp: self.stamp.load(Relaxed),
        }
    }

    /// `FULL` to `LOCKED`; false if the slot was not `FULL`.
    fn lock(&self) -> bool {
        self.state
            .compare_exchange(FULL, LOCKED, Acquire, Relaxed)
            .is_ok()
    }
}

impl Look {
    /// Whether a task has sat in the slot from the `earlier` look to this
    /// one: the slot was full both times and nothing was pushed between.
    pub(crate) fn stuck_since(self, earlier: Look) -> bool {
        self.full && earlier.full && self.stamp == earlier.stamp
    }
}

#[cfg(all(test, not(cancel_scope_loom)))]
mod tests {
    use super::LifoSlot;
    use crate::task::testing::holding;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    /// Counts its drop: one per task freed.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn a_task_stuck_since_a_look_is_taken_and_every_task_comes_out_once() {
        const TASKS: usize = if cfg!(miri) { 200 } else { 20_000 };
        let dropped = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(LifoSlot::new());
        let (first, second) = (slot.look(), slot.look());
        assert!(
            !second.stuck_since(first),
            "an empty slot holds nothing stuck"
        );
        let done = Arc::new(AtomicBool::new(false));
        let thief = {
            let (slot, done) = (slot.clone(), done.clone());
            std::thread::spawn(move || {
                let mut stolen = 0;
                while !done.load(SeqCst) {
                    stolen += usize::from(slot.take().is_some());
                    std::hint::spin_loop();
                }
                stolen
            })
        };
        let mut kept = 0;
        for i in 0..TASKS {
            let task = holding(Counted(dropped.clone()));
            kept += usize::from(slot.push(task).is_some());
            if i % 3 == 0 {
                kept += usize::from(slot.pop().is_some());
            }
        }
        done.store(true, SeqCst);
        let stolen = thief.join().unwrap();
        kept += usize::from(slot.pop().is_some());
        assert_eq!(kept + stolen, TASKS);
        assert_eq!(dropped.load(SeqCst), TASKS, "each task freed once");
        assert!(slot.push(holding(())).is_none());
        let before = slot.look();
        assert!(
            slot.look().stuck_since(before),
            "nothing was pushed in between"
        );
        assert!(slot.take().is_some());
    }
}

/// loom models of the slot: the owner pushing and taking while a thief
/// takes, in every order. Each task must come out exactly once.
///
/// Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.
#[cfg(all(test, cancel_scope_loom))]
mod loom_models {
    use super::LifoSlot;
    use crate::task::testing::{holding, same};
    use crate::task::TaskRef;
    use loom::thread;
    use std::sync::Arc;

    /// The owner pushes two tasks (the second displaces the first, or is
    /// queued itself if a thief holds the slot) and takes one back, while
    /// a thief takes: each task comes out exactly once.
    #[test]
    fn owner_and_thief_take_each_task_once() {
        loom::model(|| {
            let tasks: [TaskRef; 2] = [holding(()), holding(())];
            let slot = Arc::new(LifoSlot::new());
            let thief = {
                let slot = slot.clone();
                thread::spawn(move || slot.take())
            };
            let mut out: Vec<TaskRef> = Vec::new();
            out.extend(slot.push(tasks[0].clone()));
            out.extend(slot.push(tasks[1].clone()));
            out.extend(slot.pop());
            out.extend(thief.join().unwrap());
            out.extend(slot.take());
            for task in &tasks {
                let times = out.iter().filter(|t| same(t, task)).count();
                assert_eq!(times, 1, "a task came out {times} times");
            }
            assert_eq!(out.len(), 2);
        });
    }
}
