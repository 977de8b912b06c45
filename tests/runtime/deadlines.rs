//! Deadlines: `Scope::cancel_at`, `cancel_after` and `deadline`, moving a
//! deadline earlier and later, nested scopes under an ancestor's deadline,
//! `time::timeout` and `move_on_after`, and deadline timers being
//! freed. Long waits run on a paused (virtual) clock, so every elapsed
//! time is checked exactly.

use crate::support::{
    assert_clean, hang_guard, ms, on_workers, runtime, secs, timed, Clock, Counter, Slot,
};
use cancel_scope::move_on_after;
use cancel_scope::time::{self, sleep, timeout, Elapsed};
use cancel_scope::{linked_scope, scope, task::yield_now, CancelReason, JoinHandle};
use std::future::pending;
use std::time::Duration;

/// A deadline stops everything a `cancel()` would stop: the body, idle
/// tasks, and nested scopes, at exactly the deadline, with reason
/// `Deadline` and the matching message.
#[test]
fn deadline_cancels_like_cancel_with_reason_deadline() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let finished = Counter::new();
    let handles: Slot<Vec<JoinHandle<()>>> = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let (drops, finished, handles) = (drops.clone(), finished.clone(), handles.clone());
        timed(async move {
            scope(|s| async move {
                s.cancel_after(ms(250));
                let mut hs = Vec::new();
                for _ in 0..3 {
                    let (guard, finished) = (drops.on_drop(), finished.clone());
                    hs.push(s.spawn(async move {
                        let _guard = guard;
                        sleep(secs(3600)).await;
                        finished.inc();
                    }));
                }
                let (guard, finished2) = (drops.on_drop(), finished.clone());
                hs.push(s.spawn(async move {
                    let _ = scope(|inner| async move {
                        inner.spawn(async move {
                            let _guard = guard;
                            pending::<()>().await
                        });
                        sleep(secs(3600)).await;
                    })
                    .await;
                    finished2.inc();
                }));
                handles.put(hs);
                sleep(secs(3600)).await;
                finished.inc();
            })
            .await
        })
    });
    let err = out.expect_err("the deadline cancels the scope");
    assert_eq!(err.reason(), &CancelReason::Deadline { after: ms(250) });
    assert_eq!(err.to_string(), "cancelled: deadline of 250ms passed");
    assert_eq!(elapsed, ms(250), "cancelled exactly at the deadline");
    assert_eq!(drops.get(), 4, "every task future was dropped");
    assert_eq!(finished.get(), 0, "nothing ran past the deadline");
    for h in handles.take() {
        let err = rt.block_on(h).expect_err("the task was cancelled");
        assert_eq!(err.reason(), &CancelReason::Deadline { after: ms(250) });
    }
    assert_clean(&rt);
}

/// `cancel_at` takes an absolute instant; `deadline()` reports it, and the
/// reason carries how far ahead it was set.
#[test]
fn cancel_at_an_instant_and_deadline_reports_it() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (out, elapsed) = on_workers(
        &rt,
        timed(async move {
            scope(|s| async move {
                assert_eq!(s.deadline(), None);
                let at = time::now() + secs(3);
                s.cancel_at(at);
                assert_eq!(s.deadline(), Some(at));
                sleep(secs(10)).await;
            })
            .await
        }),
    );
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(3) }
    );
    assert_eq!(elapsed, secs(3));
    assert_clean(&rt);
}

/// A deadline already in the past cancels at once (at the runtime's next
/// timer check), with `after` zero.
#[test]
fn deadline_in_the_past_cancels_at_once() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (out, elapsed) = on_workers(&rt, async move {
        let t0 = time::now();
        let out = scope(|s| async move {
            sleep(secs(1)).await;
            s.cancel_at(t0);
            sleep(secs(3600)).await;
        })
        .await;
        (out, time::now() - t0)
    });
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline {
            after: Duration::ZERO
        }
    );
    assert_eq!(elapsed, secs(1));
    assert_clean(&rt);
}

/// Moving a deadline earlier: the earlier one applies.
#[test]
fn moving_a_deadline_earlier() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (out, elapsed) = on_workers(&rt, async move {
        let t0 = time::now();
        let out = scope(|s| async move {
            s.cancel_after(secs(3600));
            sleep(secs(1)).await;
            s.cancel_after(secs(10)); // now due at 11s
            assert_eq!(s.deadline(), Some(t0 + secs(11)));
            sleep(secs(7200)).await;
        })
        .await;
        (out, time::now() - t0)
    });
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(10) }
    );
    assert_eq!(elapsed, secs(11));
    assert_clean(&rt);
}

