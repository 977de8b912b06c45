//! The budget of a poll (`task/budget.rs`) and the timers of busy workers
//! (`time/pace.rs`): a loop whose `.await`s are always ready is stopped at
//! its next `.await` by a cancel, a deadline or a cancel of its task
//! alone; it yields its worker now and then, so that other tasks run and
//! due timers fire; `unconstrained` opts out of the budget and
//! `consume_budget` opts a loop of one's own in; `cancelled()` still
//! fires, and shields still hold.
//!
//! Every kind of always-ready `.await` of the runtime is tried (see
//! [`Kind`]). Deadlines over busy workers need real time: a paused clock
//! moves only when every worker is idle, and a busy one never is. So the
//! tests assert what happened, never how long it took: a loop that nothing
//! stops runs until [`STARVED`] and then fails its test, as it did before
//! the budget.

use crate::support::{hang_guard, ms, on_workers, runtime, secs, wait_until, Clock, Counter, Slot};
use cancel_scope::sync::Event;
use cancel_scope::task::{consume_budget, unconstrained, yield_now};
use cancel_scope::time::{sleep, timeout};
use cancel_scope::{
    move_on_after, scope, shielded_scope, CancelReason, Cancelled, JoinHandle, JoinSet, Scope,
};
use futures_lite::future;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ready `.await`s in a loop that a cancel stops midway.
const STOCK: usize = 1000;
/// Where that loop pauses until the cancel has been issued.
const MIDPOINT: usize = 500;
/// The runtime's budget per poll (`task/budget.rs`): ready `.await`s of
/// its futures before the task yields.
const BUDGET: usize = 128;
/// Far above any scheduling delay: a loop still running after this long
/// was never stopped, a timer never fired, a task never ran.
const STARVED: Duration = Duration::from_secs(10);

/// A kind of `.await` on the runtime's futures that is always ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `Event::wait` on an event already set.
    EventSet,
    /// `sleep(Duration::ZERO)`.
    SleepZero,
    /// `timeout` of a future that is ready at once.
    TimeoutReady,
    /// `consume_budget()`.
    ConsumeBudget,
    /// The `JoinHandle` of a task that has finished.
    FinishedTask,
    /// `JoinSet::join_next` over finished tasks.
    JoinSetReady,
    /// The handle of a blocking closure that has returned.
    FinishedBlocking,
    /// `Scope::slot` of a scope with a free slot (here: no limit).
    FreeSlot,
}

use Kind::*;

const KINDS: [Kind; 8] = [
    EventSet,
    SleepZero,
    TimeoutReady,
    ConsumeBudget,
    FinishedTask,
    JoinSetReady,
    FinishedBlocking,
    FreeSlot,
];

/// The kinds that never run out.
const ENDLESS: [Kind; 4] = [EventSet, SleepZero, TimeoutReady, ConsumeBudget];

/// Where the always-ready `.await`s come from.
enum Source {
    Event(Event),
    Sleep,
    Timeout,
    Budget,
    Handles(VecDeque<JoinHandle<()>>),
    Set(JoinSet<()>),
    Slots(Scope),
}

impl Source {
    /// A source of [`STOCK`] ready `.await`s at least. Finished tasks are
    /// spawned into `s` and waited for here: call it from a scope's body
    /// on the `block_on` thread, which may spin.
    fn new(kind: Kind, s: &Scope) -> Source {
        let finished = |handles: VecDeque<JoinHandle<()>>| {
            wait_until("the stock of tasks to finish", || {
                handles.iter().all(JoinHandle::is_finished)
            });
            handles
        };
        match kind {
            FinishedTask => {
                Source::Handles(finished((0..STOCK).map(|_| s.spawn(async {})).collect()))
            }
            JoinSetReady => Source::Set(
                finished((0..STOCK).map(|_| s.spawn(async {})).collect())
                    .into_iter()
                    .collect(),
            ),
            FinishedBlocking => Source::Handles(finished(
                (0..STOCK).map(|_| s.spawn_blocking(|| ())).collect(),
            )),
            FreeSlot => Source::Slots(s.clone()),
            endless => Source::endless(endless),
        }
    }

