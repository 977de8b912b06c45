//! The scope tree: every live scope of one runtime, as nodes in a
//! [`Slab`], behind one lock (`Shared::tree`).
//!
//! A node records its parent and children, its tasks, how it is attached
//! ([`Kind`]: plain, linked or shielded), its deadline, and the wakers of
//! futures waiting for it to be cancelled. Cancellation is a walk over this
//! tree; deadlines and shields are properties of nodes that the walk reads.
//!
//! # Invariants
//!
//! 1. **A cancelled node's descendants are cancelled, up to shields.** The
//!    cancel walk marks a whole subtree in one critical section and stops
//!    only at shielded nodes; a node created under a cancelled parent
//!    starts cancelled unless it is shielded. So a walk that meets a
//!    cancelled node can skip its subtree.
//! 2. **A node outlives its tasks and children.** It leaves the slab only
//!    once it is *finished*: its body has ended (or its future was dropped),
//!    it has no live task and no child node. So a task or child always
//!    finds its node, and a node's `parent` key always names a live node.
//! 3. **Nothing runs user code under the lock.** No future is polled or
//!    dropped and no waker is called or dropped while the tree lock is held:
//!    methods that would do so collect the work into a [`CancelBatch`] or a
//!    [`Deferred`], which the caller runs after unlocking. (The timer map's
//!    lock is never taken while the tree lock is held either.)
//! 4. **A cancelled node takes no new tasks, and lists none.** The cancel
//!    walk unlinks every task of the node from the tree's task slab into
//!    its batch. So a task finishing afterwards has no entry to remove (its
//!    old slot may hold another node's task by then); it only decrements
//!    `live_tasks`.
//! 5. **Ids carry a generation.** Slab keys are reused; a [`ScopeId`] whose
//!    generation does not match the node in its slot names a scope that has
//!    ended, and every lookup treats it as gone.
//! 6. **Linked cancellation climbs only through links.** Cancelling a
//!    linked node cancels its parent, and on upward while the nodes are
//!    linked; cancelling a parent never consults links.
//! 7. **A deadline is a timer plus a check.** The node stores its deadline
//!    and the key of a timer whose waker asks the tree to cancel the node;
//!    the tree cancels only if the node's *current* deadline has passed, so
//!    a timer left over from a moved deadline does nothing. The timer is
//!    registered before the deadline is recorded, so it may fire first and
//!    find nothing; recording a deadline therefore checks it against the
//!    clock under the lock and cancels at once if it is due.

use super::snapshot::{ScopeSnapshot, ScopeState, TreeSnapshot};
use super::ScopeInner;
use crate::cancelled::{CancelReason, Cancelled};
use crate::runtime::Shared;
use crate::task::{Cancel, Panic, TaskRef};
use crate::time::timers::TimerKey;
use crate::wake_list::WakeList;
use slab::Slab;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// A scope's identity: its slab key and the generation it was created in
/// (invariant 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScopeId {
    key: usize,
    generation: u64,
}

/// How a scope is attached to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Cancellation flows down from the parent only.
    Plain,
    /// Cancellation also flows up: cancelling this scope cancels the parent.
    Linked,
    /// Cancellation of ancestors does not reach this scope or below it.
    Shielded,
}

/// Where a scope's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// The scope future is alive and its body has not ended.
    Running,
    /// The body ended; the scope future waits for tasks and children.
    Done,
    /// The scope future was dropped before it finished; the last task or
    /// child to end removes the node.
    Dropped,
}

/// The tree itself.
pub(crate) struct Tree {
    nodes: Slab<Node>,
    /// Every task that can still be cancelled, each in its node's list.
    /// One slab for the whole runtime: a scope allocates nothing for its
    /// tasks, and a cancel frees no per-scope buffer.
    tasks: Slab<TaskEntry>,
    /// Cleared buffers for the next cancel batch, so a large cancel does
    /// not allocate, nor free a large block (which makes glibc consolidate
    /// the chunks of the tasks just freed).
    spare: Spare,
    next_generation: u64,
    /// Tasks spawned and not yet finished, over all nodes.
    live_tasks: usize,
    /// The runtime shut down (`cancel_all`): every node created from now
    /// on is born cancelled, shields included, so takes no task.
    shut_down: bool,
}

