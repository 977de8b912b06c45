//! [`JoinSet`]: the outputs of a set of tasks, read in the order the tasks
//! complete.
//!
//! A set holds [`JoinHandle`]s. Each handle is polled with a waker of its
//! own, which the task wakes when it completes (its output delivered, or
//! its cancellation): the waker appends the handle's key to the set's
//! *ready* queue. [`JoinSet::join_next`] takes the oldest key there and
//! returns that handle's output; so outputs come out in the order the
//! tasks completed, whatever order they were spawned in, and a set of
//! 10,000 tasks does no work per call for the 9,999 that are not ready.
//!
//! The set owns handles, not tasks: the tasks belong to the scopes they
//! were spawned into, which wait for them and cancel them. So a set can
//! outlive those scopes, and the outputs of tasks that completed before a
//! scope was cancelled are still there to be read after it.

use super::Scope;
use crate::cancelled::Cancelled;
use crate::task::{budget, JoinHandle};
use parking_lot::Mutex;
use slab::Slab;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};

/// A set of tasks whose outputs are read in the order the tasks complete.
///
/// Fill it with [`spawn_in`](JoinSet::spawn_in) (a task of the given
/// scope) or [`push`](JoinSet::push) (any [`JoinHandle`], of a
/// [`Scope::spawn_blocking`] closure say), then call
/// [`join_next`](JoinSet::join_next) until it returns `None`. Each output
/// is `Ok(value)`, or `Err(Cancelled)` for a task that was cancelled (or
/// panicked) before it finished.
///
/// # Structured, unlike tokio's `JoinSet`
///
/// The tasks belong to the scopes they were spawned into, not to the set:
/// the scope waits for them, and cancelling the scope (or its deadline)
/// stops them. Dropping the set detaches its tasks, like dropping their
/// handles; it does not stop them. In return the set may outlive the
/// scope: a task that completed before its scope was cancelled keeps its
/// output in the set, to be read after the cancel.
///
/// # Keeping partial results under a deadline
///
/// Put the deadline on an *inner* scope, and keep the set (and whatever
/// collects the results) *outside* it. When the deadline cancels the inner
/// scope, its body is dropped at its next `.await`, but the set is not:
/// what the body collected is kept, results that completed but were not
/// read yet are still in the set, and every unfinished task reads as
/// `Err(Cancelled)`.
///
/// ```
/// use cancel_scope::{move_on_after, runtime::Builder, time::sleep, JoinSet};
/// use std::time::Duration;
///
/// let rt = Builder::new().start_paused(true).build().unwrap();
/// let (done, cut) = rt.block_on(async {
///     let mut set = JoinSet::new();
///     let mut done = Vec::new();
///     let out = move_on_after(Duration::from_millis(35), |s| {
///         let (set, done) = (&mut set, &mut done);
///         async move {
///             for ms in [40u64, 10, 30, 20, 50] {
///                 set.spawn_in(&s, async move {
///                     sleep(Duration::from_millis(ms)).await;
///                     ms
///                 });
///             }
///             while let Some(result) = set.join_next().await {
///                 done.push(result.unwrap()); // in the order they complete
///             }
///         }
///     })
///     .await;
///     assert!(out.is_err()); // the deadline passed
///     let mut cut = 0;
///     while let Some(result) = set.join_next().await {
///         assert!(result.is_err()); // the tasks the deadline stopped
///         cut += 1;
///     }
///     (done, cut)
/// });
/// assert_eq!(done, [10, 20, 30]);
/// assert_eq!(cut, 2);
/// ```
///
/// Which task an output came from is not recorded: a task that needs to
/// say so returns an id with its value (a cancelled task's
/// `Err(Cancelled)` names no task).
pub struct JoinSet<T> {
    /// The handles not yet returned, each with the waker it was polled with.
    entries: Slab<Entry<T>>,
    ready: Arc<Ready>,
}

/// One member of the set.
enum Entry<T> {
    /// The task has not completed (as far as the set has seen).
    Waiting { handle: JoinHandle<T>, waker: Waker },
    /// The handle was ready when it joined the set.
    Done(Result<T, Cancelled>),
}

