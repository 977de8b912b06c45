//! The budget of a poll: how often the runtime's own futures may be ready
//! in one poll of a task (or of a `block_on`'s future) before they make it
//! yield, and whether the work being polled has been cancelled.
//!
//! A task that loops on futures that are always ready (an `Event` already
//! set, a `JoinHandle` whose task has finished) never returns `Pending`:
//! it never gives its worker back, and a cancel never finds it between two
//! polls, which is where a cancelled future is dropped. So the runtime's
//! *leaf* futures (`sleep`, `timeout`, `Event::wait`, `JoinHandle`,
//! `JoinSet::join_next`, `Scope::slot` and `spawn_when_free`,
//! `consume_budget`) ask [`poll_proceed`] first. It
//! *refuses* (the leaf wakes its task and returns `Pending`):
//!
//! - **when the work being polled is cancelled:** the poll ends at this
//!   `.await`, and the future is dropped (see *who drops it*, below);
//! - **when this poll's budget is spent:** the task goes behind the
//!   others, and its next poll starts with a full budget.
//!
//! Otherwise the leaf takes a unit of the budget, and gives it back if it
//! returns `Pending` after all ([`Permit::settle`]): only ready results
//! spend it, so a poll can register with any number of leaves.
//!
//! `yield_now` neither asks nor spends: it always ends the poll, and the
//! next one starts with a full budget. `Scope::cancelled()` does not ask:
//! it must be ready once its scope is cancelled, or `or(work,
//! s.cancelled())` would never end; nor does `stop_requested()`, for the
//! same reason (`or(work, stop_requested())`).
//!
//! # What counts as cancelled
//!
//! Two things, each set by whoever polls, for the length of its poll:
//!
//! - **the task being polled** ([`poll_task`], by the task's runner): its
//!   state word's `CANCELLED`, set by a cancel of the task alone
//!   (`JoinHandle::cancel`) or by its scope's cancel walk while it runs;
//! - **the innermost scope entered** ([`enter_scope`]): the runtime
//!   enters each scope whose task or body it polls
//!   (`context::enter_scope`), so a body nested in a task answers to its
//!   own scope, and asks it through [`CancelProbe`], which the scope tree
//!   implements: the scope's own mark, or for a scope not yet in the tree
//!   its ancestors' up to a shield. So a shield is respected, and this
//!   module knows nothing else of scopes.
//!
//! # Who drops a future that was refused
//!
//! A task cancelled alone is dropped by its runner when the poll returns
//! (the state word says `CANCELLED`); a task of a cancelled scope is on the
//! list of the walk that marked it (tree invariant 4), which drops it once
//! its poll is over; a cancelled scope's body is dropped by its scope
//! future when it returns `Pending`. The wake that comes with a refusal
//! only queues the task again, where the cancel finds it.
//!
//! # A poll that does not return
//!
//! A refusal works because `.await` hands the `Pending` up to the runner.
//! Code that polls again instead would be refused for ever: an executor
//! nested in the poll (`futures_lite::future::block_on` in a scope body),
//! or a loop that polls without awaiting. So after [`MAX_REFUSALS`] in one
//! poll, the leaves let the rest of the poll through, as if there were no
//! budget and no cancel. Code that is not such a poll starts clean: a
//! `block_on` ([`poll_root`]: a full budget, nothing cancelled, whatever
//! the thread was polling) and a blocking closure ([`outside_poll`]: no
//! budget, nothing cancelled).
//!
//! # The state
//!
//! One thread-local, [`POLL`]: the budget left, the refusals made, the
//! task being polled and the scope entered. A poll writes them as it
//! starts and sets them back as it ends; a leaf reads them.

use super::state::{StateWord, CANCELLED};
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::{self, NonNull};
use std::task::{ready, Context, Poll};

/// Units of budget a poll starts with: tokio's choice. An always-ready
/// loop of the runtime's futures yields after this many; a ready leaf
/// costs some 20 to 60 ns, so a poll that spends it all lasts a few
/// microseconds, short against the bound on timers (`time/pace.rs`) and
/// the cancel latency goals (BENCHMARKS.md, `cancel_latency`).
const BUDGET: u8 = 128;

/// The budget of code outside any poll, and inside
/// [`unconstrained`]: never spent.
const UNCONSTRAINED: u8 = u8::MAX;

/// Refusals in one poll after which the leaves let the rest of the poll
/// through (module docs, *a poll that does not return*). A poll that
/// returns after a refusal, as `.await` does, sees one refusal, or one per
/// branch of a `select`; picked well above that, and low enough that an
/// executor nested in the poll spins only briefly.
const MAX_REFUSALS: u8 = 64;

