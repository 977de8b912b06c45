//! The blocking entry of a borrowing scope
//! ([`runtime::scoped`](crate::runtime::scoped) and
//! [`Runtime::scoped`](crate::runtime::Runtime::scoped)).
//!
//! The call opens a node (under the scope being polled on this thread, else as
//! a root of the runtime: where `block_on(scope(..))` would), calls the body's
//! closure on the calling thread, spawns the future it returns as a task of
//! the node, and blocks on the node's end, as a scope future waits for its
//! tasks. The node's own body is done as soon as the user's body is a task, so
//! the node finishes when its last task and child are gone: that is the end
//! the call returns at (rule "the call outlives its tasks").
//!
//! It is a [`Call`] future driven by `block_on`, so that a paused clock
//! sees the calling thread as one more `block_on`. Its `Drop` is the
//! guard: a call unwinding before the end (nothing in the call's own
//! code panics by design, but the soundness of every borrow rests on
//! this) cancels its node and waits, parked, for the end before the
//! unwinding goes on.

use super::BorrowScope;
use crate::cancelled::{CancelReason, Cancelled};
use crate::runtime::context;
use crate::runtime::{Runtime, Shared};
use crate::scope::tree::{BodyEnd, Kind, Links, Node, NodeRef, Options, Place};
use crate::scope::Scope;
use crate::task::JoinHandle;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;

