//! `Scope::cancelled()` and `CancelHandle::cancelled()`: they resolve to
//! the scope's `Cancelled` value, with its reason, when waited on from
//! another thread, from a shield inside the scope, or from an enclosing
//! scope; at once if the scope is already cancelled; never if the scope
//! ends uncancelled; and a task inside the scope never sees its own scope's
//! cancellation, because it is dropped first.

use crate::support::{
    assert_clean, first_pending, hang_guard, ms, on_workers, runtime, secs, Clock, Counter, Log,
    Slot,
};
use cancel_scope::sync::Event;
use cancel_scope::time::{self, sleep, timeout};
use cancel_scope::{linked_scope, scope, shielded_scope, CancelHandle, CancelReason, Cancelled};
use futures_lite::future::{block_on as wait_here, poll_once};
use std::future::pending;
use std::sync::mpsc;
use std::thread;

/// Starts a thread that waits for `h`'s scope to be cancelled; returns it
/// once its wait is registered (it has returned `Pending` once).
fn watch(h: CancelHandle) -> thread::JoinHandle<Cancelled> {
    let (tx, rx) = mpsc::channel();
    let watcher = thread::spawn(move || wait_here(first_pending(h.cancelled(), tx)));
    rx.recv().expect("the watcher registered its wait");
    watcher
}

/// From another thread, with each reason: `Explicit` for the scope
/// cancelled, `Deadline` for a deadline, `Ancestor` for a child of the
/// cancelled scope, `LinkedChild` for the parent of a cancelled linked
/// scope.
#[test]
fn resolves_on_another_thread_with_the_reason() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);

    // Explicit.
    let watcher: Slot<thread::JoinHandle<Cancelled>> = Slot::new();
    let _ = rt.block_on({
        let watcher = watcher.clone();
        scope(|s| async move {
            watcher.put(watch(s.cancel_handle()));
            s.cancel();
        })
    });
    let why = watcher.take().join().unwrap();
    assert_eq!(why.reason(), &CancelReason::Explicit);
    assert_eq!(
        why.to_string(),
        "cancelled: cancel() was called on this scope"
    );

    // Deadline.
    let _ = rt.block_on({
        let watcher = watcher.clone();
        scope(|s| async move {
            watcher.put(watch(s.cancel_handle()));
            s.cancel_after(ms(20));
            pending::<()>().await
        })
    });
    let why = watcher.take().join().unwrap();
    assert_eq!(why.reason(), &CancelReason::Deadline { after: ms(20) });
    assert_eq!(why.to_string(), "cancelled: deadline of 20ms passed");

    // Ancestor: watch a child, cancel its parent.
    let _ = rt.block_on({
        let watcher = watcher.clone();
        scope(|s| async move {
            let ready = Event::new();
            let ready2 = ready.clone();
            s.spawn(scope(move |child| async move {
                watcher.put(watch(child.cancel_handle()));
                ready2.set();
                pending::<()>().await
            }));
            ready.wait().await;
            s.cancel();
        })
    });
    let why = watcher.take().join().unwrap();
    assert_eq!(why.reason(), &CancelReason::Ancestor);

    // LinkedChild: watch the parent, cancel a linked child.
    let _ = rt.block_on({
        let watcher = watcher.clone();
        scope(|s| async move {
            watcher.put(watch(s.cancel_handle()));
            s.spawn(linked_scope(|child| async move { child.cancel() }));
            pending::<()>().await
        })
    });
    let why = watcher.take().join().unwrap();
    assert_eq!(why.reason(), &CancelReason::LinkedChild);
    assert_clean(&rt);
}

