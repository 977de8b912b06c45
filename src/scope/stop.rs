//! Asking a subtree to stop, and shutting it down gracefully:
//! [`Scope::request_stop`], [`stop_requested`], [`is_stop_requested`],
//! [`Scope::shutdown`], and what a shutdown's hard cancel records
//! ([`GraceExpired`]).
//!
//! The node's side (the flag, its walk, the grace timer) is in
//! `tree/stop.rs`.

use super::tree::{NodeRef, StopWait};
use super::Scope;
use crate::runtime::context;
use crate::TreeSnapshot;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Whether a stop was requested of the scope being polled on this thread
/// (the current task's, or the body's), or reached it from an enclosing
/// scope; `false` outside any scope. No `Scope` needed: a task reads it
/// as it reads a [`ScopeLocal`](crate::ScopeLocal). A few loads.
///
/// See [`Scope::request_stop`] for where a request reaches.
///
/// # Examples
///
/// ```
/// use cancel_scope::{is_stop_requested, runtime, scope, task::yield_now};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let worker = s.spawn(async {
///         let mut batches = 0;
///         while !is_stop_requested() {
///             batches += 1; // one batch of work
///             yield_now().await;
///         }
///         batches // stopped between two batches, with its result
///     });
///     s.request_stop();
///     worker.await.unwrap()
/// }));
/// assert!(out.is_ok());
/// assert!(!is_stop_requested()); // outside any scope
/// ```
pub fn is_stop_requested() -> bool {
    context::with_current_scope(|scope| {
        // SAFETY: `with_current_scope` keeps the node alive while its
        // closure runs.
        scope.is_some_and(|node| unsafe { node.as_ref() }.is_stop_requested())
    })
}

/// A future that resolves once a stop is requested of the scope being
/// polled on this thread where it is called (the current task's, or the
/// body's), or reaches it from an enclosing scope. Called outside any
/// scope, it never resolves; nor does it if the scope ends without a
/// request.
///
/// A request is not a cancel: the task goes on running, and decides what
/// to finish first. Race it against the task's work (`future::or`, a
/// `select`) to stop taking new work.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, stop_requested};
/// use futures_lite::future;
///
/// let out = runtime::block_on(scope(|s| async move {
///     let (tx, jobs) = async_channel::unbounded::<u32>();
///     let worker = s.spawn(async move {
///         let mut done = Vec::new();
///         loop {
///             let next = async { jobs.recv().await.ok() };
///             let stop = async { stop_requested().await; None };
///             match future::or(stop, next).await {
///                 Some(job) => done.push(job),
///                 None => return done, // asked to stop, or no more jobs
///             }
///         }
///     });
///     tx.send(1).await.unwrap();
///     s.request_stop();
///     worker.await.unwrap()
/// }));
/// assert!(out.unwrap().len() <= 1);
/// ```
pub fn stop_requested() -> StopRequested {
    let node = context::with_current_scope(|scope| {
        // SAFETY: `with_current_scope` keeps the node alive while its
        // closure runs, and its pointer follows rule "pointers from the
        // box"; the reference taken is ours.
        scope.map(|node| unsafe { NodeRef::clone_raw(node) })
    });
    StopRequested { node, key: None }
}

/// The future returned by [`stop_requested`] and
/// [`Scope::stop_requested`]. Cancel safe.
#[must_use = "futures do nothing unless awaited"]
pub struct StopRequested {
    /// `None` outside any scope.
    node: Option<NodeRef>,
    /// Our waker's key in the node's waiters.
    key: Option<usize>,
}

impl Future for StopRequested {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(node) = &this.node else {
            return Poll::Pending;
        };
        match node.poll_stop(this.key, cx.waker()) {
            StopWait::Requested => {
                this.key = None;
                Poll::Ready(())
            }
            StopWait::Waiting(key) => {
                this.key = Some(key);
                Poll::Pending
            }
            StopWait::Never => {
                this.key = None;
                Poll::Pending
            }
        }
    }
}

impl Drop for StopRequested {
    fn drop(&mut self) {
        if let (Some(node), Some(key)) = (&self.node, self.key.take()) {
            node.forget_stop_waiter(key);
        }
    }
}

impl fmt::Debug for StopRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopRequested")
            .field("scope", &self.node.as_ref().map(|n| n.id()))
            .finish()
    }
}

/// The cause of a graceful shutdown's hard cancel
/// ([`CancelReason::GraceExpired`](crate::CancelReason::GraceExpired)):
/// the grace period, and the scopes still running when it ran out. Every
/// [`Cancelled`](crate::Cancelled) of that cancel carries it
/// ([`Cancelled::cause`](crate::Cancelled::cause), or the shortcut
/// [`Cancelled::still_running`](crate::Cancelled::still_running)).
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime::Builder, scope, time::sleep, GraceExpired};
/// use std::time::Duration;
///
/// let rt = Builder::new().start_paused(true).build().unwrap();
/// let out = rt.block_on(scope(|s| async move {
///     s.spawn(sleep(Duration::from_secs(60))); // does not listen
///     s.shutdown(Duration::from_secs(2));
/// }).named("jobs"));
/// let err = out.unwrap_err();
/// let expired = err.cause().unwrap().downcast_ref::<GraceExpired>().unwrap();
/// assert_eq!(expired.grace(), Duration::from_secs(2));
/// assert_eq!(expired.still_running().scopes()[0].name(), Some("jobs"));
/// println!("{err}"); // cancelled: the shutdown's grace period ran out: 2s passed; still running: ...
/// ```
#[derive(Clone, Debug)]
pub struct GraceExpired {
    grace: Duration,
    still_running: TreeSnapshot,
}

