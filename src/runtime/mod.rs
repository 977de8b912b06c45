//! The runtime: worker threads, their shared state, and shutdown.
//!
//! [`Runtime`] is the owning handle; dropping it stops the workers and
//! drops every future the runtime still holds, waiting for whatever is
//! still running; [`Runtime::shutdown_timeout`] does the same with a bound
//! on the wait (`shutdown.rs`). A [`Builder`] configures and starts one
//! (`builder.rs`). `Shared` (`shared.rs`) is what workers, tasks and scope
//! handles point to: the run queues, the sleep state, the timers, the
//! blocking pool, the roster of threads and the scope tree.
//!
//! The rest of this folder is the executor those point into:
//!
//! - `worker/`: a worker thread's loop, its find-task order, and (with the
//!   `async-io` feature) its turns at async-io's reactor;
//! - `queue.rs` and `lifo_slot.rs`: the run queues a worker takes from;
//! - `idle/`: the sleep/wake protocol of the workers;
//! - `block_on.rs`: driving a future on a thread outside the workers;
//! - `blocking_pool.rs`: the threads of `Scope::spawn_blocking`;
//! - `auto_advance.rs`: jumping a paused clock once nothing can run;
//! - `context.rs`: which runtime and which scope this thread is in;
//! - `roster.rs`: the threads still alive, for shutdown's report;
//! - `shutdown.rs` and `graceful.rs`: the two ways a runtime ends.
//!
//! **Dropping a `Runtime` is `shutdown_timeout` without a bound.** A scope
//! opened once the shutdown flag is set (by a task still in a poll) is born
//! cancelled with reason `Shutdown`, shields included, so no spawn is
//! accepted once the workers are gone; a wake that races with shutdown
//! drains the injector itself, so no task reference is stranded there.
//! Running blocking closures and a poll in progress are waited for: a thread
//! cannot be stopped from outside. The process-wide default runtime (behind
//! the free `block_on`) is a static, never dropped: its blocking closures
//! run until the process exits.

mod auto_advance;
pub(crate) mod block_on;
mod blocking_pool;
mod builder;
pub(crate) mod context;
mod graceful;
mod idle;
mod lifo_slot;
mod queue;
mod roster;
mod shared;
mod shutdown;
pub(crate) mod worker;

pub use crate::scope::scoped;
pub use builder::Builder;
pub(crate) use shared::Shared;
pub use shutdown::{ShutdownReport, Straggler, StragglerKind};

use crate::trace::Trace;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::thread;

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

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.threads.len())
            .field("io_driver", &self.shared.io_driver)
            .finish_non_exhaustive()
    }
}
