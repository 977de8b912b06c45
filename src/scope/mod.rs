//! Scopes: the unit of structured concurrency.
//!
//! [`scope`] opens a scope, runs its body, and completes only when the body
//! and every task spawned into the scope (and into scopes nested in it) have
//! ended. [`Scope::cancel`] stops all of them as a group.
//!
//! This file is the public face: [`scope`], [`linked_scope`],
//! [`supervisor_scope`] and [`Scope`]. The rest, one concept per file:
//!
//! - `tree/`: the tree of scope nodes, each behind its own lock, with the
//!   numbered invariants the rest relies on (`tree/mod.rs`), the cancel
//!   walk (`tree/cancel.rs`), the parallel drop of a long run of slow drops
//!   (`tree/parallel.rs`), the work held back until a lock is released
//!   (`tree/after_unlock.rs`), and the runtime's roots and whole-tree views
//!   (`tree/roots.rs`);
//! - `future.rs`: [`ScopeFuture`], from joining the tree to leaving it;
//! - `binding.rs`: how a task reaches its scope (the task's scheduler);
//! - `handle.rs`: [`CancelHandle`], made by a scope or before it;
//! - `local.rs`: [`ScopeLocal`], values a scope lends its subtree;
//! - `blocking.rs`: [`Scope::spawn_blocking`]'s closures, tasks of their
//!   scope that run on the blocking pool;
//! - `join_set.rs`: [`JoinSet`], task outputs in the order they complete;
//! - `shield.rs`, `wait.rs`: [`shielded_scope`], [`Scope::cancelled`];
//! - `try_scope.rs`, `race.rs`: the error and race policies;
//! - `borrowed/`: borrowing scopes ([`BorrowScope`]), whose tasks borrow
//!   the data of a blocking call
//!   ([`runtime::scoped`](crate::runtime::scoped));
//! - `snapshot.rs`: the tree view's data ([`TreeSnapshot`]);
//! - what a scope owns beyond its tasks: `defer.rs` (cleanups,
//!   [`Scope::defer`], [`ScopeEnd`]), `on_cancel.rs` (cancel handlers,
//!   [`Scope::on_cancel`]), `daemon.rs` ([`Scope::spawn_daemon`]),
//!   `ready.rs` (the readiness handshake, [`Scope::spawn_ready`]).

mod binding;
mod blocking;
mod borrowed;
mod daemon;
mod defer;
mod future;
mod handle;
mod join_set;
mod limit;
mod local;
#[cfg(all(test, cancel_scope_loom))]
mod loom_models;
#[cfg(all(test, cancel_scope_loom))]
mod loom_models_owned;
mod on_cancel;
mod race;
mod ready;
mod shield;
pub(crate) mod snapshot;
mod stop;
pub(crate) mod tree;
mod try_scope;
mod wait;

pub use borrowed::{
    scoped, BorrowJoinHandle, BorrowJoinSet, BorrowScope, BorrowShieldedScope, BorrowTryScope,
};
pub(crate) use defer::run_cleanups;
pub use defer::{DeferRefused, ScopeEnd};
pub use future::ScopeFuture;
pub use handle::CancelHandle;
pub use join_set::JoinSet;
pub use limit::{Slot, SpawnWhenFree, TrySpawnError, WaitSlot};
pub use local::ScopeLocal;
pub use on_cancel::OnCancelGuard;
pub use race::race_ok;
pub use ready::{NotReady, Ready, Starting};
pub use shield::{shielded_scope, ShieldedScope};
pub use snapshot::{ScopeSnapshot, ScopeState, TreeSnapshot};
pub use stop::{is_stop_requested, stop_requested, GraceExpired, StopRequested};
pub use try_scope::{try_scope, TryScope};
pub use wait::WaitCancelled;

use binding::TaskBinding;
use blocking::{BlockingBinding, RunClosure};

