//! `Cancelled::reason()` as seen from the right scope: the scope that was
//! cancelled explicitly, its descendants, a parent reached through a link,
//! a deadline, a panic, a `try_scope` error, a scope that had ended, a
//! dropped scope future and a runtime shutdown; which reason wins when
//! several arrive; and the `Display` text of every reason.

use crate::support::{
    assert_clean, hang_guard, ms, on_workers, reason_of, runtime, secs, wait_clean, Clock, Counter,
    Log, Slot,
};
use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::time::{self, sleep};
use cancel_scope::{
    linked_scope, scope, shielded_scope, try_scope, CancelHandle, CancelReason, JoinHandle, Scope,
};
use futures_lite::future::poll_once;
use std::future::pending;
use std::time::Duration;

/// A name, and the reason its scope or task was cancelled with (`None`:
/// not cancelled).
type Named = (&'static str, Option<CancelReason>);

/// Cancel handles and task handles collected by name, to be examined once
/// everything has ended.
#[derive(Clone, Default)]
struct Seen {
    scopes: Log<(&'static str, CancelHandle)>,
    tasks: Log<(&'static str, JoinHandle<()>)>,
}

impl Seen {
    fn scope(&self, name: &'static str, s: &Scope) {
        self.scopes.push((name, s.cancel_handle()));
    }

    /// Spawns a task that never ends into `s`, keeping its handle.
    fn task(&self, name: &'static str, s: &Scope) {
        self.tasks.push((name, s.spawn(pending())));
    }

    /// Every scope's reason (`None`: not cancelled), then every task's
    /// (`None`: the task finished), each list sorted by name.
    fn reasons(&self, rt: &Runtime) -> (Vec<Named>, Vec<Named>) {
        let mut scopes: Vec<_> = self
            .scopes
            .drain()
            .into_iter()
            .map(|(name, h)| (name, reason_of(rt, &h)))
            .collect();
        let mut tasks: Vec<_> = self
            .tasks
            .drain()
            .into_iter()
            .map(|(name, h)| (name, rt.block_on(h).err().map(|c| c.reason().clone())))
            .collect();
        scopes.sort_by_key(|e| e.0);
        tasks.sort_by_key(|e| e.0);
        (scopes, tasks)
    }
}

/// The scope `cancel()` was called on reports `Explicit`, and so do its
/// own tasks; every scope nested in it, and their tasks, report
/// `Ancestor`.
#[test]
fn explicit_on_the_scope_ancestor_on_its_descendants() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let out = rt.block_on({
        let seen = seen.clone();
        scope(|a| async move {
            seen.scope("a", &a);
            seen.task("a task", &a);
            let ready = Event::new();
            let (seen2, ready2) = (seen.clone(), ready.clone());
            a.spawn(scope(|b| async move {
                seen2.scope("b", &b);
                seen2.task("b task", &b);
                b.spawn(scope(|c| async move {
                    seen2.scope("c", &c);
                    seen2.task("c task", &c);
                    ready2.set();
                    pending::<()>().await
                }));
                pending::<()>().await
            }));
            ready.wait().await;
            a.cancel();
        })
    });
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    let (scopes, tasks) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![
            ("a", Some(Explicit)),
            ("b", Some(Ancestor)),
            ("c", Some(Ancestor))
        ]
    );
    assert_eq!(
        tasks,
        vec![
            ("a task", Some(Explicit)),
            ("b task", Some(Ancestor)),
            ("c task", Some(Ancestor))
        ]
    );
    assert_clean(&rt);
}

/// A `CancelHandle` used from another thread cancels explicitly too.
#[test]
fn a_cancel_handle_from_another_thread_is_explicit() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(scope(|s| async move {
        let h = s.cancel_handle();
        std::thread::spawn(move || h.cancel()).join().unwrap();
        pending::<()>().await
    }));
    let err = out.unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Explicit);
    assert_eq!(
        err.to_string(),
        "cancelled: cancel() was called on this scope"
    );
    assert_clean(&rt);
}

