//! Fault injection: panics in a task's poll, in the `Drop` of a cancelled
//! future, in a scope body and in a user waker's `wake`, and a future that
//! wakes itself in a tight loop.
//!
//! After each fault the same runtime must keep serving: `assert_serves`
//! runs a new scope of 200 tasks, then checks that every worker thread
//! still takes tasks (two tasks that spin, never yielding, until both run
//! must meet on a two-worker runtime). The panic must surface where the
//! documentation says: from the scope future, once every task has ended,
//! with the panicked task's `JoinHandle` resolving to `Err(Cancelled)`
//! with `CancelReason::Panicked`.
//!
//! - `panic_in_poll_cancels_the_scope_and_resumes_after_all_tasks_ended`:
//!   a busy sibling, a parked sibling and a nested scope's parked task are
//!   all dropped before the scope resumes the panic with its message.
//! - `panics_in_many_tasks_keep_only_the_first_and_lose_no_worker`: 20
//!   rounds of 50 panicking tasks; one panic resumes each round.
//! - A panic in the `Drop` of a cancelled future, for each thread that may
//!   drop it: the canceller (a parked future,
//!   `panic_in_drop_of_a_parked_future_dropped_by_the_canceller`), the
//!   runner after the poll it was in
//!   (`panic_in_drop_of_a_future_cancelled_while_it_was_polled`), and a
//!   worker firing a deadline
//!   (`panic_in_drop_of_a_future_cancelled_by_a_deadline`). The panic
//!   resumes from the scope; the other futures are dropped.
//! - A panic in a scope body, in the closure before the body starts, and
//!   in a nested scope's body, which climbs scope by scope (`panic_in_a_*`
//!   tests).
//! - `panic_in_a_waker_woken_by_an_event_set_in_a_task`: the waker runs in
//!   the setter task's poll, so that task panics and its scope resumes the
//!   panic. `a_panicking_waker_does_not_stop_event_set_from_waking_the_others`:
//!   the other waiters of the same `Event` are still woken.
//! - `panic_in_a_waker_woken_by_a_timer` and
//!   `panic_in_a_waker_woken_by_a_finishing_task`: wakers the runtime calls
//!   outside any task's poll (a worker firing a timer; the runner of a
//!   finished task waking its `JoinHandle`). The panic is contained or
//!   reported from the scope, and the scope ends.
//! - `self_waking_futures_do_not_starve_others_on_one_worker`: on a
//!   one-worker runtime, futures that wake themselves and return `Pending`
//!   forever do not keep a yielding task, a sleeping task, a task woken
//!   from another OS thread or a task spawned by a task from finishing.
//!   `..._reported_through_results`: the same for a task whose result wins
//!   a race against the spinners' scope.
//!
//! Scenarios that could abort the whole process (a panic where no task
//! catches it) run in a child process (this test binary, re-run on one
//! test), so that the suite survives and reports them; Miri cannot start
//! a process, so they are ignored under it.

use crate::reliability::{
    assert_child_passed, assert_serves, is_child, noop_waker, run_in_child, FlagWaker,
    PanickingWaker, WithWaker,
};
use crate::support::{
    cancel_reason, expect_panic, hang_guard, panic_message, runtime, wait_until, Clock, Counter,
    PanicOnDrop, Slot,
};
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{scope, CancelReason, JoinHandle};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const WORKERS: usize = 2;

/// Tasks parked forever on an event nobody sets, to be stopped by a
/// fault: `drops` counts their drops, and `finished` would count their
/// ends (none may end).
#[derive(Clone)]
struct Parked {
    forever: Event,
    drops: Counter,
    finished: Counter,
}

impl Parked {
    fn new() -> Parked {
        Parked {
            forever: Event::new(),
            drops: Counter::new(),
            finished: Counter::new(),
        }
    }

    /// A task that parks forever.
    fn task(&self) -> impl Future<Output = ()> + Send + 'static {
        let (forever, finished) = (self.forever.clone(), self.finished.clone());
        let guard = self.drops.on_drop();
        async move {
            let _guard = guard;
            forever.wait().await;
            finished.inc();
        }
    }
}

