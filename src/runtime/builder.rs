//! Configuring and starting a runtime: the [`Builder`].
//!
//! `build` makes the runtime's shared state (`shared.rs`), then starts one
//! thread per worker, each with its own run queue and a seat in the
//! roster (`roster.rs`) that it leaves last.

use super::blocking_pool;
use super::roster::Role;
use super::{worker, IoDriver, Runtime, Shared};
use std::io;
use std::thread;
use std::time::Duration;

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
    pub(super) worker_threads: Option<usize>,
    pub(super) io_driver: IoDriver,
    pub(super) thread_name: String,
    pub(super) start_paused: bool,
    pub(super) parallel_drop: bool,
    /// Events per thread to record, if recording.
    pub(super) record: Option<usize>,
    pub(super) max_blocking_threads: usize,
    pub(super) blocking_keep_alive: Duration,
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
        let shared = Shared::new(self, &queues);
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
