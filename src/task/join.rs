//! [`JoinHandle`]: awaiting a spawned task's output.

use super::budget;
use super::raw::{drop_ref, Header, TaskRef};
use super::state::COMPLETE;
use crate::cancelled::Cancelled;
use crate::loom::sync::Mutex;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{ready, Context, Poll, Waker};

/// Where a finished task leaves its output for the [`JoinHandle`].
pub(crate) struct JoinSlot<T> {
    output: Output<T>,
    waker: Option<Waker>,
}

/// The output's journey. Three states in the space of one `Result`:
/// `Pending` and `Taken` use the `Result`'s spare discriminant values, so
/// the slot is no bigger than the output it carries.
enum Output<T> {
    Pending,
    Ready(Result<T, Cancelled>),
    /// The `JoinHandle` returned it.
    Taken,
}

impl<T> JoinSlot<T> {
    pub(super) fn new() -> Self {
        JoinSlot {
            output: Output::Pending,
            waker: None,
        }
    }

    /// Whether dropping the slot would drop nothing: no output left in it,
    /// no waker.
    pub(super) fn is_empty(&self) -> bool {
        !matches!(self.output, Output::Ready(_)) && self.waker.is_none()
    }

    /// Whether an output waits in the slot (never when the task is freed:
    /// rule "output through the join slot").
    pub(super) fn holds_output(&self) -> bool {
        matches!(self.output, Output::Ready(_))
    }

    /// Stores the output; returns the waker to call once the lock is gone.
    pub(super) fn put(&mut self, output: Result<T, Cancelled>) -> Option<Waker> {
        self.output = Output::Ready(output);
        self.waker.take()
    }

    /// The stored output, if any, taken back by its completer because the
    /// handle is gone (rule "output through the join slot").
    pub(super) fn take_back(&mut self) -> Option<Result<T, Cancelled>> {
        self.take(Output::Pending)
    }

    /// The stored output, if any, leaving the slot in `after`; else
    /// nothing changes.
    fn take(&mut self, after: Output<T>) -> Option<Result<T, Cancelled>> {
        if !matches!(self.output, Output::Ready(_)) {
            return None;
        }
        match std::mem::replace(&mut self.output, after) {
            Output::Ready(output) => Some(output),
            Output::Pending | Output::Taken => None,
        }
    }
}

/// An owned permission to await a spawned task's output.
///
/// `JoinHandle<T>` is a future of `Result<T, Cancelled>`: `Ok` with the
/// task's output, or `Err(Cancelled)` when the task's scope was cancelled
/// before the task finished (its future was then dropped, not polled to the
/// end), when the task alone was cancelled ([`cancel`](JoinHandle::cancel),
/// [`TaskCancelHandle`]), when the task panicked (the panic itself goes to
/// the scope, see [`scope`](crate::scope()); in a
/// [`supervisor_scope`](crate::supervisor_scope) it stays with this handle,
/// whose `Cancelled` carries the payload), or when it was spawned into a
/// scope that was already cancelled or over. For a closure of
/// [`Scope::spawn_blocking`](crate::Scope::spawn_blocking), also when its
/// scope was cancelled while the closure ran: its value is then dropped.
///
/// Dropping a `JoinHandle` detaches it: the task keeps running and still
/// belongs to its scope, which waits for it.
///
/// Polling a `JoinHandle` again after it returned `Ready` panics.
///
/// Awaiting a handle whose task has finished spends a unit of the awaiting
/// task's [budget](crate::task::consume_budget), and in a task (or scope
/// body) that has been cancelled the `.await` never completes: the task is
/// dropped there.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let sum = runtime::block_on(scope(|s| async move {
///     let a = s.spawn(async { 1 });
///     let b = s.spawn(async { 2 });
///     a.await.unwrap() + b.await.unwrap()
/// }));
/// assert_eq!(sum, Ok(3));
/// ```
pub struct JoinHandle<T> {
    inner: Inner<T>,
    /// A poll returned `Pending`, leaving a waker in the slot.
    waiting: bool,
}

enum Inner<T> {
    /// A task: a counted reference to it (rule "every reference counts"), and
    /// its join slot.
    Task {
        header: NonNull<Header>,
        slot: NonNull<Mutex<JoinSlot<T>>>,
    },
    /// Spawn was refused: the handle resolves at once.
    Refused(Option<Cancelled>),
}

