//! Linked scopes: cancelling a `linked_scope` cancels the scope it was
//! opened in, and on up while the scopes on the way are linked; a plain
//! scope stops the climb, and cancelling a parent reaches a linked child
//! like any other.

use crate::support::{arrive_and_park, hang_guard, runtime, BoxFuture, Clock, Countdown, Probes};
use cancel_scope::sync::Event;
use cancel_scope::{linked_scope, scope, CancelReason, JoinHandle};
use futures_lite::future;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Handles of one parked task per scope, by scope name.
#[derive(Default, Clone)]
struct Witnesses(Arc<Mutex<HashMap<String, JoinHandle<()>>>>);

impl Witnesses {
    /// Spawns a task that parks forever into `s`, to witness its fate.
    fn plant(&self, name: impl Into<String>, s: &cancel_scope::Scope, parked: &Countdown) {
        let h = s.spawn(arrive_and_park(parked.clone()));
        self.0.lock().unwrap().insert(name.into(), h);
    }

    /// The cancel reason each witness ended with (all must have ended).
    fn reasons(&self) -> HashMap<String, CancelReason> {
        let handles = std::mem::take(&mut *self.0.lock().unwrap());
        handles
            .into_iter()
            .map(|(name, h)| {
                let reason = match future::block_on(h) {
                    Ok(()) => unreachable!("a witness never completes"),
                    Err(c) => c.reason().clone(),
                };
                (name, reason)
            })
            .collect()
    }
}

fn expected(pairs: &[(&str, CancelReason)]) -> HashMap<String, CancelReason> {
    pairs
        .iter()
        .map(|(n, r)| (n.to_string(), r.clone()))
        .collect()
}

/// `root (plain) > l0 (linked) > p (plain) > l1 > l2 > l3 (linked)`, each
/// opened in its parent's body, plus a plain scope `side` beside `l1`.
/// Cancelling `l3` climbs to `p` and stops there: `l0` and the root finish
/// with Ok, and `side` is reached from `p` as a descendant.
#[test]
fn chain_climbs_links_and_stops_at_a_plain_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let w = Witnesses::default();
    let parked = Countdown::new(5);
    let out = rt.block_on(scope(|_root| {
        let (w, parked) = (w.clone(), parked.clone());
        async move {
            let l0 = linked_scope(|_l0| async move {
                let p = scope(|p| async move {
                    w.plant("p", &p, &parked);
                    p.spawn(scope({
                        let (w, parked) = (w.clone(), parked.clone());
                        move |side| async move {
                            w.plant("side", &side, &parked);
                            std::future::pending::<()>().await
                        }
                    }));
                    let _ = linked_scope(|l1| async move {
                        w.plant("l1", &l1, &parked);
                        let _ = linked_scope(|l2| async move {
                            w.plant("l2", &l2, &parked);
                            let _ = linked_scope(|l3| async move {
                                w.plant("l3", &l3, &parked);
                                parked.wait().await;
                                l3.cancel();
                                std::future::pending::<()>().await
                            })
                            .await;
                            std::future::pending::<()>().await
                        })
                        .await;
                        std::future::pending::<()>().await
                    })
                    .await;
                    std::future::pending::<()>().await
                })
                .await;
                assert_eq!(p.unwrap_err().reason(), &CancelReason::LinkedChild);
                "l0 ran on"
            })
            .await;
            (l0, "root ran on")
        }
    }));
    assert_eq!(out, Ok((Ok("l0 ran on"), "root ran on")));
    assert_eq!(
        w.reasons(),
        expected(&[
            ("l3", CancelReason::Explicit),
            ("l2", CancelReason::LinkedChild),
            ("l1", CancelReason::LinkedChild),
            ("p", CancelReason::LinkedChild),
            ("side", CancelReason::Ancestor),
        ])
    );
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// Opens linked scope `level` in a task of the previous one; the last one
/// cancels itself once every witness is parked.
fn linked_chain(level: usize, depth: usize, w: Witnesses, parked: Countdown) -> BoxFuture {
    Box::pin(async move {
        let _ = linked_scope(move |s| async move {
            w.plant(format!("l{level}"), &s, &parked);
            if level + 1 < depth {
                s.spawn(linked_chain(level + 1, depth, w, parked));
            } else {
                parked.wait().await;
                s.cancel();
            }
            std::future::pending::<()>().await
        })
        .await;
    })
}

