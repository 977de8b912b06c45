//! [`try_scope`]: a scope that fails fast on the first error.
//!
//! The error policy of Java's `allSuccessfulOrThrow` and Kotlin's
//! `coroutineScope`: tasks return `Result<_, E>`, and the first `Err` (from
//! a task or the body) cancels the scope, so its siblings stop; the scope
//! resolves to that error once every task has ended. In a plain [`scope`]
//! a task's `Err` is just a value.

use super::tree::Links;
use super::{scope, Scope};
use crate::cancelled::{CancelReason, Cancelled};
use crate::task::JoinHandle;
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// Opens a scope whose first error cancels it.
///
/// Resolves to `Ok(Ok(value))` when the body and every task succeed,
/// `Ok(Err(error))` with the *first* error when one fails (its siblings are
/// cancelled, with [`CancelReason::Failed`]), and `Err(Cancelled)` when the
/// scope was cancelled for another reason (from outside, or a deadline).
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, try_scope};
///
/// let out = runtime::block_on(try_scope(|s| async move {
///     s.spawn(async { Ok(1) });
///     s.spawn(async { Err::<i32, _>("disk full") });
///     s.spawn(std::future::pending::<Result<i32, &str>>()); // cancelled
///     Ok(())
/// }));
/// assert_eq!(out, Ok(Err("disk full")));
/// ```
#[track_caller]
pub fn try_scope<F, Fut, T, E>(body: F) -> impl Future<Output = Result<Result<T, E>, Cancelled>>
where
    F: FnOnce(TryScope<E>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Send + 'static,
{
    let first_error = Arc::new(Mutex::new(None));
    let slot = first_error.clone();
    let inner = scope(move |s| {
        let handle = TryScope {
            scope: s,
            first_error: slot,
        };
        let body = body(handle.clone());
        body_or_fail(body, move |error| handle.fail(error))
    });
    async move { outcome(inner.await, &first_error) }
}

/// A try scope's body, borrowing or not: its value, or, on `Err`, a
/// failure (`fail`) and no value.
pub(super) async fn body_or_fail<T, E>(
    body: impl Future<Output = Result<T, E>>,
    fail: impl FnOnce(E),
) -> Option<T> {
    match body.await {
        Ok(value) => Some(value),
        Err(error) => {
            fail(error);
            None
        }
    }
}

/// What a try scope, borrowing or not, returns once its scope (whose body
/// is [`body_or_fail`]) has ended: the first error if there was one (its
/// cancel is the failure's own), else the scope's result.
pub(super) fn outcome<T, E>(
    out: Result<Option<T>, Cancelled>,
    first_error: &Mutex<Option<E>>,
) -> Result<Result<T, E>, Cancelled> {
    match (out, first_error.lock().take()) {
        (_, Some(error)) => Ok(Err(error)),
        (Ok(Some(value)), None) => Ok(Ok(value)),
        (Ok(None), None) => unreachable!("a failed body recorded its error"),
        (Err(cancelled), None) => Err(cancelled),
    }
}

/// The handle of a [`try_scope`]: spawns fallible tasks.
///
/// It derefs to the underlying [`Scope`], for `cancel`, `cancel_after`,
/// `cancelled` and plain `spawn`.
pub struct TryScope<E> {
    scope: Scope,
    first_error: Arc<Mutex<Option<E>>>,
}

impl<E: Send + 'static> TryScope<E> {
    /// Spawns a fallible task. If it returns `Err`, the error is recorded
    /// (if it is the first) and the scope is cancelled; the task's own
    /// handle then resolves to `Err(Cancelled)` with
    /// [`CancelReason::Failed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, try_scope};
    ///
    /// let out = runtime::block_on(try_scope(|s| async move {
    ///     let a = s.spawn(async { Ok::<_, String>(20) });
    ///     let b = s.spawn(async { Ok(22) });
    ///     Ok(a.await.unwrap() + b.await.unwrap())
    /// }));
    /// assert_eq!(out, Ok(Ok(42)));
    /// ```
    pub fn spawn<F, T>(&self, future: F) -> JoinHandle<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.clone();
        self.scope
            .spawn(value_or_fail(future, move |error| handle.fail(error)))
    }

    /// Records `error` if it is the first, and cancels the scope.
    fn fail(&self, error: E) {
        fail(&self.scope, &self.first_error, error);
    }
}

impl<E> std::ops::Deref for TryScope<E> {
    type Target = Scope;

    fn deref(&self) -> &Scope {
        &self.scope
    }
}

impl<E> Clone for TryScope<E> {
    fn clone(&self) -> Self {
        TryScope {
            scope: self.scope.clone(),
            first_error: self.first_error.clone(),
        }
    }
}

impl<E> fmt::Debug for TryScope<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryScope")
            .field("scope", &self.scope)
            .finish()
    }
}

/// The body of a try scope's task, borrowing or not: `future`'s value, or,
/// on `Err`, a failure (`fail`) and no value ever: the failure's cancel
/// reaches this task too, which is dropped when this poll returns.
pub(super) async fn value_or_fail<T, E>(
    future: impl Future<Output = Result<T, E>>,
    fail: impl FnOnce(E),
) -> T {
    match future.await {
        Ok(value) => value,
        Err(error) => {
            fail(error);
            std::future::pending().await
        }
    }
}

/// A failure of a try scope, borrowing or not: keeps `error` if it is the
/// first, tells the scope's cleanups it failed (`Scope::defer`), and
/// cancels the scope.
pub(super) fn fail<E>(scope: &Scope, first_error: &Mutex<Option<E>>, error: E) {
    {
        let mut first = first_error.lock();
        if first.is_none() {
            *first = Some(error);
        }
    }
    scope.node.note_failure();
    scope.node.cancel(CancelReason::Failed, Links::Follow);
}
