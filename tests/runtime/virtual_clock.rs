//! The paused, auto-advancing clock of `Builder::start_paused(true)`:
//! long sleeps take no real time and exactly their virtual time, timers
//! fire in deadline order every run, time stands still while anything can
//! run, and deadlines and `block_on` work under it.

use crate::support::{
    assert_clean, expect_panic, hang_guard, ms, on_workers, runtime, secs, timed, Clock, Log,
};
use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::{self, sleep, sleep_until, timeout};
use cancel_scope::{scope, CancelReason};
use std::future::pending;
use std::time::{Duration, Instant};

/// A generous real-time bound for work that takes no real time on a
/// virtual clock: it catches a clock that really waits, not slowness.
const REAL_LIMIT: Duration = Duration::from_secs(10);

/// An hour of one-second sleeps, one after the other, plus concurrent
/// tasks sleeping minutes: virtually exactly one hour, in little real
/// time.
#[test]
fn an_hour_of_sleeps_takes_virtually_one_hour() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let real = Instant::now();
    let (elapsed, ends) = on_workers(&rt, async {
        let t0 = time::now();
        let ends = Log::new();
        let log = ends.clone();
        scope(|s| async move {
            for _ in 0..4 {
                let log = log.clone();
                s.spawn(async move {
                    for _ in 0..60 {
                        sleep(secs(60)).await;
                    }
                    log.push(time::now() - t0);
                });
            }
            for _ in 0..3600 {
                sleep(secs(1)).await;
            }
        })
        .await
        .unwrap();
        (time::now() - t0, ends.entries())
    });
    assert_eq!(elapsed, secs(3600));
    assert_eq!(ends, vec![secs(3600); 4]);
    assert!(real.elapsed() < REAL_LIMIT, "took {:?}", real.elapsed());
    assert_clean(&rt);
}

/// Wakes tasks at many distinct instants, spawned in a scrambled order;
/// records who woke, and when.
fn wake_order(rt: &Runtime, n: u64) -> Vec<(u64, Duration)> {
    on_workers(rt, async move {
        let t0 = time::now();
        let log = Log::new();
        let tasks = log.clone();
        scope(|s| async move {
            for i in 0..n {
                // A permutation of 0..n (37 is coprime with n).
                let delay = (i * 37) % n + 1;
                let log = tasks.clone();
                s.spawn(async move {
                    sleep(ms(delay * 10)).await;
                    log.push((delay, time::now() - t0));
                });
            }
        })
        .await
        .unwrap();
        log.entries()
    })
}

/// Timers fire in deadline order, each at exactly its instant, and the
/// whole run is the same every time: several runs, on two and four
/// workers.
#[test]
fn timers_fire_in_deadline_order_deterministically() {
    let _hang = hang_guard();
    let n = 100;
    let expected: Vec<(u64, Duration)> = (1..=n).map(|d| (d, ms(d * 10))).collect();
    for workers in [2, 4] {
        for run in 0..40 {
            let rt = runtime(Clock::Paused, workers);
            let got = wake_order(&rt, n);
            assert_eq!(got, expected, "run {run} on {workers} workers");
            assert_clean(&rt);
        }
    }
}

/// Time stands still while a task is running: a task that blocks its
/// worker for a while sees the same `now()` before and after, and a timer
/// due meanwhile fires only once that task has let go.
#[test]
fn time_stands_still_while_a_task_runs() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let log = on_workers(&rt, async {
        let log = Log::new();
        let (a, b) = (log.clone(), log.clone());
        let started = Event::new();
        let go = started.clone();
        scope(|s| async move {
            s.spawn(async move {
                let t0 = time::now();
                sleep(ms(1)).await;
                b.push(("timer fired", time::now() - t0));
            });
            s.spawn(async move {
                go.wait().await;
                let t = time::now();
                std::thread::sleep(ms(50)); // busy, in real time
                assert_eq!(time::now(), t, "the clock moved while a task ran");
                a.push(("busy task done", Duration::ZERO));
            });
            yield_now().await;
            started.set();
        })
        .await
        .unwrap();
        log.entries()
    });
    assert_eq!(
        log,
        vec![("busy task done", Duration::ZERO), ("timer fired", ms(1))]
    );
    assert_clean(&rt);
}

/// Time also stands still while a `block_on` future is being polled.
#[test]
fn time_stands_still_while_block_on_polls() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    rt.block_on(scope(|s| async move {
        s.spawn(sleep(ms(1)));
        let t = time::now();
        std::thread::sleep(ms(50));
        assert_eq!(time::now(), t);
    }))
    .unwrap();
    assert_clean(&rt);
}

