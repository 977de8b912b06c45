//! Scopes that own what they start: cleanups bound to a scope
//! (`Scope::defer`), cancel handlers (`Scope::on_cancel`), daemon tasks
//! (`Scope::spawn_daemon`) and the readiness handshake
//! (`Scope::spawn_ready`); how each shows in the tree view and the
//! timeline.

use crate::support::{
    assert_clean, expect_panic, hang_guard, ms, on_workers, runtime, secs, timed, wait_clean,
    wait_until, Clock, Counter, Log, Slot,
};
use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::sync::Event;
use cancel_scope::time::{self, sleep, timeout};
use cancel_scope::trace::{EventKind, ScopeKind};
use cancel_scope::{
    linked_scope, scope, supervisor_scope, try_scope, CancelReason, DeferRefused, NotReady,
    OnCancelGuard, Ready, Scope, ScopeEnd, ScopeState,
};
use futures_lite::future::{block_on as drive, poll_once};
use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;

/// Sets a flag when dropped: move it into a future to see when the future
/// is gone.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// A scope opened as a task of a root scope of `rt`, whose body waits
/// until `release` is set; its handle is returned once it runs. Work
/// spawned into it is watched from outside it (the root's body), which a
/// cancel of it does not drop. Returns the root scope's future, polled
/// once.
fn scope_seen_from_outside(
    rt: &Runtime,
    release: Event,
) -> (
    Scope,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let inner = Slot::new();
    let opened = Event::new();
    let mut root: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = Box::pin({
        let (inner, opened) = (inner.clone(), opened.clone());
        async move {
            let _ = scope(move |s| async move {
                s.spawn(scope(move |watched| async move {
                    inner.put(watched);
                    opened.set();
                    release.wait().await;
                }));
            })
            .await;
        }
    });
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    rt.block_on(opened.wait());
    (inner.take(), root)
}

// ---------------------------------------------------------------------
// Cleanups
// ---------------------------------------------------------------------

/// A cleanup runs after the last task and the last nested scope ended,
/// never before, in reverse order of registration, exactly once; the
/// scope future completes after them.
#[test]
fn cleanups_run_after_the_last_task_and_child_newest_first() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let log = Log::new();
    let out = on_workers(&rt, {
        let log = log.clone();
        async move {
            let inner_log = log.clone();
            let out = scope(|s| async move {
                for name in ["first", "second", "third"] {
                    let log = inner_log.clone();
                    s.defer(move |_| log.push(format!("cleanup {name}")))
                        .unwrap();
                }
                let log = inner_log.clone();
                s.spawn(async move {
                    sleep(secs(2)).await;
                    log.push("task ended".to_string());
                });
                let log = inner_log.clone();
                s.spawn(scope(|_| async move {
                    sleep(secs(3)).await;
                    log.push("child ended".to_string());
                }));
                inner_log.push("body ended".to_string());
                7
            })
            .await;
            log.push("scope ended".to_string());
            out
        }
    });
    assert_eq!(out, Ok(7));
    assert_eq!(
        log.entries(),
        [
            "body ended",
            "task ended",
            "child ended",
            "cleanup third",
            "cleanup second",
            "cleanup first",
            "scope ended"
        ]
    );
    assert_clean(&rt);
}

/// What each ending tells the cleanups, and that each runs once: the
/// four endings (completed, with or without a cancel that interrupted
/// nothing; cancelled; failed; panicked).
#[test]
fn cleanups_are_told_how_the_scope_ended() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let seen: Log<ScopeEnd> = Log::new();
    let record = |s: &Scope, seen: &Log<ScopeEnd>| {
        let seen = seen.clone();
        s.defer(move |end| seen.push(end)).unwrap();
    };

    // Completed.
    let out = rt.block_on(scope(|s| {
        record(&s, &seen);
        async { 1 }
    }));
    assert_eq!(out, Ok(1));
    assert_eq!(seen.drain(), [ScopeEnd::Completed { cancel: None }]);

    // A cancel that interrupted nothing: the scope ends Ok.
    let out = rt.block_on(scope(|s| {
        record(&s, &seen);
        async move {
            s.cancel();
            2
        }
    }));
    assert_eq!(out, Ok(2));
    match &seen.drain()[..] {
        [ScopeEnd::Completed { cancel: Some(c) }] => {
            assert_eq!(c.reason(), &CancelReason::Explicit)
        }
        other => panic!("told {other:?}"),
    }

    // Cancelled: the body was cut short at its await.
    let out = rt.block_on(scope(|s| {
        record(&s, &seen);
        async move {
            s.cancel_with("reloading");
            pending::<()>().await
        }
    }));
    let cancelled = out.unwrap_err();
    assert_eq!(seen.drain(), [ScopeEnd::Cancelled(cancelled.clone())]);
    assert_eq!(cancelled.cause().unwrap().to_string(), "reloading");

    // Failed: a try_scope's task returned an error.
    let out = rt.block_on(try_scope(|s| {
        record(&s, &seen);
        async move {
            s.spawn(async { Err::<(), _>("disk full") });
            pending::<Result<(), &str>>().await
        }
    }));
    assert_eq!(out, Ok(Err("disk full")));
    assert_eq!(seen.drain(), [ScopeEnd::Failed]);

    // Panicked: resumed once the cleanups have run.
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            record(&s, &seen);
            async move {
                s.spawn(async { panic!("task panicked") });
                pending::<()>().await
            }
        }))
    });
    assert_eq!(message, "task panicked");
    assert_eq!(seen.drain(), [ScopeEnd::Panicked]);
    assert_clean(&rt);
}

