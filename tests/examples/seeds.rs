//! The two seed examples, as tests: a group of sleeping tasks cancelled at
//! once, and an inner linked scope whose cancellation reaches the outer one.

use crate::support::{hang_guard, runtime, Clock, Counter, Probes, Slot};
use cancel_scope::{linked_scope, runtime, scope, time::sleep, CancelReason, Cancelled};
use std::time::{Duration, Instant};

/// Seed example 1, on the default runtime exactly as the README tells it.
#[test]
fn four_sleeping_tasks_cancelled_end_at_once() {
    let _hang = hang_guard();
    let woke = Counter::new();
    let start = Instant::now();
    let out = runtime::block_on(scope(|s| {
        let woke = woke.clone();
        async move {
            for secs in 1..=4 {
                let woke = woke.clone();
                s.spawn(async move {
                    sleep(Duration::from_secs(secs)).await;
                    woke.inc();
                });
            }
            s.cancel();
        }
    }));
    let elapsed = start.elapsed();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    // The shortest sleep is one second: ending well before it means no
    // task slept on.
    assert!(elapsed < Duration::from_millis(900), "took {elapsed:?}");
    assert_eq!(woke.get(), 0, "no sleep ran to its end");
}

/// Seed example 1 on a dedicated runtime: every sleeping future is dropped
/// exactly once and the runtime is empty afterwards.
#[test]
fn four_sleeping_tasks_cancelled_drop_every_future() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(4);
    let start = Instant::now();
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            for secs in 1..=4u64 {
                s.spawn(probes.wrap(secs as usize - 1, sleep(Duration::from_secs(secs))));
            }
            s.cancel();
            probes.raise_fence();
        }
    }));
    assert!(start.elapsed() < Duration::from_millis(900));
    assert!(out.is_err());
    probes.assert_each_dropped_once();
    probes.assert_late_polls_at_most(2);
    assert_eq!(probes.total_completions(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// Seed example 2: a task waiting forever on an event, and an inner linked
/// scope that cancels itself; the link cancels the outer scope.
#[test]
fn linked_inner_scope_cancels_outer() {
    let _hang = hang_guard();
    let forever = cancel_scope::sync::Event::new();
    let inner_result: Slot<Result<(), Cancelled>> = Slot::new();
    let recorded = inner_result.clone();
    let out = runtime::block_on(scope(|outer| async move {
        outer.spawn(async move {
            forever.wait().await;
            unreachable!("the event is never set");
        });
        outer.spawn(async move {
            let inner = linked_scope(|inner| async move {
                inner.cancel();
            })
            .await;
            recorded.put(inner);
        });
    }));
    let cancelled = out.unwrap_err();
    assert_eq!(cancelled.reason(), &CancelReason::LinkedChild);
    assert!(
        inner_result.is_some(),
        "the inner scope ended within the task's poll"
    );
    // The inner scope's body returned, and it had no task: its cancel
    // cut nothing of it short, so it ends `Ok`; the outer scope, whose
    // forever task the link's cancel stopped, ends `Err`.
    assert_eq!(inner_result.take(), Ok(()));
}

/// Seed example 2 on a dedicated runtime, with the forever task probed.
#[test]
fn linked_inner_scope_cancels_outer_and_drops_forever_task() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(1);
    let forever = cancel_scope::sync::Event::new();
    let out = rt.block_on(scope(|outer| {
        let probes = probes.clone();
        let waiter = forever.clone();
        async move {
            outer.spawn(probes.wrap(0, async move { waiter.wait().await }));
            outer.spawn(linked_scope(|inner| async move { inner.cancel() }));
        }
    }));
    assert!(out.is_err());
    assert!(!forever.is_set());
    probes.assert_each_dropped_once();
    assert_eq!(probes.total_completions(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}