impl GraceExpired {
    pub(crate) fn new(grace: Duration, still_running: TreeSnapshot) -> GraceExpired {
        GraceExpired {
            grace,
            still_running,
        }
    }

    /// The grace period the shutdown gave.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The shut-down scope and the scopes nested in it, as they were
    /// when the grace ran out (each with its name, location, state and
    /// tasks), parents first; the first is the shut-down scope, at depth 0.
    pub fn still_running(&self) -> &TreeSnapshot {
        &self.still_running
    }
}

impl fmt::Display for GraceExpired {
    /// One line: the grace, then each scope still running by name (if it
    /// has one), id and location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} passed; still running: ", self.grace)?;
        for (i, scope) in self.still_running.scopes().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if let Some(name) = scope.name() {
                write!(f, "{name:?} ")?;
            }
            write!(f, "#{} at {}", scope.id(), scope.location())?;
        }
        Ok(())
    }
}

impl Error for GraceExpired {}

impl Scope {
    /// Requests a stop of this scope and every scope nested in it, up to
    /// shields: a request, not a cancel. Nothing is dropped; the scope's
    /// tasks see it ([`stop_requested`], [`is_stop_requested`], or the
    /// methods of the same names here), finish what they are doing and
    /// return, with their results. A task that does not look runs on.
    ///
    /// Where it reaches, and for how long:
    ///
    /// - every scope of the subtree, and every scope opened in it later;
    ///   a [`shielded_scope`](crate::shielded_scope) stops it, as it stops
    ///   a cancel (a request made of the shield itself reaches below it);
    /// - not the parent, even through a
    ///   [`linked_scope`](crate::linked_scope): links carry failures up, a
    ///   stop is a request from above;
    /// - for good: a request is never withdrawn, and requesting again does
    ///   nothing.
    ///
    /// [`shutdown`](Scope::shutdown) adds a grace period and a hard cancel.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, stop_requested};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let flusher = s.spawn(async {
    ///         stop_requested().await;
    ///         "flushed" // cleanup that awaits, with a result
    ///     });
    ///     s.request_stop();
    ///     flusher.await.unwrap()
    /// }));
    /// assert_eq!(out, Ok("flushed")); // nothing was cancelled
    /// ```
    pub fn request_stop(&self) {
        self.node.request_stop();
    }

    /// Whether a stop was requested of this scope, or reached it from an
    /// enclosing scope. See [`is_stop_requested`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|outer| async move {
    ///     scope(|inner| async move {
    ///         assert!(!inner.is_stop_requested());
    ///         outer.request_stop();
    ///         assert!(inner.is_stop_requested()); // it reached the inner scope
    ///     })
    ///     .await
    /// }));
    /// ```
    pub fn is_stop_requested(&self) -> bool {
        self.node.is_stop_requested()
    }

    /// A future that resolves once a stop is requested of this scope, or
    /// reaches it; see [`stop_requested`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let watched = s.clone();
    ///     let watcher = s.spawn(async move { watched.stop_requested().await });
    ///     s.request_stop();
    ///     watcher.await
    /// }));
    /// assert_eq!(out, Ok(Ok(())));
    /// ```
    pub fn stop_requested(&self) -> StopRequested {
        StopRequested {
            node: Some(self.node.clone()),
            key: None,
        }
    }

    /// Shuts this scope down gracefully: requests a stop
    /// ([`request_stop`](Scope::request_stop)), and once `grace` has passed
    /// (on the runtime's clock), cancels whatever of the scope is still
    /// running, with [`CancelReason::GraceExpired`](crate::CancelReason::GraceExpired).
    ///
    /// It does not block or wait: call it from anywhere, the scope's own
    /// body included (like [`cancel_after`](Scope::cancel_after)). The
    /// scope ends as soon as everything in it has ended, with `Ok` if
    /// nothing had to be cancelled. If the grace runs out, the hard cancel
    /// records the scopes still running then (this one and those nested in
    /// it, by name, id and location, with their tasks): its cause, a
    /// [`GraceExpired`], goes with every `Cancelled` it produces
    /// ([`Cancelled::still_running`](crate::Cancelled::still_running)).
    ///
    /// A [`shielded_scope`](crate::shielded_scope) inside does not see the
    /// request, and so runs on through the whole grace (cleanup that must
    /// finish); the hard cancel stops at it, as any cancel does. Calling
    /// it again keeps the earlier end of the grace; a cancel or the
    /// scope's end removes its timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, stop_requested, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// // Everyone listens: the scope ends early, with its value.
    /// let out = rt.block_on(scope(|s| async move {
    ///     for _ in 0..3 {
    ///         s.spawn(async { stop_requested().await });
    ///     }
    ///     s.shutdown(Duration::from_secs(30));
    ///     "drained"
    /// }));
    /// assert_eq!(out, Ok("drained"));
    ///
    /// // One does not: it is cancelled when the grace runs out, by name.
    /// let out = rt.block_on(scope(|s| async move {
    ///     s.spawn(scope(|_| sleep(Duration::from_secs(600))).named("stuck upload"));
    ///     s.shutdown(Duration::from_secs(30));
    /// }));
    /// let err = out.unwrap_err();
    /// let stuck = &err.still_running().unwrap().scopes()[1];
    /// assert_eq!(stuck.name(), Some("stuck upload"));
    /// assert_eq!(stuck.location().file(), file!());
    /// ```
    pub fn shutdown(&self, grace: Duration) {
        self.node.shutdown(grace);
    }
}
