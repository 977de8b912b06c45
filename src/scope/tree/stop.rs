//! Stop requests: asking a subtree to wind down, without cancelling it;
//! and a graceful shutdown's grace period, after which what is left is
//! cancelled.
//!
//! A stop request is a mark, the node's `stop` flag, that nothing clears.
//! It travels like a cancel's mark (invariant 1), but nothing is dropped:
//!
//! - **down, up to shields.** [`request_stop`](NodeRef::request_stop)
//!   sets the node's flag, then walks its published subtree, one
//!   critical section a node: under the node's lock it takes the wakers
//!   of the futures waiting for the request and sets the flag of each
//!   child that is not shielded, pushing the children whose flag it set
//!   (rule "one claim, one walk", as for a cancel: whoever sets a flag
//!   walks below it). The stack is a `Vec`: requests are rare, and a
//!   cancel walk may be using the nodes' `walk_next` meanwhile.
//! - **not up through links.** Links carry a failure to the parent; a
//!   stop is a request from above.
//! - **to scopes opened later.** A node published under a parent whose flag is
//!   set is born with it (under the parent's lock, as a cancel's mark), unless
//!   it is shielded; an unpublished node reads its ancestors' flags
//!   ([`Node::is_stop_requested`]). A root reads the runtime's flag, which
//!   [`Runtime::request_stop`](crate::runtime::Runtime::request_stop) sets
//!   before it walks the roots.
//!
//! Waiting for a request (`stop_requested()`) publishes the node, as
//! `cancelled()` does, so that the walk reaches its waker.
//!
//! A graceful shutdown ([`shutdown`](NodeRef::shutdown)) is a request plus
//! a timer, like a deadline (invariant 7): the node keeps the grace's end
//! and the timer's key; the timer's waker asks the node to check it, and
//! if the end has passed and the scope still runs, the node copies its
//! subtree for the record (the scopes still running) and cancels itself
//! with [`CancelReason::GraceExpired`], the copy as the cause. A cancel
//! or the scope's end removes the timer.

use super::life::Phase;
use super::{children::children, AfterUnlock, Kind, Links, Node, NodeRef, Rare};
use crate::cancelled::CancelReason;
use crate::loom::sync::atomic::{AtomicBool, Ordering::*};
use crate::time::timers::TimerKey;
use slab::Slab;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// A node's stop flag: set once, never cleared; read without a lock.
pub(crate) struct StopMark(AtomicBool);

/// What a node keeps for its stop request: the futures waiting for it, and
/// a graceful shutdown's grace period.
#[derive(Default)]
pub(crate) struct StopWaiters {
    waiters: Slab<Waker>,
    grace: Option<Grace>,
}

/// The end of a graceful shutdown's grace period (a timer plus a check).
#[derive(Clone, Copy)]
struct Grace {
    at: Instant,
    grace: Duration,
    timer: TimerKey,
}

/// What [`NodeRef::poll_stop`] found.
pub(crate) enum StopWait {
    Requested,
    /// Registered under this key.
    Waiting(usize),
    /// The scope ended with no request: none will come.
    Never,
}

impl StopMark {
    pub(crate) fn new() -> StopMark {
        StopMark(AtomicBool::new(false))
    }

    fn is_set(&self) -> bool {
        self.0.load(Acquire)
    }

    /// Sets the flag; true if this call set it (the walk below is ours).
    fn set(&self) -> bool {
        !self.0.swap(true, AcqRel)
    }
}

impl Rare {
    fn stop(&mut self) -> &mut StopWaiters {
        self.stop.get_or_insert_with(Box::default)
    }

    /// A cancel's walk (under the node's lock): a cancelled scope has no
    /// grace left to wait for.
    pub(super) fn take_grace_for_walk(
        &mut self,
        timers: &crate::time::timers::Timers,
        after: &mut AfterUnlock,
    ) {
        if let Some(grace) = self.stop.as_mut().and_then(|s| s.grace.take()) {
            after.remove_timer(timers, grace.timer);
        }
    }

    /// Retiring (under the node's lock): the grace timer goes, and the
    /// waiters' wakers (no request will come).
    pub(super) fn retire_stop(
        &mut self,
        timers: &crate::time::timers::Timers,
        after: &mut AfterUnlock,
    ) {
        if let Some(stop) = self.stop.as_deref_mut() {
            if let Some(grace) = stop.grace.take() {
                after.remove_timer(timers, grace.timer);
            }
            for (_, waker) in std::mem::take(&mut stop.waiters) {
                after.drop_waker(waker);
            }
        }
    }
}

impl StopWaiters {
    /// The wakers it still holds, to drop as the node is freed.
    pub(super) fn into_wakers(self) -> impl Iterator<Item = Waker> {
        self.waiters.into_iter().map(|(_, w)| w)
    }
}

impl Node {
    /// Whether a stop was requested of this scope or reached it: its own
    /// flag, or, while it is unpublished, its ancestors' up to a shield,
    /// and for a root the runtime's. One load for a published scope whose
    /// flag is set.
    pub(crate) fn is_stop_requested(&self) -> bool {
        let mut node = self;
        loop {
            // The phase first: a node inherits its flag before it is
            // published (`inherit_stop`), so one seen published shows
            // the flag it was born with; one seen unpublished defers to
            // its parent, whose flag it would inherit.
            let unpublished = node.life.load().phase() == Phase::Unpublished;
            if node.stop.is_set() {
                return true;
            }
            if !unpublished {
                return false;
            }
            match &node.parent {
                None => return node.shared().is_stop_requested(),
                Some(_) if node.kind == Kind::Shielded => return false,
                Some(parent) => node = parent,
            }
        }
    }