use crate::cancelled::CancelReason;
use crate::runtime::Shared;
use crate::task::{JoinHandle, Schedule, TaskRef};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tree::{Kind, Links, NodeRef};

/// Opens a scope: runs `body` with a [`Scope`] handle and completes when
/// the body and every task spawned into the scope have ended.
///
/// The returned future resolves to `Ok(value)` with the body's output, or
/// to `Err(Cancelled)` if a cancel of the scope **interrupted** something:
/// its body at an await, or one of its tasks before it finished. A body
/// that runs to completion with nothing of the scope cut short keeps its
/// value, even if a cancel or a deadline came meanwhile (Trio's rule: a
/// cancel caught, not a cancel called). To learn whether a cancel was
/// asked for, keep a [`CancelHandle`] and check
/// [`is_cancelled`](CancelHandle::is_cancelled) after the scope ends.
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// // The body returns after the cancel without awaiting, and the scope has
/// // no task: nothing was interrupted, the value stands.
/// let out = runtime::block_on(scope(|s| async move {
///     s.cancel();
///     "reply written"
/// }));
/// assert_eq!(out, Ok("reply written"));
///
/// // A task is cut short: the scope says so, and the body's value is
/// // dropped (the guide shows how to keep it).
/// let out = runtime::block_on(scope(|s| async move {
///     s.spawn(std::future::pending::<()>());
///     s.cancel();
///     "dropped"
/// }));
/// assert!(out.is_err());
/// ```
///
/// # Task execution
///
/// Tasks spawned with [`Scope::spawn`] run on the runtime's worker threads,
/// in parallel with the body. A scope opened while a task or body of scope
/// `P` is being polled is a child of `P`; one opened anywhere else is a
/// root of the tree.
///
/// # Cancellation
///
/// [`Scope::cancel`] (or a [`CancelHandle`]) cancels the scope and every
/// scope nested in it. A task parked forever is never polled again and its
/// future is dropped before `cancel()` returns, by the cancelling thread
/// (which shares a long run of slow drops with idle workers); a task being
/// polled has its future dropped as soon as that poll returns; the body is
/// dropped at its next suspension. Nothing propagates to the parent, unless the
/// scope was opened with [`linked_scope`].
///
/// ```text
///   body:   |--spawn a--spawn b--cancel()-x (body dropped at next .await)
///   task a: |---- parked ------------------x (future dropped by cancel())
///   task b: |---- polling ----------|------x (dropped when its poll returns)
///   scope:  |------------------------------------> Err(Cancelled)
/// ```
///
/// # Panics
///
/// A panicking task never takes down its worker. The panic is caught, the
/// scope is cancelled (so siblings stop), and once every task has ended the
/// scope future resumes the panic. The panicked task's own [`JoinHandle`]
/// resolves to `Err(Cancelled)` with [`CancelReason::Panicked`]. A panic in
/// the body, or in the `Drop` of a cancelled task's future, is treated the
/// same way. Only the first panic of a scope is kept.
///
/// # Why `'static`
///
/// Spawned tasks must be `Send + 'static`: they run on other threads, and a
/// scope future can be leaked with `mem::forget`, so nothing guarantees the
/// body's stack outlives them. Share data with `Arc` or move it in.
///
/// ```compile_fail
/// use cancel_scope::{runtime, scope};
///
/// let local = vec![1, 2, 3];
/// runtime::block_on(scope(|s| async move {
///     s.spawn(async { local.len() }); // error: `local` does not live long enough
/// }));
/// ```
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, time::sleep};
/// use std::time::Duration;
///
/// let out = runtime::block_on(scope(|s| async move {
///     for secs in 1..=4 {
///         s.spawn(sleep(Duration::from_secs(secs)));
///     }
///     s.cancel(); // every task stops; no error propagates
/// }));
/// assert!(out.is_err());
/// ```
#[track_caller]
pub fn scope<F, Fut>(body: F) -> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    ScopeFuture::new(body, Kind::Plain, Location::caller())
}

