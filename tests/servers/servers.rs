//! Servers under load: a scope's concurrency limit (`limit`, `try_spawn`,
//! `slot`, `spawn_when_free`), stop requests, and graceful shutdown (of a
//! scope, and of the runtime).
//!
//! Each test says what it proves. Races are staged with events and
//! yields, and the waits that take time run on a paused clock.

use crate::support::{
    assert_clean, expect_panic, hang_guard, on_workers, runtime, secs, timed, wait_clean,
    wait_until, Clock, Counter, Log, Probes,
};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{
    is_stop_requested, linked_scope, scope, shielded_scope, stop_requested, CancelHandle,
    CancelReason, GraceExpired, TrySpawnError,
};
use futures_lite::future::{self, poll_once};
use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

/// How many tasks run at once, and the most ever seen.
#[derive(Clone, Default)]
struct Concurrency {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Concurrency {
    /// A task that counts itself running for a few yields: from its first
    /// poll until it ends or is dropped (a cancel of a running task).
    fn task(&self, yields: usize) -> impl std::future::Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            let _running = this.running();
            for _ in 0..yields {
                yield_now().await;
            }
        }
    }

    /// Counts one more running, until the guard is dropped.
    fn running(&self) -> Running {
        let running = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(running, SeqCst);
        Running(self.now.clone())
    }

    /// A task that counts itself running until `n` run at once (the
    /// last to start says so through `full`): only a limit of `n` or more
    /// lets it end.
    fn until_full(&self, n: usize, full: &Event) -> impl std::future::Future<Output = ()> + Send {
        let (this, full) = (self.clone(), full.clone());
        async move {
            let running = this.running();
            if running.0.load(SeqCst) == n {
                full.set();
            }
            full.wait().await;
        }
    }

    fn most(&self) -> usize {
        self.most.load(SeqCst)
    }
}

/// One task counted as running by [`Concurrency`].
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// The tree view's counts of the scope with this id: (running, queued).
fn counts(rt: &cancel_scope::runtime::Runtime, id: u64) -> (usize, usize) {
    let tree = rt.scope_tree();
    let me = tree
        .scopes()
        .iter()
        .find(|s| s.id() == id)
        .expect("the scope is in the tree");
    (me.running_tasks(), me.queued_tasks())
}

// ------------------------------------------------------------ the limit

/// Never more than `n` tasks of a limited scope run at once, with spawns
/// coming from three threads and from the body, some tasks cancelled
/// through their handles (queued or running), and the whole scope
/// cancelled halfway through a second round: every future is dropped
/// exactly once, and the limit is reached (so the test would see a limit
/// that lets too few run too).
#[test]
fn never_more_than_n_run_under_spawns_from_threads_and_cancels() {
    let _hang = hang_guard();
    const N: usize = 4;
    const PER_THREAD: usize = 300;
    let rt = runtime(Clock::Real, 2);
    let load = Concurrency::default();
    let probes = Probes::new(4 * PER_THREAD);
    let out = rt.block_on(
        scope(|s| {
            let (load, probes) = (load.clone(), probes.clone());
            async move {
                // The limit is reached: N tasks that wait until N run
                // at once all run (one more waits in the queue).
                let full = Event::new();
                for _ in 0..=N {
                    s.spawn(load.until_full(N, &full));
                }
                full.wait().await;
                let barrier = Arc::new(Barrier::new(3));
                let spawners: Vec<_> = (0..3)
                    .map(|t| {
                        let (s, load, probes, barrier) =
                            (s.clone(), load.clone(), probes.clone(), barrier.clone());
                        thread::spawn(move || {
                            barrier.wait();
                            for i in 0..PER_THREAD {
                                let k = t * PER_THREAD + i;
                                let handle = s.spawn(probes.wrap(k, load.task(3)));
                                if i % 7 == 0 {
                                    handle.cancel(); // queued or running
                                }
                            }
                        })
                    })
                    .collect();
                for i in 0..PER_THREAD {
                    s.spawn(probes.wrap(3 * PER_THREAD + i, load.task(3)));
                    if i % 50 == 0 {
                        yield_now().await;
                    }
                }
                for spawner in spawners {
                    spawner.join().unwrap();
                }
            }
        })
        .limit(N),
    );
    assert!(out.is_ok());
    assert_eq!(load.most(), N, "the limit is reached and never passed");
    probes.assert_each_dropped_once();
    assert_eq!(load.now.load(SeqCst), 0);

    // Round two: the scope is cancelled while tasks run, finish and
    // hand their slots on, and others wait in the queue.
    let load = Concurrency::default();
    let probes = Probes::new(600);
    let out = rt.block_on(
        scope(|s| {
            let (load, probes) = (load.clone(), probes.clone());
            async move {
                for i in 0..600 {
                    let work = load.task(2);
                    // The later ones park, holding their slots: the
                    // cancel surely finds tasks running and queued.
                    s.spawn(probes.wrap(i, async move {
                        work.await;
                        if i >= 300 {
                            pending::<()>().await
                        }
                    }));
                }
                while probes.total_completions() < 100 {
                    yield_now().await;
                }
                s.cancel();
            }
        })
        .limit(N),
    );
    assert!(out.is_err(), "queued tasks were cut short");
    assert!(load.most() <= N);
    wait_clean(&rt);
    probes.assert_each_dropped_once();
    let unpolled = (0..600).filter(|&i| probes[i].polls() == 0).count();
    assert!(unpolled > 0, "the cancel found tasks still queued");
}

