//! The runtime: worker threads, their shared state, and shutdown.
//!
//! [`Runtime`] is the owning handle; dropping it stops the workers and
//! drops every future the runtime still holds, waiting for whatever is
//! still running; [`Runtime::shutdown_timeout`] does the same with a bound
//! on the wait (`shutdown.rs`). `Shared` is what workers, tasks and scope
//! handles point to: the run queues, the sleep state, the timers, the
//! blocking pool, the roster of threads and the scope tree.

pub(crate) mod block_on;
mod blocking_pool;
pub(crate) mod context;
mod graceful;
mod idle;
mod lifo_slot;
mod queue;
mod roster;
mod shutdown;
pub(crate) mod worker;

pub use crate::scope::scoped;
pub use shutdown::{ShutdownReport, Straggler, StragglerKind};

use crate::loom::deque::{Injector, Stealer};
use crate::panic::Panic;
use crate::scope::tree::Roots;
use crate::task::TaskRef;
use crate::time::{clock::Clock, timers::Timers};
use crate::trace::{EventKind, Recorder, Trace};
use blocking_pool::BlockingPool;
use idle::Idle;
use lifo_slot::LifoSlot;
use parking_lot::Mutex;
use roster::{Role, Roster};
use slab::Slab;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{
    fence, AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

/// Runs a future to completion on the process-wide default runtime.
///
/// The default runtime is started on first use, with one worker per
/// available core, and lives until the process exits: it is never dropped
/// or shut down, so a blocking closure still running on it when `main`
/// returns runs until the process exits (which ends it mid-closure, like
/// any thread, without running its destructors). For a bounded end, run
/// the program on a [`Runtime`] of its own and call
/// [`shutdown_timeout`](Runtime::shutdown_timeout). See
/// [`Runtime::block_on`] for the rules.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope};
///
/// let out = runtime::block_on(scope(|s| async move {
///     s.spawn(async { 1 + 1 }).await
/// }));
/// assert_eq!(out, Ok(Ok(2)));
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    default_runtime().block_on(future)
}

/// A snapshot of the default runtime's scope tree; see
/// [`Runtime::scope_tree`].
///
/// # Examples
///
/// ```
/// let tree = cancel_scope::runtime::scope_tree();
/// println!("{tree}");
/// ```
pub fn scope_tree() -> crate::TreeSnapshot {
    default_runtime().scope_tree()
}

/// Who waits in async-io's reactor for the default runtime's workers; see
/// [`Runtime::io_driver`].
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime::{self, IoDriver};
///
/// if runtime::io_driver() == IoDriver::AsyncIoThread {
///     println!("built without the `async-io` feature");
/// }
/// ```
pub fn io_driver() -> IoDriver {
    default_runtime().io_driver()
}

/// The process-wide runtime behind [`block_on`](block_on()) and behind scopes opened
/// outside any runtime. A static: never dropped, so never shut down.
pub(crate) fn default_runtime() -> &'static Runtime {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    DEFAULT.get_or_init(Runtime::new)
}

/// A work-stealing runtime whose tasks live in a tree of scopes.
///
/// # Shutdown
///
/// Dropping a runtime waits for each worker to finish the poll it is in,
/// then cancels every scope (reason
/// [`Shutdown`](crate::CancelReason::Shutdown), shields included), which
/// drops every future it holds, and waits for the blocking closures still
/// running (a closure cannot be stopped from outside; one that checks its
/// scope's cancellation returns early). Both waits have no bound.
/// [`shutdown_timeout`](Runtime::shutdown_timeout)
/// is the bounded form: it waits at most a given time, leaves what still
/// runs then to finish on its own, and returns a [`ShutdownReport`]
/// naming it. The process-wide runtime behind [`block_on`](block_on()) is
/// never shut down.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime::Runtime, scope};
///
/// let rt = Runtime::new();
/// let out = rt.block_on(scope(|s| async move { s.spawn(async { "hi" }).await }));
/// assert_eq!(out, Ok(Ok("hi")));
/// ```
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
    /// Set by a bounded shutdown, which consumed the runtime: the drop
    /// that follows has nothing left to do.
    stopped: bool,
}

