//! A scope's tasks (listing one, a runner's release of one) and the panics
//! of the user code a scope runs.
//!
//! # The panic policy for scopes
//!
//! A panic of user code a scope runs (a task's poll, the `Drop` of a
//! cancelled future, the body, a cancel handler, a daemon, a cleanup) is
//! caught and stored in the scope, the first one winning; the scope is
//! cancelled with [`CancelReason::Panicked`], so its siblings stop, and its
//! future resumes the panic once every task and child has ended. The
//! panicked task's `JoinHandle` gives `Err(Cancelled)` with that reason. A
//! scope whose future is gone passes a panic to its nearest open ancestor.
//! A supervisor scope's task keeps its panic instead (its scheduler says so:
//! `Schedule::keeps_panics`): the handle's `Cancelled` carries the payload,
//! and the scope goes on. Workers never unwind; how the runtime catches
//! panics outside any poll is `panic.rs`'s.

use super::life::{Body, Change, Phase, TaskExit, PANICKED};
use super::{AfterUnlock, Guarded, Kind, Links, Node, NodeRef, SlotCell};
use crate::cancelled::{CancelReason, Cancelled};
use crate::loom::sync::MutexGuard;
use crate::panic::{drop_payload, Panic};
use crate::task::{Ended, TaskId, TaskRef};
use crate::trace::EventKind;
use std::ptr::NonNull;
use std::task::Waker;

/// What the maker of a finishing change must do once the lock is released
/// (invariant 8).
#[must_use]
pub(super) enum Settled {
    /// Nothing more (the scope goes on).
    Done,
    /// Wake the scope future, which retires the node.
    Wake(Waker),
    /// The node was retired with its future gone: take the tree reference
    /// the future left, and leave the tree (`Node::retire_dropped`'s
    /// second half).
    Leave,
    /// The change drained a scope that owns daemons or cleanups: act on
    /// them (`NodeRef::drained`) once the lock is released.
    Drained(NodeRef),
}

impl Node {
    /// A runner finished the task of `node` that `id` names (the task
    /// called `release`); `ended` says how.
    ///
    /// # Safety
    ///
    /// `node` is alive: the task is counted live in it (invariant 2). The
    /// node may be retired and freed as soon as the task is counted gone,
    /// so that happens under the node's lock, and nothing here touches the
    /// node after the lock is released unless it holds a reference.
    pub(crate) unsafe fn release_task(
        node: NonNull<Node>,
        id: TaskId,
        ended: Ended,
        panic: Option<Panic>,
    ) {
        // SAFETY: the caller's contract.
        unsafe { Node::release(node, id, ended, panic, None) }
    }

    /// [`release_task`](Node::release_task) for a task of a limited scope,
    /// whose `cell` says whether it held a slot (`limit.rs`).
    ///
    /// # Safety
    ///
    /// As for `release_task`.
    pub(crate) unsafe fn release_limited_task(
        node: NonNull<Node>,
        id: TaskId,
        ended: Ended,
        panic: Option<Panic>,
        cell: &SlotCell,
    ) {
        // SAFETY: the caller's contract.
        unsafe { Node::release(node, id, ended, panic, Some(cell)) }
    }

