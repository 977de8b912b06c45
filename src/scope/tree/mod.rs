//! The scope tree: one [`Node`] per live scope, each behind its own lock.
//!
//! A node records its place in the tree (its parent, its children, its
//! siblings), its tasks, how it is attached ([`Kind`]: plain, linked or
//! shielded), its deadline, and the wakers of futures waiting for it. There
//! is no lock over the whole tree: spawning into a scope, a task finishing,
//! opening and ending a scope touch the locks of the scopes involved (the
//! scope, and for opening and ending its parent), so two unrelated scopes
//! never contend. Cancellation is a walk over a subtree (`cancel.rs`); the
//! work a lock holder must not do is collected into an [`After`] and done
//! once the lock is released (`after.rs`); the runtime's list of root
//! scopes and the views over the whole tree live in `roots.rs`.
//!
//! # Invariants
//!
//! 1. **A cancelled node's descendants are cancelled, up to shields.** A
//!    walk marks a node, then each of its children (a child under its own
//!    lock, while it holds the parent's), then theirs; a node opened under
//!    a cancelled parent is born cancelled unless it is shielded. So once
//!    the walk that marked a node returns, its subtree is cancelled, and a
//!    walk that meets a marked node leaves its subtree to the walk that
//!    marked it.
//! 2. **A node outlives its tasks and children.** A node stays in the tree
//!    (in its parent's child list, or in the runtime's roots) until it is
//!    *finished*: its body has ended or its future was dropped, it has no
//!    live task and no child. While in the tree
//!    it is kept alive by the *tree reference*: the `Arc` its scope future
//!    holds, or, once that future is dropped, the node's own `self_ref`.
//!    So a task can point to its node without owning it, and every child
//!    holds its parent (an `Arc`): a node's parent, and the root's runtime
//!    state, outlive it.
//! 3. **Nothing runs user code under a lock.** No future is polled or
//!    dropped and no waker is called or dropped while a node's lock (or the
//!    roots' lock) is held: work found under a lock goes to an [`After`],
//!    which [`Node::with`] runs once the lock is released. (The timer map's
//!    lock is never taken under a node's lock either.)
//! 4. **A cancelled node takes no new tasks, and its task list is the
//!    walk's.** From its marking on, nothing but the walk that marked it
//!    touches the list (which it takes when it expands the node): a task
//!    finishing afterwards does not unlist itself (its links are the
//!    walk's); it only decrements the live count.
//! 5. **Locks are taken top-down.** A thread holds one node's lock, or a
//!    parent's and then one child's (the walk, the views, the adoption of a
//!    child born cancelled): never a child's
//!    while it takes its parent's. Leaving the tree locks the node, releases
//!    it, then locks the parent. So no two threads wait for each other.
//! 6. **Linked cancellation climbs only through links.** Cancelling a
//!    linked node cancels its parent, and on upward while the nodes are
//!    linked; cancelling a parent never consults links.
//! 7. **A deadline is a timer plus a check.** The node stores its deadline
//!    and the key of a timer whose waker asks the node to cancel itself;
//!    the node cancels only if its *current* deadline has passed, so a
//!    timer left over from a moved deadline does nothing. The timer is
//!    registered before the deadline is recorded, so it may fire first and
//!    find nothing; recording a deadline therefore checks it against the
//!    clock under the lock and cancels at once if it is due.
//!
//! **Rule P (places).** A node's `siblings` links are read and written
//! only under its parent's lock (for a root: the roots' lock). A node's
//! `first_child` is part of its own locked state; so the whole child list
//! of a node is guarded by that node's lock.
//!
//! **Rule A (addresses).** Every raw pointer to a node (in a list, a task's
//! binding, the current-scope thread-local, a walk's stack) is made from
//! its `Arc` ([`Node::as_ptr`]), never from a `&Node`: a new `Arc` rebuilt
//! from it ([`Node::pin`]) may then do all an `Arc` does, dropping the
//! node included.

mod after;
mod cancel;
mod parallel;
mod roots;

pub(crate) use after::After;
pub(crate) use roots::Roots;

