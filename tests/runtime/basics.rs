//! The runtime itself: `Builder` options, `block_on` (and its refusal on a
//! worker thread), live counts, dropping a runtime that still holds parked
//! tasks, and the small tools the other tests lean on (`sleep`, `Event`,
//! `yield_now`).

use crate::support::{
    arrive_and_park, cancel_reasons, expect_panic, hang_guard, runtime, Clock, Countdown, Log,
    Probes,
};
use cancel_scope::runtime::{self, Builder, Runtime};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::{sleep, sleep_until};
use cancel_scope::{scope, CancelReason, JoinHandle};
use futures_lite::future;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Names of the threads that run `n` tasks which all wait for each other:
/// `n` distinct worker threads.
fn names_of_n_concurrent_tasks(rt: &Runtime, n: usize) -> BTreeSet<String> {
    let barrier = Arc::new(Barrier::new(n));
    let out = rt.block_on(scope(|s| async move {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let barrier = barrier.clone();
                s.spawn(async move {
                    barrier.wait();
                    thread::current().name().unwrap_or("").to_string()
                })
            })
            .collect();
        let mut names = BTreeSet::new();
        for h in handles {
            names.insert(h.await.unwrap());
        }
        names
    }));
    out.unwrap()
}

/// `worker_threads(n)` starts exactly `n` workers, named `<name>-<i>`.
#[test]
fn builder_sets_worker_count_and_names() {
    let _hang = hang_guard();
    let rt = Builder::new()
        .worker_threads(3)
        .thread_name("pool")
        .build()
        .unwrap();
    let names = names_of_n_concurrent_tasks(&rt, 3);
    let expected: BTreeSet<String> = (0..3).map(|i| format!("pool-{i}")).collect();
    assert_eq!(names, expected);
    assert!(format!("{rt:?}").contains("Runtime"));
}

/// Without a name, workers are `cancel-scope-worker-<i>`; `Builder` is
/// `Default` and `Clone`.
#[test]
fn builder_defaults() {
    let _hang = hang_guard();
    let mut builder = Builder::default();
    builder.worker_threads(2);
    let rt = builder.clone().build().unwrap();
    let names = names_of_n_concurrent_tasks(&rt, 2);
    let expected: BTreeSet<String> = (0..2).map(|i| format!("cancel-scope-worker-{i}")).collect();
    assert_eq!(names, expected);
}

/// `Runtime::new` starts one worker per available core.
#[test]
fn runtime_new_starts_a_worker_per_core() {
    let _hang = hang_guard();
    let n = thread::available_parallelism().map_or(1, |n| n.get());
    let rt = Runtime::new();
    assert_eq!(names_of_n_concurrent_tasks(&rt, n).len(), n);
}

/// Zero workers is refused.
#[test]
fn zero_worker_threads_panics() {
    let msg = expect_panic(|| {
        Builder::new().worker_threads(0);
    });
    assert!(msg.contains("at least 1"), "{msg}");
}

/// `block_on` on a worker thread panics with a message that says why; the
/// panic reaches the caller through the scope, and the runtime lives on.
#[test]
fn block_on_inside_a_worker_panics() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let msg = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            s.spawn(async { runtime::block_on(async { 1 }) }).await
        }))
    });
    assert!(msg.contains("block_on") && msg.contains("worker"), "{msg}");
    // Another runtime's `block_on` is refused on a worker too.
    let other = Arc::new(runtime(Clock::Real, 1));
    let msg = expect_panic(|| {
        let other = other.clone();
        rt.block_on(scope(|s| async move {
            s.spawn(async move { other.block_on(async { 2 }) }).await
        }))
    });
    assert!(msg.contains("block_on"), "{msg}");
    assert_eq!(rt.block_on(async { 3 }), 3);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// `live_tasks` and `live_scopes` count what is running, and fall back to
/// zero when it ends.
#[test]
fn live_counts() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    assert_eq!((rt.live_tasks(), rt.live_scopes()), (0, 0));
    let seen = Mutex::new(None);
    let out = rt.block_on(scope(|s| {
        let (rt, seen) = (&rt, &seen);
        async move {
            let parked = Countdown::new(5 + 2);
            for _ in 0..5 {
                s.spawn(arrive_and_park(parked.clone()));
            }
            for _ in 0..2 {
                let parked = parked.clone();
                s.spawn(scope(move |n| async move {
                    n.spawn(arrive_and_park(parked));
                    std::future::pending::<()>().await
                }));
            }
            parked.wait().await;
            *seen.lock().unwrap() = Some((rt.live_tasks(), rt.live_scopes()));
            s.cancel();
        }
    }));
    assert!(out.is_err());
    // Five tasks, two tasks holding a scope each, one task in each of
    // those; the outer scope and the two nested ones.
    assert_eq!(seen.lock().unwrap().take(), Some((5 + 2 + 2, 3)));
    assert_eq!((rt.live_tasks(), rt.live_scopes()), (0, 0));
}