    /// At publication (the caller holds the parent's lock, or the
    /// roots'), before the life word says published: a node is born with
    /// its parent's request, unless it is a shield; a root with the
    /// runtime's. Harmless if the publication then does not happen (the
    /// parent has the request).
    pub(super) fn inherit_stop(&self) {
        let inherits = match &self.parent {
            Some(parent) => self.kind != Kind::Shielded && parent.stop.is_set(),
            None => self.shared().is_stop_requested(),
        };
        if inherits {
            self.stop.set();
        }
    }
}

impl NodeRef {
    /// Requests a stop of this scope and its subtree, up to shields (the
    /// module docs). Idempotent; never withdrawn.
    pub(crate) fn request_stop(&self) {
        if !self.stop.set() {
            // Set already: by a request whose walk covers the subtree, or
            // at birth (then every child since was born with it).
            return;
        }
        let mut stack = vec![self.clone()];
        while let Some(node) = stack.pop() {
            node.with(|st, after| {
                if let Some(stop) = st.rare.as_mut().and_then(|r| r.stop.as_deref_mut()) {
                    for (_, waker) in std::mem::take(&mut stop.waiters) {
                        after.wake(waker);
                    }
                }
                // SAFETY: rule "siblings under the parent's lock": we hold
                // this node's lock, and its children are alive
                // (invariant 2).
                for child in unsafe { children(st.first_child) } {
                    // SAFETY: as above; list pointers follow rule "pointers
                    // from the box".
                    let child_ref = unsafe { child.as_ref() };
                    if child_ref.kind != Kind::Shielded && child_ref.stop.set() {
                        // SAFETY: as above.
                        stack.push(unsafe { NodeRef::clone_raw(child) });
                    }
                }
            });
        }
    }

    /// For `stop_requested()`: whether a stop was requested, else registers
    /// `waker` (reusing `key` if still ours).
    pub(crate) fn poll_stop(&self, key: Option<usize>, waker: &Waker) -> StopWait {
        if self.is_stop_requested() {
            return StopWait::Requested;
        }
        // Waiting needs the node in the tree, where a request's walk
        // reaches it; published, its own flag is the answer.
        self.publish();
        self.with(|st, after| {
            if self.stop.is_set() {
                return StopWait::Requested;
            }
            if self.life.load().phase() == Phase::Removed {
                return StopWait::Never;
            }
            let waiters = &mut st.rare().stop().waiters;
            match key.and_then(|k| waiters.get_mut(k).map(|w| (k, w))) {
                Some((key, slot)) => {
                    if !slot.will_wake(waker) {
                        after.drop_waker(std::mem::replace(slot, waker.clone()));
                    }
                    StopWait::Waiting(key)
                }
                None => StopWait::Waiting(waiters.insert(waker.clone())),
            }
        })
    }

    /// A `stop_requested()` future registered under `key` was dropped.
    pub(crate) fn forget_stop_waiter(&self, key: usize) {
        self.with(|st, after| {
            let waker = st
                .rare
                .as_mut()
                .and_then(|r| r.stop.as_mut())
                .and_then(|s| s.waiters.try_remove(key));
            if let Some(waker) = waker {
                after.drop_waker(waker);
            }
        });
    }

    /// A graceful shutdown: requests a stop, and cancels what is left
    /// once `grace` has passed (the module docs). A second call keeps the
    /// earlier end. Publishes the scope (invariant 2).
    pub(crate) fn shutdown(&self, grace: Duration) {
        self.request_stop();
        self.publish();
        let shared = self.shared();
        let timers = &shared.timers;
        let at = crate::time::after(timers.now(), grace);
        let node = self.clone();
        let waker = waker_fn::waker_fn(move || node.grace_passed());
        let (timer, earliest) = timers.insert(at, waker);
        if earliest {
            shared.idle.notify_timer();
        }
        let due = self.with(|st, later| {
            let over = self.life.load().phase() == Phase::Removed;
            if over || self.cancelled.is_set() {
                later.remove_timer(timers, timer);
                return false;
            }
            let stop = st.rare().stop();
            match stop.grace {
                Some(kept) if kept.at <= at => later.remove_timer(timers, timer),
                _ => {
                    if let Some(old) = stop.grace.replace(Grace { at, grace, timer }) {
                        later.remove_timer(timers, old.timer);
                    }
                }
            }
            at <= timers.now()
        });
        if due {
            self.grace_passed();
        }
    }

    /// A grace timer fired: if the grace's end has passed and the scope
    /// is still running, copy its subtree and cancel it.
    fn grace_passed(&self) {
        let now = self.shared().timers.now();
        let due = {
            let st = self.state.lock();
            st.rare
                .as_ref()
                .and_then(|r| r.stop.as_ref())
                .and_then(|s| s.grace)
                .filter(|g| g.at <= now)
        };
        let Some(grace) = due else { return };
        if self.cancelled.is_set() || self.life.load().phase() == Phase::Removed {
            return;
        }
        let still_running = super::roots::subtree(self, now);
        let cause = crate::scope::GraceExpired::new(grace.grace, still_running);
        self.cancel_because(
            CancelReason::GraceExpired,
            Some(Arc::new(cause)),
            Links::Follow,
        );
    }
}
