//! Parallel drop: a cancel that takes many tasks whose futures are slow to
//! drop shares the dropping with the workers that are idle.
//!
//! Dropping a parked future is usually a few frees, and freeing from
//! several threads at once memory that one thread allocated makes them
//! queue on the allocator's lock: with glibc, two threads dropping many
//! small futures take longer than one (BENCHMARKS.md, parallel drop). So
//! the canceller first
//! drops one chunk itself, timing it; only if that chunk's drops took long
//! (user code doing real work in `Drop`) does it share the rest.
//!
//! Sharing: the canceller cuts the remaining tasks into chunks and posts a
//! few helper jobs on the run queues (one per idle worker, up to the
//! number of chunks). Then everyone, the canceller included, claims chunks
//! until none is left: each chunk is cancelled and its task references
//! dropped by the thread that claimed it. A chunk is claimed with an
//! atomic counter, so no chunk waits for a helper that has not started:
//! the canceller itself takes what the helpers have not. It then waits only
//! for the chunks other threads are running, and so `cancel()` still
//! returns once every idle future of the cancelled scopes has been
//! dropped. A helper job that runs after the chunks are all claimed, or is
//! dropped unrun at shutdown, does nothing.

use crate::cancelled::{CancelReason, Cancelled};
use crate::loom::sync::Mutex;
use crate::panic::Panic;
use crate::runtime::Shared;
use crate::task::{Cancel, Ended, Schedule, TaskId, TaskList, TaskRef};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Tasks per chunk: small enough to balance, large enough that claiming a
/// chunk (one atomic add) and timing one are noise.
const CHUNK: usize = 256;

/// The fewest tasks worth a second look: one timed chunk, and at least
/// two more to share.
pub(super) const PARALLEL_MIN: usize = 3 * CHUNK;

/// A first chunk whose drops took longer than this per task is shared out.
/// Waking a worker takes some microseconds, and two threads freeing what a
/// third allocated contend; sharing starts to pay when a drop does about
/// a microsecond of its own work (BENCHMARKS.md, parallel drop).
const SLOW_DROP: Duration = Duration::from_nanos(1000);

/// The shared work of one parallel drop.
struct Group {
    chunks: Box<[Mutex<Vec<TaskRef>>]>,
    /// The next chunk to claim.
    next: AtomicUsize,
    /// Chunks not finished yet.
    pending: AtomicUsize,
    dropped: AtomicUsize,
    panics: Mutex<Vec<Panic>>,
    /// The canceller, unparked when the last chunk finishes.
    canceller: Thread,
}

/// How a helper job, a task of no scope that claims chunks of a group and
/// ends in its first poll, reaches the runtime.
struct Helper;

impl Schedule for Helper {
    fn schedule(&self, task: TaskRef) {
        // A helper never waits, so nothing wakes it; were it woken, its
        // first poll would have completed it, and dropping the reference
        // is all there is to do.
        drop(task);
    }

    fn enter<R>(&self, _task: TaskId, poll: impl FnOnce() -> R) -> R {
        poll()
    }

    // A helper job has no JoinHandle, so nobody reads this.
    fn cancelled(&self) -> Cancelled {
        Cancelled::new(CancelReason::Shutdown)
    }

    fn release(&self, _id: TaskId, _ended: Ended, panic: Option<Panic>) {
        // `help` catches the panics of the drops it runs; nothing else in
        // a helper can panic.
        if let Some(panic) = panic {
            crate::panic::drop_payload(panic);
        }
    }
}

/// Cancels `tasks`, with the help of idle workers if their futures prove
/// slow to drop (see the module docs); returns how many futures were
/// dropped and the panics their drops raised.
pub(super) fn cancel_tasks(shared: &Shared, tasks: TaskList) -> (usize, Vec<Panic>) {
    let (mut dropped, mut panics) = (0, Vec::new());
    let mut drain = tasks;
    let start = Instant::now();
    cancel_each(drain.by_ref().take(CHUNK), &mut dropped, &mut panics);
    let slow = start.elapsed() > SLOW_DROP * CHUNK as u32;
    if !slow || shared.idle.num_sleeping() == 0 {
        cancel_each(drain, &mut dropped, &mut panics);
        return (dropped, panics);
    }
    let mut chunks = Vec::new();
    loop {
        let chunk: Vec<TaskRef> = drain.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(Mutex::new(chunk));
    }
    drop(drain);
    let group = Arc::new(Group {
        pending: AtomicUsize::new(chunks.len()),
        chunks: chunks.into_boxed_slice(),
        next: AtomicUsize::new(0),
        dropped: AtomicUsize::new(dropped),
        panics: Mutex::new(panics),
        canceller: thread::current(),
    });
    let helpers = shared.idle.num_sleeping().min(group.chunks.len());
    for _ in 0..helpers {
        let group = group.clone();
        let (job, handle) = crate::task::new(async move { group.help() }, Helper);
        drop(handle);
        shared.schedule(job, crate::runtime::worker::Push::Back);
    }
    group.help();
    while group.pending.load(Acquire) != 0 {
        thread::park();
    }
    let panics = std::mem::take(&mut *group.panics.lock());
    (group.dropped.load(Relaxed), panics)
}

/// Cancels each task, counting the futures dropped here.
fn cancel_each(tasks: impl Iterator<Item = TaskRef>, dropped: &mut usize, panics: &mut Vec<Panic>) {
    for task in tasks {
        if let Cancel::Dropped(panic) = task.cancel() {
            *dropped += 1;
            panics.extend(panic);
        }
    }
}

impl Group {
    /// Claims and cancels chunks until none is left.
    fn help(&self) {
        loop {
            let i = self.next.fetch_add(1, Relaxed);
            let Some(chunk) = self.chunks.get(i) else {
                return;
            };
            let tasks = std::mem::take(&mut *chunk.lock());
            let (mut dropped, mut panics) = (0, Vec::new());
            cancel_each(tasks.into_iter(), &mut dropped, &mut panics);
            self.dropped.fetch_add(dropped, Relaxed);
            if !panics.is_empty() {
                self.panics.lock().append(&mut panics);
            }
            // Release: the canceller's Acquire load of 0 sees every drop.
            if self.pending.fetch_sub(1, Release) == 1 {
                self.canceller.unpark();
            }
        }
    }
}
