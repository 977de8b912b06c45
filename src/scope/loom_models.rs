//! loom models of the scope tree's protocol, on the real nodes, tasks and
//! cancel walk: each node's lock and sibling links are loom's (through the
//! facade), the model's threads stand in for workers (they run what the
//! injector holds), and loom explores every order in which they take the
//! nodes' locks and touch the tasks' state words.
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.

mod servers;

use super::tree::{BodyEnd, Kind, Links, Node, NodeRef, Outcome, Place};
use super::Scope;
use crate::cancelled::CancelReason;
use crate::loom::deque::Steal;
use crate::runtime::Shared;
use loom::thread;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// Opens a scope node (its body is "running" until [`finish`]).
pub(super) fn open(shared: &Arc<Shared>, parent: Option<&NodeRef>, kind: Kind) -> NodeRef {
    let place = match parent {
        Some(parent) => Place::Under(parent.as_ptr()),
        None => Place::Root(shared),
    };
    Node::open(place, kind, Location::caller(), Default::default())
}

/// Ends a scope's body, as its future does (it tells the node once, then
/// looks again when woken); `Some` once the node is gone.
pub(super) fn finish(node: &NodeRef, told: &mut bool) -> Option<Outcome> {
    let waker = waker_fn::waker_fn(|| {});
    if std::mem::replace(told, true) {
        node.poll_end(&waker)
    } else {
        node.body_done(BodyEnd::Returned, &waker)
    }
}

/// A worker's turn: runs every queued task once.
pub(super) fn run_queued(shared: &Shared) {
    while let Steal::Success(task) = shared.injector().steal() {
        if let Some(task) = task.run() {
            shared.schedule(task, crate::runtime::worker::Push::Back);
        }
    }
}