/// Moving a deadline later: the old timer, when it goes off, cancels
/// nothing; the later deadline applies.
#[test]
fn moving_a_deadline_later() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let passed_old = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let passed_old = passed_old.clone();
        timed(async move {
            scope(|s| async move {
                s.cancel_after(secs(1));
                sleep(ms(500)).await;
                s.cancel_after(secs(5)); // now due at 5.5s
                sleep(secs(2)).await; // well past the old deadline
                passed_old.inc();
                sleep(secs(3600)).await;
            })
            .await
        })
    });
    assert_eq!(passed_old.get(), 1, "the old deadline no longer applies");
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(5) }
    );
    assert_eq!(elapsed, ms(5500));
    assert_clean(&rt);
}

/// A watchdog: every heartbeat pushes the deadline back; once the
/// heartbeats stop, the deadline passes.
#[test]
fn a_deadline_pushed_back_by_heartbeats() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let beats = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let beats = beats.clone();
        timed(async move {
            scope(|s| async move {
                s.cancel_after(secs(2));
                let watched = s.clone();
                s.spawn(async move {
                    for _ in 0..10 {
                        sleep(secs(1)).await;
                        watched.cancel_after(secs(2));
                        beats.inc();
                    }
                });
                pending::<()>().await
            })
            .await
        })
    });
    assert_eq!(beats.get(), 10);
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(2) }
    );
    assert_eq!(elapsed, secs(12), "2s after the last heartbeat at 10s");
    assert_clean(&rt);
}

/// Scopes nested in a scope with a deadline, however deep and whatever
/// their own (later) deadlines, end at the ancestor's deadline, with
/// reason `Ancestor`. A nested scope with an earlier deadline of its own
/// ends at that one and leaves the ancestor running.
#[test]
fn a_nested_scope_never_outlives_an_ancestors_deadline() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let inner_results = Slot::new();
    let early = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let (inner_results, early) = (inner_results.clone(), early.clone());
        async move {
            let t0 = time::now();
            let out = scope(|s| async move {
                s.cancel_after(secs(1));
                // A scope nested in a task, three levels deep, with a
                // far later deadline of its own.
                let deep = s.spawn(async move {
                    scope(|a| async move {
                        a.cancel_after(secs(3600));
                        scope(|b| async move {
                            b.cancel_after(secs(7200));
                            sleep(secs(9000)).await;
                        })
                        .await
                    })
                    .await
                });
                drop(deep);
                // A nested scope with an earlier deadline of its own.
                let own = scope(|c| async move {
                    c.cancel_after(ms(300));
                    sleep(secs(3600)).await;
                })
                .await;
                early.put((own, time::now() - t0));
                // A nested scope of the body itself.
                let nested = scope(|d| async move {
                    d.cancel_after(secs(3600));
                    sleep(secs(3600)).await;
                })
                .await;
                inner_results.put(nested);
            })
            .await;
            (out, time::now() - t0)
        }
    });
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(1) }
    );
    assert_eq!(elapsed, secs(1), "nothing nested kept the scope alive");
    let (own, at) = early.take();
    assert_eq!(
        own.unwrap_err().reason(),
        &CancelReason::Deadline { after: ms(300) }
    );
    assert_eq!(at, ms(300), "the inner deadline did not end the outer");
    // The body was dropped at the deadline, inside the nested scope's
    // await, so it never stored that result.
    assert!(!inner_results.is_some());
    assert_clean(&rt);
}

/// The nested scope itself sees `Ancestor` when an enclosing deadline
/// passes: observed from its own task's handle, carried out of the tree.
#[test]
fn nested_scopes_see_ancestor_when_the_outer_deadline_passes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let inner_task: Slot<JoinHandle<()>> = Slot::new();
    let out = on_workers(&rt, {
        let inner_task = inner_task.clone();
        scope(|s| async move {
            s.cancel_after(secs(1));
            scope(|inner| async move {
                inner.cancel_after(secs(5));
                inner_task.put(inner.spawn(pending()));
                pending::<()>().await
            })
            .await
        })
    });
    assert!(matches!(
        out.unwrap_err().reason(),
        CancelReason::Deadline { .. }
    ));
    let err = rt.block_on(inner_task.take()).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Ancestor);
    assert_clean(&rt);
}