/// A cancel racing the scope's end (the last task finishing on another
/// thread as the cancel comes): the cleanups run exactly once, after the
/// task's future is gone, and what they are told agrees with the scope's
/// result.
#[test]
fn cleanups_run_once_under_a_cancel_racing_the_end() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    for round in 0..200 {
        let go = Arc::new(Barrier::new(2));
        let runs = Counter::new();
        let told = Slot::new();
        let task_gone = Arc::new(AtomicBool::new(false));
        let canceller = {
            let go = go.clone();
            let handle = Slot::new();
            let h = handle.clone();
            (
                thread::spawn(move || {
                    go.wait();
                    let handle: cancel_scope::CancelHandle = h.take();
                    handle.cancel();
                }),
                handle,
            )
        };
        let out = rt.block_on(scope(|s| {
            canceller.1.put(s.cancel_handle());
            let (runs, told, gone) = (runs.clone(), told.clone(), task_gone.clone());
            s.defer(move |end| {
                assert!(gone.load(SeqCst), "a cleanup ran before the task ended");
                runs.inc();
                told.put(end);
            })
            .unwrap();
            let guard = SetOnDrop(task_gone.clone());
            if round % 2 == 0 {
                // A closure: it runs to its end, the cancel or not.
                drop(s.spawn_blocking(move || {
                    let _guard = guard;
                    go.wait();
                }));
            } else {
                // A task: the cancel may drop it, or find it done.
                drop(s.spawn(async move {
                    let _guard = guard;
                    go.wait();
                    cancel_scope::task::yield_now().await;
                }));
            }
            async {}
        }));
        canceller.0.join().unwrap();
        assert_eq!(runs.get(), 1, "round {round}");
        match (out, told.take()) {
            (Ok(()), ScopeEnd::Completed { .. }) => {}
            (Err(c), ScopeEnd::Cancelled(told)) => assert_eq!(c, told),
            (out, told) => panic!("round {round}: {out:?} but the cleanup was told {told:?}"),
        }
    }
    wait_clean(&rt);
}

/// A dropped scope future: the scope is cancelled, its running closure
/// goes on, and its cleanups run once the closure returned, on the
/// workers; its parent waits for them, and they are told `Cancelled`.
#[test]
fn cleanups_run_when_the_scope_future_was_dropped() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let log = Log::new();
    let told = Slot::new();
    on_workers(&rt, {
        let (log, told) = (log.clone(), told.clone());
        async move {
            let outer_log = log.clone();
            let _ = scope(move |_| async move {
                let (release, parked) = mpsc::channel::<()>();
                let (started_tx, started) = mpsc::channel();
                let mut inner = Box::pin(scope({
                    let log = log.clone();
                    move |s| {
                        let (l1, l2) = (log.clone(), log.clone());
                        s.defer(move |end| {
                            l1.push("cleanup");
                            told.put(end);
                        })
                        .unwrap();
                        drop(s.spawn_blocking(move || {
                            started_tx.send(()).unwrap();
                            parked.recv().unwrap();
                            l2.push("closure returned");
                        }));
                        pending::<()>()
                    }
                }));
                assert!(poll_once(&mut inner).await.is_none());
                started.recv().unwrap();
                drop(inner);
                log.push("future dropped");
                release.send(()).unwrap();
            })
            .await;
            outer_log.push("parent ended");
        }
    });
    assert_eq!(
        log.entries(),
        [
            "future dropped",
            "closure returned",
            "cleanup",
            "parent ended"
        ]
    );
    match told.take() {
        ScopeEnd::Cancelled(c) => assert_eq!(c.reason(), &CancelReason::ScopeDropped),
        other => panic!("told {other:?}"),
    }
    wait_clean(&rt);
}

/// A panicking cleanup does not stop the others, and the scope resumes
/// its panic once they ran; a panic of the body wins over a cleanup's.
#[test]
fn a_panicking_cleanup_does_not_stop_the_others() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let (a, c) = (log.clone(), log.clone());
            s.defer(move |_| a.push("a")).unwrap();
            s.defer_async(|_, _| async { panic!("cleanup b panicked") })
                .unwrap();
            s.defer(|_| panic!("cleanup b2 panicked")).unwrap();
            s.defer(move |_| c.push("c")).unwrap();
            async {}
        }))
    });
    assert_eq!(message, "cleanup b2 panicked", "the first to run wins");
    assert_eq!(log.drain(), ["c", "a"]);

    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let a = log.clone();
            s.defer(move |end| {
                assert_eq!(end, ScopeEnd::Panicked);
                a.push("a");
                panic!("cleanup panicked")
            })
            .unwrap();
            async { panic!("body panicked") }
        }))
    });
    assert_eq!(message, "body panicked", "the body's panic came first");
    assert_eq!(log.drain(), ["a"]);
    assert_clean(&rt);
}

