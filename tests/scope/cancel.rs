//! Cancelling a scope: what stops (the scope's subtree), what does not (its
//! parent, ancestors and siblings), when each future is dropped, and what
//! the scope and its tasks resolve to.

use crate::support::{
    arrive_and_park, cancel_reasons, hang_guard, ms, runtime, Clock, Countdown, Counter, Log,
    Probes, Slot,
};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::{scope, CancelReason, JoinHandle};
use futures_lite::future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread;

/// Cancelling a scope opened in a body stops it and the scope opened in
/// one of its tasks; the enclosing scope and its other task run on.
#[test]
fn cancel_propagates_down_not_up() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(3);
    let parked = Countdown::new(3);
    let stash: Log<JoinHandle<()>> = Log::new();
    let body_went_on = Arc::new(AtomicBool::new(false));
    let out = rt.block_on(scope(|r| {
        let (probes, stash, body_went_on) = (probes.clone(), stash.clone(), body_went_on.clone());
        async move {
            let go = Event::new();
            let sibling = r.spawn({
                let go = go.clone();
                async move {
                    go.wait().await;
                    "sibling done"
                }
            });
            let inner = scope(|c| {
                let probes = probes.clone();
                async move {
                    c.spawn(probes.wrap(0, arrive_and_park(parked.clone())));
                    let parked_g = parked.clone();
                    let probes_g = probes.clone();
                    c.spawn(scope(move |g| async move {
                        let h = g.spawn(probes_g.wrap(1, arrive_and_park(parked_g.clone())));
                        stash.push(h);
                        probes_g.wrap(2, arrive_and_park(parked_g)).await
                    }));
                    parked.wait().await;
                    c.cancel();
                    probes.raise_fence();
                    yield_now().await;
                    body_went_on.store(true, SeqCst);
                }
            })
            .await;
            assert_eq!(inner.unwrap_err().reason(), &CancelReason::Explicit);
            assert!(!r.is_cancelled(), "cancel went up to the enclosing scope");
            go.set();
            let sibling = sibling.await.unwrap();
            let later = r.spawn(async { 1 }).await.unwrap();
            (sibling, later)
        }
    }));
    assert_eq!(out, Ok(("sibling done", 1)));
    assert!(
        !get_flag(&body_went_on),
        "the cancelled body ran past an .await"
    );
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(cancel_reasons(stash.drain()), [CancelReason::Ancestor]);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

fn get_flag(flag: &AtomicBool) -> bool {
    flag.load(SeqCst)
}

/// Three levels (root, parent, child) and a sibling scope: cancelling the
/// child leaves the parent, the root and the sibling to complete with Ok.
#[test]
fn siblings_and_ancestors_of_a_cancelled_scope_complete() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(1);
    let child_done = Event::new();
    let out = rt.block_on(scope(|root| {
        let probes = probes.clone();
        async move {
            let waiter = child_done.clone();
            let sibling = root.spawn(scope(|sib| async move {
                let t = sib.spawn(async move {
                    waiter.wait().await;
                    10
                });
                t.await.unwrap() + 1
            }));
            let parent = root.spawn(scope(move |parent| async move {
                let child = parent.spawn(scope(move |child| async move {
                    child.spawn(probes.wrap(0, std::future::pending::<()>()));
                    child.cancel();
                }));
                let child = child.await.unwrap();
                assert_eq!(child.unwrap_err().reason(), &CancelReason::Explicit);
                child_done.set();
                assert!(!parent.is_cancelled());
                parent.spawn(async { 20 }).await.unwrap()
            }));
            let parent = parent.await.unwrap();
            let sibling = sibling.await.unwrap();
            (parent, sibling)
        }
    }));
    assert_eq!(out, Ok((Ok(20), Ok(11))));
    probes.assert_each_dropped_once();
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// A task that is parked when its scope is cancelled is dropped by the
/// cancelling thread, before `cancel()` returns, and never polled again.
#[test]
fn parked_task_is_dropped_by_the_cancelling_thread() {
    let _hang = hang_guard();
    // One worker: once a later task has run, the earlier poll returned.
    let rt = runtime(Clock::Real, 1);
    let probes = Probes::new(2);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            let parked = Countdown::new(2);
            s.spawn(probes.wrap(0, arrive_and_park(parked.clone())));
            s.spawn(probes.wrap(1, arrive_and_park(parked.clone())));
            parked.wait().await;
            s.spawn(async {}).await.unwrap();
            assert_eq!(probes.total_drops(), 0);
            s.cancel();
            probes.raise_fence();
            assert_eq!(probes.total_drops(), 2, "parked futures outlived cancel()");
            for i in 0..2 {
                let dropped_on = probes[i].dropped_on();
                assert_eq!(dropped_on, Some(thread::current().id()));
                assert_eq!(probes[i].polls(), 1);
            }
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
}

