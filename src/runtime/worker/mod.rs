//! A worker thread: find a task, run it, park when there is none.
//!
//! The worker's owned half is [`Core`] (its local queue, its tick and
//! random state), reachable from the thread-local `CURRENT_CORE` so that a
//! task woken on this thread lands in this worker's LIFO slot or queue.
//! The shared half is the runtime's `Shared`, which also holds every
//! worker's [`LifoSlot`], so that an idle worker can take a task stuck
//! behind a busy one (the watch, in `idle/mod.rs`).
//!
//! A worker waits for work in one of two ways. On its own condition
//! variable (`Idle::sleep`), or, with the `async-io` feature, in
//! async-io's reactor: then the whole loop runs inside async-io's
//! `block_on` (`reactor.rs`), [`Core::run_loop`] returns when the worker
//! would sleep, and a task the reactor wakes on this thread goes to this
//! worker's own queue.
//!
//! Where a task woken on a worker thread goes follows the worker's `Phase`:
//! `Running`, its LIFO slot; `Asleep` (falling asleep, or firing timers
//! while parked), its queue, with the other workers told, so that what it
//! wakes stays visible to them; `InReactor`, its queue, nobody told, and its
//! nap ends. A worker that never runs out of tasks looks for due timers as
//! often as its `Pace` says (`time/pace.rs`).
//!
//! A panic that escapes a task's `run` is a runtime bug (the task catches
//! user panics): the worker aborts the process rather than leave a
//! half-dead runtime.

use crate::loom::deque::Worker as Deque;
use crate::runtime::idle::{self, Awake, Nap, ReactorWork, Woken};
use crate::runtime::lifo_slot::{LifoSlot, Look};
use crate::runtime::queue::{self, GLOBAL_QUEUE_INTERVAL};
use crate::runtime::Shared;
use crate::task::TaskRef;
use crate::time::pace::Pace;
use crate::trace::EventKind;
use std::cell::{Cell, OnceCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

#[cfg(feature = "async-io")]
mod reactor;

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
    /// What the worker is doing, as far as a task woken on its thread
    /// needs to know (see [`Phase`]).
    phase: Cell<Phase>,
    /// Whether the worker is counted as searching (`idle/mod.rs`).
    searching: Cell<bool>,
    /// How this worker meets async-io's reactor.
    io: Cell<IoRole>,
    /// Whether the reactor gave this worker tasks during its current nap.
    reactor_work: Cell<ReactorWork>,
    /// The waker of the `block_on` this worker runs in, when it drives the
    /// reactor: a task woken on this thread during a nap wakes it.
    nap_waker: OnceCell<Waker>,
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
/// slots (`idle/mod.rs`). A task stuck behind a busy worker waits at most
/// about twice this, and usually once: the watch begins as the busy worker
/// starts to run (the baton pass). Picked
/// so that a task woken before a long computation starts within a few
/// milliseconds, while the watcher wakes only 500 times a second, and only
/// while some worker runs and another is idle.
const WATCH_INTERVAL: Duration = Duration::from_millis(2);

/// What a worker is doing, for a task woken on its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Running tasks: a wake goes to the LIFO slot.
    Running,
    /// Running since the reactor woke it with tasks of its own, while no
    /// sleeping worker may be watching: the first wake into the LIFO slot
    /// makes sure one is (`Idle::call_watcher`), then the phase is
    /// `Running`.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    Unwatched,
    /// Counted as asleep (falling asleep, or firing timers while parked):
    /// a task woken then must be visible to the others, so it skips the
    /// LIFO slot, and they are told.
    Asleep,
    /// In async-io's reactor (napping, or looking at it between tasks): a
    /// woken task goes to the local queue and this worker runs it when
    /// the reactor returns; nobody else is told.
    InReactor,
}

/// How a worker meets async-io's reactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IoRole {
    /// It sleeps on its condition variable; async-io, if used, runs its
    /// reactor on its own thread.
    Sleeps,
    /// It naps in the reactor.
    Naps,
    /// It naps in the reactor, which has given it tasks: while busy, it
    /// also looks at the reactor every [`GLOBAL_QUEUE_INTERVAL`] tasks, so
    /// that I/O is not left to async-io's thread while every worker runs.
    NapsAndLooks,
}