/// A deadline on a linked scope cancels it exactly as `cancel()` would:
/// through the link, the parent is cancelled too (`LinkedChild`).
#[test]
fn a_deadline_on_a_linked_scope_cancels_the_parent_too() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let linked_result = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let linked_result = linked_result.clone();
        timed(async move {
            scope(|s| async move {
                s.spawn(async move {
                    let r = linked_scope(|l| async move {
                        l.cancel_after(secs(2));
                        sleep(secs(3600)).await;
                    })
                    .await;
                    linked_result.put(r);
                });
                sleep(secs(3600)).await;
            })
            .await
        })
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::LinkedChild);
    assert_eq!(elapsed, secs(2));
    // The task that awaited the linked scope was itself cancelled with
    // the parent, so it stored nothing.
    assert!(!linked_result.is_some());
    assert_clean(&rt);
}

/// The deadline still applies once the body has ended and the scope is
/// only waiting for its tasks.
#[test]
fn a_deadline_applies_while_the_scope_waits_for_its_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let drops = drops.clone();
        timed(async move {
            scope(|s| async move {
                s.cancel_after(secs(1));
                let guard = drops.on_drop();
                s.spawn(async move {
                    let _guard = guard;
                    sleep(secs(3600)).await;
                });
                "body done at once"
            })
            .await
        })
    });
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(1) }
    );
    assert_eq!(elapsed, secs(1));
    assert_eq!(drops.get(), 1);
    assert_clean(&rt);
}

/// A zero duration cancels at once: `move_on_after(0)` gives up without
/// any time passing, and `timeout(0)` gives up on a pending future.
#[test]
fn zero_durations_give_up_at_once() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (moved, timed, ready, elapsed) = on_workers(&rt, async {
        let t0 = time::now();
        let moved = move_on_after(Duration::ZERO, |_| sleep(secs(3600))).await;
        let timed = timeout(Duration::ZERO, sleep(secs(3600))).await;
        let ready = timeout(Duration::ZERO, async { 5 }).await;
        (moved, timed, ready, time::now() - t0)
    });
    assert_eq!(
        moved.unwrap_err().reason(),
        &CancelReason::Deadline {
            after: Duration::ZERO
        }
    );
    assert!(timed.is_err());
    assert_eq!(ready, Ok(5), "a ready future still wins");
    assert_eq!(elapsed, Duration::ZERO);
    assert_clean(&rt);
}

/// Durations too long to add to an `Instant` (like `Duration::MAX`, a
/// common way to say "no limit") mean "never", and do not panic.
#[test]
fn very_long_durations_mean_never() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let out = on_workers(&rt, async {
        let a = timeout(Duration::MAX, async { 1 }).await;
        let b = move_on_after(Duration::MAX, |_| async { 2 }).await;
        let c = scope(|s| async move {
            s.cancel_after(Duration::MAX);
            3
        })
        .await;
        (a, b, c)
    });
    assert_eq!(out, (Ok(1), Ok(2), Ok(3)));
    assert_clean(&rt);
}

/// `timeout` resolves to `Ok` with the output when the future is fast
/// enough, and frees its timer.
#[test]
fn timeout_ok() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (out, elapsed) = on_workers(
        &rt,
        timed(async move {
            timeout(secs(3600), async {
                sleep(secs(1)).await;
                7
            })
            .await
        }),
    );
    assert_eq!(out, Ok(7));
    assert_eq!(elapsed, secs(1));
    assert_clean(&rt);
}

/// `timeout` resolves to `Err(Elapsed)` once the time has passed, and the
/// future is dropped.
#[test]
fn timeout_elapsed() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let guard = drops.on_drop();
        timed(async move {
            timeout(ms(250), async move {
                let _guard = guard;
                sleep(secs(3600)).await;
            })
            .await
        })
    });
    let err: Elapsed = out.unwrap_err();
    assert_eq!(err.duration(), ms(250));
    assert_eq!(err.to_string(), "deadline of 250ms passed");
    assert_eq!(elapsed, ms(250));
    assert_eq!(drops.get(), 1, "the timed-out future was dropped");
    assert_clean(&rt);
}

