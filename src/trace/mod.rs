//! Recording a run: what the scopes, tasks and workers did, and when, to
//! see it as a timeline.
//!
//! A runtime built with [`Builder::record`](crate::runtime::Builder::record)
//! writes an [`Event`] at each step of a scope's life (opened; cancelled,
//! with the reason and the scope the cancel started at; ended), of a
//! task's (spawned; each poll's start and end, on which worker; completed;
//! cancelled), and of the scheduler's (a steal, a deadline firing, the
//! paused clock jumping). [`Runtime::take_trace`](crate::runtime::Runtime::take_trace)
//! takes what was recorded as a [`Trace`], which renders as a Chrome trace
//! ([`Trace::to_chrome_json`]: open the file in ui.perfetto.dev or
//! `chrome://tracing`) or as an SVG timeline ([`Trace::to_svg`]).
//!
//! # Bounds
//!
//! Each worker writes to a buffer of its own, and the other threads (a
//! `block_on`, the blocking pool, a thread cancelling through a handle)
//! share one more. A buffer keeps at most the number of events given to
//! `record`, about 90 bytes each: once it is full, further events are
//! counted ([`Trace::dropped`]), not kept, so a recording always shows a
//! run's beginning whole. Taking the trace empties the buffers.
//!
//! # Cost
//!
//! When recording is off, which is the default, each step tests one field
//! that is `None`, and the recording code is out of line. When on, each
//! event takes a clock reading and its thread's buffer lock (the threads
//! that are not workers share one), which on a run that
//! does nothing but poll tasks (two events a poll) is more than the poll
//! itself. BENCHMARKS.md has both costs, measured.
//!
//! # Reading the picture
//!
//! This is the SVG of one run of `examples/timeline.rs`: a request that
//! races three connection attempts (Happy Eyeballs), ranks on two tasks,
//! gives a report 15ms, and writes an audit log under a shield.
//!
#![doc = include_str!("../../examples/timeline.svg")]
//!
//! - **Scopes** are bars from their opening to their end; a child sits
//!   below its parent. The three `attempt` scopes open 5ms apart; when the
//!   third connects, the red line is the race's cancel, and its height
//!   shows its reach: the race's scope and the two attempts still trying,
//!   which end at once.
//! - **A deadline** is a cancel too: `report` is cut at 15ms.
//! - **A shield** is out of reach: when the request is cancelled, the bar
//!   of `request` turns red and stays open until `audit log` (blue) has
//!   finished: structured concurrency waits for every child, even while
//!   cancelling.
//! - **Task polls** are marks on each worker's row, coloured by scope: the
//!   two ranking tasks run side by side on the two workers.
//!
//! # Examples
//!
//! ```
//! use cancel_scope::{runtime::Builder, scope, trace::EventKind};
//!
//! let rt = Builder::new().worker_threads(2).record(10_000).build().unwrap();
//! let _ = rt.block_on(scope(|s| async move {
//!     s.spawn(async {});
//!     s.cancel();
//! }));
//! let trace = rt.take_trace();
//! assert!(matches!(trace.events()[0].kind, EventKind::ScopeOpened { .. }));
//! assert_eq!(trace.dropped(), 0);
//! std::fs::write(std::env::temp_dir().join("run.json"), trace.to_chrome_json()).unwrap();
//! assert!(trace.to_svg().starts_with("<svg"));
//! ```
//!
//! # Order
//!
//! A scope's opening is recorded before its node joins the tree, so no
//! cancel of it is recorded first. A cancel walk's events all name the
//! scope the cancel started at (for a linked scope, the walks up its
//! ancestors too). The events of one thread keep their order, and a
//! [`Trace`] is sorted by time, stably.
//!
//! # Why the runtime records, not `tracing`
//!
//! A subscriber and a separate tool (as tokio-console needs) would add a
//! dependency and a hook whose cost is paid even when nothing listens. The
//! events a timeline needs are few and known, so the runtime keeps them in
//! plain buffers and renders them itself, into a file any browser or
//! Perfetto opens.

mod chrome;
mod svg;

use crate::cancelled::CancelReason;
use parking_lot::Mutex;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One step of a recorded run.
///
/// # Examples
///
/// Events come in time order; a scope's opening is its first.
///
/// ```
/// use cancel_scope::{runtime::Builder, scope, trace::EventKind};
///
/// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
/// rt.block_on(scope(|_| async {})).unwrap();
/// let trace = rt.take_trace();
/// let (first, last) = (&trace.events()[0], trace.events().last().unwrap());
/// assert!(first.at <= last.at);
/// assert!(matches!(first.kind, EventKind::ScopeOpened { .. }));
/// assert!(matches!(last.kind, EventKind::ScopeEnded { .. }));
/// ```
#[derive(Clone, Debug)]
pub struct Event {
    /// When, since the recording started (real time).
    pub at: Duration,
    /// On which thread.
    pub track: Track,
    /// What happened.
    pub kind: EventKind,
}

