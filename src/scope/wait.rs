//! [`WaitCancelled`]: a future that resolves once a scope is cancelled.

use super::handle::{CancelHandle, Target};
use super::tree::CancelWait;
use crate::cancelled::Cancelled;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future returned by [`Scope::cancelled`](crate::Scope::cancelled) and
/// [`CancelHandle::cancelled`](crate::CancelHandle::cancelled).
///
/// Unlike the runtime's other futures, it spends none of the task's
/// budget (see [`consume_budget`](crate::task::consume_budget)) and is
/// ready once its scope is cancelled even when the task awaiting it is
/// cancelled too, so that `or(work, s.cancelled())` ends: `work`'s
/// `.await`s on the runtime's futures stay pending in a cancelled task.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitCancelled {
    target: Target,
    /// Our waker's key in the node's waiters, or in an early handle's.
    key: Option<usize>,
}

impl WaitCancelled {
    pub(super) fn new(target: Target) -> WaitCancelled {
        WaitCancelled { target, key: None }
    }
}

impl Future for WaitCancelled {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        let this = &mut *self;
        loop {
            match &this.target {
                Target::Node(node) => {
                    if node.cancelled.is_set() {
                        this.key = None;
                        return Poll::Ready(node.cancel_value());
                    }
                    return match node.poll_cancelled(this.key, cx.waker()) {
                        CancelWait::Cancelled(cancelled) => {
                            this.key = None;
                            Poll::Ready(cancelled)
                        }
                        CancelWait::Waiting(key) => {
                            this.key = Some(key);
                            Poll::Pending
                        }
                        CancelWait::Never => {
                            this.key = None;
                            Poll::Pending
                        }
                    };
                }
                Target::Early(early) => {
                    let mut early = early.lock();
                    if let Some(node) = early.node.clone() {
                        // The scope opened: wait on its node from now on.
                        if let Some(key) = this.key.take() {
                            early.waiters.try_remove(key);
                        }
                        drop(early);
                        this.target = Target::Node(node);
                        continue;
                    }
                    if let Some(cancelled) = CancelHandle::early_cancelled(&early) {
                        if let Some(key) = this.key.take() {
                            early.waiters.try_remove(key);
                        }
                        return Poll::Ready(cancelled);
                    }
                    match this.key.and_then(|k| early.waiters.get_mut(k)) {
                        Some(waker) => waker.clone_from(cx.waker()),
                        None => this.key = Some(early.waiters.insert(cx.waker().clone())),
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for WaitCancelled {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        match &self.target {
            Target::Node(node) => node.forget_cancel_waiter(key),
            Target::Early(early) => {
                let waker = early.lock().waiters.try_remove(key);
                drop(waker);
            }
        }
    }
}

impl fmt::Debug for WaitCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = match &self.target {
            Target::Node(node) => Some(node.id()),
            Target::Early(early) => early.lock().node.as_ref().map(|n| n.id()),
        };
        f.debug_struct("WaitCancelled").field("scope", &id).finish()
    }
}