/// What a poll in progress on this thread tells the leaves it polls.
struct PollState {
    /// Units left, or [`UNCONSTRAINED`].
    budget: Cell<u8>,
    /// Refusals made in this poll, up to [`MAX_REFUSALS`].
    refusals: Cell<u8>,
    /// The state word of the task being polled, or null.
    ///
    /// Rule: non-null only while a [`poll_task`] call on this thread's
    /// stack runs, whose caller (the runner) holds a reference to the task.
    task: Cell<*const StateWord>,
    /// The scope entered, if any.
    ///
    /// Rule: `Some` only while an [`enter_scope`] call on this thread's
    /// stack runs, whose caller keeps the scope alive for the call.
    scope: Cell<Option<NonNull<dyn CancelProbe>>>,
}

thread_local! {
    /// This thread's poll in progress. No destructor: reachable even
    /// during thread teardown.
    static POLL: PollState = const {
        PollState {
            budget: Cell::new(UNCONSTRAINED),
            refusals: Cell::new(0),
            task: Cell::new(ptr::null()),
            scope: Cell::new(None),
        }
    };
}

/// What a poll saved, put back when it ends (also on unwinding).
struct Saved {
    budget: u8,
    refusals: u8,
    task: *const StateWord,
    scope: Option<NonNull<dyn CancelProbe>>,
}

impl Drop for Saved {
    fn drop(&mut self) {
        POLL.with(|p| {
            p.budget.set(self.budget);
            p.refusals.set(self.refusals);
            p.task.set(self.task);
            p.scope.set(self.scope);
        });
    }
}

/// Runs `poll`, one poll of the task whose state word is `state`, with a
/// full budget. The caller holds a reference to the task.
///
/// Task polls do not nest (a worker polls one task at a time and may not
/// `block_on`; a `block_on` or a blocking closure polls no task), so the
/// end of the poll puts back what is outside any poll rather than what it
/// found: two stores, not a save and a restore.
#[inline]
pub(super) fn poll_task<R>(state: &StateWord, poll: impl FnOnce() -> R) -> R {
    struct End;
    impl Drop for End {
        #[inline]
        fn drop(&mut self) {
            POLL.with(|p| {
                p.budget.set(UNCONSTRAINED);
                p.task.set(ptr::null());
            });
        }
    }
    POLL.with(|p| {
        debug_assert!(p.task.get().is_null(), "task polls do not nest");
        p.budget.set(BUDGET);
        p.refusals.set(0);
        p.task.set(state);
    });
    let _end = End;
    poll()
}

/// What a leaf asks of the scope entered: whether it is cancelled. The
/// scope tree's nodes answer it (`scope/tree/publish.rs`).
pub(crate) trait CancelProbe {
    fn is_cancelled(&self) -> bool;
}

/// Runs `f` with `scope` as the innermost scope: the leaves polled in it
/// return `Pending` once `scope` is cancelled. The caller keeps `scope`
/// alive until this returns.
#[inline]
pub(crate) fn enter_scope<S: CancelProbe + 'static, R>(scope: &S, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<dyn CancelProbe>>);
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            POLL.with(|p| p.scope.set(self.0));
        }
    }
    let scope: NonNull<dyn CancelProbe> = NonNull::from(scope);
    let _restore = Restore(POLL.with(|p| p.scope.replace(Some(scope))));
    f()
}

/// Runs `poll`, one poll of a `block_on`'s future, with a full budget and
/// nothing cancelled: the future belongs to no task, whatever the thread
/// was doing when it called `block_on`.
pub(crate) fn poll_root<R>(poll: impl FnOnce() -> R) -> R {
    with(BUDGET, poll)
}

/// Runs `f` as code outside any poll (a blocking closure): no budget to
/// spend, nothing cancelled. An executor that `f` runs (a `block_on` of
/// another crate, say) then sees the runtime's futures as anywhere else.
pub(crate) fn outside_poll<R>(f: impl FnOnce() -> R) -> R {
    with(UNCONSTRAINED, f)
}

/// Runs `f` with `budget`, no task and no scope.
fn with<R>(budget: u8, f: impl FnOnce() -> R) -> R {
    let _saved = POLL.with(|p| Saved {
        budget: p.budget.replace(budget),
        refusals: p.refusals.replace(0),
        task: p.task.replace(ptr::null()),
        scope: p.scope.replace(None),
    });
    f()
}

/// The question every leaf future asks first (see the module docs):
/// refuses (wakes the task and returns `Pending`) if the work being polled
/// is cancelled or its budget is spent; otherwise a [`Permit`], which has
/// taken a unit of the budget.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Permit> {
    POLL.with(|p| {
        let left = p.budget.get();
        if left == 0 || p.is_cancelled() {
            return p.refuse(cx);
        }
        if left == UNCONSTRAINED {
            return Poll::Ready(Permit { spent: false });
        }
        p.budget.set(left - 1);
        Poll::Ready(Permit { spent: true })
    })
}

