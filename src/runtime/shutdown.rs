//! A bounded shutdown: [`Runtime::shutdown_timeout`] and
//! [`Runtime::shutdown_background`], and what they report.
//!
//! The steps: set the shutdown flag and wake the workers (each stops after
//! the poll it is in, if any); stop the blocking pool taking queued
//! closures; cancel the whole tree, shields included, which drops every
//! future not being polled and marks the scopes of those being polled (a
//! task or closure that checks its scope's cancellation stops early); wait
//! until every worker and blocking thread has left the roster
//! (`roster.rs`), or until the deadline; then name the threads still there,
//! each with the scope it is in, and let them go.
//!
//! The drop takes the same steps with no deadline (`stop(None)`). In both
//! the cancel comes before the wait, so that a worker in a long poll that
//! checks its scope's cancellation stops, within the bound here. Cancelling
//! while workers still run is what any cancel does.
//!
//! **What a thread left running may still touch stays alive.** Its task
//! is live in its scope's node, so the node stays in the tree (tree
//! invariant 2), and the node holds its parent, up to the root, which holds
//! the runtime's shared state; a worker holds that state itself, and a
//! blocking thread its share of the pool. The `Runtime` handle's own
//! reference goes, nothing else. When the poll returns, the runner sees the
//! task cancelled and drops its future (a closure's value with it: its
//! scope was cancelled), releases it, and the thread, seeing the shutdown,
//! exits, dropping its queues' references. Every future is dropped once,
//! by whoever claimed it: the shutdown's cancel (an idle task) or the
//! runner (a task in its poll).

use super::Runtime;
use crate::runtime::roster::{Role, Running};
use crate::ScopeSnapshot;
use std::fmt;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// What a bounded shutdown left running: the threads still busy when
/// [`Runtime::shutdown_timeout`] stopped waiting, each with the scope it
/// was in. Print it (`Display`) to see why a shutdown took its whole
/// bound.
///
/// # Examples
///
/// A blocking closure that ignores its scope's cancellation outlives a
/// shutdown with a short bound:
///
/// ```
/// use cancel_scope::runtime::{Runtime, StragglerKind};
/// use cancel_scope::{scope, sync::Event};
/// use futures_lite::future;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let rt = Runtime::new();
/// let started = Event::new();
/// let (release, parked) = mpsc::channel::<()>();
/// let work = {
///     let started = started.clone();
///     scope(move |s| async move {
///         s.spawn_blocking(move || {
///             started.set();
///             let _ = parked.recv(); // deaf to its scope's cancel
///         });
///     })
///     .named("export")
/// };
/// // A race: once the closure runs, the scope future is dropped (which
/// // cancels the scope), and `block_on` returns.
/// rt.block_on(future::or(async { let _ = work.await; }, started.wait()));
///
/// let report = rt.shutdown_timeout(Duration::from_millis(10));
/// println!("{report}");
/// let closure = report
///     .stragglers()
///     .iter()
///     .find(|s| s.kind() == StragglerKind::BlockingClosure)
///     .expect("the closure still runs");
/// assert_eq!(closure.scope().unwrap().name(), Some("export"));
/// release.send(()).unwrap(); // it returns; nobody holds its handle: its value is dropped
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShutdownReport {
    stragglers: Vec<Straggler>,
    /// What a graceful shutdown's grace period left running (empty if
    /// everything ended in time, or for a shutdown without a grace).
    pub(super) still_running: crate::TreeSnapshot,
}

/// A thread a bounded shutdown left running; see [`ShutdownReport`].
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime::{Runtime, StragglerKind};
/// use cancel_scope::{scope, sync::Event};
/// use futures_lite::future;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let rt = Runtime::new();
/// let polling = Event::new();
/// let (release, parked) = mpsc::channel::<()>();
/// let work = {
///     let polling = polling.clone();
///     scope(move |s| async move {
///         s.spawn(async move {
///             polling.set();
///             let _ = parked.recv(); // blocks its worker, inside one poll
///         });
///     })
///     .named("stuck")
/// };
/// rt.block_on(future::or(async { let _ = work.await; }, polling.wait()));
///
/// let report = rt.shutdown_timeout(Duration::from_millis(10));
/// let task = report
///     .stragglers()
///     .iter()
///     .find(|s| s.scope().is_some())
///     .expect("the worker is still in its poll");
/// assert!(matches!(task.kind(), StragglerKind::Task { .. }));
/// assert_eq!(task.scope().unwrap().location().file(), file!());
/// assert!(task.thread_name().is_some());
/// release.send(()).unwrap(); // the poll returns; the worker exits
/// ```
#[derive(Clone, Debug)]
pub struct Straggler {
    kind: StragglerKind,
    thread_name: Option<String>,
    scope: Option<ScopeSnapshot>,
}