// ---------------------------------------------------------------------
// A panic in a task's poll.
// ---------------------------------------------------------------------

#[test]
fn panic_in_poll_cancels_the_scope_and_resumes_after_all_tasks_ended() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let parked = Parked::new();
    let spins = Counter::new();
    let panicker: Slot<JoinHandle<()>> = Slot::new();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let parked = parked.clone();
            let (spins, panicker) = (spins.clone(), panicker.clone());
            async move {
                // A busy sibling, a parked sibling, and a nested scope
                // with a parked task: all must stop.
                let spinning = Event::new();
                {
                    let (spins, spinning) = (spins.clone(), spinning.clone());
                    let guard = parked.drops.on_drop();
                    s.spawn(async move {
                        let _guard = guard;
                        loop {
                            spins.inc();
                            spinning.set();
                            yield_now().await;
                        }
                    });
                }
                s.spawn(parked.task());
                let inner_task = parked.task();
                s.spawn(scope(|inner| async move {
                    inner.spawn(inner_task);
                    std::future::pending::<()>().await
                }));
                spinning.wait().await;
                panicker.put(s.spawn(async {
                    panic!("boom in poll");
                }));
                std::future::pending::<()>().await
            }
        }))
    });
    assert_eq!(message, "boom in poll");
    // The scope resumed the panic only after every task had ended.
    assert_eq!(parked.drops.get(), 3, "every sibling was dropped");
    assert_eq!(parked.finished.get(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_eq!(cancel_reason(panicker.take()), CancelReason::Panicked);
    assert_serves(&rt, WORKERS);
}

#[test]
fn panics_in_many_tasks_keep_only_the_first_and_lose_no_worker() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    for round in 0..20 {
        let message = expect_panic(|| {
            rt.block_on(scope(|s| async move {
                for i in 0..50 {
                    s.spawn(async move {
                        yield_now().await;
                        panic!("task {i} of round {round}");
                    });
                }
            }))
        });
        assert!(message.starts_with("task "), "a task's panic: {message}");
        assert_eq!(rt.live_tasks(), 0);
        assert_eq!(rt.live_scopes(), 0);
    }
    assert_serves(&rt, WORKERS);
}

// ---------------------------------------------------------------------
// A panic in the Drop of a cancelled future.
// ---------------------------------------------------------------------

#[test]
fn panic_in_drop_of_a_parked_future_dropped_by_the_canceller() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let parked = Parked::new();
    let bomb: Slot<JoinHandle<()>> = Slot::new();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let parked = parked.clone();
            let bomb = bomb.clone();
            async move {
                let parked_now = Event::new();
                s.spawn(parked.task());
                let (p, f) = (parked_now.clone(), parked.forever.clone());
                bomb.put(s.spawn(async move {
                    let _bomb = PanicOnDrop("boom in drop (parked)");
                    p.set();
                    f.wait().await;
                }));
                s.spawn(parked.task());
                parked_now.wait().await;
                s.cancel();
                std::future::pending::<()>().await
            }
        }))
    });
    assert_eq!(message, "boom in drop (parked)");
    assert_eq!(parked.drops.get(), 2, "the other futures were dropped too");
    assert_eq!(parked.finished.get(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    // Cancelled first, then its drop panicked: either reason is fair.
    let reason = cancel_reason(bomb.take());
    assert!(
        matches!(reason, CancelReason::Explicit | CancelReason::Panicked),
        "{reason:?}"
    );
    assert_serves(&rt, WORKERS);
}

#[test]
fn panic_in_drop_of_a_future_cancelled_while_it_was_polled() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            let in_poll = Event::new();
            let entered = in_poll.clone();
            let go_rx = Mutex::new(go_rx);
            s.spawn(async move {
                let _bomb = PanicOnDrop("boom in drop (running)");
                std::future::poll_fn(|_| {
                    // Hold this worker inside the poll until the body
                    // has cancelled the scope: the runner then drops the
                    // future when this poll returns.
                    entered.set();
                    go_rx.lock().unwrap().recv().expect("the go signal");
                    Poll::<()>::Pending
                })
                .await
            });
            in_poll.wait().await;
            s.cancel();
            go_tx.send(()).unwrap();
            std::future::pending::<()>().await
        }))
    });
    assert_eq!(message, "boom in drop (running)");
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_serves(&rt, WORKERS);
}

