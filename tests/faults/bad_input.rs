//! Bad input: misuse of the API, each checked against its documented
//! outcome.
//!
//! - `block_on` inside a worker panics with "`block_on` called from a
//!   runtime worker thread", for its own runtime, another runtime and the
//!   free `runtime::block_on`. Caught, the task goes on; uncaught, the
//!   panic resumes from the scope; the workers survive.
//! - A `CancelHandle` whose scope ended (cancelled or not) cancels nothing
//!   in 50 scopes opened after it, used from this thread or another one;
//!   `cancelled()` on it never resolves.
//! - A `JoinHandle` polled again after `Ready` panics with "`JoinHandle`
//!   polled after it completed", after a finished, a cancelled and a
//!   refused task.
//! - Spawning through a kept clone of an ended scope's `Scope` (from
//!   outside the runtime, or from a task of a new scope) is refused with
//!   `ScopeEnded`; spawning into a cancelled scope, with the scope's own
//!   reason. The future is dropped at once and never polled.
//! - `Builder::worker_threads(0)` panics.
//! - Dropping a `Runtime` while tasks are parked (on an event, in a
//!   one-hour sleep, in a yield loop, in a nested scope, in a shield)
//!   drops every future exactly once and does not hang, even when one of
//!   its own tasks drops it; the scope future then ends with `Shutdown`.
//!   Scopes opened after that are born cancelled (`Shutdown`), shields
//!   included, and refuse spawns.
//! - A runtime kept in a `thread_local!` is dropped cleanly when its
//!   thread exits, with scopes still open (in a child process, since a
//!   failure aborts).
//! - Dropping a scope future mid-run (it loses a
//!   `futures_lite::future::or`) cancels its tasks with `ScopeDropped`:
//!   parked futures are dropped at once, one inside its poll when that
//!   poll returns; spawning through a kept `Scope` is refused; nothing is
//!   polled again and nothing stays live.
//!
//! Under Miri, the tests that start the process-wide runtime or a child
//! process are ignored.

use crate::reliability::{assert_child_passed, assert_serves, is_child, noop_waker, run_in_child};
use crate::support::{
    expect_panic, hang_guard, runtime, wait_until, BoxFuture, Clock, Counter, Probe, Slot,
};
use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{scope, shielded_scope, CancelHandle, CancelReason, JoinHandle, Scope};
use futures_lite::future::{block_on as drive, or, poll_once};
use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

const WORKERS: usize = 2;
const BLOCK_ON_IN_WORKER: &str = "`block_on` called from a runtime worker thread";

// ---------------------------------------------------------------------
// block_on inside a worker.
// ---------------------------------------------------------------------

#[test]
fn block_on_inside_a_worker_panics_and_the_worker_survives() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, WORKERS));
    let other = Arc::new(runtime(Clock::Real, 1));
    // Caught inside the task: the task goes on, on the same worker.
    let (rt2, other2) = (rt.clone(), other.clone());
    let out = rt.block_on(scope(|s| async move {
        s.spawn(async move {
            let own = expect_panic(|| rt2.block_on(async { 1 }));
            let foreign = expect_panic(|| other2.block_on(async { 2 }));
            yield_now().await;
            (own, foreign)
        })
        .await
    }));
    let (own, foreign) = out.unwrap().unwrap();
    assert!(own.contains(BLOCK_ON_IN_WORKER), "message: {own}");
    assert!(foreign.contains(BLOCK_ON_IN_WORKER), "message: {foreign}");
    // Not caught: the task panics, and its scope resumes the panic.
    let rt3 = rt.clone();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            s.spawn(async move { rt3.block_on(async {}) });
        }))
    });
    assert!(message.contains(BLOCK_ON_IN_WORKER), "message: {message}");
    assert_serves(&rt, WORKERS);
    assert_serves(&other, 1);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "starts the process-wide runtime, whose threads never end"
)]
fn the_free_block_on_inside_a_worker_panics_too() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let out = rt.block_on(scope(|s| async move {
        s.spawn(async { expect_panic(|| cancel_scope::runtime::block_on(async {})) })
            .await
    }));
    let message = out.unwrap().unwrap();
    assert!(message.contains(BLOCK_ON_IN_WORKER), "message: {message}");
    assert_serves(&rt, WORKERS);
}