    /// The two releases' one body, inlined into each, so that a plain
    /// task's is the code it was before limits existed.
    ///
    /// # Safety
    ///
    /// As for `release_task`.
    #[inline(always)]
    unsafe fn release(
        node: NonNull<Node>,
        id: TaskId,
        ended: Ended,
        panic: Option<Panic>,
        cell: Option<&SlotCell>,
    ) {
        // SAFETY: the caller's contract. A local borrow, not an argument:
        // it may dangle once unused, below.
        let this = unsafe { node.as_ref() };
        this.shared()
            .record(|| EventKind::TaskCompleted { task: id.number() });
        // The common release needs nothing after the lock but to drop the
        // list's reference and, at the scope's end, to wake its future: an
        // `AfterUnlock` is made only for more.
        let mut after: Option<AfterUnlock> = None;
        // A daemon's panic goes to the scope that owns the daemons
        // (`daemons.rs`), which it cancels as any task's panic would.
        let (panic, forwarded) = match panic {
            Some(panic) if this.kind == Kind::Daemons => (None, Some((panic, this.parent.clone()))),
            panic => (panic, None),
        };
        let (unlisted, settled, pinned, start) = {
            let mut st = this.state.lock();
            let cancelled = this.cancelled.is_set();
            // Invariant 4: a cancelled node's list is the walk's.
            let (unlisted, start) = match cell {
                // SAFETY: if the node is not cancelled, the task it listed
                // is still on its list.
                None => ((!cancelled).then(|| unsafe { st.tasks.remove(id) }), None),
                Some(cell) => this.release_slot(&mut st, id, cell, cancelled, &mut after),
            };
            // A queued task that takes the freed slot is pushed once the
            // lock is released: keep the node alive until then (its
            // cancel may end the scope meanwhile).
            // SAFETY: the node is alive (we hold its lock), and the
            // binding's pointer follows rule "pointers from the box".
            let start = start.map(|task| (task, unsafe { NodeRef::clone_raw(node) }));
            // A panic cancels the scope, once the lock is released: keep the
            // node alive until then.
            let pinned = panic.map(|panic| {
                this.store_panic(
                    &mut st,
                    panic,
                    after.get_or_insert_with(AfterUnlock::default),
                );
                // SAFETY: the node is alive (we hold its lock), and the
                // binding's pointer follows rule "pointers from the box".
                unsafe { NodeRef::clone_raw(node) }
            });
            // A task the scope's cancel stopped while it ran (its runner
            // dropped it after the poll): the cancel cut it short.
            let exit = if ended == Ended::Cancelled && cancelled {
                TaskExit::CutShort
            } else {
                TaskExit::Finished
            };
            let settled = match this.life.tasks_ended(1, exit) {
                Change::Open => Settled::Done,
                Change::Finished => this.settle(&mut st, &mut after),
                // SAFETY: the node is alive (we hold its lock), and the
                // binding's pointer follows rule "pointers from the box".
                Change::Drained => Settled::Drained(unsafe { NodeRef::clone_raw(node) }),
            };
            (unlisted, settled, pinned, start)
        };
        if let Some((task, _pinned)) = start {
            task.schedule();
        }
        // From here `this` may be freed (a woken scope future may finish),
        // unless `pinned` holds it or `settled` says we retired it.
        drop(unlisted);
        let settled = match settled {
            Settled::Wake(waker) => {
                crate::panic::wake_contained(waker);
                Settled::Done
            }
            Settled::Drained(node) => {
                node.drained();
                Settled::Done
            }
            other => other,
        };
        if let Some(panic) = after.and_then(AfterUnlock::run) {
            match (&pinned, &settled) {
                (Some(node), _) => node.pass_panic(panic),
                // Only a retiring node drops a waker here (its future's).
                // SAFETY: we retired it, so the future's count is still
                // there, ours to give up below.
                (None, Settled::Leave) => unsafe { node.as_ref() }.pass_panic_up(panic),
                (None, _) => drop_payload(panic),
            }
        }
        // Not through links: the panic reaches the parent by unwinding out
        // of this scope's future, which resumes it.
        if let Some(node) = pinned {
            node.cancel(CancelReason::Panicked, Links::Ignore);
        }
        if let Some((panic, Some(owner))) = forwarded {
            owner.record_panic(panic);
        }
        if let Settled::Leave = settled {
            // SAFETY: the future left its count behind; retiring hands it
            // to us.
            Node::leave_tree(unsafe { NodeRef::from_raw(node) });
        }
    }

    /// The maker of the change that finished this scope settles it, under
    /// its lock (invariant 8): the body's future, if alive, is woken to
    /// retire it (its waker is returned, to wake once the lock is
    /// released); if the future is gone, the node is retired here, handing
    /// what it held to `after` (made if need be).
    pub(super) fn settle(&self, st: &mut Guarded, after: &mut Option<AfterUnlock>) -> Settled {
        match self.life.load().body() {
            Body::Done => match st.waker.take() {
                Some(waker) => Settled::Wake(waker),
                None => Settled::Done,
            },
            Body::Dropped => {
                if self.retire(st, after.get_or_insert_with(AfterUnlock::default)) {
                    Settled::Leave
                } else {
                    Settled::Done
                }
            }
            Body::Running => unreachable!("a running body keeps its scope open"),
        }
    }

