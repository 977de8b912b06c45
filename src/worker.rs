//! A worker thread: find a task, run it, park when there is none.
//!
//! The worker's owned half is [`Core`] (its local queue, its tick and
//! random state), reachable from the thread-local `CURRENT_CORE` so that a
//! task woken on this thread lands in this worker's queue. The shared half
//! is the runtime's `Shared`.

use crate::queue::{self, GLOBAL_QUEUE_INTERVAL};
use crate::runtime::Shared;
use crate::task::TaskRef;
use crossbeam_deque::Worker as Deque;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

/// The owned half of a worker thread.
pub(crate) struct Core {
    id: usize,
    local: Deque<TaskRef>,
    /// The task to run next: the last one woken on this worker, which is
    /// likely to need what the waking task just produced. Not stealable.
    lifo: Cell<Option<TaskRef>>,
    /// Tasks run in a row from `lifo`; capped at [`MAX_LIFO_RUNS`].
    lifo_runs: Cell<u32>,
    /// Set while the worker is counted as asleep (inside `park`): a task
    /// woken then (by a timer it fires) must be visible to the others, so
    /// it skips the LIFO slot.
    parking: Cell<bool>,
    /// Identity of the runtime this core belongs to.
    shared: *const Shared,
    tick: Cell<u32>,
    rng: Cell<u64>,
}

thread_local! {
    static CURRENT_CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Whether this thread is a worker of any runtime.
pub(crate) fn is_worker_thread() -> bool {
    // During thread teardown the slot may be gone: a worker's is never
    // (it clears it before its thread ends).
    CURRENT_CORE
        .try_with(|c| c.borrow().is_some())
        .unwrap_or(false)
}

/// How many tasks in a row a worker takes from its LIFO slot before it
/// looks at its queue again. Two tasks waking each other would otherwise
/// hold the slot forever and starve the queue; tokio uses 3 as well.
const MAX_LIFO_RUNS: u32 = 3;

/// Where [`push_local`] should put a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// In the LIFO slot: run it next (a wake).
    Next,
    /// At the back of the local queue (a yield).
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
    let mut task = Some(task);
    // `try_with` fails only during thread teardown, on a thread that is
    // no worker any more.
    let pushed = CURRENT_CORE.try_with(|c| match &*c.borrow() {
        Some(core) if std::ptr::eq(core.shared, shared) => {
            Some(core.push(task.take().expect("taken once"), to))
        }
        _ => None,
    });
    match pushed {
        Ok(Some(pushed)) => Ok(pushed),
        _ => Err(task.take().expect("not pushed")),
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
    let core = Rc::new(Core {
        id,
        local,
        lifo: Cell::new(None),
        lifo_runs: Cell::new(0),
        parking: Cell::new(false),
        shared: Arc::as_ptr(&shared),
        tick: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1)),
    });
    CURRENT_CORE.with(|c| *c.borrow_mut() = Some(core.clone()));
    let result = catch_unwind(AssertUnwindSafe(|| {
        crate::context::enter_runtime(&shared, || core.run_loop(&shared))
    }));
    CURRENT_CORE.with(|c| c.borrow_mut().take());
    if result.is_err() {
        eprintln!("cancel-scope: a worker thread hit an internal error; aborting");
        std::process::abort();
    }
    // Shutdown: drop the queue's references; the tasks' futures are
    // dropped by the runtime's shutdown cancel.
    drop(core.lifo.take());
    while core.local.pop().is_some() {}
}

impl Core {
    fn push(&self, task: TaskRef, to: Push) -> Pushed {
        match to {
            Push::Next if !self.parking.get() => match self.lifo.replace(Some(task)) {
                Some(bumped) => {
                    self.local.push(bumped);
                    Pushed::Stealable
                }
                None => Pushed::Private,
            },
            Push::Next | Push::Back => {
                self.local.push(task);
                Pushed::Stealable
            }
        }
    }

    fn run_loop(&self, shared: &Shared) {
        let mut searching = false;
        while !shared.is_shutdown() {
            let tick = self.tick.get().wrapping_add(1);
            self.tick.set(tick);
            if tick % GLOBAL_QUEUE_INTERVAL == 0 {
                shared.timers.fire_if_free();
            }
            if let Some(task) = self.find_task(shared, tick) {
                if searching {
                    searching = false;
                    if shared.idle.stop_searching() {
                        // We were the last searcher: pass the baton.
                        shared.idle.notify_work();
                    }
                }
                task.run();
                continue;
            }
            if shared.timers.fire_expired() {
                continue; // a woken task may be in our queue now
            }
            self.parking.set(true);
            searching = self.park(shared, searching);
            self.parking.set(false);
        }
    }

    fn find_task(&self, shared: &Shared, tick: u32) -> Option<TaskRef> {
        if let Some(task) = self.lifo.take() {
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
        )
    }

    /// Falls asleep following the protocol in `idle.rs`. Returns whether
    /// the worker is searching when it wakes.
    fn park(&self, shared: &Shared, searching: bool) -> bool {
        let idle = &shared.idle;
        idle.prepare_sleep(self.id, searching);
        let clock = shared.timers.clock();
        let deadline = shared.timers.next_deadline();
        let due = deadline.is_some_and(|d| d <= clock.now());
        if due
            || shared.is_shutdown()
            || queue::any_work(shared.injector(), shared.stealers())
            || shared.auto_advance()
        {
            // We stopped searching in `prepare_sleep`, and a poster may have
            // relied on that search; search again, so that finding a task
            // passes the baton (protocol in `idle.rs`).
            if !idle.cancel_sleep(self.id) {
                idle.start_searching();
            }
            return true;
        }
        // A paused clock's instants are not real time: wait for a wake-up
        // (the last thread to go idle advances the clock).
        let deadline = deadline.filter(|_| !clock.is_paused());
        if idle.park(self.id, deadline) {
            true // unparked by a poster, who counted us as searching
        } else {
            idle.cancel_sleep(self.id)
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
