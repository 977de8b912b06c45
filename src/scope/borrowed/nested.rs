//! Scopes nested in a borrowing scope, whose tasks borrow too: the
//! borrowing twins of [`scope`](crate::scope()),
//! [`linked_scope`](crate::linked_scope),
//! [`supervisor_scope`](crate::supervisor_scope),
//! [`move_on_after`](crate::move_on_after) and
//! [`shielded_scope`](crate::shielded_scope), as methods of the lending
//! [`BorrowScope`].
//!
//! Each is the ordinary scope future (it opens at its first poll under
//! the scope being polled, and has every option and policy of its kind),
//! with a body that lends: when the scope opens, it checks that its node
//! descends from the lender's, so that it is in the lender's call (rule
//! E), and hands its body a `BorrowScope` of the same `'env`. A nested
//! scope opened anywhere else (its future moved out of the call, and
//! polled after it) panics before its body runs.

use super::{BorrowScope, Captures};
use crate::cancelled::Cancelled;
use crate::scope::future::ScopeFuture;
use crate::scope::tree::{Kind, NodeRef};
use crate::scope::{Scope, ScopeLocal};
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a nested scope panics with when it opens outside its lender.
const OUTSIDE_ITS_LENDER: &str = "cancel_scope: a scope nested in a `BorrowScope` was \
    opened outside it; await it in that scope's body or tasks, or below them";

