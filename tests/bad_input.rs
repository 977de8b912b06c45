//! Bad input: misuse of the API, each checked against its documented
//! outcome.
//!
//! - `block_on` inside a worker panics with a clear message, and the
//!   worker survives;
//! - a `CancelHandle` whose scope ended cancels nothing, even after its
//!   slot in the scope tree is reused;
//! - a `JoinHandle` polled again after `Ready` panics;
//! - spawning through a kept clone of an ended (or cancelled) scope's
//!   `Scope` gives a handle resolving to `Err(Cancelled)` without polling
//!   the future;
//! - `Builder::worker_threads(0)` panics;
//! - dropping a `Runtime` while tasks are parked drops every future and
//!   does not hang, even when a task drops it;
//! - dropping a scope future mid-run cancels its tasks (reason
//!   `ScopeDropped`) and drops each of them exactly once.

mod reliability_common;

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{scope, shielded_scope, CancelHandle, CancelReason, JoinHandle, Scope};
use futures_lite::future::{block_on as drive, or, poll_once};
use reliability_common::{
    assert_serves, expect_panic, hang_guard, noop_waker, runtime, wait_until, DropCounter,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

const WORKERS: usize = 2;
const BLOCK_ON_IN_WORKER: &str = "`block_on` called from a runtime worker thread";

/// A future that counts its polls and drops.
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
    _drop: DropCounter,
}