/// A cancel batch's two buffers, kept empty between batches.
#[derive(Default)]
struct Spare {
    tasks: Vec<TaskRef>,
    groups: Vec<(ScopeId, usize)>,
}

/// The end of a list of nodes.
const NO_NODE: usize = usize::MAX;

/// The end of a node's task list.
const NIL: u32 = u32::MAX;

/// A task in the tree's slab, linked into its node's list. `u32` links
/// keep an entry at 24 bytes.
struct TaskEntry {
    task: TaskRef,
    prev: u32,
    next: u32,
}

struct Node {
    generation: u64,
    parent: Option<usize>,
    /// The children, as a list through their `prev` and `next` sibling
    /// keys (`NO_NODE` ends it): a scope allocates nothing for them.
    first_child: usize,
    prev_sibling: usize,
    next_sibling: usize,
    /// The head of this node's list in `Tree::tasks`, or `NIL`: the tasks
    /// that can still be cancelled (invariant 4).
    first_task: u32,
    /// Tasks spawned and not yet finished; after a cancel, these are no
    /// longer listed.
    live_tasks: usize,
    kind: Kind,
    body: Body,
    cancelled: bool,
    /// The handle state shared with `Scope`s; carries the cancel reason.
    inner: Arc<ScopeInner>,
    /// The scope future's waker, woken on cancel and when it may finish.
    waker: Option<Waker>,
    /// What few scopes use, kept out of line so that a node stays small:
    /// the cancel walk reads thousands of nodes, and each is moved into
    /// the slab and out again.
    rare: Option<Box<Rare>>,
}

/// The parts of a node that most scopes never use.
#[derive(Default)]
struct Rare {
    /// Futures waiting for this scope to be cancelled (`Scope::cancelled`).
    cancel_waiters: Slab<Waker>,
    deadline: Option<Deadline>,
    /// The first panic caught in this scope, resumed by the scope future.
    panic: Option<Panic>,
}

/// A node's deadline (invariant 7).
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    after: Duration,
    timer: TimerKey,
}

/// What a scope future learns when its node is removed.
pub(crate) struct Outcome {
    pub(crate) cancelled: Option<Cancelled>,
    pub(crate) panic: Option<Panic>,
}

/// What [`Tree::poll_cancelled`] found.
pub(crate) enum CancelWait {
    Cancelled(Cancelled),
    /// Registered under this key.
    Waiting(usize),
    /// The scope ended without being cancelled: it never will be.
    Never,
}

/// Work a tree method could not do under the lock (invariant 3). Small,
/// and free to build: most tree calls leave it empty or wake one waker.
#[derive(Default)]
pub(crate) struct Deferred {
    wakers: WakeList,
    later: Vec<Later>,
}

/// A timer to remove or a value to drop once the lock is released.
enum Later {
    Timer(TimerKey),
    Waker(Waker),
    Panic(Panic),
}

/// Tasks a cancel walk took out of the tree, grouped by node, plus the
/// deferred work of the walk.
#[derive(Default)]
pub(crate) struct CancelBatch {
    /// The tasks of every cancelled node, node after node.
    tasks: Vec<TaskRef>,
    /// Each node, and how many of `tasks` are its own, in the same order.
    groups: Vec<(ScopeId, usize)>,
    deferred: Deferred,
}

