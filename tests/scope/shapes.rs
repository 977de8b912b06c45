//! Shapes of scope trees: a scope waits for its body, its tasks and its
//! nested scopes; where a scope is opened decides its parent; wide trees,
//! ten thousand tasks in one scope, and a chain of a hundred thousand
//! nested scopes cancelled from its root.

use crate::support::{
    arrive_and_park, assert_clean, cancel_reasons, drive_until_waiting, hang_guard, runtime,
    BoxFuture, Clock, Countdown, Counter, Log, Probes,
};
use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::{scope, CancelReason, JoinHandle};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;

/// The body ends at once; a task, and a scope nested in another task, are
/// still running. The scope future stays pending until they have ended.
#[test]
fn scope_waits_for_tasks_and_nested_scopes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let body_ended = AtomicBool::new(false);
    let go = Event::new();
    let done = Counter::new();
    let fut = scope(|s| {
        let (go, done) = (go.clone(), done.clone());
        let body_ended = &body_ended;
        async move {
            let (go1, done1) = (go.clone(), done.clone());
            s.spawn(async move {
                go1.wait().await;
                done1.inc();
            });
            s.spawn(scope(move |inner| async move {
                inner.spawn(async move {
                    go.wait().await;
                    yield_now().await;
                    done.inc();
                });
            }));
            body_ended.store(true, SeqCst);
            "body"
        }
    });
    let out = drive_until_waiting(&rt, fut, &body_ended, &go);
    assert_eq!(out, Ok("body"));
    assert!(go.is_set(), "the scope never waited for its children");
    assert_eq!(done.get(), 2, "the scope ended before its children");
    assert_clean(&rt);
}

/// A scope opened in a body, or in a task, is a child of that scope:
/// cancelling the outer scope reaches both (reason `Ancestor`).
#[test]
fn scopes_opened_in_body_and_task_are_children() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let stash: Log<JoinHandle<()>> = Log::new();
    let out = rt.block_on(scope(|p| {
        let stash = stash.clone();
        async move {
            let parked = Countdown::new(2);
            let (stash2, parked2) = (stash.clone(), parked.clone());
            p.spawn(scope(move |in_task| async move {
                let h = in_task.spawn(arrive_and_park(parked2));
                stash2.push(h);
                std::future::pending::<()>().await
            }));
            let canceller = p.clone();
            let in_body = scope(move |in_body| async move {
                let h = in_body.spawn(arrive_and_park(parked.clone()));
                stash.push(h);
                parked.wait().await;
                canceller.cancel();
                std::future::pending::<()>().await
            });
            let _ = in_body.await;
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(
        cancel_reasons(stash.drain()),
        vec![CancelReason::Ancestor; 2]
    );
    assert_clean(&rt);
}

/// A scope's parent is decided where it is first polled: a scope future
/// made in a body but run by `block_on` on a plain thread is a root, and
/// cancelling the scope it was made in does not reach it.
#[test]
fn scope_first_polled_outside_any_scope_is_a_root() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, 2));
    let release = Event::new();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (fut_tx, fut_rx) = mpsc::channel();
    let elsewhere = {
        let rt = rt.clone();
        thread::spawn(move || {
            let fut = fut_rx.recv().unwrap();
            rt.block_on(fut)
        })
    };
    let out = rt.block_on(scope(|p| {
        let release = release.clone();
        async move {
            let made_here = scope(move |s| async move {
                started_tx.send(()).unwrap();
                let t = s.spawn(async move {
                    release.wait().await;
                    "root ran on"
                });
                t.await.unwrap()
            });
            fut_tx.send(made_here).unwrap();
            started_rx.recv().unwrap();
            p.cancel();
        }
    }));
    // The cancel reached nothing of `p` (the scope made in its body
    // runs elsewhere, as a root): `p`'s value stands.
    assert_eq!(out, Ok(()));
    release.set();
    assert_eq!(elsewhere.join().unwrap(), Ok("root ran on"));
    assert_clean(&rt);
}

