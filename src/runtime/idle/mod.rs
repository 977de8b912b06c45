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
//! nobody (`worker/mod.rs`): the worker runs it next. But the waking task may
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
//! park counts itself as searching for the same reason. (A worker woken
//! by the reactor's tasks is the exception: see below.)
//!
//! # Napping in the reactor
//!
//! A worker that drives async-io's reactor (feature `async-io`,
//! `worker/reactor.rs`) falls asleep by steps 1 and 2 as above
//! ([`Idle::fall_asleep`]), but step 3 is a *nap*: instead of waiting on
//! its condition variable it returns to async-io's `block_on`, which waits
//! in the reactor (when it can take it) or on async-io's own parker. Three
//! things end a nap ([`Idle::nap_ended`], polled each time `block_on`
//! polls the worker):
//!
//! - **an unpark** (step 4 of a poster, or shutdown): it sets our flag
//!   under the `Parker`'s lock, then wakes the waker the worker registered
//!   ([`Idle::set_waker`]); that waker interrupts the reactor's wait if
//!   the worker is in it, or unparks async-io's parker, which remembers an
//!   unpark that comes before the park. The worker reads the flag on every
//!   poll, and every wake makes `block_on` poll again, so the unpark is
//!   never missed; the argument of "Why no wake-up is lost" is unchanged.
//! - **work from the reactor**: a task woken on the worker's own thread by
//!   the reactor it drives goes to its own queue, and `block_on` polls it
//!   when the reactor returns. The worker takes its id back and runs the
//!   task *not* counted as searching, as tokio's workers do: no baton is
//!   passed, so an event for one task wakes no second worker. It wakes one
//!   if it has more than one task (so that another can steal), and the
//!   first time it leaves a task in its LIFO slot while nobody watches
//!   ([`Idle::call_watcher`]), so that the watch still covers that slot.
//! - **its deadline** (the next timer, or the watch's end): an async-io
//!   timer. Then it searches, as from a timed park.
//!
//! `reactor_loom_models.rs` checks these against stand-ins for the reactor,
//! async-io's `block_on` loop and async-io's own thread.
//!
//! # Waking for a timer
//!
//! A new earliest timer must be seen by some sleeper that wakes by then
//! ([`Idle::notify_timer_at`]). Each sleeper publishes in its `Parker`
//! when it will wake at the latest (its *plan*: unset from step 1 until it
//! has read the timers, then its deadline, or none), and a new timer wakes
//! a sleeper only if no sleeper plans to wake by its deadline. The timer
//! is in the map before the poster's fence, and a plan is published after
//! the sleeper read the map: a plan read as covering the deadline was made
//! with the timer in view, or is earlier still; an unset plan covers
//! nothing.

use crate::loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use crate::loom::sync::{Condvar, Mutex};
use std::task::Waker;
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
    /// The origin of the sleepers' plans (`Parker::plan`).
    epoch: Instant,
}

/// One worker's bed: a flag and a condition variable, or, for a worker
/// that naps in the reactor, a flag and that worker's waker.
struct Parker {
    bell: Mutex<Bell>,
    condvar: Condvar,
    /// When the worker, asleep, will wake up at the latest, for
    /// [`Idle::notify_timer_at`]: [`PLAN_UNSET`] while it falls asleep,
    /// [`PLAN_NONE`] if it waits for an unpark, else the nanoseconds from
    /// `Idle::epoch` to its deadline, plus one. Meaningful only while the
    /// worker is in `sleepers`.
    plan: AtomicU64,
}

/// [`Parker::plan`]: the worker is falling asleep and has not chosen its
/// deadline yet.
const PLAN_UNSET: u64 = 0;
/// [`Parker::plan`]: the worker sleeps until unparked.
const PLAN_NONE: u64 = u64::MAX;

/// A [`Parker`]'s state, under its lock.
#[derive(Default)]
struct Bell {
    /// Set by an unpark; cleared by the worker that consumes it.
    notified: bool,
    /// Set once by a worker that naps in the reactor ([`Idle::set_waker`]):
    /// an unpark wakes it instead of the condition variable.
    waker: Option<Waker>,
}

/// A worker between falling asleep (steps 1 and 2) and waking up: what
/// it waits for.
#[derive(Debug)]
pub(crate) struct Nap {
    /// The latest instant to wake up at: the next timer, or the watch's
    /// end.
    wake_at: Option<Instant>,
    /// When this worker's watch began and how long it lasts, if it
    /// watches.
    watch: Option<(Instant, Duration)>,
}