/// Where an [`Event`] happened.
///
/// # Examples
///
/// A task's polls run on a worker; the `block_on` thread that opened the
/// scope is another track.
///
/// ```
/// use cancel_scope::{runtime::Builder, scope, trace::{EventKind, Track}};
///
/// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
/// rt.block_on(scope(|s| async move { s.spawn(async {}); })).unwrap();
/// for event in rt.take_trace().events() {
///     match event.kind {
///         EventKind::PollStarted { .. } => assert_eq!(event.track, Track::Worker(0)),
///         EventKind::ScopeOpened { .. } => assert_eq!(event.track, Track::Other),
///         _ => {}
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Track {
    /// On a worker thread of the runtime, by index.
    Worker(usize),
    /// On any other thread (a `block_on`, the blocking pool, a thread
    /// cancelling through a handle).
    Other,
}

/// How a scope is attached, as a [`EventKind::ScopeOpened`] records it.
///
/// # Examples
///
/// ```
/// use cancel_scope::{linked_scope, runtime::Builder, scope};
/// use cancel_scope::trace::{EventKind, ScopeKind};
///
/// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
/// rt.block_on(scope(|_| linked_scope(|_| async {}))).unwrap().unwrap();
/// let kinds: Vec<ScopeKind> = rt.take_trace().events().iter().filter_map(|e| match e.kind {
///     EventKind::ScopeOpened { kind, .. } => Some(kind),
///     _ => None,
/// }).collect();
/// assert_eq!(kinds, [ScopeKind::Plain, ScopeKind::Linked]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeKind {
    /// A plain `scope`.
    Plain,
    /// A `linked_scope`.
    Linked,
    /// A `shielded_scope`.
    Shielded,
    /// A `supervisor_scope`.
    Supervisor,
    /// The scope of a scope's daemons (`Scope::spawn_daemon`).
    Daemons,
    /// The scope in which a scope's cleanups run (`Scope::defer`), each
    /// in a scope named `"cleanup"` below it.
    Cleanups,
}

/// What an [`Event`] records. Scopes are named by their ids
/// ([`Scope::id`](crate::Scope::id)), tasks by a number unique while the
/// task lives (its address).
///
/// # Examples
///
/// A cancel is recorded at each scope it reached, with the scope it
/// started at.
///
/// ```
/// use cancel_scope::{linked_scope, runtime::Builder, scope, trace::EventKind};
/// use std::future::pending;
///
/// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
/// let _ = rt.block_on(scope(|_| linked_scope(|inner| async move {
///     inner.cancel(); // a linked scope's cancel reaches its parent too
///     pending::<()>().await
/// })));
/// let reached: Vec<(u64, u64)> = rt.take_trace().events().iter().filter_map(|e| match e.kind {
///     EventKind::ScopeCancelled { scope, by, .. } => Some((scope, by)),
///     _ => None,
/// }).collect();
/// assert_eq!(reached.len(), 2); // the linked scope, then its parent
/// let started_at = reached[0].0;
/// assert!(reached.iter().all(|&(_, by)| by == started_at));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EventKind {
    /// A scope joined the tree.
    ScopeOpened {
        /// The scope.
        scope: u64,
        /// Its parent, if it is not a root.
        parent: Option<u64>,
        /// Its name, if it has one.
        name: Option<Arc<str>>,
        /// Where it was opened.
        location: &'static Location<'static>,
        /// How it is attached.
        kind: ScopeKind,
    },
    /// A scope was cancelled.
    ScopeCancelled {
        /// The scope.
        scope: u64,
        /// Why, as the scope sees it.
        reason: CancelReason,
        /// The scope whose cancel reached this one (itself for the scope
        /// the cancel started at).
        by: u64,
    },
    /// A scope left the tree: its body and every task and child ended.
    ScopeEnded {
        /// The scope.
        scope: u64,
    },
    /// A task was spawned into a scope.
    TaskSpawned {
        /// The task.
        task: u64,
        /// Its scope.
        scope: u64,
    },
    /// A poll of a task began.
    PollStarted {
        /// The task.
        task: u64,
        /// Its scope.
        scope: u64,
    },
    /// That poll returned.
    PollEnded {
        /// The task.
        task: u64,
    },
    /// A task's runner finished it: its output is ready, or it was
    /// cancelled while polled, or it panicked.
    TaskCompleted {
        /// The task.
        task: u64,
    },
    /// A cancel dropped an idle task's future.
    TaskCancelled {
        /// The task.
        task: u64,
        /// Its scope.
        scope: u64,
    },
    /// A worker took tasks from another worker's queue.
    Steal {
        /// The worker the tasks came from.
        from: usize,
    },
    /// A scope's deadline passed.
    DeadlineFired {
        /// The scope.
        scope: u64,
    },
    /// The paused clock jumped to the next timer.
    ClockJumped {
        /// By how much.
        by: Duration,
    },
}

