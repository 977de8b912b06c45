//! Stress: the runtime under load, and cancels racing a growing tree.
//!
//! - `fifty_thousand_tasks_through_one_scope` (and, ignored,
//!   `one_million_tasks_through_one_scope`): n tasks through one scope on
//!   two workers. Half are spawned by the body and detached (the injector
//!   path); half are spawned by four spawner tasks (the workers' local
//!   queues) and joined in batches of 1,000, their outputs checked. Every
//!   task runs once, every future is dropped once, and no task or scope
//!   stays live.
//! - `fifty_thousand_parked_tasks_cancelled` (and, ignored,
//!   `one_million_parked_tasks_cancelled`): n tasks parked on an event,
//!   then their scope is cancelled. Every future is dropped once, none
//!   runs on, and nothing stays live.
//! - `random_trees_cancelled_from_several_threads` (96 trees of up to
//!   3,000 tasks) and, ignored, `..._long` (2,000 trees of up to 20,000
//!   tasks). Each tree has a random depth (2 to 7) and fan-out (2 to 10)
//!   and runs on a runtime of 1 to 4 workers (a new one every 8 trees).
//!   Scope bodies spawn leaves and tasks that open nested plain or linked
//!   scopes; leaves yield, sometimes spawn a sibling, sometimes cancel
//!   their own scope, sometimes park. Meanwhile one to three OS threads
//!   cancel random scopes at random moments; then the root is cancelled.
//!   Every future is probed. One spawned into a cancelled scope is never
//!   polled. Any other begins at most one poll after a `cancel()` that
//!   reached its scope returned: the poll a worker had already claimed. A
//!   cancel counts as returned once every concurrent cancel has returned,
//!   since a `cancel()` that finds its scope already cancelled returns at
//!   once. No future is polled after `Ready`, each is dropped exactly
//!   once, and no task, scope or timer is left once the root ends. The
//!   run fails if no cancel landed while a tree was still growing.
//! - `cancel_returns_when_a_scope_ends_during_the_cancel`: a staged race.
//!   A scope whose only task is running ends while the canceller is still
//!   dropping another scope's task; `cancel()` must return normally, and
//!   everything must end.
//! - `an_idle_worker_is_woken_for_a_task_queued_behind_a_busy_one`: 2,000
//!   rounds of two tasks that spin, never yielding, until both run,
//!   spawned right after a timer woke a worker. Both workers must pick one
//!   up within 2 s. The race is timing-dependent: a lost wake-up fails
//!   some rounds, not every one, hence the 2,000 rounds.
//!
//! The long runs are `#[ignore]`d:
//! `cargo test --release --test races -- --ignored --nocapture`.
//! A million-task run may take up to 30 minutes before it counts as hung;
//! a random tree, 15 s.
//! The random trees print their seed; `RELIABILITY_SEED=<n> cargo test
//! --test races stress::random_trees -- --nocapture` replays its tree shapes
//! (not the thread interleavings, which differ from run to run).
//! Under Miri the runs shrink themselves: 64 tasks, 2 trees of 40 tasks,
//! 5 rounds of the idle-worker race.

use crate::reliability::{seed, Rng, Spinners};
use crate::support::{
    hang_guard, hang_guard_for, panic_message, runtime, test_name, wait_until, BoxFuture, Clock,
    Counter, Fence, Probe, Probed,
};
use cancel_scope::runtime::Runtime;
use cancel_scope::sync::Event;
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{linked_scope, scope, CancelHandle, CancelReason, Scope};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Tasks in the short "many tasks" runs (the long runs use one million).
const SHORT_TASKS: usize = if cfg!(miri) { 64 } else { 50_000 };
const MILLION: usize = 1_000_000;
/// The hang bound of the long runs.
const LONG_LIMIT: Duration = Duration::from_secs(1800);

// ---------------------------------------------------------------------
// Many tasks through one scope.
// ---------------------------------------------------------------------