/// A cleanup's panic, when the scope's future was dropped, goes to the
/// nearest open ancestor, which resumes it.
#[test]
fn a_cleanup_panic_of_a_dropped_scope_goes_to_the_parent() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let message = expect_panic(|| {
        rt.block_on(scope(|_| async {
            let mut inner = Box::pin(scope(|s| {
                s.defer(|_| panic!("cleanup of a dropped scope")).unwrap();
                pending::<()>()
            }));
            assert!(poll_once(&mut inner).await.is_none());
            drop(inner);
            sleep(secs(1)).await; // the parent is cancelled meanwhile
            unreachable!("the parent is cancelled by the panic");
        }))
    });
    assert_eq!(message, "cleanup of a dropped scope");
    assert_clean(&rt);
}

/// An async cleanup with a grace period is cut at its deadline, and the
/// next cleanup runs; one without a grace period runs to its end.
#[test]
fn an_async_cleanup_is_cut_at_its_grace_deadline() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        timed(scope(move |s| async move {
            let l = log.clone();
            s.defer_async(move |_, _| async move {
                sleep(secs(2)).await;
                l.push(("patient", time::now()));
            })
            .unwrap();
            let (l, guard) = (log.clone(), log.clone());
            s.defer_async_within(secs(5), move |_, _| async move {
                let _cut = scopeguard(move || guard.push(("cut", time::now())));
                sleep(secs(3600)).await;
                l.push(("never", time::now()));
            })
            .unwrap();
        }))
    });
    assert_eq!(out, Ok(()));
    assert_eq!(elapsed, secs(7));
    let entries = log.entries();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].0, "cut");
    assert_eq!(entries[1].0, "patient");
    assert_eq!(entries[1].1 - entries[0].1, secs(2));
    assert_clean(&rt);
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Cleanups are shielded: a cancel of the scope that comes while they run
/// does not stop them, and interrupts nothing of the scope; a cancel of
/// its parent, which drops the scope's future, does not stop them either,
/// and the parent waits for them.
#[test]
fn a_cancel_during_the_cleanups_does_not_reach_them() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        timed(scope(move |s| {
            let me = s.clone();
            s.defer_async(move |_, end| async move {
                me.cancel();
                sleep(secs(2)).await;
                log.push(end);
            })
            .unwrap();
            async {}
        }))
    });
    assert_eq!(elapsed, secs(2), "the cleanup ran to its end");
    assert_eq!(
        out,
        Ok(()),
        "a cancel during the cleanups interrupts nothing"
    );
    assert_eq!(log.drain(), [ScopeEnd::Completed { cancel: None }]);

    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        timed(scope(move |parent| async move {
            scope(move |s| async move {
                s.defer_async(move |_, end| async move {
                    parent.cancel(); // drops the scope's future
                    sleep(secs(2)).await;
                    log.push(end);
                })
                .unwrap();
            })
            .await
        }))
    });
    assert_eq!(elapsed, secs(2), "the parent waited for the cleanup");
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(log.drain(), [ScopeEnd::Completed { cancel: None }]);
    assert_clean(&rt);
}

/// A cleanup gets a scope of its own: it may spawn into it (and is
/// waited for), and register cleanups on it, which run after it; the
/// finishing scope refuses its tasks and cleanups.
#[test]
fn a_cleanup_may_register_a_cleanup_on_its_own_scope_only() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let log = Log::new();
    let out = on_workers(&rt, {
        let log = log.clone();
        scope(move |s| {
            let finishing = s.clone();
            s.defer_async(move |own, end| async move {
                assert_eq!(end, ScopeEnd::Completed { cancel: None });
                assert_eq!(finishing.defer(|_| unreachable!()), Err(DeferRefused));
                let refused = finishing.spawn(async {}).await.unwrap_err();
                assert_eq!(refused.reason(), &CancelReason::ScopeEnded);
                let l = log.clone();
                own.defer(move |_| l.push("the cleanup's own cleanup"))
                    .unwrap();
                let l = log.clone();
                drop(own.spawn(async move {
                    sleep(secs(1)).await;
                    l.push("the cleanup's task");
                }));
                log.push("the cleanup's body");
            })
            .unwrap();
            async {}
        })
    });
    assert_eq!(out, Ok(()));
    assert_eq!(
        log.entries(),
        [
            "the cleanup's body",
            "the cleanup's task",
            "the cleanup's own cleanup"
        ]
    );
    assert_clean(&rt);
}

/// Registering a cleanup on a scope that has ended is refused; one
/// registered by a task while the body is done and tasks run is not.
#[test]
fn a_cleanup_is_refused_once_the_scope_is_finishing() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let kept = Slot::new();
    let out = rt.block_on(scope(|s| {
        kept.put(s.clone());
        let (late, l) = (s.clone(), log.clone());
        drop(s.spawn(async move {
            sleep(secs(1)).await; // the body is done by now
            late.defer(move |_| l.push("registered late")).unwrap();
        }));
        async {}
    }));
    assert_eq!(out, Ok(()));
    assert_eq!(log.entries(), ["registered late"]);
    let scope: Scope = kept.take();
    let dropped = Counter::new();
    let guard = dropped.on_drop();
    assert_eq!(
        scope.defer(move |_| drop(guard)),
        Err(DeferRefused),
        "the scope has ended"
    );
    assert_eq!(dropped.get(), 1, "a refused cleanup is dropped unrun");
    assert!(DeferRefused.to_string().contains("already finishing"));
    assert_clean(&rt);
}

