//! Supervision and handles: a supervisor scope keeps a task's panic with
//! the task; one task can be cancelled alone; a cancel can carry the
//! caller's reason; a handle can exist before its scope opens; scopes can
//! be named.

use crate::support::{
    arrive_and_park, expect_panic, hang_guard, runtime, wait_until, Clock, Countdown, Counter,
    Probes, Slot,
};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::{scope, supervisor_scope, CancelHandle, CancelReason, JoinHandle};
use std::sync::Arc;
use std::thread;

// ---------------------------------------------------------------------
// Supervisor scopes.
// ---------------------------------------------------------------------

/// A panicking task of a supervisor scope stops alone: its siblings keep
/// running to completion, the scope is not cancelled, and the payload
/// comes out of the task's handle whole, once.
#[test]
fn a_supervisors_task_panics_alone_and_its_payload_comes_out_whole() {
    #[derive(Debug, PartialEq)]
    struct BadRequest {
        code: u16,
        body: Vec<u8>,
    }
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let siblings = Counter::new();
    let out = rt.block_on(supervisor_scope(|s| {
        let siblings = siblings.clone();
        async move {
            let go = Event::new();
            let mut good: Vec<JoinHandle<u32>> = Vec::new();
            for i in 0..4 {
                let (go, siblings) = (go.clone(), siblings.clone());
                good.push(s.spawn(async move {
                    go.wait().await;
                    yield_now().await;
                    siblings.inc();
                    i
                }));
            }
            let bad = s.spawn(async {
                std::panic::panic_any(BadRequest {
                    code: 400,
                    body: vec![1, 2, 3],
                })
            });
            let err = bad.await.unwrap_err();
            assert_eq!(err.reason(), &CancelReason::Panicked);
            assert!(!s.is_cancelled(), "the panic did not cancel the scope");
            let payload = err.take_panic().expect("the payload");
            assert!(err.take_panic().is_none(), "taken once");
            let payload = payload.downcast::<BadRequest>().expect("the type thrown");
            go.set();
            let mut sum = 0;
            for h in good {
                sum += h.await.expect("a sibling ran on");
            }
            (*payload, sum)
        }
    }));
    let (payload, sum) = out.expect("the supervisor was not cancelled");
    assert_eq!(
        payload,
        BadRequest {
            code: 400,
            body: vec![1, 2, 3]
        }
    );
    assert_eq!((sum, siblings.get()), (6, 4));
    assert_eq!(rt.live_tasks(), 0);
}

/// A panic in a supervisor's own body still cancels it and is resumed.
#[test]
fn a_panic_in_a_supervisors_body_still_cancels_it() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let drops = Counter::new();
    let message = expect_panic(|| {
        rt.block_on(supervisor_scope(|s| {
            let guard = drops.on_drop();
            async move {
                s.spawn(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                });
                yield_now().await;
                panic!("the supervisor itself failed");
            }
        }))
    });
    assert_eq!(message, "the supervisor itself failed");
    assert_eq!(drops.get(), 1, "the sibling was cancelled");
}

/// The plain scope keeps its rule: a task's panic cancels the siblings
/// and is resumed by the scope.
#[test]
fn a_plain_scopes_task_panic_still_cancels_the_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            s.spawn(async { panic!("boom") });
            std::future::pending::<()>().await
        }))
    });
    assert_eq!(message, "boom");
}

// ---------------------------------------------------------------------
// Cancelling one task.
// ---------------------------------------------------------------------