/// Why [`Core::run_loop`] returned.
#[derive(Debug)]
enum Pause {
    /// The runtime shuts down.
    Shutdown,
    /// The worker fell asleep in the reactor: `block_on` waits for the
    /// nap's end.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    Nap(Nap),
    /// Time to let the reactor deliver what is ready, without waiting.
    LookAtIo,
}

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
        phase: Cell::new(Phase::Running),
        searching: Cell::new(false),
        io: Cell::new(match shared.workers_drive_io() {
            true => IoRole::Naps,
            false => IoRole::Sleeps,
        }),
        reactor_work: Cell::new(ReactorWork::None),
        nap_waker: OnceCell::new(),
        shared: Arc::as_ptr(&shared),
        tick: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1)),
        pace: Pace::new(),
    };
    CURRENT_CORE.with(|c| c.set(&core));
    let result = catch_unwind(AssertUnwindSafe(|| {
        crate::runtime::context::enter_runtime(&shared, || core.run(&shared))
    }));
    CURRENT_CORE.with(|c| c.set(std::ptr::null()));
    if result.is_err() {
        crate::panic::abort_internal_error("a worker thread");
    }
    // Shutdown: drop the queue's references; the tasks' futures are
    // dropped by the runtime's shutdown cancel.
    drop(core.lifo(&shared).pop());
    while core.local.pop().is_some() {}
}

impl Core {
    #[inline]
    fn push(&self, shared: &Shared, task: TaskRef, to: Push) -> Pushed {
        let task = match to {
            Push::Next => match self.phase.get() {
                Phase::Running => match self.lifo(shared).push(task) {
                    Some(bumped) => bumped,
                    None => return Pushed::Private,
                },
                Phase::Asleep => task,
                Phase::Unwatched | Phase::InReactor => return self.wake_aside(shared, task),
            },
            // A spawn, or a task woken during its own poll: never in the
            // reactor, but for a user's waker that spawns, which is told
            // to the others like any push.
            Push::Back => task,
        };
        self.local.push(task);
        Pushed::Stealable
    }

    /// [`push`](Core::push) of a woken task in the phases of a worker that
    /// drives the reactor, out of line so that the common path stays
    /// short.
    #[cold]
    #[inline(never)]
    fn wake_aside(&self, shared: &Shared, task: TaskRef) -> Pushed {
        if self.phase.get() == Phase::InReactor {
            self.local.push(task);
            self.got_reactor_work();
            return Pushed::Private;
        }
        // Unwatched: the first task this worker may leave in its LIFO slot
        // since it woke for the reactor's tasks; make sure a sleeper
        // watches it.
        self.phase.set(Phase::Running);
        shared.idle.call_watcher();
        match self.lifo(shared).push(task) {
            Some(bumped) => {
                self.local.push(bumped);
                Pushed::Stealable
            }
            None => Pushed::Private,
        }
    }

    /// Runs the worker until shutdown: in async-io's `block_on` if it
    /// drives the reactor, else parking on its condition variable.
    fn run(&self, shared: &Shared) {
        #[cfg(feature = "async-io")]
        if self.io.get() != IoRole::Sleeps {
            return reactor::run(self, shared);
        }
        let pause = self.run_loop(shared);
        debug_assert!(matches!(pause, Pause::Shutdown), "{pause:?}");
    }

