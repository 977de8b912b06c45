//! The scope tree: one [`Node`] per scope, each behind its own lock.
//!
//! A node records its place in the tree (its parent, its children, its
//! siblings), its tasks, how it is attached ([`Kind`]: plain, linked or
//! shielded), its deadline, and the wakers of futures waiting for it. There
//! is no lock over the whole tree: spawning into a scope, a task finishing,
//! opening and ending a scope touch the locks of the scopes involved, so
//! two unrelated scopes never contend. The files, one concept each:
//!
//! - `node_ref.rs`: [`NodeRef`], a counted reference, and where a node's
//!   memory comes from (the opening thread's pool);
//! - `life.rs`: the life word, whose counts say when a scope is finished;
//! - `publish.rs`: opening a node, publishing it to its parent at the
//!   first thing that needs it, and leaving the tree;
//! - `tasks.rs`: a scope's tasks (listing, release) and the panics of its
//!   user code;
//! - `waiters.rs`: who waits for a node (its future, `cancelled()`), and
//!   the end of its body;
//! - `deadline.rs`: a scope's deadline;
//! - `cancel.rs`: the cancel walk, and `parallel.rs` its shared drops;
//! - `after_unlock.rs`: the work a lock holder leaves for after the lock;
//! - `children.rs`: the intrusive child lists;
//! - `roots.rs`: the runtime's root scopes and the views over the tree;
//! - `limit.rs`: a scope's concurrency limit (its slots, the queue of
//!   tasks not started yet, the waiters for a slot);
//! - `stop.rs`: stop requests and a graceful shutdown's grace period;
//! - `lineage.rs`: whether a node descends from another;
//! - `owned.rs`: what a scope owns beyond its tasks and children, and what
//!   its drain does with it: `cleanup.rs` (cleanups, run in a phase of
//!   their own once the scope drained), `handlers.rs` (cancel handlers,
//!   run by the walk), `daemons.rs` (tasks the scope stops instead of
//!   waiting for).
//!
//! # Invariants
//!
//! 1. **A cancelled node's descendants are cancelled, up to shields.** A
//!    walk marks a node, then each of its published children, then theirs;
//!    a node published under a cancelled parent is born cancelled unless
//!    it is shielded; an unpublished node reads its ancestors' marks
//!    ([`Node::is_cancelled`]). So once the walk that marked a node
//!    returns, its subtree is cancelled.
//! 2. **A node outlives its tasks and children, and is published before
//!    it has any.** A node is *published* when it is linked into its
//!    parent's child list (or the runtime's roots), which it leaves only
//!    when it is retired. Until then it is *unpublished*: it has no task,
//!    no child, no deadline, no registered waker or waiter, and its body
//!    runs in the first poll of its scope future (inside its parent's
//!    body or task, so its parent is not finished). Whatever needs more
//!    publishes it first (a spawn, a child's publication, a deadline, a
//!    `cancelled()` wait, the body's first `Pending`, a recording
//!    runtime), from whichever thread, and publishing a node publishes its
//!    unpublished ancestors first, top-down. A finished node is not
//!    published: its future retires it as it is. A published node stays in the
//!    tree until it is *finished* (its body ended, no live task, no child:
//!    the life word), held there by the *tree reference*: its scope
//!    future's count, or, once that future is dropped, the count the
//!    future left behind, given up by whoever retires the node. Every node
//!    holds a count on its parent, so a node's parent, and the root's
//!    runtime state, outlive it.
//! 3. **Nothing runs user code under a lock.** No future is polled or dropped
//!    and no waker is called or dropped while a node's lock (or the roots'
//!    lock) is held: work found under a lock goes to an [`AfterUnlock`], run
//!    once the lock is released, or (on the cancel's fast path) to a local.
//!    The timer map's lock is never taken under a node's lock.
//! 4. **A cancelled node takes no new tasks, and its task list is the
//!    walk's.** From its mark on, nothing but the walk that marked it
//!    takes tasks off the list (which it takes whole when it expands the
//!    node): a task finishing afterwards does not unlist itself; it only
//!    counts itself gone. A node retired before its walk got to it drops
//!    the list, whose tasks have all ended.
//! 5. **Locks are taken top-down.** A thread holds one node's lock, or a
//!    parent's and then one child's (publication, the views, leaving the
//!    tree): never a child's while it takes its parent's. So no two
//!    threads wait for each other.
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
//! 8. **One change ends a scope.** The counts that keep a scope open live
//!    in its life word (`life.rs`); the read-modify-write that finishes the
//!    scope is unique, and its maker settles the node: it wakes the scope
//!    future (body done), or retires the node (future dropped).
//!
//! **Rule "siblings under the parent's lock".** A node's `siblings` links
//! are read and written only under its parent's lock (for a root: the
//! roots' lock); a node's `first_child` is part of its own locked state.
//! So the whole child list of a node is guarded by that node's lock.
//!
//! **Rule "one claim, one walk".** A node is marked cancelled by one
//! successful claim of its cancel cell; the walk that made it owns the
//! node's `walk_next` until it has expanded the node.
//!
//! Rule "pointers from the box" (raw node pointers carry their box's
//! provenance) is in `node_ref.rs`; rule "queued before waiters" (whom a
//! limited scope's freed slot goes to) in `limit.rs`.

