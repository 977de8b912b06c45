//! How a task is bound to its scope: the scheduler half of a task.
//!
//! The task module knows nothing of scopes; it talks to its owner through
//! the `Schedule` trait, implemented here.
//!
//! **Rule "binding followed while live".** A task points to its node without
//! owning it: no per-task count on the node's shared line. The pointer is
//! followed only while the task is live in the node (spawned and not yet
//! released), which is exactly when the task can be woken, polled, delivered
//! or released; tree invariant 2 keeps the node alive that long. A waker's
//! push counts as live: the task is not released until the push is done (rule
//! "push before release" in `task/state.rs`).

use super::tree::Node;
use crate::cancelled::Cancelled;
use crate::panic::Panic;
use crate::runtime::context;
use crate::runtime::worker::Push;
use crate::task::{Ended, Schedule, TaskId, TaskRef};
use crate::trace::EventKind;
use std::ptr::NonNull;

/// How a task is bound to its scope: the task's [`Schedule`] impl.
pub(crate) struct TaskBinding {
    /// Rule "binding followed while live".
    pub(super) node: NonNull<Node>,
}

// SAFETY: the node pointer is followed only under rule "binding followed while
// live", from any thread: a `Node` is `Send + Sync`.
unsafe impl Send for TaskBinding {}
// SAFETY: as for `Send`.
unsafe impl Sync for TaskBinding {}

impl TaskBinding {
    pub(super) fn node(&self) -> &Node {
        // SAFETY: rule "binding followed while live"; every caller below runs
        // while the task is live.
        unsafe { self.node.as_ref() }
    }

    /// [`Schedule::enter`] on a recorded runtime: the poll between its two
    /// events. Out of line, so that a poll where nothing is recorded pays
    /// one test.
    #[cold]
    #[inline(never)]
    fn enter_recorded<R>(&self, task: TaskId, poll: impl FnOnce() -> R) -> R {
        let node = self.node();
        let shared = node.shared();
        let (task, scope) = (task.number(), node.id());
        shared.record(|| EventKind::PollStarted { task, scope });
        let out = context::enter_scope(self.node, poll);
        shared.record(|| EventKind::PollEnded { task });
        out
    }
}

impl Schedule for TaskBinding {
    fn schedule(&self, task: TaskRef) {
        self.node().shared().schedule(task, Push::Next);
    }

    #[inline]
    fn enter<R>(&self, task: TaskId, poll: impl FnOnce() -> R) -> R {
        if self.node().shared().records() {
            return self.enter_recorded(task, poll);
        }
        context::enter_scope(self.node, poll)
    }

    fn cancelled(&self) -> Cancelled {
        self.node().cancel_value()
    }

    fn keeps_panics(&self) -> bool {
        self.node().supervises()
    }

    fn release(&self, id: TaskId, ended: Ended, panic: Option<Panic>) {
        // SAFETY: rule "binding followed while live"; the task is live until
        // this call, which is its last use of the pointer.
        unsafe { Node::release_task(self.node, id, ended, panic) };
    }
}