/// Ten thousand tasks in one scope all run to completion.
#[test]
fn ten_thousand_tasks_complete() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 10_000;
    let ran = Counter::new();
    let out = rt.block_on(scope(|s| {
        let ran = ran.clone();
        async move {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let ran = ran.clone();
                    s.spawn(async move {
                        if i % 2 == 0 {
                            yield_now().await;
                        }
                        ran.inc();
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        }
    }));
    assert_eq!(out, Ok((0..N).sum()));
    assert_eq!(ran.get(), N);
    assert_clean(&rt);
}

/// Ten thousand parked tasks in one scope are all dropped by one cancel.
#[test]
fn ten_thousand_tasks_cancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const N: usize = 10_000;
    let probes = Probes::new(N);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        let rt = &rt;
        async move {
            let parked = Countdown::new(N);
            for i in 0..N {
                s.spawn(probes.wrap(i, arrive_and_park(parked.clone())));
            }
            parked.wait().await;
            assert_eq!(rt.live_tasks(), N);
            s.cancel();
            probes.raise_fence();
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_eq!(probes.total_completions(), 0);
    assert_clean(&rt);
}

/// One level of the chain: a scope whose body spawns a task that opens the
/// next level. The innermost one sets `bottom` and parks. Every body holds
/// a drop counter.
fn level(left: usize, bottom: Event, drops: Counter) -> BoxFuture {
    Box::pin(async move {
        let _ = scope(move |s| async move {
            let _guard = drops.on_drop();
            if left == 0 {
                bottom.set();
            } else {
                s.spawn(level(left - 1, bottom, drops));
            }
            std::future::pending::<()>().await
        })
        .await;
    })
}

const DEPTH: usize = 100_000;

/// Builds the chain on `rt`, waits for its innermost scope, optionally
/// lets `settle` run, then cancels the root and checks the aftermath.
fn deep_chain(rt: &Runtime, settle: bool) {
    let drops = Counter::new();
    let bottom = Event::new();
    let out = rt.block_on(scope(|root| {
        let drops = drops.clone();
        async move {
            root.spawn(level(DEPTH - 1, bottom.clone(), drops));
            bottom.wait().await;
            if settle {
                // One worker: once a fresh task has run, the innermost
                // task's poll has returned and every task is parked.
                root.spawn(async {}).await.unwrap();
                while rt.live_tasks() != DEPTH {
                    yield_now().await;
                }
            } else {
                // The innermost scope joins the tree when its body's first
                // poll returns `Pending`, which may be just after `bottom`
                // was set.
                while rt.live_scopes() != DEPTH + 1 {
                    yield_now().await;
                }
            }
            assert_eq!(rt.live_scopes(), DEPTH + 1);
            assert_eq!(rt.live_tasks(), DEPTH);
            root.cancel();
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(drops.get(), DEPTH);
    assert_clean(rt);
}

/// A chain of 100,000 nested scopes, each opened by a task of the one
/// above (so no poll is deeper than one level), all parked, cancelled from
/// its root: no stack overflow, every body dropped once, and the runtime
/// empty.
#[test]
fn hundred_thousand_nested_scopes_cancelled_from_the_root() {
    let _hang = hang_guard();
    deep_chain(&runtime(Clock::Real, 1), true);
}

/// The same chain on two workers, cancelled as soon as the innermost body
/// has run: the task polling the innermost scope may still be in its poll.
#[test]
fn hundred_thousand_nested_scopes_cancelled_while_the_innermost_polls() {
    let _hang = hang_guard();
    deep_chain(&runtime(Clock::Real, 2), false);
}

/// A wide tree (a hundred child scopes, each with tasks and grandchild
/// scopes) completes; the same tree cancelled from its root stops all.
#[test]
fn wide_tree_completes_and_cancels() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const CHILDREN: usize = 100;
    let out = rt.block_on(scope(|root| async move {
        let children: Vec<_> = (0..CHILDREN)
            .map(|c| {
                root.spawn(scope(move |child| async move {
                    let grandchildren: Vec<_> = (0..2)
                        .map(|g| {
                            child.spawn(scope(
                                move |gs| async move { gs.spawn(async move { g }).await },
                            ))
                        })
                        .collect();
                    let tasks: Vec<_> =
                        (0..10).map(|t| child.spawn(async move { c * t })).collect();
                    let mut sum = 0;
                    for t in tasks {
                        sum += t.await.unwrap();
                    }
                    for g in grandchildren {
                        sum += g.await.unwrap().unwrap().unwrap();
                    }
                    sum
                }))
            })
            .collect();
        let mut total = 0;
        for c in children {
            total += c.await.unwrap().unwrap();
        }
        total
    }));
    let expected: usize = (0..CHILDREN).map(|c| c * 45 + 1).sum();
    assert_eq!(out, Ok(expected));
    assert_clean(&rt);

    const PER_CHILD: usize = 5;
    let probes = Probes::new(CHILDREN * PER_CHILD);
    let out = rt.block_on(scope(|root| {
        let probes = probes.clone();
        async move {
            let parked = Countdown::new(CHILDREN * PER_CHILD);
            for c in 0..CHILDREN {
                let (probes, parked) = (probes.clone(), parked.clone());
                root.spawn(scope(move |child| async move {
                    for t in 0..PER_CHILD - 1 {
                        child
                            .spawn(probes.wrap(c * PER_CHILD + t, arrive_and_park(parked.clone())));
                    }
                    let last = c * PER_CHILD + PER_CHILD - 1;
                    child.spawn(scope(move |_gs| probes.wrap(last, arrive_and_park(parked))));
                    std::future::pending::<()>().await
                }));
            }
            parked.wait().await;
            root.cancel();
            probes.raise_fence();
        }
    }));
    assert!(out.is_err());
    probes.assert_each_dropped_once();
    probes.assert_no_late_polls();
    assert_clean(&rt);
}

/// One level of a nest of scopes opened directly in bodies.
fn nest_in_body(left: usize) -> BoxFuture<usize> {
    Box::pin(async move {
        if left == 0 {
            return 0;
        }
        scope(move |s| async move {
            let t = s.spawn(async { 1 });
            nest_in_body(left - 1).await + t.await.unwrap()
        })
        .await
        .unwrap()
    })
}

/// Scopes nested directly in bodies, a couple of hundred deep, complete
/// with every level's value.
#[test]
fn scopes_nested_in_bodies() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    assert_eq!(rt.block_on(nest_in_body(200)), 200);
    assert_clean(&rt);
}
