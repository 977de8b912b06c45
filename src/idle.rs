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
//! # Falling asleep (`Idle::sleep`; the worker's [`Bed`] answers its questions)
//!
//! 1. push our id to `sleepers` (`num_sleeping += 1`), stop searching
//!    (`num_searching -= 1`), then `fence(SeqCst)`;
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
//!
//! # The watch
//!
//! A task woken on a worker goes to that worker's LIFO slot and wakes
//! nobody (`worker.rs`): the worker runs it next. But the waking task may
//! compute for a long time without yielding, and the slot's task would
//! wait for it while other workers sleep. So while some worker is not
//! asleep, one sleeping worker is the *watcher* (`watching`, taken with a
//! CAS in `start_watching`): it parks with a timeout of `WATCH_INTERVAL`,
//! and on each timeout takes every task that has sat in another worker's
//! slot since its previous look (the slot's push `stamp` is unchanged),
//! then searches as if woken. So a stuck task waits at most about two
//! intervals, and a task its owner runs next is never taken from it.
//!
//! A watcher exists whenever it is needed: a worker that starts to run
//! while others sleep was either woken (then it was counted searching,
//! and finding a task passes the baton: the woken sleeper searches, finds
//! nothing and goes back to sleep as the watcher, since someone runs) or
//! was never asleep (then the others fell asleep while it ran, and the
//! first of them became the watcher). A worker waking from any timed
//! park counts itself as searching for the same reason.

use crate::loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering::*};
use crate::loom::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a worker falling asleep tells [`Idle::sleep`].
pub(crate) trait Bed {
    /// Step 2: whether anything is to be done after all (a queued task, a
    /// due timer, shutdown).
    fn has_work(&self) -> bool;
    /// The latest instant to wake up at (the next timer), if any.
    fn wake_at(&self) -> Option<Instant>;
    /// How long a watch lasts; `None` never watches.
    fn watch_interval(&self) -> Option<Duration>;
    /// This worker starts a watch: remember what the slots hold.
    fn watch_begins(&self);
    /// A watch ended after at least half its interval: take what is stuck.
    fn watch_ends(&self);
}

/// Sleep bookkeeping shared by all workers of a runtime.
pub(crate) struct Idle {
    num_searching: AtomicUsize,
    num_sleeping: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    parkers: Box<[Parker]>,
    /// Some sleeping worker is the watcher (see the module docs).
    watching: AtomicBool,
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
            watching: AtomicBool::new(false),
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
    fn start_searching(&self) {
        self.num_searching.fetch_add(1, SeqCst);
    }

    /// A searching worker found a task. Returns true if it was the last
    /// searcher, in which case the caller should `notify_work`.
    pub(crate) fn stop_searching(&self) -> bool {
        self.num_searching.fetch_sub(1, SeqCst) == 1
    }

    /// A worker about to sleep becomes the watcher if some other worker
    /// is not asleep and nobody watches yet. Returns whether it did.
    fn start_watching(&self) -> bool {
        self.num_sleeping.load(SeqCst) < self.parkers.len()
            && self
                .watching
                .compare_exchange(false, true, AcqRel, Relaxed)
                .is_ok()
    }

    /// The watcher woke up: somebody else may watch next.
    fn stop_watching(&self) {
        self.watching.store(false, Release);
    }

    /// Workers counted as sleeping.
    pub(crate) fn num_sleeping(&self) -> usize {
        self.num_sleeping.load(SeqCst)
    }

    /// Falls asleep following the protocol (steps 1 to 3, and the watch);
    /// the worker is searching when this returns.
    pub(crate) fn sleep(&self, id: usize, searching: bool, bed: &impl Bed) {
        self.prepare_sleep(id, searching);
        if bed.has_work() {
            // We stopped searching in `prepare_sleep`, and a poster may
            // have relied on that search: search again, so that finding a
            // task passes the baton.
            return self.search_again(id);
        }
        let mut wake_at = bed.wake_at();
        let watch = bed.watch_interval().filter(|_| self.start_watching());
        let watch = watch.map(|interval| {
            bed.watch_begins();
            (Instant::now(), interval)
        });
        if let Some((start, interval)) = watch {
            let end = start + interval;
            wake_at = Some(wake_at.map_or(end, |t| t.min(end)));
        }
        let unparked = self.park(id, wake_at);
        if let Some((start, interval)) = watch {
            self.stop_watching();
            // A task still there after half an interval or more is stuck (a
            // timer may have ended the park early: then look again later).
            if !unparked && start.elapsed() >= interval / 2 {
                bed.watch_ends();
            }
        }
        if !unparked {
            // Timed out. Search, as if woken: finding a task then passes
            // the baton, so that while we run, another idle worker watches.
            self.search_again(id);
        }
        // Else a poster unparked us and counted us as searching.
    }