/// Through links, parents report `LinkedChild`, up a chain of linked
/// scopes and no further than the first plain one; the other children of
/// a parent reached so report `Ancestor`.
#[test]
fn linked_parents_report_linked_child() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let out = rt.block_on({
        let seen = seen.clone();
        scope(|root| async move {
            seen.scope("root", &root);
            let a_out = scope(|a| async move {
                seen.scope("a", &a);
                seen.task("a task", &a);
                let ready = Event::new();
                let (seen2, ready2) = (seen.clone(), ready.clone());
                a.spawn(scope(|d| async move {
                    seen2.scope("d (plain sibling)", &d);
                    ready2.set();
                    pending::<()>().await
                }));
                let seen3 = seen.clone();
                a.spawn(linked_scope(|b| async move {
                    seen3.scope("b (linked)", &b);
                    seen3.task("b task", &b);
                    b.spawn(linked_scope(|c| async move {
                        seen3.scope("c (linked, cancelled)", &c);
                        ready.wait().await;
                        c.cancel();
                    }));
                    pending::<()>().await
                }));
                pending::<()>().await
            })
            .await;
            a_out.unwrap_err().reason().clone()
        })
    });
    // `a` is plain: the link stopped there, and the root went on.
    assert_eq!(out, Ok(CancelReason::LinkedChild));
    let (scopes, tasks) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![
            ("a", Some(LinkedChild)),
            ("b (linked)", Some(LinkedChild)),
            ("c (linked, cancelled)", Some(Explicit)),
            ("d (plain sibling)", Some(Ancestor)),
            ("root", None),
        ]
    );
    assert_eq!(
        tasks,
        vec![("a task", Some(LinkedChild)), ("b task", Some(LinkedChild))]
    );
    assert_clean(&rt);
}

/// Cancelling a parent never climbs: its linked child reports `Ancestor`,
/// and the scope above the parent is untouched.
#[test]
fn cancelling_a_parent_never_climbs_through_its_linked_child() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let out = rt.block_on({
        let seen = seen.clone();
        scope(|root| async move {
            seen.scope("root", &root);
            scope(|a| async move {
                seen.scope("a", &a);
                let ready = Event::new();
                let ready2 = ready.clone();
                a.spawn(linked_scope(|b| async move {
                    seen.scope("b (linked)", &b);
                    ready2.set();
                    pending::<()>().await
                }));
                ready.wait().await;
                a.cancel();
            })
            .await
            .is_err()
        })
    });
    // `a` ends `Err` if its cancel dropped the task that hosts `b`
    // while it was parked; `Ok` if that task was still in the poll
    // that set `ready`: `b` then saw the cancel in that poll and ended,
    // and the task returned `b`'s result, a task that completed.
    assert!(out.is_ok());
    let (scopes, _) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![
            ("a", Some(Explicit)),
            ("b (linked)", Some(Ancestor)),
            ("root", None)
        ]
    );
    assert_clean(&rt);
}

/// A deadline reports `Deadline { after }` on its scope and `Ancestor`
/// below it.
#[test]
fn deadline_on_the_scope_ancestor_below() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let seen = Seen::default();
    let out = on_workers(&rt, {
        let seen = seen.clone();
        scope(|s| async move {
            seen.scope("s", &s);
            seen.task("s task", &s);
            s.cancel_after(ms(250));
            scope(|inner| async move {
                seen.scope("inner", &inner);
                seen.task("inner task", &inner);
                sleep(secs(3600)).await;
            })
            .await
        })
    });
    let err = out.unwrap_err();
    assert_eq!(err.to_string(), "cancelled: deadline of 250ms passed");
    let (scopes, tasks) = seen.reasons(&rt);
    let d = CancelReason::Deadline { after: ms(250) };
    assert_eq!(
        scopes,
        vec![
            ("inner", Some(CancelReason::Ancestor)),
            ("s", Some(d.clone()))
        ]
    );
    assert_eq!(
        tasks,
        vec![
            ("inner task", Some(CancelReason::Ancestor)),
            ("s task", Some(d))
        ]
    );
    assert_clean(&rt);
}