// SAFETY: the handle reaches its task only through the state word (atomic)
// and the join slot (behind its mutex), and hands out a `T` it owns; so it
// may move to, and be shared with, any thread if `T` may move.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: as for `Send`; `&JoinHandle` gives access to nothing.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    ///
    /// The caller gives the handle one counted reference to the task at
    /// `header`, and `slot` is that task's join slot for output `T`.
    pub(super) unsafe fn new(header: NonNull<Header>, slot: NonNull<Mutex<JoinSlot<T>>>) -> Self {
        JoinHandle {
            inner: Inner::Task { header, slot },
            waiting: false,
        }
    }

    pub(crate) fn refused(cancelled: Cancelled) -> Self {
        JoinHandle {
            inner: Inner::Refused(Some(cancelled)),
            waiting: false,
        }
    }

    /// Cancels this task alone: its future is dropped as in a scope's
    /// cancel (at once if it is idle, when its poll returns if it is
    /// running), and this handle resolves to `Err(Cancelled)` with
    /// [`CancelReason::Explicit`](crate::CancelReason::Explicit), unless a
    /// poll already running completes the task; the scope and the other
    /// tasks go on. Does nothing if the task has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, CancelReason};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let stuck = s.spawn(std::future::pending::<()>());
    ///     let fine = s.spawn(async { 7 });
    ///     stuck.cancel();
    ///     assert_eq!(stuck.await.unwrap_err().reason(), &CancelReason::Explicit);
    ///     fine.await.unwrap()
    /// }));
    /// assert_eq!(out, Ok(7)); // the scope went on
    /// ```
    pub fn cancel(&self) {
        if let Inner::Task { header, .. } = self.inner {
            // SAFETY: our reference keeps the task allocated.
            unsafe { (header.as_ref().vtable.cancel_one)(header) };
        }
    }

    /// A handle that cancels this task without joining it: cheap to clone
    /// and to give away.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let task = s.spawn(std::future::pending::<()>());
    ///     let canceller = task.cancel_handle();
    ///     std::thread::spawn(move || canceller.cancel()).join().unwrap();
    ///     task.await.is_err()
    /// }));
    /// assert_eq!(out, Ok(true));
    /// ```
    pub fn cancel_handle(&self) -> TaskCancelHandle {
        let task = match self.inner {
            Inner::Task { header, .. } => {
                // SAFETY: our reference keeps the task allocated, and the
                // new handle takes a reference of its own.
                unsafe {
                    header.as_ref().state.ref_inc();
                    Some(TaskRef::from_raw(header))
                }
            }
            Inner::Refused(_) => None,
        };
        TaskCancelHandle { task }
    }

    /// Whether the task has finished: its output is ready, or it was
    /// cancelled or refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     let task = s.spawn(std::future::pending::<()>());
    ///     assert!(!task.is_finished());
    ///     task.cancel();
    ///     assert!(task.is_finished());
    /// }));
    /// ```
    pub fn is_finished(&self) -> bool {
        match self.inner {
            // SAFETY: our reference keeps the task allocated.
            Inner::Task { header, .. } => unsafe { header.as_ref() }.state.load().has(COMPLETE),
            Inner::Refused(_) => true,
        }
    }
}

/// A handle that cancels one task without joining it; see
/// [`JoinHandle::cancel_handle`]. Holding one keeps the task's memory, not
/// its future: cancelling after the task finished does nothing.
#[derive(Clone)]
pub struct TaskCancelHandle {
    /// `None` for a task whose spawn was refused.
    task: Option<TaskRef>,
}

impl TaskCancelHandle {
    /// Cancels the task, as [`JoinHandle::cancel`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let task = s.spawn(std::future::pending::<()>());
    ///     task.cancel_handle().cancel();
    ///     task.await.is_err()
    /// }));
    /// assert_eq!(out, Ok(true));
    /// ```
    pub fn cancel(&self) {
        if let Some(task) = &self.task {
            task.cancel_one();
        }
    }

    /// Whether the task has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     let task = s.spawn(async {});
    ///     let handle = task.cancel_handle();
    ///     task.await.unwrap();
    ///     assert!(handle.is_finished());
    /// }));
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().map_or(true, TaskRef::is_complete)
    }
}

impl fmt::Debug for TaskCancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskCancelHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A leaf of the budget (`budget.rs`): in a cancelled poll it stays
        // `Pending`, and a spent budget makes it yield.
        let permit = ready!(budget::poll_proceed(cx));
        permit.settle(self.poll_output(cx))
    }
}

impl<T> JoinHandle<T> {
    /// The task's output if it is there, else registers `cx`'s waker: the
    /// poll without the budget, for the runtime's own futures that hold
    /// handles (`JoinSet`), which answer to the budget themselves.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Cancelled>> {
        match &mut self.inner {
            Inner::Task { slot, .. } => {
                // SAFETY: our reference keeps the task, and so its slot,
                // allocated (rule "every reference counts").
                let poll = poll_join(unsafe { slot.as_ref() }, cx);
                self.waiting |= poll.is_pending();
                poll
            }
            Inner::Refused(cancelled) => Poll::Ready(Err(cancelled
                .take()
                .expect("`JoinHandle` polled after it completed"))),
        }
    }
}

fn poll_join<T>(slot: &Mutex<JoinSlot<T>>, cx: &mut Context<'_>) -> Poll<Result<T, Cancelled>> {
    let mut slot = slot.lock();
    if let Some(output) = slot.take(Output::Taken) {
        return Poll::Ready(output);
    }
    assert!(
        !matches!(slot.output, Output::Taken),
        "`JoinHandle` polled after it completed"
    );
    match &slot.waker {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => slot.waker = Some(cx.waker().clone()),
    }
    Poll::Pending
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let Inner::Task { header, slot } = self.inner else {
            return;
        };
        // SAFETY: our reference keeps the task allocated until `drop_ref`.
        let prev = unsafe { header.as_ref() }.state.drop_join_handle();
        // No output is stored before `COMPLETE`, and a completer that sets
        // it after this point sees no `JOIN_HANDLE` and stores none: with
        // no waker of ours either, the slot is empty. The common drop of a
        // handle never awaited takes no lock.
        if prev.has(COMPLETE) || self.waiting {
            // Drop an output that was already stored, and our waker,
            // outside the lock: either may run user code.
            let (output, waker) = {
                // SAFETY: as above.
                let mut slot = unsafe { slot.as_ref() }.lock();
                (slot.take(Output::Pending), slot.waker.take())
            };
            drop(output);
            drop(waker);
        }
        // SAFETY: the handle's reference, given up here.
        unsafe { drop_ref(header) };
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}
