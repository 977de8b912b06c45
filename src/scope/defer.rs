//! Cleanups bound to a scope: [`Scope::defer`], [`Scope::defer_async`],
//! [`Scope::defer_async_within`], what a cleanup is told ([`ScopeEnd`]),
//! and the task that runs a scope's cleanups.
//!
//! The tree keeps the cleanups and begins their phase (`tree/cleanup.rs`);
//! this file makes each cleanup the scope it will run in, and runs them:
//! [`run_cleanups`] spawns one task into the phase's scope, which runs the
//! cleanups newest first, each to its end (its tasks and nested scopes
//! included) before the next.

use super::future::ScopeFuture;
use super::tree::{Cleanup, CleanupFuture, Kind, NodeRef};
use super::Scope;
use crate::cancelled::Cancelled;
use crate::runtime::context;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How a scope ended, as its cleanups are told ([`Scope::defer`]).
///
/// It is read once the scope's body, tasks, nested scopes and daemons
/// have ended, and agrees with what the scope future resolves to: `Ok`
/// for [`Completed`](ScopeEnd::Completed), `Err(Cancelled)` for
/// [`Cancelled`](ScopeEnd::Cancelled), a `try_scope`'s error for
/// [`Failed`](ScopeEnd::Failed), a panic for
/// [`Panicked`](ScopeEnd::Panicked). Where several apply, the first in
/// that reverse order wins: a panic, then a failure, then a cancel.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, ScopeEnd};
/// use std::sync::{Arc, Mutex};
///
/// let told = Arc::new(Mutex::new(Vec::new()));
/// let log = told.clone();
/// let out = runtime::block_on(scope(|s| async move {
///     s.defer(move |end| log.lock().unwrap().push(end)).unwrap();
///     s.cancel(); // the body returns without awaiting: nothing is cut short
///     "done"
/// }));
/// assert_eq!(out, Ok("done"));
/// let told = told.lock().unwrap();
/// assert!(matches!(&told[0], ScopeEnd::Completed { cancel: Some(_) }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeEnd {
    /// The body returned and nothing of the scope was cut short: the
    /// scope resolves to `Ok`. `cancel` is the cancel that came all the
    /// same and interrupted nothing (a deadline that passed as the work
    /// finished), if one did.
    Completed {
        /// The cancel that interrupted nothing, if any came.
        cancel: Option<Cancelled>,
    },
    /// A cancel interrupted the scope's work (its body at an await, or a
    /// task), or its future was dropped: the scope resolves to
    /// `Err(Cancelled)`, with this value.
    Cancelled(Cancelled),
    /// A [`try_scope`](crate::try_scope)'s body or task returned an
    /// error; the scope resolves to it (the error itself is the scope's to
    /// return, so a cleanup learns only that there was one).
    Failed,
    /// The body, a task or a daemon panicked; the scope resumes the panic
    /// once its cleanups have run.
    Panicked,
}

impl ScopeEnd {
    /// Whether the scope's work completed ([`ScopeEnd::Completed`], with
    /// or without a cancel that interrupted nothing): what a cleanup that
    /// commits or closes politely checks.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let _ = runtime::block_on(scope(|s| async move {
    ///     s.defer(|end| assert!(end.is_completed())).unwrap();
    /// }));
    /// ```
    pub fn is_completed(&self) -> bool {
        matches!(self, ScopeEnd::Completed { .. })
    }
}

/// A cleanup was registered on a scope already finishing: its cleanup
/// phase has begun (its body, tasks, nested scopes and daemons have all
/// ended), or it has ended. The cleanup is dropped, never run.
///
/// A cleanup that needs a cleanup of its own registers it on its own
/// scope, the one [`Scope::defer_async`] gives it.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, DeferRefused};
///
/// let mut kept = None;
/// let _ = runtime::block_on(scope(|s| {
///     kept = Some(s.clone());
///     async {}
/// }));
/// let refused = kept.unwrap().defer(|_| unreachable!("never runs"));
/// assert_eq!(refused, Err(DeferRefused));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferRefused;

impl fmt::Display for DeferRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the scope is already finishing: its cleanups have begun, or it has ended")
    }
}

impl std::error::Error for DeferRefused {}