/// Opens a scope whose cancellation also cancels its parent scope.
///
/// This is `cancel_scope(TaskGroup(), parent_tg)` of the Python package
/// `asyncio_cancel_scope`, where this crate began: cancelling a
/// linked scope cancels the scope it was opened in, and on upward while the
/// scopes on the way are themselves linked. Cancelling the parent cancels
/// the linked scope like any child.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, linked_scope, sync::Event};
///
/// let forever = Event::new();
/// let out = runtime::block_on(scope(|outer| async move {
///     outer.spawn(async move { forever.wait().await });
///     outer.spawn(linked_scope(|inner| async move { inner.cancel() }));
/// }));
/// assert!(out.is_err()); // the inner scope cancelled the outer one
/// ```
#[track_caller]
pub fn linked_scope<F, Fut>(body: F) -> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    ScopeFuture::new(body, Kind::Linked, Location::caller())
}

/// Opens a scope in which a task's panic stays with the task: it does not
/// cancel the task's siblings or the scope (Kotlin's `supervisorScope`, an
/// Erlang supervisor's one-for-one policy).
///
/// The panicked task's [`JoinHandle`] resolves to `Err(Cancelled)` with
/// [`CancelReason::Panicked`], from which
/// [`take_panic`](crate::Cancelled::take_panic) takes the payload (to resume it, or
/// log it); if nobody holds the handle, the payload is dropped. A panic in
/// the body itself still cancels the scope and is resumed when it ends, as
/// for [`scope`], and so is one in the `Drop` of a task's future that a
/// cancel dropped.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, supervisor_scope, CancelReason};
///
/// let out = runtime::block_on(supervisor_scope(|s| async move {
///     let bad = s.spawn(async { panic!("bad connection") });
///     let good = s.spawn(async { "still serving" });
///     let err = bad.await.unwrap_err();
///     assert_eq!(err.reason(), &CancelReason::Panicked);
///     good.await.unwrap()
/// }));
/// assert_eq!(out, Ok("still serving"));
/// ```
#[track_caller]
pub fn supervisor_scope<F, Fut>(body: F) -> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    ScopeFuture::supervisor(body, Location::caller())
}

/// Opens a scope with a deadline `duration` from now: when it passes, the
/// scope is cancelled exactly as by [`Scope::cancel`], with
/// [`CancelReason::Deadline`], and the block "moves on" with
/// `Err(Cancelled)`. Trio's `move_on_after`; the same as a [`scope`] whose
/// body starts with [`Scope::cancel_after`].
///
/// # Examples
///
/// ```
/// use cancel_scope::{move_on_after, runtime, time::sleep, CancelReason};
/// use std::time::Duration;
///
/// let out = runtime::block_on(move_on_after(Duration::from_millis(20), |s| async move {
///     s.spawn(sleep(Duration::from_secs(60)));
///     sleep(Duration::from_secs(60)).await;
/// }));
/// let err = out.unwrap_err();
/// assert!(matches!(err.reason(), CancelReason::Deadline { .. }));
/// ```
#[track_caller]
pub fn move_on_after<F, Fut>(duration: Duration, body: F) -> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    ScopeFuture::with_deadline(body, duration, Location::caller())
}

/// A handle to a running scope: spawn into it, cancel it.
///
/// Cheap to clone (one reference count), `Send` and `Sync`.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let s2 = s.clone();
///     s.spawn(async move { s2.cancel() });
///     std::future::pending::<()>().await
/// }));
/// assert!(out.is_err());
/// ```
#[derive(Clone)]
pub struct Scope {
    node: NodeRef,
}

/// Publishes the scope being polled on this thread, and its ancestors, if
/// it belongs to `shared`'s runtime: a tree view taken from inside a scope
/// shows it (`Runtime::scope_tree`).
pub(crate) fn publish_current(shared: &Shared) {
    crate::runtime::context::with_current_scope(|scope| {
        let Some(scope) = scope else { return };
        // SAFETY: `with_current_scope` keeps the node alive while its
        // closure runs, and its pointer follows rule "pointers from the
        // box"; the reference taken is given up before the closure returns.
        let node = unsafe { NodeRef::clone_raw(scope) };
        if std::ptr::eq(node.shared(), shared) {
            node.publish();
        }
    });
}