    /// Back from step 2 or a timeout: take our id back and search.
    fn search_again(&self, id: usize) {
        if !self.cancel_sleep(id) {
            self.start_searching();
        }
    }

    /// Falling asleep, step 1 (see the module docs).
    fn prepare_sleep(&self, id: usize, searching: bool) {
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
    fn cancel_sleep(&self, id: usize) -> bool {
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
    fn park(&self, id: usize, deadline: Option<Instant>) -> bool {
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

/// loom models of the sleep protocol, on the real [`Idle`]: model threads
/// play the workers (with the run loop's search-run-sleep shape) and a
/// poster; a queue is a counter. A lost wake-up leaves a worker parked
/// with work waiting, which loom reports as a deadlock.
///
/// Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.
#[cfg(all(test, cancel_scope_loom))]
mod loom_models {
    use super::{Bed, Idle};
    use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use crate::loom::sync::{Condvar, Mutex};
    use loom::thread;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A runtime reduced to its sleep state and one queue of `total`
    /// items. Every item but the last, once taken, waits for the last one
    /// to be taken (tasks that need each other): the items must run in
    /// parallel, on different workers.
    struct Model {
        idle: Idle,
        queued: AtomicUsize,
        taken: AtomicUsize,
        total: usize,
        shutdown: AtomicBool,
        all_taken: Mutex<bool>,
        all_taken_cv: Condvar,
    }

    impl Bed for Model {
        fn has_work(&self) -> bool {
            self.shutdown.load(SeqCst) || self.queued.load(SeqCst) > 0
        }

        fn wake_at(&self) -> Option<Instant> {
            None
        }

        fn watch_interval(&self) -> Option<Duration> {
            None // loom has no time: a watch would never time out
        }

        fn watch_begins(&self) {}

        fn watch_ends(&self) {}
    }

    impl Model {
        fn new(workers: usize, total: usize) -> Arc<Model> {
            Arc::new(Model {
                idle: Idle::new(workers),
                queued: AtomicUsize::new(0),
                taken: AtomicUsize::new(0),
                total,
                shutdown: AtomicBool::new(false),
                all_taken: Mutex::new(false),
                all_taken_cv: Condvar::new(),
            })
        }

        /// Posting side: push, then notify.
        fn post(&self) {
            self.queued.fetch_add(1, SeqCst);
            self.idle.notify_work();
        }

        /// Pops an item if there is one.
        fn pop(&self) -> bool {
            self.queued
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }

        /// Runs a taken item: the last one shuts the model down, the others
        /// wait for it.
        fn run_item(&self) {
            if self.taken.fetch_add(1, SeqCst) + 1 == self.total {
                *self.all_taken.lock() = true;
                self.all_taken_cv.notify_all();
                self.shutdown.store(true, SeqCst);
                self.idle.wake_all();
                return;
            }
            let mut all_taken = self.all_taken.lock();
            while !*all_taken {
                self.all_taken_cv.wait(&mut all_taken);
            }
        }

        /// A worker's run loop: find an item, run it, sleep when there is
        /// none. The one that takes the last item shuts the model down.
        fn worker(&self, id: usize) {
            let mut searching = false;
            while !self.shutdown.load(SeqCst) {
                if self.pop() {
                    if searching {
                        searching = false;
                        if self.idle.stop_searching() {
                            self.idle.notify_work(); // pass the baton
                        }
                    }
                    self.run_item();
                    continue;
                }
                self.idle.sleep(id, searching, self);
                searching = true;
            }
        }
    }

    /// A worker falls asleep while an item is posted: in every order, the
    /// worker sees the item or is woken for it.
    #[test]
    fn falling_asleep_while_work_is_posted() {
        loom::model(|| {
            let model = Model::new(1, 1);
            let worker = {
                let model = model.clone();
                thread::spawn(move || model.worker(0))
            };
            model.post();
            worker.join().unwrap();
            assert_eq!(model.taken.load(SeqCst), 1);
        });
    }

    /// Two items that need each other, posted one after the other to two
    /// sleeping-prone workers: the worker woken for the first, finding it,
    /// passes the baton, so the second is run by the other worker and not
    /// left queued behind the first while a worker sleeps.
    #[test]
    fn the_last_searcher_passes_the_baton() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let model = Model::new(2, 2);
            let workers: Vec<_> = (0..2)
                .map(|id| {
                    let model = model.clone();
                    thread::spawn(move || model.worker(id))
                })
                .collect();
            model.post();
            model.post();
            for worker in workers {
                worker.join().unwrap();
            }
            assert_eq!(model.taken.load(SeqCst), 2);
        });
    }
}