/// Whether a cancel walk stops at shields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shields {
    Respect,
    /// Shutdown: nothing survives.
    Ignore,
}

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree {
            nodes: Slab::new(),
            tasks: Slab::new(),
            spare: Spare::default(),
            next_generation: 0,
            live_tasks: 0,
            shut_down: false,
        }
    }

    /// Tasks spawned into this runtime and not yet finished.
    pub(crate) fn live_tasks(&self) -> usize {
        self.live_tasks
    }

    /// Live scope nodes.
    pub(crate) fn live_scopes(&self) -> usize {
        self.nodes.len()
    }

    fn get(&self, id: ScopeId) -> Option<&Node> {
        self.nodes
            .get(id.key)
            .filter(|n| n.generation == id.generation)
    }

    fn get_mut(&mut self, id: ScopeId) -> Option<&mut Node> {
        self.nodes
            .get_mut(id.key)
            .filter(|n| n.generation == id.generation)
    }

    /// Adds a node under `parent` (a root if `None` or if the parent is
    /// gone). `make` builds the handle state once the id is known.
    pub(crate) fn insert(
        &mut self,
        parent: Option<ScopeId>,
        kind: Kind,
        make: impl FnOnce(ScopeId) -> Arc<ScopeInner>,
    ) -> Arc<ScopeInner> {
        let generation = self.next_generation;
        self.next_generation += 1;
        let parent = parent.filter(|p| self.get(*p).is_some());
        let entry = self.nodes.vacant_entry();
        let id = ScopeId {
            key: entry.key(),
            generation,
        };
        let inner = make(id);
        let mut cancelled = self.shut_down;
        if cancelled {
            inner.cancelled.set(&CancelReason::Shutdown);
        }
        let mut next_sibling = NO_NODE;
        if let Some(p) = parent {
            let parent_node = &mut self.nodes[p.key];
            next_sibling = std::mem::replace(&mut parent_node.first_child, id.key);
            // Invariant 1: a child of a cancelled node starts cancelled.
            if parent_node.cancelled && kind != Kind::Shielded && !cancelled {
                cancelled = true;
                inner.cancelled.set(&CancelReason::Ancestor);
            }
            if next_sibling != NO_NODE {
                self.nodes[next_sibling].prev_sibling = id.key;
            }
        }
        self.nodes.insert(Node {
            generation,
            parent: parent.map(|p| p.key),
            first_child: NO_NODE,
            prev_sibling: NO_NODE,
            next_sibling,
            first_task: NIL,
            live_tasks: 0,
            kind,
            body: Body::Running,
            cancelled,
            inner: inner.clone(),
            waker: None,
            rare: None,
        });
        inner
    }

    /// Registers a task in a node; returns its slot, or why it is refused
    /// (invariant 4).
    pub(crate) fn add_task(&mut self, id: ScopeId, task: TaskRef) -> Result<usize, Cancelled> {
        let slot = self.tasks.vacant_key();
        let link = u32::try_from(slot)
            .ok()
            .filter(|&link| link != NIL)
            .expect("fewer than 2^32 - 1 live tasks");
        let node = self
            .nodes
            .get_mut(id.key)
            .filter(|n| n.generation == id.generation)
            .ok_or(Cancelled::new(CancelReason::ScopeEnded))?;
        if node.cancelled {
            return Err(node.inner.cancel_value());
        }
        node.live_tasks += 1;
        let head = std::mem::replace(&mut node.first_task, link);
        if head != NIL {
            self.tasks[head as usize].prev = link;
        }
        self.tasks.insert(TaskEntry {
            task,
            prev: NIL,
            next: head,
        });
        self.live_tasks += 1;
        Ok(slot)
    }

    /// A runner finished a task of `id` (the task called `release`).
    /// Returns the tree's reference to the task, for the caller to drop
    /// after the lock: one atomic step less while others wait for it.
    pub(crate) fn release_task(
        &mut self,
        id: ScopeId,
        slot: usize,
        panic: Option<Panic>,
        batch: &mut CancelBatch,
    ) -> Option<TaskRef> {
        let node = self
            .get_mut(id)
            .expect("invariant 2: a task's node outlives it");
        node.live_tasks -= 1;
        // Invariant 4: a cancelled node lists no task, and `slot` may be
        // another's by now.
        let entry = (!node.cancelled).then(|| self.tasks.remove(slot));
        if let Some(entry) = &entry {
            self.unlink(id.key, entry);
        }
        self.live_tasks -= 1;
        if let Some(panic) = panic {
            self.record_panic(id, panic, batch);
        }
        self.settle(id.key, &mut batch.deferred);
        entry.map(|e| e.task)
    }

    /// Closes the gap a removed entry of node `key` left in its list.
    fn unlink(&mut self, key: usize, entry: &TaskEntry) {
        match entry.prev {
            NIL => self.nodes[key].first_task = entry.next,
            prev => self.tasks[prev as usize].next = entry.next,
        }
        if entry.next != NIL {
            self.tasks[entry.next as usize].prev = entry.prev;
        }
    }

    /// Stores the first panic of a scope and cancels it, so siblings stop.
    pub(crate) fn record_panic(&mut self, id: ScopeId, panic: Panic, batch: &mut CancelBatch) {
        let Some(node) = self.get_mut(id) else {
            batch.deferred.drop_later(Later::Panic(panic));
            return;
        };
        let rare = node.rare();
        if rare.panic.is_none() {
            rare.panic = Some(panic);
        } else {
            batch.deferred.drop_later(Later::Panic(panic));
        }
        self.cancel(id, CancelReason::Panicked, false, Shields::Respect, batch);
    }

    /// Cancels `id`'s subtree, and first climbs linked ancestors when
    /// `follow_links` (invariant 6). Iterative and stackless: the walk
    /// moves through child, sibling and parent keys, so neither depth nor
    /// width costs memory. Idempotent.
    pub(crate) fn cancel(
        &mut self,
        id: ScopeId,
        reason: CancelReason,
        follow_links: bool,
        shields: Shields,
        batch: &mut CancelBatch,
    ) {
        let Some(node) = self.get(id) else { return };
        if node.cancelled && shields == Shields::Respect {
            return; // Invariant 1: its subtree is cancelled already.
        }
        node.inner.cancelled.set(&reason);
        // Climb the links; record the reason on each ancestor reached.
        let mut top = id.key;
        if follow_links {
            loop {
                let node = &self.nodes[top];
                let Some(parent) = node.parent.filter(|_| node.kind == Kind::Linked) else {
                    break;
                };
                if self.nodes[parent].cancelled {
                    break;
                }
                let parent_inner = &self.nodes[parent].inner;
                parent_inner.cancelled.set(&CancelReason::LinkedChild);
                top = parent;
            }
        }
        // Walk down, depth first. Nodes on the climbed path already hold
        // their reason; `set` keeps it, and every other node gets
        // `Ancestor`.
        let mut key = top;
        'visit: loop {
            let node = &mut self.nodes[key];
            let descend =
                if key != top && shields == Shields::Respect && node.kind == Kind::Shielded {
                    false // The cancel stops at a shield.
                } else if !node.cancelled {
                    node.cancelled = true;
                    node.inner.cancelled.set(&CancelReason::Ancestor);
                    self.take_node_work(key, batch);
                    true
                } else {
                    // Invariant 1: its subtree is cancelled already (unless
                    // shields are ignored: shielded nodes below may not be).
                    shields == Shields::Ignore
                };
            let child = self.nodes[key].first_child;
            if descend && child != NO_NODE {
                key = child;
                continue;
            }
            // `key`'s subtree is done: on to the next sibling, climbing
            // while there is none, until back at the top.
            while key != top {
                let node = &self.nodes[key];
                if node.next_sibling != NO_NODE {
                    key = node.next_sibling;
                    continue 'visit;
                }
                key = node.parent.expect("a node below the top has a parent");
            }
            break;
        }
    }

    /// Moves a newly cancelled node's wakers, timer and tasks into `batch`.
    fn take_node_work(&mut self, key: usize, batch: &mut CancelBatch) {
        let node = &mut self.nodes[key];
        let deferred = &mut batch.deferred;
        if let Some(waker) = node.waker.take() {
            deferred.wakers.push(waker);
        }
        if let Some(rare) = node.rare.as_deref_mut() {
            let waiters = std::mem::take(&mut rare.cancel_waiters);
            deferred.wakers.extend(waiters.into_iter().map(|(_, w)| w));
            if let Some(deadline) = rare.deadline.take() {
                deferred.drop_later(Later::Timer(deadline.timer));
            }
        }
        let mut link = std::mem::replace(&mut node.first_task, NIL);
        if link == NIL {
            return;
        }
        let id = ScopeId {
            key,
            generation: node.generation,
        };
        if batch.tasks.capacity() == 0 {
            batch.tasks = std::mem::take(&mut self.spare.tasks);
            batch.groups = std::mem::take(&mut self.spare.groups);
        }
        let before = batch.tasks.len();
        while link != NIL {
            let entry = self.tasks.remove(link as usize);
            batch.tasks.push(entry.task);
            link = entry.next;
        }
        batch.groups.push((id, batch.tasks.len() - before));
    }

    /// Cancels every node, shields included, and every node created from
    /// now on (shutdown).
    pub(crate) fn cancel_all(&mut self, reason: CancelReason, batch: &mut CancelBatch) {
        self.shut_down = true;
        let roots: Vec<ScopeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.parent.is_none())
            .map(|(key, n)| ScopeId {
                key,
                generation: n.generation,
            })
            .collect();
        for root in roots {
            self.cancel(root, reason.clone(), false, Shields::Ignore, batch);
        }
    }

    /// Sets (or moves) the deadline of `id` to `at`, served by `timer`,
    /// and cancels `id` at once if `at` is not after `now`, read under
    /// this lock (invariant 7). The timer no longer needed (the old one,
    /// or the new one if the scope is over or cancelled) goes to `batch`.
    ///
    /// The timer was registered before this call and may have fired
    /// already, finding no deadline here: then its clock read, and so
    /// `now`, is past `at`, and the check below does its cancel.
    pub(crate) fn set_deadline(
        &mut self,
        id: ScopeId,
        deadline: (Instant, Duration),
        timer: TimerKey,
        now: Instant,
        batch: &mut CancelBatch,
    ) {
        let (at, after) = deadline;
        match self.get_mut(id) {
            Some(node) if !node.cancelled => {
                let old = node.rare().deadline.replace(Deadline { at, after, timer });
                if let Some(old) = old {
                    batch.deferred.drop_later(Later::Timer(old.timer));
                }
                if at <= now {
                    let reason = CancelReason::Deadline { after };
                    self.cancel(id, reason, true, Shields::Respect, batch);
                }
            }
            _ => batch.deferred.drop_later(Later::Timer(timer)),
        }
    }

    /// The deadline of `id`, if it has one.
    pub(crate) fn deadline(&self, id: ScopeId) -> Option<Instant> {
        self.get(id).and_then(|n| n.deadline()).map(|d| d.at)
    }

    /// A deadline timer of `id` fired at `now` (invariant 7).
    pub(crate) fn deadline_passed(&mut self, id: ScopeId, now: Instant, batch: &mut CancelBatch) {
        let Some(node) = self.get_mut(id) else { return };
        let Some(deadline) = node.deadline().filter(|d| d.at <= now) else {
            return;
        };
        let reason = CancelReason::Deadline {
            after: deadline.after,
        };
        self.cancel(id, reason, true, Shields::Respect, batch);
    }

    /// For `Scope::cancelled()`: the reason if cancelled, else registers
    /// `waker` (reusing `key` if still ours).
    pub(crate) fn poll_cancelled(
        &mut self,
        id: ScopeId,
        key: Option<usize>,
        waker: &Waker,
        deferred: &mut Deferred,
    ) -> CancelWait {
        let Some(node) = self.get_mut(id) else {
            return CancelWait::Never;
        };
        if node.cancelled {
            return CancelWait::Cancelled(node.inner.cancel_value());
        }
        // Keys stay ours until the node is cancelled (the walk takes them
        // all) or removed, and neither has happened.
        match key {
            Some(key) => {
                let slot = &mut node.rare().cancel_waiters[key];
                if !slot.will_wake(waker) {
                    deferred.drop_waker(std::mem::replace(slot, waker.clone()));
                }
                CancelWait::Waiting(key)
            }
            None => CancelWait::Waiting(node.rare().cancel_waiters.insert(waker.clone())),
        }
    }

    /// A `cancelled()` future registered under `key` was dropped.
    pub(crate) fn forget_cancel_waiter(&mut self, id: ScopeId, key: usize) -> Option<Waker> {
        let node = self.get_mut(id).filter(|n| !n.cancelled)?;
        node.rare.as_mut()?.cancel_waiters.try_remove(key)
    }

    /// Whether `id` is cancelled; stores `waker` to be woken on cancel.
    pub(crate) fn register_body_waker(
        &mut self,
        id: ScopeId,
        waker: &Waker,
        deferred: &mut Deferred,
    ) -> bool {
        let Some(node) = self.get_mut(id) else {
            return true;
        };
        if !node.cancelled {
            match &node.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => {
                    if let Some(old) = node.waker.replace(waker.clone()) {
                        deferred.drop_later(Later::Waker(old));
                    }
                }
            }
        }
        node.cancelled
    }

    /// The body of `id` ended. Removes the node and returns its outcome if
    /// it is finished; otherwise stores `waker` for when it is.
    pub(crate) fn finish_body(
        &mut self,
        id: ScopeId,
        waker: &Waker,
        deferred: &mut Deferred,
    ) -> Option<Outcome> {
        let node = self
            .get_mut(id)
            .expect("invariant 2: a running scope's node exists");
        node.body = Body::Done;
        if !node.is_finished() {
            match &node.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => {
                    if let Some(old) = node.waker.replace(waker.clone()) {
                        deferred.drop_later(Later::Waker(old));
                    }
                }
            }
            return None;
        }
        let outcome = Outcome {
            cancelled: node.cancelled.then(|| node.inner.cancel_value()),
            panic: node.take_panic(),
        };
        self.remove(id.key, deferred);
        Some(outcome)
    }

    /// The scope future of `id` was dropped before it finished. The node
    /// goes once its tasks and children are gone.
    pub(crate) fn drop_body(&mut self, id: ScopeId, deferred: &mut Deferred) {
        let Some(node) = self.get_mut(id) else { return };
        node.body = Body::Dropped;
        deferred.wakers.extend(node.waker.take());
        if let Some(panic) = node.take_panic() {
            deferred.drop_later(Later::Panic(panic));
        }
        self.settle(id.key, deferred);
    }

    /// After `key` lost a task or child: wake its scope future if it may
    /// finish now, or remove it if its future is gone.
    fn settle(&mut self, key: usize, deferred: &mut Deferred) {
        let node = &mut self.nodes[key];
        if !node.is_finished() {
            return;
        }
        match node.body {
            Body::Running => {}
            Body::Done => deferred.wakers.extend(node.waker.take()),
            Body::Dropped => {
                self.remove(key, deferred);
            }
        }
    }

    /// Removes a finished node and settles its ancestors, iteratively.
    /// `retire` moves out everything whose drop could run user code, so
    /// the rest of a node is dropped here, under the lock.
    fn remove(&mut self, key: usize, deferred: &mut Deferred) {
        let mut node = self.nodes.remove(key);
        debug_assert!(node.is_finished());
        node.retire(deferred);
        self.unlink_child(&node);
        let mut parent = node.parent;
        while let Some(p) = parent {
            let parent_node = &mut self.nodes[p];
            if !parent_node.is_finished() {
                break;
            }
            match parent_node.body {
                Body::Running => break,
                Body::Done => {
                    deferred.wakers.extend(parent_node.waker.take());
                    break;
                }
                Body::Dropped => {
                    let mut removed = self.nodes.remove(p);
                    removed.retire(deferred);
                    self.unlink_child(&removed);
                    parent = removed.parent;
                }
            }
        }
    }

    /// Closes the gap a removed node left in its parent's child list.
    fn unlink_child(&mut self, removed: &Node) {
        let (prev, next) = (removed.prev_sibling, removed.next_sibling);
        if prev != NO_NODE {
            self.nodes[prev].next_sibling = next;
        } else if let Some(parent) = removed.parent {
            self.nodes[parent].first_child = next;
        }
        if next != NO_NODE {
            self.nodes[next].prev_sibling = prev;
        }
    }

    /// Accounts for tasks whose futures a canceller dropped: `n` tasks of
    /// each `(node, n)` in `dropped`, and panics from their drops.
    fn settle_cancelled(
        &mut self,
        dropped: &[(ScopeId, usize)],
        panics: Vec<(ScopeId, Panic)>,
        batch: &mut CancelBatch,
    ) {
        // A node none of whose tasks we dropped may have finished and left
        // already (its runners released them); one we dropped tasks of is
        // still here, held by the counts we have not settled (invariant 2).
        if panics.is_empty() {
            // One pass: settling a node can remove it and finished
            // ancestors, but not a node whose own count is still unsettled.
            for &(id, n) in dropped {
                match self.get_mut(id) {
                    Some(node) => {
                        node.live_tasks -= n;
                        self.live_tasks -= n;
                        self.settle(id.key, &mut batch.deferred);
                    }
                    None => assert_eq!(n, 0, "invariant 2: a task's node outlives it"),
                }
            }
            return;
        }
        for &(id, n) in dropped.iter().filter(|&&(_, n)| n > 0) {
            let node = self
                .get_mut(id)
                .expect("invariant 2: a task's node outlives it");
            node.live_tasks -= n;
            self.live_tasks -= n;
        }
        for (id, panic) in panics {
            self.record_panic(id, panic, batch);
        }
        for &(id, _) in dropped {
            if self.get(id).is_some() {
                self.settle(id.key, &mut batch.deferred);
            }
        }
    }
}