/// A cancel of a limited scope drops its queued tasks in the same walk
/// as its idle running ones, before `cancel()` returns: never polled,
/// each dropped exactly once; the tree view counted them as queued.
#[test]
fn a_cancel_drops_queued_tasks_unpolled_exactly_once() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(12);
    let rt_ref = &rt;
    let out = rt.block_on(
        scope(|s| {
            let probes = probes.clone();
            async move {
                let started = crate::support::Countdown::new(2);
                for i in 0..12 {
                    let started = started.clone();
                    s.spawn(probes.wrap(i, async move {
                        started.arrive();
                        pending::<()>().await
                    }));
                }
                started.wait().await;
                assert_eq!(counts(rt_ref, s.id()), (2, 10));
                s.cancel();
                // Before `cancel()` returned: every queued future is gone.
                for i in 2..12 {
                    assert_eq!((probes[i].polls(), probes[i].drops()), (0, 1), "task {i}");
                }
            }
        })
        .limit(2),
    );
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    assert_eq!((probes[0].polls(), probes[1].polls()), (1, 1));
    assert_clean(&rt);
}

/// Cancelling one queued task through its handle takes it out of the
/// queue unpolled: its handle says `Explicit`, the tree view counts one
/// less queued, and the slot that frees later goes to the task behind it.
#[test]
fn cancelling_a_queued_task_by_its_handle_unqueues_it_unpolled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let probes = Probes::new(3);
    let rt_ref = &rt;
    let out = rt.block_on(
        scope(|s| {
            let probes = probes.clone();
            async move {
                let (go, ran) = (Event::new(), Event::new());
                let first = {
                    let (go, ran) = (go.clone(), ran.clone());
                    s.spawn(probes.wrap(0, async move {
                        ran.set();
                        go.wait().await
                    }))
                };
                let second = s.spawn(probes.wrap(1, async { "never" }));
                let third = s.spawn(probes.wrap(2, async { "third" }));
                ran.wait().await;
                assert_eq!(counts(rt_ref, s.id()), (1, 2));
                second.cancel();
                assert_eq!((probes[1].polls(), probes[1].drops()), (0, 1));
                assert_eq!(counts(rt_ref, s.id()), (1, 1));
                assert_eq!(second.await.unwrap_err().reason(), &CancelReason::Explicit);
                go.set();
                first.await.unwrap();
                third.await.unwrap()
            }
        })
        .limit(1),
    );
    assert_eq!(out, Ok("third"));
    probes.assert_each_dropped_once();
    assert_eq!(probes[1].polls(), 0);
    assert_clean(&rt);
}

