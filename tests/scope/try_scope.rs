//! `try_scope`: success, the first error wins and cancels the siblings,
//! an error from the body, cancellation for another reason (outer
//! `Err(Cancelled)`), the failed task's own handle (`Failed`), plain
//! spawns whose `Err` is just a value, and errors carried up through
//! nested `try_scope`s with `?`.

use crate::support::{
    assert_clean, hang_guard, ms, on_workers, runtime, secs, timed, Clock, Counter, Log, Slot,
};
use cancel_scope::time::sleep;
use cancel_scope::{scope, try_scope, CancelReason, JoinHandle, Scope};
use std::future::pending;
use std::time::Duration;

/// Every task and the body succeed: `Ok(Ok(value))`, after all of them.
#[test]
fn success() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let done = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let done = done.clone();
        timed(async move {
            try_scope(|s| async move {
                let mut handles = Vec::new();
                for i in 1..=4u64 {
                    let done = done.clone();
                    handles.push(s.spawn(async move {
                        sleep(secs(i)).await;
                        done.inc();
                        Ok::<_, String>(i)
                    }));
                }
                // A detached task the scope still waits for.
                let done = done.clone();
                s.spawn(async move {
                    sleep(secs(5)).await;
                    done.inc();
                    Ok(0)
                });
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                Ok(sum)
            })
            .await
        })
    });
    assert_eq!(out, Ok(Ok(10)));
    assert_eq!(done.get(), 5);
    assert_eq!(elapsed, secs(5), "the scope waited for every task");
    assert_clean(&rt);
}

/// The first error wins: it ends the scope at once, the siblings are
/// dropped (their futures and any later errors never complete), and the
/// scope resolves to that error once all have ended.
#[test]
fn the_first_error_wins_and_cancels_the_siblings() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let finished = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let (drops, finished) = (drops.clone(), finished.clone());
        timed(async move {
            try_scope(|s| async move {
                for i in 0..5 {
                    let (guard, finished) = (drops.on_drop(), finished.clone());
                    s.spawn(async move {
                        let _guard = guard;
                        sleep(secs(3600 + i)).await;
                        finished.inc();
                        Ok(())
                    });
                }
                let guard = drops.on_drop();
                s.spawn(async move {
                    let _guard = guard;
                    sleep(secs(2)).await;
                    Err::<(), _>("second")
                });
                s.spawn(async {
                    sleep(secs(1)).await;
                    Err::<(), _>("first")
                });
                sleep(secs(7200)).await;
                Ok("body")
            })
            .await
        })
    });
    assert_eq!(out, Ok(Err("first")));
    assert_eq!(elapsed, secs(1));
    assert_eq!(drops.get(), 6, "every sibling was dropped");
    assert_eq!(finished.get(), 0);
    assert_clean(&rt);
}

/// Errors at the same instant from many tasks: exactly one is reported,
/// and it is one of them. Repeated, since which one is a race.
#[test]
fn simultaneous_errors_report_exactly_one() {
    let _hang = hang_guard();
    for _ in 0..20 {
        let rt = runtime(Clock::Paused, 2);
        let out = on_workers(&rt, async {
            try_scope(|s| async move {
                for i in 0..8 {
                    s.spawn(async move {
                        sleep(secs(1)).await;
                        Err::<(), _>(i)
                    });
                }
                Ok(())
            })
            .await
        });
        let err = out.unwrap().unwrap_err();
        assert!((0..8).contains(&err));
        assert_clean(&rt);
    }
}

/// An error returned by the body counts like a task's: the tasks are
/// cancelled, and the scope resolves to it.
#[test]
fn an_error_from_the_body() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let drops = drops.clone();
        timed(async move {
            try_scope(|s| async move {
                for _ in 0..3 {
                    let guard = drops.on_drop();
                    s.spawn(async move {
                        let _guard = guard;
                        sleep(secs(3600)).await;
                        Ok::<(), String>(())
                    });
                }
                s.spawn(async {
                    sleep(secs(2)).await;
                    Err::<(), _>("task, later".to_string())
                });
                sleep(secs(1)).await;
                Err::<(), _>("body".to_string())
            })
            .await
        })
    });
    assert_eq!(out, Ok(Err("body".to_string())));
    assert_eq!(elapsed, secs(1));
    assert_eq!(drops.get(), 3);
    assert_clean(&rt);
}