    fn lifo<'a>(&self, shared: &'a Shared) -> &'a LifoSlot {
        &shared.lifo_slots()[self.id]
    }

    /// Finds and runs tasks until the runtime shuts down, or, when this
    /// worker drives the reactor, until it naps or should look at the
    /// reactor (then `reactor.rs` calls it again).
    fn run_loop(&self, shared: &Shared) -> Pause {
        while !shared.is_shutdown() {
            let tick = self.tick.get().wrapping_add(1);
            self.tick.set(tick);
            // A worker that never runs out of tasks never parks, where
            // timers are fired (and the reactor waited in) otherwise: fire
            // them now and then (`pace.rs`), and look at the reactor.
            self.pace.tick(&shared.timers);
            if tick % GLOBAL_QUEUE_INTERVAL == 0 && self.io.get() == IoRole::NapsAndLooks {
                return Pause::LookAtIo;
            }
            if let Some(task) = self.find_task(shared, tick) {
                if self.searching.get() {
                    self.searching.set(false);
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
            if let Some(nap) = self.park(shared) {
                return Pause::Nap(nap);
            }
        }
        Pause::Shutdown
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

    /// Falls asleep following the protocol in `idle/mod.rs`; the worker is
    /// searching when it wakes. A worker that drives the reactor returns
    /// the nap it fell into instead, unless it found work after all.
    fn park(&self, shared: &Shared) -> Option<Nap> {
        // Tasks this worker spawned and others freed: their memory goes
        // back while the worker has nothing better to do.
        crate::pool::drain();
        self.phase.set(Phase::Asleep);
        let bed = Bed { core: self, shared };
        let searching = self.searching.get();
        let nap = match self.io.get() {
            IoRole::Sleeps => {
                shared.idle.sleep(self.id, searching, &bed);
                None
            }
            IoRole::Naps | IoRole::NapsAndLooks => {
                shared.idle.fall_asleep(self.id, searching, &bed)
            }
        };
        match nap {
            Some(_) => self.phase.set(Phase::InReactor),
            None => {
                self.searching.set(true);
                self.phase.set(Phase::Running);
            }
        }
        nap
    }

    /// A nap ended (`woken`): back to running. A worker that runs its own
    /// tasks, not counted as searching, wakes another only if it has more
    /// than one (so that it can steal), as tokio's do.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    fn wake_from_nap(&self, shared: &Shared, nap: Nap, woken: Woken) {
        shared.left_idleness();
        self.phase.set(Phase::Asleep);
        self.reactor_work.set(ReactorWork::None);
        let bed = Bed { core: self, shared };
        match shared.idle.wake_up(self.id, nap, woken, &bed) {
            Awake::Searching => {
                self.searching.set(true);
                self.phase.set(Phase::Running);
            }
            Awake::Running => {
                self.searching.set(false);
                self.phase.set(Phase::Unwatched);
                self.tell_others_if_queued(shared);
            }
        }
    }

    /// Back from a look at the reactor between tasks, to the phase the
    /// look began in: `Unwatched` stays so, or the first task this worker
    /// leaves in its LIFO slot could wait behind a long poll with no
    /// sleeper watching it.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    fn back_from_look(&self, shared: &Shared, phase: Phase) {
        debug_assert!(matches!(phase, Phase::Running | Phase::Unwatched));
        self.phase.set(phase);
        self.reactor_work.set(ReactorWork::None);
        self.tell_others_if_queued(shared);
    }

    /// The reactor left tasks in our queue: if more than one, another
    /// worker may take some.
    fn tell_others_if_queued(&self, shared: &Shared) {
        if self.local.len() > 1 {
            shared.idle.notify_work();
        }
    }

    /// A task woken on this thread while in the reactor went to our queue:
    /// the reactor gives this worker I/O, so it looks at it while busy
    /// from now on, and a nap ends (its `block_on` polls it again).
    fn got_reactor_work(&self) {
        self.io.set(IoRole::NapsAndLooks);
        if self.reactor_work.replace(ReactorWork::Queued) == ReactorWork::None {
            if let Some(waker) = self.nap_waker.get() {
                waker.wake_by_ref();
            }
        }
    }

    /// The watch (`idle/mod.rs`), as it starts: what each other worker's LIFO
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
        // A worker that drives the reactor jumps a paused clock only after
        // the reactor delivered what was ready (`reactor.rs`).
        due || shared.is_shutdown()
            || queue::any_work(shared.injector(), shared.stealers())
            || (self.core.io.get() == IoRole::Sleeps && shared.auto_advance())
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
