//! The task state word: one `AtomicUsize` that decides who may touch a
//! task's future, and counts the references to the task.
//!
//! | bits  | name          | set by                               | cleared by                    |
//! |-------|---------------|--------------------------------------|-------------------------------|
//! | 0     | `SCHEDULED`   | spawn; a wake of an idle task        | the runner, when it claims it |
//! | 1     | `RUNNING`     | the runner claiming the future       | the runner, on release        |
//! | 2     | `COMPLETE`    | the runner dropping the future, or a canceller claiming an idle one (terminal) | never |
//! | 3     | `CANCELLED`   | the canceller                        | never                         |
//! | 4     | `JOIN_HANDLE` | spawn (a `JoinHandle` exists)        | the `JoinHandle`'s drop       |
//! | 5     | `PUSHING`     | a wake of an idle task (with `SCHEDULED`) | that waker, once its push is done |
//! | 6..   | references    | spawn (2); each clone of a `TaskRef` or waker (+1) | each drop (-1); the last frees the task |
//!
//! Combinations that cannot occur:
//!
//! - `CANCELLED` without `RUNNING` or `COMPLETE`: a canceller either claims
//!   an idle future at once (`COMPLETE`) or finds it claimed by a runner.
//! - `COMPLETE` with `RUNNING`: the runner clears `RUNNING` in the same
//!   step that sets `COMPLETE`.
//! - A reference count of zero on a live task: the last drop frees it.
//!
//! Whoever moves the word from "no `RUNNING`, no `COMPLETE`" to `RUNNING`
//! owns the future until it clears `RUNNING` again. A canceller that moves
//! it straight to `CANCELLED | COMPLETE` owns the future until it has
//! dropped it: once `COMPLETE` is set nobody else touches the future, so
//! claiming an idle task and completing it is one read-modify-write, not
//! two (rule "one owner of the future" in `task/mod.rs`).
//!
//! **Rule "push before release".** A waker that makes an idle task runnable
//! pushes it through its owner (`Schedule::schedule`), which reaches the
//! task's scope node and the runtime. From the moment it sets `SCHEDULED` a
//! canceller may claim the task; what keeps the node alive is that the task is
//! not *released* (its owner's accounting, after which the node may end and be
//! freed) while `PUSHING` is set: whoever releases it first waits for the
//! waker's push to finish (`wait_for_push`). At most one waker pushes at a
//! time: a wake that finds the task idle but still `PUSHING` (pushed, run and
//! idle again within the first waker's push) waits for that push too. The
//! waits are rare and short: the push takes no lock that a waiter can hold. A
//! runner requeueing a task it polled pushes it itself, on a worker whose
//! runtime outlives it, so it needs no `PUSHING`.
//!
//! The reference count shares the word, so a task is one allocation with
//! one counter: references are taken with `Relaxed` (a holder can only
//! clone what it already holds) and dropped with `AcqRel`, so the thread
//! that frees the task sees every other holder's last access, as `Arc`
//! does.

use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};
use std::fmt;

/// The task is in a run queue, or about to be pushed to one. A wake while
/// this is set does nothing: the task will be polled anyway.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// A thread owns the future: it is polling it, or dropping it.
pub(crate) const RUNNING: usize = 1 << 1;
/// The future is gone (finished, or dropped by cancellation). Terminal.
pub(crate) const COMPLETE: usize = 1 << 2;
/// Cancellation was requested. The future is never polled again.
pub(crate) const CANCELLED: usize = 1 << 3;
/// A `JoinHandle` is alive and wants the output.
pub(crate) const JOIN_HANDLE: usize = 1 << 4;
/// A waker is pushing the task to a run queue: it may not be released
/// until the push is done (rule "push before release").
pub(crate) const PUSHING: usize = 1 << 5;

/// Where the reference count starts.
const REF_SHIFT: u32 = 6;
/// One reference.
const REF_ONE: usize = 1 << REF_SHIFT;
/// The flag bits.
#[cfg(test)]
const FLAGS: usize = REF_ONE - 1;

/// The state of a freshly spawned task: queued, with a `JoinHandle`, and
/// two references (the spawner's `TaskRef` and the handle).
const INITIAL: usize = SCHEDULED | JOIN_HANDLE | (2 * REF_ONE);

/// The atomic state word of one task.
pub(crate) struct StateWord(AtomicUsize);

/// A copy of the state word, decoded by `Debug`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

/// What a runner popping the task from a queue must do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// The runner owns the future: poll it.
    Poll,
    /// The runner owns the future, but it was cancelled: drop it.
    Cancel,
    /// The future is already gone: drop the queue's reference.
    Dead,
}

/// What a runner must do after a poll returned `Pending`.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Nothing: the task waits for a wake.
    Idle,
    /// The task was woken during the poll: push it to a run queue again.
    Reschedule,
    /// The task was cancelled during the poll: drop the future.
    Cancel,
}

/// What a waker must do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// The task was idle: push it to a run queue.
    Submit,
    /// The task is queued, running (its runner will requeue it) or complete.
    Nothing,
}

