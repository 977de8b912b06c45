//! Scopes: the unit of structured concurrency.
//!
//! [`scope`] opens a scope, runs its body, and completes only when the body
//! and every task spawned into the scope (and into scopes nested in it) have
//! ended. [`Scope::cancel`] stops all of them as a group.
//!
//! The scope tree itself (nodes, the cancel walk, the invariants) lives in
//! `tree.rs`; this file is the public face: [`Scope`], [`CancelHandle`],
//! [`ScopeFuture`] and how a task is bound to its scope.

mod race;
pub(crate) mod tree;
mod try_scope;

pub use race::race_ok;
pub use try_scope::{try_scope, TryScope};

use crate::cancelled::{CancelReason, Cancelled};
use crate::context;
use crate::runtime::Shared;
use crate::task::{JoinHandle, Panic, Schedule, Task, TaskRef};
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tree::{CancelBatch, CancelWait, Deferred, Kind, ScopeId, Shields};

/// Opens a scope: runs `body` with a [`Scope`] handle and completes when
/// the body and every task spawned into the scope have ended.
///
/// The returned future resolves to `Ok(value)` with the body's output, or
/// to `Err(Cancelled)` if the scope was cancelled at any point before it
/// ended (even when the body then ran to completion without suspending:
/// cancellation wins over the body's value, which is dropped).
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
/// future is dropped at once, by the cancelling thread; a task being polled
/// has its future dropped as soon as that poll returns; the body is dropped
/// at its next suspension. Nothing propagates to the parent, unless the
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
/// This is the seed's `cancel_scope(TaskGroup(), parent_tg)`: cancelling a
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
    inner: Arc<ScopeInner>,
}

/// A handle that can cancel a scope from any thread or task, and outlive
/// it: once the scope has ended, [`cancel`](CancelHandle::cancel) does
/// nothing, even if the scope's slot in the tree is reused.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let handle = s.cancel_handle();
///     std::thread::spawn(move || handle.cancel()).join().unwrap();
///     std::future::pending::<()>().await
/// }));
/// assert!(out.is_err());
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    inner: Arc<ScopeInner>,
}

/// The future returned by [`scope`] and [`linked_scope`].
///
/// Dropping it before it completes cancels the scope (reason
/// [`CancelReason::ScopeDropped`]): idle tasks are dropped at once, running
/// ones when their poll returns. It never waits.
#[must_use = "a scope does nothing unless awaited"]
pub struct ScopeFuture<F, Fut: Future> {
    state: State<F, Fut>,
    kind: Kind,
    /// A deadline to set when the scope starts (`move_on_after`).
    deadline: Option<Duration>,
    location: &'static Location<'static>,
}

enum State<F, Fut: Future> {
    /// Not polled yet: the scope joins the tree at its first poll, where it
    /// learns its parent.
    Init(Option<F>),
    Running {
        inner: Arc<ScopeInner>,
        body: Option<Pin<Box<Fut>>>,
        output: Option<Fut::Output>,
    },
    Done,
}

/// What scope handles and tasks share with the scope's node.
pub(crate) struct ScopeInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ScopeId,
    /// Set once, under the tree lock, when the scope is cancelled.
    pub(crate) cancelled: OnceLock<Cancelled>,
    /// Where the scope was opened (`#[track_caller]`).
    pub(crate) location: &'static Location<'static>,
}

impl ScopeInner {
    /// The scope's cancellation value (it must be cancelled).
    pub(crate) fn cancel_value(&self) -> Cancelled {
        self.cancelled
            .get()
            .cloned()
            .unwrap_or(Cancelled::new(CancelReason::Explicit))
    }

    fn cancel(&self, reason: CancelReason, follow_links: bool) {
        let mut batch = CancelBatch::default();
        let mut tree = self.shared.tree.lock();
        tree.cancel(self.id, reason, follow_links, Shields::Respect, &mut batch);
        drop(tree);
        batch.run(&self.shared);
    }

    /// Sets or moves the deadline (tree invariant 7): a timer whose waker
    /// asks the tree to check the deadline.
    fn set_deadline(self: &Arc<Self>, at: Instant, after: Duration) {
        let timers = &self.shared.timers;
        let weak = Arc::downgrade(self);
        let waker = waker_fn::waker_fn(move || {
            if let Some(inner) = weak.upgrade() {
                inner.deadline_passed();
            }
        });
        let (timer, earliest) = timers.insert(at, waker);
        if earliest {
            self.shared.idle.notify_timer();
        }
        let mut deferred = Deferred::default();
        let mut tree = self.shared.tree.lock();
        tree.set_deadline(self.id, at, after, timer, &mut deferred);
        drop(tree);
        deferred.run(&self.shared);
    }