/// `n` tasks through one scope: half spawned by the body (they go through
/// the injector) and detached, half spawned by four spawner tasks (they go
/// to the workers' local queues) and joined in batches. Every task runs
/// once, every future is dropped once, and nothing stays live.
fn many_tasks_complete(n: usize) -> Duration {
    let rt = runtime(Clock::Real, 2);
    let ran = Counter::new();
    let drops = Counter::new();
    let start = Instant::now();
    let out = rt.block_on(scope(|s| {
        let (ran, drops) = (ran.clone(), drops.clone());
        async move {
            let spawners = 4;
            let detached = n - n / 2;
            for _ in 0..detached {
                let (ran, guard) = (ran.clone(), drops.on_drop());
                drop(s.spawn(async move {
                    let _guard = guard;
                    ran.inc();
                }));
            }
            let joined = n / 2;
            for k in 0..spawners {
                let per = joined / spawners + usize::from(k < joined % spawners);
                let (s2, ran, drops) = (s.clone(), ran.clone(), drops.clone());
                s.spawn(async move {
                    let mut left = per;
                    while left > 0 {
                        let batch = left.min(1000);
                        left -= batch;
                        let handles: Vec<_> = (0..batch)
                            .map(|j| {
                                let (ran, guard) = (ran.clone(), drops.on_drop());
                                s2.spawn(async move {
                                    let _guard = guard;
                                    ran.inc();
                                    j
                                })
                            })
                            .collect();
                        for (j, h) in handles.into_iter().enumerate() {
                            assert_eq!(h.await, Ok(j), "a joined task's output");
                        }
                    }
                });
            }
        }
    }));
    let elapsed = start.elapsed();
    assert!(out.is_ok(), "the scope was not cancelled: {out:?}");
    // Joined spawns' handles wait on the spawner tasks, so by the time the
    // scope ends every task has run and been released.
    assert_eq!(ran.get(), n, "every task ran exactly once");
    assert_eq!(drops.get(), n, "every future was dropped exactly once");
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    elapsed
}

/// `n` tasks parked in one scope, then cancelled at once: every future is
/// dropped exactly once, none completes, nothing stays live.
fn many_tasks_cancelled(n: usize) -> Duration {
    let rt = runtime(Clock::Real, 2);
    let polled = Counter::new();
    let finished = Counter::new();
    let drops = Counter::new();
    let all_parked = Event::new();
    let forever = Event::new();
    let start = Instant::now();
    let out = rt.block_on(scope(|s| {
        let (polled, finished, drops) = (polled.clone(), finished.clone(), drops.clone());
        let (all_parked, forever) = (all_parked.clone(), forever.clone());
        async move {
            for _ in 0..n {
                let (polled, finished) = (polled.clone(), finished.clone());
                let (all_parked, forever) = (all_parked.clone(), forever.clone());
                let guard = drops.on_drop();
                s.spawn(async move {
                    let _guard = guard;
                    if polled.inc() == n {
                        all_parked.set();
                    }
                    forever.wait().await;
                    finished.inc();
                });
            }
            all_parked.wait().await;
            s.cancel();
            std::future::pending::<()>().await
        }
    }));
    let elapsed = start.elapsed();
    let err = out.expect_err("the scope was cancelled");
    assert_eq!(err.reason(), &CancelReason::Explicit);
    assert_eq!(polled.get(), n);
    assert_eq!(finished.get(), 0, "no parked task ran on");
    assert_eq!(drops.get(), n, "every future was dropped exactly once");
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
    elapsed
}

#[test]
fn fifty_thousand_tasks_through_one_scope() {
    let _hang = hang_guard();
    let t = many_tasks_complete(SHORT_TASKS);
    println!("{SHORT_TASKS} tasks completed through one scope in {t:?}");
}

#[test]
fn fifty_thousand_parked_tasks_cancelled() {
    let _hang = hang_guard();
    let t = many_tasks_cancelled(SHORT_TASKS);
    println!("{SHORT_TASKS} parked tasks spawned and cancelled in {t:?}");
}