impl Nap {
    /// The latest instant to wake up at, if any.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.wake_at
    }
}

/// What ended a sleep or a nap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A poster (or shutdown) unparked us, and counted us as searching.
    Unparked,
    /// The deadline passed.
    TimedOut,
    /// The reactor this worker drives gave it tasks, in its own queue.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    WithWork,
}

/// What a worker is once awake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Awake {
    /// Counted as searching: finding a task passes the baton.
    Searching,
    /// Not counted as searching: it has tasks of its own to run.
    Running,
}

/// Whether the reactor gave a napping worker tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReactorWork {
    /// Tasks woken on the worker's thread wait in its queue.
    Queued,
    /// Nothing yet.
    None,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            num_searching: AtomicUsize::new(0),
            num_sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            parkers: (0..workers)
                .map(|_| Parker {
                    bell: Mutex::new(Bell::default()),
                    condvar: Condvar::new(),
                    plan: AtomicU64::new(PLAN_UNSET),
                })
                .collect(),
            watching: AtomicBool::new(false),
            epoch: Instant::now(),
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

    /// Something that decides when sleepers should wake changed (with a
    /// paused clock: the clock may be able to jump now): make sure some
    /// sleeper recomputes its timeout, whether or not anyone is searching.
    pub(crate) fn notify_timer(&self) {
        fence(SeqCst);
        if self.num_sleeping.load(SeqCst) != 0 {
            self.wake_one();
        }
    }

    /// A new earliest timer, due at `at`, was set: as
    /// [`notify_timer`](Idle::notify_timer), unless a sleeper already
    /// plans to wake by then (it will see the timer when it does: it
    /// searches, and falls asleep again no later than the next timer).
    /// A timer set for each request then wakes no sleeper each time.
    ///
    /// A sleeper publishes [`PLAN_UNSET`] when it joins `sleepers` and its
    /// deadline once it has read the timers; the timer was inserted
    /// before this fence, so a plan read here as covering `at` was
    /// computed with the timer in view or is earlier still.
    pub(crate) fn notify_timer_at(&self, at: Instant) {
        fence(SeqCst);
        if self.num_sleeping.load(SeqCst) == 0 {
            return;
        }
        let at = self.plan_of(Some(at));
        let mut sleepers = self.sleepers.lock();
        let covered = sleepers.iter().any(|&id| {
            let plan = self.parkers[id].plan.load(SeqCst);
            plan != PLAN_UNSET && plan <= at
        });
        if !covered {
            self.wake_one_locked(&mut sleepers);
        }
    }

    /// A deadline as a [`Parker::plan`].
    fn plan_of(&self, wake_at: Option<Instant>) -> u64 {
        match wake_at {
            None => PLAN_NONE,
            Some(t) => {
                let nanos = t.saturating_duration_since(self.epoch).as_nanos();
                u64::try_from(nanos).map_or(PLAN_NONE - 1, |n| n.saturating_add(1))
            }
        }
    }

    /// Pops one sleeper and unparks it. The unpark happens under the
    /// `sleepers` lock, so a worker in `cancel_sleep` that finds its id gone
    /// also finds its flag already set, and consumes it.
    fn wake_one(&self) {
        self.wake_one_locked(&mut self.sleepers.lock());
    }

    /// [`wake_one`](Idle::wake_one), the `sleepers` lock held.
    fn wake_one_locked(&self, sleepers: &mut Vec<usize>) {
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

    /// The watcher woke up: somebody else may watch next. `SeqCst`, for
    /// [`call_watcher`](Idle::call_watcher): either it sees the watch
    /// still on, or this worker, falling asleep again, sees it running.
    fn stop_watching(&self) {
        self.watching.store(false, SeqCst);
    }

    /// A worker that woke for the reactor's tasks (not counted as
    /// searching, so it passed no baton) is about to leave a task in its
    /// LIFO slot: if workers sleep and none watches, wake one, which,
    /// finding nothing, falls asleep again as the watcher (this worker
    /// runs). The store-fence-load pairs with `prepare_sleep`'s.
    pub(crate) fn call_watcher(&self) {
        fence(SeqCst);
        if !self.watching.load(SeqCst) && self.num_sleeping.load(SeqCst) != 0 {
            self.wake_one();
        }
    }

    /// Workers counted as sleeping.
    pub(crate) fn num_sleeping(&self) -> usize {
        self.num_sleeping.load(SeqCst)
    }

    /// Falls asleep following the protocol (steps 1 to 3, and the watch);
    /// the worker is searching when this returns.
    pub(crate) fn sleep(&self, id: usize, searching: bool, bed: &impl Bed) {
        let Some(nap) = self.fall_asleep(id, searching, bed) else {
            return;
        };
        let woken = match self.park(id, nap.wake_at) {
            true => Woken::Unparked,
            false => Woken::TimedOut,
        };
        self.wake_up(id, nap, woken, bed);
    }

    /// Steps 1 and 2, and the start of a watch: the nap to take, or `None`
    /// if there is work after all (the worker is then searching again).
    pub(crate) fn fall_asleep(&self, id: usize, searching: bool, bed: &impl Bed) -> Option<Nap> {
        self.prepare_sleep(id, searching);
        if bed.has_work() {
            // We stopped searching in `prepare_sleep`, and a poster may
            // have relied on that search: search again, so that finding a
            // task passes the baton.
            self.search_again(id);
            return None;
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
        self.parkers[id].plan.store(self.plan_of(wake_at), SeqCst);
        Some(Nap { wake_at, watch })
    }

    /// Registers the waker of worker `id`, which naps in the reactor: an
    /// unpark wakes it from then on. The same waker for the worker's life.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    pub(crate) fn set_waker(&self, id: usize, waker: &Waker) {
        let mut bell = self.parkers[id].bell.lock();
        if bell.waker.is_none() {
            bell.waker = Some(waker.clone());
        }
    }

    /// A napping worker was polled: what ended its nap, if anything did.
    /// An unpark is consumed here.
    #[cfg_attr(not(feature = "async-io"), allow(dead_code))] // used by `worker/reactor.rs`
    pub(crate) fn nap_ended(&self, id: usize, nap: &Nap, work: ReactorWork) -> Option<Woken> {
        if std::mem::take(&mut self.parkers[id].bell.lock().notified) {
            Some(Woken::Unparked)
        } else if work == ReactorWork::Queued {
            Some(Woken::WithWork)
        } else if nap.wake_at.is_some_and(|t| Instant::now() >= t) {
            Some(Woken::TimedOut)
        } else {
            None
        }
    }

    /// Ends a sleep or a nap: the watch's end, and our id taken back
    /// unless a poster took it.
    pub(crate) fn wake_up(&self, id: usize, nap: Nap, woken: Woken, bed: &impl Bed) -> Awake {
        if let Some((start, interval)) = nap.watch {
            self.stop_watching();
            // A task still there after half an interval or more is stuck (a
            // timer or the reactor may have ended the nap early: then look
            // again later).
            if woken != Woken::Unparked && start.elapsed() >= interval / 2 {
                bed.watch_ends();
            }
        }
        match woken {
            // A poster counted us as searching.
            Woken::Unparked => Awake::Searching,
            // Search, as if woken: finding a task then passes the baton,
            // so that while we run, another idle worker watches.
            Woken::TimedOut => {
                self.search_again(id);
                Awake::Searching
            }
            // Our own tasks: run them, searching only if a poster counted
            // us so meanwhile.
            Woken::WithWork => match self.cancel_sleep(id) {
                true => Awake::Searching,
                false => Awake::Running,
            },
        }
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
            self.parkers[id].plan.store(PLAN_UNSET, SeqCst);
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
            self.parkers[id].bell.lock().notified = false;
            true
        }
    }

    /// Falling asleep, step 3. Returns true if unparked, false on timeout.
    fn park(&self, id: usize, deadline: Option<Instant>) -> bool {
        let parker = &self.parkers[id];
        let mut bell = parker.bell.lock();
        while !bell.notified {
            match deadline {
                Some(d) => {
                    if parker.condvar.wait_until(&mut bell, d).timed_out() {
                        break;
                    }
                }
                None => parker.condvar.wait(&mut bell),
            }
        }
        std::mem::take(&mut bell.notified)
    }
}

impl Parker {
    /// Step 4's unpark: the flag, then the napping worker's waker or the
    /// condition variable. The lock orders it against `set_waker`: either
    /// the waker is there to be woken, or the worker, which registers it
    /// before it first reads the flag, reads it set. The waker is woken
    /// under the lock (it is async-io's, which takes none of ours).
    fn unpark(&self) {
        let mut bell = self.bell.lock();
        bell.notified = true;
        match &bell.waker {
            Some(waker) => waker.wake_by_ref(),
            None => {
                drop(bell);
                self.condvar.notify_one();
            }
        }
    }
}

#[cfg(all(test, cancel_scope_loom))]
mod reactor_loom_models;

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