    /// A source that never runs out.
    fn endless(kind: Kind) -> Source {
        match kind {
            EventSet => {
                let event = Event::new();
                event.set();
                Source::Event(event)
            }
            SleepZero => Source::Sleep,
            TimeoutReady => Source::Timeout,
            ConsumeBudget => Source::Budget,
            stock => panic!("{stock:?} runs out"),
        }
    }

    /// One `.await` that is ready.
    async fn next(&mut self) {
        match self {
            Source::Event(event) => event.wait().await,
            Source::Sleep => sleep(Duration::ZERO).await,
            Source::Timeout => timeout(secs(3600), async {}).await.expect("ready at once"),
            Source::Budget => consume_budget().await,
            Source::Handles(handles) => {
                let handle = handles.pop_front().expect("stock left");
                handle.await.expect("the task finished");
            }
            Source::Set(set) => {
                let output = set.join_next().await.expect("stock left");
                output.expect("the task finished");
            }
            Source::Slots(s) => drop(s.slot().await.expect("a free slot")),
        }
    }
}

/// Loops on `source` until [`STARVED`] has passed or `stop` is set;
/// returns whether it ran out of time.
async fn ready_loop(mut source: Source, stop: Arc<AtomicBool>) -> bool {
    let start = Instant::now();
    while !stop.load(SeqCst) {
        source.next().await;
        if start.elapsed() > STARVED {
            return true;
        }
    }
    false
}

/// What stops the loop of [`stop_midway`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// A deadline of the loop's scope, fired by the other, idle worker.
    Deadline,
    /// `cancel()` of the loop's scope.
    Cancel,
    /// `cancel()` of the loop's task alone, through its handle.
    TaskAlone,
}

const TRIGGERS: [Trigger; 3] = [Trigger::Deadline, Trigger::Cancel, Trigger::TaskAlone];

/// A task awaits [`STOCK`] ready `.await`s of `kind`; at [`MIDPOINT`] it
/// stops (spinning on its worker, still inside its poll) until `trigger`
/// has been issued. Not one more `.await` may complete, and no code after
/// the loop may run: the task is dropped at its next `.await`.
fn stop_midway(kind: Kind, trigger: Trigger) {
    let rt = runtime(Clock::Real, 2);
    let (done, after) = (Counter::new(), Counter::new());
    let looped: Slot<Result<(), Cancelled>> = Slot::new();
    let out = rt.block_on(scope(|s| {
        let (done, after, looped) = (done.clone(), after.clone(), looped.clone());
        async move {
            let mut source = Source::new(kind, &s);
            let midpoint = Event::new();
            let issued = Arc::new(AtomicBool::new(false));
            let looper = s.spawn({
                let (midpoint, issued) = (midpoint.clone(), issued.clone());
                async move {
                    for i in 0..STOCK {
                        if i == MIDPOINT {
                            midpoint.set();
                            wait_until("the cancel", || issued.load(SeqCst));
                        }
                        source.next().await;
                        done.inc();
                    }
                    after.inc();
                }
            });
            midpoint.wait().await;
            match trigger {
                Trigger::Deadline => {
                    s.cancel_after(ms(1));
                    wait_until("the deadline", || s.is_cancelled());
                    issued.store(true, SeqCst);
                }
                Trigger::Cancel => {
                    s.cancel();
                    issued.store(true, SeqCst);
                }
                Trigger::TaskAlone => {
                    looper.cancel();
                    issued.store(true, SeqCst);
                    looped.put(looper.await);
                }
            }
        }
    }));
    let case = format!("{kind:?} stopped by {trigger:?}");
    assert_eq!(
        done.get(),
        MIDPOINT,
        "{case}: an `.await` completed after the cancel"
    );
    assert_eq!(after.get(), 0, "{case}: the loop ran to its end");
    match trigger {
        Trigger::Deadline => {
            let reason = out.expect_err(&case).reason().clone();
            assert_eq!(reason, CancelReason::Deadline { after: ms(1) }, "{case}");
        }
        Trigger::Cancel => {
            assert_eq!(
                out.expect_err(&case).reason(),
                &CancelReason::Explicit,
                "{case}"
            );
        }
        Trigger::TaskAlone => {
            out.expect(&case);
            let err = looped.take().expect_err(&case);
            assert_eq!(err.reason(), &CancelReason::Explicit, "{case}");
        }
    }
}

