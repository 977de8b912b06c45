//! `JoinSet`: outputs in the order the tasks complete, whatever the order
//! of spawning or of reading; results that completed before a deadline
//! cancelled their scope are still read after it; a `join_next` dropped
//! before it completes loses nothing; the set owns handles, not tasks.

use crate::support::{hang_guard, ms, on_workers, runtime, Clock, Counter};
use cancel_scope::move_on_after;
use cancel_scope::sync::Event;
use cancel_scope::time::sleep;
use cancel_scope::{scope, CancelReason, JoinSet};
use futures_lite::future;

/// Sleep lengths whose order of completion differs from their order.
const SLEEPS: [u64; 6] = [50, 10, 40, 60, 20, 30];

/// `SLEEPS`, sorted: the order in which their tasks complete.
fn completion_order() -> Vec<u64> {
    let mut sorted = SLEEPS.to_vec();
    sorted.sort();
    sorted
}

/// Spawns a task per entry of `SLEEPS` into `set`, each sleeping that
/// many milliseconds and returning the number.
fn spawn_sleepers(set: &mut JoinSet<u64>, s: &cancel_scope::Scope) {
    for n in SLEEPS {
        set.spawn_in(s, async move {
            sleep(ms(n)).await;
            n
        });
    }
}

/// Read while the tasks run: each `join_next` returns the next task to
/// complete.
#[test]
fn outputs_come_in_the_order_the_tasks_complete() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let order = on_workers(&rt, async {
        scope(|s| async move {
            let mut set = JoinSet::new();
            spawn_sleepers(&mut set, &s);
            let mut order = Vec::new();
            while let Some(result) = set.join_next().await {
                order.push(result.unwrap());
            }
            order
        })
        .await
    });
    assert_eq!(order, Ok(completion_order()));
}

/// Read only after every task has completed: still completion order, not
/// the order of spawning.
#[test]
fn outputs_read_late_still_come_in_completion_order() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let order = on_workers(&rt, async {
        scope(|s| async move {
            let mut set = JoinSet::new();
            spawn_sleepers(&mut set, &s);
            sleep(ms(1000)).await; // everything has completed
            assert_eq!(set.len(), SLEEPS.len());
            let mut order = Vec::new();
            while let Some(result) = set.try_join_next() {
                order.push(result.unwrap());
            }
            assert!(set.is_empty());
            order
        })
        .await
    });
    assert_eq!(order, Ok(completion_order()));
}

/// A deadline on an inner scope cancels its tasks and drops the body that
/// collected; what the body collected survives outside, and so do outputs
/// that completed but were not read. The unfinished tasks read as
/// `Err(Cancelled)` with the deadline's reason, after them.
#[test]
fn partial_results_survive_a_deadline() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let (collected, rest) = on_workers(&rt, async {
        let mut set = JoinSet::new();
        let mut collected = Vec::new();
        // Between the third sleep to end (30ms) and the fourth (40ms).
        let out = move_on_after(ms(35), |s| {
            let (set, collected) = (&mut set, &mut collected);
            async move {
                spawn_sleepers(set, &s);
                // Collects the first two, then stops reading.
                for _ in 0..2 {
                    collected.push(set.join_next().await.unwrap().unwrap());
                }
                std::future::pending::<()>().await
            }
        })
        .await;
        assert!(matches!(
            out.unwrap_err().reason(),
            CancelReason::Deadline { .. }
        ));
        let mut rest = Vec::new();
        while let Some(result) = set.join_next().await {
            rest.push(result.map_err(|c| c.reason().clone()));
        }
        (collected, rest)
    });
    assert_eq!(
        collected,
        [10, 20],
        "what the body read before the deadline"
    );
    let deadline = CancelReason::Deadline { after: ms(35) };
    assert_eq!(
        rest,
        [
            Ok(30), // completed before the deadline, never read by the body
            Err(deadline.clone()),
            Err(deadline.clone()),
            Err(deadline),
        ]
    );
}

/// `join_next` futures dropped before they complete (here, each loses a
/// race against a short sleep) lose no output.
#[test]
fn a_dropped_join_next_loses_no_output() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (outputs, timeouts) = on_workers(&rt, async {
        scope(|s| async move {
            let mut set = JoinSet::new();
            spawn_sleepers(&mut set, &s);
            let (mut outputs, mut timeouts) = (Vec::new(), 0);
            while !set.is_empty() {
                let next = future::or(async { Some(set.join_next().await) }, async {
                    sleep(ms(3)).await;
                    None
                })
                .await;
                match next {
                    Some(result) => outputs.push(result.unwrap().unwrap()),
                    None => timeouts += 1,
                }
            }
            (outputs, timeouts)
        })
        .await
        .unwrap()
    });
    assert_eq!(outputs, completion_order());
    assert!(timeouts > 0, "some join_next futures were dropped");
}

/// Tasks of several scopes, and blocking closures, in one set; a task of
/// a cancelled scope reads as `Err(Cancelled)` with that scope's reason.
#[test]
fn one_set_for_tasks_of_several_scopes_and_blocking_closures() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let mut outputs = on_workers(&rt, async {
        let mut set = JoinSet::new();
        let _ = scope(|a| {
            let set = &mut set;
            async move {
                set.spawn_in(&a, async { "task of a" });
                set.push(a.spawn_blocking(|| "closure of a"));
                let _ = scope(|b| async move {
                    set.spawn_in(&b, std::future::pending::<&str>());
                    b.cancel();
                })
                .await;
            }
        })
        .await;
        let mut outputs = Vec::new();
        while let Some(result) = set.join_next().await {
            outputs.push(result.map_err(|c| c.reason().clone()));
        }
        outputs
    });
    outputs.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        outputs,
        [
            Err(CancelReason::Explicit),
            Ok("closure of a"),
            Ok("task of a")
        ]
    );
}

/// Dropping a set detaches its tasks: they run to their end, and their
/// scope waits for them.
#[test]
fn dropping_the_set_detaches_its_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let finished = Counter::new();
    let go = Event::new();
    let out = rt.block_on(scope(|s| {
        let (finished, go) = (finished.clone(), go.clone());
        async move {
            let mut set = JoinSet::new();
            for _ in 0..3 {
                let (finished, go) = (finished.clone(), go.clone());
                set.spawn_in(&s, async move {
                    go.wait().await;
                    finished.inc();
                });
            }
            drop(set);
            go.set();
        }
    }));
    assert_eq!(out, Ok(()));
    assert_eq!(finished.get(), 3, "the scope waited for the detached tasks");
}

/// Many tasks: every output once, and `len` counts down to zero.
#[test]
fn ten_thousand_outputs_each_read_once() {
    const N: u64 = 10_000;
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (sum, count) = on_workers(&rt, async {
        scope(|s| async move {
            let mut set: JoinSet<u64> = (0..N).map(|i| s.spawn(async move { i })).collect();
            let (mut sum, mut count) = (0, 0);
            while let Some(result) = set.join_next().await {
                sum += result.unwrap();
                count += 1;
                assert_eq!(set.len() as u64, N - count);
            }
            (sum, count)
        })
        .await
        .unwrap()
    });
    assert_eq!(count, N);
    assert_eq!(sum, (0..N).sum::<u64>());
}

/// An empty set: `join_next` returns `None` at once.
#[test]
fn an_empty_set_ends_at_once() {
    let _hang = hang_guard();
    let mut set = JoinSet::<()>::new();
    assert!(future::block_on(set.join_next()).is_none());
    assert!(set.try_join_next().is_none());
}