/// Configures and starts a [`Runtime`].
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime::Builder;
///
/// let rt = Builder::new().worker_threads(2).thread_name("my-worker").build().unwrap();
/// assert_eq!(rt.block_on(async { 7 }), 7);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    worker_threads: Option<usize>,
    io_driver: IoDriver,
    thread_name: String,
    start_paused: bool,
    parallel_drop: bool,
    /// Events per thread to record, if recording.
    record: Option<usize>,
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
}

/// Who waits for async-io's events (its reactor: readiness of sockets and
/// other file descriptors, and its `Timer`s) while the runtime's workers
/// have nothing to do; see [`Runtime::io_driver`].
///
/// async-io's reactor is one per process, and one thread at a time waits
/// in it. With the `async-io` feature (on by default), idle workers take
/// turns at it: a task whose socket becomes ready is woken on the worker
/// that saw the event and runs there, with no hop to another thread.
/// Without it (or with `Builder::drive_io(false)`), async-io runs the
/// reactor on a thread of its own, which hands each woken task to the
/// runtime's shared queue and wakes a worker for it: the same programs
/// work, at a cost of a thread switch per wake-up.
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime::{IoDriver, Runtime};
///
/// let rt = Runtime::new();
/// let driver = rt.io_driver();
/// assert_eq!(driver == IoDriver::Workers, cfg!(feature = "async-io"));
/// println!("{rt:?}"); // Runtime { workers: .., io_driver: Workers, .. }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// Idle workers wait in the reactor and run the tasks it wakes.
    Workers,
    /// async-io's own thread waits in the reactor; idle workers wait on
    /// their own condition variables.
    AsyncIoThread,
}

/// The state every worker, task and scope handle of a runtime shares.
pub(crate) struct Shared {
    /// The root scopes; every other scope hangs below one of them, each
    /// behind its own lock (`scope/tree/`).
    roots: Roots,
    injector: Injector<TaskRef>,
    stealers: Box<[Stealer<TaskRef>]>,
    pub(crate) idle: Idle,
    /// Each worker's LIFO slot, by worker id.
    lifo_slots: Box<[LifoSlot]>,
    pub(crate) timers: Timers,
    /// The threads of `Scope::spawn_blocking` (`blocking_pool.rs`).
    pub(crate) blocking: BlockingPool,
    /// The workers and blocking threads still alive (`roster.rs`).
    roster: Arc<Roster>,
    /// `Builder::parallel_drop`.
    pub(crate) parallel_drop: bool,
    /// The next scope id to give (`Node::id`).
    scope_ids: AtomicU64,
    /// Where a recorded run's events go (`Builder::record`).
    recorder: Option<Box<Recorder>>,
    shutdown: AtomicBool,
    /// A stop was requested of every root (`Runtime::request_stop`):
    /// roots published since are born with it (`scope/tree/stop.rs`).
    stop_requested: AtomicBool,
    workers: usize,
    /// Who waits in async-io's reactor (`Builder::drive_io`).
    io_driver: IoDriver,
    /// The state words of the `block_on` calls running on this runtime
    /// (the paused clock must not jump while one is polling or woken).
    block_ons: Mutex<Slab<Arc<AtomicU8>>>,
    /// Held across the whole check-advance-fire of `auto_advance`, so two
    /// idle threads cannot both advance past the same timers.
    advancing: Mutex<()>,
    /// With a paused clock: how many times a thread of the runtime left
    /// idleness (a napping worker woke, a `block_on` started or resumed).
    /// A jump that first waited for reactor rounds checks that none did
    /// meanwhile (`worker/reactor.rs`).
    wakings: AtomicU64,
    /// Panics of user code the runtime ran outside any poll (a dropped
    /// waker, a scope-local's `Drop`) with no scope left open to take them
    /// (`Node::pass_panic`), kept until shutdown.
    lost_panics: Mutex<Vec<Panic>>,
}

impl Runtime {
    /// Starts a runtime with one worker thread per available core.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Runtime::new();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    #[allow(clippy::new_without_default)]
    pub fn new() -> Runtime {
        Builder::new()
            .build()
            .expect("failed to start the runtime's worker threads")
    }

