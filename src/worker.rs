//! A worker thread: find a task, run it, park when there is none.
//!
//! The worker's owned half is [`Core`] (its local queue, its tick and
//! random state), reachable from the thread-local `CURRENT_CORE` so that a
//! task woken on this thread lands in this worker's LIFO slot or queue.
//! The shared half is the runtime's `Shared`, which also holds every
//! worker's [`LifoSlot`], so that an idle worker can take a task stuck
//! behind a busy one (the watch, in `idle.rs`).

use crate::idle;
use crate::lifo_slot::{LifoSlot, Look};
use crate::loom::deque::Worker as Deque;
use crate::queue;
use crate::runtime::Shared;
use crate::task::TaskRef;
use crate::time::pace::Pace;
use crate::trace::EventKind;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The owned half of a worker thread.
pub(crate) struct Core {
    id: usize,
    local: Deque<TaskRef>,
    /// Tasks run in a row from this worker's LIFO slot; capped at
    /// [`MAX_LIFO_RUNS`].
    lifo_runs: Cell<u32>,
    /// What this worker saw in each worker's LIFO slot as its last watch
    /// began.
    looks: Box<[Cell<Look>]>,
    /// Set while the worker is counted as asleep (inside `park`): a task
    /// woken then (by a timer it fires) must be visible to the others, so
    /// it skips the LIFO slot.
    parking: Cell<bool>,
    /// Identity of the runtime this core belongs to.
    shared: *const Shared,
    tick: Cell<u32>,
    rng: Cell<u64>,
    /// When to look for due timers between two tasks.
    pace: Pace,
}

thread_local! {
    /// This thread's core, or null.
    ///
    /// Rule: non-null only while `run` is on this thread's stack, which
    /// owns the core for its whole duration. No destructor: reachable even
    /// during thread teardown.
    static CURRENT_CORE: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
}

/// This thread's worker index, if it is a worker of `shared`'s runtime.
pub(crate) fn current_id(shared: &Shared) -> Option<usize> {
    let core = CURRENT_CORE.with(Cell::get);
    // SAFETY: by the rule on CURRENT_CORE, a non-null pointer is to the
    // core that `run`, below us on this thread's stack, owns.
    unsafe { core.as_ref() }
        .filter(|core| std::ptr::eq(core.shared, shared))
        .map(|core| core.id)
}

/// Whether this thread is a worker of any runtime.
pub(crate) fn is_worker_thread() -> bool {
    !CURRENT_CORE.with(Cell::get).is_null()
}

/// How many tasks in a row a worker takes from its LIFO slot before it
/// looks at its queue again. Two tasks waking each other would otherwise
/// hold the slot forever and starve the queue; tokio uses 3 as well.
const MAX_LIFO_RUNS: u32 = 3;

/// How long a watching worker sleeps between two looks at the others' LIFO
/// slots (`idle.rs`). A task stuck behind a busy worker waits at most
/// about twice this, and usually once: the watch begins as the busy worker
/// starts to run (the baton pass). Picked
/// so that a task woken before a long computation starts within a few
/// milliseconds, while the watcher wakes only 500 times a second, and only
/// while some worker runs and another is idle.
const WATCH_INTERVAL: Duration = Duration::from_millis(2);

/// Where [`push_local`] should put a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// In the LIFO slot: run it next (a wake).
    Next,
    /// At the back of the local queue (a spawn, or a task woken during its
    /// own poll).
    Back,
}

/// Whether other workers can see what [`push_local`] queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The queue (or a task bumped out of the LIFO slot into it) got a task
    /// that other workers may steal: they should be told.
    Stealable,
    /// Only the LIFO slot changed: this worker runs the task next.
    Private,
}

/// Queues `task` on this thread's worker if this thread is a worker of
/// `shared`; hands it back otherwise.
pub(crate) fn push_local(shared: &Shared, task: TaskRef, to: Push) -> Result<Pushed, TaskRef> {
    let core = CURRENT_CORE.with(Cell::get);
    // SAFETY: by the rule on CURRENT_CORE, a non-null pointer is to the
    // core that `run`, below us on this thread's stack, owns.
    match unsafe { core.as_ref() } {
        Some(core) if std::ptr::eq(core.shared, shared) => Ok(core.push(shared, task, to)),
        _ => Err(task),
    }
}

/// Makes a worker's local queue (FIFO: see ARCHITECTURE.md), to be moved
/// into its thread.
pub(crate) fn new_queue() -> Deque<TaskRef> {
    Deque::new_fifo()
}

/// The body of worker thread `id`. A panic here is a runtime bug: abort
/// rather than leave a half-dead runtime (user panics never get here; the
/// task catches them).
pub(crate) fn run(id: usize, local: Deque<TaskRef>, shared: Arc<Shared>) {
    let core = Core {
        id,
        local,
        lifo_runs: Cell::new(0),
        looks: (0..shared.lifo_slots().len())
            .map(|_| Cell::default())
            .collect(),
        parking: Cell::new(false),
        shared: Arc::as_ptr(&shared),
        tick: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1)),
        pace: Pace::new(),
    };
    CURRENT_CORE.with(|c| c.set(&core));
    let result = catch_unwind(AssertUnwindSafe(|| {
        crate::context::enter_runtime(&shared, || core.run_loop(&shared))
    }));
    CURRENT_CORE.with(|c| c.set(std::ptr::null()));
    if result.is_err() {
        eprintln!("cancel-scope: a worker thread hit an internal error; aborting");
        std::process::abort();
    }
    // Shutdown: drop the queue's references; the tasks' futures are
    // dropped by the runtime's shutdown cancel.
    drop(core.lifo(&shared).pop());
    while core.local.pop().is_some() {}
}

