//! Limiting how many of a scope's tasks run at once: the spawns of a
//! limited scope, [`Scope::try_spawn`], [`Scope::slot`] and
//! [`Scope::spawn_when_free`], and the binding that tells a task's release
//! whether it held a slot.
//!
//! The node's side (slots, queue, waiters, and the rules) is in
//! `tree/limit.rs`.

use super::binding::TaskBinding;
use super::blocking::{BlockingBinding, RunClosure};
use super::tree::{Admitted, Made, NodeRef, Refusal, SlotCell, SlotWait};
use super::Scope;
use crate::cancelled::Cancelled;
use crate::panic::Panic;
use crate::runtime::worker::Push;
use crate::runtime::Shared;
use crate::task::{budget, Ended, JoinHandle, Schedule, TaskId, TaskRef};
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{ready, Context, Poll};

/// The error of [`Scope::try_spawn`]: the future, handed back unpolled,
/// and why it was not spawned.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, TrySpawnError};
///
/// runtime::block_on(scope(|s| async move {
///     s.spawn(std::future::pending::<()>()); // takes the only slot
///     match s.try_spawn(async { "later" }) {
///         Err(TrySpawnError::Full(future)) => assert_eq!(future.await, "later"),
///         _ => unreachable!("the scope is full"),
///     }
///     s.cancel();
///     let err = s.try_spawn(async {}).unwrap_err();
///     assert!(err.is_closed());
///     assert_eq!(err.to_string(), "the scope refused the task: cancelled: cancel() was called on this scope");
/// }).limit(1));
/// ```
pub enum TrySpawnError<F> {
    /// The scope's limit is reached: every slot is held.
    Full(F),
    /// The scope is cancelled, or has ended: it takes no task at all.
    Closed(F, Cancelled),
}

impl<F> TrySpawnError<F> {
    /// The future, as it was given: never polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     s.spawn(std::future::pending::<()>());
    ///     let back = s.try_spawn(async { 7 }).unwrap_err().into_future();
    ///     assert_eq!(back.await, 7);
    ///     s.cancel();
    /// }).limit(1));
    /// ```
    pub fn into_future(self) -> F {
        match self {
            TrySpawnError::Full(f) | TrySpawnError::Closed(f, _) => f,
        }
    }

    /// Whether the limit was reached (a slot may free later).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     s.spawn(std::future::pending::<()>());
    ///     assert!(s.try_spawn(async {}).unwrap_err().is_full());
    ///     s.cancel();
    /// }).limit(1));
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySpawnError::Full(_))
    }

    /// Whether the scope is cancelled or has ended (no slot will come).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     s.cancel();
    ///     assert!(s.try_spawn(async {}).unwrap_err().is_closed());
    /// }));
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySpawnError::Closed(..))
    }
}

impl<F> fmt::Debug for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => f.write_str("Full(..)"),
            TrySpawnError::Closed(_, cancelled) => f
                .debug_tuple("Closed")
                .field(&"..")
                .field(cancelled)
                .finish(),
        }
    }
}

impl<F> fmt::Display for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => f.write_str("the scope's limit is reached"),
            TrySpawnError::Closed(_, cancelled) => {
                write!(f, "the scope refused the task: {cancelled}")
            }
        }
    }
}

impl<F> Error for TrySpawnError<F> {}

/// A slot of a limited scope, held: [`spawn`](Slot::spawn) starts a task
/// in it at once; dropping it gives the slot back (to the next queued
/// task, or the next [`Scope::slot`] waiter). From
/// [`Scope::slot`]; in a scope without a limit it counts nothing.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let slot = s.slot().await.unwrap(); // wait for room, then take the work
///     slot.spawn(async { 6 * 7 }).await
/// }).limit(4));
/// assert_eq!(out, Ok(Ok(42)));
/// ```
#[must_use = "a slot held and not spent keeps a task of the scope from starting"]
pub struct Slot {
    node: NodeRef,
    /// Whether `held` counts this slot (the scope is limited), and it
    /// has not been spent.
    counted: bool,
}