/// `try_spawn` hands the future back as it was, never polled, and says
/// why: `Full` while every slot is held (and the future is still usable:
/// awaiting it gives its value, dropping it runs its drop once), `Closed`
/// once the scope is cancelled or has ended, with the reason.
#[test]
fn try_spawn_returns_the_future_intact() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let rt_ref = &rt;
    let drops = Counter::new();
    let kept = crate::support::Slot::new();
    let out = rt.block_on(
        scope(|s| {
            let (drops, kept) = (drops.clone(), kept.clone());
            async move {
                let gate = Event::new();
                let holder = s.spawn({
                    let gate = gate.clone();
                    async move { gate.wait().await }
                });
                let probes = Probes::new(1);
                let guard = drops.on_drop();
                let fut = probes.wrap(0, async move {
                    let _guard = guard;
                    41 + 1
                });
                let back = match s.try_spawn(fut) {
                    Err(TrySpawnError::Full(back)) => back,
                    other => panic!("expected Full, got {other:?}"),
                };
                assert_eq!((probes[0].polls(), drops.get()), (0, 0), "untouched");
                assert_eq!(back.await, 42, "the future still works");
                assert_eq!(drops.get(), 1);
                gate.set();
                holder.await.unwrap();
                // Its slot frees when the task is released, just
                // after its handle has the output (documented).
                wait_until("the holder's release", || counts(rt_ref, s.id()).0 == 0);
                // A slot is free again: it spawns.
                assert_eq!(s.try_spawn(async { 7 }).unwrap().await, Ok(7));
                kept.put(s.clone());
                s.cancel();
                let err = s.try_spawn(async { 1 }).unwrap_err();
                match &err {
                    TrySpawnError::Closed(_, cancelled) => {
                        assert_eq!(cancelled.reason(), &CancelReason::Explicit)
                    }
                    TrySpawnError::Full(_) => panic!("a cancelled scope is closed"),
                }
                assert_eq!(err.into_future().await, 1);
            }
        })
        .limit(1),
    );
    assert!(
        out.is_ok(),
        "the body ran to its end, nothing was cut short"
    );
    // The scope has ended: a kept handle is refused, with the future.
    let ended = kept.take().try_spawn(async { 2 }).unwrap_err();
    assert!(ended.is_closed());
    assert_eq!(future::block_on(ended.into_future()), 2);
    assert_clean(&rt);
}

/// `spawn_when_free` and `slot` are cancel safe: a waiter dropped while it
/// waits spawned nothing and its future is dropped once, unpolled; a
/// waiter dropped after a slot was granted to it, before it looked,
/// passes the slot to the next in line, so no slot leaks.
#[test]
fn spawn_when_free_is_cancel_safe() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let probes = Probes::new(2);
    let out = rt.block_on(
        scope(|s| {
            let probes = probes.clone();
            async move {
                let gate = Event::new();
                let holder = s.spawn({
                    let gate = gate.clone();
                    async move { gate.wait().await }
                });
                // 1. Dropped while waiting.
                let mut waiting = Box::pin(s.spawn_when_free(probes.wrap(0, async {})));
                assert!(poll_once(waiting.as_mut()).await.is_none());
                drop(waiting);
                assert_eq!((probes[0].polls(), probes[0].drops()), (0, 1));
                // 2. Granted, then dropped before it looked.
                let mut first = Box::pin(s.slot());
                let mut second = Box::pin(s.slot());
                assert!(poll_once(first.as_mut()).await.is_none());
                assert!(poll_once(second.as_mut()).await.is_none());
                gate.set();
                holder.await.unwrap(); // its slot went to `first`
                drop(first);
                let slot = second.await.expect("the slot passed on");
                let task = slot.spawn(probes.wrap(1, async { "ran" }));
                task.await.unwrap()
            }
        })
        .limit(1),
    );
    assert_eq!(out, Ok("ran"));
    probes.assert_each_dropped_once();
    assert_eq!(probes[0].polls(), 0);
    assert_clean(&rt);
}

/// A freed slot goes to the queued tasks first, in spawn order, and only
/// then to the `slot()` waiters, in the order they began waiting.
#[test]
fn queued_tasks_are_served_before_slot_waiters_each_in_order() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let log = Log::new();
    let out = rt.block_on(
        scope(|s| {
            let log = log.clone();
            async move {
                let gate = Event::new();
                let holder = s.spawn({
                    let gate = gate.clone();
                    async move { gate.wait().await }
                });
                let mut waiter_a = Box::pin(s.slot());
                let mut waiter_b = Box::pin(s.slot());
                assert!(poll_once(waiter_a.as_mut()).await.is_none());
                assert!(poll_once(waiter_b.as_mut()).await.is_none());
                for name in ["queued 1", "queued 2"] {
                    let log = log.clone();
                    s.spawn(async move { log.push(name) });
                }
                gate.set();
                holder.await.unwrap();
                let a = waiter_a.await.unwrap();
                log.push("waiter a");
                let b = {
                    let mut b = waiter_b.as_mut();
                    assert!(poll_once(b.as_mut()).await.is_none(), "a holds the slot");
                    drop(a);
                    b.await.unwrap()
                };
                log.push("waiter b");
                drop(b);
            }
        })
        .limit(1),
    );
    assert!(out.is_ok());
    assert_eq!(
        log.entries(),
        ["queued 1", "queued 2", "waiter a", "waiter b"]
    );
    assert_clean(&rt);
}

