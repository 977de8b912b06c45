//! [`TaskList`]: the tasks of one scope that can still be cancelled.
//!
//! Most scopes have one task or none (a timeout around one call, a leaf of
//! a fan-out), so the first task lives in the node itself and only a second
//! one makes the list grow a buffer. A grown buffer is kept, empty, for the
//! next scope that spawns on the same thread: growing one to thousands of
//! entries for each fan-out, and freeing it (which makes glibc consolidate
//! the chunks of the tasks just freed), costs more than the spawns.

use crate::task::TaskRef;
use slab::Slab;
use std::cell::Cell;

/// A scope's cancellable tasks, keyed by the key each task's binding holds:
/// key 0 is the inline slot, key `k + 1` the buffer's entry `k`.
#[derive(Default)]
pub(crate) struct TaskList {
    first: Option<TaskRef>,
    rest: Slab<TaskRef>,
}

/// Buffers smaller than this are not worth a thread-local's visit.
const KEEP: usize = 64;

thread_local! {
    /// An empty buffer; at most one per thread. Reached with `try_with`: a
    /// runtime may be dropped by another thread-local's destructor.
    static SPARE: Cell<Slab<TaskRef>> = const { Cell::new(Slab::new()) };
}

impl TaskList {
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Lists `task`; returns its key.
    pub(crate) fn insert(&mut self, task: TaskRef) -> usize {
        if self.first.is_none() {
            self.first = Some(task);
            return 0;
        }
        if self.rest.capacity() == 0 {
            self.rest = SPARE.try_with(Cell::take).unwrap_or_default();
        }
        self.rest.insert(task) + 1
    }

    /// Unlists the task under `key`.
    pub(crate) fn remove(&mut self, key: usize) -> TaskRef {
        match key {
            0 => self.first.take().expect("a listed task"),
            k => self.rest.remove(k - 1),
        }
    }

    /// Takes every task out, in key order; the buffer goes back to the
    /// thread's spare.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = TaskRef> + '_ {
        self.first.take().into_iter().chain(self.rest.drain())
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        if self.rest.capacity() < KEEP {
            return;
        }
        let mut rest = std::mem::take(&mut self.rest);
        rest.clear(); // dropped lists are empty, but for a cancel's leftovers
        let _ = SPARE.try_with(|spare| {
            let kept = spare.take();
            spare.set(if kept.capacity() >= rest.capacity() {
                kept
            } else {
                rest
            });
        });
    }
}
