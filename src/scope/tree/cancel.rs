//! The cancel walk: marking a subtree cancelled, dropping the futures of
//! its idle tasks, and waking whoever waits for it.
//!
//! A walk keeps its own to-do list *in the nodes*: a node it marks is
//! pushed on a stack threaded through the nodes' `walk_next` fields (each
//! written under its node's lock), and the stack owns a reference to each
//! node on it. So a walk allocates nothing and never reaches a freed node,
//! while a marked node may still finish and leave the tree before the walk
//! gets to it. Expanding a node, in two critical sections:
//!
//! 1. under its lock: take its task list (the walk's since the marking:
//!    invariant 4), its future's waker, its `cancelled()` waiters and its deadline timer, and mark
//!    each child that is neither shielded nor cancelled already (locking
//!    the child while holding the parent: invariant 5), pushing it on the
//!    stack;
//! 2. with no lock: cancel each of its tasks (an idle one is claimed and
//!    its future dropped right here; a running one is left to its runner);
//!    a long list is shared with idle workers (`parallel.rs`);
//! 3. under its lock again: subtract the dropped tasks from the live count,
//!    keep the first panic a drop raised, and settle: wake the scope future
//!    if the node is finished, or let the node leave the tree if its future
//!    is gone; then wake the waiters.
//!
//! Parents are expanded before their children, so a scope future held by
//! a task of the parent is dropped with that task before the child's
//! waiters are woken: waking it then finds the task complete.

use super::{children, parallel, After, Kind, Node, Phase, State};
use crate::cancelled::{CancelReason, Cause};
use crate::panic::Panic;
use crate::task::{Cancel, TaskList};
use crate::trace::EventKind;
use std::ptr::NonNull;
use std::sync::Arc;

impl Node {
    /// Cancels this scope and its subtree, up to shields (invariant 1);
    /// with `follow_links`, a linked scope also cancels its parent, and on
    /// upward through links (invariant 6). Idempotent. The caller holds a
    /// reference to the node.
    pub(crate) fn cancel(self: &Arc<Self>, reason: CancelReason, follow_links: bool) {
        // Already cancelled: its subtree is, or is being, by the walk that
        // marked it (invariant 1); and that walk climbed the links.
        if self.cancelled.is_set() {
            return;
        }
        if walk(self, reason, None, true, self) && follow_links && self.kind == Kind::Linked {
            self.climb_links(None);
        }
    }

    /// [`cancel`](Node::cancel), with the user's `cause`, which every scope
    /// the cancellation reaches keeps (`Cancelled::cause`).
    pub(crate) fn cancel_because(
        self: &Arc<Self>,
        reason: CancelReason,
        cause: Option<Cause>,
        follow_links: bool,
    ) {
        if self.cancelled.is_set() {
            return;
        }
        if walk(self, reason, cause.as_ref(), true, self)
            && follow_links
            && self.kind == Kind::Linked
        {
            self.climb_links(cause.as_ref());
        }
    }

    /// The climb of a linked scope's cancel (invariant 6): its parent is
    /// cancelled, and on upward while the scopes on the way are linked.
    #[cold]
    fn climb_links(self: &Arc<Self>, cause: Option<&Cause>) {
        let mut node = self;
        while let Some(parent) = &node.parent {
            node = parent;
            if !walk(node, CancelReason::LinkedChild, cause, true, self)
                || node.kind != Kind::Linked
            {
                return;
            }
        }
    }

    /// Cancels this node alone, shields and all (shutdown visits every
    /// node itself). The caller holds a reference to the node.
    pub(crate) fn cancel_alone(self: &Arc<Self>, reason: CancelReason) {
        walk(self, reason, None, false, self);
    }
}

/// Marks `top` with `reason` and, with `descend`, its subtree; then
/// expands every marked node. Returns whether `top` was marked here (false
/// if it was cancelled already, or has left the tree). `origin` is the
/// scope the cancel started at (`top`, or a linked descendant of it), for
/// a recording.
fn walk(
    top: &Arc<Node>,
    reason: CancelReason,
    cause: Option<&Cause>,
    descend: bool,
    origin: &Node,
) -> bool {
    let mut stack = None;
    let mut after = After::default();
    let leaving = {
        let mut st = top.state.lock();
        if st.phase == Phase::Removed || top.cancelled.is_set() {
            return false;
        }
        if st.tasks.is_empty() && (st.first_child.is_none() || !descend) {
            // Nothing to drop and nothing below: the whole cancel is this
            // critical section (an empty scope's, say).
            set_cancelled(top, &mut st, &reason, cause, origin);
            take_waiters(top, &mut st, &mut after);
            top.settle(&mut st, &mut after)
        } else {
            mark(
                Node::as_ptr(top),
                top,
                &mut st,
                &reason,
                cause,
                origin,
                &mut stack,
            );
            None
        }
    };
    if let Some(panic) = after.run() {
        top.pass_panic(panic);
    }
    if let Some(tree_ref) = leaving {
        tree_ref.leave_tree();
    }
    while let Some(node) = stack {
        stack = expand(node, descend, origin);
    }
    true
}

/// Records the node's reason, and the cause that came with the cancel
/// (the node keeps it for its `Cancelled` values). The caller holds the
/// node's lock (`st`).
#[inline]
fn set_cancelled(
    node: &Node,
    st: &mut State,
    reason: &CancelReason,
    cause: Option<&Cause>,
    origin: &Node,
) {
    if let Some(cause) = cause {
        keep_cause(st, cause);
    }
    node.cancelled.set(reason, cause.is_some());
    if node.shared().records() {
        record_cancel(node, reason, origin);
    }
}