mod after_unlock;
mod cancel;
mod children;
mod cleanup;
mod daemons;
mod deadline;
mod handlers;
mod life;
mod limit;
mod lineage;
mod node_ref;
mod owned;
mod parallel;
mod publish;
mod roots;
mod stop;
mod tasks;
mod waiters;

pub(crate) use after_unlock::AfterUnlock;
pub(crate) use cleanup::{Cleanup, CleanupFuture};
pub(crate) use limit::{Admitted, Made, Refusal, SlotCell, SlotWait};
pub(crate) use node_ref::NodeRef;
pub(crate) use roots::Roots;
pub(crate) use stop::StopWait;
#[cfg(all(test, cancel_scope_loom))]
pub(crate) use waiters::Outcome;
pub(crate) use waiters::{BodyEnd, CancelWait};

use crate::cancelled::{CancelCell, CancelReason, Cancelled, Cause};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::Mutex;
use crate::panic::{drop_catching, keep_first, Panic};
use crate::runtime::Shared;
use crate::task::TaskList;
use crate::time::timers::TimerKey;
use children::Siblings;
use life::LifeWord;
use limit::Limit;
use slab::Slab;
use std::any::Any;
use std::mem::ManuallyDrop;
use std::num::NonZeroU32;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};
use stop::{StopMark, StopWaiters};

/// A node's id before it is asked for.
const NO_ID: u64 = u64::MAX;

/// How a scope is attached to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Cancellation flows down from the parent only.
    Plain,
    /// Cancellation also flows up: cancelling this scope cancels the parent.
    Linked,
    /// Cancellation of ancestors does not reach this scope or below it.
    Shielded,
    /// A scope's daemons (`daemons.rs`): cancelled as a plain child, but
    /// counted in its parent's `DAEMONS` flag instead of its children, so
    /// that the parent drains without it.
    Daemons,
}

/// Whether a cancel climbs from a linked scope to its parent
/// (invariant 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Links {
    /// `cancel()`: a linked scope cancels its parent too.
    Follow,
    /// A cancel that is not the scope's own choice (its future dropped, a
    /// panic, which unwinds to the parent by itself).
    Ignore,
}

/// Where [`Node::open`] opens a node.
pub(crate) enum Place<'a> {
    /// A child of this live node (rule "pointers from the box").
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
    parent: Option<NodeRef>,
    kind: Kind,
    /// A task's panic goes to its handle, not to the scope
    /// (`supervisor_scope`).
    supervises: bool,
    /// The scope has a concurrency limit (its state is in the rare part:
    /// `limit.rs`); fixed at open, so a spawn reads it without a lock.
    limited: bool,
    /// Its stop request (`stop.rs`): set once, read without a lock.
    stop: StopMark,
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
    /// This node's own mark: set once, by one claim (rule "one claim, one
    /// walk"); read without a lock. [`Node::is_cancelled`] adds the marks
    /// of the ancestors of an unpublished node.
    pub(crate) cancelled: CancelCell,
    /// What keeps the scope open (invariant 8).
    life: LifeWord,
    /// Rule "siblings under the parent's lock".
    siblings: UnsafeCell<Siblings>,
    /// The node below this one on the stack of the walk that marked it
    /// (`cancel.rs`), until that walk expands it: that walk's alone (rule
    /// "one claim, one walk").
    walk_next: UnsafeCell<Option<NonNull<Node>>>,
    state: Mutex<Guarded>,
}

// SAFETY: the raw pointers in a node (`shared`, the sibling and child
// links, `walk_next`) point to nodes and runtime state that invariant 2
// keeps alive while they are reachable, and they are only followed under
// the locks and rules that name them; everything else is `Send + Sync`.
unsafe impl Send for Node {}
// SAFETY: as for `Send`.
unsafe impl Sync for Node {}