/// A `timeout` around a scope: the scope future is dropped when the time
/// is up, which cancels its tasks (`ScopeDropped`).
#[test]
fn timeout_around_a_scope_cancels_its_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let task: Slot<JoinHandle<()>> = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let (drops, task) = (drops.clone(), task.clone());
        timed(async move {
            timeout(
                secs(2),
                scope(|s| async move {
                    for _ in 0..3 {
                        let guard = drops.on_drop();
                        s.spawn(async move {
                            let _guard = guard;
                            sleep(secs(3600)).await;
                        });
                    }
                    task.put(s.spawn(pending()));
                    sleep(secs(3600)).await;
                }),
            )
            .await
        })
    });
    assert!(out.is_err());
    assert_eq!(elapsed, secs(2));
    assert_eq!(drops.get(), 3);
    let err = rt.block_on(task.take()).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::ScopeDropped);
    assert_clean(&rt);
}

/// `move_on_after` whose body finishes in time: `Ok`, and its deadline
/// timer is gone.
#[test]
fn move_on_after_in_time() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (out, elapsed) = on_workers(&rt, async move {
        let t0 = time::now();
        let out = move_on_after(secs(10), |s| async move {
            assert_eq!(s.deadline(), Some(t0 + secs(10)));
            let a = s.spawn(async {
                sleep(secs(2)).await;
                20
            });
            sleep(secs(3)).await;
            a.await.unwrap() + 22
        })
        .await;
        (out, time::now() - t0)
    });
    assert_eq!(out, Ok(42));
    assert_eq!(elapsed, secs(3));
    assert_clean(&rt);
}

/// `move_on_after` whose body is too slow: the scope is cancelled at the
/// deadline, with reason `Deadline`, and the code after it moves on.
#[test]
fn move_on_after_moves_on() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let drops = Counter::new();
    let (out, elapsed, after) = on_workers(&rt, {
        let drops = drops.clone();
        async move {
            let t0 = time::now();
            let out = move_on_after(ms(1500), |s| async move {
                for _ in 0..4 {
                    let guard = drops.on_drop();
                    s.spawn(async move {
                        let _guard = guard;
                        sleep(secs(3600)).await;
                    });
                }
                sleep(secs(3600)).await;
                "too late"
            })
            .await;
            let elapsed = time::now() - t0;
            sleep(secs(1)).await; // moving on: time still works here
            (out, elapsed, time::now() - t0)
        }
    });
    let err = out.unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Deadline { after: ms(1500) });
    assert_eq!(err.to_string(), "cancelled: deadline of 1.5s passed");
    assert_eq!(elapsed, ms(1500));
    assert_eq!(after, ms(2500));
    assert_eq!(drops.get(), 4);
    assert_clean(&rt);
}

/// `move_on_after`'s deadline can be moved like any other.
#[test]
fn move_on_after_deadline_can_be_moved() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (out, elapsed) = on_workers(
        &rt,
        timed(async move {
            move_on_after(secs(1), |s| async move {
                s.cancel_after(secs(4));
                sleep(secs(3)).await;
                "made it"
            })
            .await
        }),
    );
    assert_eq!(out, Ok("made it"));
    assert_eq!(elapsed, secs(3));
    assert_clean(&rt);
}

/// Moving a deadline a thousand times keeps one timer, not a thousand;
/// cancelling the scope frees that one; a cancelled scope ignores new
/// deadlines and keeps no timer for them, and `deadline()` is `None`.
#[test]
fn moved_and_cancelled_deadlines_leave_no_timers() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let rt_ref = &rt;
    let out = rt.block_on(scope(|s| async move {
        for i in 0..1000 {
            s.cancel_after(secs(3600) + ms(i));
        }
        assert_eq!(rt_ref.pending_timers(), 1, "old timers were freed");
        s.cancel();
        assert_eq!(rt_ref.pending_timers(), 0, "cancel freed the timer");
        assert_eq!(s.deadline(), None);
        s.cancel_after(secs(1));
        assert_eq!(s.deadline(), None, "a cancelled scope takes no deadline");
        assert_eq!(rt_ref.pending_timers(), 0);
    }));
    out.expect("the cancel interrupted nothing");
    assert_clean(&rt);

    // A kept handle to a scope that has ended takes no deadline either.
    let kept: Slot<cancel_scope::Scope> = Slot::new();
    let k = kept.clone();
    rt.block_on(scope(|s| async move { k.put(s) })).unwrap();
    let s = kept.take();
    s.cancel_after(secs(1));
    assert_eq!(s.deadline(), None);
    assert!(!s.is_cancelled());
    assert_clean(&rt);
}

