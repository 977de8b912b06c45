//! The state every worker, task and scope handle of a runtime shares.
//!
//! `Shared` holds the run queues (the injector, each worker's stealer and
//! LIFO slot), the sleep state (`idle/`), the timers, the blocking pool
//! (`blocking_pool.rs`), the roster of threads (`roster.rs`) and the
//! scope tree's roots. Scheduling a task and recording an event go
//! through it; the paused clock's methods on it are in `auto_advance.rs`.
//!
//! # The one circle, and the arrows that leave this folder
//!
//! `Shared` is built from the executor's parts, and the parts that act on
//! the whole runtime point back to it: a worker fires timers and reads the
//! sleep state and the other workers' queues, a `block_on` registers its
//! parking word with the paused clock, and `context.rs` keeps each thread's
//! runtime, which is how code with no handle (a `Sleep`, a scope opened
//! inside a task) finds it. Two arrows leave the folder upward, and the
//! design needs both: a scope node holds this runtime to schedule its tasks,
//! set deadlines and record events; and the context thread-local names the
//! scope node a thread is polling, which a new scope takes as its parent
//! and the roster only compares. Cutting them would take a trait or a
//! handle per need on the hot paths (spawn, wake, release), for no gain in
//! what each part may touch. The queues, the LIFO slot and the sleep
//! protocol import nothing of the runtime; the blocking pool learns of it
//! only through the callback it is given under a paused clock.
//!
//! `Shared::record` tests for a recorder and calls out of line, so a
//! runtime that does not record pays that test and no more.

use super::auto_advance::{self, AutoAdvance};
use super::blocking_pool::{self, BlockingPool};
use super::idle::Idle;
use super::lifo_slot::LifoSlot;
use super::roster::Roster;
use super::{worker, Builder, IoDriver};
use crate::loom::deque::{Injector, Stealer, Worker as Deque};
use crate::panic::Panic;
use crate::scope::tree::Roots;
use crate::task::TaskRef;
use crate::time::{clock::Clock, timers::Timers};
use crate::trace::{EventKind, Recorder};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;

/// The state every worker, task and scope handle of a runtime shares.
pub(crate) struct Shared {
    /// The root scopes; every other scope hangs below one of them, each
    /// behind its own lock (`scope/tree/`).
    pub(super) roots: Roots,
    pub(super) injector: Injector<TaskRef>,
    pub(super) stealers: Box<[Stealer<TaskRef>]>,
    pub(crate) idle: Idle,
    /// Each worker's LIFO slot, by worker id.
    pub(super) lifo_slots: Box<[LifoSlot]>,
    pub(crate) timers: Timers,
    /// The threads of `Scope::spawn_blocking` (`blocking_pool.rs`).
    pub(crate) blocking: BlockingPool,
    /// The workers and blocking threads still alive (`roster.rs`).
    pub(super) roster: Arc<Roster>,
    /// `Builder::parallel_drop`.
    pub(crate) parallel_drop: bool,
    /// The next scope id to give (`Node::id`).
    pub(super) scope_ids: AtomicU64,
    /// Where a recorded run's events go (`Builder::record`).
    pub(super) recorder: Option<Box<Recorder>>,
    pub(super) shutdown: AtomicBool,
    /// A stop was requested of every root (`Runtime::request_stop`):
    /// roots published since are born with it (`scope/tree/stop.rs`).
    pub(super) stop_requested: AtomicBool,
    pub(super) workers: usize,
    /// Who waits in async-io's reactor (`Builder::drive_io`).
    pub(super) io_driver: IoDriver,
    /// What a paused clock watches to jump only once nothing can run
    /// (`auto_advance.rs`).
    pub(super) advance: AutoAdvance,
    /// Panics of user code the runtime ran outside any poll (a dropped
    /// waker, a scope-local's `Drop`) with no scope left open to take them
    /// (`Node::pass_panic`), kept until shutdown.
    pub(super) lost_panics: Mutex<Vec<Panic>>,
}

impl Shared {
    /// The shared state of a runtime set up as `settings` says, whose
    /// workers will own `queues` (one each). The one constructor, for
    /// `Builder::build` and for the loom models alike.
    pub(super) fn new(settings: &Builder, queues: &[Deque<TaskRef>]) -> Arc<Shared> {
        let n = queues.len();
        let blocking = blocking_pool::Config {
            max_threads: settings.max_blocking_threads,
            keep_alive: settings.blocking_keep_alive,
            thread_name: settings.thread_name.clone(),
        };
        let roster = Roster::new();
        Arc::new_cyclic(|runtime| Shared {
            roots: Roots::new(),
            injector: Injector::new(),
            stealers: queues.iter().map(|q| q.stealer()).collect(),
            idle: Idle::new(n),
            lifo_slots: (0..n).map(|_| LifoSlot::new()).collect(),
            timers: Timers::new(Clock::new(settings.start_paused)),
            blocking: BlockingPool::new(
                blocking,
                settings
                    .start_paused
                    .then(|| auto_advance::on_blocking_pool_idle(runtime.clone())),
                roster.clone(),
            ),
            roster,
            parallel_drop: settings.parallel_drop,
            scope_ids: AtomicU64::new(0),
            recorder: settings
                .record
                .map(|capacity| Box::new(Recorder::new(n, capacity))),
            shutdown: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            workers: n,
            io_driver: settings.io_driver,
            advance: AutoAdvance::new(),
            lost_panics: Mutex::new(Vec::new()),
        })
    }