/// Dropping a runtime drops every future it still holds: parked tasks,
/// sleeping tasks and the tasks of nested scopes, whose handles report the
/// shutdown.
#[test]
fn dropping_the_runtime_drops_parked_futures() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const PARKED: usize = 4;
    // Slots: PARKED parked tasks, one sleeping, one in a nested scope,
    // and the body.
    let probes = Probes::new(PARKED + 3);
    let handles: Log<JoinHandle<()>> = Log::new();
    let ready = Countdown::new(PARKED + 2);
    let mut running = Box::pin(scope(|s| {
        let (probes, handles, ready) = (probes.clone(), handles.clone(), ready.clone());
        async move {
            for i in 0..PARKED {
                let h = s.spawn(probes.wrap(i, arrive_and_park(ready.clone())));
                handles.push(h);
            }
            let r = ready.clone();
            let h = s.spawn(probes.wrap(PARKED, async move {
                let nap = sleep(Duration::from_secs(3600));
                r.arrive();
                nap.await
            }));
            handles.push(h);
            let (probes2, r) = (probes.clone(), ready.clone());
            s.spawn(scope(move |n| async move {
                n.spawn(probes2.wrap(PARKED + 1, arrive_and_park(r)));
                std::future::pending::<()>().await
            }));
            probes.wrap(PARKED + 2, std::future::pending::<()>()).await
        }
    }));
    // Run the scope until everything is parked, then stop driving it.
    rt.block_on(future::or(
        async {
            let _ = running.as_mut().await;
            unreachable!("the scope never ends on its own");
        },
        ready.wait(),
    ));
    assert_eq!(rt.live_scopes(), 2);
    drop(rt);
    for i in 0..PARKED + 2 {
        assert_eq!(probes[i].drops(), 1, "task future {i} survived the runtime");
    }
    assert_eq!(
        cancel_reasons(handles.drain()),
        vec![CancelReason::Shutdown; PARKED + 1]
    );
    // The body belongs to the scope future, still held here.
    assert_eq!(probes[PARKED + 2].drops(), 0);
    drop(running);
    probes.assert_each_dropped_once();
    assert_eq!(probes.total_completions(), 0);
}

/// The default runtime serves `block_on` from several threads at once.
#[test]
fn default_runtime_is_shared_across_threads() {
    let _hang = hang_guard();
    let threads: Vec<_> = (0..4u32)
        .map(|i| {
            thread::spawn(move || {
                runtime::block_on(scope(|s| async move {
                    let h = s.spawn(async move {
                        yield_now().await;
                        i * 10
                    });
                    h.await.unwrap() + 1
                }))
            })
        })
        .collect();
    let outs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(outs, (0..4).map(|i| Ok(i * 10 + 1)).collect::<Vec<_>>());
}

/// A scope belongs to the runtime whose `block_on` first polls it; its
/// tasks run on that runtime's workers.
#[test]
fn scopes_and_tasks_belong_to_their_runtime() {
    let _hang = hang_guard();
    let a = Builder::new()
        .worker_threads(1)
        .thread_name("rt-a")
        .build()
        .unwrap();
    let b = Builder::new()
        .worker_threads(1)
        .thread_name("rt-b")
        .build()
        .unwrap();
    let out = a.block_on(scope(|s| {
        let b = &b;
        async move {
            let name = s
                .spawn(async { thread::current().name().unwrap().to_string() })
                .await
                .unwrap();
            (name, b.live_scopes())
        }
    }));
    assert_eq!(out, Ok(("rt-a-0".to_string(), 0)));
}

/// `sleep` waits at least its duration; `sleep_until` a past instant is
/// ready at once.
#[test]
fn sleep_and_sleep_until() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let start = Instant::now();
    rt.block_on(sleep(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
    let out = rt.block_on(scope(|s| async move {
        let start = Instant::now();
        s.spawn(sleep(Duration::from_millis(20))).await.unwrap();
        start.elapsed()
    }));
    assert!(out.unwrap() >= Duration::from_millis(20));
    let past = Instant::now() - Duration::from_millis(1);
    let mut ready = sleep_until(past);
    assert_eq!(ready.deadline(), past);
    assert_eq!(rt.block_on(future::poll_once(&mut ready)), Some(()));
}

/// `Event`: set wakes every waiter, `wait` on a set event is ready at once,
/// `clear` makes later waits wait again.
#[test]
fn event_set_clear_wait() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let ev = Event::new();
    assert!(!ev.is_set());
    let out = rt.block_on(scope(|s| {
        let ev = ev.clone();
        async move {
            let waiting = Countdown::new(10);
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let (ev, waiting) = (ev.clone(), waiting.clone());
                    s.spawn(async move {
                        let mut wait = ev.wait();
                        // Registered before the event is set.
                        assert!(future::poll_once(&mut wait).await.is_none());
                        waiting.arrive();
                        wait.await;
                        i
                    })
                })
                .collect();
            waiting.wait().await;
            ev.set();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        }
    }));
    assert_eq!(out, Ok(45));
    assert!(ev.is_set());
    assert_eq!(rt.block_on(future::poll_once(ev.wait())), Some(()));
    ev.clear();
    assert!(!ev.is_set());
    assert_eq!(rt.block_on(future::poll_once(ev.wait())), None);
    assert!(format!("{ev:?}").contains("Event"));
}

/// On one worker, a task that spins with `yield_now` lets another task
/// run; without it the second task could never be polled.
#[test]
fn yield_now_lets_other_tasks_run() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let flag = Arc::new(AtomicBool::new(false));
    let out = rt.block_on(scope(|s| async move {
        let seen = flag.clone();
        let spinner = s.spawn(async move {
            let mut turns = 0u32;
            while !seen.load(SeqCst) {
                yield_now().await;
                turns += 1;
            }
            turns
        });
        s.spawn(async move { flag.store(true, SeqCst) });
        spinner.await.unwrap()
    }));
    assert!(out.unwrap() >= 1);
}