impl<'env> BorrowScope<'env> {
    /// Opens a scope nested in this one, whose tasks borrow as this
    /// one's do: [`scope`](crate::scope()) with a borrowing body. The
    /// future resolves as a [`scope`](crate::scope())'s does; its builder
    /// methods ([`named`](ScopeFuture::named),
    /// [`with_local`](ScopeFuture::with_local), ...) work as usual.
    ///
    /// # Panics
    ///
    /// At its first poll, if that poll is not inside this scope (in its
    /// body or a task, or in a scope below them): its future was moved
    /// out of the call. The panic goes where a panic of the nested
    /// scope's body would.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let rows = vec![vec![1, 2], vec![3, 4, 5]];
    /// let rows = &rows;
    /// let out = runtime::scoped(|s| async move {
    ///     let inner = s.scope(|inner| async move {
    ///         let a = inner.spawn(async move { rows[0].iter().sum::<i32>() });
    ///         let b = inner.spawn(async move { rows[1].iter().sum::<i32>() });
    ///         a.await.unwrap() + b.await.unwrap()
    ///     });
    ///     inner.named("sums").await
    /// });
    /// assert_eq!(out, Ok(Ok(15)));
    /// ```
    #[track_caller]
    pub fn scope<B, Fut>(
        &self,
        body: B,
    ) -> ScopeFuture<impl FnOnce(Scope) -> Fut + Captures<'env>, Fut>
    where
        B: FnOnce(BorrowScope<'env>) -> Fut,
        Fut: Future,
    {
        ScopeFuture::new(self.lend_to(body), Kind::Plain, Location::caller())
    }

    /// Opens a nested borrowing scope whose cancellation also cancels
    /// this one: [`linked_scope`](crate::linked_scope) with a borrowing
    /// body. Panics as [`scope`](BorrowScope::scope) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime;
    ///
    /// let limit = 3;
    /// let limit = &limit;
    /// let out = runtime::scoped(|s| async move {
    ///     s.spawn(std::future::pending::<()>()); // would never end
    ///     s.linked_scope(|inner| async move {
    ///         if *limit > 2 {
    ///             inner.cancel(); // cancels `s` too, through the link
    ///         }
    ///     })
    ///     .await
    /// });
    /// assert!(out.is_err());
    /// ```
    #[track_caller]
    pub fn linked_scope<B, Fut>(
        &self,
        body: B,
    ) -> ScopeFuture<impl FnOnce(Scope) -> Fut + Captures<'env>, Fut>
    where
        B: FnOnce(BorrowScope<'env>) -> Fut,
        Fut: Future,
    {
        ScopeFuture::new(self.lend_to(body), Kind::Linked, Location::caller())
    }

    /// Opens a nested borrowing scope in which a task's panic stays with
    /// the task: [`supervisor_scope`](crate::supervisor_scope) with a
    /// borrowing body. Panics as [`scope`](BorrowScope::scope) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, CancelReason};
    ///
    /// let inputs = ["7", "x", "35"];
    /// let inputs = &inputs;
    /// let out = runtime::scoped(|s| async move {
    ///     s.supervisor_scope(|inner| async move {
    ///         let parsed: Vec<_> = inputs
    ///             .iter()
    ///             .map(|text| inner.spawn(async move { text.parse::<u32>().unwrap() }))
    ///             .collect();
    ///         let mut good = Vec::new();
    ///         for task in parsed {
    ///             match task.await {
    ///                 Ok(n) => good.push(n),
    ///                 Err(e) => assert_eq!(e.reason(), &CancelReason::Panicked),
    ///             }
    ///         }
    ///         good
    ///     })
    ///     .await
    /// });
    /// assert_eq!(out, Ok(Ok(vec![7, 35]))); // "x" panicked alone
    /// ```
    #[track_caller]
    pub fn supervisor_scope<B, Fut>(
        &self,
        body: B,
    ) -> ScopeFuture<impl FnOnce(Scope) -> Fut + Captures<'env>, Fut>
    where
        B: FnOnce(BorrowScope<'env>) -> Fut,
        Fut: Future,
    {
        ScopeFuture::supervisor(self.lend_to(body), Location::caller())
    }

    /// Opens a nested borrowing scope with a deadline `duration` from its
    /// start: [`move_on_after`](crate::move_on_after) with a borrowing
    /// body. Panics as [`scope`](BorrowScope::scope) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let delays = [10u64, 20, 5_000];
    /// let delays = &delays;
    /// let done = std::sync::Mutex::new(Vec::new());
    /// let done = &done;
    /// let out = rt.scoped(|s| async move {
    ///     s.move_on_after(Duration::from_millis(100), |inner| async move {
    ///         for ms in delays {
    ///             inner.spawn(async move {
    ///                 sleep(Duration::from_millis(*ms)).await;
    ///                 done.lock().unwrap().push(*ms);
    ///             });
    ///         }
    ///     })
    ///     .await
    ///     .is_err()
    /// });
    /// assert_eq!(out, Ok(true)); // the deadline cut the slow one short
    /// assert_eq!(*done.lock().unwrap(), [10, 20]);
    /// ```
    #[track_caller]
    pub fn move_on_after<B, Fut>(
        &self,
        duration: Duration,
        body: B,
    ) -> ScopeFuture<impl FnOnce(Scope) -> Fut + Captures<'env>, Fut>
    where
        B: FnOnce(BorrowScope<'env>) -> Fut,
        Fut: Future,
    {
        ScopeFuture::with_deadline(self.lend_to(body), duration, Location::caller())
    }

    /// Opens a nested borrowing scope that the cancellation of enclosing
    /// scopes does not reach: [`shielded_scope`](crate::shielded_scope)
    /// with a borrowing body, whose future runs as a task of the shield
    /// (so it is `Send + 'env`). The call still waits for it: a shield holds off a
    /// cancel, never the end of the call. Panics as
    /// [`scope`](BorrowScope::scope) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, sync::Event, time::sleep};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    ///
    /// let flushed = AtomicBool::new(false);
    /// let flushed = &flushed;
    /// let started = Event::new();
    /// let started = &started;
    /// let out = runtime::scoped(|s| async move {
    ///     s.spawn(s.shielded_scope(move |_| async move {
    ///         started.set();
    ///         sleep(Duration::from_millis(20)).await; // e.g. flush a buffer
    ///         flushed.store(true, Ordering::SeqCst);
    ///     }));
    ///     started.wait().await;
    ///     s.cancel(); // reaches everything but the shield
    /// });
    /// assert!(out.is_err());
    /// assert!(flushed.load(Ordering::SeqCst), "the call waited for the shield");
    /// ```
    #[track_caller]
    pub fn shielded_scope<B, Fut>(
        &self,
        body: B,
    ) -> BorrowShieldedScope<
        impl FnOnce(Scope) -> JoinHandle<Fut::Output> + Captures<'env>,
        Fut::Output,
    >
    where
        B: FnOnce(BorrowScope<'env>) -> Fut,
        Fut: Future + Send + 'env,
        Fut::Output: Send + 'env,
    {
        let lender = self.scope.node.clone();
        let start = move |scope: Scope| {
            let shield = lends_to(&lender, scope);
            let body = body(shield.clone());
            shield.lend(body)
        };
        BorrowShieldedScope {
            scope: ScopeFuture::new(start, Kind::Shielded, Location::caller()),
        }
    }

    /// The body of a nested scope, as the scope future calls it: checks
    /// where the scope opened, then runs `body` with a borrowing handle.
    fn lend_to<B, Fut>(&self, body: B) -> impl FnOnce(Scope) -> Fut + Captures<'env>
    where
        B: FnOnce(BorrowScope<'env>) -> Fut,
    {
        let lender = self.scope.node.clone();
        move |scope: Scope| body(lends_to(&lender, scope))
    }
}

/// The borrowing handle of `scope`, a nested scope that just opened, if it
/// opened inside `lender`'s subtree (rule "the call outlives its tasks");
/// panics otherwise.
fn lends_to<'env>(lender: &NodeRef, scope: Scope) -> BorrowScope<'env> {
    assert!(scope.node.descends_from(lender), "{}", OUTSIDE_ITS_LENDER);
    BorrowScope::new(scope)
}

/// The future returned by [`BorrowScope::shielded_scope`]: the borrowing
/// twin of [`ShieldedScope`](crate::ShieldedScope).
#[must_use = "a scope does nothing unless awaited"]
pub struct BorrowShieldedScope<F, T> {
    /// `F` spawns the body as a task of the shield, whose handle is the
    /// scope future's body.
    scope: ScopeFuture<F, JoinHandle<T>>,
}

impl<F, T> BorrowShieldedScope<F, T>
where
    F: FnOnce(Scope) -> JoinHandle<T>,
{
    /// Names the shield; see [`ScopeFuture::named`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime::Runtime;
    ///
    /// let rt = Runtime::new();
    /// let rt = &rt;
    /// let out = rt.scoped(|s| async move {
    ///     s.shielded_scope(|_| async move { rt.scope_tree().to_string() })
    ///         .named("flush")
    ///         .await
    /// });
    /// assert!(out.unwrap().unwrap().contains("\"flush\""));
    /// ```
    pub fn named(self, name: impl Into<Arc<str>>) -> Self {
        BorrowShieldedScope {
            scope: self.scope.named(name),
        }
    }

    /// Attaches a scope-local value; see [`ScopeFuture::with_local`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, ScopeLocal};
    ///
    /// static STEP: ScopeLocal<&str> = ScopeLocal::new();
    /// let out = runtime::scoped(|s| async move {
    ///     s.shielded_scope(|_| async { STEP.get() }).with_local(&STEP, "flush").await
    /// });
    /// assert_eq!(out, Ok(Ok(Some("flush"))));
    /// ```
    pub fn with_local<V: Send + Sync + 'static>(
        self,
        key: &'static ScopeLocal<V>,
        value: V,
    ) -> Self {
        BorrowShieldedScope {
            scope: self.scope.with_local(key, value),
        }
    }
}

impl<F, T> Future for BorrowShieldedScope<F, T>
where
    F: FnOnce(Scope) -> JoinHandle<T>,
{
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.scope)
            .poll(cx)
            .map(|out| out.and_then(|body| body))
    }
}

impl<F, T> fmt::Debug for BorrowShieldedScope<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BorrowShieldedScope")
            .field("scope", &self.scope)
            .finish()
    }
}