impl Slot {
    /// Spawns `future` into the slot's scope, started at once in this
    /// slot, and returns its [`JoinHandle`]. Refused, like
    /// [`Scope::spawn`], if the scope was cancelled or ended meanwhile:
    /// then the future is dropped unpolled, the handle resolves to
    /// `Err(Cancelled)`, and the slot is given back.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let refused = runtime::block_on(scope(|s| async move {
    ///     let slot = s.slot().await.unwrap();
    ///     s.cancel(); // the body is not interrupted: it awaits no more
    ///     slot.spawn(async { 1 }) // refused: the scope is cancelled
    /// }).limit(1));
    /// assert!(runtime::block_on(refused.unwrap()).is_err());
    /// ```
    pub fn spawn<F>(mut self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let scope = Scope {
            node: self.node.clone(),
        };
        if !std::mem::replace(&mut self.counted, false) {
            return scope.spawn_plain(future);
        }
        let binding = Limited::new(TaskBinding {
            node: self.node.as_ptr(),
        });
        let (task, handle) = crate::task::new(future, binding);
        // SAFETY: `task` was made just above with these types.
        let cell = unsafe { cell_of::<F, TaskBinding>(&task) };
        match self.node.add_task_with_slot(task.clone(), cell) {
            Ok(()) => {
                scope.record_spawn(&task);
                self.node.shared().schedule(task, Push::Back);
                handle
            }
            Err((cancelled, listed)) => {
                drop((listed, task, handle));
                JoinHandle::refused(cancelled)
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.counted {
            self.node.give_back_slot();
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("scope", &self.node.id())
            .finish()
    }
}

/// The future returned by [`Scope::slot`]: a [`Slot`] once one is free,
/// or `Err(Cancelled)` if the scope is cancelled or ends first.
///
/// Cancel safe: dropped while it waits, it leaves the queue of waiters,
/// and a slot granted to it meanwhile goes to the next in line.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitSlot {
    node: NodeRef,
    /// Our registration among the scope's waiters.
    key: Option<usize>,
}

impl Future for WaitSlot {
    type Output = Result<Slot, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A leaf of the budget (`task/budget.rs`), like a semaphore's
        // acquire: in a cancelled poll it stays `Pending`, and a spent
        // budget makes it yield (a loop of `spawn_when_free` whose slots
        // keep freeing on other workers would otherwise hold this one).
        let permit = ready!(budget::poll_proceed(cx));
        permit.settle(self.poll_slot(cx))
    }
}

impl WaitSlot {
    /// A slot, the scope's refusal, or a registered waiter.
    fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<Slot, Cancelled>> {
        let this = self;
        match this.node.poll_slot(this.key, cx.waker()) {
            SlotWait::Granted => {
                this.key = None;
                Poll::Ready(Ok(Slot {
                    node: this.node.clone(),
                    counted: this.node.is_limited(),
                }))
            }
            SlotWait::Waiting(key) => {
                this.key = Some(key);
                Poll::Pending
            }
            SlotWait::Closed(cancelled) => {
                this.key = None;
                Poll::Ready(Err(cancelled))
            }
        }
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.node.forget_slot_waiter(key);
        }
    }
}

impl fmt::Debug for WaitSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitSlot")
            .field("scope", &self.node.id())
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

/// The future returned by [`Scope::spawn_when_free`]: waits for a slot,
/// then spawns into it, and resolves to the task's [`JoinHandle`].
///
/// Cancel safe: dropped before it resolves, it has spawned nothing (its
/// future is dropped with it, unpolled) and holds no slot.
#[must_use = "futures do nothing unless awaited"]
pub struct SpawnWhenFree<F> {
    wait: WaitSlot,
    future: Option<F>,
}

// The future is never pinned: it is moved into the task.
impl<F> Unpin for SpawnWhenFree<F> {}

impl<F> Future for SpawnWhenFree<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = JoinHandle<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let slot = match Pin::new(&mut self.wait).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(slot) => slot,
        };
        let future = self
            .future
            .take()
            .expect("`SpawnWhenFree` polled after it completed");
        Poll::Ready(match slot {
            Ok(slot) => slot.spawn(future),
            Err(cancelled) => {
                drop(future);
                JoinHandle::refused(cancelled)
            }
        })
    }
}

impl<F> fmt::Debug for SpawnWhenFree<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnWhenFree")
            .field("wait", &self.wait)
            .finish()
    }
}