/// A panicking task cancels its scope with `Panicked`: its own handle, its
/// siblings' handles and the scope report `Panicked`, nested scopes
/// `Ancestor`; the scope future then resumes the panic.
#[test]
fn a_panic_reports_panicked() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let panicker: Slot<JoinHandle<()>> = Slot::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on({
            let (seen, panicker) = (seen.clone(), panicker.clone());
            scope(|s| async move {
                seen.scope("s", &s);
                seen.task("sibling", &s);
                let ready = Event::new();
                let ready2 = ready.clone();
                let seen2 = seen.clone();
                s.spawn(scope(|inner| async move {
                    seen2.scope("inner", &inner);
                    ready2.set();
                    pending::<()>().await
                }));
                ready.wait().await;
                panicker.put(s.spawn(async { panic!("boom") }));
                pending::<()>().await
            })
        })
    }));
    let payload = caught.expect_err("the scope resumes the task's panic");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    let err = rt.block_on(panicker.take()).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Panicked);
    assert_eq!(err.to_string(), "cancelled: a task in the scope panicked");
    let (scopes, tasks) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![("inner", Some(Ancestor)), ("s", Some(Panicked))]
    );
    assert_eq!(tasks, vec![("sibling", Some(Panicked))]);
    assert_clean(&rt);
}

/// A panic in the body reports `Panicked` too.
#[test]
fn a_panicking_body_reports_panicked() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on({
            let seen = seen.clone();
            scope(|s| async move {
                seen.scope("s", &s);
                seen.task("task", &s);
                cancel_scope::task::yield_now().await;
                panic!("body boom");
            })
        })
    }));
    assert!(caught.is_err());
    let (scopes, tasks) = seen.reasons(&rt);
    assert_eq!(scopes, vec![("s", Some(CancelReason::Panicked))]);
    assert_eq!(tasks, vec![("task", Some(CancelReason::Panicked))]);
    assert_clean(&rt);
}

/// A `try_scope` error reports `Failed` on the scope, the failed task and
/// its siblings, and `Ancestor` below.
#[test]
fn a_try_scope_error_reports_failed() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let failed: Slot<JoinHandle<()>> = Slot::new();
    let out = rt.block_on({
        let (seen, failed) = (seen.clone(), failed.clone());
        try_scope(|s| async move {
            seen.scope("s", &s);
            seen.task("sibling", &s);
            let ready = Event::new();
            let (ready2, seen2) = (ready.clone(), seen.clone());
            s.spawn(async move {
                scope(|inner| async move {
                    seen2.scope("inner", &inner);
                    ready2.set();
                    pending::<()>().await
                })
                .await
                .ok();
                Ok(())
            });
            ready.wait().await;
            failed.put(s.spawn(async { Err::<(), _>("disk full") }));
            pending::<Result<(), &str>>().await
        })
    });
    assert_eq!(out, Ok(Err("disk full")));
    let err = rt.block_on(failed.take()).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Failed);
    assert_eq!(
        err.to_string(),
        "cancelled: a task in the scope returned an error"
    );
    let (scopes, tasks) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(scopes, vec![("inner", Some(Ancestor)), ("s", Some(Failed))]);
    assert_eq!(tasks, vec![("sibling", Some(Failed))]);
    assert_clean(&rt);
}

/// Spawning through a kept `Scope` after its scope has ended is refused
/// with `ScopeEnded`; a kept `CancelHandle` does nothing then.
#[test]
fn spawning_into_an_ended_scope_reports_scope_ended() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let kept: Slot<Scope> = Slot::new();
    let out = rt.block_on({
        let kept = kept.clone();
        scope(|s| async move {
            kept.put(s.clone());
            s.spawn(async { 1 }).await.unwrap()
        })
    });
    assert_eq!(out, Ok(1));
    let s = kept.take();
    let ran = Counter::new();
    let ran2 = ran.clone();
    let err = rt.block_on(s.spawn(async move { ran2.inc() })).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::ScopeEnded);
    assert_eq!(err.to_string(), "cancelled: the scope had already ended");
    assert_eq!(ran.get(), 0, "the refused future never ran");
    let h = s.cancel_handle();
    h.cancel();
    assert!(!h.is_cancelled());
    assert!(!s.is_cancelled());
    assert_clean(&rt);
}

