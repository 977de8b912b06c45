//! `race_ok`: the first `Ok` wins and the other entrants are dropped,
//! failures do not end the race, all failing gives every error in input
//! order, no entrants gives an empty error list, simultaneous winners give
//! exactly one, and cancellation from outside stops every entrant.

use crate::support::{
    assert_clean, hang_guard, ms, on_workers, reason_of, runtime, secs, timed, Clock, Counter, Log,
    Slot,
};
use cancel_scope::move_on_after;
use cancel_scope::time::{self, sleep};
use cancel_scope::{linked_scope, race_ok, scope, CancelHandle, CancelReason, Cancelled};
use std::future::{pending, Future};
use std::pin::Pin;
use std::time::Duration;

/// A boxed entrant, so entrants of different shapes fit in one list.
type Entrant<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// An entrant that takes `after` and then returns `outcome`; counts its
/// drop in `drops` and its completion in `finished`.
fn entrant<T, E>(
    after: Duration,
    outcome: Result<T, E>,
    drops: &Counter,
    finished: &Counter,
) -> Entrant<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let (guard, finished) = (drops.on_drop(), finished.clone());
    Box::pin(async move {
        let _guard = guard;
        sleep(after).await;
        finished.inc();
        outcome
    })
}

/// The fastest success wins, at its own time; the losers are dropped and
/// never finish.
#[test]
fn the_first_success_wins_and_the_losers_are_cancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (drops, finished) = (Counter::new(), Counter::new());
    let (out, elapsed) = on_workers(&rt, {
        let (drops, finished) = (drops.clone(), finished.clone());
        timed(async move {
            race_ok([
                entrant(secs(3), Ok::<_, ()>("3s"), &drops, &finished),
                entrant(secs(1), Ok("1s"), &drops, &finished),
                entrant(secs(2), Ok("2s"), &drops, &finished),
                entrant(secs(3600), Ok("1h"), &drops, &finished),
            ])
            .await
        })
    });
    assert_eq!(out, Ok(Ok("1s")));
    assert_eq!(elapsed, secs(1), "the race ended with the winner");
    assert_eq!(finished.get(), 1, "only the winner finished");
    assert_eq!(drops.get(), 4, "every entrant's future was dropped");
    assert_clean(&rt);
}

/// Failures do not end the race: a later success still wins.
#[test]
fn failures_do_not_end_the_race() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (drops, finished) = (Counter::new(), Counter::new());
    let (out, elapsed) = on_workers(&rt, {
        let (drops, finished) = (drops.clone(), finished.clone());
        timed(async move {
            race_ok([
                entrant(ms(100), Err("refused"), &drops, &finished),
                entrant(ms(300), Ok(3), &drops, &finished),
                entrant(ms(200), Err("reset"), &drops, &finished),
                entrant(secs(10), Ok(10), &drops, &finished),
            ])
            .await
        })
    });
    assert_eq!(out, Ok(Ok(3)));
    assert_eq!(elapsed, ms(300));
    assert_eq!(finished.get(), 3);
    assert_clean(&rt);
}

/// When every entrant fails, the errors come back in the order the
/// entrants were given, not the order they failed in, and only once the
/// last one has failed.
#[test]
fn all_fail_gives_every_error_in_input_order() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (drops, finished) = (Counter::new(), Counter::new());
    let (out, elapsed) = on_workers(&rt, {
        let (drops, finished) = (drops.clone(), finished.clone());
        timed(async move {
            race_ok((0..5u64).map(|i| {
                // Entrant 0 fails last, entrant 4 first.
                entrant(
                    secs(5 - i),
                    Err::<(), _>(format!("e{i}")),
                    &drops,
                    &finished,
                )
            }))
            .await
        })
    });
    let expected: Vec<String> = (0..5).map(|i| format!("e{i}")).collect();
    assert_eq!(out, Ok(Err(expected)));
    assert_eq!(elapsed, secs(5));
    assert_eq!(finished.get(), 5);
    assert_eq!(drops.get(), 5);
    assert_clean(&rt);
}