#[test]
#[ignore = "long: cargo test --release --test races -- --ignored"]
fn one_million_tasks_through_one_scope() {
    let _hang = hang_guard_for(&test_name(), LONG_LIMIT);
    let t = many_tasks_complete(MILLION);
    println!("{MILLION} tasks completed through one scope in {t:?}");
}

#[test]
#[ignore = "long: cargo test --release --test races -- --ignored"]
fn one_million_parked_tasks_cancelled() {
    let _hang = hang_guard_for(&test_name(), LONG_LIMIT);
    let t = many_tasks_cancelled(MILLION);
    println!("{MILLION} parked tasks spawned and cancelled in {t:?}");
}

// ---------------------------------------------------------------------
// A cancel racing the release of the scope's last task.
// ---------------------------------------------------------------------

/// Dropped by the canceller: lets the spinning task finish, then holds
/// the cancelling thread until that task's scope has left the tree.
struct HoldCanceller {
    finish_task: Arc<AtomicBool>,
    rt: Arc<Runtime>,
    scopes_after: usize,
}

impl Drop for HoldCanceller {
    fn drop(&mut self) {
        self.finish_task.store(true, SeqCst);
        let rt = &self.rt;
        wait_until("the finished task's scope to leave the tree", || {
            rt.live_scopes() <= self.scopes_after
        });
    }
}

/// `cancel()` walks the subtree: for each scope, it takes the scope's
/// tasks under that scope's lock, cancels them with no lock held (dropping
/// the idle ones; running ones are left to their runners), then locks the
/// scope again to settle the count of futures it dropped. A scope none of
/// whose tasks it dropped may end and leave the tree meanwhile: here scope
/// `P`, whose only task finishes while the canceller drops a task of the
/// sibling scope `Q`. `cancel()` must still return normally, and
/// everything end.
#[test]
fn cancel_returns_when_a_scope_ends_during_the_cancel() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, 2));
    let started = Arc::new(AtomicBool::new(false));
    let finish_task = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<CancelHandle>();
    let canceller = {
        let started = started.clone();
        thread::spawn(move || {
            let handle = rx.recv().expect("the scope's cancel handle");
            wait_until("the task to run", || started.load(SeqCst));
            std::panic::catch_unwind(AssertUnwindSafe(|| handle.cancel()))
                .map_err(|p| panic_message(&*p))
        })
    };
    // The scope future runs on a thread of its own: if `cancel()` fails
    // half-way, it never ends, and the test reports the cancel's panic.
    let driver = {
        let rt = rt.clone();
        thread::spawn(move || {
            rt.block_on(scope(|g| {
                tx.send(g.cancel_handle()).unwrap();
                let rt2 = rt.clone();
                async move {
                    // Q first, so that the cancel walk reaches P (opened
                    // later) first, then Q.
                    let q_open = Event::new();
                    let q = q_open.clone();
                    let hold = HoldCanceller {
                        finish_task: finish_task.clone(),
                        rt: rt2,
                        scopes_after: 2,
                    };
                    g.spawn(scope(move |q_scope| async move {
                        q_scope.spawn(async move {
                            let _hold = hold;
                            std::future::pending::<()>().await
                        });
                        q.set();
                        std::future::pending::<()>().await
                    }));
                    q_open.wait().await;
                    g.spawn(scope(move |p_scope| async move {
                        p_scope.spawn(async move {
                            started.store(true, SeqCst);
                            while !finish_task.load(SeqCst) {
                                std::hint::spin_loop();
                            }
                        });
                        std::future::pending::<()>().await
                    }));
                    std::future::pending::<()>().await
                }
            }))
        })
    };
    let cancelled = canceller.join().expect("the canceller thread");
    assert_eq!(cancelled, Ok(()), "cancel() panicked");
    let out = driver.join().expect("the scope's thread");
    assert_eq!(
        out.map_err(|c| c.reason().clone()),
        Err(CancelReason::Explicit)
    );
    assert_eq!(rt.live_tasks(), 0);
    assert_eq!(rt.live_scopes(), 0);
}

// ---------------------------------------------------------------------
// An idle worker is woken for a task queued behind a busy one.
// ---------------------------------------------------------------------

