//! loom models of what a concurrency limit and a stop request add to the
//! tree's protocol (`tree/limit.rs`, `tree/stop.rs`): a freed slot handed
//! to a queued task while the scope is cancelled, or while that task is
//! cancelled through its handle; and a stop request's walk racing a
//! child's publication. Helpers are `loom_models.rs`'s.
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.

use super::{finish, open, parked, run_queued, spawn_into, Counted};
use crate::cancelled::CancelReason;
use crate::runtime::Shared;
use crate::scope::tree::{Kind, Links, Node, NodeRef, Options, Place};
use crate::scope::Scope;
use loom::thread;
use std::num::NonZeroU32;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// Opens a root with a limit of `max` tasks.
fn open_limited(shared: &Arc<Shared>, max: u32) -> NodeRef {
    let options = Options {
        limit: NonZeroU32::new(max),
        ..Options::default()
    };
    Node::open(
        Place::Root(shared),
        Kind::Plain,
        Location::caller(),
        options,
    )
}

/// A future that counts its polls, then parks, and counts its drop.
fn counted_parked(
    polls: &Arc<AtomicUsize>,
    drops: &Arc<AtomicUsize>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let guard = Counted(drops.clone());
    let polls = polls.clone();
    async move {
        let _guard = guard;
        polls.fetch_add(1, SeqCst);
        std::future::pending::<()>().await
    }
}

/// A running task's end hands its slot to the task queued behind it while
/// another thread cancels the scope: the queued task is started (and then
/// dropped by the cancel or its runner) or dropped unpolled by the walk;
/// either way its future is dropped exactly once, it is polled at most
/// once, and the scope ends with nothing left.
#[test]
fn a_freed_slot_handed_on_while_the_scope_is_cancelled() {
    loom::model(|| {
        let shared = Shared::for_model();
        let node = open_limited(&shared, 1);
        let (polls, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        spawn_into(&node, async {}); // holds the slot until it runs
        spawn_into(&node, counted_parked(&polls, &drops)); // queued
        let worker = {
            let shared = shared.clone();
            thread::spawn(move || run_queued(&shared))
        };
        node.cancel(CancelReason::Explicit, Links::Follow);
        worker.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 1, "the queued future, once");
        assert!(polls.load(SeqCst) <= 1);
        assert!(finish(&node, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A queued task cancelled through its handle while the task ahead of it
/// ends and hands its slot on: the handoff skips it (it is complete) or
/// starts it (and the cancel then drops it, polled once at most); it is
/// dropped once, and the slot reaches the task queued behind it, which
/// runs: no slot is lost.
#[test]
fn a_queued_tasks_handle_cancel_racing_the_handoff() {
    loom::model(|| {
        let shared = Shared::for_model();
        let node = open_limited(&shared, 1);
        let (polls, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let ran = Arc::new(AtomicUsize::new(0));
        let scope = Scope { node: node.clone() };
        drop(scope.spawn(async {}));
        let queued = scope.spawn(counted_parked(&polls, &drops));
        drop(scope.spawn({
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, SeqCst);
            }
        }));
        let worker = {
            let shared = shared.clone();
            thread::spawn(move || run_queued(&shared))
        };
        queued.cancel();
        worker.join().unwrap();
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 1);
        assert!(
            polls.load(SeqCst) <= 1,
            "started before its cancel, or never"
        );
        assert_eq!(ran.load(SeqCst), 1, "the last task got the slot");
        drop(queued);
        assert!(finish(&node, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A stop request's walk racing the publication of a child (a spawn into
/// it): once the request returns, the child has it, whether it was
/// published before the walk read the parent's list (the walk sets it) or
/// after (it is born with it).
#[test]
fn a_stop_request_racing_a_childs_publication() {
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
        parent.request_stop();
        assert!(child.is_stop_requested(), "the request has returned");
        spawner.join().unwrap();
        assert!(child.is_stop_requested());
        parent.cancel(CancelReason::Explicit, Links::Follow);
        run_queued(&shared);
        assert_eq!(drops.load(SeqCst), 2);
        assert!(finish(&child, &mut false).is_some());
        assert!(finish(&parent, &mut false).is_some());
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}
