//! The blocking pool: threads a runtime keeps for blocking closures
//! ([`Scope::spawn_blocking`](crate::Scope::spawn_blocking)), so that a
//! closure that blocks never holds a worker.
//!
//! The pool runs tasks, as the workers do, and knows nothing of scopes: a
//! blocking closure is a task of its scope whose scheduler pushes it here
//! (`scope/blocking.rs`). The pool starts a thread when a closure arrives
//! and no thread is idle, never more than `max_threads`, and a thread that
//! has waited `keep_alive` for work exits. Closures start in the order
//! they were submitted.
//!
//! # States
//!
//! A pool thread is *running* a closure, *idle* (waiting on the pool's
//! condition variable for at most the keep-alive), or *gone*. The counts,
//! all under the pool's one lock ([`PoolState`]):
//!
//! | count      | what it counts                                  | never above     |
//! |------------|-------------------------------------------------|-----------------|
//! | `threads`  | threads started and not exited                  | `max_threads`   |
//! | `idle`     | idle threads not yet handed work                | `threads`       |
//! | `notified` | idle threads handed work, not yet awake          | `threads`       |
//! | `running`  | closures being run                              | `threads`       |
//!
//! # Submitting a closure (`submit`)
//!
//! Under the lock: queue the task; then, if a thread is idle, move one
//! count from `idle` to `notified` and signal the condition variable once;
//! else, if `threads < max_threads`, count a new thread and start it; else
//! leave the task queued: the next thread to finish a closure takes it.
//! Moving the count in the submitter (rather than letting the woken thread
//! uncount itself) means two quick submits never signal the same idle
//! thread and leave the second closure waiting while another could start.
//!
//! # A thread's loop
//!
//! Take queued tasks one by one and run them (the lock is released while
//! a closure runs); when the queue is empty, count itself idle and wait.
//! On waking: a `notified` count is ours to take (a submitter handed us
//! work); otherwise, after shutdown or once the keep-alive has passed, the
//! thread uncounts itself and exits; otherwise the wake was spurious and
//! it waits again, until the same deadline.
//!
//! # Shutdown
//!
//! `Runtime`'s drop calls [`shutdown`](BlockingPool::shutdown) (no thread
//! takes a queued task from then on, and idle threads exit), then cancels
//! every scope, which claims the queued tasks (their closures never run)
//! and marks the running ones cancelled (a closure that checks its
//! `CancelHandle` returns early), then [`join`](BlockingPool::join)s the
//! threads, waiting for the running closures to return, and drops the
//! queue's stale references.
//!
//! A bounded shutdown (`Runtime::shutdown_timeout`) waits for the threads
//! through the runtime's roster (`roster.rs`: each pool thread has a seat
//! there) until its deadline, and then [`let_go`](BlockingPool::let_go)es
//! of them: the threads that have exited are joined, the others are left
//! running. Such a thread owns its share of the pool (`Inner`), its task
//! keeps its scope's node and with it the runtime's state alive (tree
//! invariant 2), so nothing it touches is freed under it; when its closure
//! returns, the task drops the value (its scope was cancelled), and the
//! thread sees the shutdown and exits.
//!
//! # The paused clock
//!
//! A running or queued closure counts as activity
//! ([`is_busy`](BlockingPool::is_busy), read by `Shared::auto_advance`): a
//! paused clock does not jump while a closure may still wake a task. When
//! the pool falls idle, its last thread calls the runtime's [`OnIdle`],
//! given only with a paused clock, which wakes one sleeping worker; that
//! worker checks again whether the clock may jump. The pool knows no more
//! of the runtime than that call. (The worker counts itself
//! asleep, fences and then reads the pool under its lock; the thread
//! writes the pool under its lock, then fences and reads the sleepers:
//! either the worker sees the pool idle, or the thread sees the worker
//! asleep and wakes it.)

use crate::runtime::roster::{Role, Roster, Seat};
use crate::task::TaskRef;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The most blocking threads a runtime runs at once, unless
/// `Builder::max_blocking_threads` says otherwise. Blocking closures are
/// mostly waiting (a file, a DNS lookup, a database driver), so the cap is
/// far above the core count; 512 is tokio's default, so code moved from
/// tokio behaves alike.
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;