/// `Scope::cancelled()` works across threads as well, and every one of
/// many waiters is woken.
#[test]
fn every_waiter_is_woken() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let watchers: Slot<Vec<thread::JoinHandle<Cancelled>>> = Slot::new();
    let _ = rt.block_on({
        let watchers = watchers.clone();
        scope(|s| async move {
            let mut ws = Vec::new();
            for i in 0..8 {
                if i % 2 == 0 {
                    ws.push(watch(s.cancel_handle()));
                } else {
                    let (tx, rx) = mpsc::channel();
                    let watched = s.clone();
                    ws.push(thread::spawn(move || {
                        wait_here(first_pending(watched.cancelled(), tx))
                    }));
                    rx.recv().unwrap();
                }
            }
            watchers.put(ws);
            s.cancel();
        })
    });
    for w in watchers.take() {
        assert_eq!(w.join().unwrap().reason(), &CancelReason::Explicit);
    }
    assert_clean(&rt);
}

/// A shield inside the scope sees the scope's cancellation, with the
/// reason and at the right virtual time, and can then clean up while the
/// scope waits for it.
#[test]
fn resolves_inside_a_shield() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let (out, elapsed) = on_workers(&rt, {
        let log = log.clone();
        async move {
            let t0 = time::now();
            let out = scope(|s| async move {
                s.cancel_after(secs(1));
                let watched = s.clone();
                s.spawn(shielded_scope(move |_| async move {
                    let why = watched.cancelled().await;
                    log.push((why.to_string(), time::now() - t0));
                    sleep(ms(500)).await;
                    log.push(("cleaned up".to_string(), time::now() - t0));
                }));
                sleep(secs(3600)).await;
            })
            .await;
            (out, time::now() - t0)
        }
    });
    assert!(out.is_err());
    assert_eq!(elapsed, ms(1500));
    assert_eq!(
        log.entries(),
        vec![
            ("cancelled: deadline of 1s passed".to_string(), secs(1)),
            ("cleaned up".to_string(), ms(1500)),
        ]
    );
    assert_clean(&rt);
}

/// An enclosing scope can wait for a nested scope's cancellation.
#[test]
fn resolves_in_an_enclosing_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let out = on_workers(&rt, async {
        let t0 = time::now();
        scope(|s| async move {
            let handle: Slot<CancelHandle> = Slot::new();
            let ready = Event::new();
            let (h, r) = (handle.clone(), ready.clone());
            s.spawn(scope(move |inner| async move {
                h.put(inner.cancel_handle());
                inner.cancel_after(secs(2));
                r.set();
                pending::<()>().await
            }));
            ready.wait().await;
            let why = handle.take().cancelled().await;
            (why.reason().clone(), time::now() - t0)
        })
        .await
    });
    assert_eq!(
        out,
        Ok((CancelReason::Deadline { after: secs(2) }, secs(2)))
    );
    assert_clean(&rt);
}

/// Already cancelled: the future is ready at its first poll, even once the
/// scope has ended.
#[test]
fn resolves_at_once_when_already_cancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let kept: Slot<CancelHandle> = Slot::new();
    let _ = rt.block_on({
        let kept = kept.clone();
        scope(|s| async move {
            kept.put(s.cancel_handle());
            s.cancel();
            let now = poll_once(s.cancelled()).await;
            assert_eq!(
                now.map(|c| c.reason().clone()),
                Some(CancelReason::Explicit)
            );
        })
    });
    let h = kept.take();
    let later = rt.block_on(poll_once(h.cancelled()));
    assert_eq!(
        later.map(|c| c.reason().clone()),
        Some(CancelReason::Explicit)
    );
    assert_clean(&rt);
}

/// A scope that ends uncancelled never resolves its waiters: neither one
/// already waiting when it ends, nor one that starts waiting after.
#[test]
fn never_resolves_when_the_scope_ends_uncancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let (during, after, elapsed) = on_workers(&rt, async {
        let t0 = time::now();
        let handle: Slot<CancelHandle> = Slot::new();
        let during = scope(|s| async move {
            let (h, ready) = (handle.clone(), Event::new());
            let r = ready.clone();
            s.spawn(async move {
                let out = scope(|quiet| async move {
                    h.put(quiet.cancel_handle());
                    r.set();
                    sleep(secs(1)).await;
                })
                .await;
                assert!(out.is_ok());
            });
            ready.wait().await;
            // Waiting while the watched scope ends, uncancelled, at 1s.
            timeout(secs(3600), handle.take().cancelled()).await
        })
        .await
        .unwrap();
        let kept = {
            let k: Slot<CancelHandle> = Slot::new();
            let k2 = k.clone();
            scope(|s| async move { k2.put(s.cancel_handle()) })
                .await
                .unwrap();
            k.take()
        };
        let after = timeout(secs(60), kept.cancelled()).await;
        (during, after, time::now() - t0)
    });
    assert!(
        during.is_err(),
        "resolved for a scope that ended uncancelled"
    );
    assert!(after.is_err());
    assert_eq!(elapsed, secs(3660));
    assert_clean(&rt);
}