use crate::cancelled::{CancelCell, CancelReason, Cancelled, Cause};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Mutex;
use crate::panic::{drop_catching, drop_payload, keep_first, Panic};
use crate::runtime::Shared;
use crate::task::{Ended, TaskId, TaskList, TaskRef};
use crate::time::timers::{TimerKey, Timers};
use crate::trace::{EventKind, ScopeKind};
use slab::Slab;
use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A node's id before it is asked for.
const NO_ID: u64 = u64::MAX;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

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

/// Where [`Node::open`] opens a node.
pub(crate) enum Place<'a> {
    /// A child of this live node (rule A).
    Under(NonNull<Node>),
    /// A root of this runtime.
    Root(&'a Arc<Shared>),
}

/// One scope of the tree.
pub(crate) struct Node {
    /// The runtime: alive while any node of its trees is (the root holds it
    /// in `runtime`, and every node holds its parent).
    shared: NonNull<Shared>,
    /// Set on roots only; see `shared`. Never read: it keeps the runtime
    /// state alive.
    #[allow(dead_code)]
    runtime: Option<Arc<Shared>>,
    parent: Option<Arc<Node>>,
    kind: Kind,
    /// A task's panic goes to its handle, not to the scope
    /// (`supervisor_scope`).
    supervises: bool,
    /// Unique among the scopes of its runtime, given the first time it is
    /// asked for (`Scope::id`, the tree view, a recording runtime at open),
    /// so opening a scope touches no counter shared with other scopes;
    /// `NO_ID` until then.
    id: AtomicU64,
    /// Where the scope was opened (`#[track_caller]`).
    pub(crate) location: &'static Location<'static>,
    /// Its name and scope-locals, if it has either: set at open, never
    /// changed, so read without a lock. Dropped by hand in `Drop` (where
    /// it is rarely `Some`), so that the compiler's drop of a node stays
    /// small.
    info: ManuallyDrop<Option<Box<Info>>>,
    /// Set once, under `state`'s lock, when the scope is cancelled; read
    /// without it.
    pub(crate) cancelled: CancelCell,
    /// Rule P.
    siblings: UnsafeCell<Siblings>,
    state: Mutex<State>,
}

// SAFETY: the raw pointers in a node (`shared`, the sibling and child
// links, `walk_next`) point to nodes and runtime state that invariant 2
// keeps alive while they are reachable, and they are only followed under
// the locks that rule P and `state` name; everything else is `Send + Sync`.
unsafe impl Send for Node {}
// SAFETY: as for `Send`.
unsafe impl Sync for Node {}

/// A node's neighbours in its parent's child list (rule P).
#[derive(Clone, Copy, Default)]
struct Siblings {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
}

/// What a node's lock guards.
pub(crate) struct State {
    phase: Phase,
    body: Body,
    /// The tasks that can still be cancelled, an intrusive list through the
    /// tasks. Once the node is cancelled, the list belongs to the walk that
    /// marked it (invariant 4).
    tasks: TaskList,
    /// Tasks spawned and not yet finished; after a cancel, no longer listed.
    live_tasks: usize,
    /// A cancel of this scope cut something short: its body at an await,
    /// or a task that had not finished. Only then does the scope end in
    /// `Err(Cancelled)` (see `Outcome`).
    interrupted: bool,
    /// The head of the child list (rule P).
    first_child: Option<NonNull<Node>>,
    /// The node below this one on the stack of the walk that marked it
    /// (`cancel.rs`), if that walk has not expanded it yet.
    walk_next: Option<NonNull<Node>>,
    /// The tree reference once the scope future is gone (invariant 2).
    self_ref: Option<Arc<Node>>,
    /// The scope future's waker, woken on cancel and when it may finish.
    waker: Option<Waker>,
    /// What few scopes use, kept out of line so that a node stays small.
    rare: Option<Box<Rare>>,
}

/// Whether a node is in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// Left the tree; the node only answers stale handles now.
    Removed,
}

/// Where a scope's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// The scope future is alive and its body has not ended.
    Running,
    /// The body ended; the scope future waits for tasks and children.
    Done,
    /// The scope future was dropped before it finished; the last task or
    /// child to end removes the node.
    Dropped,
}

/// How a scope is opened, beyond its place and kind.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) supervises: bool,
    /// Its name and locals, if it has any: built by the builder methods,
    /// so that opening a plain scope moves one null pointer.
    pub(crate) info: Option<Box<Info>>,
}