/// How long an idle blocking thread waits for work before it exits,
/// unless `Builder::blocking_keep_alive` says otherwise. Long enough that
/// a steady trickle of closures reuses threads instead of starting one
/// each time; tokio's default, for the same reason as above.
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How a pool is configured (from the `Builder`).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    /// Threads are named `<thread_name>-blocking-<n>`.
    pub(crate) thread_name: String,
}

/// What the pool calls when it falls idle: its last busy thread, after
/// its last closure returned and with none queued (see the module docs).
pub(crate) type OnIdle = Box<dyn Fn() + Send + Sync>;

/// A runtime's blocking pool; see the module docs.
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

/// What the pool's threads share with it.
struct Inner {
    state: Mutex<PoolState>,
    /// Signalled for an idle thread that was handed work, and at shutdown.
    work: Condvar,
    config: Config,
    /// Called when the pool falls idle; given only with a paused clock.
    on_idle: Option<OnIdle>,
    /// The runtime's threads, where each pool thread takes a seat.
    roster: Arc<Roster>,
}

/// Everything under the pool's lock; the counts are in the module docs.
struct PoolState {
    queue: VecDeque<TaskRef>,
    threads: usize,
    idle: usize,
    notified: usize,
    running: usize,
    /// Set once, by `shutdown`.
    shutdown: bool,
    /// Threads started, joined at shutdown; those that have exited are
    /// pruned whenever another starts.
    handles: Vec<thread::JoinHandle<()>>,
    /// Threads ever started, for their names.
    started: usize,
}

impl BlockingPool {
    pub(crate) fn new(
        config: Config,
        on_idle: Option<OnIdle>,
        roster: Arc<Roster>,
    ) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    notified: 0,
                    running: 0,
                    shutdown: false,
                    handles: Vec::new(),
                    started: 0,
                }),
                work: Condvar::new(),
                config,
                on_idle,
                roster,
            }),
        }
    }

    /// Queues a task (a blocking closure) and makes sure a thread will run
    /// it, starting one if none is idle and the pool is below its maximum.
    /// After shutdown the task stays queued and never runs (the shutdown
    /// cancel claims it).
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread and the pool has
    /// none left to run the task.
    pub(crate) fn submit(&self, task: TaskRef) {
        let inner = &self.inner;
        let mut st = inner.state.lock();
        st.queue.push_back(task);
        if st.shutdown {
            return;
        }
        if st.idle > 0 {
            st.idle -= 1;
            st.notified += 1;
            inner.work.notify_one();
            return;
        }
        if st.threads >= inner.config.max_threads {
            return; // a running thread takes it when its closure returns
        }
        st.threads += 1;
        st.started += 1;
        st.handles.retain(|h| !h.is_finished());
        let name = format!("{}-blocking-{}", inner.config.thread_name, st.started);
        let pool = inner.clone();
        let seat = inner.roster.reserve(Role::Blocking);
        match thread::Builder::new()
            .name(name)
            .spawn(move || thread_main(pool, seat))
        {
            Ok(handle) => st.handles.push(handle),
            Err(error) => {
                st.threads -= 1;
                let stranded = st.threads == 0;
                drop(st);
                assert!(
                    !stranded,
                    "cancel_scope: failed to start a blocking thread: {error}"
                );
            }
        }
    }

    /// Threads started and not exited.
    pub(crate) fn threads(&self) -> usize {
        self.inner.state.lock().threads
    }

    /// Whether a closure is running or queued (the paused clock waits).
    pub(crate) fn is_busy(&self) -> bool {
        let st = self.inner.state.lock();
        st.running > 0 || !st.queue.is_empty()
    }

    /// No thread takes a queued task from now on; idle threads exit.
    pub(crate) fn shutdown(&self) {
        self.inner.state.lock().shutdown = true;
        self.inner.work.notify_all();
    }

    /// A bounded shutdown's end: joins the threads that have exited,
    /// leaves the others running (see the module docs), and drops the
    /// queued tasks' references. Call after
    /// [`shutdown`](BlockingPool::shutdown) and the runtime's cancel.
    pub(crate) fn let_go(&self) {
        let (handles, queue) = {
            let mut st = self.inner.state.lock();
            debug_assert!(st.shutdown);
            (
                std::mem::take(&mut st.handles),
                std::mem::take(&mut st.queue),
            )
        };
        for handle in handles {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
        drop(queue);
    }
}

