//! The runtime's root scopes, and the views over its whole tree: the
//! snapshot, the live counts, and shutdown (its cancel, and the scopes a
//! bounded shutdown left threads running in).
//!
//! The roots' list is the one lock a runtime has over its scopes, and only
//! opening and ending a *root* scope take it (a `block_on` of a scope, a scope
//! opened outside any task), besides the views and shutdown. The views walk
//! the tree node by node, each under its own lock (a parent's while its
//! children are read), so each node is seen in a consistent state, and the
//! tree as a whole as it was while the view ran.

use super::children::{children, link_first, unlink};
use super::life::{Body, Phase};
use super::{Guarded, Kind, Node, NodeRef};
use crate::cancelled::CancelReason;
use crate::loom::sync::{Condvar, Mutex};
use crate::scope::snapshot::{ScopeSnapshot, ScopeState, TreeSnapshot};
use std::ptr::NonNull;
use std::time::Instant;

/// The root scopes of one runtime.
pub(crate) struct Roots {
    /// The head of the list of roots (rule "siblings under the parent's
    /// lock": this lock guards their
    /// sibling links).
    first: Mutex<Option<NonNull<Node>>>,
    /// Notified when the last root leaves (a graceful shutdown waits for
    /// it: [`Roots::wait_empty`]).
    emptied: Condvar,
}

// SAFETY: the pointers are to live roots (a root stays in the list until
// it leaves the tree, invariant 2), followed only under the lock.
unsafe impl Send for Roots {}
// SAFETY: as for `Send`.
unsafe impl Sync for Roots {}

impl Roots {
    pub(crate) fn new() -> Roots {
        Roots {
            first: Mutex::new(None),
            emptied: Condvar::new(),
        }
    }

    /// Publishes a root: links it, born cancelled if the runtime is shut
    /// down (the roots' lock, then the root's: invariant 5).
    pub(super) fn adopt(&self, root: &NodeRef) {
        let mut first = self.first.lock();
        let _st = root.state.lock();
        root.inherit_stop();
        if !root.life.publish() {
            return; // published by another thread meanwhile, or finished
        }
        if root.shared().is_shutdown() {
            root.cancelled.claim(&CancelReason::Shutdown, None);
        }
        root.cancelled.published();
        // SAFETY: rule "siblings under the parent's lock": we hold the
        // roots' lock, and `root` is alive and in no list.
        unsafe { link_first(&mut first, root.as_ptr()) };
    }

    /// A root leaves the tree.
    pub(super) fn release(&self, root: &Node) {
        let mut first = self.first.lock();
        // SAFETY: rule "siblings under the parent's lock": we hold the
        // roots' lock, and `root` is listed.
        unsafe { unlink(&mut first, root) };
        if first.is_none() {
            self.emptied.notify_all();
        }
    }

    /// Waits until no root is left, or `deadline` has passed; true if none
    /// is left.
    pub(crate) fn wait_empty(&self, deadline: Instant) -> bool {
        let mut first = self.first.lock();
        while first.is_some() {
            if self.emptied.wait_until(&mut first, deadline).timed_out() {
                return first.is_none();
            }
        }
        true
    }

    /// A stop request to every root (`Runtime::request_stop`). The caller
    /// has set the runtime's flag first, so a root published meanwhile is
    /// born with it: it reads the flag under the roots' lock, after this
    /// has read the list, or it is in the list.
    pub(crate) fn request_stop_all(&self) {
        let roots: Vec<NodeRef> = {
            let first = self.first.lock();
            // SAFETY: rule "siblings under the parent's lock": we hold the
            // roots' lock.
            unsafe { children(*first) }.map(listed_ref).collect()
        };
        for root in roots {
            root.request_stop();
        }
    }

    /// Visits every node, parents before children and each node's children
    /// oldest first, calling `f` under the node's lock with its depth.
    /// Each node is counted while it waits in the to-do list.
    fn for_each(&self, f: impl FnMut(&NodeRef, &Guarded, usize)) {
        // A list is newest first (`link_first`): pushed in that order, the
        // oldest is popped first.
        let todo: Vec<(NodeRef, usize)> = {
            let first = self.first.lock();
            // SAFETY: rule "siblings under the parent's lock": we hold the
            // roots' lock.
            unsafe { children(*first) }
                .map(|n| (listed_ref(n), 0))
                .collect()
        };
        visit(todo, f);
    }

    /// A picture of the tree, depth first, children in the order they were
    /// opened.
    pub(crate) fn snapshot(&self, now: Instant) -> TreeSnapshot {
        let mut scopes = Vec::new();
        self.for_each(|node, st, depth| scopes.push(picture(node, st, depth, now)));
        TreeSnapshot { scopes }
    }

