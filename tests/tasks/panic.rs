//! Panics: a panicking task is caught, its scope is cancelled so its
//! siblings stop, and the scope future resumes the panic once every child
//! has ended. The panicked task's handle reports `Panicked`; workers
//! survive; panics travel up through nested scopes.

use crate::support::{
    arrive_and_park, assert_clean, cancel_reasons, expect_panic, hang_guard, panic_message,
    runtime, BoxFuture, Clock, Countdown, Counter, Log, PanicOnDrop, Probes,
};
use cancel_scope::{linked_scope, scope, CancelReason, JoinHandle};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;

/// A task panics: its parked siblings and the body are dropped, the scope
/// resumes the panic, and every handle says why it stopped.
#[test]
fn panicking_task_stops_siblings_and_resumes_the_panic() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 4;
    let probes = Probes::new(N + 1);
    let stash: Log<JoinHandle<()>> = Log::new();
    let panicker: Log<JoinHandle<()>> = Log::new();
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| {
            let (probes, stash, panicker) = (probes.clone(), stash.clone(), panicker.clone());
            async move {
                let parked = Countdown::new(N + 1);
                for i in 0..N {
                    let h = s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
                    stash.push(h);
                }
                let ready = parked.clone();
                let h = s.spawn(async move {
                    ready.wait().await;
                    panic!("boom in a task");
                });
                panicker.push(h);
                probes.wrap(N, arrive_and_park(parked)).await
            }
        }))
    });
    assert_eq!(msg, "boom in a task");
    probes.assert_each_dropped_once();
    assert_eq!(probes.total_completions(), 0);
    assert_eq!(cancel_reasons(panicker.drain()), [CancelReason::Panicked]);
    assert_eq!(
        cancel_reasons(stash.drain()),
        vec![CancelReason::Panicked; N]
    );
    assert_clean(&rt);
    // The workers survived.
    assert_eq!(
        rt.block_on(scope(|s| async move { s.spawn(async { 5 }).await })),
        Ok(Ok(5))
    );
}

/// The panic comes out of the scope only after a sibling that was in the
/// middle of a poll has ended: the scope future first returns `Pending`
/// (observed here), and only then lets the sibling go.
#[test]
fn panic_is_resumed_only_after_every_task_ended() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(1);
    let body_drops = Counter::new();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release = Mutex::new(Some(release_tx));
    let waited = AtomicBool::new(false);
    let mut scope_future = Box::pin(scope(|s| {
        let (probes, body_drops) = (probes.clone(), body_drops.clone());
        async move {
            s.spawn(probes.wrap(
                0,
                std::future::poll_fn(move |_| {
                    entered_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Poll::<()>::Pending
                }),
            ));
            s.spawn(async move {
                entered_rx.recv().unwrap();
                panic!("boom while a sibling polls");
            });
            let _guard = body_drops.on_drop();
            std::future::pending::<()>().await
        }
    }));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(std::future::poll_fn(|cx| {
            let polled = scope_future.as_mut().poll(cx);
            if polled.is_pending() && body_drops.get() > 0 && !waited.swap(true, SeqCst) {
                // The body is gone and the scope still waits: now let
                // the sibling's poll return.
                release.lock().unwrap().take().unwrap().send(()).unwrap();
            }
            polled
        }))
    }));
    // Never leave the sibling blocked, whatever happened.
    if let Some(tx) = release.lock().unwrap().take() {
        let _ = tx.send(());
    }
    let msg = panic_message(&*outcome.expect_err("the scope resumes the panic"));
    assert_eq!(msg, "boom while a sibling polls");
    assert!(
        waited.load(SeqCst),
        "the panic came out while a sibling was still polling"
    );
    probes.assert_each_dropped_once();
    drop(scope_future);
    assert_clean(&rt);
}

/// A panic in the body stops the scope's tasks and is resumed.
#[test]
fn panic_in_body_stops_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 3;
    let probes = Probes::new(N);
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| {
            let probes = probes.clone();
            async move {
                let parked = Countdown::new(N);
                for i in 0..N {
                    s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
                }
                parked.wait().await;
                panic!("boom in the body");
            }
        }))
    });
    assert_eq!(msg, "boom in the body");
    probes.assert_each_dropped_once();
    assert_clean(&rt);
}

/// A panic in the closure that makes the body (before any future exists)
/// is resumed too, after the tasks it spawned are stopped.
#[test]
fn panic_in_body_closure() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(1);
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| {
            s.spawn(probes.wrap(0, std::future::pending::<()>()));
            // Always true; the `if` lets the closure have a future type.
            if !s.is_cancelled() {
                panic!("boom in the closure");
            }
            async {}
        }))
    });
    assert_eq!(msg, "boom in the closure");
    probes.assert_each_dropped_once();
    assert_clean(&rt);
}