impl PollState {
    /// Wakes the task and returns `Pending`, unless this poll has been
    /// refused [`MAX_REFUSALS`] times already: then lets it through.
    #[cold]
    #[inline(never)]
    fn refuse(&self, cx: &mut Context<'_>) -> Poll<Permit> {
        let refusals = self.refusals.get();
        if refusals >= MAX_REFUSALS {
            return Poll::Ready(Permit { spent: false });
        }
        self.refusals.set(refusals + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn is_cancelled(&self) -> bool {
        let task = self.task.get();
        let scope = self.scope.get();
        // SAFETY: by the rules on the fields, a non-null pointer is to a
        // state word or scope that a call below us on this thread's stack
        // keeps alive; we keep nothing from it.
        unsafe {
            (!task.is_null() && (*task).load().has(CANCELLED))
                || scope.is_some_and(|scope| scope.as_ref().is_cancelled())
        }
    }
}

/// A leaf's permission to go on, from [`poll_proceed`]: it has taken a
/// unit of the budget, which [`settle`](Permit::settle) gives back if the
/// leaf turns out `Pending`.
#[must_use = "a leaf settles its permit with its result"]
pub(crate) struct Permit {
    /// Whether a unit was taken (not under [`UNCONSTRAINED`]).
    spent: bool,
}

impl Permit {
    /// Returns the leaf's result, giving the unit back if it is `Pending`:
    /// registering a waker is not progress.
    #[inline]
    pub(crate) fn settle<T>(self, poll: Poll<T>) -> Poll<T> {
        if self.spent && poll.is_pending() {
            POLL.with(|p| {
                let left = p.budget.get();
                if left < BUDGET {
                    p.budget.set(left + 1);
                }
            });
        }
        poll
    }
}

/// Runs `future` without a budget: the runtime's futures it awaits never
/// make it yield for having been ready too often. A cancel still stops it
/// at its next `.await` on them.
///
/// For a loop whose always-ready stretch is known to be short, or a
/// section that must not be split across polls for latency's sake.
/// Everything else on its worker waits while it runs: prefer the budget.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, sync::Event, task};
///
/// let ready = Event::new();
/// ready.set();
/// let out = runtime::block_on(scope(|s| async move {
///     s.spawn(task::unconstrained(async move {
///         // 1,000 ready waits in one poll: no yield on the way.
///         for _ in 0..1000 {
///             ready.wait().await;
///         }
///         "done"
///     }))
///     .await
/// }));
/// assert_eq!(out, Ok(Ok("done")));
/// ```
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { future }
}

/// The future returned by [`unconstrained`].
#[must_use = "futures do nothing unless awaited"]
pub struct Unconstrained<F> {
    /// Pinned whenever `Unconstrained` is: polled in place, never moved.
    future: F,
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Restore(u8);
        impl Drop for Restore {
            fn drop(&mut self) {
                POLL.with(|p| p.budget.set(self.0));
            }
        }
        // SAFETY: `future` is structurally pinned: it is never moved out
        // of `self` (no method hands it out by value, and there is no
        // `Drop` impl), and `Unconstrained` is `Unpin` only if `F` is.
        let future = unsafe { self.map_unchecked_mut(|u| &mut u.future) };
        let _restore = Restore(POLL.with(|p| p.budget.replace(UNCONSTRAINED)));
        future.poll(cx)
    }
}

impl<F> fmt::Debug for Unconstrained<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unconstrained").finish_non_exhaustive()
    }
}

/// Spends one unit of the task's budget, as a ready runtime future does:
/// `.await` it in a loop that awaits nothing of the runtime's (a
/// computation in steps, a channel of another crate that is always
/// ready), so that the loop yields its worker now and then, and a cancel
/// stops it at once.
///
/// Ready at once while budget is left; when it is spent, yields (the task
/// goes behind the others and comes back with a full budget). If the task
/// or its scope is cancelled, it never completes: the task is dropped at
/// this `.await`. Cheaper than [`yield_now`](super::yield_now), which
/// yields every time.
///
/// The runtime's own futures spend the budget the same way:
/// [`sleep`](crate::time::sleep), [`timeout`](crate::time::timeout),
/// [`Event::wait`](crate::sync::Event::wait), [`JoinHandle`](super::JoinHandle)
/// and [`JoinSet::join_next`](crate::JoinSet::join_next). A budget is 128
/// ready `.await`s a poll; the guide's section *Busy tasks and the budget*
/// says when to use which tool.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, task};
///
/// let out = runtime::block_on(scope(|s| async move {
///     s.spawn(async {
///         let mut sum = 0u64;
///         for i in 0..100_000u64 {
///             sum += i; // a step of work that awaits nothing
///             task::consume_budget().await;
///         }
///         sum
///     })
///     .await
/// }));
/// assert_eq!(out, Ok(Ok(4_999_950_000)));
/// ```
pub fn consume_budget() -> ConsumeBudget {
    ConsumeBudget { _private: () }
}