/// Diagnostics.
impl Tree {
    /// Copies the tree, depth first, children in creation order.
    pub(crate) fn snapshot(&self, now: Instant) -> TreeSnapshot {
        let mut scopes = Vec::with_capacity(self.nodes.len());
        let by_age = |keys: &mut Vec<usize>| {
            // Reversed, so the stack pops the oldest first.
            keys.sort_by_key(|&k| std::cmp::Reverse(self.nodes[k].generation));
        };
        let mut roots: Vec<usize> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.parent.is_none())
            .map(|(k, _)| k)
            .collect();
        by_age(&mut roots);
        let mut stack: Vec<(usize, usize)> = roots.into_iter().map(|k| (k, 0)).collect();
        while let Some((key, depth)) = stack.pop() {
            let node = &self.nodes[key];
            let state = match (node.cancelled, node.body) {
                (_, Body::Dropped) => ScopeState::Detached,
                (true, _) => ScopeState::Cancelling,
                (false, Body::Running) => ScopeState::Running,
                (false, Body::Done) => ScopeState::Finishing,
            };
            scopes.push(ScopeSnapshot {
                id: node.generation,
                depth,
                state,
                linked: node.kind == Kind::Linked,
                shielded: node.kind == Kind::Shielded,
                deadline_in: node.deadline().map(|d| d.at.saturating_duration_since(now)),
                live_tasks: node.live_tasks,
                location: node.inner.location,
            });
            let mut children = Vec::new();
            let mut child = node.first_child;
            while child != NO_NODE {
                children.push(child);
                child = self.nodes[child].next_sibling;
            }
            by_age(&mut children);
            stack.extend(children.into_iter().map(|c| (c, depth + 1)));
        }
        TreeSnapshot { scopes }
    }
}