// ---------------------------------------------------------------------
// Stale CancelHandle.
// ---------------------------------------------------------------------

#[test]
fn stale_cancel_handle_cancels_nothing_in_later_scopes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    // One ended uncancelled, one ended cancelled.
    let ended = rt
        .block_on(scope(|s| async move { s.cancel_handle() }))
        .unwrap();
    let cancelled: CancelHandle = {
        let kept = Slot::new();
        let k = kept.clone();
        let out = rt.block_on(scope(|s| {
            k.put(s.cancel_handle());
            async move { s.cancel() }
        }));
        // The body returned: the cancel interrupted nothing.
        assert!(out.is_ok());
        kept.take()
    };
    assert!(!ended.is_cancelled());
    assert!(cancelled.is_cancelled());
    let rounds = if cfg!(miri) { 3 } else { 50 };
    for round in 0..rounds {
        let (ended, cancelled) = (ended.clone(), cancelled.clone());
        let forever = Event::new();
        let out = rt.block_on(scope(|s| async move {
            let release = Event::new();
            let r = release.clone();
            let task = s.spawn(async move {
                r.wait().await;
                round
            });
            // Stale handles, from this thread and from another one.
            ended.cancel();
            cancelled.cancel();
            let (e, c) = (ended.clone(), cancelled.clone());
            thread::spawn(move || {
                e.cancel();
                c.cancel();
            })
            .join()
            .unwrap();
            // A waiter on a stale handle never resolves.
            assert!(poll_once(ended.cancelled()).await.is_none());
            assert!(!s.is_cancelled(), "a stale handle cancelled a new scope");
            yield_now().await;
            release.set();
            let _ = &forever;
            task.await
        }));
        assert_eq!(out, Ok(Ok(round)), "round {round}");
    }
    assert!(!ended.is_cancelled());
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

// ---------------------------------------------------------------------
// JoinHandle polled after Ready.
// ---------------------------------------------------------------------

const POLLED_AFTER: &str = "`JoinHandle` polled after it completed";

fn poll_again<T>(handle: &mut JoinHandle<T>) -> String {
    let waker = noop_waker();
    expect_panic(|| Pin::new(handle).poll(&mut Context::from_waker(&waker)))
}

#[test]
#[allow(clippy::async_yields_async)] // handles are carried out on purpose
fn join_handle_polled_after_ready_panics() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    // A task that ran to its end.
    let mut done = rt
        .block_on(scope(|s| async move {
            let mut h = s.spawn(async { 5 });
            assert_eq!((&mut h).await, Ok(5));
            h
        }))
        .unwrap();
    assert!(poll_again(&mut done).contains(POLLED_AFTER));
    // A task that was cancelled.
    let stash = Slot::new();
    let out = rt.block_on(scope(|s| {
        let stash = stash.clone();
        async move {
            stash.put(s.spawn(std::future::pending::<()>()));
            s.cancel();
        }
    }));
    assert!(out.is_err());
    let mut cancelled = stash.take();
    let reason = rt.block_on(&mut cancelled).unwrap_err();
    assert_eq!(reason.reason(), &CancelReason::Explicit);
    assert!(poll_again(&mut cancelled).contains(POLLED_AFTER));
    // A refused spawn (into an ended scope).
    let kept = rt.block_on(scope(|s| async move { s })).unwrap();
    let mut refused = kept.spawn(async { 1 });
    let first = drive(&mut refused);
    assert_eq!(first.unwrap_err().reason(), &CancelReason::ScopeEnded);
    assert!(poll_again(&mut refused).contains(POLLED_AFTER));
    assert_serves(&rt, WORKERS);
}

// ---------------------------------------------------------------------
// Spawning into an ended or cancelled scope through a kept clone.
// ---------------------------------------------------------------------