impl Core {
    fn push(&self, shared: &Shared, task: TaskRef, to: Push) -> Pushed {
        let task = match to {
            Push::Next if !self.parking.get() => match self.lifo(shared).push(task) {
                Some(bumped) => bumped,
                None => return Pushed::Private,
            },
            Push::Next | Push::Back => task,
        };
        self.local.push(task);
        Pushed::Stealable
    }

    fn lifo<'a>(&self, shared: &'a Shared) -> &'a LifoSlot {
        &shared.lifo_slots()[self.id]
    }

    fn run_loop(&self, shared: &Shared) {
        let mut searching = false;
        while !shared.is_shutdown() {
            let tick = self.tick.get().wrapping_add(1);
            self.tick.set(tick);
            // A worker that never runs out of tasks never parks, where
            // timers are fired otherwise: look now and then (`pace.rs`).
            self.pace.tick(&shared.timers);
            if let Some(task) = self.find_task(shared, tick) {
                if searching {
                    searching = false;
                    if shared.idle.stop_searching() {
                        // We were the last searcher: pass the baton.
                        shared.idle.notify_work();
                    }
                }
                if let Some(task) = task.run() {
                    // Woken during its poll: behind the tasks waiting.
                    shared.schedule(task, Push::Back);
                }
                continue;
            }
            if shared.timers.fire_expired() {
                continue; // a woken task may be in our queue now
            }
            self.park(shared, searching);
            searching = true;
        }
    }

    fn find_task(&self, shared: &Shared, tick: u32) -> Option<TaskRef> {
        if let Some(task) = self.lifo(shared).pop() {
            if self.lifo_runs.get() < MAX_LIFO_RUNS {
                self.lifo_runs.set(self.lifo_runs.get() + 1);
                return Some(task);
            }
            // Enough in a row: the slot's task queues like any other.
            self.local.push(task);
        }
        self.lifo_runs.set(0);
        queue::find_task(
            &self.local,
            shared.injector(),
            shared.stealers(),
            tick,
            self.random(),
            |from| shared.record(|| EventKind::Steal { from }),
        )
    }

    /// Falls asleep following the protocol in `idle.rs`; the worker is
    /// searching when it wakes.
    fn park(&self, shared: &Shared, searching: bool) {
        // Tasks this worker spawned and others freed: their memory goes
        // back while the worker has nothing better to do.
        crate::pool::drain();
        self.parking.set(true);
        let bed = Bed { core: self, shared };
        shared.idle.sleep(self.id, searching, &bed);
        self.parking.set(false);
    }

    /// The watch (`idle.rs`), as it starts: what each other worker's LIFO
    /// slot holds.
    fn look_at_slots(&self, shared: &Shared) {
        for (id, slot) in shared.lifo_slots().iter().enumerate() {
            if id != self.id {
                self.looks[id].set(slot.look());
            }
        }
    }

    /// The watch, as it ends: takes into our queue every task that has
    /// sat in another worker's LIFO slot since
    /// [`look_at_slots`](Core::look_at_slots).
    fn rescue_stuck(&self, shared: &Shared) {
        for (id, slot) in shared.lifo_slots().iter().enumerate() {
            if id != self.id && slot.look().stuck_since(self.looks[id].get()) {
                if let Some(task) = slot.take() {
                    self.local.push(task);
                }
            }
        }
    }

    /// xorshift64: cheap, and good enough to pick a steal victim.
    fn random(&self) -> usize {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x as usize
    }
}

/// What a worker falling asleep tells the sleep protocol.
struct Bed<'a> {
    core: &'a Core,
    shared: &'a Shared,
}

impl idle::Bed for Bed<'_> {
    fn has_work(&self) -> bool {
        let shared = self.shared;
        let due = shared
            .timers
            .next_deadline()
            .is_some_and(|d| d <= shared.timers.now());
        due || shared.is_shutdown()
            || queue::any_work(shared.injector(), shared.stealers())
            || shared.auto_advance()
    }

    fn wake_at(&self) -> Option<Instant> {
        // A paused clock's instants are not real time: wait for a wake-up
        // (the last thread to go idle advances the clock).
        let timers = &self.shared.timers;
        timers
            .next_deadline()
            .filter(|_| !timers.clock().is_paused())
    }

    fn watch_interval(&self) -> Option<Duration> {
        Some(WATCH_INTERVAL)
    }

    fn watch_begins(&self) {
        self.core.look_at_slots(self.shared);
    }

    fn watch_ends(&self) {
        self.core.rescue_stuck(self.shared);
    }
}