    /// Keeps `panic` if it is this open scope's first (under its lock).
    pub(super) fn store_panic(&self, st: &mut Guarded, panic: Panic, after: &mut AfterUnlock) {
        let rare = st.rare();
        if rare.panic.is_none() {
            rare.panic = Some(panic);
            self.life.set(PANICKED);
        } else {
            after.drop_panic(panic);
        }
    }

    /// [`pass_panic`](Node::pass_panic) from a node being retired: to its
    /// parent and up.
    #[cold]
    pub(super) fn pass_panic_up(&self, panic: Panic) {
        match &self.parent {
            Some(parent) => parent.pass_panic(panic),
            None => self.shared().keep_lost_panic(panic),
        }
    }
}

impl NodeRef {
    /// Lists a task, or says why it is refused (invariant 4). Publishes the
    /// scope first (invariant 2). A limited scope's tasks are listed by
    /// `add_limited_task` (`limit.rs`).
    pub(crate) fn add_task(&self, task: TaskRef) -> Result<(), (Cancelled, TaskRef)> {
        match self.admit() {
            Ok(mut st) => {
                st.tasks.push(task);
                Ok(())
            }
            Err(cancelled) => Err((cancelled, task)),
        }
    }

    /// The start of every spawn: publishes the scope (invariant 2), takes
    /// its lock, and counts one more task in the life word, or says why a
    /// task is refused (invariant 4). The caller lists the task under the
    /// lock it gets back.
    #[inline]
    pub(super) fn admit(&self) -> Result<MutexGuard<'_, Guarded>, Cancelled> {
        let publishing = self.life.load().phase() == Phase::Unpublished;
        self.publish();
        let st = self.state.lock();
        if let Some(cancelled) = self.refusal(&st, publishing) {
            return Err(cancelled);
        }
        if !self.life.add_task() {
            return Err(Cancelled::new(CancelReason::ScopeEnded));
        }
        Ok(st)
    }

    /// Why something joining the scope (a task, a cancel handler, the
    /// daemons' scope) is refused by the scope's mark, if it is; the
    /// caller holds the lock, and `publishing` says whether its own call
    /// published the node. One that did looks at the mark with a
    /// read-modify-write: a cancel of the unpublished node then either
    /// sees the publication or its mark is seen here
    /// (`cancel_unpublished`).
    pub(super) fn refusal(&self, st: &Guarded, publishing: bool) -> Option<Cancelled> {
        let cancelled = if publishing {
            self.cancelled.is_set_latest()
        } else {
            self.cancelled.is_set()
        };
        cancelled.then(|| self.cancel_value_locked(st))
    }

    /// Stores the first panic of this scope and cancels it, so that its
    /// siblings stop.
    pub(crate) fn record_panic(&self, panic: Panic) {
        if let Err(panic) = self.keep_panic(panic) {
            // The scope has ended: the nearest one still open takes it.
            self.pass_panic(panic);
        }
    }

    /// [`record_panic`](Node::record_panic) if this scope is still open;
    /// else hands the panic back.
    fn keep_panic(&self, panic: Panic) -> Result<(), Panic> {
        let mut after = AfterUnlock::default();
        let kept = {
            let mut st = self.state.lock();
            if self.life.load().phase() != super::life::Phase::Removed {
                self.store_panic(&mut st, panic, &mut after);
                Ok(())
            } else {
                Err(panic)
            }
        };
        // Only payloads: `store_panic` leaves no waker to drop.
        let leftover = after.run();
        debug_assert!(leftover.is_none());
        if kept.is_ok() {
            // Not through links: see `release_task`.
            self.cancel(CancelReason::Panicked, Links::Ignore);
        }
        kept
    }

    /// Hands a panic of user code that the runtime ran for this scope
    /// outside any poll (a waker's or a scope-local's drop) to the nearest
    /// scope still open, this one or an ancestor, which is cancelled and
    /// resumes it (invariant 3's other half: such code runs with no lock
    /// held, and its panic is never lost in a worker). With no scope open
    /// above, the runtime keeps it until it shuts down.
    #[cold]
    pub(crate) fn pass_panic(&self, panic: Panic) {
        let mut panic = panic;
        let mut node = Some(self);
        while let Some(n) = node {
            match n.keep_panic(panic) {
                Ok(()) => return,
                Err(back) => panic = back,
            }
            node = n.parent.as_ref();
        }
        self.shared().keep_lost_panic(panic);
    }
}
