//! [`WaitCancelled`]: a future that resolves once a scope is cancelled.

use super::tree::{CancelWait, Deferred};
use super::ScopeInner;
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
    pub(super) inner: Arc<ScopeInner>,
    pub(super) key: Option<usize>,
}

impl Future for WaitCancelled {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        if let Some(cancelled) = self.inner.cancelled.get() {
            return Poll::Ready(cancelled);
        }
        let mut deferred = Deferred::default();
        let mut tree = self.inner.shared.tree.lock();
        let wait = tree.poll_cancelled(self.inner.id, self.key, cx.waker(), &mut deferred);
        drop(tree);
        deferred.run(&self.inner.shared);
        match wait {
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
            let waker = self
                .inner
                .shared
                .tree
                .lock()
                .forget_cancel_waiter(self.inner.id, key);
            drop(waker);
        }
    }
}

impl fmt::Debug for WaitCancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitCancelled")
            .field("scope", &self.inner.id)
            .finish()
    }
}