    /// A runtime's shared state without worker threads, for loom models:
    /// one worker's worth of queues, whose deque nobody pops (the model's
    /// own threads pop and run tasks from the injector), no recording, a
    /// real clock, and async-io's reactor left to its own thread.
    #[cfg(all(test, cancel_scope_loom))]
    pub(crate) fn for_model() -> Arc<Shared> {
        let mut settings = Builder::new();
        settings
            .thread_name("model")
            .parallel_drop(false)
            .max_blocking_threads(1);
        settings.io_driver = IoDriver::AsyncIoThread;
        Shared::new(&settings, &[worker::new_queue()])
    }

    /// Queues a runnable task: on this thread's worker if this thread is
    /// one of our workers (in its LIFO slot if `to` says so), else on the
    /// injector; then wakes a sleeper if other workers could take the task
    /// (protocol in `idle/mod.rs`).
    pub(crate) fn schedule(&self, task: TaskRef, to: worker::Push) {
        match worker::push_local(self, task, to) {
            Ok(worker::Pushed::Stealable) => {}
            Ok(worker::Pushed::Private) => return,
            Err(task) => {
                self.injector.push(task);
                if self.is_shutdown() {
                    // Shutdown may have drained the injector already.
                    self.drain_injector();
                    return;
                }
            }
        }
        self.idle.notify_work();
    }

    /// A new earliest timer, due at `at`, was set: tell the sleepers
    /// (`Idle::notify_timer_at`). On a paused clock only a timer set from
    /// outside the runtime needs that: a worker or `block_on` of the
    /// runtime that sets one goes idle later and then looks at the clock
    /// itself (the last thread to go idle jumps it).
    pub(crate) fn timer_set(&self, at: std::time::Instant) {
        if self.timers.clock().is_paused() && crate::runtime::context::is_in_runtime(self) {
            return;
        }
        self.idle.notify_timer_at(at);
    }

    /// Whether idle workers wait in async-io's reactor.
    pub(crate) fn workers_drive_io(&self) -> bool {
        self.io_driver == IoDriver::Workers
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(SeqCst)
    }

    /// Whether a stop was requested of every root (`Runtime::request_stop`).
    pub(crate) fn is_stop_requested(&self) -> bool {
        self.stop_requested.load(SeqCst)
    }

    pub(crate) fn injector(&self) -> &Injector<TaskRef> {
        &self.injector
    }

    pub(crate) fn stealers(&self) -> &[Stealer<TaskRef>] {
        &self.stealers
    }

    /// Records the event `kind` builds, if this runtime records; one test
    /// of a field otherwise.
    #[inline]
    pub(crate) fn record(&self, kind: impl FnOnce() -> EventKind) {
        if let Some(recorder) = &self.recorder {
            self.record_to(recorder, kind);
        }
    }

    /// The recording half of [`record`](Shared::record), out of line so
    /// that its callers stay as small as they are when nothing records.
    #[cold]
    #[inline(never)]
    fn record_to(&self, recorder: &Recorder, kind: impl FnOnce() -> EventKind) {
        recorder.record(worker::current_id(self), kind());
    }

    /// Whether this runtime records.
    #[inline]
    pub(crate) fn records(&self) -> bool {
        self.recorder.is_some()
    }

    /// Keeps a panic no open scope could take (`Node::pass_panic`).
    #[cold]
    pub(crate) fn keep_lost_panic(&self, panic: Panic) {
        self.lost_panics.lock().push(panic);
    }

    /// The panics kept by [`keep_lost_panic`](Shared::keep_lost_panic).
    pub(crate) fn take_lost_panics(&self) -> Vec<Panic> {
        std::mem::take(&mut *self.lost_panics.lock())
    }

    /// A scope id never given before on this runtime.
    pub(crate) fn next_scope_id(&self) -> u64 {
        self.scope_ids.fetch_add(1, Relaxed)
    }

    pub(crate) fn roots(&self) -> &Roots {
        &self.roots
    }

    pub(crate) fn lifo_slots(&self) -> &[LifoSlot] {
        &self.lifo_slots
    }

    fn drain_injector(&self) {
        while !self.injector.steal().is_empty() {}
    }

    /// Shutdown's last step: drops the injector's task references and the
    /// timers (each worker emptied its own queue and slot as it stopped).
    pub(super) fn clear_queues(&self) {
        self.drain_injector();
        self.timers.clear();
        // Their messages were printed by the panic hook when they
        // happened; nobody is left to resume them.
        for panic in self.take_lost_panics() {
            crate::panic::drop_payload(panic);
        }
    }
}