/// Dropping a started scope future cancels the scope with `ScopeDropped`
/// (its tasks report it too) and nested scopes with `Ancestor`; the task
/// futures are dropped.
#[test]
fn dropping_a_scope_future_reports_scope_dropped() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen = Seen::default();
    let drops = Counter::new();
    rt.block_on({
        let (seen, drops) = (seen.clone(), drops.clone());
        async move {
            let ready = Event::new();
            let ready2 = ready.clone();
            let mut fut = Box::pin(scope(|s| async move {
                seen.scope("s", &s);
                seen.task("task", &s);
                for _ in 0..3 {
                    let guard = drops.on_drop();
                    s.spawn(async move {
                        let _guard = guard;
                        pending::<()>().await
                    });
                }
                let seen2 = seen.clone();
                s.spawn(scope(|inner| async move {
                    seen2.scope("inner", &inner);
                    ready2.set();
                    pending::<()>().await
                }));
                pending::<()>().await
            }));
            assert!(poll_once(&mut fut).await.is_none());
            ready.wait().await;
            drop(fut);
        }
    });
    wait_clean(&rt);
    let (scopes, tasks) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![("inner", Some(Ancestor)), ("s", Some(ScopeDropped))]
    );
    assert_eq!(tasks, vec![("task", Some(ScopeDropped))]);
    assert_eq!(drops.get(), 3);
    assert_clean(&rt);
}

/// Dropping the runtime cancels what is still alive with `Shutdown`, and
/// drops the task futures.
#[test]
fn dropping_the_runtime_reports_shutdown() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let drops = Counter::new();
    let task: Slot<JoinHandle<()>> = Slot::new();
    let handle: Slot<CancelHandle> = Slot::new();
    rt.block_on({
        let (drops, task, handle) = (drops.clone(), task.clone(), handle.clone());
        async move {
            let mut fut = Box::pin(scope(|s| async move {
                handle.put(s.cancel_handle());
                let guard = drops.on_drop();
                task.put(s.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await
                }));
                pending::<()>().await
            }));
            assert!(poll_once(&mut fut).await.is_none());
            // Neither finished nor dropped: only shutdown can end it.
            std::mem::forget(fut);
        }
    });
    assert_eq!(drops.get(), 0);
    drop(rt);
    assert_eq!(drops.get(), 1, "shutdown dropped the task's future");
    let h = handle.take();
    assert!(h.is_cancelled());
    let err = futures_lite::future::block_on(task.take()).unwrap_err();
    assert_eq!(err.reason(), &CancelReason::Shutdown);
    assert_eq!(err.to_string(), "cancelled: the runtime shut down");
    let why = futures_lite::future::block_on(h.cancelled());
    assert_eq!(why.reason(), &CancelReason::Shutdown);
}

/// A shield is not cancelled by its ancestor; its own `cancel()` reports
/// `Explicit`, and scopes nested in it follow the shield, not the
/// ancestor.
#[test]
fn reasons_around_a_shield() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let seen = Seen::default();
    let out = on_workers(&rt, {
        let seen = seen.clone();
        scope(|outer| async move {
            seen.scope("outer", &outer);
            let started = Event::new();
            let go = started.clone();
            let seen2 = seen.clone();
            outer.spawn(shielded_scope(move |sh| async move {
                seen2.scope("shield", &sh);
                let seen3 = seen2.clone();
                let _ = scope(|inner| async move {
                    seen3.scope("inside the shield", &inner);
                    go.set();
                    sleep(secs(1)).await;
                })
                .await;
                let seen4 = seen2.clone();
                let _ = scope(|inner| async move {
                    seen4.scope("inside the shield, cancelled", &inner);
                    sh.cancel();
                    pending::<()>().await
                })
                .await;
            }));
            started.wait().await;
            outer.cancel();
        })
    });
    assert!(out.is_err());
    let (scopes, _) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![
            ("inside the shield", None),
            ("inside the shield, cancelled", Some(Ancestor)),
            ("outer", Some(Explicit)),
            ("shield", Some(Explicit)),
        ]
    );
    assert_clean(&rt);
}