/// One round: a scope body registers a timer (which wakes a sleeping
/// worker to look at it) and at once spawns two tasks that spin, never
/// yielding, until both run. They meet only if both workers pick one up;
/// returns false if they did not within `limit`.
fn spinners_meet_after_a_timer(rt: &Runtime, limit: Duration) -> bool {
    let out = rt.block_on(scope(|s| async move {
        let mut timer = Box::pin(sleep(Duration::from_secs(3600)));
        assert!(futures_lite::future::poll_once(&mut timer).await.is_none());
        Spinners::spawn(&s, 2, limit).met().await
    }));
    out == Ok(true)
}

/// Two runnable tasks and two workers: both tasks must run at once. A
/// worker that was woken to search, found nothing, and then saw the new
/// tasks in its last look before sleeping, must wake the other worker
/// (the posters did not, since it was searching); otherwise the second
/// task waits in the busy worker's queue while the other worker sleeps.
#[test]
fn an_idle_worker_is_woken_for_a_task_queued_behind_a_busy_one() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let rounds = if cfg!(miri) { 5 } else { 2000 };
    for round in 0..rounds {
        assert!(
            spinners_meet_after_a_timer(&rt, Duration::from_secs(2)),
            "round {round}: a runnable task waited 2 s in a queue while a worker slept"
        );
    }
    assert_eq!(rt.pending_timers(), 0);
}

// ---------------------------------------------------------------------
// Random trees cancelled from several threads.
// ---------------------------------------------------------------------

/// Serializes nothing, but tells when a cancel is complete: a flag handed
/// to [`Gate::cancel`] is set only once no cancel is running any more.
/// (A `cancel()` that finds its scope already cancelled returns at once,
/// while the thread that did cancel it may still be dropping futures; once
/// every concurrent cancel has returned, all of them are done.)
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    running: usize,
    ready: Vec<Fence>,
}

impl Gate {
    /// Cancels `handle`'s scope; `covers` is the flag of the highest scope
    /// this cancel reaches (through links).
    fn cancel(&self, handle: &CancelHandle, covers: &Fence) {
        self.state.lock().unwrap().running += 1;
        handle.cancel();
        // An ended scope is not cancelled by a late handle: then nothing
        // was reached, and nothing may be flagged.
        let reached = handle.is_cancelled();
        let mut state = self.state.lock().unwrap();
        state.running -= 1;
        if reached {
            state.ready.push(covers.clone());
        }
        if state.running == 0 {
            for flag in state.ready.drain(..) {
                flag.store(true, SeqCst);
            }
        }
    }
}

/// One future of a random tree, as its probe saw it.
///
/// Its fences are the flags of its scope and of that scope's ancestors. A
/// flag is raised right after a `cancel()` that reaches the scope has
/// returned (and every cancel running at the same time has returned too).
/// From then on the future may not be polled again, except for one poll
/// that a worker had already claimed when the cancel ran: that worker
/// enters the poll a moment later, and drops the future when the poll
/// returns. So: a future created while a flag was already up must never
/// be polled (its spawn was refused), and any other future may begin at
/// most one poll after a flag went up.
struct Tracked {
    probe: Arc<Probe>,
    /// A fence was already up when the future was created.
    born_cancelled: bool,
}

impl Tracked {
    /// The rules above that this future broke, and the rules that every
    /// future keeps: never polled after `Ready`, dropped exactly once.
    fn broken_rules(&self) -> Vec<String> {
        let p = &self.probe;
        let mut broken = Vec::new();
        if self.born_cancelled {
            if p.polls() > 0 {
                broken.push("spawned into a cancelled scope, it was polled".to_string());
            }
        } else if p.late_polls() > 1 {
            broken.push(format!(
                "polled {} times after its scope's cancel() returned",
                p.late_polls()
            ));
        }
        if p.polls_after_ready() > 0 {
            broken.push("polled after it returned Ready".to_string());
        }
        if p.drops() != 1 {
            broken.push(format!(
                "dropped {} times (polled {}, completed {})",
                p.drops(),
                p.polls(),
                p.completions()
            ));
        }
        broken
    }
}