/// A task inside the scope waiting for its own scope's cancellation is
/// dropped by that cancellation: it never sees the value. (On a paused
/// clock, the body's sleep ends only once every task is idle, so the
/// waiting task is parked when the cancel comes, and it is dropped by the
/// cancelling call itself.)
#[test]
fn a_task_inside_the_scope_never_sees_it() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let saw = Counter::new();
    let drops = Counter::new();
    let at_cancel: Slot<usize> = Slot::new();
    let out = on_workers(&rt, {
        let (saw, drops, at_cancel) = (saw.clone(), drops.clone(), at_cancel.clone());
        scope(|s| async move {
            let (watched, guard) = (s.clone(), drops.on_drop());
            s.spawn(async move {
                let _guard = guard;
                watched.cancelled().await;
                saw.inc();
            });
            sleep(ms(1)).await;
            s.cancel();
            at_cancel.put(drops.get());
        })
    });
    assert!(out.is_err());
    assert_eq!(at_cancel.take(), 1, "dropped by the cancel() call");
    assert_eq!(saw.get(), 0);
    assert_eq!(drops.get(), 1);
    assert_clean(&rt);
}

/// A shield is not cancelled by its ancestor, so waiting on the shield's
/// own `cancelled()` goes on; waiting on the ancestor's resolves.
#[test]
fn a_shields_own_wait_is_not_woken_by_its_ancestor() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Paused, 1);
    let log = Log::new();
    let elapsed = on_workers(&rt, {
        let log = log.clone();
        async move {
            let t0 = time::now();
            let _ = scope(|s| async move {
                let watched = s.clone();
                let started = Event::new();
                let go = started.clone();
                s.spawn(shielded_scope(move |sh| async move {
                    go.set();
                    let own = timeout(secs(5), sh.cancelled()).await;
                    log.push(format!("own: {}", own.is_ok()));
                    let outer = watched.cancelled().await;
                    log.push(format!("outer: {:?}", outer.reason()));
                }));
                started.wait().await;
                s.cancel();
            })
            .await;
            time::now() - t0
        }
    });
    assert_eq!(
        log.entries(),
        vec!["own: false".to_string(), "outer: Explicit".to_string()]
    );
    assert_eq!(elapsed, secs(5));
    assert_clean(&rt);
}

/// Waiters dropped before the cancel do no harm; the others still resolve.
#[test]
fn dropped_waiters_are_forgotten() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(scope(|root| async move {
        let handle: Slot<CancelHandle> = Slot::new();
        let ready = Event::new();
        let (h, r) = (handle.clone(), ready.clone());
        root.spawn(scope(move |s| async move {
            h.put(s.cancel_handle());
            r.set();
            pending::<()>().await
        }));
        ready.wait().await;
        let h = handle.take();
        let mut waits: Vec<_> = (0..100).map(|_| Box::pin(h.cancelled())).collect();
        for w in &mut waits {
            assert!(poll_once(w).await.is_none());
        }
        // Drop every other one, then poll the rest again.
        let mut kept: Vec<_> = waits.into_iter().step_by(2).collect();
        for w in &mut kept {
            assert!(poll_once(w).await.is_none());
        }
        h.cancel();
        let mut reasons = Vec::new();
        for w in kept {
            reasons.push(w.await.reason().clone());
        }
        reasons
    }));
    assert_eq!(out, Ok(vec![CancelReason::Explicit; 50]));
    assert_clean(&rt);
}
