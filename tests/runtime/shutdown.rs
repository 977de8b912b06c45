//! A bounded shutdown: `Runtime::shutdown_timeout` and
//! `Runtime::shutdown_background`.
//!
//! - A blocking closure deaf to its scope's cancel, still blocked when the
//!   bound passes, does not hold the shutdown: it returns after waiting
//!   its bound, with a report naming the closure's scope (name, id,
//!   location) that prints. The closure, released later, returns on its
//!   detached thread; its value and its future are dropped once, and the
//!   thread exits. On a real and on a paused clock, and with the scope
//!   future dropped by a race (the program that asked for the bound).
//! - A worker stuck in one long synchronous poll likewise: named with its
//!   task's scope; when the poll returns, the future is dropped once and
//!   the worker exits.
//! - A task and a closure that check their scope's cancellation stop
//!   within the bound (the shutdown cancels before it waits), so the
//!   report is empty; so is the report of a runtime with nothing running,
//!   returned long before its bound.
//! - `shutdown_background` returns without waiting for a blocked closure.
//! - Every future is dropped exactly once: parked ones and a queued
//!   closure's by the shutdown, before it returns; the stuck ones by their
//!   runners, later.
//! - A task that shuts its own runtime down is not waited for.
//!
//! What a thread left running does after the shutdown returns is seen
//! through a thread-local whose destructor counts the thread's exit.

use crate::support::{hang_guard, ms, runtime, secs, wait_until, Clock, Counter, OnDrop, Slot};
use cancel_scope::runtime::{Builder, Runtime, ShutdownReport, Straggler, StragglerKind};
use cancel_scope::sync::Event;
use cancel_scope::{scope, shielded_scope, CancelReason, Scope};
use futures_lite::future::{block_on as drive, or, poll_once};
use std::cell::RefCell;
use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Instant;

thread_local! {
    /// Counts this thread's exit, once set.
    static EXIT: RefCell<Option<OnDrop>> = const { RefCell::new(None) };
}

/// Counts the calling thread's exit on `exits` (its thread-locals'
/// destructors run as it exits).
fn count_exit_of_this_thread(exits: &Counter) {
    EXIT.with(|e| *e.borrow_mut() = Some(exits.on_drop()));
}

/// The stragglers of `report` that name a scope: the threads a test left
/// blocked. (An idle thread may be slow to exit on a busy machine, and be
/// listed too, in no scope.)
fn in_scopes(report: &ShutdownReport) -> Vec<&Straggler> {
    report
        .stragglers()
        .iter()
        .filter(|s| s.scope().is_some())
        .collect()
}

/// The bound: a closure deaf to the cancel, blocked until after the call
/// returns, makes the call wait its bound and return with the closure's
/// scope named, on either clock.
#[test]
fn a_blocking_closure_deaf_to_its_cancel_is_left_running_and_named() {
    for clock in [Clock::Real, Clock::Paused] {
        let _hang = hang_guard();
        let rt = runtime(clock, 2);
        let (started_tx, started) = mpsc::channel();
        let (release, parked) = mpsc::channel::<()>();
        let (future_drops, value_drops, exits) = (Counter::new(), Counter::new(), Counter::new());
        let id = Slot::new();
        let handle = Slot::new();
        let mut root = Box::pin({
            let (id, handle) = (id.clone(), handle.clone());
            let (guard, value, exits) =
                (future_drops.on_drop(), value_drops.clone(), exits.clone());
            scope(move |s| async move {
                id.put(s.id());
                handle.put(s.spawn_blocking(move || {
                    let _guard = guard;
                    count_exit_of_this_thread(&exits);
                    started_tx.send(()).unwrap();
                    parked.recv().unwrap(); // deaf to the cancel
                    value.on_drop()
                }));
                pending::<()>().await
            })
            .named("export")
        });
        assert!(rt.block_on(poll_once(&mut root)).is_none());
        started.recv().unwrap();

        let bound = ms(100);
        let start = Instant::now();
        let report = rt.shutdown_timeout(bound);
        assert!(start.elapsed() >= bound, "it returned before its bound");
        println!("{report}"); // as a program would print it
        let named = in_scopes(&report);
        assert_eq!(named.len(), 1, "{report}");
        let closure = named[0];
        assert_eq!(closure.kind(), StragglerKind::BlockingClosure);
        let snapshot = closure.scope().unwrap();
        assert_eq!(snapshot.name(), Some("export"));
        assert_eq!(snapshot.id(), id.take());
        assert_eq!(snapshot.location().file(), file!());
        assert!(closure.thread_name().unwrap().contains("-blocking-"));
        let printed = report.to_string();
        assert!(printed.starts_with("shutdown left "), "{printed}");
        assert!(
            printed.contains("blocking closure, in scope #"),
            "{printed}"
        );
        assert!(printed.contains("\"export\""), "{printed}");
        assert!(
            printed.contains(&snapshot.location().to_string()),
            "{printed}"
        );
        assert_eq!(future_drops.get(), 0, "the closure still runs");

        release.send(()).unwrap();
        wait_until("the closure's thread to exit", || exits.get() == 1);
        assert_eq!(future_drops.get(), 1);
        // The closure returned: its handle keeps the late value.
        assert_eq!(value_drops.get(), 0);
        drop(drive(handle.take()).expect("the closure value"));
        assert_eq!(value_drops.get(), 1, "the late value is dropped once");
        let out = drive(root);
        assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
    }
}

