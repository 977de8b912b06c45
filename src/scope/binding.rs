//! How a task is bound to its scope: the scheduler half of a task.
//!
//! The task module knows nothing of scopes; it talks to its owner through
//! the `Schedule` trait, implemented here.

use super::tree::CancelBatch;
use super::ScopeInner;
use crate::cancelled::Cancelled;
use crate::context;
use crate::task::{Panic, Schedule, TaskRef};
use crate::worker::Push;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// How a task is bound to its scope: the task's [`Schedule`] impl.
pub(crate) struct TaskBinding {
    pub(super) scope: Arc<ScopeInner>,
    /// The task's key in its node's `tasks`; written and read under the
    /// tree lock.
    pub(super) slot: AtomicUsize,
}

impl Schedule for TaskBinding {
    fn schedule(&self, task: TaskRef) {
        self.scope.shared.schedule(task, Push::Next);
    }

    fn reschedule(&self, task: TaskRef) {
        self.scope.shared.schedule(task, Push::Back);
    }

    fn enter<R>(&self, poll: impl FnOnce() -> R) -> R {
        context::enter_scope(&self.scope, poll)
    }

    fn cancelled(&self) -> Cancelled {
        self.scope.cancel_value()
    }

    fn release(&self, panic: Option<Panic>) {
        let shared = &self.scope.shared;
        let mut batch = CancelBatch::default();
        let task = {
            let mut tree = shared.tree.lock();
            let slot = self.slot.load(Relaxed);
            tree.release_task(self.scope.id, slot, panic, &mut batch)
        };
        // The runner holds a reference too: this only decrements.
        drop(task);
        batch.run(shared);
    }
}