#[test]
fn panic_in_drop_of_a_future_cancelled_by_a_deadline() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let message = expect_panic(|| {
        rt.block_on(scope(|s| async move {
            let parked_now = Event::new();
            let p = parked_now.clone();
            s.spawn(async move {
                let _bomb = PanicOnDrop("boom in drop (deadline)");
                p.set();
                std::future::pending::<()>().await
            });
            parked_now.wait().await;
            // The timer fires on a worker thread, which drops the future.
            s.cancel_after(Duration::from_millis(5));
            std::future::pending::<()>().await
        }))
    });
    assert_eq!(message, "boom in drop (deadline)");
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_eq!(rt.pending_timers(), 0);
    assert_serves(&rt, WORKERS);
}

// ---------------------------------------------------------------------
// A panic in a scope body.
// ---------------------------------------------------------------------

#[test]
fn panic_in_a_scope_body_stops_its_tasks_and_resumes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let parked = Parked::new();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let parked = parked.clone();
            async move {
                for _ in 0..10 {
                    s.spawn(parked.task());
                }
                yield_now().await;
                panic!("boom in body");
            }
        }))
    });
    assert_eq!(message, "boom in body");
    assert_eq!(parked.drops.get(), 10);
    assert_eq!(parked.finished.get(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_serves(&rt, WORKERS);
}

#[test]
fn panic_in_the_scope_closure_before_the_body_starts() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let parked = Parked::new();
    let message = expect_panic(|| {
        let p = parked.clone();
        #[allow(unreachable_code)]
        rt.block_on(scope(move |s| {
            s.spawn(p.task());
            panic!("boom in closure");
            async {}
        }))
    });
    assert_eq!(message, "boom in closure");
    assert_eq!(parked.drops.get(), 1);
    assert_eq!(parked.finished.get(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_serves(&rt, WORKERS);
}

#[test]
fn panic_in_a_nested_scope_body_climbs_scope_by_scope() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let parked = Parked::new();
    let host: Slot<JoinHandle<()>> = Slot::new();
    let message = expect_panic(|| {
        rt.block_on(scope(|outer| {
            let parked = parked.clone();
            let host = host.clone();
            async move {
                outer.spawn(parked.task());
                let inner_parked = parked.task();
                host.put(outer.spawn(async move {
                    let _ = scope(|inner| async move {
                        inner.spawn(inner_parked);
                        yield_now().await;
                        panic!("boom in nested body");
                    })
                    .await;
                }));
                std::future::pending::<()>().await
            }
        }))
    });
    assert_eq!(message, "boom in nested body");
    assert_eq!(parked.drops.get(), 2, "tasks of both scopes were dropped");
    assert_eq!(parked.finished.get(), 0);
    // The task that awaited the inner scope panicked in turn.
    assert_eq!(cancel_reason(host.take()), CancelReason::Panicked);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_serves(&rt, WORKERS);
}

// ---------------------------------------------------------------------
// A panic in a user waker's `wake`.
// ---------------------------------------------------------------------

/// A task that waits on `event` with a waker that panics when woken.
fn wait_with_panicking_waker(
    event: &Event,
    woken: &Arc<AtomicBool>,
    message: &'static str,
    registered: &Event,
) -> impl Future<Output = ()> + Send + 'static {
    let waker = Waker::from(Arc::new(PanickingWaker {
        woken: woken.clone(),
        message,
    }));
    WithWaker::new(event.wait(), waker, registered.clone())
}

