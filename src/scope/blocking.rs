//! Blocking closures as tasks of their scope
//! ([`Scope::spawn_blocking`](crate::Scope::spawn_blocking)).
//!
//! A blocking closure is an ordinary task of its scope: listed in the
//! scope's task list, counted in its live tasks, reached by its cancel
//! walk. Two things differ, and they are all this file holds:
//!
//! - **Where it runs.** Its scheduler, [`BlockingBinding`], is the scope's
//!   [`TaskBinding`] but for where it pushes the task: to the runtime's
//!   blocking pool (`runtime/blocking_pool.rs`), not to the workers' queues.
//! - **What it does.** Its future, [`RunClosure`], calls the closure in
//!   its first poll, on the pool thread.
//!
//! So the scope's accounting and cancellation apply unchanged. A cancel
//! that comes while the task waits in the pool's queue claims it like any
//! idle task: the future, and the closure in it, is dropped and never
//! runs. A cancel that comes while the closure runs finds the task
//! `RUNNING` and leaves it to its runner, the pool thread; the scope waits
//! for it like for any running task (tree invariant 2).
//!
//! **A closure that returns keeps its value.** A cancel that comes while
//! the closure runs cannot stop it; when it returns, it ran to completion,
//! so its handle gives its value, as an async task's does when its last
//! poll returns `Ready` while a cancel is on its way. The scope was not
//! interrupted by it either (the scope's result rule, in
//! [`scope`](crate::scope())). A closure that wants to stop early checks a
//! [`CancelHandle`](crate::CancelHandle).

use super::binding::TaskBinding;
use crate::cancelled::Cancelled;
use crate::panic::Panic;
use crate::task::{budget, Ended, Schedule, TaskId, TaskRef};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A blocking closure's scheduler: its scope's binding, pushing to the
/// blocking pool.
pub(super) struct BlockingBinding(pub(super) TaskBinding);

impl Schedule for BlockingBinding {
    fn schedule(&self, task: TaskRef) {
        self.0.node().shared().blocking.submit(task);
    }

    fn enter<R>(&self, task: TaskId, poll: impl FnOnce() -> R) -> R {
        self.0.enter(task, poll)
    }

    fn cancelled(&self) -> Cancelled {
        self.0.cancelled()
    }

    fn keeps_panics(&self) -> bool {
        self.0.keeps_panics()
    }

    fn release(&self, id: TaskId, ended: Ended, panic: Option<Panic>) {
        self.0.release(id, ended, panic);
    }
}

/// The future of a blocking closure's task: runs the closure in its one
/// poll.
pub(super) struct RunClosure<F> {
    closure: Option<F>,
}

impl<F> RunClosure<F> {
    pub(super) fn new(closure: F) -> Self {
        RunClosure {
            closure: Some(closure),
        }
    }
}

// Nothing in it is pinned: the closure is taken out by value.
impl<F> Unpin for RunClosure<F> {}

impl<F, T> Future for RunClosure<F>
where
    F: FnOnce() -> T,
{
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let closure = self
            .closure
            .take()
            .expect("a blocking closure's task is polled once: its poll completes it");
        // The closure is not an `.await` of this task: an executor it runs
        // must see the runtime's futures as anywhere else, with no budget
        // and no cancel of ours (`task/budget.rs`).
        Poll::Ready(budget::outside_poll(closure))
    }
}
