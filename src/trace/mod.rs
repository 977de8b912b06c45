//! Recording a run: what the scopes, tasks and workers did, and when, to
//! see it as a timeline.
//!
//! A runtime built with [`Builder::record`](crate::runtime::Builder::record)
//! writes an [`Event`] at each step of a scope's life (opened, cancelled,
//! ended), of a task's (spawned, each poll's start and end and on which
//! worker, completed, cancelled), and of the scheduler's (a steal, a
//! deadline firing, the paused clock jumping). Each thread writes to a
//! buffer of its own (each worker's, and one shared by the other threads),
//! holding at most the number of events given to `record`: once a buffer is
//! full, the events it cannot take are counted, not kept, so a recording
//! always shows a run's beginning. [`Runtime::take_trace`](crate::runtime::Runtime::take_trace)
//! takes what was recorded as a [`Trace`], which renders as a Chrome trace
//! (`to_chrome_json`: open it in Perfetto or `chrome://tracing`) or as an
//! SVG timeline (`to_svg`).
//!
//! When recording is off, which is the default, each of these steps costs
//! one test of a field that is `None`.
//!
//! # Examples
//!
//! ```
//! use cancel_scope::{runtime::Builder, scope};
//!
//! let rt = Builder::new().worker_threads(2).record(10_000).build().unwrap();
//! let _ = rt.block_on(scope(|s| async move {
//!     s.spawn(async {});
//!     s.cancel();
//! }));
//! let trace = rt.take_trace();
//! assert!(trace.events().len() >= 3);
//! assert!(trace.to_chrome_json().starts_with('{'));
//! assert!(trace.to_svg().starts_with("<svg"));
//! ```

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Track {
    /// On a worker thread of the runtime, by index.
    Worker(usize),
    /// On any other thread (a `block_on`, a thread cancelling through a
    /// handle).
    Other,
}

/// How a scope is attached, as a [`EventKind::ScopeOpened`] records it.
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
}

/// What an [`Event`] records. Scopes are named by their ids
/// ([`Scope::id`](crate::Scope::id)), tasks by a number unique while the
/// task lives (its address).
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
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// How many events full buffers could not keep.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The runtime's number of workers (one track each).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The trace in the Chrome trace event format (JSON), which Perfetto
    /// (ui.perfetto.dev) and `chrome://tracing` open from a file: a track
    /// per worker with each task poll as a slice, scopes as nested async
    /// slices named after them, cancels as instant events with arrows to
    /// what they reached.
    pub fn to_chrome_json(&self) -> String {
        chrome::render(self)
    }

    /// The trace as an SVG timeline, for a page or a terminal-less look:
    /// scopes as nested bars over time, task polls as ticks on a row per
    /// worker, cancels as a vertical mark spanning the scopes they reached.
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