/// What a node's lock guards.
pub(crate) struct Guarded {
    /// The tasks that can still be cancelled, an intrusive list through the
    /// tasks. Once the node is cancelled, the list belongs to the walk that
    /// marked it (invariant 4).
    tasks: TaskList,
    /// The head of the child list (rule "siblings under the parent's
    /// lock").
    first_child: Option<NonNull<Node>>,
    /// The scope future's waker, woken on cancel and when it may finish.
    waker: Option<Waker>,
    /// What few scopes use, kept out of line so that a node stays small.
    rare: Option<Box<Rare>>,
}

/// How a scope is opened, beyond its place and kind.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) supervises: bool,
    /// Its name and locals, if it has any: built by the builder methods,
    /// so that opening a plain scope moves one null pointer.
    pub(crate) info: Option<Box<Info>>,
    /// At most this many of its tasks started and not ended (`limit.rs`):
    /// 32 bits, beside `supervises`, so that a plain scope's options stay
    /// two words (no scope runs 2^32 tasks at once).
    pub(crate) limit: Option<NonZeroU32>,
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
    /// Cleanups, cancel handlers, daemons (`owned.rs`).
    owned: Option<Box<owned::Owned>>,
    /// The concurrency limit, for a scope opened with one (`limit.rs`).
    limit: Option<Box<Limit>>,
    /// The waiters for a stop request, and a graceful shutdown's grace
    /// (`stop.rs`).
    stop: Option<Box<StopWaiters>>,
}

/// A node's deadline (invariant 7).
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    after: Duration,
    timer: TimerKey,
}

impl Node {
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
    fn cancel_value_locked(&self, st: &Guarded) -> Cancelled {
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

    /// Takes the parent reference out (the node is being freed, and its
    /// box's drop loop gives the parent up: `node_ref.rs`).
    fn take_parent(&mut self) -> Option<NodeRef> {
        self.parent.take()
    }
}

impl Guarded {
    fn new() -> Guarded {
        Guarded {
            tasks: TaskList::default(),
            first_child: None,
            waker: None,
            rare: None,
        }
    }

    /// The out-of-line parts, created on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// What the scope owns beyond tasks and children, created on first
    /// use.
    fn owned(&mut self) -> &mut owned::Owned {
        self.rare().owned.get_or_insert_with(Box::default)
    }

    /// The cause of this node's cancellation, if one came with it.
    fn cause(&self) -> Option<Cause> {
        self.rare.as_ref().and_then(|r| r.cause.clone())
    }

    fn set_waker(&mut self, waker: &Waker, after: &mut AfterUnlock) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => {
                if let Some(old) = self.waker.replace(waker.clone()) {
                    after.drop_waker(old);
                }
            }
        }
    }
}

impl Node {
    /// Drops the user values the node still holds (its scope-locals, the
    /// cause of its cancel), handing a panic from their `Drop` to the
    /// nearest scope still open (`pass_panic`): a node may be freed on a
    /// worker or in the middle of a cancel walk, where nothing may unwind.
    /// Called once, as the node is freed (`node_ref.rs`), before its parent
    /// is given up: what is left of the node then drops without user code.
    #[inline]
    fn drop_user_values(&mut self) {
        if self.info.is_some() || self.state.get_mut().rare.is_some() {
            self.drop_user_values_slow();
        }
    }

    #[cold]
    fn drop_user_values_slow(&mut self) {
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
            owned,
            limit,
            stop,
        } = self;
        if let Some(payload) = panic {
            crate::panic::drop_payload(payload);
        }
        let mut caught = None;
        let limit_wakers = limit.into_iter().flat_map(|l| l.into_wakers());
        let stop_wakers = stop.into_iter().flat_map(|s| s.into_wakers());
        let wakers = cancel_waiters.into_iter().map(|(_, w)| w);
        for waker in wakers.chain(limit_wakers).chain(stop_wakers) {
            if let Some(panic) = drop_catching(waker) {
                keep_first(&mut caught, panic);
            }
        }
        if let Some(panic) = drop_catching(cause) {
            keep_first(&mut caught, panic);
        }
        if let Some(owned) = owned {
            if let Some(panic) = (*owned).drop_user_values() {
                keep_first(&mut caught, panic);
            }
        }
        caught
    }
}

impl NodeRef {
    /// Runs `f` under this node's lock; what `f` leaves in the [`AfterUnlock`]
    /// runs once the lock is released (invariant 3), and a panic of a user
    /// value it drops goes to the nearest open scope. The caller holds a
    /// reference to the node, so the node outlives this call even if `f`
    /// lets it leave the tree.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Guarded, &mut AfterUnlock) -> R) -> R {
        let mut after = AfterUnlock::default();
        let out = f(&mut self.state.lock(), &mut after);
        if let Some(panic) = after.run() {
            self.pass_panic(panic);
        }
        out
    }
}