/// Scopes with deadlines free their timers however they end: cancelled
/// explicitly, cancelled by an ancestor, or ending normally. Real clock,
/// with hour-long deadlines that never come due during the test.
#[test]
fn cancelled_scopes_free_their_deadline_timers() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let rt_ref = &rt;
    // Cancelled by an ancestor.
    let out = rt.block_on(scope(|s| async move {
        for _ in 0..50 {
            s.spawn(scope(|inner| async move {
                inner.cancel_after(secs(3600));
                inner.spawn(pending::<()>());
                pending::<()>().await
            }));
        }
        while rt_ref.pending_timers() < 50 {
            yield_now().await;
        }
        s.cancel();
    }));
    assert!(out.is_err());
    assert_clean(&rt);

    // Each cancelled explicitly.
    let out = rt.block_on(scope(|s| async move {
        for _ in 0..50 {
            s.spawn(async {
                scope(|inner| async move {
                    inner.cancel_after(secs(3600));
                    inner.spawn(sleep(secs(3600)));
                    sleep(ms(1)).await;
                    inner.cancel();
                })
                .await
            });
        }
    }));
    assert!(out.is_ok());
    assert_clean(&rt);

    // Ending normally, before their deadlines.
    let out = rt.block_on(scope(|s| async move {
        for i in 0..50 {
            s.spawn(move_on_after(secs(3600), move |_| async move { i }));
        }
    }));
    assert!(out.is_ok());
    assert_clean(&rt);
}

/// On the real clock: a deadline never fires early, and moving it earlier
/// from another thread wakes the sleeping workers, which then honour the
/// new deadline rather than the hour-long old one.
#[test]
fn real_clock_deadlines_never_early_and_moved_from_another_thread() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let start = std::time::Instant::now();
    let out = rt.block_on(scope(|s| async move {
        s.cancel_after(ms(50));
        sleep(secs(3600)).await;
    }));
    assert!(out.is_err());
    assert!(start.elapsed() >= ms(50), "the deadline fired early");

    let start = std::time::Instant::now();
    let out = rt.block_on(scope(|s| async move {
        s.cancel_after(secs(3600));
        let moved = s.clone();
        std::thread::spawn(move || {
            std::thread::sleep(ms(20));
            moved.cancel_after(ms(10));
        });
        sleep(secs(3600)).await;
    }));
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: ms(10) }
    );
    let took = start.elapsed();
    assert!(took >= ms(30), "ended before the moved deadline: {took:?}");
    assert!(took < secs(30), "the moved deadline was not honoured");
    assert_clean(&rt);
}

/// A scope cancelled by its own deadline frees the timer, and its
/// sleeping tasks free theirs.
#[test]
fn a_passed_deadline_leaves_no_timers() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let out = on_workers(
        &rt,
        scope(|s| async move {
            s.cancel_after(secs(1));
            for i in 0..20 {
                s.spawn(sleep(secs(3600 + i)));
            }
            pending::<()>().await
        }),
    );
    assert!(out.is_err());
    assert_clean(&rt);
}

/// A deadline that is already due when it is set cancels the scope at
/// once, every time, however it is set. Each round uses a fresh 2-worker
/// runtime, whose idle workers fire a due timer as soon as it is
/// registered: the timer can fire before the scope has recorded its
/// deadline, and the cancel must still happen (a lost one hangs the round
/// and trips the guard). 3,000 rounds catch a one-in-a-thousand loss with
/// a probability of 95%.
#[test]
fn a_deadline_already_due_is_never_lost() {
    const ROUNDS: usize = 3_000;
    let _hang = hang_guard();
    for round in 0..ROUNDS {
        let rt = runtime(Clock::Real, 2);
        let out = match round % 4 {
            0 => rt.block_on(scope(|s| async move {
                s.cancel_at(time::now() - ms(1));
                pending::<()>().await
            })),
            1 => rt.block_on(scope(|s| async move {
                s.cancel_after(Duration::ZERO);
                pending::<()>().await
            })),
            2 => rt.block_on(move_on_after(Duration::ZERO, |_| pending::<()>())),
            // Moved: first far ahead, then to now.
            _ => rt.block_on(scope(|s| async move {
                s.cancel_after(secs(3600));
                s.cancel_at(time::now());
                pending::<()>().await
            })),
        };
        let reason = out.expect_err("a due deadline cancels").reason().clone();
        assert!(
            matches!(reason, CancelReason::Deadline { .. }),
            "round {round}: {reason:?}"
        );
    }
}