/// The documented deadlock, and nothing worse: a running task awaiting
/// the handle of a task queued behind it in the same scope holds the only
/// slot forever. The tree view shows it (1 running, 1 queued) however
/// long it waits; the queued task is never polled; a cancel of the scope
/// ends it as any cancel does, dropping each future once.
#[test]
fn a_task_awaiting_a_queued_task_of_its_own_scope_deadlocks_as_documented() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let probes = Probes::new(2);
    let rt_ref = &rt;
    let out = rt.block_on(
        scope(|s| {
            let probes = probes.clone();
            async move {
                let inner = s.clone();
                let waiting = probes.clone();
                s.spawn(probes.wrap(0, async move {
                    let queued = inner.spawn(waiting.wrap(1, async { "never runs" }));
                    queued.await
                }));
                sleep(secs(3600)).await; // an hour later: still stuck
                assert_eq!(counts(rt_ref, s.id()), (1, 1));
                assert_eq!(probes[1].polls(), 0);
                s.cancel();
            }
        })
        .limit(1),
    );
    assert!(out.is_err());
    probes.assert_each_dropped_once();
    assert_eq!(probes[1].polls(), 0);
    assert_clean(&rt);
}

/// `limit(0)` is refused where it is set, not at the scope's first poll.
#[test]
fn limit_zero_is_refused_where_it_is_set() {
    let _hang = hang_guard();
    let message = expect_panic(|| scope(|_| async {}).limit(0));
    assert!(message.contains("limit(0)"), "{message}");
    let message = expect_panic(|| shielded_scope(|_| async {}).limit(0));
    assert!(message.contains("limit(0)"), "{message}");
}

/// A limit past `u32::MAX` is kept as `u32::MAX`: never 0 by truncation
/// (which would refuse it, or a limit of 1 run its tasks one at a time).
#[test]
fn a_huge_limit_is_as_good_as_none() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let rt_ref = &rt;
    let huge = (u32::MAX as usize + 1) * 2; // 0 in its low 32 bits
    let out = rt.block_on(
        scope(|s| async move {
            let gate = Event::new();
            let parked: Vec<_> = (0..3)
                .map(|_| {
                    let gate = gate.clone();
                    s.spawn(async move { gate.wait().await })
                })
                .collect();
            let seen = counts(rt_ref, s.id());
            let tree = rt_ref.scope_tree();
            let me = tree.scopes().iter().find(|n| n.id() == s.id());
            let limit = me.expect("listed").limit();
            gate.set();
            for task in parked {
                task.await.expect("ran");
            }
            (seen, limit)
        })
        .limit(huge),
    );
    assert_eq!(out, Ok(((3, 0), Some(u32::MAX as usize))));
    assert_clean(&rt);
}

/// `spawn_blocking` closures count toward the limit: a second closure
/// waits in the scope's queue, never handed to the pool, until the first
/// returns.
#[test]
fn blocking_closures_count_toward_the_limit() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let rt_ref = &rt;
    let out = rt.block_on(
        scope(|s| async move {
            let (release, parked) = mpsc::channel::<()>();
            let entered = Arc::new(AtomicUsize::new(0));
            let first = {
                let entered = entered.clone();
                s.spawn_blocking(move || {
                    entered.fetch_add(1, SeqCst);
                    parked.recv().unwrap();
                    1
                })
            };
            let second = {
                let entered = entered.clone();
                s.spawn_blocking(move || entered.fetch_add(1, SeqCst) + 1)
            };
            while entered.load(SeqCst) == 0 {
                yield_now().await;
            }
            assert_eq!(counts(rt_ref, s.id()), (1, 1));
            assert_eq!(entered.load(SeqCst), 1, "the second waits in the scope");
            release.send(()).unwrap();
            (first.await.unwrap(), second.await.unwrap())
        })
        .limit(1),
    );
    assert_eq!(out, Ok((1, 2)));
    assert_clean(&rt);
}