/// `JoinHandle::cancel` drops exactly that task's future, once; the
/// handle resolves to `Err(Cancelled)` with `Explicit`; the scope and the
/// other tasks go on; a second cancel and a cancel after the end do
/// nothing.
#[test]
fn cancelling_one_task_drops_exactly_its_future_once() {
    const N: usize = 5;
    let _hang = hang_guard();
    // One worker: once a later task has run, every earlier poll has
    // returned, so task 2 is idle when it is cancelled.
    let rt = runtime(Clock::Real, 1);
    let probes = Probes::new(N);
    let out = rt.block_on(scope(|s| {
        let probes = probes.clone();
        async move {
            let parked = Countdown::new(N);
            let handles: Vec<_> = (0..N)
                .map(|i| s.spawn(probes.wrap(i, arrive_and_park(parked.clone()))))
                .collect();
            parked.wait().await;
            s.spawn(async {}).await.unwrap();
            handles[2].cancel();
            handles[2].cancel();
            assert_eq!(
                probes[2].drops(),
                1,
                "the idle task's future dropped at once"
            );
            assert!(handles[2].is_finished());
            assert!(!s.is_cancelled());
            let others: usize = (0..N).filter(|&i| i != 2).map(|i| probes[i].drops()).sum();
            assert_eq!(others, 0, "no other task was touched");
            let mut handles = handles;
            let cancelled = handles.remove(2).await.unwrap_err();
            assert_eq!(cancelled.reason(), &CancelReason::Explicit);
            // The others still run: cancel them one by one too.
            for h in &handles {
                h.cancel();
            }
            for h in handles {
                assert!(h.await.is_err());
            }
            "the scope went on"
        }
    }));
    assert_eq!(out, Ok("the scope went on"));
    probes.assert_each_dropped_once();
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// A task cancelled alone while it is being polled is dropped by its
/// runner when the poll returns, and its handle still says `Explicit`;
/// a `TaskCancelHandle` given to another thread does it.
#[test]
fn cancelling_a_running_task_from_another_thread() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let drops = Counter::new();
    let out = rt.block_on(scope(|s| {
        let drops = drops.clone();
        async move {
            let in_poll = Event::new();
            let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let task = {
                let (in_poll, release) = (in_poll.clone(), release.clone());
                let guard = drops.on_drop();
                s.spawn(async move {
                    let _guard = guard;
                    in_poll.set();
                    while !release.load(std::sync::atomic::Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                    yield_now().await;
                    unreachable!("cancelled while polled: never polled again");
                })
            };
            in_poll.wait().await;
            let canceller = task.cancel_handle();
            thread::spawn(move || canceller.cancel()).join().unwrap();
            assert_eq!(drops.get(), 0, "a running task is left to its runner");
            release.store(true, std::sync::atomic::Ordering::SeqCst);
            task.await.unwrap_err().reason().clone()
        }
    }));
    assert_eq!(out, Ok(CancelReason::Explicit));
    assert_eq!(drops.get(), 1);
    assert_eq!(rt.live_tasks(), 0);
}

/// A task cancelled alone whose scope is then cancelled, and a scope
/// cancelled while tasks are cancelled one by one from another thread:
/// every future is dropped once and the counts settle.
#[test]
fn one_task_cancels_racing_the_scopes_cancel() {
    const N: usize = 64;
    const ROUNDS: usize = if cfg!(miri) { 2 } else { 50 };
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    for _ in 0..ROUNDS {
        let probes = Probes::new(N);
        let handles: Slot<Vec<cancel_scope::TaskCancelHandle>> = Slot::new();
        let out = rt.block_on(scope(|s| {
            let (probes, handles) = (probes.clone(), handles.clone());
            async move {
                let parked = Countdown::new(N);
                let hs: Vec<_> = (0..N)
                    .map(|i| s.spawn(probes.wrap(i, arrive_and_park(parked.clone()))))
                    .collect();
                parked.wait().await;
                let cancels: Vec<_> = hs.iter().map(|h| h.cancel_handle()).collect();
                let t = thread::spawn(move || cancels.iter().for_each(|c| c.cancel()));
                s.cancel();
                t.join().unwrap();
                handles.put(hs.iter().map(|h| h.cancel_handle()).collect());
            }
        }));
        // `Ok` if the tasks' own cancels stopped them all before the
        // scope's cancel came (it then interrupted nothing), else `Err`.
        if let Err(cancelled) = out {
            assert_eq!(cancelled.reason(), &CancelReason::Explicit);
        }
        probes.assert_each_dropped_once();
        assert!(handles.take().iter().all(|h| h.is_finished()));
        assert_eq!(rt.live_tasks(), 0);
    }
}

// ---------------------------------------------------------------------
// Cancelling with a reason.
// ---------------------------------------------------------------------

#[derive(Debug)]
struct Overloaded {
    queue: usize,
}

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "overloaded: {} requests queued", self.queue)
    }
}

impl std::error::Error for Overloaded {}

