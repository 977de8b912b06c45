//! The cancel walk: marking a subtree cancelled, dropping the futures of
//! its idle tasks, and waking whoever waits for it.
//!
//! A walk keeps its to-do list *in the nodes*: a node it marks is pushed
//! on a stack threaded through the nodes' `walk_next` fields (rule "one
//! claim, one walk": the claim that marked the node gives the walk that
//! field), and the stack owns a count on each node on it. So a walk
//! allocates nothing and never reaches a freed node, while a marked node
//! may still finish and leave the tree before the walk gets to it.
//!
//! Each node costs the walk one critical section:
//!
//! 1. under its lock: take its task list (the walk's since the marking:
//!    invariant 4), its future's waker, its `cancelled()` waiters and its
//!    deadline's timer; mark each published child that is neither
//!    shielded nor marked already, by claiming its cancel cell (no lock of
//!    the child's: the claim is what makes the list the walk's), and push
//!    it on the stack;
//! 2. with no lock: run the cancel handlers step 1 claimed, if any (rule
//!    H in `handlers.rs`); then cancel each of its tasks (an idle one is
//!    claimed and its future dropped right here; a running one is left to
//!    its runner),
//!    a long list shared with idle workers (`parallel.rs`); count the
//!    dropped ones gone from the life word, and settle the node if that
//!    finished it (invariant 8); wake the waiters.
//!
//! Parents are expanded before their children, so a scope future held by
//! a task of the parent is dropped with that task before the child's
//! waiters are woken: waking it then finds the task complete. A cancel of
//! a scope with no task and no child (an empty scope's) is one critical
//! section, and it wakes the scope future's waker itself, with nothing
//! left for after the lock but that.

use super::life::{Body, Change, Phase, TaskExit};
use super::tasks::Settled;
use super::{
    children::children, handlers, parallel, AfterUnlock, Guarded, Kind, Links, Node, NodeRef,
};
use crate::cancelled::{CancelReason, Cause};
use crate::panic::{keep_first, Panic};
use crate::task::{Cancel, TaskList};
use crate::trace::EventKind;
use std::ptr::NonNull;
use std::task::Waker;

/// Whether a walk marks the subtree or the node alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// The node and its published descendants, up to shields.
    Subtree,
    /// The node only (shutdown visits every node itself).
    Alone,
}

/// Marks `top` with `reason` and, with [`Reach::Subtree`], its published
/// subtree; then expands every marked node. Returns whether `top` was
/// marked here (false if it was cancelled already, or has left the tree).
/// `origin` is the scope the cancel started at (`top`, or a linked
/// descendant of it), for a recording.
fn walk(
    top: &NodeRef,
    reason: &CancelReason,
    cause: Option<&Cause>,
    reach: Reach,
    origin: &Node,
) -> bool {
    let mut st = top.state.lock();
    if top.life.load().phase() == Phase::Removed {
        return false;
    }
    if !top.cancelled.claim(reason, cause) {
        return false;
    }
    marked(top, &mut st, reason, cause, origin);
    let nothing_below = top.life.load().children() == 0 || reach == Reach::Alone;
    if st.tasks.is_empty() && nothing_below && st.rare.is_none() {
        // The fast path of an empty scope: its future's waker is all there
        // is to take, and it is woken here.
        let waker = st.waker.take();
        drop(st);
        if let Some(waker) = waker {
            crate::panic::wake_contained(waker);
        }
        return true;
    }
    expand_rest(top, st, reach, origin, cause);
    true
}

/// Expands `top`, which this thread marked and published meanwhile, and
/// its subtree (`cancel_unpublished`).
fn walk_marked(top: &NodeRef, reach: Reach, origin: &Node, cause: Option<&Cause>) {
    let st = top.state.lock();
    if top.life.load().phase() != Phase::Removed {
        expand_rest(top, st, reach, origin, cause);
    }
}

/// Expands `top`, marked, whose lock `st` is held, then every node the walk
/// marks below it.
fn expand_rest(
    top: &NodeRef,
    mut st: crate::loom::sync::MutexGuard<'_, Guarded>,
    reach: Reach,
    origin: &Node,
    cause: Option<&Cause>,
) {
    let mut stack = None;
    let mut after = None;
    let taken = take_for_walk(top, &mut st, reach, origin, cause, &mut stack, &mut after);
    drop(st);
    cut_short(top.as_ptr(), top, taken, &mut after);
    while let Some(node) = stack {
        // SAFETY: the stack owned a count on each node on it (`push`); we
        // take it back.
        let this = unsafe { NodeRef::from_raw(node) };
        // SAFETY: rule "one claim, one walk": the walk that marked the node
        // owns its `walk_next`.
        stack = this.walk_next.with_mut(|next| unsafe { (*next).take() });
        expand(node, &this, reach, origin, cause, &mut stack);
    }
}