// ------------------------------------------------------- stop requests

/// A stop request reaches every task below the scope it was made of:
/// parked listeners in it and in a nested scope wake, a scope and a task
/// opened after it are born with it; it does not reach a shielded
/// subtree, nor climb to the parent through a link; and it cancels
/// nothing: each task returns its result.
#[test]
fn a_stop_request_reaches_every_task_below_but_not_a_shielded_subtree() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = on_workers(&rt, async move {
        scope(|parent| async move {
            let below = linked_scope(|s| async move {
                let parked = crate::support::Countdown::new(2);
                let listener = |name: &'static str, parked: crate::support::Countdown| async move {
                    parked.arrive();
                    stop_requested().await;
                    name
                };
                let direct = s.spawn(listener("task", parked.clone()));
                let nested = s.spawn({
                    let parked = parked.clone();
                    async move {
                        scope(|n| async move { n.spawn(listener("nested task", parked)).await })
                            .await
                    }
                });
                let gate = Event::new();
                let shielded = s.spawn(shielded_scope({
                    let gate = gate.clone();
                    move |sh| async move {
                        let task = sh.spawn(async move {
                            gate.wait().await;
                            let heard = poll_once(stop_requested()).await.is_some();
                            (is_stop_requested(), heard)
                        });
                        task.await.unwrap()
                    }
                }));
                parked.wait().await;
                s.request_stop();
                let late_scope = scope(|_| async { is_stop_requested() }).await.unwrap();
                let late_task = s.spawn(async { is_stop_requested() }).await.unwrap();
                let names = [
                    direct.await.unwrap(),
                    nested.await.unwrap().unwrap().unwrap(),
                ];
                gate.set();
                let shield_saw = shielded.await.unwrap().unwrap();
                (names, late_scope, late_task, shield_saw)
            })
            .await
            .unwrap();
            (below, parent.is_stop_requested())
        })
        .await
    });
    let ((names, late_scope, late_task, shield_saw), parent_heard) = out.unwrap();
    assert_eq!(names, ["task", "nested task"], "each returned its result");
    assert!(late_scope && late_task, "born with the request");
    assert_eq!(shield_saw, (false, false), "the shield kept it out");
    assert!(!parent_heard, "a request does not climb links");
    assert_clean(&rt);
}

// --------------------------------------------------- graceful shutdown

/// `shutdown(grace)` called from the scope's own body does not block it,
/// and the scope ends as soon as everything in it has ended (here at 3s
/// of a 60s grace), with its value: nothing was cancelled, and the grace
/// timer is gone with the scope.
#[test]
fn shutdown_ends_early_when_everything_finishes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let (out, took) = rt.block_on(async {
        timed(scope(|s| async move {
            for n in 1..=3 {
                s.spawn(async move {
                    stop_requested().await;
                    sleep(secs(n)).await; // flushing, say
                });
            }
            s.shutdown(secs(60));
            "the body went on"
        }))
        .await
    });
    assert_eq!(out, Ok("the body went on"));
    assert_eq!(took, secs(3));
    assert_clean(&rt);
}