/// One random tree and everything the checks need.
struct Forest {
    tracked: Mutex<Vec<Tracked>>,
    /// Every scope opened so far, for the cancelling threads.
    scopes: Mutex<Vec<(CancelHandle, Fence)>>,
    gate: Gate,
    /// Tasks that may still be spawned.
    budget: AtomicIsize,
    /// Never set: parked futures wait on it until they are cancelled.
    forever: Event,
    max_depth: usize,
    max_fanout: u64,
    /// The root scope has ended.
    done: AtomicBool,
    /// Futures created so far.
    created: AtomicUsize,
    /// `created` at each cancel.
    cancel_points: Mutex<Vec<usize>>,
}

/// Where in the tree a future lives.
#[derive(Clone)]
struct Place {
    scope: Scope,
    /// The flags of this scope and its ancestors.
    watch: Arc<[Fence]>,
    /// The flag of the scope a `cancel()` of this one reaches: its own, or
    /// for a linked scope its parent's `covers`.
    covers: Fence,
    depth: usize,
}

impl Forest {
    fn track<F: Future>(&self, fut: F, watch: &Arc<[Fence]>) -> Probed<F> {
        self.created.fetch_add(1, SeqCst);
        let probe = Probe::new();
        let born_cancelled = watch.iter().any(|f| f.load(SeqCst));
        self.tracked.lock().unwrap().push(Tracked {
            probe: probe.clone(),
            born_cancelled,
        });
        Probed::new(fut, probe, watch.clone())
    }

    fn take_budget(&self) -> bool {
        self.budget.fetch_sub(1, SeqCst) > 0
    }

    fn register(&self, at: &Place) {
        self.scopes
            .lock()
            .unwrap()
            .push((at.scope.cancel_handle(), at.covers.clone()));
    }

    fn cancel(&self, handle: &CancelHandle, covers: &Fence) {
        let point = self.created.load(SeqCst);
        self.cancel_points.lock().unwrap().push(point);
        self.gate.cancel(handle, covers);
    }
}

/// A scope body: spawns up to `max_fanout` children (leaves, or tasks
/// opening a nested plain or linked scope), yielding between spawns, and
/// sometimes parks forever afterwards.
fn body(f: Arc<Forest>, at: Place, mut rng: Rng) -> BoxFuture {
    Box::pin(async move {
        let fanout = 1 + rng.below(f.max_fanout);
        for _ in 0..fanout {
            if !f.take_budget() {
                break;
            }
            let child_rng = rng.fork();
            let kind = if at.depth < f.max_depth {
                rng.below(3)
            } else {
                0
            };
            let child = match kind {
                0 => leaf(f.clone(), at.clone(), child_rng),
                1 => nested(f.clone(), &at, child_rng, false),
                _ => nested(f.clone(), &at, child_rng, true),
            };
            drop(at.scope.spawn(f.track(child, &at.watch)));
            if rng.chance(40) {
                yield_now().await;
            }
        }
        if rng.chance(25) {
            f.forever.wait().await;
        }
    })
}

/// A leaf task: yields a few times, sometimes spawns a sibling, sometimes
/// cancels its own scope, sometimes parks forever.
fn leaf(f: Arc<Forest>, at: Place, mut rng: Rng) -> BoxFuture {
    Box::pin(async move {
        for _ in 0..rng.below(6) {
            yield_now().await;
        }
        if rng.chance(15) && f.take_budget() {
            let sibling = leaf(f.clone(), at.clone(), rng.fork());
            drop(at.scope.spawn(f.track(sibling, &at.watch)));
        }
        if rng.chance(2) {
            f.cancel(&at.scope.cancel_handle(), &at.covers);
        }
        if rng.chance(30) {
            f.forever.wait().await;
        }
        for _ in 0..rng.below(3) {
            yield_now().await;
        }
    })
}