impl Options {
    pub(crate) fn info(&mut self) -> &mut Info {
        self.info.get_or_insert_with(Box::default)
    }
}

/// A node's name and scope-locals (immutable once the node is open).
#[derive(Default)]
pub(crate) struct Info {
    pub(crate) name: Option<Arc<str>>,
    /// Scope-local values: a key (a `ScopeLocal`'s address) and its value.
    pub(crate) locals: Vec<(usize, Arc<dyn Any + Send + Sync>)>,
}

/// The parts of a node that most scopes never use.
#[derive(Default)]
struct Rare {
    /// Futures waiting for this scope to be cancelled (`Scope::cancelled`).
    cancel_waiters: Slab<Waker>,
    deadline: Option<Deadline>,
    /// The first panic caught in this scope, resumed by the scope future.
    panic: Option<Panic>,
    /// What the user gave `cancel_with`, here or in the ancestor whose
    /// cancellation reached this scope.
    cause: Option<Cause>,
}

/// A node's deadline (invariant 7).
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    after: Duration,
    timer: TimerKey,
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

/// How a scope's body ended, for [`Node::finish_body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// It returned its value.
    Returned,
    /// It was dropped at an await because its scope was cancelled, or it
    /// panicked.
    Interrupted,
}

/// What [`Node::poll_cancelled`] found.
pub(crate) enum CancelWait {
    Cancelled(Cancelled),
    /// Registered under this key.
    Waiting(usize),
    /// The scope ended without being cancelled: it never will be.
    Never,
}

impl Node {
    /// Opens a node under a parent, or as a root.
    pub(crate) fn open(
        at: Place<'_>,
        kind: Kind,
        location: &'static Location<'static>,
        options: Options,
    ) -> Arc<Node> {
        let (shared, runtime, parent) = match at {
            Place::Under(parent) => {
                // SAFETY: the caller guarantees the parent is alive, and its
                // pointer follows rule A.
                let parent = unsafe { Node::pin(parent) };
                (parent.shared, None, Some(parent))
            }
            Place::Root(shared) => {
                let ptr = NonNull::new(Arc::as_ptr(shared).cast_mut()).expect("not null");
                (ptr, Some(shared.clone()), None)
            }
        };
        let node = Arc::new(Node {
            shared,
            runtime,
            parent,
            kind,
            supervises: options.supervises,
            id: AtomicU64::new(NO_ID),
            location,
            info: ManuallyDrop::new(options.info),
            cancelled: CancelCell::new(),
            siblings: UnsafeCell::new(Siblings::default()),
            state: Mutex::new(State::new()),
        });
        // Recorded before the node can be reached, so that no cancel of it
        // is recorded first.
        let recording = node.shared().records();
        if recording {
            node.record_opened(location);
        }
        match &node.parent {
            Some(parent) => parent.adopt(&node),
            None => node.shared().roots().adopt(&node),
        }
        if recording && node.cancelled.is_set() {
            node.shared().record(|| EventKind::ScopeCancelled {
                scope: node.id(),
                reason: node.cancel_value().reason().clone(),
                by: node.parent.as_ref().map_or(node.id(), |p| p.id()),
            });
        }
        node
    }

    /// Records the opening of this node, on a recorded runtime.
    #[cold]
    fn record_opened(&self, location: &'static Location<'static>) {
        self.shared().record(|| EventKind::ScopeOpened {
            scope: self.id(),
            parent: self.parent.as_ref().map(|p| p.id()),
            name: self.name().cloned(),
            location,
            kind: match (self.kind, self.supervises) {
                (Kind::Linked, _) => ScopeKind::Linked,
                (Kind::Shielded, _) => ScopeKind::Shielded,
                (Kind::Plain, true) => ScopeKind::Supervisor,
                (Kind::Plain, false) => ScopeKind::Plain,
            },
        });
    }

    /// This node's address, for the raw pointers of rule A.
    pub(crate) fn as_ptr(this: &Arc<Node>) -> NonNull<Node> {
        NonNull::new(Arc::as_ptr(this).cast_mut()).expect("an `Arc` is not null")
    }