/// What a canceller must do.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToCancelled {
    /// The canceller owns the future: drop it now. The word is already
    /// `COMPLETE`; this is its value before the claim.
    Claimed(Snapshot),
    /// A runner owns the future; it drops it when its poll returns.
    Deferred,
    /// The future is already gone.
    AlreadyComplete,
}

impl StateWord {
    pub(crate) fn new() -> StateWord {
        StateWord(AtomicUsize::new(INITIAL))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    /// Applies `f` until the CAS succeeds; `f` returns the new word (or
    /// `None` to leave it unchanged) and the action.
    fn update<A>(&self, mut f: impl FnMut(usize) -> (Option<usize>, A)) -> A {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, action) = f(cur);
            let Some(next) = next else { return action };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return action,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A runner popped the task from a queue.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|s| {
            // A queue holds a task only while it is SCHEDULED and not
            // RUNNING (a wake during a poll leaves the push to the runner),
            // and a canceller claims an idle task by setting COMPLETE,
            // never RUNNING.
            debug_assert!(s & RUNNING == 0, "a queued task is running");
            if s & COMPLETE != 0 {
                // Claimed by a canceller, or finished, after it was queued:
                // our queue reference is stale.
                (None, ToRunning::Dead)
            } else if s & CANCELLED != 0 {
                (Some((s & !SCHEDULED) | RUNNING), ToRunning::Cancel)
            } else {
                (Some((s & !SCHEDULED) | RUNNING), ToRunning::Poll)
            }
        })
    }

    /// The runner's poll returned `Pending`.
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.update(|s| {
            debug_assert!(s & RUNNING != 0);
            if s & CANCELLED != 0 {
                // Keep RUNNING: we go on to drop the future.
                (None, ToIdle::Cancel)
            } else if s & SCHEDULED != 0 {
                // Woken during the poll. SCHEDULED stays set, so no other
                // waker pushes it; we push it ourselves.
                (Some(s & !RUNNING), ToIdle::Reschedule)
            } else {
                (Some(s & !RUNNING), ToIdle::Idle)
            }
        })
    }

    /// A waker fired.
    ///
    /// Always a read-modify-write, even when the task is already queued: a
    /// plain load could read a value older than the runner's claim, and
    /// then the runner's poll might not see what the waker published before
    /// waking (a lost wake-up). The RMW is ordered against the claim: before
    /// it, the claim acquires our release; after it, we see `RUNNING` and
    /// the runner polls again. Setting `SCHEDULED` on a finished or
    /// cancelled task is harmless: nothing pushes it.
    ///
    /// `Submit` sets `PUSHING` too, and takes a reference for the queue;
    /// the waker hands it to `Schedule::schedule` and calls `finish_push`
    /// once it has pushed the task (rule "push before release").
    pub(crate) fn transition_to_notified(&self) -> ToNotified {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, action) = if cur & (COMPLETE | SCHEDULED | CANCELLED | RUNNING) != 0 {
                // Queued already, or the runner sees SCHEDULED in
                // `transition_to_idle`, or the task is finished.
                (cur | SCHEDULED, ToNotified::Nothing)
            } else if cur & PUSHING != 0 {
                // Idle, but the previous waker is still in its push.
                cur = self.wait_for_push_slow();
                continue;
            } else {
                // With the reference the queue will hold, in the same step.
                ((cur | SCHEDULED | PUSHING) + REF_ONE, ToNotified::Submit)
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return action,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The waker that got `Submit` has pushed the task (rule "push before
    /// release"). Its `Release` orders its use of the task's node and runtime
    /// before the release that `wait_for_push` then lets through.
    pub(crate) fn finish_push(&self) {
        self.0.fetch_and(!PUSHING, Release);
    }

    /// Waits until no waker is pushing the task. Called before the task is
    /// released (rule "push before release"); once the task is `COMPLETE` no
    /// new push can start, so the answer stays true.
    #[inline]
    pub(crate) fn wait_for_push(&self) {
        if self.0.load(Acquire) & PUSHING != 0 {
            self.wait_for_push_slow();
        }
    }

    /// `wait_for_push` once a push was seen: rare, so out of line.
    #[cold]
    #[inline(never)]
    fn wait_for_push_slow(&self) -> usize {
        loop {
            // The pusher is between two steps of a short, lock-free push;
            // give it the core.
            crate::loom::thread::yield_now();
            let s = self.0.load(Acquire);
            if s & PUSHING == 0 {
                return s;
            }
        }
    }

    /// The task's scope was cancelled.
    pub(crate) fn transition_to_cancelled(&self) -> ToCancelled {
        self.update(|s| {
            if s & COMPLETE != 0 {
                (None, ToCancelled::AlreadyComplete)
            } else if s & RUNNING != 0 {
                if s & CANCELLED != 0 {
                    (None, ToCancelled::Deferred)
                } else {
                    (Some(s | CANCELLED), ToCancelled::Deferred)
                }
            } else {
                let claimed = ToCancelled::Claimed(Snapshot(s));
                (Some(s | CANCELLED | COMPLETE), claimed)
            }
        })
    }

    /// The runner dropped the future. Returns the word before the change,
    /// so the caller knows whether a `JoinHandle` wants the output.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = self.0.fetch_xor(RUNNING | COMPLETE, AcqRel);
        debug_assert!(prev & RUNNING != 0 && prev & COMPLETE == 0);
        Snapshot(prev)
    }

    /// The `JoinHandle` was dropped.
    pub(crate) fn drop_join_handle(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!JOIN_HANDLE, AcqRel))
    }

    /// A new reference to the task, from a holder of one.
    pub(crate) fn ref_inc(&self) {
        let prev = self.0.fetch_add(REF_ONE, Relaxed);
        // As `Arc`: a count this high means references are leaked in a
        // loop, and wrapping it would free a live task.
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// A reference was dropped. Returns true if it was the last: the
    /// caller frees the task.
    pub(crate) fn ref_dec(&self) -> bool {
        self.0.fetch_sub(REF_ONE, AcqRel) >> REF_SHIFT == 1
    }
}