/// At a runtime's shutdown: a scope whose work the shutdown cut has its
/// cleanups called on the dropping thread (a `defer` closure runs, a
/// `defer_async` closure is called and its future never polled); a scope
/// in its cleanups has the running one dropped and the rest called.
#[test]
fn cleanups_at_runtime_shutdown() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let log: Log<&'static str> = Log::new();
    let told = Slot::new();
    let (parked_tx, parked) = mpsc::channel();
    let mut root = Box::pin({
        let (log, told) = (log.clone(), told.clone());
        scope(move |s| async move {
            let l = log.clone();
            let cut_opened = parked_tx.clone();
            drop(s.spawn(scope(move |cut| {
                cut_opened.send(()).unwrap();
                let (a, b) = (l.clone(), l.clone());
                cut.defer(move |end| {
                    a.push("cut: sync cleanup");
                    told.put(end);
                })
                .unwrap();
                cut.defer_async(move |_, _| {
                    b.push("cut: async cleanup called");
                    let b = b.clone();
                    async move { b.push("cut: async cleanup polled") }
                })
                .unwrap();
                pending::<()>()
            })));
            let l = log.clone();
            drop(s.spawn(scope(move |cleaning| {
                let (a, b) = (l.clone(), l.clone());
                cleaning
                    .defer(move |_| a.push("cleaning: older cleanup"))
                    .unwrap();
                cleaning
                    .defer_async(move |_, _| async move {
                        let _dropped = scopeguard(move || b.push("cleaning: running dropped"));
                        parked_tx.send(()).unwrap();
                        pending::<()>().await
                    })
                    .unwrap();
                async {}
            })));
            pending::<()>().await
        })
    });
    assert!(rt.block_on(poll_once(&mut root)).is_none());
    // Both scopes opened, the second's async cleanup is parked.
    parked.recv().unwrap();
    parked.recv().unwrap();
    drop(rt);
    let mut entries = log.entries();
    entries.sort();
    assert_eq!(
        entries,
        [
            "cleaning: older cleanup",
            "cleaning: running dropped",
            "cut: async cleanup called",
            "cut: sync cleanup",
        ]
    );
    assert!(matches!(told.take(), ScopeEnd::Cancelled(_)));
    let out = drive(root);
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Shutdown);
}

// ---------------------------------------------------------------------
// Cancel handlers
// ---------------------------------------------------------------------

/// A handler gets the cancel's reason and cause; one registered on a
/// scope cancelled already runs at once, on the registering thread.
#[test]
fn a_handler_gets_the_cancel_and_runs_at_once_if_it_came() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let seen = Log::new();
    let out = rt.block_on(scope(|s| {
        let seen = seen.clone();
        async move {
            let l = seen.clone();
            let _g = s.on_cancel(move |why| {
                l.push((why.reason().clone(), why.cause().map(|c| c.to_string())))
            });
            s.cancel_with("reconfigured");
            let me = thread::current().id();
            let l = seen.clone();
            let late = s.on_cancel(move |why| {
                assert_eq!(thread::current().id(), me, "at once, here");
                l.push((why.reason().clone(), None));
            });
            assert_eq!(seen.len(), 2, "the late handler ran at once");
            drop(late);
        }
    }));
    assert_eq!(out, Ok(()), "nothing was interrupted");
    assert_eq!(
        seen.entries(),
        [
            (CancelReason::Explicit, Some("reconfigured".to_string())),
            (CancelReason::Explicit, None)
        ]
    );
    assert_clean(&rt);
}

/// Cancels racing from several threads (and a deadline): the handler
/// runs exactly once, and before the scope ends.
#[test]
fn a_handler_runs_exactly_once_under_racing_cancels() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    for _ in 0..100 {
        let runs = Counter::new();
        let go = Arc::new(Barrier::new(4));
        let counted = runs.clone();
        let out = rt.block_on(scope(|s| async move {
            s.on_cancel(move |_| {
                counted.inc();
            })
            .detach();
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let (go, h) = (go.clone(), s.cancel_handle());
                    thread::spawn(move || {
                        go.wait();
                        h.cancel();
                    })
                })
                .collect();
            go.wait();
            s.cancel_after(ms(0));
            for h in handles {
                h.join().unwrap();
            }
        }));
        assert!(out.is_ok(), "the body returned without awaiting");
        assert_eq!(runs.get(), 1);
    }
    wait_clean(&rt);
}