    fn deadline_passed(&self) {
        let now = self.shared.timers.now();
        let mut batch = CancelBatch::default();
        self.shared
            .tree
            .lock()
            .deadline_passed(self.id, now, &mut batch);
        batch.run(&self.shared);
    }
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
        let binding = TaskBinding {
            scope: self.inner.clone(),
            slot: AtomicUsize::new(usize::MAX),
        };
        let task = Task::new(future, binding);
        let shared = &self.inner.shared;
        let added = {
            let mut tree = shared.tree.lock();
            let added = tree.add_task(self.inner.id, task.clone());
            if let Ok(slot) = added {
                // Read back under the same lock, in `release`.
                task.scheduler().slot.store(slot, Relaxed);
            }
            added
        };
        match added {
            Ok(_) => {
                shared.schedule(task.clone());
                JoinHandle::new(task)
            }
            Err(cancelled) => JoinHandle::refused(cancelled),
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
    ///     s.cancel();
    ///     s.cancel(); // no effect
    ///     "ignored"
    /// }));
    /// assert!(out.is_err());
    /// ```
    pub fn cancel(&self) {
        self.inner.cancel(CancelReason::Explicit, true);
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
        self.inner.cancelled.get().is_some()
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
        let after = deadline.saturating_duration_since(self.inner.shared.timers.now());
        self.inner.set_deadline(deadline, after);
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
        let at = self.inner.shared.timers.now() + duration;
        self.inner.set_deadline(at, duration);
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
        self.inner.shared.tree.lock().deadline(self.inner.id)
    }

    /// A future that resolves, with the reason, once this scope is
    /// cancelled. If the scope ends without being cancelled, it never
    /// resolves.
    ///
    /// A task *inside* the scope is dropped when the scope is cancelled, so
    /// it never sees this resolve; to react to a scope's cancellation, wait
    /// from outside it: from an enclosing scope, another thread, or a
    /// [`shielded_scope`] opened inside it.
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
    /// assert!(out.is_err());
    /// ```
    pub fn cancelled(&self) -> WaitCancelled {
        WaitCancelled {
            inner: self.inner.clone(),
            key: None,
        }
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
        CancelHandle {
            inner: self.inner.clone(),
        }
    }
}

impl CancelHandle {
    /// Cancels the scope, if it is still running. See [`Scope::cancel`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     s.cancel_handle().cancel();
    /// }));
    /// assert!(out.is_err());
    /// ```
    pub fn cancel(&self) {
        self.inner.cancel(CancelReason::Explicit, true);
    }

    /// A future that resolves once the scope is cancelled; see
    /// [`Scope::cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let handle = s.cancel_handle();
    ///     let watcher = std::thread::spawn(move || runtime::block_on(handle.cancelled()));
    ///     s.cancel();
    ///     watcher.join().unwrap().to_string()
    /// }));
    /// assert!(out.is_err());
    /// ```
    pub fn cancelled(&self) -> WaitCancelled {
        WaitCancelled {
            inner: self.inner.clone(),
            key: None,
        }
    }

    /// Whether the scope was cancelled (before it ended).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     let h = s.cancel_handle();
    ///     assert!(!h.is_cancelled());
    ///     s.cancel();
    ///     assert!(h.is_cancelled());
    /// }));
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.get().is_some()
    }
}

impl<F, Fut> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    fn new(body: F, kind: Kind, location: &'static Location<'static>) -> Self {
        ScopeFuture {
            state: State::Init(Some(body)),
            kind,
            deadline: None,
            location,
        }
    }

    /// A plain scope that is cancelled `after` its start (`move_on_after`).
    pub(crate) fn with_deadline(
        body: F,
        after: Duration,
        location: &'static Location<'static>,
    ) -> Self {
        ScopeFuture {
            state: State::Init(Some(body)),
            kind: Kind::Plain,
            deadline: Some(after),
            location,
        }
    }

    /// Joins the tree under the current scope and starts the body.
    fn start(&mut self) {
        let State::Init(body) = &mut self.state else {
            return;
        };
        let body = body.take().expect("Init holds the body");
        let parent = context::current_scope();
        let shared = match &parent {
            Some(p) => p.shared.clone(),
            None => context::current_runtime(),
        };
        let inner = shared
            .tree
            .lock()
            .insert(parent.as_ref().map(|p| p.id), self.kind, |id| {
                Arc::new(ScopeInner {
                    shared: shared.clone(),
                    id,
                    cancelled: OnceLock::new(),
                    location: self.location,
                })
            });
        if let Some(after) = self.deadline {
            inner.set_deadline(shared.timers.now() + after, after);
        }
        let handle = Scope {
            inner: inner.clone(),
        };
        // The closure itself may spawn: run it inside the scope.
        let body = context::enter_scope(&inner, || catch_unwind(AssertUnwindSafe(|| body(handle))));
        let body = match body {
            Ok(fut) => Some(Box::pin(fut)),
            Err(panic) => {
                record_panic(&inner, panic);
                None
            }
        };
        self.state = State::Running {
            inner,
            body,
            output: None,
        };
    }
}

fn record_panic(inner: &ScopeInner, panic: Panic) {
    let mut batch = CancelBatch::default();
    inner
        .shared
        .tree
        .lock()
        .record_panic(inner.id, panic, &mut batch);
    batch.run(&inner.shared);
}