#[test]
fn spawn_into_an_ended_scope_is_refused_without_polling() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let kept: Scope = rt.block_on(scope(|s| async move { s })).unwrap();
    let probe = Probe::new();
    // From a thread outside any runtime.
    let h = kept.spawn(probe.wrap(async { 1 }));
    assert_eq!(probe.drops(), 1, "the refused future is dropped at once");
    let err = drive(h).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::ScopeEnded);
    // From a task of a new scope: the task must not land in the new
    // scope.
    let (kept2, probe2) = (kept.clone(), probe.clone());
    let out = rt.block_on(scope(|s| async move {
        s.spawn(async move {
            let h = kept2.spawn(probe2.wrap(async { 2 }));
            h.await.map_err(|c| c.reason().clone())
        })
        .await
    }));
    assert_eq!(out, Ok(Ok(Err(CancelReason::ScopeEnded))));
    assert_eq!(probe.polls(), 0, "a refused future was polled");
    assert_eq!(probe.drops(), 2);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

#[test]
fn spawn_into_a_cancelled_scope_is_refused_without_polling() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let probe = Probe::new();
    let p = probe.clone();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let r = refused.clone();
    let out = rt.block_on(scope(|s| async move {
        s.cancel();
        // The body runs on until its next suspension: the scope is
        // cancelled but has not ended, so spawns are refused with the
        // scope's own reason.
        let mut handles: Vec<_> = (0..10).map(|_| s.spawn(p.wrap(async {}))).collect();
        let s2 = s.clone();
        handles.push(
            thread::spawn(move || s2.spawn(p.wrap(async {})))
                .join()
                .unwrap(),
        );
        // Refused handles are ready at once, even outside a runtime.
        let reasons = handles
            .into_iter()
            .map(|h| drive(h).map_err(|c| c.reason().clone()));
        r.lock().unwrap().extend(reasons);
    }));
    // The body returned and the scope never ran a task: nothing was
    // interrupted.
    assert_eq!(out, Ok(()));
    let refused = refused.lock().unwrap();
    assert_eq!(refused.len(), 11);
    assert!(
        refused.iter().all(|r| r == &Err(CancelReason::Explicit)),
        "{refused:?}"
    );
    assert_eq!(probe.polls(), 0, "a refused future was polled");
    assert_eq!(probe.drops(), 11);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

// ---------------------------------------------------------------------
// Builder::worker_threads(0).
// ---------------------------------------------------------------------

#[test]
fn zero_worker_threads_panics() {
    let message = expect_panic(|| {
        let _ = Builder::new().worker_threads(0);
    });
    assert!(
        message.contains("worker_threads must be at least 1"),
        "message: {message}"
    );
    // The builder is still usable with a valid count.
    let rt = Builder::new().worker_threads(1).build().unwrap();
    assert_eq!(rt.block_on(async { 3 }), 3);
}

// ---------------------------------------------------------------------
// Dropping a Runtime while tasks are parked.
// ---------------------------------------------------------------------

/// Opens a scope on `rt` with `PARKED` futures of every kind that parks
/// (event wait, a one-hour sleep, a self-waking loop, a nested scope, a
/// shield), polls it once so that it joins `rt`'s tree, and waits until
/// every task has been polled. Returns the pending scope future.
const PARKED: usize = 6;

fn park_everything(
    rt: &Runtime,
    probe: &Arc<Probe>,
    extra: impl Future<Output = ()> + Send + 'static,
) -> BoxFuture<Result<(), cancel_scope::Cancelled>> {
    let forever = Event::new();
    let p = probe.clone();
    let mut fut: BoxFuture<_> = Box::pin(scope(move |s| async move {
        let c = |f: BoxFuture| p.wrap(f);
        let f1 = forever.clone();
        s.spawn(c(Box::pin(async move { f1.wait().await })));
        s.spawn(c(Box::pin(async {
            sleep(Duration::from_secs(3600)).await
        })));
        s.spawn(c(Box::pin(async {
            loop {
                yield_now().await;
            }
        })));
        let (f2, inner) = (forever.clone(), c(Box::pin(std::future::pending())));
        s.spawn(c(Box::pin(async move {
            let _ = scope(|n| async move {
                n.spawn(inner);
                f2.wait().await
            })
            .await;
        })));
        let shielded = c(Box::pin(std::future::pending()));
        s.spawn(async move {
            let _ = shielded_scope(move |_| shielded).await;
        });
        s.spawn(extra);
        std::future::pending::<()>().await
    }));
    assert!(rt.block_on(poll_once(&mut fut)).is_none());
    // Every probed future has been polled at least once (the shielded one
    // and the nested one run in tasks of their own).
    wait_until("every task to run", || probe.polls() >= PARKED);
    fut
}