/// A user's reason reaches every awaiter of the cancelled subtree: the
/// scope, its tasks, a nested scope and its tasks, and `cancelled()`
/// waiters; it downcasts to the type given; a later reason does not
/// replace it; `Display` shows it.
#[test]
fn a_cancel_reason_reaches_the_whole_subtree_and_downcasts() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let handles: Slot<Vec<JoinHandle<()>>> = Slot::new();
    let nested: Slot<JoinHandle<Result<(), cancel_scope::Cancelled>>> = Slot::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = rt.block_on(scope(|s| {
        let (handles, nested) = (handles.clone(), nested.clone());
        async move {
            let inner_ready = Countdown::new(1);
            let ready = inner_ready.clone();
            let mut hs = vec![s.spawn(std::future::pending::<()>())];
            let inner_handle = Slot::new();
            let ih = inner_handle.clone();
            // The host task is known parked (its future returned
            // `Pending`) before the cancel, so the cancel cuts it
            // short rather than letting it finish in its poll.
            let (parked_tx, parked_rx) = std::sync::mpsc::channel();
            nested.put(s.spawn(crate::support::first_pending(
                scope(move |inner| async move {
                    ih.put(inner.spawn(std::future::pending::<()>()));
                    ready.arrive();
                    std::future::pending::<()>().await
                }),
                parked_tx,
            )));
            inner_ready.wait().await;
            parked_rx.recv().unwrap();
            hs.push(inner_handle.take());
            handles.put(hs);
            let watched = s.cancel_handle();
            let watcher =
                thread::spawn(move || cancel_scope::runtime::block_on(watched.cancelled()));
            tx.send(watcher).unwrap();
            yield_now().await;
            s.cancel_with(Overloaded { queue: 12 });
            s.cancel_with("a later reason");
            s.cancel();
        }
    }));
    let top = out.unwrap_err();
    let check = |c: &cancel_scope::Cancelled, reason: CancelReason| {
        assert_eq!(c.reason(), &reason, "{c:?}");
        let cause = c.cause().expect("the reason reached it");
        assert_eq!(cause.downcast_ref::<Overloaded>().unwrap().queue, 12);
    };
    check(&top, CancelReason::Explicit);
    assert_eq!(
        top.to_string(),
        "cancelled: cancel() was called on this scope: overloaded: 12 requests queued"
    );
    let watcher = rx.recv().unwrap().join().unwrap();
    check(&watcher, CancelReason::Explicit);
    let mut hs = handles.take();
    let inner_task = hs.pop().unwrap();
    check(
        &rt.block_on(hs.pop().unwrap()).unwrap_err(),
        CancelReason::Explicit,
    );
    check(
        &rt.block_on(inner_task).unwrap_err(),
        CancelReason::Ancestor,
    );
    // The nested scope's own host task was cancelled with the outer one.
    check(
        &rt.block_on(nested.take()).unwrap_err(),
        CancelReason::Explicit,
    );
    // A clone keeps the cause, and compares equal.
    let copy = top.clone();
    check(&copy, CancelReason::Explicit);
    assert_eq!(copy, top);
}

/// A linked scope's reason climbs with the link: the parent reports
/// `LinkedChild` and the same cause.
#[test]
fn a_cancel_reason_climbs_links() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(scope(|outer| async move {
        outer.spawn(cancel_scope::linked_scope(|inner| async move {
            inner.cancel_with("the link carries this");
            std::future::pending::<()>().await
        }));
        std::future::pending::<()>().await
    }));
    let parent = out.unwrap_err();
    assert_eq!(parent.reason(), &CancelReason::LinkedChild);
    assert_eq!(parent.cause().unwrap().to_string(), "the link carries this");
}

/// A scope opened under a scope already cancelled with a reason is born
/// cancelled with it (`Ancestor`, same cause).
#[test]
fn a_scope_opened_late_is_born_with_the_reason() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let late = Slot::new();
    let out = rt.block_on(scope(|s| {
        let late = late.clone();
        async move {
            s.cancel_with("closing");
            // Runs within this poll: the nested scope opens, born
            // cancelled, and ends before the body's next suspension.
            late.put(scope(|_| async {}).await.unwrap_err());
            std::future::pending::<()>().await // the body stops here
        }
    }));
    assert_eq!(out.unwrap_err().cause().unwrap().to_string(), "closing");
    let late = late.take();
    assert_eq!(late.reason(), &CancelReason::Ancestor);
    assert_eq!(late.cause().unwrap().to_string(), "closing");
}

// ---------------------------------------------------------------------
// A handle before the scope opens.
// ---------------------------------------------------------------------

