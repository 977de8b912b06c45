//! Tasks: a spawned future, its state word, its waker and its `JoinHandle`.
//!
//! A task is one allocation, `Arc<Task<F, S>>`, holding the future, the
//! state word (`state.rs`), the slot where the output waits for the
//! [`JoinHandle`], and a scheduler `S`. The task knows nothing of scopes or
//! of the runtime: it reaches both through the small `Schedule` trait.
//!
//! # Who may touch which field, and when
//!
//! - **Rule F (future).** `future` is read or written only by the thread that
//!   claimed it: the runner that moved the state word to `RUNNING`, until
//!   it clears `RUNNING`; or the canceller that moved an idle task to
//!   `COMPLETE`, until it has dropped the future. The state word's `AcqRel`
//!   transitions order one owner's accesses before the next owner's.
//! - **Rule J (join slot).** `join` is behind its own mutex; whoever sets
//!   `COMPLETE` writes the output there (only if `JOIN_HANDLE` was set), and
//!   the `JoinHandle` takes it.
//! - **Rule S (scheduler).** `scheduler` is immutable after spawn.
//!
//! # Public items
//!
//! [`JoinHandle`] and [`yield_now`] are the only public items here.

mod join;
#[cfg(all(test, cancel_scope_loom))]
mod loom_models;
pub(crate) mod state;
mod yield_now;

pub use join::JoinHandle;
pub use yield_now::{yield_now, YieldNow};

use crate::cancelled::{CancelReason, Cancelled};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Mutex;
use state::{Snapshot, State, ToCancelled, ToIdle, ToNotified, ToRunning, JOIN_HANDLE};
use std::any::Any;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A type-erased reference to a task, as held by run queues and by the
/// scope tree.
pub(crate) type TaskRef = Arc<dyn RawTask>;

/// A panic payload caught from user code.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// How a task reaches whoever owns it.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Pushes a task that a waker made runnable; on a worker it runs next.
    fn schedule(&self, task: TaskRef);
    /// Pushes a task that was woken while it was being polled (it yielded,
    /// or a wake raced its poll) to the back of the queue, behind the tasks
    /// already waiting.
    fn reschedule(&self, task: TaskRef);
    /// Runs `poll` with this task's context installed (its current scope).
    fn enter<R>(&self, poll: impl FnOnce() -> R) -> R;
    /// The value a `JoinHandle` of a cancelled task resolves to.
    fn cancelled(&self) -> Cancelled;
    /// The runner finished the task (output ready, cancelled, or panicked).
    /// Not called when [`RawTask::cancel`] returns [`Cancel::Dropped`]: then
    /// the canceller does the accounting.
    fn release(&self, panic: Option<Panic>);
}

/// The type-erased operations on a task.
pub(crate) trait RawTask: Send + Sync + 'static {
    /// Polls the task once (called by a worker that popped it).
    fn run(self: Arc<Self>);
    /// Requests cancellation; see [`Cancel`].
    fn cancel(&self) -> Cancel;
}

/// The outcome of [`RawTask::cancel`].
#[must_use]
pub(crate) enum Cancel {
    /// The caller dropped the future; `Schedule::release` is not called, so
    /// the caller accounts for the task. Carries a panic from the future's
    /// `Drop`, if any.
    Dropped(Option<Panic>),
    /// A runner owns the future and will drop it and call `release`.
    Deferred,
    /// The task had already completed.
    AlreadyComplete,
}

/// How a task ended, for [`Task::complete`].
enum End<T> {
    Ready(T),
    Cancelled,
    Panicked,
}

/// One spawned future and everything needed to run and join it.
pub(crate) struct Task<F: Future, S> {
    state: State,
    /// Rule F.
    future: UnsafeCell<Option<F>>,
    /// Rule J.
    join: Mutex<join::JoinSlot<F::Output>>,
    /// Rule S.
    scheduler: S,
}

// SAFETY: `future` is the only field that is not `Sync`; rule F gives one
// thread at a time exclusive access to it, handed over through the state
// word's AcqRel transitions. `F: Send` lets that thread be any thread.
unsafe impl<F: Future + Send, S: Sync> Sync for Task<F, S> where F::Output: Send {}