fn counted<F: Future>(inner: F, polls: &Arc<AtomicUsize>, drops: &Arc<AtomicUsize>) -> Counted<F> {
    Counted {
        inner: Box::pin(inner),
        polls: polls.clone(),
        _drop: DropCounter(drops.clone()),
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn get(c: &AtomicUsize) -> usize {
    c.load(SeqCst)
}

// ---------------------------------------------------------------------
// block_on inside a worker.
// ---------------------------------------------------------------------

#[test]
fn block_on_inside_a_worker_panics_and_the_worker_survives() {
    hang_guard("block_on in a worker", || {
        let rt = Arc::new(runtime("bad-block-on", WORKERS));
        let other = Arc::new(runtime("bad-block-on-other", 1));
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
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "starts the process-wide runtime, whose threads never end"
)]
fn the_free_block_on_inside_a_worker_panics_too() {
    hang_guard("free block_on in a worker", || {
        let rt = runtime("bad-free-block-on", WORKERS);
        let out = rt.block_on(scope(|s| async move {
            s.spawn(async { expect_panic(|| cancel_scope::runtime::block_on(async {})) })
                .await
        }));
        let message = out.unwrap().unwrap();
        assert!(message.contains(BLOCK_ON_IN_WORKER), "message: {message}");
        assert_serves(&rt, WORKERS);
    });
}

// ---------------------------------------------------------------------
// Stale CancelHandle after slot reuse.
// ---------------------------------------------------------------------

/// The slot key in a `Debug` rendering (`... key: N ...`), if the scope
/// tree shows one (a tree whose handles own their nodes has no slots to
/// reuse, and shows none).
fn debug_key(debug: &str) -> Option<usize> {
    let rest = &debug[debug.find("key: ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn stale_cancel_handle_cancels_nothing_after_slot_reuse() {
    hang_guard("stale cancel handle", || {
        let rt = runtime("bad-stale-handle", WORKERS);
        // One ended uncancelled, one ended cancelled.
        let ended = rt
            .block_on(scope(|s| async move { s.cancel_handle() }))
            .unwrap();
        let cancelled: CancelHandle = {
            let kept = Arc::new(Mutex::new(None));
            let k = kept.clone();
            let out = rt.block_on(scope(|s| {
                *k.lock().unwrap() = Some(s.cancel_handle());
                async move { s.cancel() }
            }));
            assert!(out.is_err());
            let h = kept.lock().unwrap().take().unwrap();
            h
        };
        assert!(!ended.is_cancelled());
        assert!(cancelled.is_cancelled());
        let stale_key = debug_key(&format!("{ended:?}"));
        let rounds = if cfg!(miri) { 3 } else { 50 };
        for round in 0..rounds {
            let (ended, cancelled) = (ended.clone(), cancelled.clone());
            let forever = Event::new();
            let out = rt.block_on(scope(|s| async move {
                // Where the tree has slots, the new scope took the old one's.
                if let Some(stale_key) = stale_key {
                    assert_eq!(debug_key(&format!("{s:?}")), Some(stale_key), "slot reused");
                }
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
    });
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
    hang_guard("join handle polled twice", || {
        let rt = runtime("bad-join", WORKERS);
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
        let stash = Arc::new(Mutex::new(None));
        let out = rt.block_on(scope(|s| {
            let stash = stash.clone();
            async move {
                *stash.lock().unwrap() = Some(s.spawn(std::future::pending::<()>()));
                s.cancel();
            }
        }));
        assert!(out.is_err());
        let mut cancelled = stash.lock().unwrap().take().unwrap();
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
    });
}

// ---------------------------------------------------------------------
// Spawning into an ended or cancelled scope through a kept clone.
// ---------------------------------------------------------------------

#[test]
fn spawn_into_an_ended_scope_is_refused_without_polling() {
    hang_guard("spawn into ended scope", || {
        let rt = runtime("bad-spawn-ended", WORKERS);
        let kept: Scope = rt.block_on(scope(|s| async move { s })).unwrap();
        let (polls, drops) = (counter(), counter());
        // From a thread outside any runtime.
        let h = kept.spawn(counted(async { 1 }, &polls, &drops));
        assert_eq!(get(&drops), 1, "the refused future is dropped at once");
        let err = drive(h).unwrap_err();
        assert_eq!(err.reason(), &CancelReason::ScopeEnded);
        // From a task of a new scope that reuses the old slot: the task
        // must not land in the new scope.
        let (kept2, polls2, drops2) = (kept.clone(), polls.clone(), drops.clone());
        let out = rt.block_on(scope(|s| async move {
            s.spawn(async move {
                let h = kept2.spawn(counted(async { 2 }, &polls2, &drops2));
                h.await.map_err(|c| c.reason().clone())
            })
            .await
        }));
        assert_eq!(out, Ok(Ok(Err(CancelReason::ScopeEnded))));
        assert_eq!(get(&polls), 0, "a refused future was polled");
        assert_eq!(get(&drops), 2);
        assert_eq!(rt.live_tasks(), 0);
        assert_eq!(rt.live_scopes(), 0);
    });
}

#[test]
fn spawn_into_a_cancelled_scope_is_refused_without_polling() {
    hang_guard("spawn into cancelled scope", || {
        let rt = runtime("bad-spawn-cancelled", WORKERS);
        let (polls, drops) = (counter(), counter());
        let (p, d) = (polls.clone(), drops.clone());
        let refused = Arc::new(Mutex::new(Vec::new()));
        let r = refused.clone();
        let out = rt.block_on(scope(|s| async move {
            s.cancel();
            // The body runs on until its next suspension: the scope is
            // cancelled but has not ended, so spawns are refused with the
            // scope's own reason.
            let mut handles: Vec<_> = (0..10)
                .map(|_| s.spawn(counted(async {}, &p, &d)))
                .collect();
            let s2 = s.clone();
            handles.push(
                thread::spawn(move || s2.spawn(counted(async {}, &p, &d)))
                    .join()
                    .unwrap(),
            );
            // Refused handles are ready at once, even outside a runtime.
            let reasons = handles
                .into_iter()
                .map(|h| drive(h).map_err(|c| c.reason().clone()));
            r.lock().unwrap().extend(reasons);
        }));
        assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
        let refused = refused.lock().unwrap();
        assert_eq!(refused.len(), 11);
        assert!(
            refused.iter().all(|r| r == &Err(CancelReason::Explicit)),
            "{refused:?}"
        );
        assert_eq!(get(&polls), 0, "a refused future was polled");
        assert_eq!(get(&drops), 11);
        assert_eq!(rt.live_tasks(), 0);
        assert_eq!(rt.live_scopes(), 0);
    });
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
    polls: &Arc<AtomicUsize>,
    drops: &Arc<AtomicUsize>,
    extra: impl Future<Output = ()> + Send + 'static,
) -> Pin<Box<dyn Future<Output = Result<(), cancel_scope::Cancelled>> + Send>> {
    let forever = Event::new();
    let (p, d) = (polls.clone(), drops.clone());
    let mut fut: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(scope(move |s| async move {
        let c = |f| counted(f, &p, &d);
        let f1 = forever.clone();
        s.spawn(c(
            Box::pin(async move { f1.wait().await }) as Pin<Box<dyn Future<Output = ()> + Send>>
        ));
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
    // Every counted future has been polled at least once (the shielded one
    // and the nested one run in tasks of their own).
    wait_until("every task to run", || get(polls) >= PARKED);
    fut
}

#[test]
fn dropping_a_runtime_with_parked_tasks_drops_every_future() {
    hang_guard("runtime dropped with parked tasks", || {
        let rt = runtime("bad-drop-rt", WORKERS);
        let (polls, drops) = (counter(), counter());
        let fut = park_everything(&rt, &polls, &drops, async {});
        assert_eq!(get(&drops), 0);
        assert!(rt.live_tasks() > 0);
        drop(rt);
        assert_eq!(get(&drops), PARKED, "every future was dropped exactly once");
        // The scope future, driven without the runtime, ends cancelled.
        let out = drive(fut);
        assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
    });
}

#[test]
fn dropping_a_runtime_from_one_of_its_own_tasks() {
    hang_guard("runtime dropped by its own task", || {
        let rt = runtime("bad-drop-rt-self", WORKERS);
        let (polls, drops) = (counter(), counter());
        let slot: Arc<Mutex<Option<Runtime>>> = Arc::new(Mutex::new(None));
        let go = Event::new();
        let dropped = Event::new();
        let killer = {
            let (slot, go, dropped) = (slot.clone(), go.clone(), dropped.clone());
            async move {
                go.wait().await;
                let rt = slot.lock().unwrap().take().expect("the runtime");
                drop(rt);
                dropped.set();
                std::future::pending::<()>().await
            }
        };
        let fut = park_everything(&rt, &polls, &drops, killer);
        *slot.lock().unwrap() = Some(rt);
        go.set();
        drive(dropped.wait());
        let out = drive(fut);
        assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
        assert_eq!(get(&drops), PARKED, "every future was dropped exactly once");
    });
}

/// After its runtime is dropped, a task that opens scopes finds each born
/// cancelled with reason `Shutdown`, a shield included, and every spawn
/// refused: nothing is left queued on a worker that is gone, and whoever
/// awaits the root scope sees it end.
#[test]
fn scopes_opened_after_shutdown_are_born_cancelled_shields_included() {
    hang_guard("scopes opened after shutdown", || {
        let rt = runtime("bad-after-shutdown", WORKERS);
        let slot: Arc<Mutex<Option<Runtime>>> = Arc::new(Mutex::new(None));
        let (body_polls, body_drops) = (counter(), counter());
        let outcomes: Arc<Mutex<Vec<CancelReason>>> = Arc::default();
        let go = Event::new();
        let task = {
            let (slot, go, outcomes) = (slot.clone(), go.clone(), outcomes.clone());
            let (body_polls, body_drops) = (body_polls.clone(), body_drops.clone());
            async move {
                go.wait().await;
                drop(slot.lock().unwrap().take().expect("the runtime"));
                let body = counted(std::future::pending::<()>(), &body_polls, &body_drops);
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
        *slot.lock().unwrap() = Some(rt);
        go.set();
        let out = drive(root);
        assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
        let outcomes = outcomes.lock().unwrap().clone();
        assert_eq!(outcomes, [CancelReason::Shutdown, CancelReason::Shutdown]);
        assert_eq!(get(&body_polls), 0, "the shield's body never ran");
        assert_eq!(get(&body_drops), 1, "and was dropped once");
    });
}

/// The child half of [`a_runtime_in_a_thread_local_is_dropped_at_thread_exit`].
fn thread_local_runtime_child() {
    use std::cell::RefCell;
    thread_local! {
        static RT: RefCell<Option<Runtime>> = const { RefCell::new(None) };
    }
    let drops = counter();
    let d = drops.clone();
    let thread = thread::spawn(move || {
        // Stored first, so its destructor runs after those of the
        // runtime's own thread-locals that this thread touches later.
        RT.with(|rt| *rt.borrow_mut() = Some(runtime("bad-thread-local", WORKERS)));
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
            assert!(out.is_err());
            // Scopes still open when the thread exits: two parked bodies,
            // each with a parked task.
            for _ in 0..2 {
                let d = d.clone();
                let mut open = Box::pin(scope(move |s| async move {
                    s.spawn(counted(std::future::pending::<()>(), &counter(), &d));
                    std::future::pending::<()>().await
                }));
                assert!(rt.block_on(poll_once(&mut open)).is_none());
                std::mem::forget(open);
            }
        });
    });
    thread.join().expect("the thread exits cleanly");
    assert_eq!(get(&drops), 2, "the runtime's drop dropped every future");
}

/// A runtime kept in a `thread_local!` and dropped by the thread-local
/// destructors, with scopes still open, shuts down cleanly: no
/// runtime-internal thread-local is touched after its own destruction.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn a_runtime_in_a_thread_local_is_dropped_at_thread_exit() {
    const NAME: &str = "a_runtime_in_a_thread_local_is_dropped_at_thread_exit";
    if reliability_common::is_child_for(NAME) {
        return thread_local_runtime_child();
    }
    let out = reliability_common::run_in_child(NAME);
    reliability_common::assert_child_passed(NAME, &out);
}

// ---------------------------------------------------------------------
// Dropping a scope future mid-run.
// ---------------------------------------------------------------------

#[test]
fn dropping_the_scope_future_mid_run_cancels_and_drops_its_tasks() {
    hang_guard("scope future dropped", || {
        let rt = runtime("bad-drop-scope", WORKERS);
        let (polls, drops) = (counter(), counter());
        let (running_drops, kept) = (
            counter(),
            Arc::new(Mutex::new(None::<(Scope, JoinHandle<()>)>)),
        );
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let in_poll = Event::new();
        let parked_now = Event::new();
        let winner = rt.block_on(or(
            {
                let (p, d, rd, kept) = (
                    polls.clone(),
                    drops.clone(),
                    running_drops.clone(),
                    kept.clone(),
                );
                let (in_poll, parked_now) = (in_poll.clone(), parked_now.clone());
                async move {
                    let _ = scope(move |s| async move {
                        let forever = Event::new();
                        let c = |f| counted(f, &p, &d);
                        for _ in 0..5 {
                            let f = forever.clone();
                            s.spawn(c(Box::pin(async move { f.wait().await })
                                as Pin<Box<dyn Future<Output = ()> + Send>>));
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
                        *kept.lock().unwrap() = Some((s.clone(), watched));
                        // A task that is inside its poll when the scope goes.
                        let guard = DropCounter(rd);
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
                        wait_until("the parked tasks to run", || get(&p) >= 7);
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
        assert_eq!(get(&drops), 7, "every parked future was dropped");
        assert_eq!(get(&running_drops), 0);
        let (kept_scope, watched) = kept.lock().unwrap().take().unwrap();
        assert!(kept_scope.is_cancelled());
        let late = kept_scope.spawn(counted(async {}, &polls, &drops));
        assert_eq!(
            drive(late).unwrap_err().reason(),
            &CancelReason::ScopeDropped,
            "spawning into a dropped scope is refused"
        );
        assert_eq!(get(&drops), 8);
        assert_eq!(
            drive(watched).unwrap_err().reason(),
            &CancelReason::ScopeDropped
        );
        release_tx.send(()).unwrap();
        wait_until("the running task to be released", || {
            rt.live_tasks() == 0 && rt.live_scopes() == 0
        });
        assert_eq!(get(&running_drops), 1);
        assert_eq!(get(&polls), 7, "no future was polled after the drop");
        assert_serves(&rt, WORKERS);
    });
}