/// The program that asked for the bound: the closure's scope future lost
/// a race and was dropped, the closure ran on; the shutdown still ends at
/// its bound, and names the detached scope.
#[test]
fn a_closure_whose_scope_future_lost_a_race_does_not_hold_the_shutdown() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let started = Event::new();
    let (release, parked) = mpsc::channel::<()>();
    let (value_drops, exits) = (Counter::new(), Counter::new());
    let work = {
        let (started, value, exits) = (started.clone(), value_drops.clone(), exits.clone());
        scope(move |s| async move {
            s.spawn_blocking(move || {
                count_exit_of_this_thread(&exits);
                started.set();
                parked.recv().unwrap();
                value.on_drop()
            });
        })
        .named("fetch")
    };
    rt.block_on(or(
        async {
            let _ = work.await;
        },
        started.wait(),
    ));

    let report = rt.shutdown_timeout(ms(50));
    let named = in_scopes(&report);
    assert_eq!(named.len(), 1, "{report}");
    assert_eq!(named[0].kind(), StragglerKind::BlockingClosure);
    assert_eq!(named[0].scope().unwrap().name(), Some("fetch"));

    release.send(()).unwrap();
    wait_until("the closure's thread to exit", || exits.get() == 1);
    assert_eq!(value_drops.get(), 1);
}

/// A worker stuck inside one poll is left running and named with its
/// task's scope; once the poll returns, the future is dropped once and the
/// worker exits.
#[test]
fn a_worker_stuck_in_one_long_poll_is_left_running_and_named() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let polling = Event::new();
    let (release, parked) = mpsc::channel::<()>();
    let (future_drops, exits) = (Counter::new(), Counter::new());
    let work = {
        let (polling, guard, exits) = (polling.clone(), future_drops.on_drop(), exits.clone());
        scope(move |s| async move {
            s.spawn(async move {
                let _guard = guard;
                count_exit_of_this_thread(&exits);
                polling.set();
                parked.recv().unwrap(); // holds the worker
                pending::<()>().await
            });
        })
        .named("stuck")
    };
    rt.block_on(or(
        async {
            let _ = work.await;
        },
        polling.wait(),
    ));

    let report = rt.shutdown_timeout(ms(50));
    let named = in_scopes(&report);
    assert_eq!(named.len(), 1, "{report}");
    assert_eq!(named[0].kind(), StragglerKind::Task { worker: 0 });
    assert_eq!(named[0].scope().unwrap().name(), Some("stuck"));
    assert!(report.to_string().contains("task on worker 0, in scope #"));
    assert_eq!(future_drops.get(), 0, "the poll still runs");

    release.send(()).unwrap();
    wait_until("the worker to exit", || exits.get() == 1);
    assert_eq!(future_drops.get(), 1, "dropped once, by its runner");
}