/// What kind of thread a [`Straggler`] is.
///
/// # Examples
///
/// ```
/// use cancel_scope::runtime::StragglerKind;
///
/// let kind = StragglerKind::Task { worker: 0 };
/// assert_eq!(kind.to_string(), "task on worker 0");
/// assert_eq!(StragglerKind::BlockingClosure.to_string(), "blocking closure");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StragglerKind {
    /// A thread of the blocking pool, running a closure of
    /// [`Scope::spawn_blocking`](crate::Scope::spawn_blocking).
    BlockingClosure,
    /// A worker thread inside a poll: of a task of the straggler's scope,
    /// or of a scope body nested in such a task.
    Task {
        /// The worker's index (its thread is named `<name>-<index>`).
        worker: usize,
    },
}

impl Runtime {
    /// Shuts the runtime down, waiting at most `timeout` for what still
    /// runs, and returns what it left running.
    ///
    /// Every scope is cancelled (reason
    /// [`Shutdown`](crate::CancelReason::Shutdown), shields included),
    /// which drops, on the calling thread, every future that is not being
    /// polled, and marks the scopes of the tasks and blocking closures that
    /// are, so that one that checks its cancellation returns early. Then
    /// the call waits, up to `timeout` from its start (in real time, also
    /// on a [paused clock](super::Builder::start_paused)), for every worker
    /// to finish the poll it is in and exit, and for every running blocking
    /// closure to return. The report names each thread still running at
    /// the deadline, with the scope it is in (its name, id and where it was
    /// opened); it is empty if everything ended in time.
    ///
    /// # What happens to what was left running
    ///
    /// A thread still running is detached, not stopped (a thread cannot be
    /// stopped from outside). The runtime's shared state stays alive for
    /// it; only this handle is gone. Its scope is cancelled, so a task's
    /// future is dropped when its poll returns; a blocking closure runs to
    /// its end, and its value goes to its handle if anyone still holds it
    /// (else it is dropped with the task); the thread then exits. If the process
    /// exits first, the thread ends with it, mid-closure, without its
    /// destructors running.
    ///
    /// The bound covers the wait for threads. The cancel that precedes it
    /// runs the destructors of the futures it drops on the calling thread,
    /// so a destructor that blocks delays this call.
    ///
    /// Dropping a runtime (`drop(rt)`) is the unbounded form: it waits for
    /// everything. The process-wide runtime behind
    /// [`runtime::block_on`](super::block_on) is never shut down: its
    /// blocking closures run until the process exits.
    ///
    /// Called from a thread of this runtime (a task or closure that owns
    /// it), it does not wait for, or report, the calling thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new();
    /// let out = rt.block_on(scope(|s| async move { s.spawn_blocking(|| 6 * 7).await }));
    /// assert_eq!(out, Ok(Ok(42)));
    /// let report = rt.shutdown_timeout(Duration::from_secs(10));
    /// assert!(report.is_complete()); // nothing was left running
    /// assert_eq!(report.to_string(), "shutdown complete: nothing left running\n");
    /// ```
    ///
    /// [`ShutdownReport`] shows a closure left running.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> ShutdownReport {
        self.stop(Instant::now().checked_add(timeout))
    }

    /// Shuts the runtime down without waiting for what still runs:
    /// [`shutdown_timeout`](Runtime::shutdown_timeout) with a zero bound,
    /// its report dropped. Every scope is cancelled, and every future not
    /// being polled is dropped before it returns; workers and blocking
    /// closures still running finish on their own, as that method says.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = Runtime::new();
    /// let out = rt.block_on(scope(|s| async move { s.spawn(async { 1 }).await }));
    /// assert_eq!(out, Ok(Ok(1)));
    /// rt.shutdown_background(); // returns at once
    /// ```
    pub fn shutdown_background(mut self) {
        drop(self.stop(Some(Instant::now())));
    }

    /// The steps of the module docs; `deadline: None` waits forever.
    pub(super) fn stop(&mut self, deadline: Option<Instant>) -> ShutdownReport {
        self.stopped = true;
        let shared = &*self.shared;
        shared.shutdown.store(true, SeqCst);
        shared.idle.wake_all();
        shared.blocking.shutdown();
        shared.roots.cancel_all();
        let stragglers = if shared.roster.wait_empty(deadline) {
            Vec::new()
        } else {
            stragglers(shared)
        };
        // A thread that has left its seat has nothing left to do but exit:
        // with every seat empty, each is joined (so none outlives the
        // runtime), but the calling one, if a task of the runtime shuts it
        // down; with stragglers, only the finished ones, and the rest are
        // detached.
        for handle in self.threads.drain(..) {
            let own = handle.thread().id() == std::thread::current().id();
            if (stragglers.is_empty() && !own) || handle.is_finished() {
                let _ = handle.join();
            }
        }
        shared.blocking.let_go();
        shared.clear_queues();
        ShutdownReport {
            stragglers,
            still_running: crate::TreeSnapshot::default(),
        }
    }
}