    /// A new `Arc` of the node at `node`.
    ///
    /// # Safety
    ///
    /// The node is alive, and `node` follows rule A.
    pub(crate) unsafe fn pin(node: NonNull<Node>) -> Arc<Node> {
        // SAFETY: the caller's contract: `node` came from `Arc::as_ptr` of
        // this live node, so it may take a count of its own.
        unsafe {
            Arc::increment_strong_count(node.as_ptr());
            Arc::from_raw(node.as_ptr())
        }
    }

    /// Links the new child `child` into this node's list, born cancelled if
    /// this node is (unless shielded: invariant 1) or the runtime is shut
    /// down.
    fn adopt(&self, child: &Arc<Node>) {
        let mut st = self.state.lock();
        let shutdown = self.shared().is_shutdown();
        if shutdown || (self.cancelled.is_set() && child.kind != Kind::Shielded) {
            let (reason, cause) = if shutdown {
                (CancelReason::Shutdown, None)
            } else {
                (CancelReason::Ancestor, st.cause())
            };
            // Nobody else can reach `child` yet: taking its lock while
            // holding ours is the order of invariant 5 anyway.
            let mut child_st = child.state.lock();
            if let Some(cause) = &cause {
                child_st.rare().cause = Some(cause.clone());
            }
            child.cancelled.set(&reason, cause.is_some());
        }
        // SAFETY: rule P; we hold this node's lock, which guards the links
        // of its children, and `child` is new.
        unsafe { link_first(&mut st.first_child, Node::as_ptr(child)) };
    }

    /// The runtime this scope belongs to, as an `Arc` of its own.
    pub(crate) fn shared_arc(&self) -> Arc<Shared> {
        // SAFETY: the runtime state lives in an `Arc` (`Builder::build`),
        // alive while this node is (see `shared`).
        unsafe {
            Arc::increment_strong_count(self.shared.as_ptr());
            Arc::from_raw(self.shared.as_ptr())
        }
    }