/// Every kind of ready `.await`, stopped by every trigger: at the next
/// `.await` after it, not when the loop ends by itself.
#[test]
fn a_cancel_deadline_or_task_cancel_stops_every_kind_of_ready_loop_at_its_next_await() {
    let _hang = hang_guard();
    for kind in KINDS {
        for trigger in TRIGGERS {
            stop_midway(kind, trigger);
        }
    }
}

/// The case that took 3.7 s: a deadline over tasks that loop on ready
/// `.await`s, on a single worker, which only the budget makes yield and
/// only its own looks at the timers can fire the deadline.
#[test]
fn a_deadline_lands_on_endless_ready_loops_on_one_busy_worker() {
    let _hang = hang_guard();
    for kind in ENDLESS {
        let rt = runtime(Clock::Real, 1);
        let starved = Counter::new();
        let out = rt.block_on(scope(|s| {
            let starved = starved.clone();
            async move {
                s.cancel_after(ms(5));
                for _ in 0..3 {
                    let starved = starved.clone();
                    let stop = Arc::new(AtomicBool::new(false));
                    s.spawn(async move {
                        if ready_loop(Source::endless(kind), stop).await {
                            starved.inc();
                        }
                    });
                }
            }
        }));
        assert_eq!(starved.get(), 0, "{kind:?}: the deadline never landed");
        let reason = out.expect_err("the deadline passed").reason().clone();
        assert_eq!(reason, CancelReason::Deadline { after: ms(5) }, "{kind:?}");
    }
}

/// A deadline lands on a scope body polled by `block_on` that loops on
/// ready `.await`s itself, as `move_on_after` is used.
#[test]
fn a_deadline_lands_on_a_ready_loop_in_a_scope_body() {
    let _hang = hang_guard();
    for kind in ENDLESS {
        let rt = runtime(Clock::Real, 1);
        let starved = Counter::new();
        let out = rt.block_on(move_on_after(ms(5), {
            let starved = starved.clone();
            move |_| async move {
                if ready_loop(Source::endless(kind), Arc::default()).await {
                    starved.inc();
                }
            }
        }));
        assert_eq!(starved.get(), 0, "{kind:?}: the deadline never landed");
        assert!(out.is_err(), "{kind:?}");
    }
}

/// On one worker, a task looping on ready `.await`s lets another task run
/// once it has spent its budget: the other task's flag is seen after at
/// most [`BUDGET`] + 1 `.await`s. Under `unconstrained` it is never seen
/// during the loop.
#[test]
fn the_budget_lets_other_tasks_run_and_unconstrained_opts_out() {
    let _hang = hang_guard();
    for kind in ENDLESS {
        for constrained in [true, false] {
            let rt = runtime(Clock::Real, 1);
            let seen_at = on_workers(&rt, async move {
                scope(|s| async move {
                    let other_ran = Arc::new(AtomicBool::new(false));
                    let looper = {
                        let other_ran = other_ran.clone();
                        async move {
                            let mut source = Source::endless(kind);
                            for i in 1..=10 * STOCK {
                                source.next().await;
                                if other_ran.load(SeqCst) {
                                    return Some(i);
                                }
                            }
                            None
                        }
                    };
                    let looper = if constrained {
                        s.spawn(looper)
                    } else {
                        s.spawn(unconstrained(looper))
                    };
                    s.spawn(async move { other_ran.store(true, SeqCst) });
                    looper.await.expect("not cancelled")
                })
                .await
                .expect("not cancelled")
            });
            if constrained {
                assert!(
                    seen_at.is_some_and(|i| i <= BUDGET + 1),
                    "{kind:?}: the other task ran only after {seen_at:?} `.await`s"
                );
            } else {
                assert_eq!(seen_at, None, "{kind:?}: an unconstrained loop yielded");
            }
        }
    }
}