/// The future returned by [`consume_budget`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct ConsumeBudget {
    _private: (),
}

impl Future for ConsumeBudget {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        ready!(poll_proceed(cx)).settle(Poll::Ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::{ToCancelled, ToRunning};
    use super::*;

    fn noop_waker() -> std::task::Waker {
        waker_fn::waker_fn(|| {})
    }

    fn budget() -> u8 {
        POLL.with(|p| p.budget.get())
    }

    #[test]
    fn outside_any_poll_nothing_is_spent_or_cancelled() {
        let noop = noop_waker();
        let mut cx = Context::from_waker(&noop);
        for _ in 0..1000 {
            assert!(poll_proceed(&mut cx).is_ready());
        }
        assert_eq!(budget(), UNCONSTRAINED);
    }

    #[test]
    fn a_poll_spends_its_budget_then_yields_and_the_next_starts_full() {
        let state = StateWord::new();
        let noop = noop_waker();
        let mut cx = Context::from_waker(&noop);
        poll_task(&state, || {
            for _ in 0..BUDGET {
                let permit = poll_proceed(&mut cx);
                assert!(matches!(permit, Poll::Ready(Permit { spent: true })));
            }
            assert!(poll_proceed(&mut cx).is_pending(), "spent");
        });
        assert_eq!(budget(), UNCONSTRAINED, "restored after the poll");
        poll_task(&state, || assert_eq!(budget(), BUDGET));
    }

    #[test]
    fn a_pending_leaf_gives_its_unit_back() {
        let state = StateWord::new();
        let noop = noop_waker();
        let mut cx = Context::from_waker(&noop);
        poll_task(&state, || {
            let Poll::Ready(permit) = poll_proceed(&mut cx) else {
                panic!("budget left")
            };
            assert_eq!(budget(), BUDGET - 1);
            assert!(permit.settle(Poll::<()>::Pending).is_pending());
            assert_eq!(budget(), BUDGET);
        });
    }

    #[test]
    fn a_cancelled_task_refuses_every_leaf_but_a_nested_poll_starts_clean() {
        let state = StateWord::new();
        let noop = noop_waker();
        let mut cx = Context::from_waker(&noop);
        poll_task(&state, || {
            assert!(poll_proceed(&mut cx).is_ready());
            assert_eq!(state.transition_to_running(), ToRunning::Poll);
            assert_eq!(state.transition_to_cancelled(), ToCancelled::Deferred);
            assert!(poll_proceed(&mut cx).is_pending(), "the task is cancelled");
            // A block_on nested here, or a blocking closure, starts clean.
            poll_root(|| assert!(poll_proceed(&mut cx).is_ready()));
            outside_poll(|| assert!(poll_proceed(&mut cx).is_ready()));
            assert!(poll_proceed(&mut cx).is_pending(), "restored");
        });
    }

    /// A scope's body answers to its scope's cancel, and a scope not yet
    /// in the tree (no task of its own) to its ancestors' too.
    #[test]
    fn a_cancelled_scope_refuses_the_leaves_of_its_bodies() {
        use crate::{runtime, scope};
        let probe = || std::future::poll_fn(|cx| Poll::Ready(poll_proceed(cx).is_ready()));
        let mut seen = Vec::new();
        let out = runtime::block_on(scope(|outer| {
            let seen = &mut seen;
            async move {
                let outer = outer.cancel_handle();
                let _ = scope(|_inner| async move {
                    seen.push(probe().await);
                    outer.cancel();
                    seen.push(probe().await);
                    seen.push(
                        std::future::poll_fn(|cx| {
                            Poll::Ready(poll_root(|| poll_proceed(cx).is_ready()))
                        })
                        .await,
                    );
                    seen.push(probe().await);
                })
                .await;
            }
        }));
        assert!(out.is_ok(), "the bodies ran to their end: {out:?}");
        assert_eq!(seen, [true, false, true, false]);
    }

    #[test]
    fn a_refusal_wakes_and_a_poll_that_keeps_asking_is_let_through() {
        let state = StateWord::new();
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let waker = {
            let woken = woken.clone();
            waker_fn::waker_fn(move || {
                woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let mut cx = Context::from_waker(&waker);
        poll_task(&state, || {
            for _ in 0..BUDGET {
                assert!(poll_proceed(&mut cx).is_ready());
            }
            for i in 1..=MAX_REFUSALS as usize {
                assert!(poll_proceed(&mut cx).is_pending());
                assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), i);
            }
            // An executor nested in the poll, polling again and again.
            assert!(matches!(
                poll_proceed(&mut cx),
                Poll::Ready(Permit { spent: false })
            ));
        });
        poll_task(&state, || assert_eq!(POLL.with(|p| p.refusals.get()), 0));
    }
}