/// A handle made before its scope, cancelled before the scope opens: the
/// scope opens cancelled (its body's closure sees it cancelled, and the
/// body future is dropped unpolled), and a `cancelled()` future taken
/// before the open resolves.
#[test]
fn a_handle_cancelled_before_its_scope_opens() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let handle = CancelHandle::new();
    assert!(!handle.is_cancelled());
    let waiting = {
        let h = handle.clone();
        thread::spawn(move || cancel_scope::runtime::block_on(h.cancelled()))
    };
    handle.cancel_with("not needed any more");
    assert!(handle.is_cancelled());
    let (polled, opened_cancelled) = (Counter::new(), Counter::new());
    let out = rt.block_on(
        scope(|s| {
            if s.is_cancelled() {
                opened_cancelled.inc();
            }
            let polled = polled.clone();
            async move {
                polled.inc();
            }
        })
        .with_cancel_handle(&handle),
    );
    let err = out.unwrap_err();
    assert_eq!(err.cause().unwrap().to_string(), "not needed any more");
    assert_eq!((opened_cancelled.get(), polled.get()), (1, 0));
    let seen = waiting.join().unwrap();
    assert_eq!(seen.cause().unwrap().to_string(), "not needed any more");
}

/// A handle made before its scope and held by another thread from the
/// start cancels the scope once it runs; its `cancelled()` future, taken
/// before the open, resolves then.
#[test]
fn a_handle_made_before_its_scope_cancels_it_later() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let handle = CancelHandle::new();
    let started = Event::new();
    let watcher = {
        let h = handle.clone();
        thread::spawn(move || cancel_scope::runtime::block_on(h.cancelled()))
    };
    let canceller = {
        let (h, started) = (handle.clone(), started.clone());
        thread::spawn(move || {
            cancel_scope::runtime::block_on(started.wait());
            h.cancel();
        })
    };
    let out = rt.block_on(
        scope(|_| async move {
            started.set();
            std::future::pending::<()>().await
        })
        .with_cancel_handle(&handle),
    );
    canceller.join().unwrap();
    assert_eq!(out.unwrap_err().reason(), &CancelReason::Explicit);
    assert_eq!(watcher.join().unwrap().reason(), &CancelReason::Explicit);
    assert!(handle.is_cancelled());
}

/// A handle opens one scope; a scope's own handle cannot open another.
#[test]
fn a_handle_opens_one_scope_only() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let handle = CancelHandle::new();
    rt.block_on(scope(|_| async {}).with_cancel_handle(&handle))
        .unwrap();
    let message = expect_panic(|| rt.block_on(scope(|_| async {}).with_cancel_handle(&handle)));
    assert!(message.contains("opens one scope only"), "{message}");
    let own = rt
        .block_on(scope(|s| async move { s.cancel_handle() }))
        .unwrap();
    let message = expect_panic(|| rt.block_on(scope(|_| async {}).with_cancel_handle(&own)));
    assert!(message.contains("made by `CancelHandle::new`"), "{message}");
}

// ---------------------------------------------------------------------
// Named scopes.
// ---------------------------------------------------------------------

/// A name shows in the tree view, beside the location, and in `Debug` of
/// the scope's `Cancelled` values and `Scope` handle.
#[test]
fn names_show_in_the_tree_view_and_in_debug() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, 2));
    let rt2 = rt.clone();
    let out = rt.block_on(
        scope(|s| async move {
            let ready = Countdown::new(1);
            let r = ready.clone();
            s.spawn(
                scope(|inner| async move {
                    // A spawn publishes the scope before its task
                    // can arrive: the view then surely shows it.
                    drop(inner.spawn(async move { r.arrive() }));
                    std::future::pending::<()>().await
                })
                .named(format!("connection {}", 7)),
            );
            ready.wait().await;
            let tree = rt2.scope_tree();
            let names: Vec<_> = tree.scopes().iter().map(|s| s.name()).collect();
            assert_eq!(names, [Some("server"), Some("connection 7")]);
            let text = tree.to_string();
            assert!(text.starts_with("scope #"), "{text}");
            assert!(text.contains("\"server\" running"), "{text}");
            assert!(text.contains("\"connection 7\" running"), "{text}");
            assert!(text.contains(file!()), "the location stays: {text}");
            assert!(format!("{s:?}").contains("server"));
            s.cancel();
        })
        .named("server"),
    );
    let err = out.unwrap_err();
    assert!(format!("{err:?}").contains("scope: \"server\""), "{err:?}");
    wait_until("the tree to empty", || rt.live_scopes() == 0);
}
