//! [`BorrowJoinHandle`]: awaiting a borrowing task's output.
//!
//! It is the task's [`JoinHandle`], with the lifetime of the borrow of the
//! [`BorrowScope`](super::BorrowScope) it was spawned through. That scope
//! handle is most often a local of the body or of a task, which keeps the join
//! handle inside the call; even one kept where the call's data lives (a
//! `BorrowScope<'env>` borrowed for `'env`) gives a join handle that cannot
//! outlive `'env`. So the output it drops (task rule "output through the join
//! slot": only the handle drops an output) is dropped while what it borrows
//! lives.

use crate::cancelled::Cancelled;
use crate::task::{JoinHandle, TaskCancelHandle};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An owned permission to await a borrowing task's output; the
/// borrowing twin of [`JoinHandle`], returned by
/// [`BorrowScope::spawn`](super::BorrowScope::spawn) and
/// [`BorrowScope::spawn_blocking`](super::BorrowScope::spawn_blocking).
///
/// A future of `Result<T, Cancelled>`, resolving as a [`JoinHandle`]
/// does. It borrows the [`BorrowScope`](super::BorrowScope) it was
/// spawned through (`'a`), so it stays inside the body or task that holds
/// that scope handle, and never outlives the data the call lends
/// (`'env`); it may not be moved into another task either (give the task
/// a clone of the scope handle, or send it the output). Dropping it detaches the task,
/// which its scope still waits for; forgetting it (`mem::forget`) leaks
/// the output, which is then never dropped.
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime;
///
/// let text = String::from("one two three");
/// let text = &text;
/// let out = runtime::scoped(|s| async move {
///     let words = s.spawn(async move { text.split(' ').count() });
///     let first = s.spawn(async move { text.split(' ').next() });
///     (words.await.unwrap(), first.await.unwrap())
/// });
/// assert_eq!(out, Ok((3, Some("one"))));
/// ```
pub struct BorrowJoinHandle<'a, T> {
    handle: JoinHandle<T>,
    scope: PhantomData<&'a ()>,
}

impl<T> BorrowJoinHandle<'_, T> {
    /// The handle of a task spawned through a borrowing scope handle that
    /// the new handle borrows.
    pub(super) fn new(handle: JoinHandle<T>) -> Self {
        BorrowJoinHandle {
            handle,
            scope: PhantomData,
        }
    }

    /// The task module's handle, for a set that keeps it under the same
    /// borrow.
    pub(super) fn into_inner(self) -> JoinHandle<T> {
        self.handle
    }

    /// Cancels this task alone; see [`JoinHandle::cancel`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, CancelReason};
    ///
    /// let ready = vec![1, 2, 3];
    /// let ready = &ready;
    /// let out = runtime::scoped(|s| async move {
    ///     let stuck = s.spawn(std::future::pending::<()>());
    ///     let fine = s.spawn(async move { ready.len() });
    ///     stuck.cancel();
    ///     assert_eq!(stuck.await.unwrap_err().reason(), &CancelReason::Explicit);
    ///     fine.await.unwrap()
    /// });
    /// assert_eq!(out, Ok(3)); // the scope went on
    /// ```
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// A handle that cancels this task without joining it; see
    /// [`JoinHandle::cancel_handle`]. It borrows nothing: it keeps the
    /// task's memory, never its future or output.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let out = runtime::scoped(|s| async move {
    ///     let task = s.spawn(std::future::pending::<()>());
    ///     let canceller = task.cancel_handle();
    ///     std::thread::spawn(move || canceller.cancel()).join().unwrap();
    ///     task.await.is_err()
    /// });
    /// assert_eq!(out, Ok(true));
    /// ```
    pub fn cancel_handle(&self) -> TaskCancelHandle {
        self.handle.cancel_handle()
    }

    /// Whether the task has finished: its output is ready, or it was
    /// cancelled or refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// runtime::scoped(|s| async move {
    ///     let task = s.spawn(std::future::pending::<()>());
    ///     assert!(!task.is_finished());
    ///     task.cancel();
    ///     assert!(task.is_finished());
    /// })
    /// .unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl<T> Future for BorrowJoinHandle<'_, T> {
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle).poll(cx)
    }
}

impl<T> fmt::Debug for BorrowJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BorrowJoinHandle").finish_non_exhaustive()
    }
}
