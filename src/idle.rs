//! Sleeping workers and the wake-up protocol.
//!
//! # States
//!
//! A worker is *running* a task, *searching* for one, or *sleeping* on its
//! [`Parker`]. `num_searching` and `num_sleeping` count the last two; the
//! `sleepers` list holds the ids of sleeping workers.
//!
//! # Posting work (`notify_work`)
//!
//! 1. push the task to a queue (a push into the pushing worker's own LIFO
//!    slot stops here: that worker runs the task next, and nobody else
//!    could take it);
//! 2. `fence(SeqCst)`;
//! 3. if some worker is searching, stop: it will find the task (below);
//! 4. else if some worker sleeps, pop it from `sleepers`, count it as
//!    searching, and unpark it.
//!
//! # Falling asleep (`Core::park` in `worker.rs`)
//!
//! 1. stop searching (`num_searching -= 1`), push our id to `sleepers`
//!    (`num_sleeping += 1`), then `fence(SeqCst)`;
//! 2. look at every queue once more; if anything is there, take our id back
//!    (or, if a poster already popped it, accept that we were woken) and
//!    search again;
//! 3. else wait on our `Parker` until unparked, or until the next timer.
//!
//! # Why no wake-up is lost
//!
//! Both sides do "write, SeqCst fence, read the other side's write". In
//! the single total order of SeqCst fences, either the poster's fence comes
//! first, and then the sleeper's step-2 look sees the pushed task, or the
//! sleeper's fence comes first, and then the poster's step-3/4 reads see
//! the sleeper counted as searching or sleeping. A searching worker that
//! stops searching either goes through the steps above (and sees the task),
//! or found a task of its own, in which case, if it was the last searcher,
//! it calls `notify_work` itself, passing the baton. A `Parker` remembers
//! an unpark that comes before the park, so the unpark in step 4 is never
//! missed either.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{fence, AtomicUsize, Ordering::*};
use std::time::Instant;

/// Sleep bookkeeping shared by all workers of a runtime.
pub(crate) struct Idle {
    num_searching: AtomicUsize,
    num_sleeping: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    parkers: Box<[Parker]>,
}

/// One worker's bed: a flag and a condition variable.
struct Parker {
    notified: Mutex<bool>,
    condvar: Condvar,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            num_searching: AtomicUsize::new(0),
            num_sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            parkers: (0..workers)
                .map(|_| Parker {
                    notified: Mutex::new(false),
                    condvar: Condvar::new(),
                })
                .collect(),
        }
    }

    /// Posting side, after the push: wake a sleeper unless a searcher is
    /// already on its way.
    pub(crate) fn notify_work(&self) {
        fence(SeqCst);
        if self.num_searching.load(SeqCst) != 0 || self.num_sleeping.load(SeqCst) == 0 {
            return;
        }
        self.wake_one();
    }

    /// A new earliest timer was set: make sure some sleeper recomputes its
    /// timeout, whether or not anyone is searching.
    pub(crate) fn notify_timer(&self) {
        fence(SeqCst);
        if self.num_sleeping.load(SeqCst) != 0 {
            self.wake_one();
        }
    }

    /// Pops one sleeper and unparks it. The unpark happens under the
    /// `sleepers` lock, so a worker in `cancel_sleep` that finds its id gone
    /// also finds its flag already set, and consumes it.
    fn wake_one(&self) {
        let mut sleepers = self.sleepers.lock();
        let Some(id) = sleepers.pop() else { return };
        self.num_sleeping.fetch_sub(1, SeqCst);
        self.num_searching.fetch_add(1, SeqCst);
        self.parkers[id].unpark();
    }

    /// Wakes every sleeper (shutdown).
    pub(crate) fn wake_all(&self) {
        let mut sleepers = self.sleepers.lock();
        self.num_sleeping.fetch_sub(sleepers.len(), SeqCst);
        self.num_searching.fetch_add(sleepers.len(), SeqCst);
        for id in sleepers.drain(..) {
            self.parkers[id].unpark();
        }
    }

    /// A worker that was not counted as searching starts searching.
    pub(crate) fn start_searching(&self) {
        self.num_searching.fetch_add(1, SeqCst);
    }

    /// A searching worker found a task. Returns true if it was the last
    /// searcher, in which case the caller should `notify_work`.
    pub(crate) fn stop_searching(&self) -> bool {
        self.num_searching.fetch_sub(1, SeqCst) == 1
    }

    /// Workers counted as sleeping.
    pub(crate) fn num_sleeping(&self) -> usize {
        self.num_sleeping.load(SeqCst)
    }

    /// Falling asleep, step 1 (see the module docs).
    pub(crate) fn prepare_sleep(&self, id: usize, searching: bool) {
        {
            let mut sleepers = self.sleepers.lock();
            sleepers.push(id);
            self.num_sleeping.fetch_add(1, SeqCst);
        }
        if searching {
            self.num_searching.fetch_sub(1, SeqCst);
        }
        fence(SeqCst);
    }

    /// Falling asleep, step 2 found work (or the sleep timed out): take our
    /// id back. Returns true if a poster had already woken us; we then count
    /// as searching.
    pub(crate) fn cancel_sleep(&self, id: usize) -> bool {
        let mut sleepers = self.sleepers.lock();
        if let Some(pos) = sleepers.iter().position(|&s| s == id) {
            sleepers.swap_remove(pos);
            self.num_sleeping.fetch_sub(1, SeqCst);
            false
        } else {
            // A poster popped us and set our flag (under this lock);
            // consume it so the next park waits.
            *self.parkers[id].notified.lock() = false;
            true
        }
    }

    /// Falling asleep, step 3. Returns true if unparked, false on timeout.
    pub(crate) fn park(&self, id: usize, deadline: Option<Instant>) -> bool {
        let parker = &self.parkers[id];
        let mut notified = parker.notified.lock();
        while !*notified {
            match deadline {
                Some(d) => {
                    if parker.condvar.wait_until(&mut notified, d).timed_out() {
                        break;
                    }
                }
                None => parker.condvar.wait(&mut notified),
            }
        }
        std::mem::replace(&mut *notified, false)
    }
}

impl Parker {
    fn unpark(&self) {
        *self.notified.lock() = true;
        self.condvar.notify_one();
    }
}