/// A guard dropped while a cancel comes: the handler runs at most once,
/// and never after the drop returned; a drop that finds the handler
/// running on another thread waits for it to return.
#[test]
fn a_handler_never_runs_after_its_guard_is_dropped() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    for _ in 0..200 {
        let dropped = Arc::new(AtomicBool::new(false));
        let runs = Counter::new();
        let go = Arc::new(Barrier::new(2));
        let (flag, counted) = (dropped.clone(), runs.clone());
        let dropped2 = dropped.clone();
        let out = rt.block_on(scope(|s| async move {
            let dropped = dropped2;
            let guard = s.on_cancel(move |_| {
                assert!(!flag.load(SeqCst), "ran after its guard was dropped");
                counted.inc();
            });
            let (go2, flag) = (go.clone(), dropped.clone());
            let dropper = thread::spawn(move || {
                go2.wait();
                drop(guard);
                flag.store(true, SeqCst);
            });
            go.wait();
            s.cancel();
            dropper.join().unwrap();
        }));
        assert!(out.is_ok());
        assert!(runs.get() <= 1);
    }

    // The drop waits for a handler running on another thread.
    let (running_tx, running) = mpsc::channel();
    let (release, parked) = mpsc::channel::<()>();
    let returned = Arc::new(AtomicBool::new(false));
    let dropping = Arc::new(AtomicBool::new(false));
    let out = rt.block_on(scope(|s| async move {
        let flag = returned.clone();
        let guard = s.on_cancel(move |_| {
            running_tx.send(()).unwrap();
            parked.recv().unwrap();
            flag.store(true, SeqCst);
        });
        let h = s.cancel_handle();
        let canceller = thread::spawn(move || h.cancel());
        running.recv().unwrap();
        let (flag, dropping2) = (returned.clone(), dropping.clone());
        let dropper = thread::spawn(move || {
            dropping2.store(true, SeqCst);
            drop(guard);
            assert!(flag.load(SeqCst), "the drop returned before the handler");
        });
        wait_until("the guard's drop to begin", || dropping.load(SeqCst));
        release.send(()).unwrap();
        dropper.join().unwrap();
        canceller.join().unwrap();
    }));
    assert!(out.is_ok());
    wait_clean(&rt);
}

/// A handler runs with no lock of the runtime held: it may register a
/// handler, a cleanup and a task on its own scope (whose lock the walk
/// took), cancel its parent and another scope, and spawn elsewhere.
#[test]
fn a_handler_runs_under_no_lock() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let log = Log::new();
    let out = on_workers(&rt, {
        let log = log.clone();
        scope(move |parent| async move {
            let other_done = Event::new();
            let other = {
                let done = other_done.clone();
                let kept = Slot::new();
                let k = kept.clone();
                drop(parent.spawn(scope(move |o| async move {
                    k.put(o);
                    pending::<()>().await
                })));
                drop(parent.spawn(async move {
                    let _ = done;
                }));
                cancel_scope::task::yield_now().await;
                while !kept.is_some() {
                    cancel_scope::task::yield_now().await;
                }
                kept.take()
            };
            let (p, l) = (parent.clone(), log.clone());
            let _ = linked_scope(move |s: Scope| async move {
                let me = s.clone();
                let _g = s.on_cancel(move |_| {
                    let l2 = l.clone();
                    drop(me.on_cancel(move |_| l2.push("nested handler ran at once")));
                    assert_eq!(me.defer(|_| {}), Ok(()), "not finishing yet");
                    let refused = drive(me.spawn(async {})).unwrap_err();
                    assert_eq!(refused.reason(), &CancelReason::Explicit);
                    other.cancel();
                    p.cancel();
                    drop(p.spawn(async {}));
                    l.push("handler returned");
                });
                s.cancel();
                pending::<()>().await
            })
            .await;
            other_done.set();
        })
    });
    assert!(out.is_err(), "the parent was cancelled at its await");
    assert_eq!(
        log.entries(),
        ["nested handler ran at once", "handler returned"]
    );
    assert_clean(&rt);
}

/// A handler runs before the walk drops the scope's idle tasks: a task
/// that registered one is still alive while it runs.
#[test]
fn a_handler_runs_before_the_tasks_are_dropped() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let parked = Event::new();
    let checked = Counter::new();
    let out = on_workers(&rt, {
        let (parked, checked) = (parked.clone(), checked.clone());
        scope(move |s| async move {
            let task_gone = Arc::new(AtomicBool::new(false));
            let (me, gone, p) = (s.clone(), task_gone.clone(), parked.clone());
            drop(s.spawn(async move {
                let _guard = SetOnDrop(gone.clone());
                let flag = gone.clone();
                let _handler = me.on_cancel(move |_| {
                    assert!(!flag.load(SeqCst), "the task was dropped first");
                    checked.inc();
                });
                p.set();
                pending::<()>().await
            }));
            parked.wait().await;
            s.cancel();
            assert!(task_gone.load(SeqCst), "cancel() dropped the idle task");
        })
    });
    assert!(out.is_err(), "the task was cut short");
    assert_eq!(checked.get(), 1);
    assert_clean(&rt);
}

/// A handler's panic goes to the scope, which resumes it; a handler that
/// drops its own guard does not wait for itself.
#[test]
fn a_handler_panic_goes_to_the_scope_and_its_own_guard_does_not_deadlock() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            let _g = s.on_cancel(|_| panic!("handler panicked"));
            s.cancel();
        }))
    });
    assert_eq!(message, "handler panicked");

    let own: Arc<Mutex<Option<OnCancelGuard>>> = Arc::default();
    let ran = Counter::new();
    let out = rt.block_on(scope(|s| {
        let (slot, counted) = (own.clone(), ran.clone());
        let guard = s.on_cancel(move |_| {
            drop(slot.lock().unwrap().take()); // its own guard: no wait
            counted.inc();
        });
        *own.lock().unwrap() = Some(guard);
        async move { s.cancel() }
    }));
    assert!(out.is_ok());
    assert_eq!(ran.get(), 1);
    assert_clean(&rt);
}