/// The shutdown cancels before it waits: a task in a long poll and a
/// closure that both check their (shielded, so far uncancelled) scope stop
/// at the cancel, well within a bound of an hour, and nothing is left.
#[test]
fn a_task_and_a_closure_that_check_their_cancel_stop_within_the_bound() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let (started_tx, started) = mpsc::channel();
    let spin_until_cancelled = |s: Scope| {
        move || {
            while !s.is_cancelled() {
                thread::yield_now();
            }
        }
    };
    let mut root = Box::pin(shielded_scope(move |s| async move {
        let task_tx = started_tx.clone();
        let spin = spin_until_cancelled(s.clone());
        s.spawn(async move {
            task_tx.send(()).unwrap();
            spin(); // one long poll
        });
        s.spawn_blocking({
            let spin = spin_until_cancelled(s.clone());
            move || {
                started_tx.send(()).unwrap();
                spin();
            }
        });
    }));
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    started.recv().unwrap();
    started.recv().unwrap();

    let report = rt.shutdown_timeout(secs(3600));
    assert!(report.is_complete(), "{report}");
    assert_eq!(
        report.to_string(),
        "shutdown complete: nothing left running\n"
    );
    drop(root);
}

/// With nothing running, the report is empty and comes as soon as the
/// threads have exited, not at the bound (an hour: the hang guard would
/// fail the test first).
#[test]
fn nothing_running_gives_an_empty_report_at_once() {
    let _hang = hang_guard();
    let rt = Builder::new()
        .worker_threads(2)
        .blocking_keep_alive(secs(3600))
        .build()
        .unwrap();
    let out = rt.block_on(scope(|s| async move {
        let task = s.spawn(async { 1 });
        let closure = s.spawn_blocking(|| 2);
        task.await.unwrap() + closure.await.unwrap()
    }));
    assert_eq!(out, Ok(3));
    assert_eq!(rt.blocking_threads(), 1, "an idle blocking thread");
    let report = rt.shutdown_timeout(secs(3600));
    assert!(report.is_complete(), "{report}");
    assert!(report.stragglers().is_empty());
}

/// `shutdown_background` returns while a closure is still blocked, having
/// dropped the parked futures.
#[test]
fn shutdown_background_returns_without_waiting() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let (started_tx, started) = mpsc::channel();
    let (release, parked) = mpsc::channel::<()>();
    let (parked_drops, exits, polls) = (Counter::new(), Counter::new(), Counter::new());
    let mut root = Box::pin({
        let (guard, exits, polls) = (parked_drops.on_drop(), exits.clone(), polls.clone());
        scope(move |s| async move {
            s.spawn(async move {
                let _guard = guard;
                polls.inc();
                pending::<()>().await
            });
            s.spawn_blocking(move || {
                count_exit_of_this_thread(&exits);
                started_tx.send(()).unwrap();
                parked.recv().unwrap();
            });
            pending::<()>().await
        })
    });
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    started.recv().unwrap();
    // A future in its poll is the runner's to drop, after the poll: make
    // sure the parked task's first poll is over. The one worker began it,
    // so it ends it before it runs a task spawned after.
    wait_until("the parked task to be polled", || polls.get() == 1);
    let probe = rt.block_on(scope(|s| async move { s.spawn(async {}).await }));
    assert!(matches!(probe, Ok(Ok(()))));

    rt.shutdown_background();
    assert_eq!(parked_drops.get(), 1, "the parked future was dropped");
    release.send(()).unwrap();
    wait_until("the closure's thread to exit", || exits.get() == 1);
    assert_eq!(drive(root).unwrap_err().reason(), &CancelReason::Shutdown);
}