impl Snapshot {
    pub(crate) fn has(self, bit: usize) -> bool {
        self.0 & bit != 0
    }

    /// The references counted in the word.
    pub(crate) fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (SCHEDULED, "SCHEDULED"),
            (RUNNING, "RUNNING"),
            (COMPLETE, "COMPLETE"),
            (CANCELLED, "CANCELLED"),
            (JOIN_HANDLE, "JOIN_HANDLE"),
            (PUSHING, "PUSHING"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.has(bit) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("IDLE")?;
        }
        write!(f, " refs={}", self.refs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_disjoint() {
        let bits = [
            SCHEDULED,
            RUNNING,
            COMPLETE,
            CANCELLED,
            JOIN_HANDLE,
            PUSHING,
        ];
        for (i, a) in bits.iter().enumerate() {
            assert_eq!(a.count_ones(), 1);
            assert_eq!(a & !FLAGS, 0, "flags sit below the count");
            for b in &bits[i + 1..] {
                assert_eq!(a & b, 0);
            }
        }
    }

    #[test]
    fn references_count_beside_the_flags() {
        let s = StateWord::new();
        assert_eq!(s.load().refs(), 2);
        s.ref_inc();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert!(!s.ref_dec());
        assert!(!s.ref_dec());
        assert_eq!(s.load().refs(), 1);
        assert!(s.load().has(RUNNING) && s.load().has(JOIN_HANDLE));
        assert!(s.ref_dec(), "the last reference");
    }

    #[test]
    fn poll_wake_during_poll_reschedules() {
        let s = StateWord::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Reschedule);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified(), ToNotified::Submit);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
    }

    /// Rule "push before release", both waits: a wake of an idle task whose
    /// previous push is still in progress, and a release, wait for that push
    /// to finish. Neither may return while `PUSHING` is set.
    #[test]
    fn wakes_and_releases_wait_for_a_push_in_progress() {
        use std::sync::atomic::AtomicBool;
        let s = StateWord::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified(), ToNotified::Submit);
        assert!(s.load().has(PUSHING));
        // Run by a worker and idle again before the first waker is done.
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        let done = AtomicBool::new(false);
        std::thread::scope(|threads| {
            let second = threads.spawn(|| {
                let action = s.transition_to_notified();
                assert!(done.load(SeqCst), "a wake went past a push in progress");
                s.finish_push(); // this waker's own push
                action
            });
            let releaser = threads.spawn(|| {
                s.wait_for_push();
                assert!(done.load(SeqCst), "a release went past a push");
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            done.store(true, SeqCst);
            s.finish_push();
            assert_eq!(second.join().unwrap(), ToNotified::Submit);
            releaser.join().unwrap();
        });
    }

    #[test]
    fn cancel_idle_claims_and_stale_queue_entry_is_dead() {
        let s = StateWord::new();
        // Spawned and queued, then cancelled before it ever ran: claimed
        // and complete in one step.
        let ToCancelled::Claimed(prev) = s.transition_to_cancelled() else {
            panic!("an idle task is claimed");
        };
        assert!(prev.has(JOIN_HANDLE));
        assert!(s.load().has(COMPLETE));
        assert!(!s.load().has(RUNNING));
        assert_eq!(s.transition_to_running(), ToRunning::Dead);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::AlreadyComplete);
    }

    #[test]
    fn cancel_while_running_is_deferred_to_the_runner() {
        let s = StateWord::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Deferred);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Deferred);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Cancel);
        let _ = s.transition_to_complete();
        assert!(s.load().has(COMPLETE));
        assert!(!s.load().has(RUNNING));
    }

    #[test]
    fn snapshot_debug_names_bits() {
        assert_eq!(
            format!("{:?}", Snapshot(SCHEDULED | JOIN_HANDLE | REF_ONE)),
            "SCHEDULED|JOIN_HANDLE refs=1"
        );
        assert_eq!(format!("{:?}", Snapshot(0)), "IDLE refs=0");
    }
}