/// A task in the middle of a poll when its scope is cancelled keeps its
/// future until that poll returns, then it is dropped, not polled again.
#[test]
fn running_task_is_dropped_when_its_poll_returns() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(1);
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (handle_tx, handle_rx) = mpsc::channel();
    let canceller = {
        let probes = probes.clone();
        thread::spawn(move || {
            let handle: cancel_scope::CancelHandle = handle_rx.recv().unwrap();
            entered_rx.recv().unwrap();
            handle.cancel();
            probes.raise_fence();
            let drops_during_poll = probes.total_drops();
            go_tx.send(()).unwrap();
            drops_during_poll
        })
    };
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            handle_tx.send(s.cancel_handle()).unwrap();
            s.spawn(probes.wrap(
                0,
                std::future::poll_fn(move |_| {
                    entered_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Poll::<()>::Pending
                }),
            ));
            std::future::pending::<()>().await
        }
    }));
    assert_eq!(
        canceller.join().unwrap(),
        0,
        "dropped while it was being polled"
    );
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(probes[0].polls(), 1);
    assert_eq!(rt.live_tasks(), 0);
}

/// The body is dropped at the first `.await` after `cancel()`; the code
/// after it never runs.
#[test]
fn body_is_dropped_at_its_next_suspension() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let drops = Counter::new();
    let went_on = Arc::new(AtomicBool::new(false));
    let out = rt.block_on(scope(|s| {
        let (drops, went_on) = (drops.clone(), went_on.clone());
        async move {
            let _guard = drops.on_drop();
            s.cancel();
            assert!(s.is_cancelled());
            assert_eq!(drops.get(), 0, "the body is dropped only when it suspends");
            yield_now().await;
            went_on.store(true, SeqCst);
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(drops.get(), 1);
    assert!(!went_on.load(SeqCst));
}

/// A body parked on a future that is never woken is dropped when another
/// thread cancels the scope.
#[test]
fn parked_body_is_dropped_on_cancel_from_another_thread() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(1);
    let (tx, rx) = mpsc::channel();
    let canceller = thread::spawn(move || {
        let handle: cancel_scope::CancelHandle = rx.recv().unwrap();
        handle.cancel();
    });
    let out = rt.block_on(scope(|s| {
        tx.send(s.cancel_handle()).unwrap();
        probes.wrap(0, std::future::pending::<()>())
    }));
    canceller.join().unwrap();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    assert_eq!(probes.total_completions(), 0);
}

/// If the body finishes without suspending after `cancel()`, and the
/// scope has no task the cancel cut short, the cancel interrupted nothing:
/// the scope gives the body's value (Trio's rule: `cancelled_caught`, not
/// `cancel_called`).
#[test]
fn body_finishing_after_cancel_keeps_its_value() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let drops = Counter::new();
    let out = rt.block_on(scope(|s| {
        let drops = drops.clone();
        async move {
            s.cancel();
            assert!(s.is_cancelled());
            drops.on_drop()
        }
    }));
    assert_eq!(drops.get(), 0);
    drop(out.expect("nothing was interrupted"));
    assert_eq!(drops.get(), 1, "the value is dropped once, by its owner");
}

/// A body that finishes after `cancel()` while a task of its scope is
/// still parked: the cancel cut that task short, so the scope ends in
/// `Err(Cancelled)` and the body's value is dropped.
#[test]
fn body_finishing_after_cancel_with_a_task_cut_short_yields_err() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let drops = Counter::new();
    let out = rt.block_on(scope(|s| {
        let drops = drops.clone();
        async move {
            s.spawn(std::future::pending::<()>());
            s.cancel();
            drops.on_drop()
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(drops.get(), 1, "the discarded value is dropped once");
}

/// A deadline that passes while the body runs on without suspending, and
/// returns: the body finished, nothing was cut short, and the scope gives
/// its value (as `tokio::time::timeout` and smol's `or` with a `Timer`
/// do). A request handler that wrote its reply in such a body must not be
/// told it timed out.
#[test]
fn a_body_that_overruns_its_deadline_without_suspending_keeps_its_value() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(cancel_scope::move_on_after(ms(2), |s| async move {
        // Busy past the deadline, never suspending, until a worker
        // has fired it.
        while !s.is_cancelled() {
            std::hint::spin_loop();
        }
        42
    }));
    assert_eq!(out, Ok(42));
}

/// Repeated cancels change nothing: the reason stays the first one, every
/// future is dropped once, and a later cancel of the parent does not
/// overwrite the child's reason.
#[test]
fn cancel_is_idempotent() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(4);
    let child_stash: Log<JoinHandle<()>> = Log::new();
    let parent_stash: Log<JoinHandle<()>> = Log::new();
    let out = rt.block_on(scope(|p| {
        let (probes, child_stash, parent_stash) =
            (probes.clone(), child_stash.clone(), parent_stash.clone());
        async move {
            let parked = Countdown::new(4);
            for i in 0..2 {
                let h = p.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
                parent_stash.push(h);
            }
            let (ready_tx, ready_rx) = async_channel::bounded(1);
            let child = p.spawn(scope({
                let (probes, parked) = (probes.clone(), parked.clone());
                move |c| async move {
                    for i in 2..4 {
                        let h = c.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
                        child_stash.push(h);
                    }
                    ready_tx.send(c.clone()).await.unwrap();
                    std::future::pending::<()>().await
                }
            }));
            let c = ready_rx.recv().await.unwrap();
            parked.wait().await;
            c.cancel();
            c.cancel();
            c.cancel_handle().cancel();
            let child = child.await.unwrap();
            assert_eq!(child.unwrap_err().reason(), &CancelReason::Explicit);
            assert!(!p.is_cancelled());
            p.cancel();
            p.cancel_handle().cancel();
            p.cancel();
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    assert_eq!(
        cancel_reasons(child_stash.drain()),
        vec![CancelReason::Explicit; 2]
    );
    assert_eq!(
        cancel_reasons(parent_stash.drain()),
        vec![CancelReason::Explicit; 2]
    );
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// Spawning into a cancelled scope drops the future at once, unpolled, and
/// the handle resolves to the scope's cancellation; a scope opened inside
/// it starts cancelled and never polls its body.
#[test]
fn spawn_into_cancelled_scope_is_refused() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(2);
    let refused = Slot::new();
    let out = rt.block_on(scope(|s| {
        let (probes, refused) = (probes.clone(), refused.clone());
        async move {
            s.cancel();
            let h = s.spawn(probes.wrap(0, async { 5 }));
            assert_eq!(probes[0].drops(), 1, "refused future not dropped");
            assert_eq!(probes[0].polls(), 0);
            assert!(h.is_finished());
            // Awaited after the scope: in this cancelled body, an
            // `.await` on the handle would end the body (the budget
            // refuses every runtime future in a cancelled poll).
            refused.put(h);
            let nested = scope(|n| probes.wrap(1, async move { n.is_cancelled() })).await;
            assert_eq!(nested.unwrap_err().reason(), &CancelReason::Ancestor);
            assert_eq!(probes[1].polls(), 0, "a cancelled body was polled");
        }
    }));
    // The body ran to its end and the scope ran no task: the cancel
    // interrupted nothing of it.
    assert_eq!(out, Ok(()));
    let h = refused.take();
    assert_eq!(
        rt.block_on(h).unwrap_err().reason(),
        &CancelReason::Explicit
    );
    probes.assert_each_dropped_once();
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// `cancel()` through a `Scope` clone moved to another OS thread stops
/// parked tasks; none is polled after it returns.
#[test]
fn cancel_from_another_os_thread() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 16;
    let probes = Probes::new(N);
    let parked = Countdown::new(N);
    let (tx, rx) = mpsc::channel::<cancel_scope::Scope>();
    let canceller = {
        let (probes, parked) = (probes.clone(), parked.clone());
        thread::spawn(move || {
            let s = rx.recv().unwrap();
            future::block_on(parked.wait());
            s.cancel();
            probes.raise_fence();
            assert!(s.is_cancelled());
        })
    };
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            for i in 0..N {
                s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
            }
            tx.send(s.clone()).unwrap();
            std::future::pending::<()>().await
        }
    }));
    canceller.join().unwrap();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(rt.live_tasks(), 0);
}

/// A task cancels its own scope: its siblings stop, it does not run past
/// its next `.await`, and the scope ends with `Err`.
#[test]
fn cancel_from_inside_a_task_of_the_same_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 8;
    let probes = Probes::new(N + 1);
    let went_on = Arc::new(AtomicBool::new(false));
    let out = rt.block_on(scope(|s| {
        let (probes, went_on) = (probes.clone(), went_on.clone());
        async move {
            let parked = Countdown::new(N);
            for i in 0..N {
                s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
            }
            let me = s.clone();
            let fence = probes.clone();
            s.spawn(probes.wrap(N, async move {
                parked.wait().await;
                me.cancel();
                fence.raise_fence();
                yield_now().await;
                went_on.store(true, SeqCst);
            }));
            std::future::pending::<()>().await
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert!(
        !went_on.load(SeqCst),
        "the task was polled after it cancelled its scope"
    );
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(rt.live_tasks(), 0);
}

/// Tasks that never stop yielding (always queued or running) are not
/// polled once `cancel()` has returned, except for a poll a worker had
/// already begun.
#[test]
fn busy_tasks_are_never_polled_after_cancel() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 32;
    let probes = Probes::new(N);
    let started = Countdown::new(N);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            for i in 0..N {
                let started = started.clone();
                s.spawn(probes.wrap(i, async move {
                    started.arrive();
                    loop {
                        yield_now().await;
                    }
                }));
            }
            started.wait().await;
            for _ in 0..10 {
                yield_now().await;
            }
            s.cancel();
            probes.raise_fence();
        }
    }));
    assert!(out.is_err());
    probes.assert_each_dropped_once();
    probes.assert_late_polls_at_most(2);
    assert_eq!(rt.live_tasks(), 0);
}