    /// Runs `future` on the calling thread until it completes, while the
    /// workers run the tasks it spawns. Scopes opened by `future` belong to
    /// this runtime.
    ///
    /// # Panics
    ///
    /// When called from a worker thread (of any runtime): blocking a worker
    /// could deadlock the runtime. Inside a task, `.await` the future
    /// instead. Also resumes a panic of `future` itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime::Runtime;
    ///
    /// let rt = Runtime::new();
    /// assert_eq!(rt.block_on(async { 40 + 2 }), 42);
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        block_on::block_on(&self.shared, future)
    }

    /// Tasks spawned on this runtime that have not finished yet (blocking
    /// closures included).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = Runtime::new();
    /// let _ = rt.block_on(scope(|s| async move { s.spawn(async {}); }));
    /// assert_eq!(rt.live_tasks(), 0);
    /// ```
    pub fn live_tasks(&self) -> usize {
        self.shared.roots.live_counts().0
    }

    /// Scopes of this runtime that have not ended yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = Runtime::new();
    /// let _ = rt.block_on(scope(|_| async {}));
    /// assert_eq!(rt.live_scopes(), 0);
    /// ```
    pub fn live_scopes(&self) -> usize {
        self.shared.roots.live_counts().1
    }

    /// A snapshot of this runtime's scope tree (each scope copied under its
    /// own lock), safe to take from any thread while the runtime runs;
    /// print it to see what a stuck program is waiting for.
    ///
    /// It shows the *published* scopes: a scope joins the tree at the first
    /// thing that needs it (its body's first suspension, its first task or
    /// child scope, a deadline, a `cancelled()` wait, or a tree view taken
    /// from inside it). A scope that ends within its first poll without
    /// any of these never costs the tree anything, and never shows.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{linked_scope, runtime::Runtime, scope};
    ///
    /// let rt = &Runtime::new();
    /// let _ = rt.block_on(scope(|s| async move {
    ///     s.spawn(linked_scope(|inner| async move {
    ///         inner.spawn(std::future::pending::<()>());
    ///         std::future::pending::<()>().await
    ///     }));
    ///     while rt.scope_tree().scopes().len() < 2 {
    ///         cancel_scope::task::yield_now().await;
    ///     }
    ///     println!("{}", rt.scope_tree());
    ///     assert!(rt.scope_tree().scopes()[1].is_linked());
    ///     s.cancel();
    /// }));
    /// ```
    pub fn scope_tree(&self) -> crate::TreeSnapshot {
        crate::scope::publish_current(&self.shared);
        self.shared.roots.snapshot(self.shared.timers.now())
    }

    /// Timers (sleeps and scope deadlines) still pending on this runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope, time::sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new();
    /// let _ = rt.block_on(scope(|s| async move {
    ///     s.spawn(async { sleep(Duration::from_secs(60)).await });
    ///     cancel_scope::task::yield_now().await;
    ///     s.cancel(); // the cancelled sleep frees its timer
    /// }));
    /// assert_eq!(rt.pending_timers(), 0);
    /// ```
    pub fn pending_timers(&self) -> usize {
        self.shared.timers.len()
    }

    /// Takes what this runtime recorded so far (an empty trace if it was
    /// not built with [`Builder::record`]); the buffers start afresh.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, trace::EventKind};
    ///
    /// let rt = Builder::new().record(1_000).build().unwrap();
    /// let _ = rt.block_on(scope(|_| async {}));
    /// let trace = rt.take_trace();
    /// assert!(matches!(trace.events()[0].kind, EventKind::ScopeOpened { .. }));
    /// ```
    pub fn take_trace(&self) -> Trace {
        self.shared
            .recorder
            .as_ref()
            .map(|r| r.take())
            .unwrap_or_default()
    }

    /// Threads the blocking pool has now (running a closure of
    /// [`Scope::spawn_blocking`](crate::Scope::spawn_blocking), or idle
    /// for at most the [keep-alive](Builder::blocking_keep_alive)). The
    /// pool starts none until a closure needs one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = Runtime::new();
    /// assert_eq!(rt.blocking_threads(), 0);
    /// let _ = rt.block_on(scope(|s| async move { s.spawn_blocking(|| 1 + 1).await }));
    /// assert_eq!(rt.blocking_threads(), 1); // idle, until its keep-alive ends
    /// ```
    pub fn blocking_threads(&self) -> usize {
        self.shared.blocking.threads()
    }

    /// Who waits for async-io's events while the workers are idle: the
    /// workers themselves (the `async-io` feature, on by default, unless
    /// `Builder::drive_io` turned it off), or async-io's own thread. The
    /// runtime's `Debug` shows it too.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime::{IoDriver, Runtime};
    ///
    /// let rt = Runtime::new();
    /// if rt.io_driver() == IoDriver::AsyncIoThread {
    ///     println!("built without the `async-io` feature: I/O wakes cross threads");
    /// }
    /// ```
    pub fn io_driver(&self) -> IoDriver {
        self.shared.io_driver
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Runtime {
    /// Shuts down as [`shutdown_timeout`](Runtime::shutdown_timeout) does,
    /// without a bound: cancels every scope first, so that a task or a
    /// blocking closure waiting for its cancel ends, then waits for every
    /// thread.
    fn drop(&mut self) {
        if self.stopped {
            return; // `shutdown_timeout` did it all
        }
        drop(self.stop(None));
    }
}

impl Builder {
    /// A builder with the defaults: one worker per available core, threads
    /// named `cancel-scope-worker-<n>`, at most 512 blocking threads, each
    /// kept 10 seconds once idle.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Builder::new().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn new() -> Builder {
        Builder {
            worker_threads: None,
            // Miri cannot make the reactor's system calls (timerfd,
            // epoll): under it the workers sleep on their own condition
            // variables, the path without the feature.
            io_driver: match cfg!(feature = "async-io") && !cfg!(miri) {
                true => IoDriver::Workers,
                false => IoDriver::AsyncIoThread,
            },
            thread_name: "cancel-scope-worker".to_string(),
            start_paused: false,
            parallel_drop: true,
            record: None,
            max_blocking_threads: blocking_pool::DEFAULT_MAX_THREADS,
            blocking_keep_alive: blocking_pool::DEFAULT_KEEP_ALIVE,
        }
    }

    /// Sets the number of worker threads.
    ///
    /// # Panics
    ///
    /// If `n` is zero: a runtime without workers could never run a task.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Builder::new().worker_threads(1).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn worker_threads(&mut self, n: usize) -> &mut Builder {
        assert!(n > 0, "worker_threads must be at least 1");
        self.worker_threads = Some(n);
        self
    }

    /// Whether idle workers wait in async-io's reactor (on by default;
    /// only with the `async-io` feature). On, a task whose socket becomes
    /// ready runs on the worker that saw the event; off, async-io's own
    /// thread waits in the reactor and hands woken tasks over to the
    /// workers, as without the feature. See [`IoDriver`].
    ///
    /// Turn it off for a runtime that does no I/O in a process whose other
    /// runtime does: the reactor is one per process, and only one thread
    /// at a time waits in it, so the workers of both runtimes would take
    /// turns at it, and a task of one runtime woken by a worker of the
    /// other still crosses threads. Its workers then sleep on their own
    /// condition variables.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime::{Builder, IoDriver};
    ///
    /// let rt = Builder::new().drive_io(false).build().unwrap();
    /// assert_eq!(rt.io_driver(), IoDriver::AsyncIoThread);
    /// ```
    #[cfg(feature = "async-io")]
    pub fn drive_io(&mut self, enabled: bool) -> &mut Builder {
        self.io_driver = match enabled {
            true => IoDriver::Workers,
            false => IoDriver::AsyncIoThread,
        };
        self
    }

    /// Sets the worker threads' name prefix; each gets `-<n>` appended
    /// (and each blocking thread `-blocking-<n>`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Builder::new().thread_name("app").build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.thread_name = name.into();
        self
    }

    /// Starts the runtime with a paused, virtual clock: time stands still
    /// while any task can run, and whenever every task is idle it jumps
    /// straight to the next timer (like Trio's `MockClock` with autojump, or
    /// tokio's `start_paused`). Sleeps and deadlines then take no real time,
    /// and their order is deterministic.
    ///
    /// Only tasks, scope bodies, `block_on` futures and blocking closures
    /// ([`Scope::spawn_blocking`](crate::Scope::spawn_blocking)) of this
    /// runtime count as activity; a thread outside the runtime that will
    /// wake a task later is not seen, so time may jump past it. (So a
    /// blocking closure must not wait for this clock: it would wait
    /// forever, the clock waiting for it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, time::{self, sleep}};
    /// use std::time::{Duration, Instant};
    ///
    /// let rt = Builder::new().start_paused(true).build().unwrap();
    /// let real = Instant::now();
    /// let virtual_elapsed = rt.block_on(async {
    ///     let start = time::now();
    ///     sleep(Duration::from_secs(3600)).await;
    ///     time::now() - start
    /// });
    /// assert_eq!(virtual_elapsed, Duration::from_secs(3600));
    /// assert!(real.elapsed() < Duration::from_secs(60));
    /// ```
    pub fn start_paused(&mut self, paused: bool) -> &mut Builder {
        self.start_paused = paused;
        self
    }

    /// Whether a cancel may share a long run of slow drops with idle
    /// workers (the default). A cancel drops the futures of the idle tasks
    /// it stops before it returns; when a few hundred of them each take
    /// more than a microsecond to drop (a `Drop` doing real work), the rest
    /// is shared with the workers that are idle. Turn it off to keep every
    /// such drop on the cancelling thread, or to measure the runtime under
    /// a tool that slows everything down (so that plain drops would look
    /// slow), such as valgrind.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Builder::new().parallel_drop(false).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn parallel_drop(&mut self, enabled: bool) -> &mut Builder {
        self.parallel_drop = enabled;
        self
    }

    /// Records the run: each step of every scope's and task's life, and
    /// the scheduler's steals, deadlines and clock jumps, keeping at most
    /// `events_per_thread` events for each worker and as many for the other
    /// threads (further ones are counted, not kept). Off by default; when
    /// off, the steps cost one test each. Take the recording with
    /// [`Runtime::take_trace`]; see [`trace`](crate::trace).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope};
    ///
    /// let rt = Builder::new().record(1_000).build().unwrap();
    /// let _ = rt.block_on(scope(|s| async move { s.spawn(async {}).await }));
    /// assert!(!rt.take_trace().events().is_empty());
    /// ```
    pub fn record(&mut self, events_per_thread: usize) -> &mut Builder {
        self.record = Some(events_per_thread);
        self
    }

    /// Sets the most threads the blocking pool runs at once (default 512).
    /// Closures submitted while that many run wait in a queue, in order.
    /// Blocking threads are started only when a closure of
    /// [`Scope::spawn_blocking`](crate::Scope::spawn_blocking) finds none
    /// idle.
    ///
    /// # Panics
    ///
    /// If `n` is zero: blocking closures could never run.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope};
    ///
    /// let rt = Builder::new().max_blocking_threads(2).build().unwrap();
    /// let out = rt.block_on(scope(|s| async move {
    ///     let handles: Vec<_> = (0..10).map(|i| s.spawn_blocking(move || i * 2)).collect();
    ///     let mut sum = 0;
    ///     for h in handles {
    ///         sum += h.await.unwrap();
    ///     }
    ///     sum
    /// }));
    /// assert_eq!(out, Ok(90));
    /// assert!(rt.blocking_threads() <= 2);
    /// ```
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        assert!(n > 0, "max_blocking_threads must be at least 1");
        self.max_blocking_threads = n;
        self
    }

    /// Sets how long an idle blocking thread waits for another closure
    /// before it exits (default 10 seconds). A duration too long to add to
    /// an `Instant` keeps idle threads until the runtime is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope};
    /// use std::time::Duration;
    ///
    /// let rt = Builder::new().blocking_keep_alive(Duration::from_millis(1)).build().unwrap();
    /// let _ = rt.block_on(scope(|s| async move { s.spawn_blocking(|| ()).await }));
    /// while rt.blocking_threads() > 0 {
    ///     std::thread::yield_now(); // the idle thread exits after 1ms
    /// }
    /// ```
    pub fn blocking_keep_alive(&mut self, keep_alive: Duration) -> &mut Builder {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    ///
    /// If the operating system refuses to start a worker thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Builder::new().worker_threads(2).build()?;
    /// # drop(rt);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(&mut self) -> io::Result<Runtime> {
        let n = self
            .worker_threads
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
        let queues: Vec<_> = (0..n).map(|_| worker::new_queue()).collect();
        let blocking = blocking_pool::Config {
            max_threads: self.max_blocking_threads,
            keep_alive: self.blocking_keep_alive,
            thread_name: self.thread_name.clone(),
            paused: self.start_paused,
        };
        let roster = Roster::new();
        let shared = Arc::new_cyclic(|runtime| Shared {
            roots: Roots::new(),
            injector: Injector::new(),
            stealers: queues.iter().map(|q| q.stealer()).collect(),
            idle: Idle::new(n),
            lifo_slots: (0..n).map(|_| LifoSlot::new()).collect(),
            timers: Timers::new(Clock::new(self.start_paused)),
            blocking: BlockingPool::new(blocking, runtime.clone(), roster.clone()),
            roster,
            parallel_drop: self.parallel_drop,
            scope_ids: AtomicU64::new(0),
            recorder: self
                .record
                .map(|capacity| Box::new(Recorder::new(n, capacity))),
            shutdown: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            workers: n,
            io_driver: self.io_driver,
            block_ons: Mutex::new(Slab::new()),
            advancing: Mutex::new(()),
            wakings: AtomicU64::new(0),
            lost_panics: Mutex::new(Vec::new()),
        });
        let mut runtime = Runtime {
            shared: shared.clone(),
            threads: Vec::with_capacity(n),
            stopped: false,
        };
        for (id, local) in queues.into_iter().enumerate() {
            let shared = shared.clone();
            let mut seat = shared.roster.reserve(Role::Worker(id));
            let handle = thread::Builder::new()
                .name(format!("{}-{id}", self.thread_name))
                .spawn(move || {
                    seat.occupy();
                    worker::run(id, local, shared);
                    drop(seat); // last: the roster then counts this worker gone
                })?;
            runtime.threads.push(handle);
        }
        Ok(runtime)
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Shared {
    /// Queues a runnable task: on this thread's worker if this thread is
    /// one of our workers (in its LIFO slot if `to` says so), else on the
    /// injector; then wakes a sleeper if other workers could take the task
    /// (protocol in `idle.rs`).
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

    /// A runtime's shared state without worker threads, for loom models:
    /// the model's own threads pop and run tasks from the injector.
    #[cfg(all(test, cancel_scope_loom))]
    pub(crate) fn for_model() -> Arc<Shared> {
        let queue = worker::new_queue();
        let roster = Roster::new();
        Arc::new(Shared {
            roots: Roots::new(),
            injector: Injector::new(),
            stealers: vec![queue.stealer()].into_boxed_slice(),
            idle: Idle::new(1),
            lifo_slots: vec![LifoSlot::new()].into_boxed_slice(),
            timers: Timers::new(Clock::new(false)),
            blocking: BlockingPool::new(
                blocking_pool::Config {
                    max_threads: 1,
                    keep_alive: blocking_pool::DEFAULT_KEEP_ALIVE,
                    thread_name: "model".to_string(),
                    paused: false,
                },
                std::sync::Weak::new(),
                roster.clone(),
            ),
            roster,
            parallel_drop: false,
            scope_ids: AtomicU64::new(0),
            recorder: None,
            shutdown: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            workers: 1,
            io_driver: IoDriver::AsyncIoThread,
            block_ons: Mutex::new(Slab::new()),
            advancing: Mutex::new(()),
            wakings: AtomicU64::new(0),
            lost_panics: Mutex::new(Vec::new()),
        })
    }

    /// Registers a `block_on` state word until the guard drops.
    pub(crate) fn register_block_on(&self, state: Arc<AtomicU8>) -> BlockOnRegistration<'_> {
        self.left_idleness();
        let key = self.block_ons.lock().insert(state);
        BlockOnRegistration { shared: self, key }
    }

    /// A thread of the runtime leaves idleness (see `wakings`): a napping
    /// worker woke, or a `block_on` starts or resumes. Counted only with a
    /// paused clock, before the thread does anything.
    pub(crate) fn left_idleness(&self) {
        if self.timers.clock().is_paused() {
            self.wakings.fetch_add(1, SeqCst);
        }
    }

    /// How many times a thread of the runtime left idleness so far.
    pub(crate) fn wakings(&self) -> u64 {
        self.wakings.load(SeqCst)
    }

    /// Whether nothing of the runtime can run: every worker asleep, every
    /// `block_on` parked without a pending wake, no queued task, no
    /// blocking closure running or queued.
    pub(crate) fn everyone_idle(&self) -> bool {
        fence(SeqCst);
        self.idle.num_sleeping() == self.workers
            && !queue::any_work(&self.injector, &self.stealers)
            && self
                .block_ons
                .lock()
                .iter()
                .all(|(_, s)| s.load(SeqCst) == block_on::PARKED)
            && !self.blocking.is_busy()
    }

    /// With a paused clock: if nothing can run (every worker asleep, every
    /// `block_on` parked without a pending wake, no queued task, no
    /// blocking closure running or queued), jumps the clock to the next
    /// timer and fires it. Returns whether it advanced.
    ///
    /// Called by a worker after it counted itself asleep, and by `block_on`
    /// after it marked itself parked. Each side writes its own state, then
    /// (SeqCst) reads the other's, so the last one to go idle sees everyone
    /// idle. A thread that fires a timer and wakes a `block_on` marks it
    /// `WOKEN` before it can get here itself, so the clock waits for that
    /// `block_on` to poll.
    ///
    /// Workers that drive async-io's reactor call it only after the
    /// reactor delivered what was ready (`worker/reactor.rs`); `block_on`
    /// goes through [`auto_advance_or_defer`](Shared::auto_advance_or_defer).
    pub(crate) fn auto_advance(&self) -> bool {
        self.auto_advance_unless_woken(None)
    }

    /// [`auto_advance`](Shared::auto_advance) that also gives up if a
    /// thread of the runtime left idleness since [`wakings`] read
    /// `since`.
    ///
    /// [`wakings`]: Shared::wakings
    pub(crate) fn auto_advance_unless_woken(&self, since: Option<u64>) -> bool {
        if !self.timers.clock().is_paused() {
            return false;
        }
        let _advancing = self.advancing.lock();
        if !self.everyone_idle() || since.is_some_and(|g| self.wakings() != g) {
            return false;
        }
        let Some(next) = self.timers.next_deadline() else {
            return false;
        };
        let by = next.saturating_duration_since(self.timers.now());
        self.timers.clock().advance_to(next);
        self.record(|| EventKind::ClockJumped { by });
        self.timers.fire_expired();
        true
    }

    /// [`auto_advance`](Shared::auto_advance) for a `block_on` that went
    /// idle. When workers drive async-io's reactor, the clock jumps only
    /// once the reactor has delivered the events that were ready, which a
    /// worker makes sure of before it jumps it: wake a sleeping worker
    /// instead, which falls asleep again and tries (if none sleeps, the
    /// last worker to fall asleep will).
    pub(crate) fn auto_advance_or_defer(&self) -> bool {
        if !self.workers_drive_io() {
            return self.auto_advance();
        }
        if self.timers.clock().is_paused() {
            self.idle.notify_timer();
        }
        false
    }

    fn drain_injector(&self) {
        while !self.injector.steal().is_empty() {}
    }

    /// Shutdown's last step: drops the injector's task references and the
    /// timers (each worker emptied its own queue and slot as it stopped).
    fn clear_queues(&self) {
        self.drain_injector();
        self.timers.clear();
        // Their messages were printed by the panic hook when they
        // happened; nobody is left to resume them.
        for panic in self.take_lost_panics() {
            crate::panic::drop_payload(panic);
        }
    }
}

/// Keeps a `block_on` state word registered; see `Shared::register_block_on`.
pub(crate) struct BlockOnRegistration<'a> {
    shared: &'a Shared,
    key: usize,
}

impl Drop for BlockOnRegistration<'_> {
    fn drop(&mut self) {
        let state = self.shared.block_ons.lock().remove(self.key);
        drop(state);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.threads.len())
            .field("io_driver", &self.shared.io_driver)
            .finish_non_exhaustive()
    }
}