#[test]
fn panic_in_a_waker_woken_by_an_event_set_in_a_task() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let event = Event::new();
    let woken = Arc::new(AtomicBool::new(false));
    let setter: Slot<JoinHandle<()>> = Slot::new();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let (event, woken, setter) = (event.clone(), woken.clone(), setter.clone());
            async move {
                let registered = Event::new();
                s.spawn(wait_with_panicking_waker(
                    &event,
                    &woken,
                    "boom in wake (event)",
                    &registered,
                ));
                registered.wait().await;
                setter.put(s.spawn(async move { event.set() }));
                std::future::pending::<()>().await
            }
        }))
    });
    // `Event::set` ran the waker inside the setter task's poll: that
    // task panicked, and its scope resumed the panic.
    assert_eq!(message, "boom in wake (event)");
    assert!(woken.load(SeqCst));
    assert_eq!(cancel_reason(setter.take()), CancelReason::Panicked);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_serves(&rt, WORKERS);
}

/// One waiter's panicking waker must not cost the other waiters of the
/// same `Event` their wake-up: they registered before `set`, and the flag
/// is set, so they must be woken (otherwise they wait forever).
#[test]
fn a_panicking_waker_does_not_stop_event_set_from_waking_the_others() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let event = Event::new();
    let woken = Arc::new(AtomicBool::new(false));
    // First waiter: a panicking waker. Then two well-behaved waiters.
    let registered = Event::new();
    let mut first = Box::pin(wait_with_panicking_waker(
        &event,
        &woken,
        "boom in wake (first waiter)",
        &registered,
    ));
    let noop = noop_waker();
    assert!(first
        .as_mut()
        .poll(&mut Context::from_waker(&noop))
        .is_pending());
    let others: Vec<_> = (0..2)
        .map(|_| {
            let flag = Arc::new(AtomicBool::new(false));
            let waker = Waker::from(Arc::new(FlagWaker(flag.clone())));
            let mut wait = Box::pin(event.wait());
            assert!(wait
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
            (flag, wait)
        })
        .collect();
    let message = expect_panic(|| {
        rt.block_on(scope(|s| {
            let event = event.clone();
            async move {
                s.spawn(async move { event.set() });
            }
        }))
    });
    assert_eq!(message, "boom in wake (first waiter)");
    assert!(woken.load(SeqCst));
    for (i, (flag, _wait)) in others.iter().enumerate() {
        assert!(
            flag.load(SeqCst),
            "waiter {i} of the event was never woken after set()"
        );
    }
    assert_serves(&rt, WORKERS);
}

/// The child half of [`panic_in_a_waker_woken_by_a_timer`].
fn timer_waker_child() {
    let rt = runtime(Clock::Real, WORKERS);
    let woken = Arc::new(AtomicBool::new(false));
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(scope(|s| {
            let woken = woken.clone();
            async move {
                let registered = Event::new();
                let waker = Waker::from(Arc::new(PanickingWaker {
                    woken: woken.clone(),
                    message: "boom in wake (timer)",
                }));
                let r = registered.clone();
                s.spawn(async move {
                    // The sleep is created inside the task, so its timer
                    // belongs to this runtime; a worker fires it.
                    WithWaker::new(sleep(Duration::from_millis(5)), waker, r).await;
                });
                registered.wait().await;
                while !woken.load(SeqCst) {
                    yield_now().await;
                }
                // The task is never woken through its own waker: stop it.
                s.cancel();
            }
        }))
    }));
    check_waker_fault(out, "boom in wake (timer)");
    assert!(woken.load(SeqCst));
    assert_serves(&rt, WORKERS);
    assert_eq!(rt.pending_timers(), 0);
}