impl Scope {
    /// Spawns a task into this scope and returns its [`JoinHandle`].
    ///
    /// The task starts at once on the runtime's workers. If the scope is
    /// already cancelled, or has ended (a kept clone of `Scope` outlives its
    /// scope), the future is dropped without ever being polled and the
    /// handle resolves to `Err(Cancelled)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.spawn(async { 6 * 7 }).await
    /// }));
    /// assert_eq!(out, Ok(Ok(42)));
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if let Some(daemons) = self.daemon_redirect() {
            return Scope { node: daemons }.spawn(future);
        }
        if self.node.is_limited() {
            return self.spawn_limited(future);
        }
        self.spawn_plain(future)
    }

    /// [`spawn`](Scope::spawn) past the scope's limit, if it has one: the
    /// task starts at once (a shield's body, an unlimited scope's task).
    #[inline]
    pub(crate) fn spawn_plain<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let binding = TaskBinding {
            node: self.node.as_ptr(),
        };
        // To the back of the queue, not the LIFO slot a wake uses: the
        // spawner goes on running, and a loop of spawns should queue its
        // tasks in order rather than each displacing the last.
        self.start(future, binding, |shared, task| {
            shared.schedule(task, crate::runtime::worker::Push::Back);
        })
    }

    /// Runs a blocking closure on the runtime's blocking pool, as a task
    /// of this scope, and returns its [`JoinHandle`].
    ///
    /// Use it for work that blocks a thread: a synchronous file or
    /// database call, a blocking library, CPU-heavy computation that would
    /// hold a worker for long. The closure runs on a thread of the pool
    /// (started on demand, up to
    /// [`Builder::max_blocking_threads`](crate::runtime::Builder::max_blocking_threads);
    /// idle ones exit after
    /// [`Builder::blocking_keep_alive`](crate::runtime::Builder::blocking_keep_alive)),
    /// never on a worker, so the tasks keep running meanwhile.
    ///
    /// # Structured
    ///
    /// The closure is a task of this scope: the scope does not end while it
    /// runs, and cancelling the scope reaches it as follows.
    ///
    /// - **Not started yet** (waiting for a free thread): it never runs;
    ///   the closure is dropped and the handle resolves to `Err(Cancelled)`.
    /// - **Running**: no thread can be stopped from outside, so it runs on,
    ///   and the scope waits for it. To return early, the closure checks a
    ///   [`CancelHandle`] it captured ([`CancelHandle::is_cancelled`] is one
    ///   atomic load). A closure that returns ran to completion: its handle
    ///   gives its value, as an async task's does when its last poll
    ///   returns a value while a cancel is on its way.
    ///
    /// A scope already cancelled, or over, refuses the closure as
    /// [`spawn`](Scope::spawn) refuses a future. A panic in the closure
    /// goes to the scope, as a task's does.
    ///
    /// ```text
    ///   body:     |--spawn_blocking(f)--cancel()--.await handle----x
    ///   f (pool): |------ running ... sees is_cancelled(), returns -x
    ///   handle:                                                    Ok(value)
    ///   scope:    |-------------------------------------------------> Err(Cancelled)
    ///             (the body was interrupted at its await)
    /// ```
    ///
    /// When the [`Runtime`](crate::runtime::Runtime) is dropped, closures
    /// still queued are cancelled and never run; running ones see their
    /// scope cancelled, and the drop waits for them to return.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread while the pool
    /// has none to run the closure.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let digest = s.spawn_blocking(|| {
    ///         // stands for a blocking call: a file read, a hash, a syscall
    ///         (1..=1_000u64).fold(0u64, |h, x| h.wrapping_mul(31).wrapping_add(x))
    ///     });
    ///     digest.await
    /// }));
    /// assert!(matches!(out, Ok(Ok(_))));
    /// ```
    ///
    /// A long computation that stops early when its scope is cancelled:
    ///
    /// ```
    /// use cancel_scope::{move_on_after, runtime};
    /// use std::time::Duration;
    ///
    /// let out = runtime::block_on(move_on_after(Duration::from_millis(20), |s| async move {
    ///     let cancel = s.cancel_handle();
    ///     s.spawn_blocking(move || {
    ///         let mut n = 0u64;
    ///         while !cancel.is_cancelled() {
    ///             n += 1; // one more chunk of work
    ///         }
    ///         n
    ///     })
    ///     .await
    /// }));
    /// assert!(out.is_err()); // the deadline passed; the closure returned early
    /// ```
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some(daemons) = self.daemon_redirect() {
            return Scope { node: daemons }.spawn_blocking(f);
        }
        if self.node.is_limited() {
            return self.spawn_blocking_limited(f);
        }
        let binding = BlockingBinding(TaskBinding {
            node: self.node.as_ptr(),
        });
        self.start(RunClosure::new(f), binding, |shared, task| {
            shared.blocking.submit(task);
        })
    }

    /// Lists a new task in this scope and hands it to `run`, or, if the
    /// scope refuses it, drops it and returns a refused handle.
    fn start<F, S>(
        &self,
        future: F,
        binding: S,
        run: impl FnOnce(&Shared, TaskRef),
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        S: Schedule,
    {
        let (task, handle) = crate::task::new(future, binding);
        match self.node.add_task(task.clone()) {
            Ok(()) => {
                let shared = self.node.shared();
                shared.record(|| crate::trace::EventKind::TaskSpawned {
                    task: task.id().number(),
                    scope: self.node.id(),
                });
                run(shared, task);
                handle
            }
            Err((cancelled, listed)) => {
                // The last reference is the handle's: dropping it drops the
                // future, unpolled, here and not under the node's lock.
                drop((listed, task, handle));
                JoinHandle::refused(cancelled)
            }
        }
    }

    /// Cancels this scope and every scope nested in it (and, for a
    /// [`linked_scope`], the parent). Idempotent; see [`scope`] for what
    /// happens to tasks and the body.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.spawn(std::future::pending::<()>()); // stopped by the cancel
    ///     s.cancel();
    ///     s.cancel(); // no effect
    ///     "dropped: a task was cut short"
    /// }));
    /// assert!(out.is_err());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(CancelReason::Explicit, Links::Follow);
    }

    /// Cancels this scope as [`cancel`](Scope::cancel) does, with a reason
    /// of the caller's: a message (`&str`, `String`) or any
    /// `Error + Send + Sync + 'static`. Every scope and task the
    /// cancellation reaches carries it ([`Cancelled::cause`](crate::Cancelled::cause), which
    /// downcasts to the type given), and `Display` of their [`Cancelled`](crate::Cancelled)
    /// shows it. The first cancel of a scope wins: a later reason does not
    /// replace it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let out = runtime::block_on(scope(|s| async move {
    ///     tx.send(s.spawn(std::future::pending::<()>())).unwrap();
    ///     s.cancel_with("configuration reloaded");
    ///     s.cancel_with("too late: the first reason stays");
    /// }));
    /// assert_eq!(
    ///     out.unwrap_err().to_string(),
    ///     "cancelled: cancel() was called on this scope: configuration reloaded"
    /// );
    /// let task = runtime::block_on(rx.recv().unwrap()).unwrap_err();
    /// assert_eq!(task.cause().unwrap().to_string(), "configuration reloaded");
    /// ```
    pub fn cancel_with(&self, reason: impl Into<Box<dyn std::error::Error + Send + Sync>>) {
        let cause = Arc::from(reason.into());
        self.node
            .cancel_because(CancelReason::Explicit, Some(cause), Links::Follow);
    }

    /// Whether this scope has been cancelled. One atomic load.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     assert!(!s.is_cancelled());
    ///     s.cancel();
    ///     assert!(s.is_cancelled());
    /// }));
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.is_set()
    }

    /// Cancels this scope at `deadline` (on the runtime's clock), exactly as
    /// [`cancel`](Scope::cancel) would, with [`CancelReason::Deadline`].
    /// Calling it again moves the deadline, earlier or later. Scopes nested
    /// in this one are cancelled with it, so none outlives the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, time::{self, sleep}};
    /// use std::time::Duration;
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.cancel_at(time::now() + Duration::from_secs(60));
    ///     s.cancel_at(time::now() + Duration::from_millis(10)); // moved earlier
    ///     sleep(Duration::from_secs(60)).await;
    /// }));
    /// assert!(out.is_err());
    /// ```
    pub fn cancel_at(&self, deadline: Instant) {
        let after = deadline.saturating_duration_since(self.node.shared().timers.now());
        self.node.set_deadline(deadline, after);
    }

    /// Cancels this scope once `duration` has passed; see
    /// [`cancel_at`](Scope::cancel_at).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, time::sleep, CancelReason};
    /// use std::time::Duration;
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.cancel_after(Duration::from_millis(10));
    ///     sleep(Duration::from_secs(60)).await;
    /// }));
    /// assert_eq!(out.unwrap_err().to_string(), "cancelled: deadline of 10ms passed");
    /// ```
    pub fn cancel_after(&self, duration: Duration) {
        let at = crate::time::after(self.node.shared().timers.now(), duration);
        self.node.set_deadline(at, duration);
    }

    /// The scope's current deadline, if it has one and is not cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, time};
    /// use std::time::Duration;
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     assert_eq!(s.deadline(), None);
    ///     let at = time::now() + Duration::from_secs(5);
    ///     s.cancel_at(at);
    ///     assert_eq!(s.deadline(), Some(at));
    /// }));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// A future that resolves, with the reason, once this scope is
    /// cancelled. If the scope ends without being cancelled, it never
    /// resolves.
    ///
    /// A task *inside* the scope that is parked on this future is dropped
    /// by the cancel itself, so it does not see it resolve (only a task
    /// being polled at that moment may, for the rest of that poll). To
    /// react to a scope's cancellation, wait from outside it: from an
    /// enclosing scope, another thread, or a [`shielded_scope`] opened
    /// inside it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelReason};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let watched = s.clone();
    ///     let watcher = std::thread::spawn(move || runtime::block_on(watched.cancelled()));
    ///     s.cancel();
    ///     assert_eq!(watcher.join().unwrap().reason(), &CancelReason::Explicit);
    /// }));
    /// // The body ran to its end: the cancel interrupted nothing.
    /// assert!(out.is_ok());
    /// ```
    pub fn cancelled(&self) -> WaitCancelled {
        WaitCancelled::new(handle::Target::Node(self.node.clone()))
    }

    /// This scope's id: unique among the scopes of its runtime, and the
    /// number shown for it in a [`TreeSnapshot`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = &Runtime::new();
    /// let _ = rt.block_on(scope(|s| async move {
    ///     assert_eq!(rt.scope_tree().scopes()[0].id(), s.id());
    /// }));
    /// ```
    pub fn id(&self) -> u64 {
        self.node.id()
    }

    /// A handle that cancels this scope from anywhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let mut kept = None;
    /// let _ = runtime::block_on(scope(|s| {
    ///     kept = Some(s.cancel_handle());
    ///     async {}
    /// }));
    /// let handle = kept.unwrap();
    /// handle.cancel(); // the scope has ended: nothing happens
    /// assert!(!handle.is_cancelled());
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::of(self)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("id", &self.node.id())
            .field("name", &self.node.name())
            .field("opened_at", &self.node.location)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
