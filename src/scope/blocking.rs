//! Blocking closures as tasks of their scope
//! ([`Scope::spawn_blocking`](crate::Scope::spawn_blocking)).
//!
//! A blocking closure is an ordinary task of its scope: listed in the
//! scope's task list, counted in its live tasks, reached by its cancel
//! walk. Two things differ, and they are all this file holds:
//!
//! - **Where it runs.** Its scheduler, [`BlockingBinding`], is the scope's
//!   [`TaskBinding`] but for where it pushes the task: to the runtime's
//!   blocking pool (`blocking_pool.rs`), not to the workers' queues.
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
//! **Cancellation wins over a blocking closure's value.** For an ordinary
//! task a value returned by a poll that a cancel overlapped reaches the
//! handle. A blocking closure's single poll can last seconds, so it is
//! treated as the cancel having come first: if the scope is cancelled when
//! the closure returns, [`RunClosure`] keeps the value and returns
//! `Pending` instead. The cancel walk that marked the scope has this task
//! on its list still (a task unlists itself only from a scope that is not
//! cancelled: tree invariant 4), and cancels it: either it already did
//! (the runner then sees `CANCELLED` when the poll returns and drops the
//! future), or it will, and finds the task idle and drops it. Either way
//! the value is dropped with the future and the handle resolves to
//! `Err(Cancelled)`; the task state word and the tree work as for every
//! other task.

use super::binding::TaskBinding;
use crate::cancelled::Cancelled;
use crate::context;
use crate::panic::Panic;
use crate::task::{budget, Schedule, TaskId, TaskRef};
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

    fn release(&self, id: TaskId, panic: Option<Panic>) {
        self.0.release(id, panic);
    }
}

/// The future of a blocking closure's task: runs the closure in its first
/// poll; see the module docs for why it may then return `Pending`.
pub(super) struct RunClosure<F, T> {
    closure: Option<F>,
    /// The value of a closure whose scope was cancelled while it ran,
    /// dropped with this future by the cancel.
    held: Option<T>,
}

impl<F, T> RunClosure<F, T> {
    pub(super) fn new(closure: F) -> Self {
        RunClosure {
            closure: Some(closure),
            held: None,
        }
    }
}

// Nothing in it is pinned: the closure is taken out by value.
impl<F, T> Unpin for RunClosure<F, T> {}

impl<F, T> Future for RunClosure<F, T>
where
    F: FnOnce() -> T,
{
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        if let Some(closure) = self.closure.take() {
            // The closure is not an `.await` of this task: an executor it
            // runs must see the runtime's futures as anywhere else, with
            // no budget and no cancel of ours (`task/budget.rs`).
            let value = budget::outside_poll(closure);
            // The task's binding entered its scope for this poll.
            if !context::current_scope_is_cancelled() {
                return Poll::Ready(value);
            }
            self.held = Some(value);
        }
        // Cancelled: the cancel on its way drops us (module docs). No
        // waker is kept, and a wake would find us here again.
        Poll::Pending
    }
}