/// A task that opens a nested scope (plain or linked) and runs a random
/// body in it.
fn nested(f: Arc<Forest>, at: &Place, rng: Rng, linked: bool) -> BoxFuture {
    let flag = Fence::default();
    let watch: Arc<[Fence]> = at.watch.iter().cloned().chain([flag.clone()]).collect();
    let covers = if linked { at.covers.clone() } else { flag };
    let depth = at.depth + 1;
    let open = move |s: Scope| {
        let place = Place {
            scope: s,
            watch,
            covers,
            depth,
        };
        f.register(&place);
        let b = body(f.clone(), place.clone(), rng);
        f.track(b, &place.watch)
    };
    if linked {
        Box::pin(async move {
            let _ = linked_scope(open).await;
        })
    } else {
        Box::pin(async move {
            let _ = scope(open).await;
        })
    }
}

/// How many times a canceller yields, at most, waiting for its tree to
/// grow; and the longest pause between its cancels, in spins. (Miri runs
/// code thousands of times slower.)
const GROWTH_WAIT: usize = if cfg!(miri) { 20 } else { 20_000 };
const PAUSE_SPINS: u64 = if cfg!(miri) { 50 } else { 50_000 };
/// The longest a canceller waits for its tree to grow. On a loaded
/// machine a `yield_now` can give up a whole time slice, and 20,000 of
/// them took over 10 s: the tree must not wait on the machine.
const GROWTH_TIME: Duration = Duration::from_millis(50);

/// A cancelling OS thread: waits until the tree has grown to a random
/// size (or stopped growing), then makes `n` cancels of random scopes,
/// each after a random pause (spinning or yielding; pauses only shape the
/// timing).
fn canceller(f: Arc<Forest>, mut rng: Rng, n: u64, budget: usize) {
    let grown = rng.below(budget as u64) as usize;
    let since = Instant::now();
    for _ in 0..GROWTH_WAIT {
        if f.created.load(SeqCst) >= grown
            || f.done.load(SeqCst)
            || f.budget.load(SeqCst) <= 0
            || since.elapsed() > GROWTH_TIME
        {
            break;
        }
        thread::yield_now();
    }
    let mut done = 0;
    while done < n && !f.done.load(SeqCst) {
        match rng.below(3) {
            0 => {}
            1 => (0..rng.below(50)).for_each(|_| thread::yield_now()),
            _ => (0..rng.below(PAUSE_SPINS)).for_each(|_| std::hint::spin_loop()),
        }
        let pick = {
            let scopes = f.scopes.lock().unwrap();
            match scopes.len() {
                0 => None,
                len => Some(scopes[rng.below(len as u64) as usize].clone()),
            }
        };
        match pick {
            Some((handle, covers)) => {
                f.cancel(&handle, &covers);
                done += 1;
            }
            None => thread::yield_now(),
        }
    }
}

/// How long one random tree may take before it counts as hung: trees
/// take milliseconds, so this only turns a hang into a quick failure.
const TREE_LIMIT: Duration = Duration::from_secs(if cfg!(miri) { 3600 } else { 15 });

/// Totals over the trees of one run.
#[derive(Default, Debug)]
struct Totals {
    trees: usize,
    futures: usize,
    scopes: usize,
    cancels: usize,
    cancels_while_spawning: usize,
    late_polls: usize,
    completed_trees: usize,
}