/// A scope that ends uncancelled never runs its handlers; they are
/// dropped with their guards (or, detached, with the scope).
#[test]
fn a_handler_of_a_scope_never_cancelled_is_dropped_unrun() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let dropped = Counter::new();
    let (g1, g2) = (dropped.on_drop(), dropped.on_drop());
    let out = rt.block_on(scope(|s| async move {
        let guard = s.on_cancel(move |_| {
            let _g = g1;
            unreachable!("never cancelled")
        });
        s.on_cancel(move |_| {
            let _g = g2;
            unreachable!("never cancelled")
        })
        .detach();
        drop(guard);
        5
    }));
    assert_eq!(out, Ok(5));
    assert_eq!(dropped.get(), 2);
    assert_clean(&rt);
}

// ---------------------------------------------------------------------
// Daemons
// ---------------------------------------------------------------------

/// Daemons are cancelled only once the last non-daemon piece of work has
/// ended, a task spawned late by another task included; the scope ends
/// `Ok`, their handles say `DaemonStopped`, and cleanups run after them.
#[test]
fn daemons_are_stopped_after_the_last_other_work() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let log = Log::new();
    let daemon = Slot::new();
    let (out, elapsed) = on_workers(&rt, {
        let (log, daemon) = (log.clone(), daemon.clone());
        timed(scope(move |s| {
            let l = log.clone();
            s.defer(move |_| l.push(("cleanup", time::now()))).unwrap();
            let l = log.clone();
            daemon.put(s.spawn_daemon(async move {
                let _stopped = scopeguard(move || l.push(("daemon stopped", time::now())));
                loop {
                    sleep(ms(100)).await;
                }
            }));
            let (late, l) = (s.clone(), log.clone());
            drop(s.spawn(async move {
                sleep(secs(1)).await;
                drop(late.spawn(async move {
                    sleep(secs(2)).await;
                    l.push(("late task ended", time::now()));
                }));
            }));
            async { "body done" }
        }))
    });
    assert_eq!(out, Ok("body done"), "stopping daemons interrupts nothing");
    assert_eq!(elapsed, secs(3));
    let entries: Vec<_> = log.entries().into_iter().map(|(what, _)| what).collect();
    assert_eq!(entries, ["late task ended", "daemon stopped", "cleanup"]);
    let stopped = drive(daemon.take()).unwrap_err();
    assert_eq!(stopped.reason(), &CancelReason::DaemonStopped);
    assert_clean(&rt);
}

/// Work a daemon starts is daemon work: a task it spawns into the scope,
/// a blocking closure, a scope it opens and that scope's tasks do not
/// keep the scope open; they are stopped with it.
#[test]
fn a_daemons_work_does_not_keep_the_scope_open() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let gone = Counter::new();
    let (out, elapsed) = on_workers(&rt, {
        let gone = gone.clone();
        timed(scope(move |s| {
            let (me, g) = (s.clone(), gone.clone());
            drop(s.spawn_daemon(async move {
                let g2 = g.clone();
                // A task spawned into the scope, which spawns again.
                let again = me.clone();
                let g3 = g.clone();
                drop(me.spawn(async move {
                    let _gone = g2.on_drop();
                    let g4 = g3.clone();
                    drop(again.spawn(async move {
                        let _gone = g4.on_drop();
                        pending::<()>().await
                    }));
                    pending::<()>().await
                }));
                // A scope it opens, with a task.
                let _gone = g.on_drop();
                let g5 = g.clone();
                let _ = scope(move |inner| async move {
                    drop(inner.spawn(async move {
                        let _gone = g5.on_drop();
                        pending::<()>().await
                    }));
                    pending::<()>().await
                })
                .await;
            }));
            async {
                sleep(secs(1)).await;
            }
        }))
    });
    assert_eq!(out, Ok(()));
    assert_eq!(elapsed, secs(1));
    assert_eq!(gone.get(), 4, "every piece of daemon work was dropped");
    assert_clean(&rt);
}

/// A cancel of the scope reaches its daemons (reason `Ancestor`); a
/// daemon's panic goes to the scope; a scope that is cancelled or over
/// refuses daemons.
#[test]
fn daemons_are_cancelled_with_their_scope_and_their_panic_is_its() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let daemon = Slot::new();
    let late = Slot::new();
    let out = rt.block_on(scope(|s| {
        let (daemon, late) = (daemon.clone(), late.clone());
        async move {
            daemon.put(s.spawn_daemon(pending::<()>()));
            s.cancel();
            // Not awaited here: a cancelled body would end at the
            // await, which would interrupt it.
            late.put(s.spawn_daemon(async {}));
        }
    }));
    assert_eq!(out, Ok(()), "nothing of the scope's own was cut short");
    let refused = drive(late.take()).unwrap_err();
    assert_eq!(refused.reason(), &CancelReason::Explicit);
    let stopped = drive(daemon.take()).unwrap_err();
    assert_eq!(stopped.reason(), &CancelReason::Ancestor);

    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            drop(s.spawn_daemon(async {
                sleep(secs(1)).await;
                panic!("daemon panicked")
            }));
            sleep(secs(60)).await;
        }))
    });
    assert_eq!(message, "daemon panicked");

    let out = rt.block_on(supervisor_scope(|s| async move {
        let d = s.spawn_daemon(async { panic!("kept by its handle") });
        let err = d.await.unwrap_err();
        assert_eq!(err.reason(), &CancelReason::Panicked);
        err.take_panic().is_some()
    }));
    assert_eq!(out, Ok(true), "in a supervisor scope, the handle keeps it");

    let kept = Slot::new();
    let _ = rt.block_on(scope(|s| {
        kept.put(s.clone());
        async {}
    }));
    let scope: Scope = kept.take();
    let refused = drive(scope.spawn_daemon(async {})).unwrap_err();
    assert_eq!(refused.reason(), &CancelReason::ScopeEnded);
    assert_clean(&rt);
}