impl<F, S> Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    /// Allocates a task in the `SCHEDULED | JOIN_HANDLE` state. The caller
    /// pushes it to a run queue and wraps it in a [`JoinHandle`].
    pub(crate) fn new(future: F, scheduler: S) -> Arc<Self> {
        Arc::new(Task {
            state: State::new(),
            future: UnsafeCell::new(Some(future)),
            join: Mutex::new(join::JoinSlot::new()),
            scheduler,
        })
    }

    pub(crate) fn scheduler(&self) -> &S {
        &self.scheduler
    }

    /// Drops the future (the caller runs it under rule F), sets `COMPLETE`
    /// and hands the output to a waiting `JoinHandle`.
    fn complete(&self, end: End<F::Output>) -> Option<Panic> {
        let panic = self.drop_future();
        let prev = self.state.transition_to_complete();
        self.deliver(prev, end, panic)
    }

    /// Drops the future in place, catching a panic from its `Drop`.
    fn drop_future(&self) -> Option<Panic> {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: rule F; the caller owns the future (it holds RUNNING,
            // or claimed the idle task). Assigning drops the pinned future
            // in place, and the slot holds `None` afterwards even if that
            // drop panics, so it is never dropped twice.
            self.future.with_mut(|future| unsafe { *future = None });
        }))
        .err()
    }

    /// Hands the output to the `JoinHandle`, if the word before `COMPLETE`
    /// (`prev`) says one wants it. The output of a stopped task is only
    /// built then. Returns `panic`, or else a panic of the handle's waker.
    fn deliver(&self, prev: Snapshot, end: End<F::Output>, panic: Option<Panic>) -> Option<Panic> {
        if prev.has(JOIN_HANDLE) {
            let output = match end {
                End::Ready(value) => Ok(value),
                End::Cancelled => Err(self.scheduler.cancelled()),
                End::Panicked => Err(Cancelled::new(CancelReason::Panicked)),
            };
            let waker = self.join.lock().put(output);
            // A panicking `JoinHandle` waker counts as this task's panic:
            // it goes to the task's scope, not into the worker.
            if let Some(wake_panic) = waker.and_then(crate::wake_list::wake_catching) {
                return panic.or(Some(wake_panic));
            }
        }
        panic
    }

    fn poll_future(self: &Arc<Self>) -> Option<Poll<F::Output>> {
        // A waker that borrows our reference instead of taking one: saves
        // an increment and a decrement of the shared count on every poll.
        // SAFETY: `Arc::from_raw` rebuilds the `Arc` that `self` is, without
        // a new count; `ManuallyDrop` keeps the borrowed waker from ever
        // releasing it. The waker lives only in this frame, where `self`
        // keeps the task alive, and a clone taken by the future is a real
        // `Arc` clone through the waker's vtable.
        let waker = ManuallyDrop::new(Waker::from(unsafe { Arc::from_raw(Arc::as_ptr(self)) }));
        let mut cx = Context::from_waker(&waker);
        let result = self.scheduler.enter(|| {
            catch_unwind(AssertUnwindSafe(|| {
                self.future.with_mut(|slot| {
                    // SAFETY: rule F; this runner moved the state to RUNNING.
                    let slot = unsafe { &mut *slot };
                    let future = slot.as_mut().expect("a RUNNING task has its future");
                    // SAFETY: the future lives in the `Arc` allocation and
                    // never moves: `complete` and `Task::drop` drop it in
                    // place.
                    unsafe { Pin::new_unchecked(future) }.poll(&mut cx)
                })
            }))
        });
        match result {
            Ok(poll) => Some(poll),
            Err(panic) => {
                let drop_panic = self.complete(End::Panicked);
                drop(drop_panic);
                self.scheduler.release(Some(panic));
                None
            }
        }
    }
}

impl<F, S> RawTask for Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    fn run(self: Arc<Self>) {
        match self.state.transition_to_running() {
            ToRunning::Dead => return,
            ToRunning::Cancel => {
                let panic = self.complete(End::Cancelled);
                self.scheduler.release(panic);
                return;
            }
            ToRunning::Poll => {}
        }
        match self.poll_future() {
            None => {}
            Some(Poll::Ready(output)) => {
                let panic = self.complete(End::Ready(output));
                self.scheduler.release(panic);
            }
            Some(Poll::Pending) => match self.state.transition_to_idle() {
                ToIdle::Idle => {}
                ToIdle::Reschedule => self.scheduler.reschedule(self.clone()),
                ToIdle::Cancel => {
                    let panic = self.complete(End::Cancelled);
                    self.scheduler.release(panic);
                }
            },
        }
    }

    fn cancel(&self) -> Cancel {
        match self.state.transition_to_cancelled() {
            ToCancelled::Claimed(prev) => {
                let panic = self.drop_future();
                Cancel::Dropped(self.deliver(prev, End::Cancelled, panic))
            }
            ToCancelled::Deferred => Cancel::Deferred,
            ToCancelled::AlreadyComplete => Cancel::AlreadyComplete,
        }
    }
}

impl<F, S> Wake for Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.transition_to_notified() == ToNotified::Submit {
            self.scheduler.schedule(self.clone());
        }
    }
}

impl<F: Future, S> Drop for Task<F, S> {
    fn drop(&mut self) {
        // A task is only freed after COMPLETE, except when spawn refused it
        // (its scope was already over) and it never ran: then the future is
        // dropped here, never polled.
        // Not under loom: it cannot see the `Arc` count that orders this
        // read after the last owner's write.
        #[cfg(not(cancel_scope_loom))]
        {
            // SAFETY: `&mut self`: nobody else can reach the future.
            let held = self.future.with(|future| unsafe { (*future).is_some() });
            debug_assert!(
                !held || !self.state.load().has(state::COMPLETE),
                "a COMPLETE task still holds its future"
            );
        }
    }
}
