//! The scope tree: every live scope of one runtime, as nodes in a
//! [`Slab`], behind one lock (`Shared::tree`).
//!
//! # Invariants
//!
//! 1. **A cancelled node's descendants are cancelled.** The cancel walk
//!    marks a whole subtree in one critical section, and a node created
//!    under a cancelled parent starts cancelled. The walk therefore stops at
//!    nodes that are already cancelled.
//! 2. **A node outlives its tasks and children.** It leaves the slab only
//!    once it is *finished*: its body has ended (or its future was dropped),
//!    it has no live task and no child node. So a task or child always
//!    finds its node, and a node's `parent` key always names a live node.
//! 3. **Nothing runs user code under the lock.** No future is polled or
//!    dropped and no waker is called or dropped while the tree lock is held:
//!    methods that would do so collect the work into a [`CancelBatch`] or a
//!    [`Deferred`], which the caller runs after unlocking.
//! 4. **A cancelled node takes no new tasks**, and the cancel walk moves its
//!    `tasks` out whole. A task finishing afterwards finds its slot empty;
//!    it only decrements `live_tasks`.
//! 5. **Ids carry a generation.** Slab keys are reused; a [`ScopeId`] whose
//!    generation does not match the node in its slot names a scope that has
//!    ended, and every lookup treats it as gone.
//! 6. **Linked cancellation climbs only through links.** Cancelling a linked
//!    node cancels its parent, and on upward while the nodes are linked;
//!    cancelling a parent never consults links.

use super::ScopeInner;
use crate::cancelled::{CancelReason, Cancelled};
use crate::task::{Cancel, Panic, TaskRef};
use slab::Slab;
use std::sync::Arc;
use std::task::Waker;

/// A scope's identity: its slab key and the generation it was created in
/// (invariant 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScopeId {
    key: usize,
    generation: u64,
}

/// How a scope is attached to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Cancellation flows down from the parent only.
    Plain,
    /// Cancellation also flows up: cancelling this scope cancels the parent.
    Linked,
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
    next_generation: u64,
    /// Tasks spawned and not yet finished, over all nodes.
    live_tasks: usize,
}

struct Node {
    generation: u64,
    parent: Option<usize>,
    /// This node's key in its parent's `children`.
    slot_in_parent: usize,
    children: Slab<usize>,
    /// Live tasks that can still be cancelled (invariant 4).
    tasks: Slab<TaskRef>,
    /// Tasks spawned and not yet finished; may exceed `tasks.len()` after
    /// a cancel moved `tasks` out.
    live_tasks: usize,
    link: Link,
    body: Body,
    cancelled: bool,
    /// The handle state shared with `Scope`s; carries the cancel reason.
    inner: Arc<ScopeInner>,
    /// The scope future's waker, woken on cancel and when it may finish.
    waker: Option<Waker>,
    /// The first panic caught in this scope, resumed by the scope future.
    panic: Option<Panic>,
}

/// What a scope future learns when its node is removed.
pub(crate) struct Outcome {
    pub(crate) cancelled: Option<Cancelled>,
    pub(crate) panic: Option<Panic>,
}

/// Work a tree method could not do under the lock (invariant 3).
#[derive(Default)]
pub(crate) struct Deferred {
    wakers: Vec<Waker>,
    garbage: Vec<Panic>,
    nodes: Vec<Node>,
}