impl Scope {
    /// Spawns `future` only if it can start now, and returns its
    /// [`JoinHandle`]; else hands the future back, unpolled, in the error
    /// (Go's `errgroup.TryGo`): [`TrySpawnError::Full`] when every slot of
    /// the scope's [`limit`](crate::ScopeFuture::limit) is held,
    /// [`TrySpawnError::Closed`] when the scope is cancelled or has ended.
    /// A scope without a limit is never full.
    ///
    /// A task gives its slot back when it is released, just *after* its
    /// [`JoinHandle`] has its output: right after awaiting a handle, the
    /// slot may still be held for a moment, and `try_spawn` may answer
    /// `Full`. To wait for the slot, use
    /// [`spawn_when_free`](Scope::spawn_when_free).
    ///
    /// # Examples
    ///
    /// Shed load instead of queueing it:
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, TrySpawnError};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let mut shed = 0;
    ///     for _ in 0..5 {
    ///         match s.try_spawn(std::future::pending::<()>()) {
    ///             Ok(_) => {}
    ///             Err(TrySpawnError::Full(_)) => shed += 1, // e.g. answer "busy"
    ///             Err(TrySpawnError::Closed(..)) => break,
    ///         }
    ///     }
    ///     s.cancel();
    ///     shed
    /// }).limit(2));
    /// assert!(out.is_err()); // the cancel cut the two that ran short
    /// ```
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, TrySpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let node = self.node.as_ptr();
        let limited = self.node.is_limited();
        let admitted = self.node.try_admit(future, |future| {
            if limited {
                let (task, handle) = crate::task::new(future, Limited::new(TaskBinding { node }));
                // SAFETY: `task` was made just above with these types.
                let cell = Some(unsafe { cell_of::<F, TaskBinding>(&task) });
                Made { task, cell, handle }
            } else {
                let (task, handle) = crate::task::new(future, TaskBinding { node });
                Made {
                    task,
                    cell: None,
                    handle,
                }
            }
        });
        match admitted {
            Ok((task, handle)) => {
                self.record_spawn(&task);
                self.node.shared().schedule(task, Push::Back);
                Ok(handle)
            }
            Err((Refusal::Full, future)) => Err(TrySpawnError::Full(future)),
            Err((Refusal::Closed(cancelled), future)) => {
                Err(TrySpawnError::Closed(future, cancelled))
            }
        }
    }

    /// Waits until a slot of the scope's
    /// [`limit`](crate::ScopeFuture::limit) is free and holds it: spend it
    /// with [`Slot::spawn`], or drop it to give it back. `Err(Cancelled)`
    /// if the scope is cancelled or ends first. In a scope without a
    /// limit it resolves at once.
    ///
    /// Waiters are served in the order they began waiting, after the
    /// scope's queued tasks: a freed slot goes to the first task queued by
    /// [`spawn`](Scope::spawn), and only when none is queued to the first
    /// waiter (tasks already accepted finish before new work is taken on).
    /// Cancel safe: dropping the future before it resolves leaves the line
    /// and passes on a slot granted meanwhile. Ready at once, it spends a
    /// unit of the task's [budget](crate::task::consume_budget); in a task
    /// (or scope body) that has been cancelled it never completes.
    ///
    /// # Examples
    ///
    /// An accept loop that takes a connection only when it can serve it,
    /// so that the operating system's backlog, not the scope, holds the
    /// rest:
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let out = rt.block_on(scope(|s| async move {
    ///     let (tx, incoming) = async_channel::unbounded::<u64>(); // stands for a listener
    ///     for ms in [30, 10, 20, 40] {
    ///         tx.send(ms).await.unwrap();
    ///     }
    ///     drop(tx);
    ///     let mut served = 0;
    ///     loop {
    ///         let slot = s.slot().await.unwrap(); // 1. room for one more
    ///         let Ok(ms) = incoming.recv().await else { break }; // 2. accept
    ///         slot.spawn(sleep(Duration::from_millis(ms))); // 3. serve
    ///         served += 1;
    ///     }
    ///     served
    /// }).limit(2));
    /// assert_eq!(out, Ok(4));
    /// ```
    pub fn slot(&self) -> WaitSlot {
        WaitSlot {
            node: self.node.clone(),
            key: None,
        }
    }

    /// Waits for a free slot (see [`slot`](Scope::slot)), then spawns
    /// `future` into it, and resolves to its [`JoinHandle`]: back-pressure
    /// for a loop that produces work faster than the scope's
    /// [`limit`](crate::ScopeFuture::limit) lets it run. If the scope is
    /// cancelled or ends first, the future is dropped unpolled and the
    /// handle resolves to `Err(Cancelled)`.
    ///
    /// Cancel safe: dropped before it resolves, it has spawned nothing.
    /// Unlike [`spawn`](Scope::spawn), which queues every task it cannot
    /// start (each holding its future, and what it owns: a connection, a
    /// buffer), the waiting happens here, at most one future at a time
    /// per loop; so an accept loop uses `spawn_when_free` (or `slot`),
    /// never `spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    /// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    /// use std::sync::Arc;
    ///
    /// let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let out = runtime::block_on(scope(|s| {
    ///     let (now, most) = (now.clone(), most.clone());
    ///     async move {
    ///         for _ in 0..100 {
    ///             let (now, most) = (now.clone(), most.clone());
    ///             s.spawn_when_free(async move {
    ///                 most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
    ///                 cancel_scope::task::yield_now().await;
    ///                 now.fetch_sub(1, SeqCst);
    ///             })
    ///             .await;
    ///         }
    ///     }
    /// }).limit(3));
    /// assert!(out.is_ok());
    /// assert!(most.load(SeqCst) <= 3);
    /// ```
    pub fn spawn_when_free<F>(&self, future: F) -> SpawnWhenFree<F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        SpawnWhenFree {
            wait: self.slot(),
            future: Some(future),
        }
    }

    /// [`spawn`](Scope::spawn) into a limited scope: the task starts if a
    /// slot is free, else waits in the scope's queue.
    #[inline(never)]
    pub(super) fn spawn_limited<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let binding = Limited::new(TaskBinding {
            node: self.node.as_ptr(),
        });
        self.start_limited(future, binding, |shared, task| {
            shared.schedule(task, Push::Back);
        })
    }

    /// [`spawn_blocking`](Scope::spawn_blocking) into a limited scope: a
    /// closure holds a slot while it waits in the pool and runs, and one
    /// that finds none waits in the scope's queue, never handed to the
    /// pool until a slot frees.
    #[inline(never)]
    pub(super) fn spawn_blocking_limited<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let binding = Limited::new(BlockingBinding(TaskBinding {
            node: self.node.as_ptr(),
        }));
        self.start_limited(RunClosure::new(f), binding, |shared, task| {
            shared.blocking.submit(task);
        })
    }

    fn start_limited<F, B>(
        &self,
        future: F,
        binding: Limited<B>,
        run: impl FnOnce(&Shared, TaskRef),
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        B: Bound,
    {
        let (task, handle) = crate::task::new(future, binding);
        // SAFETY: `task` was made just above with these types.
        let cell = unsafe { cell_of::<F, B>(&task) };
        match self.node.add_limited_task(task.clone(), cell) {
            Ok(admitted) => {
                self.record_spawn(&task);
                match admitted {
                    Admitted::Started => run(self.node.shared(), task),
                    // The queue holds the list's reference; this one goes.
                    Admitted::Queued => drop(task),
                }
                handle
            }
            Err((cancelled, listed)) => {
                drop((listed, task, handle));
                JoinHandle::refused(cancelled)
            }
        }
    }

    /// Records a spawn on a recording runtime.
    pub(super) fn record_spawn(&self, task: &TaskRef) {
        self.node
            .shared()
            .record(|| crate::trace::EventKind::TaskSpawned {
                task: task.id().number(),
                scope: self.node.id(),
            });
    }
}