/// What a recorded runtime holds: a buffer per worker and one for the
/// other threads.
pub(crate) struct Recorder {
    start: Instant,
    capacity: usize,
    workers: Box<[Mutex<Vec<Event>>]>,
    others: Mutex<Vec<Event>>,
    dropped: AtomicU64,
}

/// The events of a recorded run; see the module docs.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime::Builder, scope};
///
/// let rt = Builder::new().worker_threads(2).record(1_000).build().unwrap();
/// rt.block_on(scope(|s| async move { s.spawn(async {}); })).unwrap();
/// let trace = rt.take_trace();
/// assert_eq!(trace.workers(), 2);
/// assert!(!trace.events().is_empty());
/// assert!(rt.take_trace().events().is_empty()); // taking empties the buffers
/// ```
#[derive(Clone, Debug, Default)]
pub struct Trace {
    events: Vec<Event>,
    dropped: u64,
    workers: usize,
}

impl Recorder {
    pub(crate) fn new(workers: usize, capacity: usize) -> Recorder {
        Recorder {
            start: Instant::now(),
            capacity,
            workers: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
            others: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records `kind` on this thread's track (`worker`: this thread's
    /// worker index, if it is one of this runtime's workers).
    pub(crate) fn record(&self, worker: Option<usize>, kind: EventKind) {
        let at = self.start.elapsed();
        let (track, buffer) = match worker.and_then(|w| self.workers.get(w).map(|b| (w, b))) {
            Some((w, buffer)) => (Track::Worker(w), buffer),
            None => (Track::Other, &self.others),
        };
        let mut buffer = buffer.lock();
        if buffer.len() < self.capacity {
            if buffer.len() == buffer.capacity() {
                // Doubling, but never past the bound: a buffer holds at
                // most `capacity` events' worth of memory.
                let more = buffer.len().max(64).min(self.capacity - buffer.len());
                buffer.reserve_exact(more);
            }
            buffer.push(Event { at, track, kind });
        } else {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Takes every event recorded so far, in time order.
    pub(crate) fn take(&self) -> Trace {
        let mut events: Vec<Event> = std::mem::take(&mut *self.others.lock());
        for buffer in self.workers.iter() {
            events.append(&mut buffer.lock());
        }
        // Stable: events of one thread keep their order at equal times.
        events.sort_by_key(|e| e.at);
        Trace {
            events,
            dropped: self.dropped.swap(0, Relaxed),
            workers: self.workers.len(),
        }
    }
}

impl Trace {
    /// The events, in time order.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope, trace::EventKind};
    ///
    /// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
    /// rt.block_on(scope(|s| async move { s.spawn(async {}); })).unwrap();
    /// let trace = rt.take_trace();
    /// let spawned = trace.events().iter().filter(|e| matches!(e.kind, EventKind::TaskSpawned { .. }));
    /// assert_eq!(spawned.count(), 1);
    /// ```
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// How many events full buffers could not keep.
    ///
    /// # Examples
    ///
    /// A buffer of 2 events keeps a run's first two and counts the rest.
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope};
    ///
    /// let rt = Builder::new().worker_threads(1).record(2).build().unwrap();
    /// rt.block_on(scope(|s| async move {
    ///     for _ in 0..10 {
    ///         s.spawn(async {});
    ///     }
    /// }))
    /// .unwrap();
    /// let trace = rt.take_trace();
    /// assert!(trace.events().len() <= 2 * (1 + trace.workers()));
    /// assert!(trace.dropped() > 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The runtime's number of workers (one track each).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::runtime::Builder;
    ///
    /// let rt = Builder::new().worker_threads(3).record(10).build().unwrap();
    /// assert_eq!(rt.take_trace().workers(), 3);
    /// ```
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The trace in the Chrome trace event format (JSON), which Perfetto
    /// (ui.perfetto.dev) and `chrome://tracing` open from a file: a track
    /// per worker with each task poll as a slice, scopes as nested async
    /// slices named after them, and each scope a cancel reached as a short
    /// slice with a flow arrow from the scope the cancel started at.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope};
    ///
    /// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
    /// rt.block_on(scope(|_| async {}).named("request")).unwrap();
    /// let json = rt.take_trace().to_chrome_json();
    /// assert!(json.contains("\"request #"));
    /// std::fs::write(std::env::temp_dir().join("request.json"), json).unwrap();
    /// ```
    pub fn to_chrome_json(&self) -> String {
        chrome::render(self)
    }

    /// The trace as an SVG timeline, for a page or a terminal-less look:
    /// scopes as nested bars over time, task polls as ticks on a row per
    /// worker, cancels as a vertical mark spanning the scopes they reached.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Builder, scope};
    ///
    /// let rt = Builder::new().worker_threads(1).record(100).build().unwrap();
    /// rt.block_on(scope(|_| async {}).named("request")).unwrap();
    /// let svg = rt.take_trace().to_svg();
    /// assert!(svg.starts_with("<svg") && svg.contains("request"));
    /// ```
    pub fn to_svg(&self) -> String {
        svg::render(self)
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