/// Counts its drop: one per future.
pub(super) struct Counted(pub(super) Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

pub(super) fn parked(
    drops: &Arc<AtomicUsize>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let guard = Counted(drops.clone());
    async move {
        let _guard = guard;
        std::future::pending::<()>().await
    }
}

pub(super) fn spawn_into(
    node: &NodeRef,
    future: impl std::future::Future<Output = ()> + Send + 'static,
) {
    drop(Scope { node: node.clone() }.spawn(future));
}

/// A spawn into a child racing the parent's cancel: the task is refused
/// (its future dropped unpolled) or accepted and then cancelled; either
/// way its future is dropped exactly once and the counts settle. Both
/// scopes start unpublished: the spawn publishes them (the parent first)
/// while the cancel marks the parent, published or not.
#[test]
fn cancel_racing_spawn_into_a_child() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let child = open(&shared, Some(&parent), Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        let spawner = {
            let (child, drops) = (child.clone(), drops.clone());
            thread::spawn(move || spawn_into(&child, parked(&drops)))
        };
        parent.cancel(CancelReason::Explicit, Links::Follow);
        spawner.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 1);
        assert_eq!(child.cancel_value().reason(), &CancelReason::Ancestor);
        assert!(finish(&child, &mut false).is_some());
        assert!(finish(&parent, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A parent and its child cancelled at once while a worker runs their
/// tasks: each future is dropped once, and the child's reason is its own
/// cancel or its parent's.
#[test]
fn parent_and_child_cancelled_at_once() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let child = open(&shared, Some(&parent), Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        spawn_into(&parent, parked(&drops));
        spawn_into(&child, parked(&drops));
        let (p, c) = (parent.clone(), child.clone());
        let t1 = thread::spawn(move || p.cancel(CancelReason::Explicit, Links::Follow));
        let t2 = thread::spawn(move || c.cancel(CancelReason::Explicit, Links::Follow));
        run_queued(&shared);
        t1.join().unwrap();
        t2.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 2);
        assert_eq!(parent.cancel_value().reason(), &CancelReason::Explicit);
        let child_reason = child.cancel_value().reason().clone();
        assert!(matches!(
            child_reason,
            CancelReason::Explicit | CancelReason::Ancestor
        ));
        assert!(finish(&child, &mut false).is_some());
        assert!(finish(&parent, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A linked scope's cancel racing its parent's end: the cancel either
/// reaches the parent (whose node is then cancelled, `LinkedChild`) or
/// finds the linked scope already gone and does nothing; the tree
/// empties.
#[test]
fn linked_cancel_racing_the_parents_end() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let linked = open(&shared, Some(&parent), Kind::Linked);
        spawn_into(&linked, async {});
        let canceller = {
            let linked = linked.clone();
            thread::spawn(move || linked.cancel(CancelReason::Explicit, Links::Follow))
        };
        // The ender: a worker runs the linked scope's task, then both
        // bodies end, inner first.
        run_queued(&shared);
        let (mut linked_told, mut parent_told) = (false, false);
        let linked_out = finish(&linked, &mut linked_told);
        let parent_out = linked_out
            .as_ref()
            .and_then(|_| finish(&parent, &mut parent_told));
        canceller.join().unwrap();
        run_queued(&shared);
        let _ = linked_out
            .or_else(|| finish(&linked, &mut linked_told))
            .expect("the linked scope ends");
        let parent_out = parent_out
            .or_else(|| finish(&parent, &mut parent_told))
            .expect("the parent ends");
        // Nothing was cut short: both ends are `Ok` (the result rule);
        // the cancel reached the parent only through the link.
        assert!(parent_out.cancelled.is_none());
        if parent.cancelled.is_set() {
            assert_eq!(parent.cancel_value().reason(), &CancelReason::LinkedChild);
            assert!(linked.cancelled.is_set(), "the link went through the child");
        }
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A scope whose future is dropped (so its last task removes it) ending
/// while its parent is cancelled: the child leaves the parent's list
/// exactly once, whichever of the walk and the task's release gets there
/// first, and the parent then ends.
#[test]
fn a_scope_ending_while_its_parent_is_cancelled() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let child = open(&shared, Some(&parent), Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        spawn_into(&child, {
            let guard = Counted(drops.clone());
            async move { drop(guard) }
        });
        child.future_dropped();
        let worker = {
            let shared = shared.clone();
            thread::spawn(move || run_queued(&shared))
        };
        parent.cancel(CancelReason::Explicit, Links::Follow);
        worker.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 1);
        let out = finish(&parent, &mut false).expect("the child left, so the parent ends");
        // The parent had no task and its body returned: nothing of it was
        // cut short, though it was cancelled.
        assert!(out.cancelled.is_none() && parent.cancelled.is_set());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// An unpublished scope (its body still in its first poll) while its
/// published parent is cancelled from another thread: it reads the cancel
/// through its parent as soon as the walk marked the parent, takes it as
/// its own (`Ancestor`) when it publishes, and a spawn into it then is
/// refused; never both "not cancelled" after the walk and a task left
/// running.
#[test]
fn an_unpublished_scope_reads_its_ancestors_cancel() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        spawn_into(&parent, parked(&drops)); // publishes the parent
        let child = open(&shared, Some(&parent), Kind::Plain);
        let canceller = {
            let parent = parent.clone();
            thread::spawn(move || parent.cancel(CancelReason::Explicit, Links::Follow))
        };
        let seen_before = child.is_cancelled();
        spawn_into(&child, parked(&drops)); // publishes the child
        canceller.join().unwrap();
        assert!(child.is_cancelled(), "the walk has returned");
        if seen_before {
            assert_eq!(child.cancel_value().reason(), &CancelReason::Ancestor);
        }
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 2, "both futures dropped, once each");
        assert!(finish(&child, &mut false).is_some());
        assert!(finish(&parent, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// An unpublished scope cancelled by one thread (a mark with no lock,
/// `cancel_unpublished`) while another spawns into it, publishing it: the
/// spawn is refused, or the cancel sees the publication and walks the
/// scope; either way the task's future is dropped exactly once and the
/// tree empties.
#[test]
fn an_unpublished_cancel_racing_a_spawn_that_publishes() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        spawn_into(&parent, parked(&drops)); // publishes the parent
        let child = open(&shared, Some(&parent), Kind::Plain);
        let spawner = {
            let (child, drops) = (child.clone(), drops.clone());
            thread::spawn(move || spawn_into(&child, parked(&drops)))
        };
        child.cancel(CancelReason::Explicit, Links::Follow);
        spawner.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 1, "the child's future, once");
        assert_eq!(child.cancel_value().reason(), &CancelReason::Explicit);
        assert!(finish(&child, &mut false).is_some());
        parent.cancel(CancelReason::Explicit, Links::Follow);
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 2);
        assert!(finish(&parent, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}