/// Runs a scope whose tasks may borrow the caller's data, on the
/// process-wide default runtime, and returns when every task of it has
/// ended and been dropped: a [`scope`](crate::scope()) you block on, as
/// `std::thread::scope` is for threads.
///
/// `body` gets a [`BorrowScope`]; the future it returns, and every task
/// spawned through the handle (or a clone, or a nested borrowing scope),
/// may borrow anything that outlives this call (`'env`): a slice to search
/// in parallel, a buffer each task writes a part of, a lock or a counter
/// on the caller's stack. No `Arc`, no clone of the data. Move
/// *references* into the body (`async move` moves what it names):
///
/// ```
/// use cancel_scope::runtime;
///
/// let blocks: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 1024]).collect();
/// let blocks = &blocks; // the body and tasks get the reference
/// let sums = runtime::scoped(|s| async move {
///     let tasks: Vec<_> = blocks
///         .iter()
///         .map(|block| s.spawn(async move { block.iter().map(|&b| u64::from(b)).sum::<u64>() }))
///         .collect();
///     let mut sums = Vec::new();
///     for task in tasks {
///         sums.push(task.await.unwrap());
///     }
///     sums
/// });
/// assert_eq!(sums.unwrap()[3], 3 * 1024);
/// ```
///
/// The call resolves as a scope does: `Ok` with the body's output, or
/// `Err(Cancelled)` if a cancel of the scope (its own, a deadline, the
/// runtime's shutdown) interrupted the body or a task; a panic of the
/// body or a task is resumed here, once everything has ended.
///
/// # The body is a task
///
/// `body` itself is called on the calling thread, inside the scope (it
/// may spawn), and need not be `Send`. The future it returns runs as the
/// scope's first task, on the workers, so it is `Send + 'env`; meanwhile
/// the calling thread parks, idle, until the scope has ended.
///
/// # When it returns
///
/// Only once the body's task and every task of the scope and of every
/// scope below it have ended and been dropped, and their outputs dropped
/// by their handles, on every path: a normal end, a cancel, a deadline, a
/// panicking task, body or `Drop`. A
/// [`BorrowJoinHandle`](crate::BorrowJoinHandle) borrows the scope handle
/// it came from, so it stays in the body or task that holds that, and
/// never outlives the data; only it drops its output, and one forgotten
/// with `mem::forget` leaks the output, never drops it late. A clone of the
/// scope handle kept after the call spawns nothing: the task is refused,
/// its future dropped unpolled. Scopes nested with
/// [`BorrowScope::scope`] and its siblings borrow `'env` too, never a
/// task's own locals (an awaited scope can be forgotten while its tasks
/// run on). The module docs of `scope/borrowed` have the whole argument.
///
/// # Blocking
///
/// The call blocks the calling thread until the end. It panics on one
/// of this crate's worker threads, as [`block_on`](crate::runtime::block_on()) does: a
/// blocked worker can deadlock the runtime; inside a task, open a
/// [`scope`](crate::scope()) and `.await` it, with `'static` tasks. On a
/// thread of *another* async runtime (a tokio worker, say) it blocks that
/// thread, and whatever that runtime would have run on it waits. It
/// works inside [`Scope::spawn_blocking`](crate::Scope::spawn_blocking)
/// (the scope opens under the closure's, as a `block_on(scope(..))`
/// there would) and on a runtime with a paused clock
/// ([`Runtime::scoped`]).
///
/// # What does not compile
///
/// A task may not borrow the body's own locals (the body may be dropped,
/// cancelled, while the task runs):
///
/// ```compile_fail,E0597
/// use cancel_scope::runtime;
///
/// runtime::scoped(|s| async move {
///     let local = vec![1, 2, 3];
///     let local = &local; // error: `local` does not live long enough
///     s.spawn(async move { local.len() });
/// });
/// ```
///
/// A join handle may not leave the body that holds its scope handle, so
/// it can never be awaited after the call, nor outlive the data:
///
/// ```compile_fail,E0515
/// use cancel_scope::runtime;
///
/// let data = vec![1, 2, 3];
/// let data = &data;
/// let handle = runtime::scoped(|s| async move {
///     s.spawn(async move { data.len() }) // error: returns a value referencing `s`
/// });
/// ```
///
/// A scope handle kept past the call may not outlive the data its tasks
/// borrow:
///
/// ```compile_fail,E0597
/// use cancel_scope::runtime;
///
/// let mut kept = None;
/// {
///     let data = vec![1, 2, 3];
///     let data = &data; // error: `data` does not live long enough
///     let _ = runtime::scoped(|s| {
///         kept = Some(s.clone());
///         async move {
///             s.spawn(async move { data.len() });
///         }
///     });
/// }
/// drop(kept);
/// ```
///
/// A nested scope may not lend a task's own locals to its tasks (the
/// task's future can be dropped while a forgotten nested scope runs on):
///
/// ```compile_fail,E0597
/// use cancel_scope::runtime;
///
/// runtime::scoped(|s| async move {
///     let outer = s.clone();
///     s.spawn(async move {
///         let local = vec![1, 2, 3];
///         let local = &local; // error: `local` does not live long enough
///         outer
///             .scope(|inner| async move {
///                 inner.spawn(async move { local.len() });
///             })
///             .await
///     });
/// });
/// ```
///
/// # Panics
///
/// On a worker thread of this crate's runtimes; and it resumes a panic of
/// the body or of a task once the scope has ended.
#[track_caller]
pub fn scoped<'env, F, Fut>(body: F) -> Result<Fut::Output, Cancelled>
where
    F: FnOnce(BorrowScope<'env>) -> Fut,
    Fut: Future + Send + 'env,
    Fut::Output: Send + 'env,
{
    run(
        crate::runtime::default_runtime().shared(),
        body,
        Location::caller(),
    )
}

impl Runtime {
    /// Runs a scope whose tasks may borrow the caller's data, on this
    /// runtime; see [`runtime::scoped`](scoped()) for the rules. Scopes
    /// opened in it belong to this runtime, as those of
    /// [`block_on`](Runtime::block_on) do.
    ///
    /// # Panics
    ///
    /// On a worker thread of this crate's runtimes; and it resumes a panic
    /// of the body or of a task once the scope has ended.
    ///
    /// # Examples
    ///
    /// With a paused clock, a deadline takes no real time:
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let mut progress = [0u32; 3];
    /// let slots = &mut progress;
    /// let out = rt.scoped(|s| async move {
    ///     s.cancel_after(Duration::from_secs(5));
    ///     for (i, slot) in slots.iter_mut().enumerate() {
    ///         s.spawn(async move {
    ///             for _ in 0..=i {
    ///                 sleep(Duration::from_secs(2)).await;
    ///                 *slot += 1;
    ///             }
    ///         });
    ///     }
    /// });
    /// assert!(out.is_err()); // the deadline cut the last task short
    /// assert_eq!(progress, [1, 2, 2]);
    /// ```
    #[track_caller]
    pub fn scoped<'env, F, Fut>(&self, body: F) -> Result<Fut::Output, Cancelled>
    where
        F: FnOnce(BorrowScope<'env>) -> Fut,
        Fut: Future + Send + 'env,
        Fut::Output: Send + 'env,
    {
        run(self.shared(), body, Location::caller())
    }
}

/// What the call panics with on a worker thread of the runtime.
const ON_A_WORKER: &str = "cancel_scope: `scoped` called from a runtime worker thread; it \
    blocks its thread until every task it spawned has ended, and blocking a worker can \
    deadlock the runtime. Open a `scope` and `.await` it instead (its tasks are `'static`).";

/// Runs a borrowing scope on `shared` (rule "the call outlives its tasks"):
/// returns once every task of its subtree has ended and been dropped.
pub(crate) fn run<'env, F, Fut>(
    shared: &Arc<Shared>,
    body: F,
    location: &'static Location<'static>,
) -> Result<Fut::Output, Cancelled>
where
    F: FnOnce(BorrowScope<'env>) -> Fut,
    Fut: Future + Send + 'env,
    Fut::Output: Send + 'env,
{
    assert!(
        !crate::runtime::worker::is_worker_thread(),
        "{}",
        ON_A_WORKER
    );
    crate::runtime::block_on::block_on(shared, Call::new(body, location))
}

/// The future of one call: opens the node at its first poll, and is
/// ready once the node has finished.
struct Call<F, Fut: Future> {
    /// The body's closure, until the first poll.
    body: Option<F>,
    location: &'static Location<'static>,
    /// From the first poll to the end; `None` again once the call is over.
    started: Option<Started<Fut::Output>>,
}

/// A call between its first poll and its end.
struct Started<T> {
    /// The call's root node (its tree reference, as a scope future's).
    node: NodeRef,
    /// The body's task, whose output the call returns; `None` if the
    /// body's closure panicked.
    body: Option<JoinHandle<T>>,
    /// Whether the node was told its body is done (`body_done`, once).
    told: bool,
}

impl<'env, F, Fut> Call<F, Fut>
where
    F: FnOnce(BorrowScope<'env>) -> Fut,
    Fut: Future + Send + 'env,
    Fut::Output: Send + 'env,
{
    fn new(body: F, location: &'static Location<'static>) -> Self {
        Call {
            body: Some(body),
            location,
            started: None,
        }
    }

    /// Opens the node, calls the body's closure inside it (it may spawn),
    /// and spawns the future it returns as the node's first task. The
    /// node is kept in `started` before any user code runs, so that the
    /// guard finds it.
    fn start(&mut self, body: F) {
        let node = open_here(self.location);
        let scope = BorrowScope::new(Scope { node: node.clone() });
        let started = self.started.insert(Started {
            node,
            body: None,
            told: false,
        });
        let future = context::enter_scope(started.node.as_ptr(), || {
            catch_unwind(AssertUnwindSafe(|| body(scope.clone())))
        });
        match future {
            Ok(future) => started.body = Some(scope.lend(future)),
            Err(panic) => started.node.record_panic(panic),
        }
    }
}

/// Opens the call's node where `block_on(scope(..))` would open its scope:
/// under the scope being polled on this thread (inside a blocking
/// closure, say), else as a root of the runtime `block_on` entered.
fn open_here(location: &'static Location<'static>) -> NodeRef {
    context::with_current_scope(|parent| match parent {
        Some(parent) => Node::open(
            Place::Under(parent),
            Kind::Plain,
            location,
            Options::default(),
        ),
        None => Node::open(
            Place::Root(&context::current_runtime()),
            Kind::Plain,
            location,
            Options::default(),
        ),
    })
}

impl<'env, F, Fut> Future for Call<F, Fut>
where
    F: FnOnce(BorrowScope<'env>) -> Fut,
    Fut: Future + Send + 'env,
    Fut::Output: Send + 'env,
{
    type Output = Result<Fut::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.started.is_none() {
            let body = this
                .body
                .take()
                .expect("a borrowing call polled after it ended");
            this.start(body);
        }
        let started = this.started.as_mut().expect("started above");
        let outcome = if started.told {
            started.node.poll_end(cx.waker())
        } else {
            // The user's body is a task now: the node's own body is done,
            // and it ends with its last task and child.
            started.told = true;
            started.node.body_done(BodyEnd::Returned, cx.waker())
        };
        let Some(outcome) = outcome else {
            return Poll::Pending;
        };
        // The node has finished and left the tree: every task of the call's
        // subtree has ended and been dropped (rule "the call outlives its
        // tasks").
        let Started { body, .. } = this.started.take().expect("started above");
        // Without the budget: the output is there, and this is no leaf.
        let body = body.map(|mut handle| match handle.poll_output(cx) {
            Poll::Ready(output) => output,
            Poll::Pending => unreachable!("the body's task ended with its node"),
        });
        if let Some(panic) = outcome.panic {
            drop(body);
            resume_unwind(panic);
        }
        // As a scope's result: `Err` only if a cancel interrupted
        // something; the body's value is dropped then.
        Poll::Ready(match (outcome.cancelled, body) {
            (Some(cancelled), _) => Err(cancelled),
            (None, Some(output)) => output,
            (None, None) => unreachable!("a body that panicked leaves its panic"),
        })
    }
}

// Nothing is pinned: the body's closure is taken out by value, and its
// future lives in a task.
impl<F, Fut: Future> Unpin for Call<F, Fut> {}

impl<F, Fut: Future> Drop for Call<F, Fut> {
    fn drop(&mut self) {
        if let Some(started) = self.started.take() {
            started.abandon();
        }
    }
}

impl<T> Started<T> {
    /// The guard (rule "the call outlives its tasks" on an unwinding path):
    /// cancels the node and blocks this thread until it has finished, then
    /// drops what is left. A panic stored in the node is dropped, not resumed:
    /// the thread is unwinding already.
    #[cold]
    fn abandon(mut self) {
        self.node.cancel(CancelReason::ScopeDropped, Links::Ignore);
        let thread = thread::current();
        let waker: Waker = waker_fn::waker_fn(move || thread.unpark());
        let mut outcome = if self.told {
            self.node.poll_end(&waker)
        } else {
            self.told = true;
            self.node.body_done(BodyEnd::Interrupted, &waker)
        };
        // A shield below may still run on a paused clock that this thread,
        // not counted as a parked `block_on`, does not let advance: an
        // unwinding call then waits for it on real time only.
        while outcome.is_none() {
            thread::park();
            outcome = self.node.poll_end(&waker);
        }
        drop(self.body.take());
        if let Some(panic) = outcome.and_then(|o| o.panic) {
            crate::panic::drop_payload(panic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Builder;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Barrier;

    /// A future that counts its drops in borrowed memory.
    struct CountsDrop<'a>(&'a AtomicUsize);

    impl Drop for CountsDrop<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// The guard: a call dropped before its end (as an unwinding
    /// `block_on` would drop it) cancels its node and returns only once
    /// every task of it has been dropped, the one in a poll included.
    #[test]
    fn a_call_dropped_before_its_end_waits_for_its_tasks() {
        let rt = Builder::new().worker_threads(2).build().unwrap();
        let dropped = AtomicUsize::new(0);
        let in_poll = Barrier::new(2);
        let go = AtomicBool::new(false);
        let (dropped, in_poll, go) = (&dropped, &in_poll, &go);
        let mut call = Call::new(
            |s| async move {
                // A task parked for good, dropped by the cancel.
                s.spawn(async move {
                    let _guard = CountsDrop(dropped);
                    std::future::pending::<()>().await
                });
                // A task inside its poll when the call is dropped.
                s.spawn(async move {
                    let _guard = CountsDrop(dropped);
                    in_poll.wait();
                    while !go.load(SeqCst) {
                        thread::yield_now();
                    }
                });
                std::future::pending::<()>().await
            },
            Location::caller(),
        );
        let waker = waker_fn::waker_fn(|| {});
        let polled = context::enter_runtime(rt.shared(), || {
            Pin::new(&mut call).poll(&mut Context::from_waker(&waker))
        });
        assert!(polled.is_pending());
        in_poll.wait();
        thread::scope(|threads| {
            threads.spawn(|| go.store(true, SeqCst));
            drop(call);
            assert_eq!(dropped.load(SeqCst), 2, "a task outlived its call");
        });
    }
}