/// Cancelled for another reason: `Err(Cancelled)` with that reason, not an
/// error: by its own `cancel()`, by a deadline, and by an enclosing scope.
#[test]
fn cancelled_for_another_reason_is_err_cancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    // Its own cancel(), through `Deref` to `Scope`.
    let out = on_workers(&rt, async {
        try_scope(|s| async move {
            s.spawn(async { pending::<Result<(), &str>>().await });
            s.cancel();
            Ok::<_, &str>(1)
        })
        .await
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_clean(&rt);

    // A deadline.
    let (out, elapsed) = on_workers(
        &rt,
        timed(async {
            try_scope(|s| async move {
                s.cancel_after(secs(2));
                s.spawn(async {
                    sleep(secs(3)).await;
                    Err::<(), _>("too late")
                });
                sleep(secs(3600)).await;
                Ok(())
            })
            .await
        }),
    );
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(2) }
    );
    assert_eq!(elapsed, secs(2));
    assert_clean(&rt);

    // An enclosing scope: the try_scope sees `Ancestor` (observed from
    // a task handle, since the code awaiting it is dropped too).
    let inner_task: Slot<JoinHandle<()>> = Slot::new();
    let out = on_workers(&rt, {
        let inner_task = inner_task.clone();
        async move {
            scope(|outer| async move {
                outer.cancel_after(secs(1));
                try_scope(|s| async move {
                    inner_task.put(Scope::spawn(&s, pending::<()>()));
                    s.spawn(async {
                        sleep(secs(2)).await;
                        Err::<(), _>("too late")
                    });
                    pending::<Result<(), &str>>().await
                })
                .await
            })
            .await
        }
    });
    assert!(out.is_err());
    let err = rt.block_on(inner_task.take()).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Ancestor);
    assert_clean(&rt);
}

/// The failed task's own `JoinHandle` resolves to `Err(Cancelled)` with
/// `Failed`, and so do its siblings'; a sibling that finished first keeps
/// its value.
#[test]
fn the_failed_tasks_handle_reports_failed() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let handles: Log<(&'static str, JoinHandle<u32>)> = Log::new();
    let out = on_workers(&rt, {
        let handles = handles.clone();
        async move {
            try_scope(|s| async move {
                handles.push(("finished first", s.spawn(async { Ok(7) })));
                handles.push((
                    "failed",
                    s.spawn(async {
                        sleep(secs(1)).await;
                        Err("bad input")
                    }),
                ));
                handles.push((
                    "sibling",
                    s.spawn(async {
                        sleep(secs(2)).await;
                        Ok(8)
                    }),
                ));
                pending::<Result<(), _>>().await
            })
            .await
        }
    });
    assert_eq!(out, Ok(Err("bad input")));
    let mut seen = Vec::new();
    for (name, h) in handles.drain() {
        let r = rt.block_on(h).map_err(|c| c.reason().clone());
        seen.push((name, r));
    }
    assert_eq!(
        seen,
        vec![
            ("finished first", Ok(7)),
            ("failed", Err(CancelReason::Failed)),
            ("sibling", Err(CancelReason::Failed)),
        ]
    );
    assert_clean(&rt);
}

/// A task spawned through the plain `Scope::spawn` of a `try_scope`
/// returns its `Err` as a value; it fails nothing.
#[test]
fn a_plain_spawn_returning_err_fails_nothing() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(try_scope(|s| async move {
        let plain = Scope::spawn(&s, async { Err::<u8, &str>("just a value") });
        let v = plain.await.unwrap();
        Ok::<_, &str>(v)
    }));
    assert_eq!(out, Ok(Ok(Err("just a value"))));
    assert_clean(&rt);
}

/// A failing nested `try_scope` does not fail the enclosing one by itself;
/// a task that propagates its error with `?` does.
#[test]
fn errors_propagate_through_nested_try_scopes_with_the_question_mark() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        timed(async move {
            try_scope(|outer| async move {
                let l = log.clone();
                // Handles the inner failure itself.
                outer.spawn(async move {
                    let inner = try_scope(|s| async move {
                        s.spawn(async { Err::<(), _>("handled") });
                        Ok(())
                    })
                    .await;
                    l.push(format!("inner: {inner:?}"));
                    Ok::<_, String>(())
                });
                // Propagates it.
                outer.spawn(async move {
                    sleep(secs(1)).await;
                    let v: u32 = try_scope(|s| async move {
                        s.spawn(async {
                            sleep(secs(1)).await;
                            Err::<(), _>("propagated".to_string())
                        });
                        sleep(secs(3600)).await;
                        Ok(1)
                    })
                    .await
                    .expect("not cancelled")?;
                    Ok(v)
                });
                sleep(secs(3600)).await;
                Ok(())
            })
            .await
        })
    });
    assert_eq!(out, Ok(Err("propagated".to_string())));
    assert_eq!(elapsed, secs(2));
    assert_eq!(
        log.entries(),
        vec!["inner: Ok(Err(\"handled\"))".to_string()]
    );
    assert_clean(&rt);
}

/// A `try_scope` is a scope like any other underneath: its body and tasks
/// can open nested scopes, which the first error cancels too.
#[test]
fn the_first_error_reaches_nested_scopes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let drops = drops.clone();
        timed(async move {
            try_scope(|s| async move {
                let guard = drops.on_drop();
                s.spawn(async move {
                    let _ = scope(|inner| async move {
                        inner.spawn(async move {
                            let _guard = guard;
                            sleep(secs(3600)).await;
                        });
                        sleep(secs(3600)).await;
                    })
                    .await;
                    Ok(())
                });
                s.spawn(async {
                    sleep(ms(1500)).await;
                    Err::<(), Duration>(ms(1500))
                });
                pending::<Result<(), _>>().await
            })
            .await
        })
    });
    assert_eq!(out, Ok(Err(ms(1500))));
    assert_eq!(elapsed, ms(1500));
    assert_eq!(drops.get(), 1);
    assert_clean(&rt);
}
