//! Shielded scopes: an ancestor's cancellation (explicit or by deadline)
//! does not reach inside, or into scopes nested under the shield; the
//! shield's own `cancel()` and deadline still work; the enclosing scope
//! waits for the shield even when the shield's future is dropped; and a
//! shield opened in an already-cancelled scope still runs.

use crate::support::{
    assert_clean, hang_guard, ms, on_workers, reason_of, runtime, secs, timed, Clock, Counter, Log,
    Slot,
};
use cancel_scope::move_on_after;
use cancel_scope::sync::Event;
use cancel_scope::time::{self, sleep, timeout};
use cancel_scope::{linked_scope, scope, shielded_scope, CancelHandle, CancelReason, Cancelled};
use std::future::pending;
use std::time::Duration;

/// Cancelling the enclosing scope does not reach the shield's body or its
/// tasks: they run to the end, unaware, and the enclosing scope waits.
#[test]
fn an_ancestors_cancel_does_not_reach_inside() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        async move {
            let t0 = time::now();
            let started = Event::new();
            let out = scope(|s| async move {
                let shield_started = started.clone();
                s.spawn(shielded_scope(move |sh| async move {
                    shield_started.set();
                    let task_log = log.clone();
                    sh.spawn(async move {
                        sleep(secs(2)).await;
                        task_log.push(("shield task done", time::now() - t0));
                    });
                    sleep(secs(3)).await;
                    assert!(!sh.is_cancelled(), "the shield was not cancelled");
                    log.push(("shield body done", time::now() - t0));
                }));
                started.wait().await;
                sleep(secs(1)).await;
                s.cancel();
                pending::<()>().await
            })
            .await;
            (out, time::now() - t0)
        }
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(elapsed, secs(3), "the scope waited for the shield");
    assert_eq!(
        log.entries(),
        vec![("shield task done", secs(2)), ("shield body done", secs(3))]
    );
    assert_clean(&rt);
}

/// An ancestor's deadline does not reach inside a shield either.
#[test]
fn an_ancestors_deadline_does_not_reach_inside() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let done = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let done = done.clone();
        timed(async move {
            scope(|s| async move {
                s.cancel_after(secs(1));
                shielded_scope(move |_| async move {
                    sleep(secs(3)).await;
                    done.inc();
                })
                .await
            })
            .await
        })
    });
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(1) }
    );
    assert_eq!(elapsed, secs(3));
    assert_eq!(done.get(), 1);
    assert_clean(&rt);
}

/// The body awaiting a shield is dropped when its scope is cancelled, and
/// that drops the `ShieldedScope` future; the shield keeps running, and
/// the scope waits for it.
#[test]
fn dropping_the_shield_future_does_not_stop_it() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let done = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let done = done.clone();
        timed(async move {
            scope(|s| async move {
                let canceller = s.clone();
                s.spawn(async move {
                    sleep(secs(1)).await;
                    canceller.cancel();
                });
                let r = shielded_scope(move |_| async move {
                    sleep(secs(3)).await;
                    done.inc();
                    5
                })
                .await;
                unreachable!("the body was dropped, not resumed: {r:?}");
            })
            .await
        })
    });
    assert!(out.is_err());
    assert_eq!(elapsed, secs(3));
    assert_eq!(done.get(), 1);
    assert_clean(&rt);
}

/// A `timeout` that gives up on a shield drops its future at once; the
/// body goes on, and the scope around it still waits for it.
#[test]
fn a_timed_out_shield_still_finishes_and_is_waited_for() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let elapsed = on_workers(&rt, {
        let log = log.clone();
        async move {
            let t0 = time::now();
            let out = scope(|_| async move {
                let shield_log = log.clone();
                let r = timeout(
                    secs(1),
                    shielded_scope(move |_| async move {
                        sleep(secs(5)).await;
                        shield_log.push(("shield done", time::now() - t0));
                    }),
                )
                .await;
                assert!(r.is_err(), "the timeout gave up");
                log.push(("gave up", time::now() - t0));
            })
            .await;
            assert!(out.is_ok());
            time::now() - t0
        }
    });
    assert_eq!(elapsed, secs(5));
    assert_eq!(
        log.entries(),
        vec![("gave up", secs(1)), ("shield done", secs(5))]
    );
    assert_clean(&rt);
}

/// A dropped scope future never waits (see `ScopeFuture`): when a
/// `timeout` drops a scope holding a shield, the shield is not cancelled
/// with the scope; it runs to its end on its own, and then leaves nothing
/// behind.
#[test]
fn a_shield_outlives_a_dropped_scope_future() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let elapsed = on_workers(&rt, {
        let log = log.clone();
        async move {
            let t0 = time::now();
            let shield_log = log.clone();
            let r = timeout(
                secs(1),
                scope(|s| async move {
                    s.spawn(shielded_scope(move |_| async move {
                        sleep(secs(5)).await;
                        shield_log.push(("shield done", time::now() - t0));
                    }));
                    sleep(secs(3600)).await;
                }),
            )
            .await;
            assert!(r.is_err());
            log.push(("scope dropped", time::now() - t0));
            sleep(secs(10)).await;
            time::now() - t0
        }
    });
    assert_eq!(elapsed, secs(11));
    assert_eq!(
        log.entries(),
        vec![("scope dropped", secs(1)), ("shield done", secs(5))]
    );
    assert_clean(&rt);
}