impl<F, Fut> Future for ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    type Output = Result<Fut::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.start();
        let State::Running {
            inner,
            body,
            output,
        } = &mut this.state
        else {
            panic!("`ScopeFuture` polled after it completed");
        };
        while let Some(fut) = body {
            if inner.cancelled.get().is_some() {
                // Cancelled: the body is dropped at this suspension point.
                let dropped = catch_unwind(AssertUnwindSafe(|| *body = None));
                if let Err(panic) = dropped {
                    record_panic(inner, panic);
                }
                break;
            }
            let polled = context::enter_scope(inner, || {
                catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)))
            });
            match polled {
                Ok(Poll::Ready(value)) => {
                    *output = Some(value);
                    *body = None;
                }
                Ok(Poll::Pending) => {
                    let mut deferred = Deferred::default();
                    let mut tree = inner.shared.tree.lock();
                    let cancelled = tree.register_body_waker(inner.id, cx.waker(), &mut deferred);
                    drop(tree);
                    deferred.run(&inner.shared);
                    if !cancelled {
                        return Poll::Pending;
                    }
                }
                Err(panic) => {
                    let dropped = catch_unwind(AssertUnwindSafe(|| *body = None));
                    drop(dropped);
                    record_panic(inner, panic);
                }
            }
        }
        let mut deferred = Deferred::default();
        let outcome = inner
            .shared
            .tree
            .lock()
            .finish_body(inner.id, cx.waker(), &mut deferred);
        deferred.run(&inner.shared);
        let Some(outcome) = outcome else {
            return Poll::Pending;
        };
        let value = output.take();
        this.state = State::Done;
        if let Some(panic) = outcome.panic {
            resume_unwind(panic);
        }
        match outcome.cancelled {
            Some(cancelled) => Poll::Ready(Err(cancelled)),
            None => Poll::Ready(Ok(value.expect("an uncancelled scope's body finished"))),
        }
    }
}

// The body is boxed, and `F` is never pinned, so moving a `ScopeFuture` is
// always fine.
impl<F, Fut: Future> Unpin for ScopeFuture<F, Fut> {}

impl<F, Fut: Future> Drop for ScopeFuture<F, Fut> {
    fn drop(&mut self) {
        let State::Running { inner, body, .. } = &mut self.state else {
            return;
        };
        // Stop the tasks first, so none runs on; then drop the body; then
        // leave the node to the last task to end (tree invariant 2). A
        // shield is not cancelled: its tasks finish, and its parent waits.
        if self.kind != Kind::Shielded {
            inner.cancel(CancelReason::ScopeDropped, false);
        }
        let dropped = catch_unwind(AssertUnwindSafe(|| *body = None));
        let mut deferred = Deferred::default();
        inner.shared.tree.lock().drop_body(inner.id, &mut deferred);
        deferred.run(&inner.shared);
        if let Err(panic) = dropped {
            resume_unwind(panic);
        }
    }
}

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
        s.spawn(body)
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

impl<T> Future for ShieldedScope<T> {
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                Pin::new(&mut self.scope).poll(cx).map(|out| out.and_then(|body| body))
    }
}

impl<T> fmt::Debug for ShieldedScope<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShieldedScope")
            .field("scope", &self.scope)
            .finish()
    }
}

/// The future returned by [`Scope::cancelled`] and
/// [`CancelHandle::cancelled`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitCancelled {
    inner: Arc<ScopeInner>,
    key: Option<usize>,
}

impl Future for WaitCancelled {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        if let Some(cancelled) = self.inner.cancelled.get() {
            return Poll::Ready(cancelled.clone());
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

/// How a task is bound to its scope: the task's [`Schedule`] impl.
pub(crate) struct TaskBinding {
    scope: Arc<ScopeInner>,
    /// The task's key in its node's `tasks`; written and read under the
    /// tree lock.
    slot: AtomicUsize,
}

impl Schedule for TaskBinding {
    fn schedule(&self, task: TaskRef) {
        self.scope.shared.schedule(task);
    }

    fn enter<R>(&self, poll: impl FnOnce() -> R) -> R {
        context::enter_scope(&self.scope, poll)
    }

    fn cancelled(&self) -> Cancelled {
        self.scope.cancel_value()
    }

    fn release(&self, panic: Option<Panic>) {
        let shared = &self.scope.shared;
        let mut batch = CancelBatch::default();
        {
            let mut tree = shared.tree.lock();
            let slot = self.slot.load(Relaxed);
            tree.release_task(self.scope.id, slot, panic, &mut batch);
        }
        batch.run(shared);
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("id", &self.inner.id)
            .field("opened_at", &self.inner.location)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("id", &self.inner.id)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl<F, Fut: Future> fmt::Debug for ScopeFuture<F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Init(_) => "init",
            State::Running { .. } => "running",
            State::Done => "done",
        };
        f.debug_struct("ScopeFuture")
            .field("state", &state)
            .field("location", &self.location)
            .finish()
    }
}