impl Scope {
    /// Registers a cleanup: `cleanup` runs once the scope's body, every
    /// task, every nested scope and every daemon have ended, before the
    /// scope future completes, told how the scope ended.
    ///
    /// # The rules
    ///
    /// - **When.** After the last piece of the scope's work, never before;
    ///   daemons are stopped first. A task or the body may register
    ///   cleanups until then, even while the body is done and tasks still
    ///   run. Once the cleanups have begun, the scope takes no new task or
    ///   cleanup (a registration gets [`DeferRefused`]).
    /// - **Order.** Newest first, one at a time: each cleanup, with the
    ///   tasks and scopes it started, ends before the next one starts. So
    ///   what was opened last is closed first (a log opened before a pool
    ///   outlives the pool).
    /// - **Exactly once,** however the scope ends: completed, cancelled,
    ///   failed or panicked ([`ScopeEnd`]).
    /// - **Shielded.** Cleanups run in a shielded scope of their own below
    ///   this one (`"cleanups"` in the tree view, a bar in a recorded
    ///   timeline): the scope's cancel and its ancestors' do not reach
    ///   them. A runtime shutdown does: see below.
    /// - **Where.** As a task of that shielded scope, on the runtime's
    ///   workers: a cleanup must not block. A blocking one (deleting a
    ///   directory, a synchronous flush) goes to
    ///   [`spawn_blocking`](Scope::spawn_blocking) from a
    ///   [`defer_async`](Scope::defer_async) cleanup.
    /// - **Panics.** A cleanup's panic is kept and the other cleanups still
    ///   run; the scope resumes the panic at its end. The first panic of a
    ///   scope wins: one from its body or a task (before the cleanups) over
    ///   a cleanup's, and among cleanups the first to run.
    /// - **A dropped scope future.** The scope is cancelled (unless it is a
    ///   shield), and its cleanups still run, on the workers, once its last
    ///   task has ended: the scope stays in the tree, and its parent waits
    ///   for them. Their panic then goes to the nearest open ancestor.
    /// - **Shutdown.** A runtime that shuts down cancels the cleanups'
    ///   scope too. Cleanups not yet started are still called, on the
    ///   shutting-down thread: a `defer` closure runs to its end; a
    ///   `defer_async` closure is called, and its future is dropped before
    ///   its first poll.
    ///
    /// Rust has no async `Drop`; `defer` is where a scope's asynchronous
    /// release goes ([`defer_async`](Scope::defer_async)), and this plain
    /// form is a `Drop` that knows how the scope ended.
    ///
    /// # Errors
    ///
    /// [`DeferRefused`] if the scope is already finishing (see above).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let (a, b) = (log.clone(), log.clone());
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.defer(move |_| a.lock().unwrap().push("close the log")).unwrap();
    ///     s.defer(move |_| b.lock().unwrap().push("close the pool")).unwrap();
    ///     42
    /// }));
    /// assert_eq!(out, Ok(42));
    /// assert_eq!(*log.lock().unwrap(), ["close the pool", "close the log"]);
    /// ```
    #[track_caller]
    pub fn defer<F>(&self, cleanup: F) -> Result<(), DeferRefused>
    where
        F: FnOnce(ScopeEnd) + Send + 'static,
    {
        let at = Location::caller();
        // Called in the scope's body closure, which a scope future runs at
        // its first poll even when the scope is born cancelled (shutdown).
        let cleanup: Cleanup = Box::new(move |end| {
            let body = move |_: Scope| {
                cleanup(end);
                std::future::ready(())
            };
            in_scope(ScopeFuture::new(body, Kind::Plain, at))
        });
        self.register(cleanup)
    }

    /// Registers an asynchronous cleanup: `cleanup` is called with a scope
    /// of its own and how this scope ended, and the future it returns is
    /// run to its end, with everything it spawns, as for
    /// [`defer`](Scope::defer) (whose rules apply).
    ///
    /// The [`Scope`] it is given is the scope the cleanup runs in, nested
    /// in the cleanups' shielded scope: it may spawn into it (a
    /// `spawn_blocking` to delete a directory, a task per connection to
    /// close) and the cleanup ends only when those have; it may register
    /// cleanups of its own on it. This scope, which is finishing, takes no
    /// new task.
    ///
    /// # Errors
    ///
    /// [`DeferRefused`] if the scope is already finishing.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, ScopeEnd};
    ///
    /// let path = std::env::temp_dir().join(format!("defer-{}", std::process::id()));
    /// std::fs::create_dir_all(&path).unwrap();
    /// let dir = path.clone();
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.defer_async(move |cleanup, end| async move {
    ///         // Blocking work goes to the pool, as a task of the cleanup's scope.
    ///         let _ = cleanup.spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    ///         assert_eq!(end, ScopeEnd::Completed { cancel: None });
    ///     })
    ///     .unwrap();
    ///     "work done in the directory"
    /// }));
    /// assert!(out.is_ok());
    /// assert!(!path.exists(), "the directory was removed before the scope ended");
    /// ```
    #[track_caller]
    pub fn defer_async<F, Fut>(&self, cleanup: F) -> Result<(), DeferRefused>
    where
        F: FnOnce(Scope, ScopeEnd) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(async_cleanup(cleanup, None, Location::caller()))
    }

    /// [`defer_async`](Scope::defer_async) with a grace period: the
    /// cleanup's own scope is cancelled (reason
    /// [`Deadline`](crate::CancelReason::Deadline)) once `grace` has passed
    /// since the cleanup started, and the next cleanup begins. A cleanup
    /// that says goodbye to a peer that may never answer waits no longer
    /// than this.
    ///
    /// # Errors
    ///
    /// [`DeferRefused`] if the scope is already finishing.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let out = rt.block_on(async {
    ///     let started = cancel_scope::time::now();
    ///     let out = scope(|s| async move {
    ///         s.defer_async_within(Duration::from_secs(5), |_, _| async {
    ///             sleep(Duration::from_secs(3600)).await; // a peer that never answers
    ///         })
    ///         .unwrap();
    ///     })
    ///     .await;
    ///     (out, cancel_scope::time::now() - started)
    /// });
    /// assert_eq!(out, (Ok(()), Duration::from_secs(5)));
    /// ```
    #[track_caller]
    pub fn defer_async_within<F, Fut>(
        &self,
        grace: Duration,
        cleanup: F,
    ) -> Result<(), DeferRefused>
    where
        F: FnOnce(Scope, ScopeEnd) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(async_cleanup(cleanup, Some(grace), Location::caller()))
    }