/// The keys of the members whose tasks completed, in completion order, and
/// the waker of a `join_next` waiting for one.
#[derive(Default)]
struct Ready {
    state: Mutex<ReadyState>,
}

#[derive(Default)]
struct ReadyState {
    keys: VecDeque<usize>,
    waiter: Option<Waker>,
}

/// The waker a member's handle is polled with: its task wakes it once, on
/// completion.
struct MemberWaker {
    ready: Arc<Ready>,
    key: usize,
}

impl Wake for MemberWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut st = self.ready.state.lock();
            st.keys.push_back(self.key);
            st.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = cancel_scope::JoinSet::<u32>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            ready: Arc::default(),
        }
    }

    /// Spawns `future` as a task of `scope` (see [`Scope::spawn`]) and adds
    /// it to the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, JoinSet};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let mut set = JoinSet::new();
    ///     for i in 1..=3u32 {
    ///         set.spawn_in(&s, async move { i * 10 });
    ///     }
    ///     let mut sum = 0;
    ///     while let Some(result) = set.join_next().await {
    ///         sum += result.unwrap();
    ///     }
    ///     sum
    /// }));
    /// assert_eq!(out, Ok(60));
    /// ```
    pub fn spawn_in<F>(&mut self, scope: &Scope, future: F)
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.push(scope.spawn(future));
    }

    /// Adds a task's handle to the set. Its output is read in the order of
    /// completion like the others' (a handle whose task had completed
    /// before it was pushed counts as completing when pushed).
    ///
    /// # Panics
    ///
    /// If the handle has already returned its output.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, JoinSet};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let mut set = JoinSet::new();
    ///     set.push(s.spawn_blocking(|| "from a blocking thread"));
    ///     set.push(s.spawn(async { "from a task" }));
    ///     let mut got = Vec::new();
    ///     while let Some(result) = set.join_next().await {
    ///         got.push(result.unwrap());
    ///     }
    ///     got.sort();
    ///     got
    /// }));
    /// assert_eq!(out.unwrap(), ["from a blocking thread", "from a task"]);
    /// ```
    pub fn push(&mut self, mut handle: JoinHandle<T>) {
        let entry = self.entries.vacant_entry();
        let waker = Waker::from(Arc::new(MemberWaker {
            ready: self.ready.clone(),
            key: entry.key(),
        }));
        // Polled once now, so that its task's completion wakes our waker
        // and takes its place in the ready queue as it happens.
        match handle.poll_output(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => {
                entry.insert(Entry::Done(output));
                waker.wake();
            }
            Poll::Pending => {
                entry.insert(Entry::Waiting { handle, waker });
            }
        }
    }

    /// Waits for the next task to complete and returns its output, or
    /// `None` if the set is empty. Outputs come in the order the tasks
    /// completed.
    ///
    /// An output that is ready spends a unit of the task's
    /// [budget](crate::task::consume_budget), and in a task (or scope body)
    /// that has been cancelled the `.await` never completes: the task is
    /// dropped there (no output is lost from the set: see below).
    ///
    /// Cancel safe: if the returned future is dropped before it completes
    /// (it lost a `select`, or its task was cancelled), no output is lost;
    /// the next call returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, time::sleep, JoinSet};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let order = rt.block_on(scope(|s| async move {
    ///     let mut set = JoinSet::new();
    ///     for ms in [30u64, 10, 20] {
    ///         set.spawn_in(&s, async move {
    ///             sleep(Duration::from_millis(ms)).await;
    ///             ms
    ///         });
    ///     }
    ///     let mut order = Vec::new();
    ///     while let Some(result) = set.join_next().await {
    ///         order.push(result.unwrap());
    ///     }
    ///     order
    /// }));
    /// assert_eq!(order, Ok(vec![10, 20, 30]));
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, Cancelled>> {
        // A leaf of the budget (`task/budget.rs`): in a cancelled poll it
        // stays `Pending`, and a spent budget makes it yield, however many
        // outputs are ready.
        poll_fn(|cx| {
            let permit = ready!(budget::poll_proceed(cx));
            permit.settle(self.poll_join_next(Some(cx)))
        })
        .await
    }

    /// The output of a task that has completed, if there is one now; never
    /// waits. `None` when no task in the set has completed (or the set is
    /// empty).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, sync::Event, JoinSet};
    ///
    /// let out = runtime::block_on(scope(|s| async move {
    ///     let mut set = JoinSet::new();
    ///     let go = Event::new();
    ///     let wait = go.clone();
    ///     set.spawn_in(&s, async move { wait.wait().await; "done" });
    ///     assert!(set.try_join_next().is_none()); // still waiting
    ///     go.set();
    ///     set.join_next().await.unwrap().unwrap()
    /// }));
    /// assert_eq!(out, Ok("done"));
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, Cancelled>> {
        match self.poll_join_next(None) {
            Poll::Ready(output) => output,
            Poll::Pending => None,
        }
    }

    /// Tasks in the set whose outputs have not been returned yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, JoinSet};
    ///
    /// runtime::block_on(scope(|s| async move {
    ///     let mut set = JoinSet::new();
    ///     set.spawn_in(&s, async { 1 });
    ///     set.spawn_in(&s, async { 2 });
    ///     assert_eq!(set.len(), 2);
    ///     set.join_next().await;
    ///     assert_eq!(set.len(), 1);
    /// }))
    /// .unwrap();
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether every output has been returned (or none was added).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(cancel_scope::JoinSet::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next ready output; with a context, registers to be woken when
    /// there is one.
    fn poll_join_next(
        &mut self,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Option<Result<T, Cancelled>>> {
        loop {
            let key = {
                let mut st = self.ready.state.lock();
                match st.keys.pop_front() {
                    Some(key) => key,
                    None if self.entries.is_empty() => return Poll::Ready(None),
                    None => {
                        if let Some(cx) = cx {
                            match &st.waiter {
                                Some(w) if w.will_wake(cx.waker()) => {}
                                _ => st.waiter = Some(cx.waker().clone()),
                            }
                        }
                        return Poll::Pending;
                    }
                }
            };
            if let Some(output) = self.take_output(key) {
                return Poll::Ready(Some(output));
            }
        }
    }

    /// The output of the member at `key`, which its waker reported ready,
    /// removing the member; `None` if it is not ready after all (its waker
    /// stays registered).
    fn take_output(&mut self, key: usize) -> Option<Result<T, Cancelled>> {
        let polled = match self.entries.get_mut(key)? {
            Entry::Done(_) => None,
            Entry::Waiting { handle, waker } => {
                match handle.poll_output(&mut Context::from_waker(waker)) {
                    Poll::Ready(output) => Some(output),
                    Poll::Pending => return None,
                }
            }
        };
        match (self.entries.remove(key), polled) {
            (_, Some(output)) | (Entry::Done(output), None) => Some(output),
            (Entry::Waiting { .. }, None) => unreachable!("a pending member stays"),
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Extend<JoinHandle<T>> for JoinSet<T> {
    fn extend<I: IntoIterator<Item = JoinHandle<T>>>(&mut self, handles: I) {
        for handle in handles {
            self.push(handle);
        }
    }
}

/// Collects handles into a set.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, JoinSet};
///
/// let out = runtime::block_on(scope(|s| async move {
///     let mut set: JoinSet<u64> = (1..=4).map(|i| s.spawn(async move { i * i })).collect();
///     let mut sum = 0;
///     while let Some(result) = set.join_next().await {
///         sum += result.unwrap();
///     }
///     sum
/// }));
/// assert_eq!(out, Ok(30));
/// ```
impl<T> FromIterator<JoinHandle<T>> for JoinSet<T> {
    fn from_iter<I: IntoIterator<Item = JoinHandle<T>>>(handles: I) -> Self {
        let mut set = JoinSet::new();
        set.extend(handles);
        set
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.len())
            .field("ready", &self.ready.state.lock().keys.len())
            .finish()
    }
}