/// Dropping a scope's future before it completes cancels the scope with
/// `ScopeDropped`, drops its parked tasks, and leaves the enclosing scope
/// running.
#[test]
fn dropping_the_scope_future_cancels_it() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 4;
    let probes = Probes::new(N);
    let stash: Log<JoinHandle<()>> = Log::new();
    let out = rt.block_on(scope(|outer| {
        let (probes, stash) = (probes.clone(), stash.clone());
        async move {
            let parked = Countdown::new(N);
            let inner = scope(|s| {
                let (probes, parked) = (probes.clone(), parked.clone());
                async move {
                    for i in 0..N {
                        let h = s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
                        stash.push(h);
                    }
                    std::future::pending::<()>().await
                }
            });
            // Whichever ends first: the inner scope never does.
            let first = future::or(async { inner.await.map(|_| "inner") }, async {
                parked.wait().await;
                Ok("parked")
            })
            .await;
            assert_eq!(first, Ok("parked"));
            // A task counts down inside its first poll, so one may still
            // be in that poll when the scope future is dropped: its
            // runner drops it when the poll returns. The others were
            // dropped by the drop itself.
            while probes.total_drops() < N {
                cancel_scope::task::yield_now().await;
            }
            assert!(!outer.is_cancelled());
            outer.spawn(async { 3 }).await.unwrap()
        }
    }));
    assert_eq!(out, Ok(3));
    probes.assert_each_dropped_once();
    assert_eq!(
        cancel_reasons(stash.drain()),
        vec![CancelReason::ScopeDropped; N]
    );
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// Tasks parked on a nested scope's future (whose body parks) are, like
/// any parked task, dropped before `cancel()` returns and never polled
/// again: cancelling the scope must not wake them into one more poll.
#[test]
fn tasks_parked_on_nested_scopes_are_not_polled_by_cancel() {
    let _hang = hang_guard();
    // One worker: once a later task has run, every earlier poll returned.
    let rt = runtime(Clock::Real, 1);
    for _ in 0..10 {
        parked_on_nested_scopes_once(&rt);
    }
}