    fn register(&self, cleanup: Cleanup) -> Result<(), DeferRefused> {
        match self.node.defer(cleanup) {
            Ok(()) => Ok(()),
            Err(refused) => {
                // Not under the node's lock: dropping it runs user code.
                drop(refused);
                Err(DeferRefused)
            }
        }
    }
}

/// A `defer_async` cleanup: the scope it runs in, with its grace deadline.
fn async_cleanup<F, Fut>(
    cleanup: F,
    grace: Option<Duration>,
    at: &'static Location<'static>,
) -> Cleanup
where
    F: FnOnce(Scope, ScopeEnd) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |end| {
        let body = move |s: Scope| cleanup(s, end);
        let scope = match grace {
            Some(grace) => ScopeFuture::with_deadline(body, grace, at),
            None => ScopeFuture::new(body, Kind::Plain, at),
        };
        in_scope(scope)
    })
}

/// The scope a cleanup runs in, named for the tree view and the timeline,
/// its result dropped (a grace period that cut it is no one's error).
fn in_scope<F, Fut>(scope: ScopeFuture<F, Fut>) -> CleanupFuture
where
    F: FnOnce(Scope) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let scope = scope.named("cleanup");
    Box::pin(async move {
        let _ = scope.await;
    })
}

/// Runs a scope's cleanups (`tree/cleanup.rs` began their phase): one
/// task of the phase's scope, `phase`, runs them for `owner`; then the
/// phase's scope, which has no future, is left to that task's end.
pub(crate) fn run_cleanups(phase: NodeRef, owner: NodeRef, end: ScopeEnd, cleanups: Vec<Cleanup>) {
    let run = CleanupRun {
        owner,
        phase: phase.clone(),
        end,
        rest: cleanups,
        current: None,
    };
    // Refused only at a shutdown (the phase's scope was born cancelled):
    // then the runner's drop calls the cleanups here.
    drop(
        Scope {
            node: phase.clone(),
        }
        .spawn(run),
    );
    phase.future_dropped();
}

/// The task that runs a scope's cleanups, newest first.
struct CleanupRun {
    /// The scope the cleanups are of: its panics go there.
    owner: NodeRef,
    /// The cleanups' scope, this task's (for its drop).
    phase: NodeRef,
    end: ScopeEnd,
    /// Oldest first: the next to run is the last.
    rest: Vec<Cleanup>,
    /// The scope of the cleanup running now.
    current: Option<CleanupFuture>,
}

impl Future for CleanupRun {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let current = match &mut this.current {
                Some(current) => current,
                None => match this.rest.pop() {
                    Some(cleanup) => this.current.insert(cleanup(this.end.clone())),
                    None => return Poll::Ready(()),
                },
            };
            // A cleanup's scope resumes its panic at its end: kept, and
            // the next cleanup runs.
            match catch_unwind(AssertUnwindSafe(|| current.as_mut().poll(cx))) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(())) => this.current = None,
                Err(panic) => {
                    this.current = None;
                    this.owner.keep_cleanup_panic(panic);
                }
            }
        }
    }
}

impl Drop for CleanupRun {
    /// Dropped unfinished: a shutdown cancelled the cleanups' scope (the
    /// only cancel that reaches it), or refused this task. The running
    /// cleanup's scope is dropped (so cancelled); the others are called
    /// here, inside the cleanups' scope, which is cancelled: a `defer`
    /// closure runs, a `defer_async` future is dropped before its first
    /// poll (`Scope::defer`, "Shutdown").
    fn drop(&mut self) {
        if let Some(current) = self.current.take() {
            if let Some(panic) = crate::panic::drop_catching(current) {
                self.owner.keep_cleanup_panic(panic);
            }
        }
        if self.rest.is_empty() {
            return;
        }
        let waker = waker_fn::waker_fn(|| {});
        let mut cx = Context::from_waker(&waker);
        while let Some(cleanup) = self.rest.pop() {
            let end = self.end.clone();
            let ran = context::enter_scope(self.phase.as_ptr(), || {
                catch_unwind(AssertUnwindSafe(|| {
                    let mut scope = cleanup(end);
                    let _ = scope.as_mut().poll(&mut cx);
                }))
            });
            if let Err(panic) = ran {
                self.owner.keep_cleanup_panic(panic);
            }
        }
    }
}