/// When nothing cancels it, a shield resolves to its body's output.
#[test]
fn a_shield_returns_its_bodys_output() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let out = on_workers(&rt, async {
        scope(|_| async {
            shielded_scope(|sh| async move {
                let a = sh.spawn(async {
                    sleep(secs(1)).await;
                    40
                });
                a.await.unwrap() + 2
            })
            .await
        })
        .await
    });
    assert_eq!(out, Ok(Ok(42)));
    assert_clean(&rt);
}

/// The shield's own `cancel()` works: its tasks and body stop, and the
/// shield resolves to `Err(Explicit)`, while the scope around it goes on.
#[test]
fn a_shields_own_cancel_works() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let drops = drops.clone();
        async move {
            let t0 = time::now();
            let out = scope(|_| async move {
                let r = shielded_scope(move |sh| async move {
                    for _ in 0..3 {
                        let guard = drops.on_drop();
                        sh.spawn(async move {
                            let _guard = guard;
                            sleep(secs(3600)).await;
                        });
                    }
                    sleep(secs(1)).await;
                    sh.cancel();
                    sleep(secs(3600)).await;
                })
                .await;
                (r, time::now() - t0)
            })
            .await;
            (out, time::now() - t0)
        }
    });
    let (shield, at) = out.expect("the enclosing scope was not cancelled");
    assert_eq!(shield.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(at, secs(1));
    assert_eq!(elapsed, secs(1));
    assert_eq!(drops.get(), 3);
    assert_clean(&rt);
}

/// A shield can be cancelled through its `CancelHandle` from outside, even
/// while the cancelled scope around it waits for it.
#[test]
fn a_shield_cancelled_through_its_handle_while_its_parent_waits() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let handle: Slot<CancelHandle> = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let (drops, handle) = (drops.clone(), handle.clone());
        async move {
            let t0 = time::now();
            let stop = Event::new();
            let out = scope(|top| async move {
                let (h, go) = (handle.clone(), stop.clone());
                top.spawn(async move {
                    go.wait().await;
                    sleep(secs(1)).await;
                    h.take().cancel();
                });
                scope(|outer| async move {
                    let guard = drops.on_drop();
                    outer.spawn(shielded_scope(move |sh| async move {
                        handle.put(sh.cancel_handle());
                        let _guard = guard;
                        sleep(secs(3600)).await;
                    }));
                    sleep(secs(1)).await;
                    outer.cancel();
                    stop.set();
                })
                .await
            })
            .await;
            (out, time::now() - t0)
        }
    });
    let inner = out.expect("the top scope was not cancelled");
    assert_eq!(inner.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(elapsed, secs(2), "the shield's cancel ended the wait");
    assert_eq!(drops.get(), 1);
    assert_clean(&rt);
}

/// A shield's own deadline works, whether or not the scope around it was
/// cancelled: it bounds how long the enclosing scope waits.
#[test]
fn a_shields_own_deadline_works() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    // Awaited directly, nothing else cancelled.
    let (r, at) = on_workers(
        &rt,
        timed(async {
            shielded_scope(|sh| async move {
                sh.cancel_after(secs(2));
                sleep(secs(3600)).await;
            })
            .await
        }),
    );
    assert_eq!(
        r.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(2) }
    );
    assert_eq!(at, secs(2));
    assert_clean(&rt);

    // The enclosing scope is cancelled at 1s; the shield's deadline at
    // 2s ends it, not the hour-long sleep.
    let shield: Slot<CancelHandle> = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let shield = shield.clone();
        timed(async move {
            scope(|s| async move {
                s.cancel_after(secs(1));
                shielded_scope(move |sh| async move {
                    shield.put(sh.cancel_handle());
                    sh.cancel_after(secs(2));
                    sleep(secs(3600)).await;
                })
                .await
            })
            .await
        })
    });
    assert!(matches!(
        out.unwrap_err().reason(),
        CancelReason::Deadline { .. }
    ));
    assert_eq!(elapsed, secs(2));
    assert_eq!(
        reason_of(&rt, &shield.take()),
        Some(CancelReason::Deadline { after: secs(2) })
    );
    assert_clean(&rt);

    // `move_on_after` inside a shield.
    let (r, at) = on_workers(
        &rt,
        timed(async {
            scope(|s| async move {
                s.cancel_after(ms(10));
                shielded_scope(move |_| async move {
                    move_on_after(secs(1), |_| sleep(secs(3600))).await
                })
                .await
            })
            .await
        }),
    );
    assert!(r.is_err());
    assert_eq!(at, secs(1));
    assert_clean(&rt);
}

