//! [`JoinHandle`]: awaiting a spawned task's output.

use super::state::COMPLETE;
use super::Task;
use crate::cancelled::Cancelled;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Where a finished task leaves its output for the [`JoinHandle`].
pub(crate) struct JoinSlot<T> {
    output: Output<T>,
    waker: Option<Waker>,
}

/// The output's journey. Three states in the space of one `Result`: for
/// `T = ()` the slot is 32 bytes, and a task fits a smaller heap chunk.
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

    /// Stores the output; returns the waker to call once the lock is gone.
    pub(super) fn put(&mut self, output: Result<T, Cancelled>) -> Option<Waker> {
        self.output = Output::Ready(output);
        self.waker.take()
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

/// The join side of a task, erased over the future type.
trait Join<T>: Send + Sync {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, Cancelled>>;
    /// The handle is dropped; `waiting` says whether it left a waker.
    fn detach(&self, waiting: bool);
}

impl<F, S> Join<F::Output> for Task<F, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: super::Schedule,
{
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, Cancelled>> {
        let mut slot = self.join.lock();
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

    fn detach(&self, waiting: bool) {
        let prev = self.state.drop_join_handle();
        // No output is stored before `COMPLETE`, and a completer that sets
        // it after this point sees no `JOIN_HANDLE` and stores none: with
        // no waker of ours either, the slot is empty. The common drop of a
        // handle never awaited takes no lock.
        if !prev.has(COMPLETE) && !waiting {
            return;
        }
        // Drop an output that was already stored, and our waker, outside
        // the lock: either may run user code.
        let (output, waker) = {
            let mut slot = self.join.lock();
            (slot.take(Output::Pending), slot.waker.take())
        };
        drop(output);
        drop(waker);
    }
}

/// An owned permission to await a spawned task's output.
///
/// `JoinHandle<T>` is a future of `Result<T, Cancelled>`: `Ok` with the
/// task's output, or `Err(Cancelled)` when the task's scope was cancelled
/// before the task finished (its future was then dropped, not polled to the
/// end), when the task panicked (the panic itself goes to the scope, see
/// [`scope`](crate::scope())), or when it was spawned into a scope that was
/// already cancelled or over.
///
/// Dropping a `JoinHandle` detaches it: the task keeps running and still
/// belongs to its scope, which waits for it.
///
/// Polling a `JoinHandle` again after it returned `Ready` panics.
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
    Task(Arc<dyn Join<T>>),
    /// Spawn was refused: the handle resolves at once.
    Refused(Option<Cancelled>),
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn new<F, S>(task: Arc<Task<F, S>>) -> Self
    where
        F: Future<Output = T> + Send + 'static,
        S: super::Schedule,
    {
        JoinHandle {
            inner: Inner::Task(task),
            waiting: false,
        }
    }

    pub(crate) fn refused(cancelled: Cancelled) -> Self {
        JoinHandle {
            inner: Inner::Refused(Some(cancelled)),
            waiting: false,
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::Task(task) => {
                let poll = task.poll_join(cx);
                this.waiting |= poll.is_pending();
                poll
            }
            Inner::Refused(cancelled) => Poll::Ready(Err(cancelled
                .take()
                .expect("`JoinHandle` polled after it completed"))),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Inner::Task(task) = &self.inner {
            task.detach(self.waiting);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}