/// The threads still in the roster, each with the scope it is in.
fn stragglers(shared: &super::Shared) -> Vec<Straggler> {
    let mut running: Vec<Running> = Vec::new();
    let scopes = shared.roots.scopes_at(shared.timers.now(), || {
        running = shared.roster.left_running();
        running.iter().map(|r| r.scope).collect()
    });
    running
        .into_iter()
        .zip(scopes)
        .map(|(running, scope)| Straggler {
            kind: match running.role {
                Role::Worker(worker) => StragglerKind::Task { worker },
                Role::Blocking => StragglerKind::BlockingClosure,
            },
            thread_name: running.thread_name,
            scope,
        })
        .collect()
}

impl ShutdownReport {
    /// Whether everything ended within the bound: no thread was left
    /// running.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Runtime::new();
    /// assert!(rt.shutdown_timeout(std::time::Duration::from_secs(10)).is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.stragglers.is_empty()
    }

    /// The threads left running: workers first, by index, then blocking
    /// threads in the order they started.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Runtime::new();
    /// let report = rt.shutdown_timeout(std::time::Duration::from_secs(10));
    /// assert!(report.stragglers().is_empty());
    /// ```
    pub fn stragglers(&self) -> &[Straggler] {
        &self.stragglers
    }

    /// The scopes still running when a graceful shutdown's grace period
    /// ran out ([`Runtime::shutdown_graceful`]), each with its name,
    /// location and tasks, as the tree was just before the hard cancel;
    /// empty if every root ended within the grace, or for a shutdown
    /// without one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = cancel_scope::runtime::Runtime::new();
    /// let report = rt.shutdown_graceful(Duration::from_secs(1), Duration::from_secs(1));
    /// assert!(report.still_running().is_empty()); // nothing was running
    /// ```
    pub fn still_running(&self) -> &crate::TreeSnapshot {
        &self.still_running
    }
}

impl Straggler {
    /// Whether it is a blocking closure or a task.
    pub fn kind(&self) -> StragglerKind {
        self.kind
    }

    /// The scope the thread was in when the shutdown stopped waiting: a
    /// blocking closure's scope, or for a worker the innermost scope it was
    /// polling in (a task's, or a scope body's within the task). `None` if
    /// it was in no scope of this runtime: a worker between two tasks or
    /// firing timers, a blocking thread between closures, or one inside a
    /// scope of another runtime.
    pub fn scope(&self) -> Option<&ScopeSnapshot> {
        self.scope.as_ref()
    }

    /// The thread's name, if it had started when the shutdown looked.
    pub fn thread_name(&self) -> Option<&str> {
        self.thread_name.as_deref()
    }
}

impl fmt::Display for ShutdownReport {
    /// One line, or a line per straggler below a heading.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.still_running.is_empty() {
            let n = self.still_running.scopes().len();
            let plural = if n == 1 { "" } else { "s" };
            writeln!(
                f,
                "the grace period ran out with {n} scope{plural} running:"
            )?;
            write!(f, "{}", self.still_running)?;
        }
        if self.stragglers.is_empty() {
            return writeln!(f, "shutdown complete: nothing left running");
        }
        let n = self.stragglers.len();
        let plural = if n == 1 { "" } else { "s" };
        writeln!(f, "shutdown left {n} thread{plural} running:")?;
        for straggler in &self.stragglers {
            writeln!(f, "- {straggler}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Straggler {
    /// The kind, the scope (as the tree view prints it) and the thread.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, ", self.kind)?;
        match &self.scope {
            Some(scope) => write!(f, "in {scope}")?,
            None => f.write_str("in no scope of this runtime")?,
        }
        if let Some(name) = &self.thread_name {
            write!(f, " (thread {name})")?;
        }
        Ok(())
    }
}

impl fmt::Display for StragglerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StragglerKind::BlockingClosure => f.write_str("blocking closure"),
            StragglerKind::Task { worker } => write!(f, "task on worker {worker}"),
        }
    }
}