impl ScopeId {
    /// A number unique among the scopes of one runtime.
    pub(crate) fn number(self) -> u64 {
        self.generation
    }
}

impl Node {
    fn is_finished(&self) -> bool {
        self.body != Body::Running && self.live_tasks == 0 && self.first_child == NO_NODE
    }

    /// The out-of-line parts, created on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn deadline(&self) -> Option<Deadline> {
        self.rare.as_ref().and_then(|r| r.deadline)
    }

    fn take_panic(&mut self) -> Option<Panic> {
        self.rare.as_mut().and_then(|r| r.panic.take())
    }

    /// Hands what a leaving node still holds to `deferred`.
    fn retire(&mut self, deferred: &mut Deferred) {
        if let Some(waker) = self.waker.take() {
            deferred.drop_later(Later::Waker(waker));
        }
        let Some(rare) = self.rare.as_deref_mut() else {
            return;
        };
        if let Some(panic) = rare.panic.take() {
            deferred.drop_later(Later::Panic(panic));
        }
        if let Some(deadline) = rare.deadline.take() {
            deferred.drop_later(Later::Timer(deadline.timer));
        }
        // Nobody can cancel this scope any more: its waiters learn that
        // when they look (`CancelWait::Never`).
        let waiters = std::mem::take(&mut rare.cancel_waiters);
        deferred.wakers.extend(waiters.into_iter().map(|(_, w)| w));
    }
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.later.is_empty()
    }

    /// Runs what the lock held back: removes timers, wakes, then drops.
    #[inline]
    pub(crate) fn run(self, shared: &Shared) {
        let Deferred { wakers, later } = self;
        if later.is_empty() {
            wakers.wake_all();
            return;
        }
        for item in &later {
            if let Later::Timer(key) = *item {
                shared.timers.remove(key);
            }
        }
        wakers.wake_all();
        for item in later {
            match item {
                Later::Timer(_) => {}
                Later::Waker(waker) => drop(waker),
                Later::Panic(panic) => drop(panic),
            }
        }
    }

    /// A waker to drop, unwoken, after the lock is released.
    pub(crate) fn drop_waker(&mut self, waker: Waker) {
        self.later.push(Later::Waker(waker));
    }

    fn drop_later(&mut self, later: Later) {
        self.later.push(later);
    }
}

