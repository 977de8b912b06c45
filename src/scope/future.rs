//! [`ScopeFuture`]: the future of a scope, from joining the tree at its
//! first poll to leaving it once the body and every task have ended.
//!
//! The body's future lives inside the scope future, not in an allocation
//! of its own: a scope costs one allocation, its node. So the scope future
//! is polled pinned, and the body is polled and dropped where it lies.

use super::local::ScopeLocal;
use super::tree::{BodyEnd, Kind, Links, Node, NodeRef, Options, Place};
use super::{CancelHandle, Scope};
use crate::cancelled::{CancelReason, Cancelled};
use crate::runtime::context;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The future returned by [`scope`](crate::scope()),
/// [`linked_scope`](crate::linked_scope),
/// [`supervisor_scope`](crate::supervisor_scope) and
/// [`move_on_after`](crate::move_on_after).
///
/// Dropping it before it completes cancels the scope (reason
/// [`CancelReason::ScopeDropped`]): idle tasks are dropped at once, running
/// ones when their poll returns. It never waits.
#[must_use = "a scope does nothing unless awaited"]
pub struct ScopeFuture<F, Fut: Future> {
    state: Stage<F, Fut>,
    kind: Kind,
    /// A deadline to set when the scope starts (`move_on_after`).
    deadline: Option<Duration>,
    location: &'static Location<'static>,
    /// What the builder methods set, out of line: most scopes set nothing.
    /// Dropped by hand in `Drop` (where it is rarely `Some`), so that the
    /// compiler's drop of the whole future stays small.
    options: ManuallyDrop<Option<Box<Opening>>>,
}

/// What a scope is opened with, beyond its kind: the builder methods'.
#[derive(Default)]
struct Opening {
    tree: Options,
    handle: Option<CancelHandle>,
}

enum Stage<F, Fut: Future> {
    /// Not polled yet: the scope joins the tree at its first poll, where it
    /// learns its parent.
    Init(Option<F>),
    Running {
        /// The tree reference (tree invariant 2).
        node: NodeRef,
        /// Pinned: polled and dropped in place, never moved.
        body: Option<Fut>,
        output: Option<Fut::Output>,
        /// How the body ended, once `body` is `None`.
        end: BodyEnd,
        /// Whether the node was told the body ended (`body_done`, once).
        told: bool,
    },
    Done,
}

