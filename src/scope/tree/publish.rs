//! A node's place in the tree: opening it, publishing it to its parent at
//! the first thing that needs it, and leaving the tree once finished
//! (invariant 2).
//!
//! A scope that ends within its future's first poll, with no task, no
//! child and no deadline (a `timeout` whose work was ready, a check that
//! opens a scope and returns), never touches its parent: opening it takes
//! a count on the parent and fills its box, ending it sets its life word.
//! Until it is published, its cancellation is its own mark or its
//! ancestors' ([`Node::is_cancelled`]), so a body that runs on without
//! suspending sees an ancestor's cancel at its next check, as it would if
//! it were in the parent's child list.

use super::children::{link_first, unlink, Siblings};
use super::life::{Body, Change, LifeWord, Phase};
use super::{AfterUnlock, Guarded, Kind, Node, NodeRef, Options, Place, StopMark, NO_ID};
use crate::cancelled::{CancelCell, CancelReason};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Mutex;
use crate::task::budget::CancelProbe;
use crate::trace::{EventKind, ScopeKind};
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::ptr::{addr_of_mut, NonNull};
use std::sync::atomic::AtomicU64;

impl Node {
    /// Opens a node under a parent, or as a root. It is unpublished (but
    /// on a recording runtime, whose timeline shows every scope).
    #[inline(always)]
    pub(crate) fn open(
        at: Place<'_>,
        kind: Kind,
        location: &'static Location<'static>,
        options: Options,
    ) -> NodeRef {
        let node = Node::open_unrecorded(at, kind, location, options);
        if node.shared().records() {
            node.open_recorded();
        }
        node
    }

    /// [`open`](Node::open), unpublished even on a recording runtime: for
    /// a node its opener publishes and records itself (a scope's daemons
    /// or cleanup phase, joined under the parent's lock).
    #[inline(always)]
    pub(super) fn open_unrecorded(
        at: Place<'_>,
        kind: Kind,
        location: &'static Location<'static>,
        options: Options,
    ) -> NodeRef {
        let (shared, runtime, parent) = match at {
            Place::Under(parent) => {
                // SAFETY: the caller guarantees the parent is alive, and
                // its pointer follows rule "pointers from the box".
                let parent = unsafe { NodeRef::clone_raw(parent) };
                (parent.shared, None, Some(parent))
            }
            Place::Root(shared) => {
                let ptr =
                    NonNull::new(std::sync::Arc::as_ptr(shared).cast_mut()).expect("not null");
                (ptr, Some(shared.clone()), None)
            }
        };
        let limit = options.limit;
        // SAFETY: every field is written.
        let node = unsafe {
            NodeRef::new_in_place(|at| {
                addr_of_mut!((*at).shared).write(shared);
                addr_of_mut!((*at).runtime).write(runtime);
                addr_of_mut!((*at).parent).write(parent);
                addr_of_mut!((*at).kind).write(kind);
                addr_of_mut!((*at).supervises).write(options.supervises);
                addr_of_mut!((*at).limited).write(options.limit.is_some());
                addr_of_mut!((*at).stop).write(StopMark::new());
                addr_of_mut!((*at).id).write(AtomicU64::new(NO_ID));
                addr_of_mut!((*at).location).write(location);
                addr_of_mut!((*at).info).write(ManuallyDrop::new(options.info));
                addr_of_mut!((*at).cancelled).write(CancelCell::unpublished());
                addr_of_mut!((*at).life).write(LifeWord::new(Phase::Unpublished));
                addr_of_mut!((*at).siblings).write(UnsafeCell::new(Siblings::default()));
                addr_of_mut!((*at).walk_next).write(UnsafeCell::new(None));
                addr_of_mut!((*at).state).write(Mutex::new(Guarded::new()));
            })
        };
        if let Some(max) = limit {
            // Out of line, so that a plain scope's open is what it was.
            node.set_limit(max.get() as usize);
        }
        node
    }