/// A panicking waker called by the runtime, outside any task's poll, may
/// be reported from the scope like a task's panic, or contained; the scope
/// must end either way.
fn check_waker_fault(out: std::thread::Result<Result<(), cancel_scope::Cancelled>>, message: &str) {
    match out {
        Ok(Err(cancelled)) => assert!(
            matches!(
                cancelled.reason(),
                CancelReason::Explicit | CancelReason::Panicked
            ),
            "{cancelled:?}"
        ),
        Ok(Ok(())) => panic!("the scope was not cancelled"),
        Err(p) => assert_eq!(panic_message(&*p), message),
    }
}

/// A timer's waker is user code too: when it panics on a worker thread,
/// outside any task, the runtime must survive.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn panic_in_a_waker_woken_by_a_timer() {
    if is_child() {
        return timer_waker_child();
    }
    let out = run_in_child();
    assert_child_passed(&out);
}

/// The child half of [`panic_in_a_waker_woken_by_a_finishing_task`].
fn join_waker_child() {
    let rt = runtime(Clock::Real, WORKERS);
    let woken = Arc::new(AtomicBool::new(false));
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(scope(|s| {
            let woken = woken.clone();
            async move {
                let finish = Event::new();
                let f = finish.clone();
                let target = s.spawn(async move { f.wait().await });
                let registered = Event::new();
                let waker = Waker::from(Arc::new(PanickingWaker {
                    woken: woken.clone(),
                    message: "boom in wake (join)",
                }));
                let r = registered.clone();
                // Awaits `target` with the panicking waker; the runner that
                // completes `target` calls it.
                s.spawn(async move {
                    let _ = WithWaker::new(target, waker, r).await;
                });
                registered.wait().await;
                finish.set();
                while !woken.load(SeqCst) {
                    yield_now().await;
                }
                // The watcher never learns that `target` ended: stop it.
                s.cancel();
            }
        }))
    }));
    check_waker_fault(out, "boom in wake (join)");
    assert!(woken.load(SeqCst));
    assert_serves(&rt, WORKERS);
}

/// A `JoinHandle`'s waker is called by the runner of the finished task:
/// when it panics there, the runtime must survive.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn panic_in_a_waker_woken_by_a_finishing_task() {
    if is_child() {
        return join_waker_child();
    }
    let out = run_in_child();
    assert_child_passed(&out);
}

// ---------------------------------------------------------------------
// A future that wakes itself in a tight loop.
// ---------------------------------------------------------------------

/// Always `Pending`, after waking itself.
struct SelfWaking(Counter);

impl Future for SelfWaking {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.inc();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn self_waking_futures_do_not_starve_others_on_one_worker() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let spins = Counter::new();
    let outside = Event::new();
    let setter = {
        let (outside, spins) = (outside.clone(), spins.clone());
        std::thread::spawn(move || {
            // Set from an OS thread outside the runtime (the injector
            // path), once the spinners are going.
            wait_until("the spinners to run", || spins.get() > 100);
            outside.set();
        })
    };
    let out = rt.block_on(scope(|s| {
        let (spins, outside) = (spins.clone(), outside.clone());
        async move {
            for _ in 0..2 {
                s.spawn(SelfWaking(spins.clone()));
            }
            let yielder = s.spawn(async {
                for _ in 0..500 {
                    yield_now().await;
                }
                "yielder"
            });
            let sleeper = s.spawn(async {
                sleep(Duration::from_millis(5)).await;
                "sleeper"
            });
            let waiter = s.spawn(async move {
                outside.wait().await;
                "waiter"
            });
            let s2 = s.clone();
            let spawner = s.spawn(async move {
                // Spawned by a task: lands in the worker's local queue
                // behind the spinners.
                s2.spawn(async { "grandchild" }).await
            });
            assert_eq!(yielder.await, Ok("yielder"));
            assert_eq!(sleeper.await, Ok("sleeper"));
            assert_eq!(waiter.await, Ok("waiter"));
            assert_eq!(spawner.await, Ok(Ok("grandchild")));
            s.cancel();
        }
    }));
    setter.join().unwrap();
    let cancelled = out.expect_err("the body cancelled the scope");
    assert_eq!(cancelled.reason(), &CancelReason::Explicit);
    assert!(spins.get() > 0, "the spinners ran");
    assert_eq!(rt.live_tasks(), 0);
    assert_serves(&rt, 1);
}

