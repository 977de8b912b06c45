//! [`WaitCancelled`]: a future that resolves once a scope is cancelled.

use super::tree::{CancelWait, Node};
use crate::cancelled::Cancelled;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The future returned by [`Scope::cancelled`](crate::Scope::cancelled) and
/// [`CancelHandle::cancelled`](crate::CancelHandle::cancelled).
#[must_use = "futures do nothing unless awaited"]
pub struct WaitCancelled {
    pub(super) node: Arc<Node>,
    pub(super) key: Option<usize>,
}

impl Future for WaitCancelled {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        if let Some(cancelled) = self.node.cancelled.get() {
            return Poll::Ready(cancelled);
        }
        match self.node.poll_cancelled(self.key, cx.waker()) {
            CancelWait::Cancelled(cancelled) => {
                self.key = None;
                Poll::Ready(cancelled)
            }
            CancelWait::Waiting(key) => {
                self.key = Some(key);
                Poll::Pending
            }
            CancelWait::Never => {
                self.key = None;
                Poll::Pending
            }
        }
    }
}

impl Drop for WaitCancelled {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.node.forget_cancel_waiter(key);
        }
    }
}

impl fmt::Debug for WaitCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitCancelled")
            .field("scope", &self.node.id())
            .finish()
    }
}