/// `shutdown(grace)` cancels what is left once the grace has passed, with
/// `GraceExpired`, and names the scopes still running then (by name and
/// location, parents first): the deaf one, and a shield, which the
/// request did not reach and the cancel does not stop, so it uses the
/// whole grace and more. The polite scope had ended and is not named.
/// The cut-short task's handle carries the same record.
#[test]
fn shutdown_cancels_at_the_grace_and_names_the_stragglers() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let grace = secs(5);
    let flushed = Counter::new();
    let (out, took) = on_workers(&rt, {
        let flushed = flushed.clone();
        async move {
            timed(
                scope(|s| async move {
                    s.spawn(scope(|_| stop_requested()).named("polite"));
                    let deaf = s.spawn(scope(|_| sleep(secs(3600))).named("deaf"));
                    s.spawn(
                        shielded_scope(move |_| async move {
                            sleep(secs(8)).await;
                            flushed.inc();
                        })
                        .named("flush"),
                    );
                    s.shutdown(grace);
                    deaf.await
                })
                .named("server"),
            )
            .await
        }
    });
    assert_eq!(took, secs(8), "the shield used the whole grace, and more");
    assert_eq!(flushed.get(), 1);
    let err = out.unwrap_err();
    assert_eq!(err.reason(), &CancelReason::GraceExpired);
    let cause = err.cause().expect("the hard cancel's cause");
    let expired = cause
        .downcast_ref::<GraceExpired>()
        .expect("a GraceExpired");
    assert_eq!(expired.grace(), grace);
    let running = err.still_running().expect("the hard cancel's record");
    // Parents first; the two children in the order they joined the
    // tree (their first polls, on either worker).
    let scopes = running.scopes();
    let named = |name| scopes.iter().find(|s| s.name() == Some(name));
    assert_eq!(scopes.len(), 3, "{running}");
    assert_eq!((scopes[0].name(), scopes[0].depth()), (Some("server"), 0));
    let (deaf, flush) = (named("deaf").expect("deaf"), named("flush").expect("flush"));
    assert_eq!((deaf.depth(), flush.depth()), (1, 1));
    assert!(scopes[0].is_stop_requested());
    assert!(deaf.is_stop_requested());
    assert!(!flush.is_stop_requested(), "the shield");
    assert_eq!(deaf.location().file(), file!());
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "cancelled: the shutdown's grace period ran out: 5s passed; still running: \"server\""
        ),
        "{shown}"
    );
    assert_clean(&rt);
}

/// A second `shutdown` keeps the earlier end of the grace, whichever
/// order they come in; a cancel before the end removes the timer.
#[test]
fn shutdown_keeps_the_earlier_end_of_the_grace() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    for (first, second) in [(secs(10), secs(60)), (secs(60), secs(10))] {
        let (out, took) = on_workers(&rt, async move {
            timed(scope(|s| async move {
                s.spawn(pending::<()>());
                s.shutdown(first);
                s.shutdown(second);
            }))
            .await
        });
        let grace = secs(10);
        assert_eq!(out.unwrap_err().reason(), &CancelReason::GraceExpired);
        assert_eq!(took, grace);
    }
    let out = on_workers(&rt, async {
        scope(|s| async move {
            s.spawn(pending::<()>());
            s.shutdown(secs(10));
            s.cancel();
        })
        .await
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_clean(&rt); // no grace timer left behind
}

/// A `CancelHandle` made before its scope records a shutdown: the scope
/// opens with the request (its tasks see it at once), and the grace
/// counts from the opening.
#[test]
fn an_early_handles_shutdown_applies_when_the_scope_opens() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let handle = CancelHandle::new();
    handle.shutdown(secs(2));
    assert!(handle.is_stop_requested() && !handle.is_cancelled());
    let out = on_workers(&rt, {
        let handle = handle.clone();
        async move {
            sleep(secs(100)).await; // the grace has not started yet
            timed(
                scope(|s| async move {
                    let seen = s.spawn(async { is_stop_requested() }).await.unwrap();
                    pending::<()>().await;
                    seen
                })
                .with_cancel_handle(&handle),
            )
            .await
        }
    });
    let (out, took) = out;
    assert_eq!(took, secs(2));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::GraceExpired);
    assert_clean(&rt);
}

/// The runtime's graceful shutdown: a stop request to every root (a
/// shield that runs on detached is a root, and hears it), the grace, then
/// the bounded shutdown, which cancels what is left; the report names the
/// roots the grace left running. A root published after the request is
/// born with it.
#[test]
fn the_runtimes_graceful_shutdown_asks_every_root_then_cancels_the_rest() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let detach = |shield| rt.block_on(future::or(async { drop(shield.await) }, async {}));
    let polite_ended = Counter::new();
    detach(
        shielded_scope({
            let ended = polite_ended.clone();
            move |_| async move {
                stop_requested().await;
                ended.inc();
            }
        })
        .named("polite"),
    );
    detach(shielded_scope(|_| pending::<()>()).named("deaf"));
    rt.request_stop();
    let late = rt.block_on(scope(|_| async {
        yield_now().await; // published: born with the request
        is_stop_requested()
    }));
    assert_eq!(late, Ok(true));
    let report = rt.shutdown_graceful(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(10),
    );
    let names: Vec<_> = report
        .still_running()
        .scopes()
        .iter()
        .map(|s| s.name())
        .collect();
    assert_eq!(names, [Some("deaf")]);
    assert!(report.is_complete());
    assert_eq!(polite_ended.get(), 1);
    assert!(report.to_string().contains("\"deaf\""));
}