/// A binding that reaches its node: what [`Limited`] wraps.
pub(super) trait Bound: Schedule {
    fn binding(&self) -> &TaskBinding;
}

impl Bound for TaskBinding {
    fn binding(&self) -> &TaskBinding {
        self
    }
}

impl Bound for BlockingBinding {
    fn binding(&self) -> &TaskBinding {
        &self.0
    }
}

/// The scheduler of a limited scope's task: its plain binding, and the
/// cell that tells its release whether it held a slot (`tree/limit.rs`).
pub(super) struct Limited<B> {
    inner: B,
    cell: SlotCell,
}

impl<B> Limited<B> {
    fn new(inner: B) -> Limited<B> {
        Limited {
            inner,
            cell: SlotCell::default(),
        }
    }
}

/// Where the cell of a task made with `Limited<B>` lives.
///
/// # Safety
///
/// `task` was made by `task::new` with future `F` and scheduler
/// `Limited<B>`.
unsafe fn cell_of<F: Future + 'static, B: 'static>(task: &TaskRef) -> NonNull<SlotCell> {
    // SAFETY: the caller's contract.
    let limited = unsafe { crate::task::scheduler_of::<F, Limited<B>>(task) };
    NonNull::from(&limited.cell)
}

impl<B: Bound> Schedule for Limited<B> {
    fn schedule(&self, task: TaskRef) {
        self.inner.schedule(task);
    }

    fn enter<R>(&self, task: TaskId, poll: impl FnOnce() -> R) -> R {
        self.inner.enter(task, poll)
    }

    fn cancelled(&self) -> Cancelled {
        self.inner.cancelled()
    }

    fn keeps_panics(&self) -> bool {
        self.inner.keeps_panics()
    }

    fn release(&self, id: TaskId, ended: Ended, panic: Option<Panic>) {
        // SAFETY: rule "binding followed while live"; the task is live until
        // this call, which is its last use of the pointer.
        unsafe {
            super::tree::Node::release_limited_task(
                self.inner.binding().node,
                id,
                ended,
                panic,
                &self.cell,
            )
        };
    }
}

/// The message of a refused `limit(0)`.
pub(super) const ZERO_LIMIT: &str =
    "`limit(0)`: a scope whose limit is 0 could never run a task; a limit is at least 1";