    /// Whether this scope is cancelled: its own mark, or, while it is
    /// unpublished, its nearest published ancestor's up to a shield, or
    /// the runtime's shutdown (invariant 1). One load for a published
    /// scope.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.is_set()
            || (self.cancelled.is_unpublished_and_clear() && self.ancestor_cancelled())
    }

    /// [`is_cancelled`](Node::is_cancelled)'s climb for an unpublished
    /// node.
    #[cold]
    fn ancestor_cancelled(&self) -> bool {
        // A shutdown cancels every scope, shields included.
        if self.shared().is_shutdown() {
            return true;
        }
        let mut node = self;
        loop {
            if node.kind == Kind::Shielded {
                return false;
            }
            match &node.parent {
                None => return false,
                Some(parent) => {
                    if parent.cancelled.is_set() {
                        return true;
                    }
                    if !parent.cancelled.is_unpublished_and_clear() {
                        return false;
                    }
                    node = parent;
                }
            }
        }
    }

    /// Retires this finished node, under its lock: takes it out of the
    /// running (the life word's `Removed`), and hands what it still holds
    /// to `after` (its future's waker, its deadline's timer, its waiters,
    /// which learn it will never be cancelled, and the task list, whose
    /// tasks have all ended: invariant 4). Returns false if the node is not
    /// finished, or was retired by someone else. The panic stays, for
    /// whoever reads the outcome (or the node's drop).
    pub(super) fn retire(&self, st: &mut Guarded, after: &mut AfterUnlock) -> bool {
        if !self.retire_life() {
            return false;
        }
        if let Some(waker) = st.waker.take() {
            after.drop_waker(waker);
        }
        let ended = st.tasks.take_all();
        if !ended.is_empty() {
            after.drop_tasks(ended);
        }
        if let Some(rare) = st.rare.as_deref_mut() {
            if let Some(deadline) = rare.deadline.take() {
                after.remove_timer(&self.shared().timers, deadline.timer);
            }
            for (_, waker) in std::mem::take(&mut rare.cancel_waiters) {
                after.wake(waker);
            }
            rare.retire_limit(after);
            rare.retire_stop(&self.shared().timers, after);
        }
        true
    }

    /// The life word's part of retiring a finished node: seals its cancel
    /// cell (a later claim, a stale handle's, marks nothing), then moves
    /// the word to `Removed`. False if the node is not finished, or was
    /// retired already.
    pub(super) fn retire_life(&self) -> bool {
        if !self.life.load().is_finished() {
            return false;
        }
        self.cancelled.seal();
        self.life.retire().is_some()
    }

    /// A finished node whose future was dropped: retires it, takes it out
    /// of the tree, and gives up the tree reference the future left
    /// (invariant 2). The caller holds a count on the node, or a rule that
    /// keeps it until this returns.
    pub(super) fn retire_dropped(node: NonNull<Node>) {
        // SAFETY: the caller's contract.
        let this = unsafe { node.as_ref() };
        let mut after = AfterUnlock::default();
        let retired = this.retire(&mut this.state.lock(), &mut after);
        // A panic of a dropped waker: to the parent, the nearest scope
        // that may still be open.
        if let Some(panic) = after.run() {
            match &this.parent {
                Some(parent) => parent.pass_panic(panic),
                None => crate::panic::drop_payload(panic),
            }
        }
        if retired {
            // SAFETY: the future left its count behind when its body was
            // dropped (`NodeRef::future_dropped`); retiring hands it to us.
            let tree_ref = unsafe { NodeRef::from_raw(node) };
            Node::leave_tree(tree_ref);
        }
    }

    /// A retired, published node leaves its parent's child list (or the
    /// roots); if that finishes the parent, the parent is settled: its
    /// future woken, or, if its future was dropped, the parent retired and
    /// out of the tree in turn. Iterative: a long chain costs no stack.
    /// Takes a reference to the node, given up once it is out.
    pub(super) fn leave_tree(node: NodeRef) {
        let mut node = node;
        loop {
            node.shared()
                .record(|| EventKind::ScopeEnded { scope: node.id() });
            debug_assert_eq!(node.life.load().phase(), Phase::Removed);
            let Some(parent) = node.parent.as_ref() else {
                node.shared().roots().release(&node);
                return;
            };
            if node.kind == Kind::Daemons {
                node.hand_panic_to_parent();
            }
            let mut pst = parent.state.lock();
            // SAFETY: rule "siblings under the parent's lock"; the node is
            // in the parent's list until this call.
            unsafe { unlink(&mut pst.first_child, &node) };
            let change = if node.kind == Kind::Daemons {
                parent.life.daemons_left()
            } else {
                parent.life.child_left()
            };
            match change {
                Change::Open => return,
                Change::Drained => {
                    let parent = parent.clone();
                    drop(pst);
                    return parent.drained();
                }
                Change::Finished => {}
            }
            if parent.life.load().body() == Body::Done {
                // The parent's future retires it: wake it, once the lock
                // is released.
                let waker = pst.waker.take();
                drop(pst);
                if let Some(waker) = waker {
                    crate::panic::wake_contained(waker);
                }
                return;
            }
            // The parent is finished and its future is gone: retire it, and
            // go on with its tree reference. The child's count keeps the
            // parent alive until then.
            let mut after = AfterUnlock::default();
            let retired = parent.retire(&mut pst, &mut after);
            drop(pst);
            if let Some(panic) = after.run() {
                crate::panic::drop_payload(panic);
            }
            if !retired {
                return;
            }
            let parent_ptr = parent.as_ptr();
            // SAFETY: the parent's future left its count behind when it
            // was dropped; retiring the parent hands it to us.
            node = unsafe { NodeRef::from_raw(parent_ptr) };
        }
    }
}