/// Every scope nested under a shield is protected as well: scopes opened
/// in the shield's body and tasks, linked scopes, and shields in shields,
/// including scopes opened after the ancestor was cancelled.
#[test]
fn nested_scopes_under_a_shield_are_protected() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log: Log<(&'static str, Result<Duration, Cancelled>)> = Log::new();
    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        async move {
            let t0 = time::now();
            let out = scope(|s| async move {
                s.cancel_after(secs(1));
                let watched = s.clone();
                shielded_scope(move |sh| async move {
                    let l = log.clone();
                    sh.spawn(async move {
                        let r = scope(|inner| async move {
                            inner.spawn(sleep(secs(3)));
                            sleep(secs(2)).await;
                            time::now() - t0
                        })
                        .await;
                        l.push(("scope in a shield task", r));
                    });
                    let l = log.clone();
                    sh.spawn(async move {
                        let r = linked_scope(|_| async move {
                            sleep(secs(2)).await;
                            time::now() - t0
                        })
                        .await;
                        l.push(("linked scope", r));
                    });
                    let l = log.clone();
                    sh.spawn(shielded_scope(move |_| async move {
                        let r = scope(|_| async move {
                            sleep(secs(2)).await;
                            time::now() - t0
                        })
                        .await;
                        l.push(("shield in a shield", r));
                    }));
                    // After the ancestor's deadline has passed.
                    let why = watched.cancelled().await;
                    assert!(matches!(why.reason(), CancelReason::Deadline { .. }));
                    let r = scope(|inner| async move {
                        inner.spawn(sleep(secs(1)));
                        sleep(ms(500)).await;
                        time::now() - t0
                    })
                    .await;
                    log.push(("scope opened after the cancel", r));
                })
                .await
            })
            .await;
            (out, time::now() - t0)
        }
    });
    assert!(out.is_err());
    assert_eq!(elapsed, secs(3), "the scope waited for everything nested");
    let mut entries = log.entries();
    entries.sort_by_key(|e| e.0);
    assert_eq!(
        entries,
        vec![
            ("linked scope", Ok(secs(2))),
            ("scope in a shield task", Ok(secs(2))),
            ("scope opened after the cancel", Ok(ms(1500))),
            ("shield in a shield", Ok(secs(2))),
        ]
    );
    assert_clean(&rt);
}

/// A shield opened by code that runs on after its scope was cancelled (the
/// rest of the poll in which `cancel()` was called) still runs, and the
/// cancelled scope waits for it; a plain scope opened at the same point
/// starts cancelled, and `spawn` is refused.
#[test]
fn a_shield_opened_in_an_already_cancelled_scope_still_runs() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let refused = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let (log, refused) = (log.clone(), refused.clone());
        async move {
            let t0 = time::now();
            let out = scope(|s| async move {
                s.cancel();
                let plain = scope(|_| async { 1 }).await;
                log.push(format!("plain scope: {plain:?}"));
                // Awaited after the scope: an `.await` on the handle
                // here would end this cancelled body (the budget).
                let handle = s.spawn(async { 2 });
                log.push(format!("spawn: finished {}", handle.is_finished()));
                refused.put(handle);
                let body_log = log.clone();
                let _ = shielded_scope(move |sh| async move {
                    assert!(!sh.is_cancelled());
                    let task = sh.spawn(async {
                        sleep(secs(1)).await;
                        3
                    });
                    let v = task.await;
                    body_log.push(format!("shield task: {v:?} at {:?}", time::now() - t0));
                })
                .await;
                unreachable!("the body is dropped at this await");
            })
            .await;
            (out, time::now() - t0)
        }
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(
        elapsed,
        secs(1),
        "the cancelled scope waited for the shield"
    );
    assert_eq!(
        log.entries(),
        vec![
            "plain scope: Err(Cancelled { reason: Ancestor })".to_string(),
            "spawn: finished true".to_string(),
            "shield task: Ok(3) at 1s".to_string(),
        ]
    );
    let refused = rt.block_on(refused.take());
    assert_eq!(refused.unwrap_err().reason(), &CancelReason::Explicit);
    assert_clean(&rt);
}

/// The same from a task: a task still being polled when its scope is
/// cancelled can open a shield for its cleanup.
#[test]
fn a_cancelled_task_can_open_a_shield_for_cleanup() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let cleaned = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let cleaned = cleaned.clone();
        timed(async move {
            scope(|s| async move {
                let me = s.clone();
                s.spawn(async move {
                    sleep(secs(1)).await;
                    me.cancel();
                    // Still inside the poll that cancelled: open the
                    // shield before the task is dropped.
                    let _ = shielded_scope(move |_| async move {
                        sleep(ms(250)).await;
                        cleaned.inc();
                    })
                    .await;
                });
                pending::<()>().await
            })
            .await
        })
    });
    assert!(out.is_err());
    assert_eq!(cleaned.get(), 1);
    assert_eq!(elapsed, ms(1250));
    assert_clean(&rt);
}