/// The first reason sticks: a deadline passing after `cancel()` does not
/// change it, nor does `cancel()` after a deadline; a scope cancelled
/// before its parent keeps `Explicit`, and one cancelled after its parent
/// keeps `Ancestor`.
#[test]
fn the_first_reason_sticks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let seen = Seen::default();
    let elapsed = on_workers(&rt, {
        let seen = seen.clone();
        async move {
            let t0 = time::now();
            let _ = scope(|s| {
                let seen = seen.clone();
                async move {
                    seen.scope("cancel, then deadline", &s);
                    s.cancel_after(secs(1));
                    s.cancel();
                    sleep(secs(2)).await;
                }
            })
            .await;
            let _ = scope(|s| {
                let seen = seen.clone();
                async move {
                    seen.scope("deadline, then cancel", &s);
                    s.cancel_after(secs(1));
                    let late = s.clone();
                    // A shield outlives the deadline, and cancels later.
                    s.spawn(shielded_scope(move |_| async move {
                        sleep(secs(2)).await;
                        late.cancel();
                    }));
                    sleep(secs(3600)).await;
                }
            })
            .await;
            let _ = scope(|parent| {
                let seen = seen.clone();
                async move {
                    seen.scope("parent", &parent);
                    let _ = scope(|child| async move {
                        seen.scope("child cancelled first", &child);
                        child.cancel();
                        parent.cancel();
                    })
                    .await;
                }
            })
            .await;
            let _ = scope(|parent| {
                let seen = seen.clone();
                async move {
                    seen.scope("parent 2", &parent);
                    let _ = scope(|child| async move {
                        seen.scope("child cancelled second", &child);
                        parent.cancel();
                        child.cancel();
                    })
                    .await;
                }
            })
            .await;
            time::now() - t0
        }
    });
    assert_eq!(elapsed, secs(2), "the shield kept its scope to 2s");
    let (scopes, _) = seen.reasons(&rt);
    use CancelReason::*;
    assert_eq!(
        scopes,
        vec![
            ("cancel, then deadline", Some(Explicit)),
            ("child cancelled first", Some(Explicit)),
            ("child cancelled second", Some(Ancestor)),
            ("deadline, then cancel", Some(Deadline { after: secs(1) })),
            ("parent", Some(Explicit)),
            ("parent 2", Some(Explicit)),
        ]
    );
    assert_clean(&rt);
}

/// The `Display` text of every reason, bare and inside `Cancelled`.
#[test]
fn display_strings() {
    use CancelReason::*;
    let cases = [
        (Explicit, "cancel() was called on this scope"),
        (Ancestor, "an enclosing scope was cancelled"),
        (LinkedChild, "a linked inner scope was cancelled"),
        (Deadline { after: ms(250) }, "deadline of 250ms passed"),
        (
            Deadline {
                after: Duration::from_secs(90),
            },
            "deadline of 90s passed",
        ),
        (Panicked, "a task in the scope panicked"),
        (Failed, "a task in the scope returned an error"),
        (Lost, "another entrant of the race finished first"),
        (ScopeDropped, "the scope's future was dropped"),
        (ScopeEnded, "the scope had already ended"),
        (Shutdown, "the runtime shut down"),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
    // `Cancelled` prefixes "cancelled: ", as observed from real scopes.
    let rt = runtime(Clock::Real, 1);
    let out = rt.block_on(scope(|s| async move {
        s.cancel();
        std::future::pending::<()>().await
    }));
    assert_eq!(
        out.unwrap_err().to_string(),
        "cancelled: cancel() was called on this scope"
    );
    let text = rt.block_on(async {
        let kept: Slot<String> = Slot::new();
        let k = kept.clone();
        let _ = scope(|outer| async move {
            outer.cancel();
            k.put(scope(|_| async {}).await.unwrap_err().to_string());
        })
        .await;
        kept.take()
    });
    assert_eq!(text, "cancelled: an enclosing scope was cancelled");
}
