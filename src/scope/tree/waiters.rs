//! Who waits for a node: its scope future (its body's end, then the
//! scope's), and the `cancelled()` futures waiting for a cancel.

use super::life::{Change, Phase, INTERRUPTED, PANICKED};
use super::{Node, NodeRef};
use crate::cancelled::Cancelled;
use crate::panic::Panic;
use std::task::Waker;

/// How a scope's body ended, for [`Node::body_done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// It returned its value.
    Returned,
    /// It was dropped at an await because its scope was cancelled, or it
    /// panicked.
    Interrupted,
}

/// What a scope future learns when its node leaves the tree.
pub(crate) struct Outcome {
    /// Set if the scope was cancelled and the cancel interrupted something
    /// (its body at an await, or a task): a body that ran to completion
    /// with nothing cut short keeps its value, even if a cancel or a
    /// deadline came meanwhile (Trio's `cancelled_caught`, not
    /// `cancel_called`).
    pub(crate) cancelled: Option<Cancelled>,
    pub(crate) panic: Option<Panic>,
}

/// What [`Node::poll_cancelled`] found.
pub(crate) enum CancelWait {
    Cancelled(Cancelled),
    /// Registered under this key.
    Waiting(usize),
    /// The scope ended without being cancelled: it never will be.
    Never,
}

impl NodeRef {
    /// The scope future was dropped before it finished: the tree reference
    /// it held, `this`, stays with the node, for whoever finishes the
    /// scope to give up (invariant 2); if nothing is left, the node leaves
    /// at once.
    pub(crate) fn future_dropped(self) {
        let this = self;
        match this.life.future_dropped() {
            Change::Open => {
                // The count stays: `retire_dropped` takes it back.
                let _ = NodeRef::into_raw(this);
            }
            Change::Finished => {
                let ptr = NodeRef::into_raw(this);
                Node::retire_dropped(ptr);
            }
            Change::Drained => {
                // The count stays, before anything may retire the node.
                let drained = this.clone();
                let _ = NodeRef::into_raw(this);
                drained.drained();
            }
        }
    }

    /// The body returned `Pending`: publishes the scope (invariant 2) and
    /// stores `waker` to be woken on cancel. Returns whether the scope is
    /// cancelled (then the body is to be dropped, not left waiting).
    pub(crate) fn register_body_waker(&self, waker: &Waker) -> bool {
        self.publish();
        self.with(|st, after| {
            if !self.cancelled.is_set() {
                st.set_waker(waker, after);
            }
            self.cancelled.is_set()
        })
    }

    /// The body ended (called once). Returns the outcome if the scope is
    /// finished, and then it has left the tree; otherwise stores `waker`
    /// for when it is, and the future calls [`poll_end`](Node::poll_end)
    /// when woken. The caller holds the tree reference (its scope future's)
    /// until this returns.
    pub(crate) fn body_done(&self, end: BodyEnd, waker: &Waker) -> Option<Outcome> {
        let change = self.life.body_done(end == BodyEnd::Interrupted);
        match change {
            Change::Finished => Some(self.end()),
            Change::Open => self.poll_end(waker),
            Change::Drained => {
                self.drained();
                self.poll_end(waker)
            }
        }
    }

    /// The scope's outcome if it is finished (and it leaves the tree), or
    /// `None` with `waker` stored. The body has ended.
    pub(crate) fn poll_end(&self, waker: &Waker) -> Option<Outcome> {
        // Under the lock: whoever finishes the scope looks for the waker
        // under it too (invariant 8), so no wake-up is lost.
        let finished = self.with(|st, after| {
            let finished = self.life.load().is_finished();
            if !finished {
                st.set_waker(waker, after);
            }
            finished
        });
        finished.then(|| self.end())
    }

    /// Retires this finished scope, whose body is done, and takes it out
    /// of the tree: its future ends with the outcome.
    fn end(&self) -> Outcome {
        let life = self.life.load();
        // The common end: unpublished, nothing cut short, no panic, and so
        // no task, child, waker or waiter: no lock to take either.
        if life.phase() == Phase::Unpublished && !life.has(INTERRUPTED | PANICKED) {
            let retired = self.retire_life();
            debug_assert!(retired, "the future retires its finished node");
            return Outcome {
                cancelled: None,
                panic: None,
            };
        }
        let (outcome, published) = self.with(|st, after| {
            // `Published`, or `Cleaning` (its cleanups ran).
            let published = life.phase() != Phase::Unpublished;
            let retired = self.retire(st, after);
            debug_assert!(retired, "the scope future retires its finished node");
            let life = self.life.load();
            let cancelled = (life.has(INTERRUPTED) && self.cancelled.is_set())
                .then(|| self.cancel_value_locked(st));
            let panic = if life.has(PANICKED) {
                self.life.clear(PANICKED);
                st.rare.as_mut().and_then(|r| r.panic.take())
            } else {
                None
            };
            (Outcome { cancelled, panic }, published)
        });
        if published {
            Node::leave_tree(self.clone());
        }
        outcome
    }

    /// For `Scope::cancelled()`: the reason if cancelled, else registers
    /// `waker` (reusing `key` if still ours).
    pub(crate) fn poll_cancelled(&self, key: Option<usize>, waker: &Waker) -> CancelWait {
        if !self.cancelled.is_set() && self.is_cancelled() {
            self.adopt_ancestors_cancel();
        }
        // Waiting needs the node in the tree, where a cancel reaches it.
        self.publish();
        self.with(|st, after| {
            if self.cancelled.is_set() {
                return CancelWait::Cancelled(self.cancel_value_locked(st));
            }
            if self.life.load().phase() == Phase::Removed {
                return CancelWait::Never;
            }
            // Keys stay ours until the node is cancelled (the walk takes
            // them all) or retired, and neither has happened.
            match key {
                Some(key) => {
                    let slot = &mut st.rare().cancel_waiters[key];
                    if !slot.will_wake(waker) {
                        after.drop_waker(std::mem::replace(slot, waker.clone()));
                    }
                    CancelWait::Waiting(key)
                }
                None => CancelWait::Waiting(st.rare().cancel_waiters.insert(waker.clone())),
            }
        })
    }

    /// A `cancelled()` future registered under `key` was dropped.
    pub(crate) fn forget_cancel_waiter(&self, key: usize) {
        self.with(|st, after| {
            if self.cancelled.is_set() || self.life.load().phase() == Phase::Removed {
                return;
            }
            if let Some(waker) = st
                .rare
                .as_mut()
                .and_then(|r| r.cancel_waiters.try_remove(key))
            {
                after.drop_waker(waker);
            }
        });
    }
}