#[test]
fn self_waking_futures_do_not_starve_others_reported_through_results() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let spins = Counter::new();
    let results = rt.block_on(scope(|s| {
        let spins = spins.clone();
        async move {
            let spinners = scope(|inner| async move {
                for _ in 0..3 {
                    inner.spawn(SelfWaking(spins.clone()));
                }
                std::future::pending::<()>().await
            });
            let work = s.spawn(async {
                let mut n = 0;
                for _ in 0..100 {
                    yield_now().await;
                    n += 1;
                }
                sleep(Duration::from_millis(2)).await;
                n
            });
            // The spinners' scope loses the race and is dropped.
            futures_lite::future::or(
                async {
                    let _ = spinners.await;
                    None
                },
                async { Some(work.await) },
            )
            .await
        }
    }));
    assert_eq!(results, Ok(Some(Ok(100))));
    assert!(spins.get() > 0);
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    assert_serves(&rt, 1);
}

// ---------------------------------------------------------------------
// User values the runtime drops outside any poll: a scope's locals, the
// cause of its cancel, a panic payload nobody took. Their panics go to
// the nearest scope still open, never into a worker or out of a walk.
// ---------------------------------------------------------------------

static LOUD_LOCAL: cancel_scope::ScopeLocal<PanicOnDrop> = cancel_scope::ScopeLocal::new();

/// A task that blocks its worker inside one poll until `release` is set,
/// after saying so through `started`: so that a cancel finds it running
/// and its runner releases it (on the worker) when the poll returns.
fn held_in_poll(started: Arc<AtomicBool>, release: Arc<AtomicBool>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |_| {
        started.store(true, SeqCst);
        while !release.load(SeqCst) {
            std::hint::spin_loop();
        }
        Poll::Pending
    })
}

/// The child half of
/// [`a_panicking_scope_local_freed_on_a_worker_goes_to_the_parent`].
fn local_freed_on_a_worker_child() {
    let rt = runtime(Clock::Real, WORKERS);
    let message = expect_panic(|| {
        rt.block_on(scope(|_| async move {
            let (started, release) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            let (st, rl) = (started.clone(), release.clone());
            let mut inner = Box::pin(
                scope(move |s| {
                    s.spawn(held_in_poll(st, rl));
                    std::future::pending::<()>()
                })
                .with_local(&LOUD_LOCAL, PanicOnDrop("boom in a scope-local's drop")),
            );
            assert!(futures_lite::future::poll_once(&mut inner).await.is_none());
            while !started.load(SeqCst) {
                std::thread::yield_now();
            }
            // The scope's future goes while its task runs: the runner's
            // release, on the worker, is the node's last reference.
            drop(inner);
            release.store(true, SeqCst);
            std::future::pending::<()>().await
        }))
    });
    assert_eq!(message, "boom in a scope-local's drop");
    assert_serves(&rt, WORKERS);
}

/// A scope-local whose `Drop` panics, in a scope freed by the worker that
/// released its last task, used to abort the process ("a worker thread
/// hit an internal error"): the panic now goes to the parent scope, which
/// is cancelled and resumes it.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn a_panicking_scope_local_freed_on_a_worker_goes_to_the_parent() {
    if is_child() {
        return local_freed_on_a_worker_child();
    }
    let out = run_in_child();
    assert_child_passed(&out);
}