#[test]
fn dropping_a_runtime_with_parked_tasks_drops_every_future() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let probe = Probe::new();
    let fut = park_everything(&rt, &probe, async {});
    assert_eq!(probe.drops(), 0);
    assert!(rt.live_tasks() > 0);
    drop(rt);
    assert_eq!(
        probe.drops(),
        PARKED,
        "every future was dropped exactly once"
    );
    // The scope future, driven without the runtime, ends cancelled.
    let out = drive(fut);
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
}

#[test]
fn dropping_a_runtime_from_one_of_its_own_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let probe = Probe::new();
    let slot: Slot<Runtime> = Slot::new();
    let go = Event::new();
    let dropped = Event::new();
    let killer = {
        let (slot, go, dropped) = (slot.clone(), go.clone(), dropped.clone());
        async move {
            go.wait().await;
            let rt = slot.take();
            drop(rt);
            dropped.set();
            std::future::pending::<()>().await
        }
    };
    let fut = park_everything(&rt, &probe, killer);
    slot.put(rt);
    go.set();
    drive(dropped.wait());
    let out = drive(fut);
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
    assert_eq!(
        probe.drops(),
        PARKED,
        "every future was dropped exactly once"
    );
}

/// After its runtime is dropped, a task that opens scopes finds each born
/// cancelled with reason `Shutdown`, a shield included, and every spawn
/// refused: nothing is left queued on a worker that is gone, and whoever
/// awaits the root scope sees it end.
#[test]
fn scopes_opened_after_shutdown_are_born_cancelled_shields_included() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let slot: Slot<Runtime> = Slot::new();
    let body = Probe::new();
    let outcomes: Arc<Mutex<Vec<CancelReason>>> = Arc::default();
    let go = Event::new();
    let task = {
        let (slot, go, outcomes) = (slot.clone(), go.clone(), outcomes.clone());
        let body = body.clone();
        async move {
            go.wait().await;
            drop(slot.take());
            let body = body.wrap(std::future::pending::<()>());
            let shielded = shielded_scope(move |_| body).await;
            let plain = scope(|s| async move {
                let refused = s.spawn(async {}).await;
                refused.unwrap_err().reason().clone()
            })
            .await;
            let mut outcomes = outcomes.lock().unwrap();
            outcomes.push(shielded.unwrap_err().reason().clone());
            outcomes.push(plain.unwrap_err().reason().clone());
        }
    };
    let mut root = Box::pin(scope(|s| async move {
        s.spawn(task);
        std::future::pending::<()>().await
    }));
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    slot.put(rt);
    go.set();
    let out = drive(root);
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
    let outcomes = outcomes.lock().unwrap().clone();
    assert_eq!(outcomes, [CancelReason::Shutdown, CancelReason::Shutdown]);
    assert_eq!(body.polls(), 0, "the shield's body never ran");
    assert_eq!(body.drops(), 1, "and was dropped once");
}

/// The child half of [`a_runtime_in_a_thread_local_is_dropped_at_thread_exit`].
fn thread_local_runtime_child() {
    use std::cell::RefCell;
    thread_local! {
        static RT: RefCell<Option<Runtime>> = const { RefCell::new(None) };
    }
    let drops = Counter::new();
    let d = drops.clone();
    let thread = thread::spawn(move || {
        // Stored first, so its destructor runs after those of the
        // runtime's own thread-locals that this thread touches later.
        RT.with(|rt| *rt.borrow_mut() = Some(runtime(Clock::Real, WORKERS)));
        RT.with(|rt| {
            let rt = rt.borrow();
            let rt = rt.as_ref().expect("the runtime");
            // A cancel that wakes several waiters on this thread.
            let out = rt.block_on(scope(|s| async move {
                let (mut a, mut b) = (s.cancelled(), s.cancelled());
                assert!(poll_once(&mut a).await.is_none());
                assert!(poll_once(&mut b).await.is_none());
                s.cancel();
            }));
            // The body returned: the cancel interrupted nothing.
            assert!(out.is_ok());
            // Scopes still open when the thread exits: two parked bodies,
            // each with a parked task.
            for _ in 0..2 {
                let guard = d.on_drop();
                let mut open = Box::pin(scope(move |s| async move {
                    s.spawn(async move {
                        let _guard = guard;
                        std::future::pending::<()>().await
                    });
                    std::future::pending::<()>().await
                }));
                assert!(rt.block_on(poll_once(&mut open)).is_none());
                std::mem::forget(open);
            }
        });
    });
    thread.join().expect("the thread exits cleanly");
    assert_eq!(drops.get(), 2, "the runtime's drop dropped every future");
}

