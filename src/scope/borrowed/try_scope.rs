//! [`BorrowScope::try_scope`]: a nested borrowing scope whose first error
//! cancels it, the borrowing twin of [`try_scope`](crate::try_scope())
//! (its module says how the policy works).

use super::{BorrowJoinHandle, BorrowScope, Captures};
use crate::cancelled::Cancelled;
use crate::scope::try_scope;
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

impl<'env> BorrowScope<'env> {
    /// Opens a nested borrowing scope whose first error cancels it:
    /// [`try_scope`](crate::try_scope()) with a borrowing body, which
    /// resolves the same way (`Ok(Ok(value))`, `Ok(Err(first error))`, or
    /// `Err(Cancelled)` for a cancel from outside). Panics as
    /// [`scope`](BorrowScope::scope) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let records = ["12", "7", "oops", "40"];
    /// let records = &records;
    /// let out = runtime::scoped(|s| async move {
    ///     s.try_scope(|t| async move {
    ///         let parsed: Vec<_> = records
    ///             .iter()
    ///             .map(|r| t.spawn(async move { r.parse::<u32>().map_err(|_| *r) }))
    ///             .collect();
    ///         let mut sum = 0;
    ///         for task in parsed {
    ///             if let Ok(n) = task.await {
    ///                 sum += n;
    ///             }
    ///         }
    ///         Ok(sum)
    ///     })
    ///     .await
    /// });
    /// assert_eq!(out, Ok(Ok(Err("oops"))));
    /// ```
    #[track_caller]
    pub fn try_scope<B, Fut, T, E>(
        &self,
        body: B,
    ) -> impl Future<Output = Result<Result<T, E>, Cancelled>> + Captures<'env>
    where
        B: FnOnce(BorrowTryScope<'env, E>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Send + 'env,
    {
        let first_error = Arc::new(Mutex::new(None));
        let slot = first_error.clone();
        let inner = self.scope(move |s| {
            let handle = BorrowTryScope {
                scope: s,
                first_error: slot,
            };
            let body = body(handle.clone());
            try_scope::body_or_fail(body, move |error| handle.fail(error))
        });
        async move { try_scope::outcome(inner.await, &first_error) }
    }
}

/// The handle of [`BorrowScope::try_scope`]: spawns fallible borrowing
/// tasks, the borrowing twin of [`TryScope`](crate::TryScope).
///
/// It derefs to its [`BorrowScope`] (and so to its
/// [`Scope`](crate::Scope)), for `cancel`, `cancel_after`, nested scopes
/// and plain borrowing `spawn`.
pub struct BorrowTryScope<'env, E> {
    scope: BorrowScope<'env>,
    first_error: Arc<Mutex<Option<E>>>,
}

impl<'env, E: Send + 'env> BorrowTryScope<'env, E> {
    /// Spawns a fallible borrowing task. If it returns `Err`, the error is
    /// recorded (if it is the first) and the scope is cancelled; the
    /// task's own handle then resolves to `Err(Cancelled)` with
    /// [`CancelReason::Failed`](crate::CancelReason::Failed).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let halves = (20, 22);
    /// let halves = &halves;
    /// let out = runtime::scoped(|s| async move {
    ///     s.try_scope(|t| async move {
    ///         let a = t.spawn(async move { Ok::<_, String>(halves.0) });
    ///         let b = t.spawn(async move { Ok(halves.1) });
    ///         Ok(a.await.unwrap() + b.await.unwrap())
    ///     })
    ///     .await
    /// });
    /// assert_eq!(out, Ok(Ok(Ok(42))));
    /// ```
    pub fn spawn<F, T>(&self, future: F) -> BorrowJoinHandle<'_, T>
    where
        F: Future<Output = Result<T, E>> + Send + 'env,
        T: Send + 'env,
    {
        let handle = self.clone();
        self.scope
            .spawn(try_scope::value_or_fail(future, move |error| {
                handle.fail(error)
            }))
    }

    /// Records `error` if it is the first, and cancels the scope (as a
    /// `TryScope` does).
    fn fail(&self, error: E) {
        try_scope::fail(&self.scope, &self.first_error, error);
    }
}

impl<'env, E> Deref for BorrowTryScope<'env, E> {
    type Target = BorrowScope<'env>;

    fn deref(&self) -> &BorrowScope<'env> {
        &self.scope
    }
}

impl<E> Clone for BorrowTryScope<'_, E> {
    fn clone(&self) -> Self {
        BorrowTryScope {
            scope: self.scope.clone(),
            first_error: self.first_error.clone(),
        }
    }
}

impl<E> fmt::Debug for BorrowTryScope<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BorrowTryScope")
            .field("scope", &self.scope)
            .finish()
    }
}