    /// The runtime this scope belongs to.
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: invariant 2; the root of this node's tree holds an `Arc`
        // of the runtime state, and this node (alive, since we borrow it)
        // holds its parent, and so on up to the root.
        unsafe { self.shared.as_ref() }
    }

    /// The scope's id, given now if it has none yet.
    pub(crate) fn id(&self) -> u64 {
        let id = self.id.load(Relaxed);
        if id != NO_ID {
            return id;
        }
        let new = self.shared().next_scope_id();
        // Another thread may have given one meanwhile: its id stands (this
        // number is wasted).
        match self.id.compare_exchange(NO_ID, new, Relaxed, Relaxed) {
            Ok(_) => new,
            Err(given) => given,
        }
    }

    /// The scope's cancellation value; `Explicit` if the scope is not
    /// cancelled (a task cancelled alone, by its `JoinHandle`). Takes the
    /// node's lock only if a cause came with the cancel.
    pub(crate) fn cancel_value(&self) -> Cancelled {
        let cause = if self.cancelled.has_cause() {
            self.state.lock().cause()
        } else {
            None
        };
        self.cancel_value_with(cause)
    }

    /// [`cancel_value`](Node::cancel_value) for a caller that holds the
    /// node's lock (`st`).
    fn cancel_value_locked(&self, st: &State) -> Cancelled {
        let cause = if self.cancelled.has_cause() {
            st.cause()
        } else {
            None
        };
        self.cancel_value_with(cause)
    }

    fn cancel_value_with(&self, cause: Option<Cause>) -> Cancelled {
        self.cancelled
            .get()
            .unwrap_or(Cancelled::new(CancelReason::Explicit))
            .with_cause(cause)
            .with_scope(self.name().cloned())
    }

    /// The scope's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.info.as_ref().and_then(|i| i.name.as_ref())
    }

    /// Whether a task's panic stays with the task (`supervisor_scope`).
    pub(crate) fn supervises(&self) -> bool {
        self.supervises
    }

    /// The value this scope, or the nearest ancestor that has one, holds
    /// under `key` (scope-locals): immutable after the scopes opened, so no
    /// lock.
    pub(crate) fn local(&self, key: usize) -> Option<&(dyn Any + Send + Sync)> {
        let mut node = Some(self);
        while let Some(n) = node {
            let found = n.info.as_ref().and_then(|i| {
                i.locals
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| &**v)
            });
            if found.is_some() {
                return found;
            }
            node = n.parent.as_deref();
        }
        None
    }

    /// Runs `f` under this node's lock; what `f` leaves in the [`After`]
    /// runs once the lock is released (invariant 3). The caller holds a
    /// reference to the node (an `Arc`, or a borrow of one), so the node
    /// outlives this call even if `f` lets it leave the tree.
    pub(crate) fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut State, &mut After) -> R) -> R {
        let mut after = After::default();
        let out = f(&mut self.state.lock(), &mut after);
        if let Some(panic) = after.run() {
            self.pass_panic(panic);
        }
        out
    }

    /// Lists a task, or says why it is refused (invariant 4).
    pub(crate) fn add_task(&self, task: TaskRef) -> Result<(), (Cancelled, TaskRef)> {
        let mut st = self.state.lock();
        if st.phase == Phase::Removed {
            return Err((Cancelled::new(CancelReason::ScopeEnded), task));
        }
        if self.cancelled.is_set() {
            return Err((self.cancel_value_locked(&st), task));
        }
        st.live_tasks += 1;
        st.tasks.push(task);
        Ok(())
    }

    /// A runner finished the task of `node` that `id` names (the task
    /// called `release`).
    ///
    /// # Safety
    ///
    /// `node` is alive: the task is counted live in it (invariant 2). The
    /// node may leave the tree and be freed during this call, so the caller
    /// does not use the pointer afterwards; nor does this function, past
    /// the point where the lock is released, unless it holds a reference.
    pub(crate) unsafe fn release_task(
        node: NonNull<Node>,
        id: TaskId,
        ended: Ended,
        panic: Option<Panic>,
    ) {
        // SAFETY: the caller's contract. A local borrow, not an argument:
        // it may dangle once unused, below.
        let this = unsafe { node.as_ref() };
        this.shared()
            .record(|| EventKind::TaskCompleted { task: id.number() });
        let mut after = After::default();
        let (leaving, pinned) = {
            let mut st = this.state.lock();
            st.live_tasks -= 1;
            // A task the scope's cancel stopped while it ran (its runner
            // dropped it after the poll): the cancel cut it short.
            if ended == Ended::Cancelled && this.cancelled.is_set() {
                st.interrupted = true;
            }
            // Invariant 4: a cancelled node's list is the walk's.
            if !this.cancelled.is_set() {
                // SAFETY: the node is not cancelled, so the task it listed
                // is still on its list.
                after.drop_task(unsafe { st.tasks.remove(id) });
            }
            // A panic cancels the scope, once the lock is released: keep the
            // node alive until then. (A node with a live task is open.)
            let pinned = panic.map(|panic| {
                this.store_panic(&mut st, panic, &mut after);
                // SAFETY: the node is alive (we hold its lock), and the
                // binding's pointer follows rule A.
                unsafe { Node::pin(node) }
            });
            (this.settle(&mut st, &mut after), pinned)
        };
        // From here `this` may be freed (a woken scope future may finish),
        // unless `leaving` or `pinned` holds it. `after` touches the
        // runtime only to remove timers, which only a leaving node has.
        if let Some(panic) = after.run() {
            // Only a retiring node drops a waker here (its future's), and
            // `leaving` holds that node.
            match &leaving {
                Some(node) => node.pass_panic(panic),
                None => drop_payload(panic),
            }
        }
        // Not through links: the panic reaches the parent by unwinding out
        // of this scope's future, which resumes it.
        if let Some(node) = pinned {
            node.cancel(CancelReason::Panicked, false);
        }
        if let Some(tree_ref) = leaving {
            tree_ref.leave_tree();
        }
    }

    /// Stores the first panic of this scope and cancels it, so that its
    /// siblings stop.
    pub(crate) fn record_panic(self: &Arc<Self>, panic: Panic) {
        if let Err(panic) = self.keep_panic(panic) {
            // The scope has ended: the nearest one still open takes it.
            self.pass_panic(panic);
        }
    }

    /// [`record_panic`](Node::record_panic) if this scope is open; else
    /// hands the panic back.
    fn keep_panic(self: &Arc<Self>, panic: Panic) -> Result<(), Panic> {
        let mut after = After::default();
        let kept = {
            let mut st = self.state.lock();
            if st.phase == Phase::Open {
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
            self.cancel(CancelReason::Panicked, false);
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
    pub(crate) fn pass_panic(self: &Arc<Self>, panic: Panic) {
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

    /// Keeps `panic` if it is this open scope's first.
    fn store_panic(&self, st: &mut State, panic: Panic, after: &mut After) {
        let rare = st.rare();
        if rare.panic.is_none() {
            rare.panic = Some(panic);
        } else {
            after.drop_panic(panic);
        }
    }

    /// Sets (or moves) the deadline to `at`, served by `timer`, and cancels
    /// at once if `at` is not after `now`, read under this lock
    /// (invariant 7). The timer no longer needed (the old one, or the new
    /// one if the scope is over or cancelled) is removed.
    pub(crate) fn set_deadline(self: &Arc<Self>, deadline: (Instant, Duration), timer: TimerKey) {
        let (at, after_set) = deadline;
        let due = self.with(|st, after| {
            if st.phase == Phase::Removed || self.cancelled.is_set() {
                after.remove_timer(&self.shared().timers, timer);
                return false;
            }
            let old = st.rare().deadline.replace(Deadline {
                at,
                after: after_set,
                timer,
            });
            if let Some(old) = old {
                after.remove_timer(&self.shared().timers, old.timer);
            }
            at <= self.shared().timers.now()
        });
        if due {
            self.cancel(CancelReason::Deadline { after: after_set }, true);
        }
    }

    /// The deadline, if the scope has one and is not cancelled.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let st = self.state.lock();
        st.rare.as_ref().and_then(|r| r.deadline).map(|d| d.at)
    }

    /// A deadline timer fired (invariant 7).
    pub(crate) fn deadline_passed(self: &Arc<Self>) {
        let now = self.shared().timers.now();
        let due = {
            let st = self.state.lock();
            st.rare
                .as_ref()
                .and_then(|r| r.deadline)
                .filter(|d| d.at <= now)
        };
        if let Some(deadline) = due {
            self.shared()
                .record(|| EventKind::DeadlineFired { scope: self.id() });
            let reason = CancelReason::Deadline {
                after: deadline.after,
            };
            self.cancel(reason, true);
        }
    }

    /// For `Scope::cancelled()`: the reason if cancelled, else registers
    /// `waker` (reusing `key` if still ours).
    pub(crate) fn poll_cancelled(
        self: &Arc<Self>,
        key: Option<usize>,
        waker: &Waker,
    ) -> CancelWait {
        self.with(|st, after| {
            if self.cancelled.is_set() {
                return CancelWait::Cancelled(self.cancel_value_locked(st));
            }
            if st.phase == Phase::Removed {
                return CancelWait::Never;
            }
            // Keys stay ours until the node is cancelled (the walk takes
            // them all) or removed, and neither has happened.
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
    pub(crate) fn forget_cancel_waiter(self: &Arc<Self>, key: usize) {
        self.with(|st, after| {
            if self.cancelled.is_set() || st.phase == Phase::Removed {
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

    /// Whether the scope is cancelled; stores `waker` to be woken on cancel.
    pub(crate) fn register_body_waker(self: &Arc<Self>, waker: &Waker) -> bool {
        self.with(|st, after| {
            if !self.cancelled.is_set() {
                st.set_waker(waker, after);
            }
            self.cancelled.is_set()
        })
    }

    /// The body ended. Returns the outcome and leaves the tree if the node
    /// is finished; otherwise stores `waker` for when it is. The caller
    /// holds the tree reference (its scope future's) until this returns.
    pub(crate) fn finish_body(self: &Arc<Self>, end: BodyEnd, waker: &Waker) -> Option<Outcome> {
        let outcome = self.with(|st, after| {
            st.body = Body::Done;
            if end == BodyEnd::Interrupted {
                st.interrupted = true;
            }
            if !st.is_finished() {
                st.set_waker(waker, after);
                return None;
            }
            let outcome = Outcome {
                cancelled: (st.interrupted && self.cancelled.is_set())
                    .then(|| self.cancel_value_locked(st)),
                panic: st.rare.as_mut().and_then(|r| r.panic.take()),
            };
            st.retire(&self.shared().timers, after);
            Some(outcome)
        })?;
        self.leave_tree();
        Some(outcome)
    }

    /// The scope future was dropped before it finished: `this`, its tree
    /// reference, goes to the node until the last task or child ends.
    pub(crate) fn drop_body(this: Arc<Node>) {
        let leave = this.with(|st, after| {
            st.body = Body::Dropped;
            // The future that would have been woken is the one going away.
            if let Some(waker) = st.waker.take() {
                after.drop_waker(waker);
            }
            if let Some(panic) = st.rare.as_mut().and_then(|r| r.panic.take()) {
                after.drop_panic(panic);
            }
            if st.is_finished() {
                st.retire(&this.shared().timers, after);
                true
            } else {
                st.self_ref = Some(this.clone());
                false
            }
        });
        if leave {
            this.leave_tree();
        }
    }

    /// After this node lost a task or a child, or a walk expanded it:
    /// wakes its scope future if it may finish now, or retires the node if
    /// its future is gone. Returns the node's tree reference if it must now
    /// leave the tree ([`leave_tree`](Node::leave_tree), once the lock is
    /// released).
    fn settle(&self, st: &mut State, after: &mut After) -> Option<Arc<Node>> {
        if !st.is_finished() {
            return None;
        }
        match st.body {
            Body::Running => None,
            Body::Done => {
                if let Some(waker) = st.waker.take() {
                    after.wake(waker);
                }
                None
            }
            Body::Dropped => {
                st.retire(&self.shared().timers, after);
                let tree_ref = st.self_ref.take();
                debug_assert!(tree_ref.is_some(), "a dropped body left its reference");
                tree_ref
            }
        }
    }

    /// A retired node leaves its parent's child list (or the roots), and
    /// finished ancestors whose futures are gone follow it. Iterative: a
    /// long chain costs no stack. Call with no lock held, holding a
    /// reference to this node.
    fn leave_tree(&self) {
        // The tree reference of the ancestor leaving now, dropped once its
        // parent no longer lists it.
        let mut held: Option<Arc<Node>> = None;
        let mut node = NonNull::from(self);
        loop {
            // SAFETY: `node` is `self`, which the caller keeps alive, or
            // the ancestor whose reference `held` keeps.
            let current = unsafe { node.as_ref() };
            current.shared().record(|| EventKind::ScopeEnded {
                scope: current.id(),
            });
            let Some(parent) = &current.parent else {
                current.shared().roots().release(current);
                return;
            };
            let leaving = parent.with(|st, after| {
                // SAFETY: rule P; we hold the parent's lock, and `current`
                // is in its list until this call.
                unsafe { unlink(&mut st.first_child, current) };
                parent.settle(st, after)
            });
            let Some(leaving) = leaving else { return };
            node = NonNull::from(&*leaving);
            drop(held.replace(leaving));
        }
    }
}

impl State {
    fn new() -> State {
        State {
            phase: Phase::Open,
            body: Body::Running,
            tasks: TaskList::default(),
            live_tasks: 0,
            interrupted: false,
            first_child: None,
            walk_next: None,
            self_ref: None,
            waker: None,
            rare: None,
        }
    }

    fn is_finished(&self) -> bool {
        self.body != Body::Running && self.live_tasks == 0 && self.first_child.is_none()
    }

    /// The out-of-line parts, created on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// The cause of this node's cancellation, if one came with it.
    fn cause(&self) -> Option<Cause> {
        self.rare.as_ref().and_then(|r| r.cause.clone())
    }

    fn set_waker(&mut self, waker: &Waker, after: &mut After) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => {
                if let Some(old) = self.waker.replace(waker.clone()) {
                    after.drop_waker(old);
                }
            }
        }
    }

    /// The node leaves the tree: hands what it still holds to `after`, but
    /// for the tree reference, which the caller keeps until the node is
    /// unlinked.
    fn retire(&mut self, timers: &Timers, after: &mut After) {
        debug_assert!(self.is_finished());
        self.phase = Phase::Removed;
        if let Some(waker) = self.waker.take() {
            after.drop_waker(waker);
        }
        let Some(rare) = self.rare.as_deref_mut() else {
            return;
        };
        if let Some(panic) = rare.panic.take() {
            after.drop_panic(panic);
        }
        if let Some(deadline) = rare.deadline.take() {
            after.remove_timer(timers, deadline.timer);
        }
        // Nobody can cancel this scope any more: its waiters learn that
        // when they look (`CancelWait::Never`).
        for (_, waker) in std::mem::take(&mut rare.cancel_waiters) {
            after.wake(waker);
        }
    }
}

impl Drop for Node {
    /// Drops the user values the node still holds (its scope-locals, the
    /// cause of its cancel), handing a panic from their `Drop` to the
    /// nearest scope still open (`pass_panic`): a node may be freed on a
    /// worker or in the middle of a cancel walk, where nothing may unwind.
    /// Then frees a chain of parents that this node held last,
    /// iteratively: a long chain of nested scopes costs no stack.
    fn drop(&mut self) {
        let mut caught = None;
        if self.info.is_some() {
            caught = drop_catching(self.info.take());
        }
        if let Some(rare) = self.state.get_mut().rare.take() {
            if let Some(panic) = Rare::drop_user_values(*rare) {
                keep_first(&mut caught, panic);
            }
        }
        if let Some(panic) = caught {
            match &self.parent {
                Some(parent) => parent.pass_panic(panic),
                None => self.shared().keep_lost_panic(panic),
            }
        }
        let mut parent = self.parent.take();
        while let Some(node) = parent {
            parent = match Arc::try_unwrap(node) {
                Ok(mut node) => node.parent.take(),
                Err(_) => None,
            };
        }
    }
}

impl Rare {
    /// Drops the parts that hold user values one by one (wakers, a
    /// payload, a cause), catching a panic of each; returns the first.
    fn drop_user_values(self) -> Option<Panic> {
        let Rare {
            cancel_waiters,
            deadline: _,
            panic,
            cause,
        } = self;
        if let Some(payload) = panic {
            drop_payload(payload);
        }
        let mut caught = None;
        for waker in cancel_waiters.into_iter().map(|(_, w)| w) {
            if let Some(panic) = drop_catching(waker) {
                keep_first(&mut caught, panic);
            }
        }
        if let Some(panic) = drop_catching(cause) {
            keep_first(&mut caught, panic);
        }
        caught
    }
}

/// Links `node` at the head of the list that starts at `head`.
///
/// # Safety
///
/// Rule P: the caller holds the lock that guards this list, and `node` is
/// a live node in no list, its pointer made by rule A.
unsafe fn link_first(head: &mut Option<NonNull<Node>>, node: NonNull<Node>) {
    let next = head.replace(node);
    // SAFETY: the caller's contract; rule P covers the links.
    unsafe { node.as_ref() }
        .siblings
        .with_mut(|s| unsafe { *s = Siblings { prev: None, next } });
    if let Some(next) = next {
        // SAFETY: `next` was in the list, so alive (invariant 2), and
        // rule P covers its links.
        unsafe { next.as_ref() }
            .siblings
            .with_mut(|s| unsafe { (*s).prev = Some(node) });
    }
}

/// Unlinks `node` from the list that starts at `head`.
///
/// # Safety
///
/// Rule P: the caller holds the lock that guards this list, and `node` is
/// in it.
unsafe fn unlink(head: &mut Option<NonNull<Node>>, node: &Node) {
    // SAFETY: rule P; the caller holds the list's lock.
    let Siblings { prev, next } = node.siblings.with(|s| unsafe { *s });
    match prev {
        // SAFETY: neighbours in the list are alive (invariant 2).
        Some(prev) => unsafe { prev.as_ref() }
            .siblings
            .with_mut(|s| unsafe { (*s).next = next }),
        None => *head = next,
    }
    if let Some(next) = next {
        // SAFETY: as above.
        unsafe { next.as_ref() }
            .siblings
            .with_mut(|s| unsafe { (*s).prev = prev });
    }
}

/// Iterates a child list.
///
/// # Safety
///
/// Rule P: the caller holds the lock that guards the list while it uses
/// the iterator and the nodes it yields.
unsafe fn children(first: Option<NonNull<Node>>) -> impl Iterator<Item = NonNull<Node>> {
    std::iter::successors(first, |node| {
        // SAFETY: the caller's contract: the list is locked, its nodes
        // alive (invariant 2).
        unsafe { node.as_ref() }
            .siblings
            .with(|s| unsafe { (*s).next })
    })
}