/// A runtime kept in a `thread_local!` and dropped by the thread-local
/// destructors, with scopes still open, shuts down cleanly: no
/// runtime-internal thread-local is touched after its own destruction.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn a_runtime_in_a_thread_local_is_dropped_at_thread_exit() {
    if is_child() {
        return thread_local_runtime_child();
    }
    let out = run_in_child();
    assert_child_passed(&out);
}

// ---------------------------------------------------------------------
// Dropping a scope future mid-run.
// ---------------------------------------------------------------------

#[test]
fn dropping_the_scope_future_mid_run_cancels_and_drops_its_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let probe = Probe::new();
    let running_drops = Counter::new();
    let kept: Slot<(Scope, JoinHandle<()>)> = Slot::new();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let in_poll = Event::new();
    let parked_now = Event::new();
    let winner = rt.block_on(or(
        {
            let (p, rd, kept) = (probe.clone(), running_drops.clone(), kept.clone());
            let (in_poll, parked_now) = (in_poll.clone(), parked_now.clone());
            async move {
                let _ = scope(move |s| async move {
                    let forever = Event::new();
                    let c = |f: BoxFuture| p.wrap(f);
                    for _ in 0..5 {
                        let f = forever.clone();
                        s.spawn(c(Box::pin(async move { f.wait().await })));
                    }
                    let nested = c(Box::pin(std::future::pending()));
                    s.spawn(async move {
                        let _ = scope(|n| async move {
                            n.spawn(nested);
                            std::future::pending::<()>().await
                        })
                        .await;
                    });
                    let watched = s.spawn(c(Box::pin(std::future::pending())));
                    kept.put((s.clone(), watched));
                    // A task that is inside its poll when the scope goes.
                    let guard = rd.on_drop();
                    let release_rx = Mutex::new(release_rx);
                    s.spawn(async move {
                        let _guard = guard;
                        std::future::poll_fn(|_| {
                            in_poll.set();
                            release_rx.lock().unwrap().recv().expect("release");
                            Poll::<()>::Pending
                        })
                        .await
                    });
                    wait_until("the parked tasks to run", || p.polls() >= 7);
                    parked_now.set();
                    std::future::pending::<()>().await
                })
                .await;
                "scope"
            }
        },
        async move {
            parked_now.wait().await;
            in_poll.wait().await;
            "other"
        },
    ));
    assert_eq!(winner, "other");
    // The scope future is gone: its parked futures were dropped at
    // once, by this thread; the one inside its poll is dropped when
    // that poll returns.
    assert_eq!(probe.drops(), 7, "every parked future was dropped");
    assert_eq!(running_drops.get(), 0);
    let (kept_scope, watched) = kept.take();
    assert!(kept_scope.is_cancelled());
    let late = kept_scope.spawn(probe.wrap(async {}));
    assert_eq!(
        drive(late).unwrap_err().reason(),
        &CancelReason::ScopeDropped,
        "spawning into a dropped scope is refused"
    );
    assert_eq!(probe.drops(), 8);
    assert_eq!(
        drive(watched).unwrap_err().reason(),
        &CancelReason::ScopeDropped
    );
    release_tx.send(()).unwrap();
    wait_until("the running task to be released", || {
        rt.live_tasks() == 0 && rt.live_scopes() == 0
    });
    assert_eq!(running_drops.get(), 1);
    assert_eq!(probe.polls(), 7, "no future was polled after the drop");
    assert_serves(&rt, WORKERS);
}