// ---------------------------------------------------------------------
// The readiness handshake
// ---------------------------------------------------------------------

/// `spawn_ready` returns the value the task sent and its handle; the task
/// goes on as a task of the scope.
#[test]
fn spawn_ready_returns_the_value_and_the_rest_of_the_task() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 2);
    let out = on_workers(
        &rt,
        scope(|s| async move {
            let t0 = time::now();
            let (value, rest) = s
                .spawn_ready(|ready| async move {
                    sleep(secs(1)).await;
                    ready.send("listening");
                    sleep(secs(1)).await;
                    "served"
                })
                .await
                .unwrap();
            assert_eq!(time::now() - t0, secs(1));
            (value, rest.await.unwrap(), time::now() - t0)
        }),
    );
    assert_eq!(out, Ok(("listening", "served", secs(2))));
    assert_clean(&rt);
}

/// A task that returns, is cancelled or panics before it is ready gives
/// the caller `NotReady`: its output, or the `Cancelled`.
#[test]
fn spawn_ready_reports_a_task_that_ended_before_it_was_ready() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    // Returned: its output.
    let out = rt.block_on(scope(|s| async move {
        let starting = s.spawn_ready(|ready: Ready<u16>| async move {
            sleep(secs(1)).await;
            drop(ready); // gave up; ends later
            sleep(secs(1)).await;
            Err::<(), _>("address in use")
        });
        match starting.await {
            Err(NotReady::Returned(out)) => out,
            other => panic!("{other:?}"),
        }
    }));
    assert_eq!(out, Ok(Err("address in use")));

    // Cancelled: the scope the task is in is cancelled; the caller,
    // outside it, gets the reason.
    let release = Event::new();
    let (watched, root) = scope_seen_from_outside(&rt, release.clone());
    let out = rt.block_on(async {
        let starting = watched.spawn_ready(|ready: Ready<()>| async move {
            pending::<()>().await;
            ready.send(());
        });
        watched.cancel_with("shutting down");
        starting.await
    });
    match out {
        Err(NotReady::Cancelled(why)) => {
            assert_eq!(why.reason(), &CancelReason::Explicit);
            assert_eq!(why.cause().unwrap().to_string(), "shutting down");
        }
        other => panic!("{other:?}"),
    }
    release.set();
    rt.block_on(root);

    // Panicked: the caller learns it; the scope resumes the panic.
    let release = Event::new();
    let (watched, root) = scope_seen_from_outside(&rt, release.clone());
    let out = rt.block_on(async {
        watched
            .spawn_ready(|ready: Ready<()>| async move {
                let _unsent = ready;
                panic!("bad configuration")
            })
            .await
    });
    match out {
        Err(NotReady::Cancelled(why)) => assert_eq!(why.reason(), &CancelReason::Panicked),
        other => panic!("{other:?}"),
    }
    let message = expect_panic(|| rt.block_on(root));
    assert_eq!(message, "bad configuration");
    drop(release);
    assert_clean(&rt);
}

/// A cancel of the scope racing the task's `ready`: the caller gets the
/// value if the task sent it (and the handle says the task was
/// cancelled), or `NotReady` if the task was dropped first; never
/// nothing.
#[test]
fn spawn_ready_racing_a_cancel_loses_nothing() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (mut delivered, mut refused) = (0, 0);
    for _ in 0..200 {
        let release = Event::new();
        let (watched, root) = scope_seen_from_outside(&rt, release.clone());
        let sent = Arc::new(AtomicBool::new(false));
        let go = Arc::new(Barrier::new(2));
        let canceller = {
            let (go, h) = (go.clone(), watched.cancel_handle());
            thread::spawn(move || {
                go.wait();
                h.cancel();
            })
        };
        let out = rt.block_on({
            let sent = sent.clone();
            watched.spawn_ready(move |ready| async move {
                go.wait();
                ready.send(42);
                sent.store(true, SeqCst);
                cancel_scope::task::yield_now().await;
            })
        });
        canceller.join().unwrap();
        match out {
            Ok((42, handle)) => {
                delivered += 1;
                let _ = drive(handle);
            }
            Err(NotReady::Cancelled(why)) => {
                refused += 1;
                assert!(!sent.load(SeqCst), "a value sent was lost");
                assert_eq!(why.reason(), &CancelReason::Explicit);
            }
            other => panic!("{other:?}"),
        }
        release.set();
        rt.block_on(root);
    }
    println!("delivered {delivered}, refused {refused}");
    wait_clean(&rt);
}