/// Tasks a cancel walk took out of the tree, grouped by node, plus the
/// scope futures to wake.
#[derive(Default)]
pub(crate) struct CancelBatch {
    tasks: Vec<TaskRef>,
    /// `(node, number of tasks)` for consecutive runs of `tasks`.
    segments: Vec<(ScopeId, usize)>,
    deferred: Deferred,
}

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree {
            nodes: Slab::new(),
            next_generation: 0,
            live_tasks: 0,
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
        link: Link,
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
        let mut cancelled = false;
        let mut slot_in_parent = 0;
        if let Some(p) = parent {
            let parent_node = &mut self.nodes[p.key];
            slot_in_parent = parent_node.children.insert(id.key);
            // Invariant 1: a child of a cancelled node starts cancelled.
            if parent_node.cancelled {
                cancelled = true;
                let _ = inner.cancelled.set(Cancelled::new(CancelReason::Ancestor));
            }
        }
        self.nodes.insert(Node {
            generation,
            parent: parent.map(|p| p.key),
            slot_in_parent,
            children: Slab::new(),
            tasks: Slab::new(),
            live_tasks: 0,
            link,
            body: Body::Running,
            cancelled,
            inner: inner.clone(),
            waker: None,
            panic: None,
        });
        inner
    }

    /// Registers a task in a node; returns its slot, or why it is refused
    /// (invariant 4).
    pub(crate) fn add_task(&mut self, id: ScopeId, task: TaskRef) -> Result<usize, Cancelled> {
        let node = self
            .get_mut(id)
            .ok_or(Cancelled::new(CancelReason::ScopeEnded))?;
        if node.cancelled {
            return Err(node.inner.cancel_value());
        }
        node.live_tasks += 1;
        let slot = node.tasks.insert(task);
        self.live_tasks += 1;
        Ok(slot)
    }

    /// A runner finished a task of `id` (the task called `release`).
    pub(crate) fn release_task(
        &mut self,
        id: ScopeId,
        slot: usize,
        panic: Option<Panic>,
        batch: &mut CancelBatch,
    ) {
        let node = self
            .get_mut(id)
            .expect("invariant 2: a task's node outlives it");
        if node.tasks.contains(slot) {
            drop(node.tasks.remove(slot));
        }
        node.live_tasks -= 1;
        self.live_tasks -= 1;
        if let Some(panic) = panic {
            self.record_panic(id, panic, batch);
        }
        self.settle(id.key, &mut batch.deferred);
    }

    /// Stores the first panic of a scope and cancels it, so siblings stop.
    pub(crate) fn record_panic(&mut self, id: ScopeId, panic: Panic, batch: &mut CancelBatch) {
        let Some(node) = self.get_mut(id) else {
            batch.deferred.garbage.push(panic);
            return;
        };
        if node.panic.is_none() {
            node.panic = Some(panic);
        } else {
            batch.deferred.garbage.push(panic);
        }
        self.cancel(id, CancelReason::Panicked, false, batch);
    }

    /// Cancels `id`'s subtree, and first climbs linked ancestors when
    /// `follow_links` (invariant 6). Iterative: an explicit stack, so depth
    /// costs heap, not call stack. Idempotent.
    pub(crate) fn cancel(
        &mut self,
        id: ScopeId,
        reason: CancelReason,
        follow_links: bool,
        batch: &mut CancelBatch,
    ) {
        let Some(node) = self.get(id) else { return };
        if node.cancelled {
            return; // Invariant 1: its subtree is cancelled already.
        }
        let _ = node.inner.cancelled.set(Cancelled::new(reason));
        // Climb the links; record the reason on each ancestor reached.
        let mut top = id.key;
        if follow_links {
            loop {
                let node = &self.nodes[top];
                let Some(parent) = node.parent.filter(|_| node.link == Link::Linked) else {
                    break;
                };
                if self.nodes[parent].cancelled {
                    break;
                }
                let reason = Cancelled::new(CancelReason::LinkedChild);
                let _ = self.nodes[parent].inner.cancelled.set(reason);
                top = parent;
            }
        }
        // Walk down. Nodes on the climbed path already hold their reason;
        // `set` keeps it, and every other node gets `Ancestor`.
        let mut stack = vec![top];
        while let Some(key) = stack.pop() {
            let node = &mut self.nodes[key];
            if node.cancelled {
                continue;
            }
            node.cancelled = true;
            let _ = node
                .inner
                .cancelled
                .set(Cancelled::new(CancelReason::Ancestor));
            if let Some(w) = node.waker.take() {
                batch.deferred.wakers.push(w);
            }
            if !node.tasks.is_empty() {
                let tasks = std::mem::take(&mut node.tasks);
                let id = ScopeId {
                    key,
                    generation: node.generation,
                };
                batch.segments.push((id, tasks.len()));
                batch.tasks.extend(tasks.into_iter().map(|(_, t)| t));
            }
            stack.extend(node.children.iter().map(|(_, &child)| child));
        }
    }

    /// Cancels every root (shutdown).
    pub(crate) fn cancel_all(&mut self, reason: CancelReason, batch: &mut CancelBatch) {
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
            self.cancel(root, reason.clone(), false, batch);
        }
    }

    /// Whether `id` is cancelled; stores `waker` to be woken on cancel.
    pub(crate) fn register_body_waker(&mut self, id: ScopeId, waker: &Waker) -> bool {
        let Some(node) = self.get_mut(id) else {
            return true;
        };
        if !node.cancelled {
            match &node.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => node.waker = Some(waker.clone()),
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
                        deferred.wakers.push(old);
                    }
                }
            }
            return None;
        }
        let mut node = self.remove(id.key, deferred);
        let outcome = Outcome {
            cancelled: node.cancelled.then(|| node.inner.cancel_value()),
            panic: node.panic.take(),
        };
        deferred.nodes.push(node);
        Some(outcome)
    }

    /// The scope future of `id` was dropped before it finished (its subtree
    /// is already cancelled). The node goes once its tasks are gone.
    pub(crate) fn drop_body(&mut self, id: ScopeId, deferred: &mut Deferred) {
        let Some(node) = self.get_mut(id) else { return };
        node.body = Body::Dropped;
        if let Some(w) = node.waker.take() {
            deferred.wakers.push(w);
        }
        if let Some(p) = node.panic.take() {
            deferred.garbage.push(p);
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
                let node = self.remove(key, deferred);
                deferred.nodes.push(node);
            }
        }
    }

    /// Removes a finished node and settles its ancestors, iteratively.
    fn remove(&mut self, key: usize, deferred: &mut Deferred) -> Node {
        let node = self.nodes.remove(key);
        debug_assert!(node.is_finished());
        let (mut parent, mut slot) = (node.parent, node.slot_in_parent);
        while let Some(p) = parent {
            let parent_node = &mut self.nodes[p];
            parent_node.children.remove(slot);
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
                    (parent, slot) = (removed.parent, removed.slot_in_parent);
                    deferred.garbage.extend(removed.panic.take());
                    deferred.nodes.push(removed);
                }
            }
        }
        node
    }

    /// Accounts for tasks whose futures a canceller dropped: `dropped[i]`
    /// tasks of `segments[i]`, and panics from their drops.
    fn settle_cancelled(
        &mut self,
        segments: &[(ScopeId, usize)],
        dropped: &[usize],
        panics: Vec<(ScopeId, Panic)>,
        batch: &mut CancelBatch,
    ) {
        for (&(id, _), &n) in segments.iter().zip(dropped) {
            let node = self
                .get_mut(id)
                .expect("invariant 2: a task's node outlives it");
            node.live_tasks -= n;
            self.live_tasks -= n;
        }
        for (id, panic) in panics {
            self.record_panic(id, panic, batch);
        }
        for &(id, _) in segments {
            if self.get(id).is_some() {
                self.settle(id.key, &mut batch.deferred);
            }
        }
    }
}