/// What the walk records in a node it marked (the caller holds its lock):
/// the cause that came with the cancel, and the event on a recording
/// runtime.
fn marked(
    node: &Node,
    st: &mut Guarded,
    reason: &CancelReason,
    cause: Option<&Cause>,
    origin: &Node,
) {
    if let Some(cause) = cause {
        keep_cause(st, cause);
    }
    if node.shared().records() {
        record_cancel(node, reason, origin);
    }
}

/// The rare half of [`marked`]: out of line, so that a cancel without a
/// cause keeps few registers busy.
#[cold]
#[inline(never)]
fn keep_cause(st: &mut Guarded, cause: &Cause) {
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

/// Expands a marked node (steps 1 and 2 of the module docs): `this` is the
/// walk's reference to the node at `ptr` (rule "pointers from the box").
/// The top of the walk is marked by the caller; the others were marked by
/// the walk when their parent was expanded, and get their cause here.
fn expand(
    ptr: NonNull<Node>,
    this: &NodeRef,
    reach: Reach,
    origin: &Node,
    cause: Option<&Cause>,
    stack: &mut Option<NonNull<Node>>,
) {
    let mut after = None;
    let taken = {
        let mut st = this.state.lock();
        // A node marked below the top gets the cause now (the top got it
        // with its mark): a reader that saw the mark's cause bit before
        // this finds no cause yet, and reads the reason alone.
        if let Some(cause) = cause {
            if st.rare.as_ref().map_or(true, |r| r.cause.is_none()) {
                keep_cause(&mut st, cause);
            }
        }
        if this.life.load().phase() == Phase::Removed {
            // Finished and retired after its mark (its running tasks
            // ended): retiring dropped its list; nothing is left to do
            // but its cancel handlers, which the mark owes a run.
            if st.rare.is_some() {
                return handlers_of_retired(this, st);
            }
            return;
        }
        take_for_walk(this, &mut st, reach, origin, cause, stack, &mut after)
    };
    cut_short(ptr, this, taken, &mut after);
}

/// Step 1 of the module docs, under the node's lock: takes the node's task
/// list and its future's waker (returned, so that the common node needs
/// nothing else after its lock) and the rest it holds (into `after`, made
/// only then), and marks and pushes its children.
fn take_for_walk(
    this: &NodeRef,
    st: &mut Guarded,
    reach: Reach,
    origin: &Node,
    cause: Option<&Cause>,
    stack: &mut Option<NonNull<Node>>,
    after: &mut Option<AfterUnlock>,
) -> (TaskList, Option<Waker>) {
    let mut tasks = st.tasks.take_all();
    let waker = st.waker.take();
    if st.rare.is_some() {
        take_rare_waiters(
            this,
            st,
            after.get_or_insert_with(AfterUnlock::default),
            &mut tasks,
        );
    }
    if reach == Reach::Subtree {
        // SAFETY: rule "siblings under the parent's lock": we hold this
        // node's lock, which guards its child list, and its children are
        // alive (invariant 2).
        for child_ptr in unsafe { children(st.first_child) } {
            // SAFETY: as above.
            let child = unsafe { child_ptr.as_ref() };
            // The cancel stops at a shield; a child marked already is its
            // own walk's (rule "one claim, one walk").
            if child.kind == Kind::Shielded
                || !child.cancelled.claim(&CancelReason::Ancestor, cause)
            {
                continue;
            }
            if child.shared().records() {
                record_cancel(child, &CancelReason::Ancestor, origin);
            }
            push(child_ptr, stack);
        }
    }
    (tasks, waker)
}

/// Step 2 of the module docs, with no lock: wakes the node's future,
/// cancels its tasks, counts the dropped ones gone, and settles the node
/// if that finished it. `after` holds what a node with a rare part left.
fn cut_short(
    ptr: NonNull<Node>,
    this: &NodeRef,
    (tasks, waker): (TaskList, Option<Waker>),
    after: &mut Option<AfterUnlock>,
) {
    // `plain`: the node had no rare part when expanded. Nothing registers
    // on a cancelled node, so nothing is then left under its lock for a
    // retire to hand on, and its retire needs no lock.
    let plain = after.is_none();
    if !plain {
        run_handlers(after);
    }
    if let Some(waker) = waker {
        wake_or_drop(this, waker);
    }
    let (dropped, panic) = cancel_tasks(this, tasks);
    // Futures dropped unfinished: the cancel cut them short. A panic of
    // their drops is stored before they count as gone, so that the scope
    // cannot end without it.
    let mut settled = Settled::Done;
    if let Some(panic) = panic {
        let mut st = this.state.lock();
        this.store_panic_if_open(
            &mut st,
            panic,
            after.get_or_insert_with(AfterUnlock::default),
        );
        if dropped > 0 {
            settled = match this.life.tasks_ended(dropped, TaskExit::CutShort) {
                Change::Open => Settled::Done,
                Change::Finished => this.settle(&mut st, after),
                Change::Drained => Settled::Drained(this.clone()),
            };
        }
    } else if dropped > 0 {
        settled = match this.life.tasks_ended(dropped, TaskExit::CutShort) {
            Change::Open => Settled::Done,
            // Its future is gone and its expansion took everything: the
            // life word alone retires it.
            Change::Finished if plain && this.life.load().body() == Body::Dropped => {
                if this.retire_life() {
                    Settled::Leave
                } else {
                    Settled::Done
                }
            }
            Change::Finished => this.settle(&mut this.state.lock(), after),
            Change::Drained => Settled::Drained(this.clone()),
        };
    }
    if let Settled::Wake(waker) = settled {
        crate::panic::wake_contained(waker);
        settled = Settled::Done;
    }
    if let Some(after) = after.take() {
        if let Some(panic) = after.run() {
            this.pass_panic(panic);
        }
    }
    match settled {
        // SAFETY: the future left its count behind; retiring hands it to
        // us.
        Settled::Leave => Node::leave_tree(unsafe { NodeRef::from_raw(ptr) }),
        Settled::Drained(node) => node.drained(),
        Settled::Done | Settled::Wake(_) => {}
    }
}

/// The cancel handlers of a node retired between its mark and its
/// expansion (a cancel that landed as the scope ended): run now, after
/// the scope's end, since nothing holds a retired scope.
#[cold]
fn handlers_of_retired(this: &NodeRef, mut st: crate::loom::sync::MutexGuard<'_, Guarded>) {
    let mut after = AfterUnlock::default();
    handlers::claim(this, &mut st, &mut after);
    drop(st);
    if let Some(claimed) = after.take_handlers() {
        claimed.run();
    }
    if let Some(panic) = after.run() {
        this.pass_panic(panic);
    }
}

/// Step 2's first act on a node that had a rare part: the cancel handlers
/// step 1 claimed (`handlers.rs`), run before the tasks are dropped.
#[cold]
fn run_handlers(after: &mut Option<AfterUnlock>) {
    if let Some(claimed) = after.as_mut().and_then(AfterUnlock::take_handlers) {
        claimed.run();
    }
}

/// The scope future's waker, taken by a walk: woken, so that the future
/// drops its body at the cancel; or, if that future was dropped already,
/// only dropped (its panic, to the scope).
fn wake_or_drop(node: &NodeRef, waker: Waker) {
    if node.life.load().body() == Body::Dropped {
        if let Some(panic) = crate::panic::drop_catching(waker) {
            node.pass_panic(panic);
        }
    } else {
        crate::panic::wake_contained(waker);
    }
}

/// Pushes a child the walk marked on its stack, with a count of its own
/// (the child is alive: its parent's lock is held).
fn push(child: NonNull<Node>, stack: &mut Option<NonNull<Node>>) {
    // SAFETY: the child is alive (its parent's list holds it, and we hold
    // the parent's lock), and list pointers follow rule "pointers from the
    // box"; the count goes to the stack, which `walk` takes back.
    let counted = unsafe { NodeRef::clone_raw(child) }.into_raw();
    // SAFETY: rule "one claim, one walk": our claim marked the child.
    unsafe { counted.as_ref() }
        .walk_next
        .with_mut(|next| unsafe { *next = stack.replace(counted) });
}

/// Moves the wakers of the node's `cancelled()` waiters, and its deadline
/// timer and grace timers, to `after`, claims its cancel handlers
/// (`handlers.rs`), and moves a limited scope's queued tasks onto `tasks`,
/// the list the walk cancels (`limit.rs`). The caller holds the node's
/// lock.
fn take_rare_waiters(
    node: &NodeRef,
    st: &mut Guarded,
    after: &mut AfterUnlock,
    tasks: &mut TaskList,
) {
    handlers::claim(node, st, after);
    if let Some(rare) = st.rare.as_deref_mut() {
        for (_, waker) in std::mem::take(&mut rare.cancel_waiters) {
            after.wake(waker);
        }
        if let Some(deadline) = rare.deadline.take() {
            after.remove_timer(&node.shared().timers, deadline.timer);
        }
        rare.take_limit_for_walk(tasks, after);
        rare.take_grace_for_walk(&node.shared().timers, after);
    }
}

/// Cancels each task a walk detached: an idle one is claimed and its future
/// dropped here, a running one is left to its runner (which releases it).
/// Returns how many futures were dropped here, and the first panic their
/// drops raised (the others are dropped).
fn cancel_tasks(node: &Node, tasks: TaskList) -> (usize, Option<Panic>) {
    let shared = node.shared();
    let mut dropped = 0;
    let mut first = None;
    if tasks.is_empty() {
        return (dropped, first);
    }
    // A recorded run drops here, to record each task.
    if shared.parallel_drop
        && !shared.records()
        && tasks.len() >= parallel::PARALLEL_MIN
        && shared.idle.num_sleeping() > 0
    {
        let (dropped, panics) = parallel::cancel_tasks(shared, tasks);
        for panic in panics {
            keep_first(&mut first, panic);
        }
        return (dropped, first);
    }
    let recording = shared.records().then(|| node.id());
    for task in tasks {
        if let Cancel::Dropped(panic) = task.cancel() {
            dropped += 1;
            if let Some(panic) = panic {
                keep_first(&mut first, panic);
            }
            if let Some(scope) = recording {
                let task = task.id().number();
                shared.record(|| EventKind::TaskCancelled { task, scope });
            }
        }
    }
    (dropped, first)
}

impl Node {
    /// Keeps a panic of a dropped future in this scope if it is still open
    /// (under its lock), else hands it to `after` to drop.
    fn store_panic_if_open(&self, st: &mut Guarded, panic: Panic, after: &mut AfterUnlock) {
        if self.life.load().phase() != Phase::Removed {
            self.store_panic(st, panic, after);
        } else {
            after.drop_panic(panic);
        }
    }
}

impl NodeRef {
    /// Cancels this scope and its subtree, up to shields (invariant 1);
    /// with [`Links::Follow`], a linked scope also cancels its parent, and
    /// on upward through links (invariant 6). Idempotent. The caller holds
    /// a reference to the node.
    #[inline]
    pub(crate) fn cancel(&self, reason: CancelReason, links: Links) {
        self.cancel_because(reason, None, links);
    }

    /// [`cancel`](NodeRef::cancel), with the user's `cause`, which every
    /// scope the cancellation reaches keeps (`Cancelled::cause`).
    #[inline]
    pub(crate) fn cancel_because(&self, reason: CancelReason, cause: Option<Cause>, links: Links) {
        // Already cancelled: its subtree is, or is being, by the walk that
        // marked it (invariant 1); and that walk climbed the links.
        if !self.cancelled.is_set() {
            self.cancel_unmarked(reason, cause, links);
        }
    }

    /// The cancel of a node that was not marked when looked at.
    fn cancel_unmarked(&self, reason: CancelReason, cause: Option<Cause>, links: Links) {
        let marked = if self.cancelled.is_unpublished_and_clear() {
            // An unpublished scope whose ancestor was cancelled first takes
            // that cancel as its first (invariant 1): nothing of it is
            // below.
            if self.is_cancelled() {
                self.adopt_ancestors_cancel();
                return;
            }
            self.cancel_unpublished(&reason, cause.as_ref())
        } else {
            walk(self, &reason, cause.as_ref(), Reach::Subtree, self)
        };
        if marked && links == Links::Follow && self.kind == Kind::Linked {
            self.climb_links(cause.as_ref());
        }
    }

    /// The cancel of an unpublished scope: it has no task, no child and
    /// nothing waiting (invariant 2), so its mark is all there is, and no
    /// lock is needed, unless another thread published it meanwhile (then
    /// the mark is expanded as any walk's). The claim and the look at the
    /// phase are read-modify-writes, as are a publication and the look at
    /// the mark that a spawn takes after it: each reads the latest value
    /// of its word and synchronizes with the one before it, so either this
    /// sees the scope published, or the spawn sees the mark and refuses.
    /// Returns whether this call marked the scope.
    fn cancel_unpublished(&self, reason: &CancelReason, cause: Option<&Cause>) -> bool {
        if cause.is_some() {
            // A cause is kept under the lock: the general walk.
            return walk(self, reason, cause, Reach::Subtree, self);
        }
        if !self.cancelled.claim(reason, None) {
            return false;
        }
        if self.shared().records() {
            record_cancel(self, reason, self);
        }
        match self.life.load_latest().phase() {
            Phase::Unpublished | Phase::Removed => {}
            Phase::Published | Phase::Cleaning => walk_marked(self, Reach::Subtree, self, None),
        }
        true
    }

    /// The climb of a linked scope's cancel (invariant 6): its parent is
    /// cancelled, and on upward while the scopes on the way are linked.
    #[cold]
    fn climb_links(&self, cause: Option<&Cause>) {
        let mut node = self;
        while let Some(parent) = &node.parent {
            node = parent;
            if !walk(
                node,
                &CancelReason::LinkedChild,
                cause,
                Reach::Subtree,
                self,
            ) || node.kind != Kind::Linked
            {
                return;
            }
        }
    }

    /// Cancels this node alone, shields and all (shutdown visits every
    /// node itself). The caller holds a reference to the node.
    pub(crate) fn cancel_alone(&self, reason: CancelReason) {
        walk(self, &reason, None, Reach::Alone, self);
    }
}
