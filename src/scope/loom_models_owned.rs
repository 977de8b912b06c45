//! loom models of what a scope owns meeting its cancel walk: a cancel handler
//! registered, or its guard dropped, while the scope is cancelled (rule
//! "handlers before the end" in `tree/handlers.rs`); a scope's drain, which
//! begins its cleanups or stops its daemons (`tree/owned.rs`), made by a
//! task's release racing a cancel. The helpers are `loom_models.rs`'s.
//!
//! The two drain models run a cleanup phase or a daemons' scope after the
//! race, which opens nodes and runs tasks: explored without a bound they
//! run for hours, so they are explored up to a preemption bound of 2 (as
//! is one sleep-protocol model, `runtime/idle/`).
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib
//! loom_models`.

use super::loom_models::{finish, open, parked, run_queued, spawn_into, Counted};
use super::tree::{Kind, Links, NodeRef};
use super::Scope;
use crate::cancelled::CancelReason;
use crate::runtime::Shared;
use crate::scope::ScopeEnd;
use loom::thread;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// loom, up to a preemption bound of 2 (the module docs).
fn bounded(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(model);
}

/// Ends a scope's body and runs whatever that leaves queued (a cleanup
/// phase's task), until the scope is gone.
fn finish_all(shared: &Shared, node: &NodeRef) {
    let mut told = false;
    loop {
        if finish(node, &mut told).is_some() {
            return;
        }
        run_queued(shared);
    }
}

/// A handler registered while another thread cancels the scope: it runs
/// exactly once (the walk claimed it, or the registration saw the mark
/// and ran it at once), and by the time both calls returned.
#[test]
fn a_handler_registered_as_its_scope_is_cancelled_runs_once() {
    loom::model(|| {
        let shared = Shared::for_model();
        let node = open(&shared, None, Kind::Plain);
        let runs = Arc::new(AtomicUsize::new(0));
        let registrar = {
            let (node, runs) = (node.clone(), runs.clone());
            thread::spawn(move || {
                let key = node.on_cancel(Box::new(move |_| {
                    runs.fetch_add(1, SeqCst);
                }));
                (node, key)
            })
        };
        node.cancel(CancelReason::Explicit, Links::Follow);
        let (registered, key) = registrar.join().unwrap();
        assert_eq!(runs.load(SeqCst), 1);
        if let Some(key) = key {
            registered.forget_cancel_handler(key);
        }
        finish_all(&shared, &node);
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A guard dropped while another thread cancels the scope: the handler
/// runs at most once, and never once the drop has returned (the drop waits
/// for a handler another thread runs).
#[test]
fn a_guard_dropped_as_its_scope_is_cancelled() {
    loom::model(|| {
        let shared = Shared::for_model();
        let node = open(&shared, None, Kind::Plain);
        let runs = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let key = {
            let (runs, dropped) = (runs.clone(), dropped.clone());
            node.on_cancel(Box::new(move |_| {
                assert!(!dropped.load(SeqCst), "ran after its guard's drop");
                runs.fetch_add(1, SeqCst);
            }))
            .expect("not cancelled yet")
        };
        let dropper = {
            let (node, dropped) = (node.clone(), dropped.clone());
            thread::spawn(move || {
                node.forget_cancel_handler(key);
                dropped.store(true, SeqCst);
            })
        };
        node.cancel(CancelReason::Explicit, Links::Follow);
        dropper.join().unwrap();
        assert!(runs.load(SeqCst) <= 1);
        finish_all(&shared, &node);
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A scope with a cleanup whose last task ends (on a worker) while
/// another thread cancels it: the cleanup phase begins once, after the
/// task, and the cleanup is told an ending that agrees with the scope's
/// result.
#[test]
fn a_drain_with_cleanups_racing_a_cancel() {
    bounded(|| {
        let shared = Shared::for_model();
        let node = open(&shared, None, Kind::Plain);
        let runs = Arc::new(AtomicUsize::new(0));
        let told = Arc::new(Mutex::new(None));
        let task_gone = Arc::new(AtomicUsize::new(0));
        {
            let (runs, told, gone) = (runs.clone(), told.clone(), task_gone.clone());
            let registered = node.defer(Box::new(move |end| {
                Box::pin(async move {
                    assert_eq!(gone.load(SeqCst), 1, "a cleanup before the task ended");
                    runs.fetch_add(1, SeqCst);
                    *told.lock().unwrap() = Some(end);
                })
            }));
            assert!(registered.is_ok());
        }
        spawn_into(&node, {
            let guard = Counted(task_gone.clone());
            async move { drop(guard) }
        });
        let canceller = {
            let node = node.clone();
            thread::spawn(move || node.cancel(CancelReason::Explicit, Links::Follow))
        };
        let mut told_body = false;
        let early = finish(&node, &mut told_body);
        assert!(early.is_none(), "the cleanup holds the scope");
        run_queued(&shared);
        canceller.join().unwrap();
        let out = loop {
            run_queued(&shared);
            if let Some(out) = finish(&node, &mut told_body) {
                break out;
            }
        };
        assert_eq!(runs.load(SeqCst), 1);
        let told = told.lock().unwrap().take().expect("the cleanup ran");
        match (&out.cancelled, told) {
            (None, ScopeEnd::Completed { .. }) => {}
            (Some(c), ScopeEnd::Cancelled(t)) => assert_eq!(c, &t),
            (out, told) => panic!("{out:?} but told {told:?}"),
        }
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}

/// A scope whose last task ends while another thread cancels it, with a
/// daemon: the daemon is dropped once, and the scope ends, whichever of
/// the walk and the drain's stop gets to it first.
#[test]
fn a_drain_with_daemons_racing_a_cancel() {
    bounded(|| {
        let shared = Shared::for_model();
        let node = open(&shared, None, Kind::Plain);
        let drops = Arc::new(AtomicUsize::new(0));
        let scope = Scope { node: node.clone() };
        drop(scope.spawn_daemon(parked(&drops)));
        spawn_into(&node, async {});
        let canceller = {
            let node = node.clone();
            thread::spawn(move || node.cancel(CancelReason::Explicit, Links::Follow))
        };
        run_queued(&shared);
        canceller.join().unwrap();
        finish_all(&shared, &node);
        assert_eq!(drops.load(SeqCst), 1, "the daemon's future, once");
        assert_eq!(shared.roots().live_counts(), (0, 0));
    });
}
