//! [`AfterUnlock`]: what a lock holder found to do, done once the lock is gone.
//!
//! Waking a waker, dropping a waker, a task or a panic payload, removing a
//! timer, and running a cancel walk's claimed handlers can all run user code
//! or take another lock; none may happen under a node's lock (tree invariant
//! 3). Code under a lock hands them to an `AfterUnlock`, run once the lock is
//! released ([`Node::with`](super::Node::with) does both; the cancel walk and
//! `release_task` pair them by hand). It is free to build and, in the common
//! case of nothing or one waker, allocates nothing.

use super::handlers::Claimed;
use crate::panic::{drop_catching, drop_payload, keep_first, Panic};
use crate::task::TaskList;
use crate::time::timers::{TimerKey, Timers};
use crate::wake_list::WakeList;
use std::ptr::NonNull;
use std::task::Waker;

/// Work held back until a lock is released; see the module docs.
#[derive(Default)]
pub(crate) struct AfterUnlock {
    wakers: WakeList,
    /// The first two items to drop or remove: inline, so that the common
    /// cases (a release dropping its task reference, a retiring node
    /// dropping its future's waker and its ended tasks) allocate nothing.
    first: Option<Later>,
    second: Option<Later>,
    later: Vec<Later>,
    /// The timer map of the timers to remove: all of one runtime, that of
    /// the node whose lock was held.
    timers: Option<NonNull<Timers>>,
}

/// A timer to remove, or a value to drop.
enum Later {
    Timer(TimerKey),
    /// The values below are held only to be dropped.
    Waker(Waker),
    Panic(Panic),
    Tasks(TaskList),
    /// Cancel handlers a walk claimed (`handlers.rs`): its step 2 takes
    /// them out first ([`AfterUnlock::take_handlers`]); run here otherwise.
    Handlers(Box<Claimed>),
}

impl AfterUnlock {
    /// Wakes `waker`.
    pub(crate) fn wake(&mut self, waker: Waker) {
        self.wakers.push(waker);
    }

    /// Drops `waker` without waking it.
    pub(crate) fn drop_waker(&mut self, waker: Waker) {
        self.push(Later::Waker(waker));
    }

    pub(crate) fn drop_panic(&mut self, panic: Panic) {
        self.push(Later::Panic(panic));
    }

    /// Leaves the cancel handlers a walk claimed for its step 2.
    pub(crate) fn run_handlers(&mut self, claimed: Box<Claimed>) {
        self.push(Later::Handlers(claimed));
    }

    /// Takes back the cancel handlers left by [`run_handlers`](AfterUnlock::run_handlers), to run
    /// them before anything else.
    pub(crate) fn take_handlers(&mut self) -> Option<Box<Claimed>> {
        let claimed = if matches!(self.first, Some(Later::Handlers(_))) {
            self.first.take()
        } else if matches!(self.second, Some(Later::Handlers(_))) {
            self.second.take()
        } else {
            let at = self
                .later
                .iter()
                .position(|l| matches!(l, Later::Handlers(_)))?;
            Some(self.later.remove(at))
        };
        // `run` looks at `first` alone to see whether anything is left.
        if self.first.is_none() {
            self.first = self.second.take();
        }
        if self.second.is_none() && !self.later.is_empty() {
            self.second = Some(self.later.remove(0));
        }
        match claimed {
            Some(Later::Handlers(claimed)) => Some(claimed),
            _ => None,
        }
    }

    /// Drops a list of ended tasks (a retired node's: invariant 4).
    pub(crate) fn drop_tasks(&mut self, tasks: TaskList) {
        self.push(Later::Tasks(tasks));
    }

    /// Removes a timer from `timers`, which must be the timer map of the
    /// runtime whose node's lock is held: `run` follows it (see there).
    pub(crate) fn remove_timer(&mut self, timers: &Timers, key: TimerKey) {
        self.timers = Some(NonNull::from(timers));
        self.push(Later::Timer(key));
    }

    fn push(&mut self, item: Later) {
        if self.first.is_none() {
            self.first = Some(item);
        } else if self.second.is_none() {
            self.second = Some(item);
        } else {
            self.later.push(item);
        }
    }

    /// Does the work: removes timers, then wakes, then drops. Returns the
    /// first panic of a user value's drop (a waker's): the caller hands it
    /// to the scope whose lock was held (`Node::pass_panic`). A panicking
    /// wake is contained (`wake_list.rs`), and a payload that panics when
    /// dropped is leaked (`panic.rs`).
    ///
    /// The timer map is followed only if a timer is to be removed, and code
    /// that removes one holds a node of that runtime (a deadline is set or
    /// moved through a handle, and a leaving node's timer is removed by
    /// whoever holds its tree reference), which keeps the runtime, and its
    /// timers, alive.
    #[inline(always)]
    #[must_use = "a panic from a dropped waker goes to a scope"]
    pub(crate) fn run(self) -> Option<Panic> {
        // Most critical sections leave nothing behind: then there is
        // nothing to free either (`later` only grows once `first` is
        // taken), and skipping the fields' drops is worth it on the paths
        // that open, cancel and end a scope.
        let mut this = std::mem::ManuallyDrop::new(self);
        if this.wakers.is_empty() && this.first.is_none() {
            return None;
        }
        // Everything is moved out below: nothing is left to drop.
        this.run_slow()
    }

    /// Out of line, and by reference: an `AfterUnlock` is a few cache lines, and
    /// moving it into a call would copy them all. Leaves it empty.
    #[inline(never)]
    fn run_slow(&mut self) -> Option<Panic> {
        let wakers = std::mem::take(&mut self.wakers);
        let (first, second) = (self.first.take(), self.second.take());
        let later = std::mem::take(&mut self.later);
        let timers = self.timers;
        let remove = |item: &Later| {
            if let (Later::Timer(key), Some(timers)) = (item, timers) {
                // SAFETY: see `run`: a timer is only collected while a node
                // of this runtime is held, so the runtime is alive.
                unsafe { timers.as_ref() }.remove(*key);
            }
        };
        if let Some(item) = &first {
            remove(item);
        }
        if let Some(item) = &second {
            remove(item);
        }
        if !later.is_empty() {
            later.iter().for_each(remove);
        }
        wakers.wake_all();
        let mut caught = None;
        let mut drop_item = |item: Later| {
            let panic = match item {
                Later::Timer(_) => None,
                Later::Waker(waker) => drop_catching(waker),
                Later::Panic(payload) => {
                    drop_payload(payload);
                    None
                }
                Later::Tasks(tasks) => {
                    drop(tasks);
                    None
                }
                Later::Handlers(claimed) => {
                    claimed.run();
                    None
                }
            };
            if let Some(panic) = panic {
                keep_first(&mut caught, panic);
            }
        };
        if let Some(item) = first {
            drop_item(item);
        }
        if let Some(item) = second {
            drop_item(item);
        }
        if !later.is_empty() {
            later.into_iter().for_each(drop_item);
        }
        caught
    }
}