/// Every future is dropped exactly once: the parked tasks' and a queued
/// closure's (which never runs) by the shutdown before it returns, the
/// stuck task's and closure's by their runners once released.
#[test]
fn every_future_is_dropped_exactly_once() {
    const PARKED: usize = 50;
    let _hang = hang_guard();
    let name = thread::current().name().unwrap_or("test").to_string();
    let rt = Builder::new()
        .worker_threads(2)
        .max_blocking_threads(1)
        .thread_name(name)
        .build()
        .unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release_closure, closure_parked) = mpsc::channel::<()>();
    let (release_task, task_parked) = mpsc::channel::<()>();
    let [parked, queued, closure, value, task] = std::array::from_fn(|_| Counter::new());
    let parked_polls = Counter::new();
    let exits = Counter::new();
    let queued_ran = Arc::new(AtomicBool::new(false));
    let mut root = Box::pin({
        let (parked, parked_polls, queued, closure, value, task, exits, queued_ran) = (
            parked.clone(),
            parked_polls.clone(),
            queued.on_drop(),
            closure.on_drop(),
            value.clone(),
            task.on_drop(),
            exits.clone(),
            queued_ran.clone(),
        );
        scope(move |s| async move {
            for _ in 0..PARKED {
                let (guard, polls) = (parked.on_drop(), parked_polls.clone());
                s.spawn(async move {
                    let _guard = guard;
                    polls.inc();
                    pending::<()>().await
                });
            }
            let (tx, exits_too) = (started_tx.clone(), exits.clone());
            s.spawn_blocking(move || {
                let _guard = closure;
                count_exit_of_this_thread(&exits_too);
                tx.send(()).unwrap();
                closure_parked.recv().unwrap();
                value.on_drop()
            });
            s.spawn_blocking(move || {
                let _guard = queued;
                queued_ran.store(true, SeqCst); // never: the pool's one thread is busy
            });
            s.spawn(async move {
                let _guard = task;
                count_exit_of_this_thread(&exits);
                started_tx.send(()).unwrap();
                task_parked.recv().unwrap();
                pending::<()>().await
            });
            pending::<()>().await
        })
    });
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    started.recv().unwrap();
    started.recv().unwrap();

    // So that no worker is in a parked task's first poll.
    wait_until("every parked task to be polled", || {
        parked_polls.get() == PARKED
    });

    let report = rt.shutdown_timeout(ms(100));
    let mut kinds: Vec<_> = in_scopes(&report).iter().map(|s| s.kind()).collect();
    kinds.sort_by_key(|k| matches!(k, StragglerKind::BlockingClosure));
    assert!(
        matches!(
            kinds[..],
            [StragglerKind::Task { .. }, StragglerKind::BlockingClosure]
        ),
        "{report}"
    );
    assert_eq!(
        parked.get(),
        PARKED,
        "parked futures dropped by the shutdown"
    );
    assert_eq!(
        queued.get(),
        1,
        "the queued closure dropped by the shutdown"
    );
    assert!(!queued_ran.load(SeqCst), "a queued closure ran");
    assert_eq!((closure.get(), value.get(), task.get()), (0, 0, 0));

    release_closure.send(()).unwrap();
    release_task.send(()).unwrap();
    wait_until("both threads left running to exit", || exits.get() == 2);
    assert_eq!(drive(root).unwrap_err().reason(), &CancelReason::Shutdown);
    assert_eq!(
        [
            parked.get(),
            queued.get(),
            closure.get(),
            value.get(),
            task.get()
        ],
        [PARKED, 1, 1, 1, 1],
        "each dropped exactly once"
    );
}

/// A task that owns its runtime and shuts it down does not wait for its
/// own worker, nor report it.
#[test]
fn a_task_that_shuts_its_own_runtime_down_is_not_waited_for() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let slot: Slot<Runtime> = Slot::new();
    let report: Slot<ShutdownReport> = Slot::new();
    let (go, done) = (Event::new(), Event::new());
    let mut root = Box::pin({
        let (slot, report, go, done) = (slot.clone(), report.clone(), go.clone(), done.clone());
        scope(move |s| async move {
            s.spawn(async move {
                go.wait().await;
                report.put(slot.take().shutdown_timeout(secs(3600)));
                done.set();
            });
            pending::<()>().await
        })
    });
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    slot.put(rt);
    go.set();
    drive(done.wait());
    let report = report.take();
    assert!(report.is_complete(), "{report}");
    assert_eq!(drive(root).unwrap_err().reason(), &CancelReason::Shutdown);
}