/// A cancel walk that frees a node whose scope-local panics in `Drop`
/// (the walk held its last reference: the node's future was dropped by
/// the same cancel, with a task of the parent) used to unwind out of
/// `cancel()` and leave the rest of its stack unexpanded: a sibling
/// scope's parked task was never dropped and the outer scope hung. The
/// walk now finishes, and the outer scope resumes the panic.
#[test]
fn a_panicking_scope_local_freed_by_a_walk_does_not_stop_the_walk() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, WORKERS);
    let sibling_drops = Counter::new();
    let guard = sibling_drops.on_drop();
    let message = expect_panic(|| {
        rt.block_on(scope(move |s| async move {
            let hosts_parked = Event::new();
            let (a, b) = (hosts_parked.clone(), hosts_parked.clone());
            // A: no task; its body parks. Opened before B, so B is
            // first in the parent's child list and expanded after A.
            s.spawn(
                scope(move |_| async move {
                    a.set();
                    std::future::pending::<()>().await
                })
                .with_local(&LOUD_LOCAL, PanicOnDrop("boom in a walk")),
            );
            hosts_parked.wait().await;
            hosts_parked.clear();
            // B: one parked task, which the walk must drop.
            s.spawn(scope(move |s| async move {
                s.spawn(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                });
                b.set();
                std::future::pending::<()>().await
            }));
            hosts_parked.wait().await;
            s.cancel();
        }))
    });
    assert_eq!(message, "boom in a walk");
    assert_eq!(
        sibling_drops.get(),
        1,
        "the sibling's parked task was dropped"
    );
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

/// An error given to `cancel_with` whose `Drop` panics, held last by a
/// node freed on a worker: its panic goes to the parent, as a
/// scope-local's does.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn a_panicking_cancel_cause_freed_on_a_worker_goes_to_the_parent() {
    if is_child() {
        return cause_freed_on_a_worker_child();
    }
    let out = run_in_child();
    assert_child_passed(&out);
}

/// A cause of `cancel_with` whose `Drop` panics (through its field).
#[derive(Debug)]
struct LoudCause(#[allow(dead_code)] PanicOnDrop);

impl std::fmt::Display for LoudCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a loud cause")
    }
}

impl std::error::Error for LoudCause {}

/// The child half of
/// [`a_panicking_cancel_cause_freed_on_a_worker_goes_to_the_parent`].
fn cause_freed_on_a_worker_child() {
    let rt = runtime(Clock::Real, WORKERS);
    let message = expect_panic(|| {
        rt.block_on(scope(|_| async move {
            let (started, release) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            let (st, rl) = (started.clone(), release.clone());
            let inner_scope = Slot::new();
            let kept = inner_scope.clone();
            let mut inner = Box::pin(scope(move |s| {
                s.spawn(held_in_poll(st, rl));
                kept.put(s);
                std::future::pending::<()>()
            }));
            assert!(futures_lite::future::poll_once(&mut inner).await.is_none());
            while !started.load(SeqCst) {
                std::thread::yield_now();
            }
            let s: cancel_scope::Scope = inner_scope.take();
            s.cancel_with(LoudCause(PanicOnDrop("boom in a cause's drop")));
            drop(s);
            drop(inner);
            release.store(true, SeqCst);
            std::future::pending::<()>().await
        }))
    });
    assert_eq!(message, "boom in a cause's drop");
    assert_serves(&rt, WORKERS);
}

/// A payload of a task's panic whose own `Drop` panics, in a supervisor
/// scope where nobody holds the task's handle: the runtime drops the
/// payload on the worker, and used to abort. Such a payload is now
/// leaked (std aborts on it), and the scope goes on.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
#[cfg_attr(
    cancel_scope_asan,
    ignore = "leaks the payload on purpose, which LeakSanitizer reports"
)]
fn a_panic_payload_that_panics_when_dropped_is_leaked() {
    if is_child() {
        return payload_child();
    }
    let out = run_in_child();
    assert_child_passed(&out);
}

/// The child half of [`a_panic_payload_that_panics_when_dropped_is_leaked`].
fn payload_child() {
    let rt = runtime(Clock::Real, WORKERS);
    let out = rt.block_on(cancel_scope::supervisor_scope(|s| async move {
        for _ in 0..10 {
            drop(s.spawn(async {
                std::panic::panic_any(PanicOnDrop("boom in a payload's drop"));
            }));
        }
        "served"
    }));
    assert_eq!(out, Ok("served"));
    assert_serves(&rt, WORKERS);
}