/// The rare half of [`set_cancelled`]: out of line, so that a cancel
/// without a cause keeps few registers busy.
#[cold]
#[inline(never)]
fn keep_cause(st: &mut State, cause: &Cause) {
    st.rare().cause = Some(cause.clone());
}

#[cold]
#[inline(never)]
fn record_cancel(node: &Node, reason: &CancelReason, origin: &Node) {
    node.shared().record(|| EventKind::ScopeCancelled {
        scope: node.id(),
        reason: reason.clone(),
        by: origin.id(),
    });
}

/// Moves the wakers of the node's future and `cancelled()` waiters, and
/// its deadline timer, to `after`. The caller holds the node's lock.
fn take_waiters(node: &Node, st: &mut State, after: &mut After) {
    if let Some(waker) = st.waker.take() {
        after.wake(waker);
    }
    if let Some(rare) = st.rare.as_deref_mut() {
        for (_, waker) in std::mem::take(&mut rare.cancel_waiters) {
            after.wake(waker);
        }
        if let Some(deadline) = rare.deadline.take() {
            after.remove_timer(&node.shared().timers, deadline.timer);
        }
    }
}

/// Marks `node` (at `ptr`, by rule A) cancelled, so that its task list is
/// the walk's (invariant 4), and pushes it on the walk's stack, which takes
/// a reference to it. The caller holds `node`'s lock (`st`).
fn mark(
    ptr: NonNull<Node>,
    node: &Node,
    st: &mut State,
    reason: &CancelReason,
    cause: Option<&Cause>,
    origin: &Node,
    stack: &mut Option<NonNull<Node>>,
) {
    // Checked by the loom models too, which build without debug assertions.
    if cfg!(any(debug_assertions, cancel_scope_loom)) {
        assert!(!node.cancelled.is_set(), "a node is marked once");
    }
    set_cancelled(node, st, reason, cause, origin);
    // SAFETY: the node is alive (we hold its lock), `ptr` follows rule A;
    // the count taken goes to the stack, which `expand` takes back.
    std::mem::forget(unsafe { Node::pin(ptr) });
    st.walk_next = stack.replace(ptr);
}

/// Expands a node popped from the walk's stack (steps 1 to 3 of the module
/// docs); returns the rest of the stack.
fn expand(node: NonNull<Node>, descend: bool, origin: &Node) -> Option<NonNull<Node>> {
    // SAFETY: the stack owned a reference to each node on it (`mark`); we
    // take it back.
    let this = unsafe { Arc::from_raw(node.as_ptr()) };
    let mut after = After::default();
    let (tasks, mut stack) = {
        let mut st = this.state.lock();
        let mut stack = st.walk_next.take();
        let tasks = st.tasks.take_all();
        take_waiters(&this, &mut st, &mut after);
        if descend {
            let cause = st.cause();
            // SAFETY: rule P; we hold this node's lock, which guards its
            // child list, and its children are alive (invariant 2).
            for ptr in unsafe { children(st.first_child) } {
                // SAFETY: as above.
                let child = unsafe { ptr.as_ref() };
                if child.kind == Kind::Shielded || child.cancelled.is_set() {
                    continue; // the cancel stops at a shield; or see `cancel`
                }
                let mut child_st = child.state.lock();
                if child.cancelled.is_set() {
                    // Its own cancel marked it while we took its lock: it
                    // is on that walk's stack, and is marked only once.
                    continue;
                }
                let ancestor = CancelReason::Ancestor;
                mark(
                    ptr,
                    child,
                    &mut child_st,
                    &ancestor,
                    cause.as_ref(),
                    origin,
                    &mut stack,
                );
            }
        }
        (tasks, stack)
    };
    let (dropped, mut panics) = cancel_tasks(&this, tasks);
    let leaving = {
        let mut st = this.state.lock();
        // A node may have finished and left the tree after its marking
        // (its running tasks ended): then there is nothing to settle.
        if st.phase == Phase::Open {
            st.live_tasks -= dropped;
            // Futures dropped unfinished: the cancel cut them short.
            st.interrupted |= dropped > 0;
            if let Some(panic) = panics.pop() {
                this.store_panic(&mut st, panic, &mut after);
            }
            this.settle(&mut st, &mut after)
        } else {
            debug_assert_eq!(dropped, 0, "a node with live tasks is open");
            None
        }
    };
    for panic in panics {
        after.drop_panic(panic);
    }
    if let Some(panic) = after.run() {
        this.pass_panic(panic);
    }
    if let Some(tree_ref) = leaving {
        tree_ref.leave_tree();
    }
    stack.take()
}

/// Cancels each task a walk detached: an idle one is claimed and its future
/// dropped here, a running one is left to its runner (which releases it).
/// Returns how many futures were dropped here, and the panics their drops
/// raised.
fn cancel_tasks(node: &Node, tasks: TaskList) -> (usize, Vec<Panic>) {
    let shared = node.shared();
    let mut dropped = 0;
    let mut panics = Vec::new();
    if tasks.is_empty() {
        return (dropped, panics);
    }
    // A recorded run drops here, to record each task.
    if shared.parallel_drop
        && !shared.records()
        && tasks.len() >= parallel::PARALLEL_MIN
        && shared.idle.num_sleeping() > 0
    {
        return parallel::cancel_tasks(shared, tasks);
    }
    let recording = shared.records().then(|| node.id());
    for task in tasks {
        if let Cancel::Dropped(panic) = task.cancel() {
            dropped += 1;
            panics.extend(panic);
            if let Some(scope) = recording {
                let task = task.id().number();
                shared.record(|| EventKind::TaskCancelled { task, scope });
            }
        }
    }
    (dropped, panics)
}
