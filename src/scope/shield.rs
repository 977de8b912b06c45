//! [`shielded_scope`]: a scope that the cancellation of enclosing scopes
//! does not reach.
//!
//! Rust has no async `Drop`: a cancelled task's future is dropped, so
//! cleanup that must `.await` cannot live in a destructor. So a shield's
//! body runs as a task of the shielded node, not inline in the future that
//! awaits it: dropping that future detaches the body rather than stops it,
//! and the enclosing scope still waits for it (tree invariant 2).

use super::future::ScopeFuture;
use super::tree::Kind;
use super::Scope;
use crate::cancelled::Cancelled;
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Opens a scope that the cancellation of enclosing scopes does not reach.
///
/// Use it for cleanup that must finish even when everything around it is
/// being cancelled, like Trio's `shield=True` or Kotlin's `NonCancellable`.
/// Rust has no async `Drop`: a cancelled task's future is dropped, and a
/// destructor cannot `.await`. A shield is where such asynchronous cleanup
/// can run: its body runs as a task of its own, so even when the future
/// returned here is dropped (because the task awaiting it was cancelled),
/// the body and the tasks it spawned keep running, and the enclosing scope
/// waits for them before it ends. Hence `body` and its future must be
/// `Send + 'static`.
///
/// The shield's own [`Scope::cancel`] and deadlines still work. The future
/// resolves to the body's output, or `Err(Cancelled)` if the shield itself
/// was cancelled.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, shielded_scope, sync::Event, time::sleep};
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// use std::time::Duration;
///
/// let flushed = Arc::new(AtomicBool::new(false));
/// let done = flushed.clone();
/// let started = Event::new();
/// let out = runtime::block_on(scope(|s| async move {
///     let shield_started = started.clone();
///     s.spawn(shielded_scope(move |_| async move {
///         shield_started.set();
///         sleep(Duration::from_millis(20)).await; // e.g. flush a buffer
///         done.store(true, Ordering::SeqCst);
///     }));
///     started.wait().await;
///     s.cancel(); // reaches everything but the shield
/// }));
/// assert!(out.is_err());
/// assert!(flushed.load(Ordering::SeqCst), "the scope waited for the shield");
/// ```
#[track_caller]
pub fn shielded_scope<F, Fut>(body: F) -> ShieldedScope<Fut::Output>
where
    F: FnOnce(Scope) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let start: ShieldStart<Fut::Output> = Box::new(move |s: Scope| {
        let body = body(s.clone());
        // The body is not one of the shield's tasks for its limit: it is
        // the scope's body, run as a task (see above).
        s.spawn_plain(body)
    });
    ShieldedScope {
        scope: ScopeFuture::new(start, Kind::Shielded, Location::caller()),
    }
}

type ShieldStart<T> = Box<dyn FnOnce(Scope) -> JoinHandle<T> + Send>;

/// The future returned by [`shielded_scope`].
#[must_use = "a scope does nothing unless awaited"]
pub struct ShieldedScope<T> {
    scope: ScopeFuture<ShieldStart<T>, JoinHandle<T>>,
}

impl<T: Send + 'static> ShieldedScope<T> {
    /// Names the shield; see [`ScopeFuture::named`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, shielded_scope};
    /// use std::sync::Arc;
    ///
    /// let rt = Arc::new(Runtime::new());
    /// let inside = rt.clone();
    /// let out = rt.block_on(
    ///     shielded_scope(move |_| async move { inside.scope_tree().to_string() }).named("flush"),
    /// );
    /// assert!(out.unwrap().contains("\"flush\""));
    /// ```
    pub fn named(self, name: impl Into<std::sync::Arc<str>>) -> Self {
        ShieldedScope {
            scope: self.scope.named(name),
        }
    }

    /// Limits how many of the shield's tasks run at once; see
    /// [`ScopeFuture::limit`]. The body, which runs as a task of the
    /// shield, does not count.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, shielded_scope};
    ///
    /// let out = runtime::block_on(
    ///     shielded_scope(|s| async move {
    ///         let flushes: Vec<_> = (0..8).map(|i| s.spawn(async move { i })).collect();
    ///         let mut sum = 0;
    ///         for f in flushes {
    ///             sum += f.await.unwrap();
    ///         }
    ///         sum
    ///     })
    ///     .limit(2),
    /// );
    /// assert_eq!(out, Ok(28));
    /// ```
    #[track_caller]
    pub fn limit(self, n: usize) -> Self {
        ShieldedScope {
            scope: self.scope.limit(n),
        }
    }

    /// Attaches a scope-local value; see [`ScopeFuture::with_local`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, shielded_scope, ScopeLocal};
    ///
    /// static STEP: ScopeLocal<&str> = ScopeLocal::new();
    /// let out = runtime::block_on(
    ///     shielded_scope(|s| async move { s.spawn(async { STEP.get() }).await.unwrap() })
    ///         .with_local(&STEP, "flush"),
    /// );
    /// assert_eq!(out, Ok(Some("flush")));
    /// ```
    pub fn with_local<V: Send + Sync + 'static>(
        self,
        key: &'static super::ScopeLocal<V>,
        value: V,
    ) -> Self {
        ShieldedScope {
            scope: self.scope.with_local(key, value),
        }
    }
}

impl<T> Future for ShieldedScope<T> {
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.scope)
            .poll(cx)
            .map(|out| out.and_then(|body| body))
    }
}

impl<T> fmt::Debug for ShieldedScope<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShieldedScope")
            .field("scope", &self.scope)
            .finish()
    }
}