impl CancelBatch {
    /// Runs a batch after the tree lock is released: drops every claimed
    /// future, settles the counts under the lock once, then wakes the scope
    /// futures and waiters. Tasks go first: a scope future nested in a
    /// cancelled task is dropped with it, and waking it afterwards finds
    /// the task complete and queues nothing. Loops while drops cause
    /// further cancellation (a panic in a `Drop` cancels its scope).
    #[inline]
    pub(crate) fn run(self, shared: &Shared) {
        // Inline and cheap when there is nothing to drop, as on the release
        // path and for a scope with no tasks.
        if !self.tasks.is_empty() {
            self.drop_tasks(shared);
        } else if !self.deferred.is_empty() {
            self.deferred.run(shared);
        }
    }

    fn drop_tasks(mut self, shared: &Shared) {
        while !self.tasks.is_empty() {
            let mut tasks = std::mem::take(&mut self.tasks);
            let mut groups = std::mem::take(&mut self.groups);
            let mut panics = Vec::new();
            let mut claimed = tasks.drain(..);
            // Each node's count of tasks becomes the count of futures we
            // dropped. Each task reference is dropped right after its
            // cancel, while its memory is still warm in the cache.
            for (id, count) in &mut groups {
                let mut n = 0;
                for task in claimed.by_ref().take(*count) {
                    if let Cancel::Dropped(panic) = task.cancel() {
                        n += 1;
                        if let Some(p) = panic {
                            panics.push((*id, p));
                        }
                    }
                }
                *count = n;
            }
            drop(claimed);
            let mut tree = shared.tree.lock();
            tree.settle_cancelled(&groups, panics, &mut self);
            // The emptied buffers serve the next batch.
            if tasks.capacity() > tree.spare.tasks.capacity() {
                groups.clear();
                tree.spare = Spare { tasks, groups };
            }
        }
        self.deferred.run(shared);
    }
}