fn parked_on_nested_scopes_once(rt: &cancel_scope::runtime::Runtime) {
    const N: usize = 2000;
    let probes = Probes::new(N);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            let parked = Countdown::new(N);
            for i in 0..N {
                let parked = parked.clone();
                s.spawn(probes.wrap(
                    i,
                    scope(move |nested| async move {
                        nested.spawn(async {}).await.unwrap();
                        arrive_and_park(parked).await
                    }),
                ));
            }
            parked.wait().await;
            s.spawn(async {}).await.unwrap();
            // Every task is idle: from here on, none may be polled.
            probes.raise_fence();
            s.cancel();
            assert_eq!(
                probes.total_late_polls(),
                0,
                "cancel() let parked tasks be polled"
            );
            assert_eq!(probes.total_drops(), N, "parked futures outlived cancel()");
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// Parked futures that are slow to drop, many of them: the cancel shares
/// the dropping with idle workers. Each future is still dropped exactly
/// once, `cancel()` still returns only once all of them are, and a panic
/// in one of those drops still reaches the scope.
#[test]
fn a_large_cancel_of_slow_drops_drops_each_future_once_before_it_returns() {
    /// Spins in `Drop` for a while, as a future that flushes would.
    struct SlowDrop {
        _dropped: crate::support::OnDrop,
        panics: bool,
    }
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_micros(3) {
                std::hint::spin_loop();
            }
            if self.panics {
                panic!("boom in a slow drop");
            }
        }
    }
    const TASKS: usize = if cfg!(miri) { 20 } else { 3_000 };
    let _hang = hang_guard();
    // One worker, idle when the cancel comes (the body runs on the
    // `block_on` thread): it shares the drops, and once a later task
    // has run, every parked task's poll has returned.
    let rt = runtime(Clock::Real, 1);
    let drops = Counter::new();
    let parked = Countdown::new(TASKS);
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let message = crate::support::expect_panic(|| {
        rt.block_on(scope(|s| {
            let (drops, parked, seen) = (drops.clone(), parked.clone(), seen.clone());
            async move {
                for i in 0..TASKS {
                    let guard = SlowDrop {
                        _dropped: drops.on_drop(),
                        panics: i == TASKS / 2,
                    };
                    s.spawn(arrive_and_park_holding(parked.clone(), guard));
                }
                parked.wait().await;
                s.spawn(async {}).await.unwrap();
                s.cancel();
                seen.store(drops.get(), SeqCst);
            }
        }))
    });
    assert_eq!(message, "boom in a slow drop");
    assert_eq!(drops.get(), TASKS, "each future dropped exactly once");
    assert_eq!(
        seen.load(SeqCst),
        TASKS,
        "cancel() returned after every drop"
    );
    assert_eq!(rt.live_tasks(), 0);
}

/// Arrives at `parked`, then waits forever holding `held`.
async fn arrive_and_park_holding<T: Send>(parked: Countdown, held: T) {
    let _held = held;
    parked.arrive();
    std::future::pending::<()>().await
}