/// Dropping `Starting` before the task is ready cancels the task (a
/// startup timeout); dropping it after leaves the task running.
#[test]
fn dropping_starting_cancels_a_task_not_yet_ready() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let out = rt.block_on(scope(|s| async move {
        let gone = Arc::new(AtomicBool::new(false));
        let flag = gone.clone();
        let starting = s.spawn_ready(move |ready: Ready<()>| async move {
            let _gone = SetOnDrop(flag);
            sleep(secs(3600)).await;
            ready.send(());
        });
        assert!(timeout(secs(1), starting).await.is_err());
        assert!(gone.load(SeqCst), "the task was cancelled with the wait");

        let done = Counter::new();
        let counted = done.clone();
        let starting = s.spawn_ready(move |ready| async move {
            ready.send(());
            sleep(secs(1)).await;
            counted.inc();
        });
        let mut starting = Box::pin(starting);
        while poll_once(&mut starting).await.is_none() {
            cancel_scope::task::yield_now().await;
        }
        drop(starting);
        sleep(secs(2)).await;
        done.get()
    }));
    assert_eq!(
        out,
        Ok(1),
        "a ready task goes on; the scope is not interrupted"
    );
    assert_clean(&rt);
}

// ---------------------------------------------------------------------
// The tree view and the timeline
// ---------------------------------------------------------------------

/// The tree view shows pending cleanups, cancel handlers, tasks not yet
/// ready, the daemons' scope, and a scope cleaning up with its cleanup
/// running below it.
#[test]
fn the_tree_view_shows_what_a_scope_owns() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Paused, 1));
    let inside = rt.clone();
    let cleaning_seen = Slot::new();
    let seen = cleaning_seen.clone();
    let out = rt.block_on(
        scope(move |s| async move {
            let view = inside.clone();
            s.defer_async(move |_, _| async move {
                seen.put(view.scope_tree());
            })
            .unwrap();
            s.defer(|_| {}).unwrap();
            let _g = s.on_cancel(|_| {});
            drop(s.spawn_daemon(pending::<()>()));
            let _starting = s.spawn_ready(|ready: Ready<()>| async move {
                pending::<()>().await;
                ready.send(());
            });
            let tree = inside.scope_tree();
            let root = &tree.scopes()[0];
            assert_eq!(root.pending_cleanups(), 2);
            assert_eq!(root.cancel_handlers(), 1);
            assert_eq!(root.tasks_not_ready(), 1);
            let daemons = &tree.scopes()[1];
            assert!(daemons.is_daemons());
            assert_eq!((daemons.name(), daemons.live_tasks()), (Some("daemons"), 1));
            let text = tree.to_string();
            assert!(
                text.contains("[2 cleanups, 1 cancel handler, 1 not ready]"),
                "{text}"
            );
            assert!(
                text.contains("\"daemons\" running [daemons], 1 task"),
                "{text}"
            );
        })
        .named("service"),
    );
    assert_eq!(out, Ok(()));
    let tree = cleaning_seen.take();
    let names: Vec<_> = tree
        .scopes()
        .iter()
        .map(|s| (s.name(), s.state()))
        .collect();
    // The cleanups' scope has no future: it is detached just after it
    // spawns its one task, which a worker may already be running.
    assert!(
        matches!(
            names.as_slice(),
            [
                (Some("service"), ScopeState::CleaningUp),
                (Some("cleanups"), ScopeState::Detached | ScopeState::Running),
                (Some("cleanup"), ScopeState::Running),
            ]
        ),
        "{names:?}"
    );
    assert!(
        tree.to_string().contains("\"service\" cleaning up"),
        "{tree}"
    );
    assert!(tree.scopes()[1].is_shielded());
    assert_clean(&rt);
}

/// A recorded timeline shows the cleanups' scope, and each cleanup's run
/// as a bar of its own below it, and the daemons' scope.
#[test]
fn the_timeline_shows_each_cleanup_as_a_bar() {
    let _hang = hang_guard();
    let rt = Builder::new()
        .worker_threads(1)
        .record(10_000)
        .build()
        .unwrap();
    let out = rt.block_on(scope(|s| async move {
        s.defer(|_| {}).unwrap();
        s.defer_async(|_, _| async { sleep(ms(1)).await }).unwrap();
        drop(s.spawn_daemon(pending::<()>()));
    }));
    assert_eq!(out, Ok(()));
    let trace = rt.take_trace();
    let mut opened = Vec::new();
    let mut ended = Vec::new();
    for event in trace.events() {
        match &event.kind {
            EventKind::ScopeOpened {
                scope,
                name,
                kind,
                parent,
                ..
            } => opened.push((*scope, name.as_deref().map(str::to_string), *kind, *parent)),
            EventKind::ScopeEnded { scope } => ended.push(*scope),
            _ => {}
        }
    }
    let find = |name: &str| {
        opened
            .iter()
            .filter(|o| o.1.as_deref() == Some(name))
            .cloned()
            .collect::<Vec<_>>()
    };
    let root = opened[0].0;
    let cleanups = find("cleanups");
    assert_eq!(cleanups.len(), 1);
    assert_eq!(
        (cleanups[0].2, cleanups[0].3),
        (ScopeKind::Cleanups, Some(root))
    );
    let each = find("cleanup");
    assert_eq!(each.len(), 2, "a bar per cleanup");
    assert!(each.iter().all(|c| c.3 == Some(cleanups[0].0)));
    let daemons = find("daemons");
    assert_eq!(
        (daemons[0].2, daemons[0].3),
        (ScopeKind::Daemons, Some(root))
    );
    for (scope, ..) in &opened {
        assert!(ended.contains(scope), "scope #{scope} has an end");
    }
    let svg = trace.to_svg();
    assert!(svg.contains("cleanups #"), "the bar is labelled");
    assert!(trace.to_chrome_json().contains("\"cleanups\""));
}