/// `consume_budget` makes a loop that awaits nothing of the runtime's
/// yield, and stops it at once when its task is cancelled.
#[test]
fn consume_budget_yields_a_loop_of_ones_own_and_is_a_cancel_point() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let steps = on_workers(&rt, async {
        scope(|s| async move {
            let other_ran = Arc::new(AtomicBool::new(false));
            let stepper = s.spawn({
                let other_ran = other_ran.clone();
                async move {
                    let mut steps = 0u64;
                    while !other_ran.load(SeqCst) && steps < 10 * STOCK as u64 {
                        steps += 1; // a step of work that awaits nothing
                        consume_budget().await;
                    }
                    steps
                }
            });
            s.spawn(async move { other_ran.store(true, SeqCst) });
            stepper.await.expect("not cancelled")
        })
        .await
        .expect("not cancelled")
    });
    assert!(steps <= BUDGET as u64 + 1, "yielded after {steps} steps");
    stop_midway(ConsumeBudget, Trigger::TaskAlone);
}

/// Timers fire on a worker that several tasks looping on ready `.await`s
/// keep busy: a task's `sleep` ends and stops them.
#[test]
fn timers_fire_on_a_worker_kept_busy_by_ready_loops() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let starved = on_workers(&rt, async {
        scope(|s| async move {
            let stop = Arc::new(AtomicBool::new(false));
            let loopers: Vec<_> = (0..4)
                .map(|_| s.spawn(ready_loop(Source::endless(EventSet), stop.clone())))
                .collect();
            s.spawn(async move {
                sleep(ms(1)).await;
                stop.store(true, SeqCst);
            });
            let mut starved = 0;
            for looper in loopers {
                starved += usize::from(looper.await.expect("not cancelled"));
            }
            starved
        })
        .await
        .expect("not cancelled")
    });
    assert_eq!(starved, 0, "the sleep's timer never fired");
}

/// A worker looks at the timers between tasks however long they take: a
/// task that works 200 µs between yields sees the deadline of its scope
/// land after the first or second poll that ends past it, not after
/// dozens.
#[test]
fn a_busy_worker_fires_a_due_timer_after_a_poll_or_two() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let late = Counter::new();
    let out = rt.block_on(scope(|s| {
        let late = late.clone();
        async move {
            let deadline = Instant::now() + ms(2);
            s.cancel_at(deadline);
            s.spawn(async move {
                let start = Instant::now();
                while start.elapsed() < STARVED {
                    let slice = Instant::now();
                    while slice.elapsed() < Duration::from_micros(200) {
                        std::hint::spin_loop();
                    }
                    if Instant::now() >= deadline {
                        late.inc();
                    }
                    yield_now().await;
                }
            });
        }
    }));
    assert!(out.is_err(), "the deadline passed");
    assert!(
        late.get() <= 2,
        "{} polls ended past the deadline",
        late.get()
    );
}

