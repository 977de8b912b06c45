//! loom models of the scope tree's races, on the real tree, tasks and
//! cancel batch: the tree's lock is loom's, the model's threads stand in
//! for workers (they run what the injector holds), and loom explores every
//! order in which they take the lock and touch the tasks' state words.
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.

use super::tree::{Deferred, Kind, Outcome};
use super::{Scope, ScopeInner};
use crate::cancelled::CancelReason;
use crate::loom::deque::Steal;
use crate::runtime::Shared;
use loom::thread;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// Opens a scope node (its body is "running" until [`finish`]).
fn open(shared: &Arc<Shared>, parent: Option<&Arc<ScopeInner>>, kind: Kind) -> Arc<ScopeInner> {
    shared.tree.lock().insert(parent.map(|p| p.id), kind, |id| {
        ScopeInner::new(shared.clone(), id, Location::caller())
    })
}

/// Ends a scope's body, as its future does; `Some` once the node is gone.
fn finish(inner: &ScopeInner) -> Option<Outcome> {
    let mut deferred = Deferred::default();
    let waker = waker_fn::waker_fn(|| {});
    let outcome = inner
        .shared
        .tree
        .lock()
        .finish_body(inner.id, &waker, &mut deferred);
    deferred.run(&inner.shared);
    outcome
}

/// A worker's turn: runs every queued task once.
fn run_queued(shared: &Shared) {
    while let Steal::Success(task) = shared.injector().steal() {
        task.run();
    }
}

/// Counts its drop: one per future.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn parked(drops: &Arc<AtomicUsize>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let guard = Counted(drops.clone());
    async move {
        let _guard = guard;
        std::future::pending::<()>().await
    }
}

/// A spawn into a child racing the parent's cancel: the task is refused
/// (its future dropped unpolled) or accepted and then cancelled; either
/// way its future is dropped exactly once and the tree's counts settle.
#[test]
fn cancel_racing_spawn_into_a_child() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let child = open(&shared, Some(&parent), Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        let (scope, d) = (
            Scope {
                inner: child.clone(),
            },
            drops.clone(),
        );
        let spawner = thread::spawn(move || drop(scope.spawn(parked(&d))));
        parent.cancel(CancelReason::Explicit, true);
        spawner.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 1);
        assert_eq!(shared.tree.lock().live_tasks(), 0);
        assert_eq!(child.cancel_value().reason(), &CancelReason::Ancestor);
        assert!(finish(&child).is_some());
        assert!(finish(&parent).is_some());
        assert_eq!(shared.tree.lock().live_scopes(), 0);
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
        drop(
            Scope {
                inner: parent.clone(),
            }
            .spawn(parked(&drops)),
        );
        drop(
            Scope {
                inner: child.clone(),
            }
            .spawn(parked(&drops)),
        );
        let (p, c) = (parent.clone(), child.clone());
        let t1 = thread::spawn(move || p.cancel(CancelReason::Explicit, true));
        let t2 = thread::spawn(move || c.cancel(CancelReason::Explicit, true));
        run_queued(&shared);
        t1.join().unwrap();
        t2.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 2);
        assert_eq!(shared.tree.lock().live_tasks(), 0);
        assert_eq!(parent.cancel_value().reason(), &CancelReason::Explicit);
        let child_reason = child.cancel_value().reason().clone();
        assert!(matches!(
            child_reason,
            CancelReason::Explicit | CancelReason::Ancestor
        ));
        assert!(finish(&child).is_some());
        assert!(finish(&parent).is_some());
    });
}

/// A linked scope's cancel racing its parent's end: the cancel either
/// reaches the parent (which then ends cancelled, `LinkedChild`) or finds
/// the linked scope already gone and does nothing; the tree empties.
#[test]
fn linked_cancel_racing_the_parents_end() {
    loom::model(|| {
        let shared = Shared::for_model();
        let parent = open(&shared, None, Kind::Plain);
        let linked = open(&shared, Some(&parent), Kind::Linked);
        drop(
            Scope {
                inner: linked.clone(),
            }
            .spawn(async {}),
        );
        let l = linked.clone();
        let canceller = thread::spawn(move || l.cancel(CancelReason::Explicit, true));
        // The ender: a worker runs the linked scope's task, then both
        // bodies end, inner first.
        run_queued(&shared);
        let linked_out = finish(&linked);
        let parent_out = linked_out.as_ref().and_then(|_| finish(&parent));
        canceller.join().unwrap();
        run_queued(&shared);
        let linked_out = linked_out
            .or_else(|| finish(&linked))
            .expect("the linked scope ends");
        let parent_out = parent_out
            .or_else(|| finish(&parent))
            .expect("the parent ends");
        match &parent_out.cancelled {
            Some(c) => {
                assert_eq!(c.reason(), &CancelReason::LinkedChild);
                assert!(
                    linked_out.cancelled.is_some(),
                    "the link went through the child"
                );
            }
            None => assert!(!parent.cancelled.is_set()),
        }
        let tree = shared.tree.lock();
        assert_eq!((tree.live_tasks(), tree.live_scopes()), (0, 0));
    });
}