impl<F, Fut> ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    pub(crate) fn new(body: F, kind: Kind, location: &'static Location<'static>) -> Self {
        ScopeFuture {
            state: Stage::Init(Some(body)),
            kind,
            deadline: None,
            location,
            options: ManuallyDrop::new(None),
        }
    }

    /// A plain scope in which a task's panic stays with the task
    /// (`supervisor_scope`).
    pub(crate) fn supervisor(body: F, location: &'static Location<'static>) -> Self {
        let mut scope = ScopeFuture::new(body, Kind::Plain, location);
        scope.opening().tree.supervises = true;
        scope
    }

    fn opening(&mut self) -> &mut Opening {
        self.options.get_or_insert_with(Box::default)
    }

    /// Gives the scope a name, shown in the tree view
    /// ([`Runtime::scope_tree`](crate::runtime::Runtime::scope_tree)) and
    /// in the `Debug` of the [`Cancelled`] values it produces.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = &Runtime::new();
    /// let _ = rt.block_on(scope(|_| async move {
    ///     let tree = rt.scope_tree();
    ///     assert_eq!(tree.scopes()[0].name(), Some("server"));
    ///     assert!(tree.to_string().contains("\"server\""));
    /// }).named("server"));
    /// ```
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.opening().tree.info().name = Some(name.into());
        self
    }

    /// Opens the scope with a [`CancelHandle`] made beforehand by
    /// [`CancelHandle::new`], so that another task or thread can hold it
    /// from the start: a cancel through it before the scope opens makes the
    /// scope open cancelled.
    ///
    /// # Panics
    ///
    /// At the scope's first poll, if the handle is not one made by
    /// `CancelHandle::new`, or was already given to another scope.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelHandle};
    ///
    /// let handle = CancelHandle::new();
    /// let remote = handle.clone();
    /// std::thread::spawn(move || remote.cancel()).join().unwrap();
    /// let out = runtime::block_on(
    ///     scope(|_| std::future::pending::<()>()).with_cancel_handle(&handle),
    /// );
    /// assert!(out.is_err()); // cancelled before it even opened
    /// ```
    pub fn with_cancel_handle(mut self, handle: &CancelHandle) -> Self {
        self.opening().handle = Some(handle.clone());
        self
    }

    /// Attaches `value` to the scope under `key`: every task and nested
    /// scope of its subtree reads it with [`ScopeLocal::with`] or
    /// [`ScopeLocal::get`], unless a nested scope attaches its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, ScopeLocal};
    ///
    /// static REQUEST_ID: ScopeLocal<u64> = ScopeLocal::new();
    ///
    /// let out = runtime::block_on(
    ///     scope(|s| async move { s.spawn(async { REQUEST_ID.get() }).await })
    ///         .with_local(&REQUEST_ID, 7),
    /// );
    /// assert_eq!(out, Ok(Ok(Some(7))));
    /// assert_eq!(REQUEST_ID.get(), None); // outside any scope that set it
    /// ```
    pub fn with_local<T: Send + Sync + 'static>(
        mut self,
        key: &'static ScopeLocal<T>,
        value: T,
    ) -> Self {
        self.opening()
            .tree
            .info()
            .locals
            .push((key.key(), Arc::new(value)));
        self
    }

    /// Limits the scope's concurrency: at most `n` of its tasks have
    /// started and not ended. A task spawned past the limit waits in the
    /// scope, in spawn order, **never polled**, until a running one ends
    /// and frees its slot (Go's `errgroup.SetLimit`).
    ///
    /// - A queued task is live: the scope waits for it, the tree view
    ///   counts it as queued
    ///   ([`ScopeSnapshot::queued_tasks`](crate::ScopeSnapshot::queued_tasks)),
    ///   and a cancel of the scope drops it unpolled, in the same walk
    ///   that drops the idle running ones. Cancelling it alone
    ///   ([`JoinHandle::cancel`](crate::JoinHandle::cancel)) takes it out
    ///   of the queue, unpolled.
    /// - [`Scope::spawn_blocking`] closures count: a closure is a task of
    ///   its scope (it holds a slot while it waits for a pool thread and
    ///   while it runs). Nested scopes do not: a scope opened by a task
    ///   runs within that task's slot, and one opened by the body is the
    ///   body's, which no limit counts; a nested scope has its own limit.
    /// - Queued tasks are served first, in spawn order; then the waiters
    ///   of [`Scope::slot`] and [`Scope::spawn_when_free`], in the order
    ///   they began waiting.
    /// - [`Scope::try_spawn`] spawns only if a slot is free.
    /// - A queued task holds its future, and everything it owns. A loop
    ///   that accepts work faster than the scope runs it (an accept loop)
    ///   waits for a slot with [`Scope::spawn_when_free`] or
    ///   [`Scope::slot`] instead of queueing without bound.
    /// - **Deadlock.** A running task that awaits the handle of a task
    ///   queued behind it in the same scope waits for a slot it may be
    ///   holding itself: with every slot held by such tasks, none ever
    ///   frees. Nothing else happens: the queued tasks are never polled,
    ///   and a cancel or a deadline of the scope ends it as usual. Await
    ///   tasks of the same limited scope from its body, or from another
    ///   scope.
    ///
    /// Spawning into a limited scope and a task's end stay O(1). A limit
    /// above `u32::MAX` is taken as `u32::MAX` (no scope runs that many).
    ///
    /// # Panics
    ///
    /// If `n` is 0, here: such a scope could never run a task.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, time::sleep};
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let out = runtime::block_on(scope(|s| {
    ///     let (now, most) = (now.clone(), most.clone());
    ///     async move {
    ///         for _ in 0..64 {
    ///             let (now, most) = (now.clone(), most.clone());
    ///             s.spawn(async move {
    ///                 most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
    ///                 sleep(Duration::from_millis(1)).await; // a fetch, say
    ///                 now.fetch_sub(1, SeqCst);
    ///             });
    ///         }
    ///     }
    /// }).limit(16));
    /// assert!(out.is_ok());
    /// assert!(most.load(SeqCst) <= 16);
    /// ```
    ///
    /// ```should_panic
    /// let _ = cancel_scope::scope(|_| async {}).limit(0); // panics here
    /// ```
    #[track_caller]
    pub fn limit(mut self, n: usize) -> Self {
        let n = u32::try_from(n).unwrap_or(u32::MAX); // as good as unlimited
        let n = std::num::NonZeroU32::new(n).expect(super::limit::ZERO_LIMIT);
        self.opening().tree.limit = Some(n);
        self
    }

    /// A plain scope that is cancelled `after` its start (`move_on_after`).
    pub(crate) fn with_deadline(
        body: F,
        after: Duration,
        location: &'static Location<'static>,
    ) -> Self {
        ScopeFuture {
            state: Stage::Init(Some(body)),
            kind: Kind::Plain,
            deadline: Some(after),
            location,
            options: ManuallyDrop::new(None),
        }
    }

    /// Joins the tree under the current scope and starts the body.
    fn start(&mut self) {
        let Stage::Init(body) = &mut self.state else {
            return;
        };
        let body = body.take().expect("Init holds the body");
        let (kind, location) = (self.kind, self.location);
        let node = match self.options.take() {
            None => open_here(kind, location, Options::default()),
            Some(opening) => open_with(kind, location, *opening),
        };
        if let Some(after) = self.deadline {
            let now = node.shared().timers.now();
            node.set_deadline(crate::time::after(now, after), after);
        }
        let handle = Scope { node: node.clone() };
        // The closure itself may spawn: run it inside the scope.
        let body = context::enter_scope(node.as_ptr(), || {
            catch_unwind(AssertUnwindSafe(|| body(handle)))
        });
        let body = match body {
            Ok(fut) => Some(fut),
            Err(panic) => {
                node.record_panic(panic);
                None
            }
        };
        self.state = Stage::Running {
            node,
            body,
            output: None,
            end: BodyEnd::Interrupted,
            told: false,
        };
    }
}

/// Opens a node under the scope being polled on this thread, or as a root
/// of the current runtime.
fn open_here(kind: Kind, location: &'static Location<'static>, options: Options) -> NodeRef {
    context::with_current_scope(|parent| match parent {
        Some(parent) => Node::open(Place::Under(parent), kind, location, options),
        None => Node::open(
            Place::Root(&context::current_runtime()),
            kind,
            location,
            options,
        ),
    })
}

/// [`open_here`] for a scope that a builder method configured.
#[cold]
fn open_with(kind: Kind, location: &'static Location<'static>, opening: Opening) -> NodeRef {
    let Opening { tree, handle } = opening;
    if let Some(handle) = &handle {
        handle.reserve();
    }
    let node = open_here(kind, location, tree);
    if let Some(handle) = handle {
        handle.bind(&node);
    }
    node
}

/// Drops the body in place, catching a panic from its `Drop`. An
/// assignment drops the old value where it lies, then writes `None`, so
/// the pinned body is never moved; and rustc writes `None` on the
/// unwinding path too (an assignment to an initialised place is a
/// drop-and-replace), so the slot is `None` even when that drop panics and
/// nothing drops the body twice.
fn drop_body_future<Fut>(body: &mut Option<Fut>) -> Result<(), crate::panic::Panic> {
    catch_unwind(AssertUnwindSafe(|| *body = None))
}

impl<F, Fut> Future for ScopeFuture<F, Fut>
where
    F: FnOnce(Scope) -> Fut,
    Fut: Future,
{
    type Output = Result<Fut::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing below moves the body out of `state`: it is polled
        // through `Pin::new_unchecked` where it lies and dropped in place
        // (`drop_body_future`, or `Drop`); `start` writes the whole state only
        // while it holds no body yet.
        let this = unsafe { self.get_unchecked_mut() };
        this.start();
        let Stage::Running {
            node,
            body,
            output,
            end,
            told,
        } = &mut this.state
        else {
            panic!("`ScopeFuture` polled after it completed");
        };
        while let Some(fut) = body {
            if node.is_cancelled() {
                // Cancelled (an unpublished scope reads its ancestors' marks
                // and takes theirs as its own): the body is dropped at this
                // suspension point, cut short (`end` stays `Interrupted`).
                node.adopt_ancestors_cancel();
                if let Err(panic) = drop_body_future(body) {
                    node.record_panic(panic);
                }
                break;
            }
            // SAFETY: see the top of this function: the body never moves.
            let fut = unsafe { Pin::new_unchecked(fut) };
            let polled = context::enter_scope(node.as_ptr(), || {
                catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
            });
            match polled {
                Ok(Poll::Ready(value)) => {
                    *output = Some(value);
                    *end = BodyEnd::Returned;
                    // A finished async block drops nothing here, but a
                    // hand-written future may panic in its `Drop`.
                    if let Err(panic) = drop_body_future(body) {
                        node.record_panic(panic);
                    }
                }
                Ok(Poll::Pending) => {
                    // The body waits: the scope is published now (tree
                    // invariant 2), so that a cancel reaches it.
                    if !node.register_body_waker(cx.waker()) {
                        return Poll::Pending;
                    }
                }
                Err(panic) => {
                    drop(drop_body_future(body));
                    node.record_panic(panic);
                }
            }
        }
        let outcome = if *told {
            node.poll_end(cx.waker())
        } else {
            *told = true;
            node.body_done(*end, cx.waker())
        };
        let Some(outcome) = outcome else {
            return Poll::Pending;
        };
        let value = output.take();
        this.state = Stage::Done;
        if let Some(panic) = outcome.panic {
            resume_unwind(panic);
        }
        // A body that returned, with nothing of the scope cut short by a
        // cancel, keeps its value (tree `Outcome`).
        match (outcome.cancelled, value) {
            (Some(cancelled), _) => Poll::Ready(Err(cancelled)),
            (None, Some(value)) => Poll::Ready(Ok(value)),
            (None, None) => unreachable!("a body cut short interrupts its scope"),
        }
    }
}

// `F` is never pinned (it is taken out by value), and with an `Unpin` body
// nothing in the state is pinned at all.
impl<F, Fut: Future + Unpin> Unpin for ScopeFuture<F, Fut> {}

impl<F, Fut: Future> Drop for ScopeFuture<F, Fut> {
    fn drop(&mut self) {
        if self.options.is_some() {
            drop(self.options.take());
        }
        let Stage::Running { node, body, .. } = &mut self.state else {
            return;
        };
        // Stop the tasks first, so none runs on; then drop the body, in
        // place (it is pinned); then leave the node to the last task to end
        // (tree invariant 2). A shield is not cancelled: its tasks finish,
        // and its parent waits.
        // Not through links: dropping a linked scope's future is not a
        // cancel of the scope it was opened in.
        if self.kind != Kind::Shielded {
            node.cancel(CancelReason::ScopeDropped, Links::Ignore);
        }
        let dropped = drop_body_future(body);
        // The body is gone: the rest of the state may move.
        if let Stage::Running { node, .. } = std::mem::replace(&mut self.state, Stage::Done) {
            node.future_dropped();
        }
        if let Err(panic) = dropped {
            resume_unwind(panic);
        }
    }
}

impl<F, Fut: Future> fmt::Debug for ScopeFuture<F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            Stage::Init(_) => "init",
            Stage::Running { .. } => "running",
            Stage::Done => "done",
        };
        f.debug_struct("ScopeFuture")
            .field("state", &state)
            .field("location", &self.location)
            .finish()
    }
}