/// No entrants: nobody can win; the error list is empty, at once.
#[test]
fn no_entrants_gives_an_empty_error_list() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let out = on_workers(
        &rt,
        timed(async { race_ok(Vec::<Entrant<u8, String>>::new()).await }),
    );
    assert_eq!(out, (Ok(Err(Vec::new())), Duration::ZERO));
    assert_clean(&rt);
}

/// Many entrants succeeding at the same instant: exactly one wins, and it
/// is one of them. Repeated, since which one is a race.
#[test]
fn simultaneous_successes_give_exactly_one_winner() {
    let _hang = hang_guard();
    for _ in 0..20 {
        let rt = runtime(Clock::Paused, 2);
        let (drops, finished) = (Counter::new(), Counter::new());
        let out = on_workers(&rt, {
            let (drops, finished) = (drops.clone(), finished.clone());
            async move {
                race_ok((0..8).map(|i| entrant(secs(1), Ok::<_, ()>(i), &drops, &finished))).await
            }
        });
        let winner = out.unwrap().unwrap();
        assert!((0..8).contains(&winner));
        assert!(finished.get() >= 1);
        assert_eq!(drops.get(), 8);
        assert_clean(&rt);
    }
}

/// A loser's nested scope sees the cancellation arrive from above
/// (`Ancestor`); a loser that had already failed is simply gone.
#[test]
fn losers_see_the_cancellation_from_above() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let handle: Slot<CancelHandle> = Slot::new();
    let out = on_workers(&rt, {
        let handle = handle.clone();
        async move {
            let loser: Entrant<&str, &str> = Box::pin(async move {
                scope(|inner| async move {
                    handle.put(inner.cancel_handle());
                    sleep(secs(3600)).await;
                })
                .await
                .ok();
                Ok("loser")
            });
            race_ok([
                loser,
                Box::pin(async { Err("failed early") }),
                Box::pin(async {
                    sleep(secs(1)).await;
                    Ok("winner")
                }),
            ])
            .await
        }
    });
    assert_eq!(out, Ok(Ok("winner")));
    assert_eq!(reason_of(&rt, &handle.take()), Some(CancelReason::Ancestor));
    assert_clean(&rt);
}

/// Cancelled from outside before anyone won: every entrant is dropped, and
/// the enclosing scope reports its own reason.
#[test]
fn cancelled_from_outside_stops_every_entrant() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (drops, finished) = (Counter::new(), Counter::new());
    let (out, elapsed) = on_workers(&rt, {
        let (drops, finished) = (drops.clone(), finished.clone());
        timed(async move {
            move_on_after(secs(2), |_| {
                race_ok([
                    entrant(secs(3), Ok::<_, ()>(3), &drops, &finished),
                    entrant(secs(4), Ok(4), &drops, &finished),
                    entrant(secs(5), Ok(5), &drops, &finished),
                ])
            })
            .await
        })
    });
    assert_eq!(
        out.unwrap_err().reason(),
        &CancelReason::Deadline { after: secs(2) }
    );
    assert_eq!(elapsed, secs(2));
    assert_eq!(finished.get(), 0);
    assert_eq!(drops.get(), 3);
    assert_clean(&rt);
}

/// The race's own scope cancelled (here through a linked scope inside an
/// entrant) before anyone won: `Err(Cancelled)`, and no entrant goes on.
#[test]
fn a_cancelled_race_resolves_to_err_cancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (drops, finished) = (Counter::new(), Counter::new());
    let log: Log<Result<Result<u32, Vec<()>>, Cancelled>> = Log::new();
    let elapsed = on_workers(&rt, {
        let (drops, finished, log) = (drops.clone(), finished.clone(), log.clone());
        async move {
            let t0 = time::now();
            let saboteur: Entrant<u32, ()> = Box::pin(async {
                sleep(secs(1)).await;
                let _ = linked_scope(|l| async move { l.cancel() }).await;
                pending().await
            });
            let out = race_ok([
                saboteur,
                entrant(secs(2), Ok(2), &drops, &finished),
                entrant(secs(3), Err(()), &drops, &finished),
            ])
            .await;
            log.push(out);
            time::now() - t0
        }
    });
    let out = log.drain().pop().unwrap();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::LinkedChild);
    assert_eq!(elapsed, secs(1));
    assert_eq!(finished.get(), 0);
    assert_eq!(drops.get(), 2);
    assert_clean(&rt);
}