    /// For each address `read` returns, the picture of the node of this tree
    /// at that address, if one is. `read` runs while this view holds every
    /// node of the tree, so an address it reads that is a node's here is that
    /// node's, not a freed one's whose memory another took: the addresses (a
    /// shutdown's, of the scopes threads are in: rule "a seat names a live
    /// cell" in `runtime/roster.rs`) are compared, never followed.
    pub(crate) fn scopes_at(
        &self,
        now: Instant,
        read: impl FnOnce() -> Vec<*const Node>,
    ) -> Vec<Option<ScopeSnapshot>> {
        let mut held = Vec::new();
        self.for_each(|node, st, depth| held.push((node.clone(), picture(node, st, depth, now))));
        read()
            .into_iter()
            .map(|at| {
                held.iter()
                    .find(|(node, _)| std::ptr::eq(node.as_ptr().as_ptr(), at))
                    .map(|(_, picture)| picture.clone())
            })
            .collect()
    }

    /// Tasks spawned and not yet finished, and live scopes.
    pub(crate) fn live_counts(&self) -> (usize, usize) {
        let (mut tasks, mut scopes) = (0, 0);
        self.for_each(|node, _, _| {
            tasks += node.life.load().tasks();
            scopes += 1;
        });
        (tasks, scopes)
    }

    /// Cancels every node, shields included (shutdown). The caller has set
    /// the runtime's shutdown flag first, so a node opened meanwhile is
    /// born cancelled: whoever opens it reads the flag under its parent's
    /// lock (or the roots'), after this walk has read that parent's list.
    pub(crate) fn cancel_all(&self) {
        let mut nodes = Vec::new();
        self.for_each(|node, _, _| nodes.push(node.clone()));
        for node in &nodes {
            node.cancel_alone(CancelReason::Shutdown);
        }
    }
}

/// Visits the nodes of `todo` and their subtrees, depth first (see
/// [`Roots::for_each`]).
fn visit(mut todo: Vec<(NodeRef, usize)>, mut f: impl FnMut(&NodeRef, &Guarded, usize)) {
    while let Some((node, depth)) = todo.pop() {
        let st = node.state.lock();
        f(&node, &st, depth);
        // SAFETY: rule "siblings under the parent's lock": we hold this
        // node's lock.
        todo.extend(unsafe { children(st.first_child) }.map(|n| (listed_ref(n), depth + 1)));
    }
}

/// A picture of `top` and its published subtree, `top` at depth 0 (a
/// graceful shutdown's record of what still runs at its hard cancel).
pub(super) fn subtree(top: &NodeRef, now: Instant) -> TreeSnapshot {
    let mut scopes = Vec::new();
    visit(vec![(top.clone(), 0)], |node, st, depth| {
        scopes.push(picture(node, st, depth, now))
    });
    TreeSnapshot { scopes }
}

/// A node's picture for the tree view, taken under its lock.
fn picture(node: &Node, st: &Guarded, depth: usize, now: Instant) -> ScopeSnapshot {
    let life = node.life.load();
    let state = match (node.cancelled.is_set(), life.body()) {
        _ if life.phase() == Phase::Cleaning => ScopeState::CleaningUp,
        (_, Body::Dropped) => ScopeState::Detached,
        (true, _) => ScopeState::Cancelling,
        (false, Body::Running) => ScopeState::Running,
        (false, Body::Done) => ScopeState::Finishing,
    };
    let deadline = st.rare.as_ref().and_then(|r| r.deadline);
    let owned = st.rare.as_ref().and_then(|r| r.owned.as_deref());
    let (cleanups, handlers, not_ready) = owned.map_or((0, 0, 0), |o| o.counts());
    let limit = st
        .rare
        .as_ref()
        .and_then(|r| r.limit.as_deref())
        .map(|l| l.counts());
    ScopeSnapshot {
        id: node.id(),
        depth,
        state,
        linked: node.kind == Kind::Linked,
        shielded: node.kind == Kind::Shielded,
        // `now` was read before the copy began: a deadline set since must
        // not show more time left than it was set for.
        deadline_in: deadline.map(|d| d.at.saturating_duration_since(now).min(d.after)),
        live_tasks: life.tasks(),
        queued_tasks: limit.map_or(0, |(_, queued)| queued),
        limit: limit.map(|(max, _)| max),
        stop_requested: node.is_stop_requested(),
        location: node.location,
        name: node.name().cloned(),
        supervisor: node.supervises(),
        daemons: node.kind == Kind::Daemons,
        pending_cleanups: cleanups,
        cancel_handlers: handlers,
        tasks_not_ready: not_ready,
    }
}

/// A reference to a node reached through a list.
fn listed_ref(node: NonNull<Node>) -> NodeRef {
    // SAFETY: the caller holds the lock of the list that holds `node`, so it
    // is alive (invariant 2); list pointers follow rule "pointers from the
    // box".
    unsafe { NodeRef::clone_raw(node) }
}