/// Grows one random tree on `rt` and cancels it from several threads.
fn run_tree(rt: &Runtime, tree_seed: u64, budget: usize) -> Totals {
    let mut rng = Rng::new(tree_seed);
    let f = Arc::new(Forest {
        tracked: Mutex::new(Vec::new()),
        scopes: Mutex::new(Vec::new()),
        gate: Gate::default(),
        budget: AtomicIsize::new(budget as isize),
        forever: Event::new(),
        max_depth: 2 + rng.below(6) as usize,
        max_fanout: 2 + rng.below(9),
        done: AtomicBool::new(false),
        created: AtomicUsize::new(0),
        cancel_points: Mutex::new(Vec::new()),
    });
    let cancellers: Vec<_> = (0..1 + rng.below(3))
        .map(|_| {
            let (f, mut r) = (f.clone(), rng.fork());
            let n = 1 + r.below(6);
            thread::spawn(move || canceller(f, r, n, budget))
        })
        .collect();
    // Once the cancellers are through, cancel the root (if it still runs)
    // so that trees with parked futures end.
    let closer = {
        let f = f.clone();
        thread::spawn(move || {
            for c in cancellers {
                c.join().expect("a canceller thread");
            }
            let root = loop {
                if let Some(root) = f.scopes.lock().unwrap().first().cloned() {
                    break root;
                }
                thread::yield_now();
            };
            f.cancel(&root.0, &root.1);
        })
    };
    let root_flag = Fence::default();
    let body_rng = rng.fork();
    let out = rt.block_on(scope(|s| {
        let place = Place {
            scope: s,
            watch: Arc::from(vec![root_flag.clone()]),
            covers: root_flag.clone(),
            depth: 0,
        };
        f.register(&place);
        f.track(body(f.clone(), place.clone(), body_rng), &place.watch)
    }));
    f.done.store(true, SeqCst);
    closer.join().expect("the closer thread");

    let context = format!("tree seed {tree_seed}");
    let tracked = f.tracked.lock().unwrap();
    let broken: Vec<String> = tracked
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            let rules = t.broken_rules().into_iter();
            rules.map(move |rule| format!("future {i}: {rule}"))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "{context}: {} broken rules, first ones: {:#?}",
        broken.len(),
        &broken[..broken.len().min(10)]
    );
    assert_eq!(
        rt.live_tasks(),
        0,
        "{context}: live tasks after the root ended"
    );
    assert_eq!(
        rt.live_scopes(),
        0,
        "{context}: live scopes after the root ended"
    );
    assert_eq!(rt.pending_timers(), 0, "{context}: pending timers");
    let points = f.cancel_points.lock().unwrap();
    let scopes = f.scopes.lock().unwrap().len();
    Totals {
        trees: 1,
        futures: tracked.len(),
        scopes,
        cancels: points.len(),
        cancels_while_spawning: points.iter().filter(|&&p| p < tracked.len()).count(),
        late_polls: tracked.iter().map(|t| t.probe.late_polls()).sum(),
        completed_trees: usize::from(out.is_ok()),
    }
}

impl Totals {
    fn add(&mut self, t: Totals) {
        self.trees += t.trees;
        self.futures += t.futures;
        self.scopes += t.scopes;
        self.cancels += t.cancels;
        self.cancels_while_spawning += t.cancels_while_spawning;
        self.late_polls += t.late_polls;
        self.completed_trees += t.completed_trees;
    }
}

/// `trees` random trees of up to `budget` tasks each, on runtimes of 1 to
/// 4 workers (a new runtime every 8 trees).
fn random_trees(trees: usize, budget: usize, default_seed: u64) {
    let base = seed(default_seed);
    println!("random trees: seed {base}");
    let start = Instant::now();
    let mut totals = Totals::default();
    let mut rng = Rng::new(base);
    let mut rt = None;
    for i in 0..trees {
        if i % 8 == 0 {
            let workers = 1 + rng.below(4) as usize;
            rt = Some(runtime(Clock::Real, workers));
        }
        let tree_seed = rng.next_u64();
        let what = format!("{} (random tree, seed {tree_seed})", test_name());
        let _hang = hang_guard_for(&what, TREE_LIMIT);
        totals.add(run_tree(rt.as_ref().unwrap(), tree_seed, budget));
    }
    drop(rt);
    println!("random trees: {totals:?} in {:?}", start.elapsed());
    assert!(
        totals.cancels_while_spawning > 0,
        "no cancel landed while the trees grew"
    );
}

#[test]
fn random_trees_cancelled_from_several_threads() {
    let (trees, budget) = if cfg!(miri) { (2, 40) } else { (96, 3000) };
    random_trees(trees, budget, 0x5EED_0001);
}

#[test]
#[ignore = "long: cargo test --release --test races -- --ignored"]
fn random_trees_cancelled_from_several_threads_long() {
    random_trees(2000, 20_000, 0x5EED_0002);
}