/// A chain of linked scopes opened in tasks, many levels deep, under a
/// plain scope `p` inside a plain root: the cancel of the innermost climbs
/// the whole chain to `p`, and the root completes.
#[test]
fn deep_chain_of_linked_scopes_in_tasks() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    const DEPTH: usize = 64;
    let w = Witnesses::default();
    let parked = Countdown::new(DEPTH + 2);
    let out = rt.block_on(scope(|root| {
        let (w, parked) = (w.clone(), parked.clone());
        async move {
            w.plant("root", &root, &parked);
            let p = scope(|p| async move {
                w.plant("p", &p, &parked);
                p.spawn(linked_chain(0, DEPTH, w, parked));
                std::future::pending::<()>().await
            })
            .await;
            assert_eq!(p.unwrap_err().reason(), &CancelReason::LinkedChild);
            assert!(!root.is_cancelled());
            // Finish the root: its own witness is cancelled by hand.
            root.cancel();
        }
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    let reasons = w.reasons();
    assert_eq!(
        reasons["root"],
        CancelReason::Explicit,
        "cancelled by hand only"
    );
    assert_eq!(reasons["p"], CancelReason::LinkedChild);
    for level in 0..DEPTH - 1 {
        assert_eq!(reasons[&format!("l{level}")], CancelReason::LinkedChild);
    }
    assert_eq!(reasons[&format!("l{}", DEPTH - 1)], CancelReason::Explicit);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// Cancelling the middle of a linked chain climbs up from there, and goes
/// down to the linked scopes below it as `Ancestor`.
#[test]
fn cancelling_the_middle_of_a_chain() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let w = Witnesses::default();
    let parked = Countdown::new(4);
    let out = rt.block_on(scope(|_top| {
        let (w, parked) = (w.clone(), parked.clone());
        async move {
            let p = scope(|p| async move {
                w.plant("p", &p, &parked);
                let _ = linked_scope(|a| async move {
                    w.plant("a", &a, &parked);
                    let (tx, rx) = async_channel::bounded(1);
                    let (w2, parked2) = (w.clone(), parked.clone());
                    a.spawn(linked_scope(move |b| async move {
                        let (w, parked) = (w2, parked2);
                        w.plant("b", &b, &parked);
                        b.spawn(linked_scope(move |c| async move {
                            w.plant("c", &c, &parked);
                            std::future::pending::<()>().await
                        }));
                        tx.send(b.clone()).await.unwrap();
                        std::future::pending::<()>().await
                    }));
                    let b = rx.recv().await.unwrap();
                    parked.wait().await;
                    b.cancel();
                    std::future::pending::<()>().await
                })
                .await;
            })
            .await;
            p.map_err(|c| c.reason().clone())
        }
    }));
    assert_eq!(out, Ok(Err(CancelReason::LinkedChild)));
    assert_eq!(
        w.reasons(),
        expected(&[
            ("p", CancelReason::LinkedChild),
            ("a", CancelReason::LinkedChild),
            ("b", CancelReason::Explicit),
            ("c", CancelReason::Ancestor),
        ])
    );
}

/// Cancelling a scope cancels its linked children like any child
/// (`Ancestor`), and nothing above it.
#[test]
fn parent_cancel_reaches_linked_children() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let w = Witnesses::default();
    let parked = Countdown::new(3);
    let out = rt.block_on(scope(|_top| {
        let (w, parked) = (w.clone(), parked.clone());
        async move {
            let p = scope(|p| async move {
                w.plant("p", &p, &parked);
                p.spawn(linked_scope({
                    let (w, parked) = (w.clone(), parked.clone());
                    move |a| async move {
                        w.plant("a", &a, &parked);
                        std::future::pending::<()>().await
                    }
                }));
                let (w2, parked2) = (w.clone(), parked.clone());
                p.spawn(linked_scope(move |b| async move {
                    w2.plant("b", &b, &parked2);
                    std::future::pending::<()>().await
                }));
                parked.wait().await;
                p.cancel();
            })
            .await;
            p.map_err(|c| c.reason().clone())
        }
    }));
    assert_eq!(out, Ok(Err(CancelReason::Explicit)));
    assert_eq!(
        w.reasons(),
        expected(&[
            ("p", CancelReason::Explicit),
            ("a", CancelReason::Ancestor),
            ("b", CancelReason::Ancestor),
        ])
    );
    assert_eq!(rt.live_scopes(), 0);
}

/// A linked scope opened inside an already cancelled scope starts
/// cancelled; its body is never polled.
#[test]
fn linked_scope_opened_in_a_cancelled_scope_starts_cancelled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let probes = Probes::new(1);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            s.cancel();
            let inner = linked_scope(|_| probes.wrap(0, async {})).await;
            assert_eq!(inner.unwrap_err().reason(), &CancelReason::Ancestor);
        }
    }));
    // The outer body went on without suspending and had no task: the
    // cancel interrupted nothing of it, so its value stands.
    assert_eq!(out, Ok(()));
    assert_eq!(probes.total_polls(), 0);
    probes.assert_each_dropped_once();
}

/// A linked scope that completes normally, or whose future is dropped
/// unfinished, does not cancel its parent: only `cancel()` crosses a link.
#[test]
fn only_cancel_crosses_a_link() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let probes = Probes::new(2);
    let out = rt.block_on(scope(|p| {
        let probes = probes.clone();
        async move {
            let done = linked_scope(|l| async move { l.spawn(async { 4 }).await.unwrap() }).await;
            assert_eq!(done, Ok(4));
            let parked = Countdown::new(2);
            let abandoned = linked_scope({
                let (probes, parked) = (probes.clone(), parked.clone());
                move |l| async move {
                    l.spawn(probes.wrap(0, arrive_and_park(parked.clone())));
                    probes.wrap(1, arrive_and_park(parked)).await
                }
            });
            let first = future::or(async { abandoned.await.map(|_| "linked") }, async {
                parked.wait().await;
                Ok("parked")
            })
            .await;
            assert_eq!(first, Ok("parked"));
            assert!(
                !p.is_cancelled(),
                "dropping a linked scope cancelled its parent"
            );
            p.spawn(async { "parent ran on" }).await.unwrap()
        }
    }));
    assert_eq!(out, Ok("parent ran on"));
    probes.assert_each_dropped_once();
    assert_eq!(rt.live_scopes(), 0);
}

/// A linked scope with no parent (opened outside any scope) cancels only
/// itself, and the runtime serves the next scopes normally.
#[test]
fn linked_root_scope_cancels_only_itself() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(linked_scope(|s| async move {
        s.spawn(std::future::pending::<()>());
        s.cancel();
    }));
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    let ev = Event::new();
    let out = rt.block_on(scope(|s| async move {
        let ev2 = ev.clone();
        let t = s.spawn(async move {
            ev2.wait().await;
            1
        });
        ev.set();
        t.await
    }));
    assert_eq!(out, Ok(Ok(1)));
    assert_eq!(rt.live_scopes(), 0);
}