/// A running task whose own scope is cancelled sees `cancelled()` fire in
/// `or(work, s.cancelled())` when `work` loops on ready `.await`s: those
/// stay pending, `cancelled()` does not.
#[test]
fn cancelled_still_fires_in_an_or_with_a_ready_loop() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let seen: Slot<Option<CancelReason>> = Slot::new();
    let out = rt.block_on(scope(|s| {
        let seen = seen.clone();
        async move {
            let (midpoint, me) = (Event::new(), s.clone());
            s.spawn({
                let midpoint = midpoint.clone();
                async move {
                    midpoint.set();
                    wait_until("the cancel", || me.is_cancelled());
                    let work = async {
                        ready_loop(Source::endless(EventSet), Arc::default()).await;
                        None
                    };
                    let stop = async { Some(me.cancelled().await.reason().clone()) };
                    seen.put(future::or(work, stop).await);
                }
            });
            midpoint.wait().await;
            s.cancel();
        }
    }));
    // The task saw the cancel and ran to its end, and so did the body:
    // the cancel interrupted nothing.
    assert_eq!(out, Ok(()));
    assert_eq!(seen.take(), Some(CancelReason::Explicit));
}

/// A shield inside a cancelled scope is not cancelled: its task, racing a
/// ready loop against the enclosing scope's `cancelled()`, sees the arm
/// fire (the loop yields), and then runs [`STOCK`] ready `.await`s to the
/// end, as cleanup would.
#[test]
fn a_shield_respects_the_budget_but_not_the_enclosing_cancel() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let (stopped, cleaned) = (Counter::new(), Counter::new());
    let out = rt.block_on(scope(|s| {
        let (stopped, cleaned) = (stopped.clone(), cleaned.clone());
        async move {
            let (started, outer) = (Event::new(), s.clone());
            s.spawn(shielded_scope({
                let started = started.clone();
                move |_| async move {
                    started.set();
                    let work = async {
                        ready_loop(Source::endless(EventSet), Arc::default()).await;
                        false
                    };
                    let stop = async {
                        outer.cancelled().await;
                        true
                    };
                    if future::or(work, stop).await {
                        stopped.inc();
                    }
                    let mut source = Source::endless(EventSet);
                    for _ in 0..STOCK {
                        source.next().await;
                        cleaned.inc();
                    }
                }
            }));
            started.wait().await;
            s.cancel();
        }
    }));
    assert!(out.is_err());
    assert_eq!(
        stopped.get(),
        1,
        "the shield's task saw the enclosing cancel"
    );
    assert_eq!(cleaned.get(), STOCK, "the shield's cleanup ran to its end");
}

/// A blocking closure of a cancelled scope is not an `.await` of its task:
/// an executor it runs sees the runtime's futures as anywhere else.
#[test]
fn an_executor_in_a_blocking_closure_of_a_cancelled_scope_still_waits() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let waited = Counter::new();
    let out = rt.block_on(scope(|s| {
        let waited = waited.clone();
        async move {
            let (started, me, ready) = (Event::new(), s.clone(), Event::new());
            s.spawn_blocking({
                let (started, ready) = (started.clone(), ready.clone());
                move || {
                    started.set();
                    wait_until("the cancel", || me.is_cancelled());
                    future::block_on(ready.wait());
                    future::block_on(sleep(ms(1)));
                    waited.inc();
                }
            });
            started.wait().await;
            ready.set();
            s.cancel();
        }
    }));
    // A running blocking closure is not interrupted by a cancel.
    assert_eq!(out, Ok(()));
    assert_eq!(waited.get(), 1, "the closure's waits ended");
}

/// An executor nested in a cancelled poll (a scope body that drives a
/// future with another crate's `block_on` after `cancel()`) is refused a
/// few times, then let through: it does not spin or wait for ever.
#[test]
fn an_executor_nested_in_a_cancelled_poll_is_let_through() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 1);
    let out = rt.block_on(scope(|s| async move {
        let ready = Event::new();
        ready.set();
        // Run to its end before the cancel: a spawn into a cancelled
        // scope is refused, a queued closure is dropped by the cancel,
        // and this test is about the nested executor.
        let finished = s.spawn_blocking(|| 7);
        wait_until("the closure's handle", || finished.is_finished());
        s.cancel();
        future::block_on(ready.wait());
        future::block_on(finished)
    }));
    // The body ran on to its end: its value is the scope's.
    assert_eq!(out, Ok(Ok(7)));
}