impl Node {
    /// Records the node's opening, as `kind` (a recording runtime).
    #[cold]
    pub(super) fn record_open(&self, kind: ScopeKind) {
        self.shared().record(|| EventKind::ScopeOpened {
            scope: self.id(),
            parent: self.parent.as_ref().map(|p| p.id()),
            name: self.name().cloned(),
            location: self.location,
            kind,
        });
    }
}

impl NodeRef {
    /// On a recording runtime: records the opening before the node can be
    /// reached (so no cancel of it is recorded first), publishes it, and
    /// records it born cancelled if it was.
    #[cold]
    fn open_recorded(&self) {
        self.record_open(match (self.kind, self.supervises) {
            (Kind::Linked, _) => ScopeKind::Linked,
            (Kind::Shielded, _) => ScopeKind::Shielded,
            (Kind::Daemons, _) => ScopeKind::Daemons,
            (Kind::Plain, true) => ScopeKind::Supervisor,
            (Kind::Plain, false) => ScopeKind::Plain,
        });
        self.publish();
        if self.cancelled.is_set() {
            self.shared().record(|| EventKind::ScopeCancelled {
                scope: self.id(),
                reason: self.cancel_value().reason().clone(),
                by: self.parent.as_ref().map_or(self.id(), |p| p.id()),
            });
        }
    }

    /// An unpublished scope found an ancestor's cancel (or the runtime's
    /// shutdown): it takes it as its own mark, with the ancestor's cause,
    /// as publishing it would have. A no-op if it is marked already.
    #[cold]
    pub(crate) fn adopt_ancestors_cancel(&self) {
        if self.cancelled.is_set() || !self.ancestor_cancelled() {
            return;
        }
        let mut node: &Node = self;
        // In the order publication takes them: the shutdown first.
        let (reason, cause) = loop {
            if node.shared().is_shutdown() {
                break (CancelReason::Shutdown, None);
            }
            match &node.parent {
                None => break (CancelReason::Shutdown, None),
                Some(parent) if parent.cancelled.is_set() => {
                    break (CancelReason::Ancestor, parent.state.lock().cause())
                }
                Some(parent) => node = parent,
            }
        };
        // Its ancestor's lock released: locks are taken top-down only.
        let mut st = self.state.lock();
        if self.cancelled.claim(&reason, cause.as_ref()) {
            if let Some(cause) = cause {
                st.rare().cause = Some(cause);
            }
        }
    }

    /// Publishes this node, and its unpublished ancestors first, top-down
    /// (invariant 2). A no-op for a published or retired node.
    #[inline]
    pub(crate) fn publish(&self) {
        if self.life.load().phase() == Phase::Unpublished {
            self.publish_slow();
        }
    }

    #[cold]
    fn publish_slow(&self) {
        loop {
            // The topmost unpublished node of the chain: its parent is
            // published (or it is a root).
            let mut top = self;
            while let Some(parent) = &top.parent {
                if parent.life.load().phase() != Phase::Unpublished {
                    break;
                }
                top = parent;
            }
            top.link_into_tree();
            if NodeRef::ptr_eq(top, self) {
                return;
            }
        }
    }

    /// Links this node, whose parent is published, into its parent's child
    /// list (or the roots), born cancelled if the parent is (unless it is
    /// shielded: invariant 1) or the runtime is shut down.
    fn link_into_tree(&self) {
        let Some(parent) = &self.parent else {
            return self.shared().roots().adopt(self);
        };
        let mut pst = parent.state.lock();
        // Invariant 5: the parent's lock, then the child's.
        let mut st = self.state.lock();
        self.inherit_stop();
        if !self.life.publish() {
            return; // published by another thread meanwhile, or retired
        }
        // The parent cannot be finished: this node's first poll runs
        // inside the parent's body or one of its tasks (invariant 2).
        let counted = parent.life.add_child();
        assert!(counted, "a scope published under a finished parent");
        let shutdown = self.shared().is_shutdown();
        if shutdown || (parent.cancelled.is_set() && self.kind != Kind::Shielded) {
            let (reason, cause) = if shutdown {
                (CancelReason::Shutdown, None)
            } else {
                (CancelReason::Ancestor, pst.cause())
            };
            if self.cancelled.claim(&reason, cause.as_ref()) {
                if let Some(cause) = cause {
                    st.rare().cause = Some(cause);
                }
            }
        }
        self.cancelled.published();
        // SAFETY: rule "siblings under the parent's lock": we hold the
        // parent's lock; the node is alive and in no list.
        unsafe { link_first(&mut pst.first_child, self.as_ptr()) };
    }
}

/// The budget's question (`task/budget.rs`), answered by the node that a
/// task or body was entered in.
impl CancelProbe for Node {
    #[inline]
    fn is_cancelled(&self) -> bool {
        Node::is_cancelled(self)
    }
}