impl Node {
    fn is_finished(&self) -> bool {
        self.body != Body::Running && self.live_tasks == 0 && self.children.is_empty()
    }
}

impl Deferred {
    /// Runs what the lock held back: wakes, then drops.
    pub(crate) fn run(self) {
        for w in self.wakers {
            w.wake();
        }
        drop(self.garbage);
        drop(self.nodes);
    }
}

impl CancelBatch {
    /// Runs a batch after the tree lock is released: wakes the scope
    /// futures, drops every claimed future, then settles the counts under
    /// the lock once. Loops while drops cause further cancellation (a panic
    /// in a `Drop` cancels that task's scope).
    pub(crate) fn run(mut self, tree: &parking_lot::Mutex<Tree>) {
        loop {
            let deferred = std::mem::take(&mut self.deferred);
            deferred.run();
            if self.tasks.is_empty() {
                return;
            }
            let tasks = std::mem::take(&mut self.tasks);
            let segments = std::mem::take(&mut self.segments);
            let mut dropped = Vec::with_capacity(segments.len());
            let mut panics = Vec::new();
            let mut tasks_iter = tasks.iter();
            for &(id, len) in &segments {
                let mut n = 0;
                for task in tasks_iter.by_ref().take(len) {
                    if let Cancel::Dropped(panic) = task.cancel() {
                        n += 1;
                        if let Some(p) = panic {
                            panics.push((id, p));
                        }
                    }
                }
                dropped.push(n);
            }
            drop(tasks);
            tree.lock()
                .settle_cancelled(&segments, &dropped, panics, &mut self);
        }
    }
}