/// A pool thread's body: the loop of the module docs, in the thread's
/// seat, which it leaves last. A panic here is a runtime bug (a closure's
/// own panic is caught by its task): abort, as a worker does.
fn thread_main(pool: Arc<Inner>, mut seat: Seat) {
    seat.occupy();
    if catch_unwind(AssertUnwindSafe(|| pool.serve())).is_err() {
        crate::panic::abort_internal_error("a blocking thread");
    }
    drop(pool);
    drop(seat);
}

impl Inner {
    fn serve(&self) {
        let mut st = self.state.lock();
        loop {
            while !st.shutdown {
                let Some(task) = st.queue.pop_front() else {
                    break;
                };
                st.running += 1;
                drop(st);
                let requeue = task.run();
                st = self.state.lock();
                st.running -= 1;
                if let Some(task) = requeue {
                    // Woken during its poll (a closure does not wait, so
                    // only a wake that raced it): run it again.
                    st.queue.push_back(task);
                }
                if let Some(on_idle) = &self.on_idle {
                    if st.running == 0 && st.queue.is_empty() {
                        drop(st);
                        on_idle();
                        st = self.state.lock();
                    }
                }
            }
            if st.shutdown || !self.wait_for_work(&mut st) {
                st.threads -= 1;
                return;
            }
        }
    }

    /// Waits, counted idle, until a submitter hands this thread work
    /// (true), or until shutdown or the end of the keep-alive (false, and
    /// the thread is no longer counted idle).
    fn wait_for_work(&self, st: &mut parking_lot::MutexGuard<'_, PoolState>) -> bool {
        st.idle += 1;
        // A keep-alive too long to add to an `Instant` means forever.
        let deadline = Instant::now().checked_add(self.config.keep_alive);
        loop {
            let timed_out = match deadline {
                Some(deadline) => self.work.wait_until(st, deadline).timed_out(),
                None => {
                    self.work.wait(st);
                    false
                }
            };
            if st.notified > 0 {
                st.notified -= 1;
                return true;
            }
            if st.shutdown || timed_out {
                st.idle -= 1;
                return false;
            }
        }
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.lock();
        f.debug_struct("BlockingPool")
            .field("threads", &st.threads)
            .field("idle", &st.idle)
            .field("running", &st.running)
            .field("queued", &st.queue.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::Builder;
    use crate::task::testing::Unscheduled;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::{Duration, Instant};

    /// Spins until `cond` holds; fails after a minute.
    fn spin_until(what: &str, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waiting for {what}"
            );
            thread::yield_now();
        }
    }

    /// With a paused clock, every worker asleep and a timer pending, the
    /// clock does not jump while a blocking closure runs; once the closure
    /// returns, the pool wakes the sleeping worker, which jumps it.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "real threads parking on timeouts; no unsafe of its own"
    )]
    fn a_paused_clock_waits_for_a_running_closure() {
        let rt = Builder::new()
            .worker_threads(1)
            .start_paused(true)
            .build()
            .unwrap();
        let shared = rt.shared();
        let (started_tx, started_rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (task, handle) = crate::task::new(
            async move {
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            },
            Unscheduled,
        );
        drop(handle);
        shared.blocking.submit(task);
        started_rx.recv().unwrap();

        let fired = Arc::new(AtomicBool::new(false));
        let waker = {
            let fired = fired.clone();
            waker_fn::waker_fn(move || fired.store(true, SeqCst))
        };
        let at = shared.timers.now() + Duration::from_secs(3600);
        let _ = shared.timers.insert(at, waker);
        shared.idle.notify_timer();
        spin_until("the worker to sleep", || shared.idle.num_sleeping() == 1);
        assert!(
            !shared.auto_advance(),
            "the clock may jump while a closure runs"
        );
        assert!(!fired.load(SeqCst), "the timer fired while a closure ran");

        gate_tx.send(()).unwrap();
        spin_until("the woken worker to jump the clock", || fired.load(SeqCst));
        assert!(shared.timers.now() >= at);
    }
}