/// A panic three scopes down comes out of the outermost one, and stops
/// the tasks of every scope on the way.
#[test]
fn panic_travels_up_through_nested_scopes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(3);
    let stash: Log<JoinHandle<()>> = Log::new();
    let msg = expect_panic(|| {
        rt.block_on(scope(|top| {
            let (probes, stash) = (probes.clone(), stash.clone());
            async move {
                let parked = Countdown::new(3);
                let h = top.spawn(probes.wrap(0, arrive_and_park(parked.clone())));
                stash.push(h);
                let (probes2, parked2) = (probes.clone(), parked.clone());
                top.spawn(scope(move |mid| async move {
                    mid.spawn(probes2.wrap(1, arrive_and_park(parked2.clone())));
                    let (probes3, parked3) = (probes2.clone(), parked2.clone());
                    mid.spawn(linked_scope(move |low| async move {
                        low.spawn(probes3.wrap(2, arrive_and_park(parked3.clone())));
                        parked3.wait().await;
                        low.spawn(async { panic!("boom deep down") });
                        std::future::pending::<()>().await
                    }));
                    std::future::pending::<()>().await
                }));
                std::future::pending::<()>().await
            }
        }))
    });
    assert_eq!(msg, "boom deep down");
    probes.assert_each_dropped_once();
    assert_eq!(cancel_reasons(stash.drain()), [CancelReason::Panicked]);
    assert_clean(&rt);
}

/// A panic in the `Drop` of a cancelled task's future is caught (the
/// `cancel()` call returns normally) and resumed by the scope.
#[test]
fn panic_in_drop_of_a_cancelled_future() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let cancel_returned = Arc::new(AtomicBool::new(false));
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| {
            let cancel_returned = cancel_returned.clone();
            async move {
                let parked = Countdown::new(1);
                let p = parked.clone();
                s.spawn(async move {
                    let _bomb = PanicOnDrop("boom in a drop");
                    arrive_and_park(p).await
                });
                parked.wait().await;
                // One worker: a task that ran after it proves it parked.
                s.spawn(async {}).await.unwrap();
                s.cancel();
                cancel_returned.store(true, SeqCst);
            }
        }))
    });
    assert_eq!(msg, "boom in a drop");
    assert!(cancel_returned.load(SeqCst));
    assert_clean(&rt);
}

/// Only the first panic of a scope is kept: a later one (here from the
/// drop of a sibling stopped by the first) is discarded.
#[test]
fn only_the_first_panic_is_kept() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            let parked = Countdown::new(1);
            let p = parked.clone();
            s.spawn(async move {
                let _bomb = PanicOnDrop("second");
                arrive_and_park(p).await
            });
            s.spawn(async move {
                parked.wait().await;
                panic!("first");
            });
        }))
    });
    assert_eq!(msg, "first");
    assert_clean(&rt);
}

/// A panic payload that is not a string comes out unchanged.
#[test]
fn panic_payload_is_preserved() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let payload = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(scope(|s| async move {
            s.spawn(async { std::panic::panic_any(42u32) });
        }))
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
}

/// Many panicking scopes on a one-worker runtime: the worker survives each
/// one, values in flight are dropped, and the runtime ends up empty.
#[test]
fn worker_survives_many_panics() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let drops = Counter::new();
    for i in 0..100 {
        let drops = drops.clone();
        let msg = expect_panic(|| {
            rt.block_on(scope(|s| async move {
                s.spawn(async move {
                    let _value = drops.on_drop();
                    panic!("panic {i}");
                })
                .await
            }))
        });
        assert_eq!(msg, format!("panic {i}"));
    }
    assert_eq!(drops.get(), 100);
    assert_clean(&rt);
    let out = rt.block_on(scope(|s| async move { s.spawn(async { "alive" }).await }));
    assert_eq!(out, Ok(Ok("alive")));
}

/// A task that panics from inside a scope it opened: the inner scope
/// resumes the panic into the task, which panics in turn, and the handle
/// of that task also reports `Panicked`.
#[test]
fn panic_resumed_into_a_task_cancels_its_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let stash: Log<JoinHandle<()>> = Log::new();
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| {
            let stash = stash.clone();
            async move {
                let inner: BoxFuture = Box::pin(async {
                    let _ = scope(|i| async move {
                        i.spawn(async { panic!("inner boom") });
                    })
                    .await;
                    unreachable!("the inner scope resumes the panic");
                });
                let h = s.spawn(inner);
                stash.push(h);
                std::future::pending::<()>().await
            }
        }))
    });
    assert_eq!(msg, "inner boom");
    assert_eq!(cancel_reasons(stash.drain()), [CancelReason::Panicked]);
    assert_clean(&rt);
}
