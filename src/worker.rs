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
    CURRENT_CORE.with(|c| c.borrow().is_some())
}

/// Pushes `task` to this thread's local queue if this thread is a worker of
/// `shared`; hands it back otherwise.
pub(crate) fn push_local(shared: &Shared, task: TaskRef) -> Result<(), TaskRef> {
    CURRENT_CORE.with(|c| match &*c.borrow() {
        Some(core) if std::ptr::eq(core.shared, shared) => {
            core.local.push(task);
            Ok(())
        }
        _ => Err(task),
    })
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
    while core.local.pop().is_some() {}
}

impl Core {
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
            searching = self.park(shared, searching);
        }
    }

    fn find_task(&self, shared: &Shared, tick: u32) -> Option<TaskRef> {
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