/// Many tasks on four workers, handing a baton along a chain of events
/// with a sleep at each step, while others sleep and yield: the clock
/// advances only as far as the chain needs, never stalls, and every task
/// sees the exact virtual time.
#[test]
fn auto_advance_with_multiple_workers() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 4);
    let real = Instant::now();
    let (chain_end, noise_end) = on_workers(&rt, async {
        let t0 = time::now();
        let events: Vec<Event> = (0..=16).map(|_| Event::new()).collect();
        let noise = Log::new();
        let noise_log = noise.clone();
        let end = events[16].clone();
        scope(|s| async move {
            for k in 0..16 {
                let (prev, next) = (events[k].clone(), events[k + 1].clone());
                s.spawn(async move {
                    prev.wait().await;
                    sleep(ms(10)).await;
                    next.set();
                });
            }
            for i in 0..8u64 {
                let log = noise_log.clone();
                s.spawn(async move {
                    for _ in 0..20 {
                        sleep(ms(i + 1)).await;
                        yield_now().await;
                    }
                    log.push(time::now() - t0);
                });
            }
            events[0].set();
            end.wait().await;
            assert_eq!(time::now() - t0, ms(160));
        })
        .await
        .unwrap();
        let mut ends = noise.entries();
        ends.sort();
        (time::now() - t0, ends)
    });
    assert_eq!(chain_end, ms(160), "16 steps of 10ms");
    let expected: Vec<Duration> = (0..8u64).map(|i| ms(20 * (i + 1))).collect();
    assert_eq!(noise_end, expected);
    assert!(real.elapsed() < REAL_LIMIT);
    assert_clean(&rt);
}

/// Deadlines under the virtual clock: ten scopes with deadlines from one
/// to ten hours each end at exactly their deadline, in order.
#[test]
fn deadlines_under_the_virtual_clock() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let real = Instant::now();
    let ends = on_workers(&rt, async {
        let t0 = time::now();
        let log = Log::new();
        let tasks = log.clone();
        scope(|s| async move {
            for h in (1..=10u64).rev() {
                let log = tasks.clone();
                s.spawn(async move {
                    let out = scope(|inner| async move {
                        inner.cancel_after(secs(3600 * h));
                        inner.spawn(pending::<()>());
                        sleep(secs(3600 * 24)).await;
                    })
                    .await;
                    let err = out.unwrap_err();
                    assert_eq!(
                        err.reason(),
                        &CancelReason::Deadline {
                            after: secs(3600 * h)
                        }
                    );
                    log.push((h, time::now() - t0));
                });
            }
        })
        .await
        .unwrap();
        log.entries()
    });
    let expected: Vec<(u64, Duration)> = (1..=10).map(|h| (h, secs(3600 * h))).collect();
    assert_eq!(ends, expected);
    assert!(real.elapsed() < REAL_LIMIT);
    assert_clean(&rt);
}

/// `now()` does not move by itself: real time passing changes nothing, and
/// `sleep_until` ends at exactly its instant.
#[test]
fn the_clock_moves_only_to_timers() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let (a, b, c, target) = on_workers(&rt, async {
        let a = time::now();
        std::thread::sleep(ms(20));
        let b = time::now();
        let target = a + secs(5);
        sleep_until(target).await;
        (a, b, time::now(), target)
    });
    assert_eq!(a, b);
    assert_eq!(c, target);
    assert_clean(&rt);
}

/// `block_on` itself waiting on a timer (the `start_paused` documentation
/// pattern) while a later timer is pending: when the earlier timer wakes
/// it, it must observe exactly that instant; the clock may not jump to the
/// later timer before the woken `block_on` has run. Repeated, since the
/// failure depends on timing.
#[test]
fn block_on_woken_by_a_timer_sees_that_instant() {
    let _hang = hang_guard();
    for run in 0..50 {
        let rt = runtime(Clock::Paused, 2);
        let (out, elapsed) =
            rt.block_on(timed(async { timeout(ms(250), sleep(secs(3600))).await }));
        assert!(
            out.is_err(),
            "run {run}: the hour-long sleep won the timeout"
        );
        assert_eq!(elapsed, ms(250), "run {run}");
        assert_clean(&rt);
    }
}

/// The same, with a scope body polled by `block_on`: the deadline cancels
/// the scope at 3s even though the body's own sleep is due at 10s.
#[test]
fn block_on_scope_body_ends_at_its_deadline() {
    let _hang = hang_guard();
    for run in 0..50 {
        let rt = runtime(Clock::Paused, 2);
        let (out, elapsed) = rt.block_on(timed(async {
            scope(|s| async move {
                s.cancel_after(secs(3));
                sleep(secs(10)).await;
            })
            .await
        }));
        assert!(out.is_err(), "run {run}");
        assert_eq!(elapsed, secs(3), "run {run}");
        assert_clean(&rt);
    }
}

/// A `Sleep` (and a `timeout`) built outside any runtime belongs to the
/// runtime that first polls it: on a paused clock, an hour passes in no
/// real time and the virtual clock reads exactly an hour later.
#[test]
fn a_sleep_built_outside_runs_on_the_clock_that_polls_it() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let nap = cancel_scope::time::sleep(secs(3600));
    let slow = cancel_scope::time::timeout(secs(60), cancel_scope::time::sleep(secs(3600)));
    let real = std::time::Instant::now();
    let (elapsed, timed_out) = rt.block_on(async move {
        let t0 = time::now();
        nap.await;
        let elapsed = time::now() - t0;
        (elapsed, slow.await.is_err())
    });
    assert_eq!(elapsed, secs(3600));
    assert!(timed_out);
    assert!(real.elapsed() < secs(60), "no real hour passed");
}

/// A time future polled outside any runtime panics with a clear message,
/// instead of starting a runtime of its own.
#[test]
fn a_sleep_polled_outside_any_runtime_panics() {
    let message = expect_panic(|| futures_lite::future::block_on(cancel_scope::time::sleep(ms(1))));
    assert!(message.contains("polled outside any runtime"), "{message}");
}
