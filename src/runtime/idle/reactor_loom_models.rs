//! loom models of the sleep protocol meeting async-io's reactor, as the
//! workers of feature `async-io` meet it (`worker/reactor.rs`), on the
//! real [`Idle`]: its naps (`fall_asleep`, `nap_ended`, `wake_up`), its
//! `Parker` with a registered waker, `notify_work`, the baton.
//!
//! The stand-ins, reduced to what the protocol depends on:
//!
//! - **the reactor**: a lock that one thread at a time holds to wait in
//!   it (async-io's `try_lock`/`lock`), a count of ready events (each
//!   wakes one task), and a notification (the eventfd) that ends a wait;
//! - **`async_io::block_on`** ([`Model::block_on`]): its loop, step by
//!   step: poll the future; if notified meanwhile, react without waiting
//!   (if it gets the lock) and poll again; else wait in the reactor if it
//!   gets the lock (flagged `io_blocked`, and checking its notification
//!   before and after each wait), or on its parker if not; optionally
//!   the "hog" rule (give the reactor up after some rounds that did not
//!   notify it, unpark async-io's thread, and park);
//! - **its waker** ([`CrossThreadWaker`]): unpark the parker, and, if the
//!   parker was not notified yet and its thread waits in the reactor,
//!   notify the reactor; from the thread's own reactor round the wake is
//!   only the unpark (async-io's `IO_POLLING`);
//! - **async-io's own thread** ([`Model::io_thread`]): takes the reactor
//!   whenever it is free and waits in it; the tasks it wakes are pushed
//!   to the injector and posted (`notify_work`), as from any thread
//!   outside the runtime;
//! - **a worker** ([`Model::poll_worker`]): the run loop's shape as
//!   `Drive::poll` runs it: run items, fall asleep, nap (its phase "in
//!   the reactor": an item its own reactor round wakes goes to its own
//!   queue and ends the nap), wake up searching or running, and wake
//!   another worker if it has more than one item of its own.
//!
//! Items are counted, as in `mod.rs`'s models; every item but the last,
//! once taken, waits for the last one to be taken, so items posted
//! together must run on different workers. A lost wake-up leaves a
//! thread waiting with an item queued or an event ready, which loom
//! reports as a deadlock.
//!
//! Run with `RUSTFLAGS="--cfg cancel_scope_loom" cargo test --release --lib loom_models`.

use super::{Awake, Bed, Idle, Nap, ReactorWork};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Condvar, Mutex};
use loom::thread;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

/// The stand-in for async-io's reactor.
struct Reactor {
    /// Held by the thread that waits in the reactor.
    lock: ReactorLock,
    state: Mutex<Ready>,
    /// Ends a wait: an event, a notification, or the model's end.
    changed: Condvar,
}

/// The reactor's lock. Not a loom `Mutex`: loom lets a `try_lock` wait
/// while another thread holds the lock, where async-io's returns at once
/// (and its caller parks instead).
#[derive(Default)]
struct ReactorLock {
    held: Mutex<bool>,
    freed: Condvar,
}

/// The reactor, held.
struct Held<'a>(&'a ReactorLock);

impl ReactorLock {
    fn try_lock(&self) -> Option<Held<'_>> {
        let was_held = std::mem::replace(&mut *self.held.lock().unwrap(), true);
        (!was_held).then(|| Held(self))
    }

    fn lock(&self) -> Held<'_> {
        let mut held = self.held.lock().unwrap();
        while *held {
            held = self.freed.wait(held).unwrap();
        }
        *held = true;
        Held(self)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self.0.held.lock().unwrap() = false;
        self.0.freed.notify_all();
    }
}

/// What a wait in the reactor can return for.
#[derive(Default)]
struct Ready {
    /// Events ready, each waking one task.
    events: usize,
    /// The reactor's notification (async-io's `Reactor::notify`).
    notified: bool,
    /// The model is over: no wait blocks.
    closed: bool,
}

/// Whether a reactor round may wait.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until an event or a notification.
    Yes,
    /// Take what is ready, if anything, and return.
    No,
}

impl Reactor {
    fn notify(&self) {
        self.state.lock().unwrap().notified = true;
        self.changed.notify_all();
    }

    /// The kernel: a socket became ready.
    fn event(&self, tasks: usize) {
        self.state.lock().unwrap().events += tasks;
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.changed.notify_all();
    }

    /// One round's wait (the lock held): the events it took.
    fn wait(&self, wait: Wait) -> usize {
        let mut state = self.state.lock().unwrap();
        while wait == Wait::Yes && state.events == 0 && !state.notified && !state.closed {
            state = self.changed.wait(state).unwrap();
        }
        state.notified = false;
        std::mem::take(&mut state.events)
    }
}

/// async-io's parker of one `block_on` (the `parking` crate), and its
/// `io_blocked` flag.
#[derive(Default)]
struct BlockOnParker {
    notified: Mutex<bool>,
    unparked: Condvar,
    io_blocked: AtomicBool,
}

impl BlockOnParker {
    /// Returns whether this changed anything (it was not notified yet).
    fn unpark(&self) -> bool {
        let fresh = !std::mem::replace(&mut *self.notified.lock().unwrap(), true);
        self.unparked.notify_one();
        fresh
    }

    /// `park_timeout(0)`: consumes a notification, if any.
    fn take(&self) -> bool {
        std::mem::take(&mut *self.notified.lock().unwrap())
    }

    fn park(&self) {
        let mut notified = self.notified.lock().unwrap();
        while !*notified {
            notified = self.unparked.wait(notified).unwrap();
        }
        *notified = false;
    }
}

/// async-io's `block_on` waker, as another thread calls it (the one a
/// worker registers with its `Parker`).
struct CrossThreadWaker {
    parker: Arc<BlockOnParker>,
    reactor: Arc<Reactor>,
}

impl Wake for CrossThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.parker.unpark() && self.parker.io_blocked.load(SeqCst) {
            self.reactor.notify();
        }
    }
}

/// A worker's state shared with the other threads.
struct Worker {
    /// Items in its own queue (others may steal them).
    local: AtomicUsize,
    parker: Arc<BlockOnParker>,
    /// Its phase is "in the reactor" (`Phase::InReactor`).
    in_reactor: AtomicBool,
    /// Its reactor round queued an item during the nap.
    reactor_work: AtomicBool,
}

/// A worker's own state: its nap, whether it searches.
#[derive(Default)]
struct Own {
    nap: Option<Nap>,
    searching: bool,
    registered: bool,
}

/// How a model's `block_on` treats a reactor it holds without being
/// notified (async-io gives it up after 500 µs of such rounds).
#[derive(Clone, Copy)]
enum Hog {
    /// Keeps it.
    Never,
    /// Gives it up after this many rounds that did not notify it.
    After(usize),
}

struct Model {
    idle: Idle,
    reactor: Arc<Reactor>,
    workers: Vec<Worker>,
    injector: AtomicUsize,
    taken: AtomicUsize,
    total: usize,
    shutdown: AtomicBool,
    all_taken: Mutex<bool>,
    all_taken_cv: Condvar,
    hog: Hog,
    /// async-io's thread's parker (its backoff): the hog rule unparks it.
    io_thread_kick: Arc<BlockOnParker>,
}

impl Bed for Model {
    fn has_work(&self) -> bool {
        self.shutdown.load(SeqCst)
            || self.injector.load(SeqCst) > 0
            || self.workers.iter().any(|w| w.local.load(SeqCst) > 0)
    }

    fn wake_at(&self) -> Option<Instant> {
        None
    }

    fn watch_interval(&self) -> Option<Duration> {
        None // loom has no time
    }

    fn watch_begins(&self) {}

    fn watch_ends(&self) {}
}

fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok()
}

impl Model {
    fn new(workers: usize, total: usize, hog: Hog) -> Arc<Model> {
        Arc::new(Model {
            idle: Idle::new(workers),
            reactor: Arc::new(Reactor {
                lock: ReactorLock::default(),
                state: Mutex::new(Ready::default()),
                changed: Condvar::new(),
            }),
            workers: (0..workers)
                .map(|_| Worker {
                    local: AtomicUsize::new(0),
                    parker: Arc::default(),
                    in_reactor: AtomicBool::new(false),
                    reactor_work: AtomicBool::new(false),
                })
                .collect(),
            injector: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
            total,
            shutdown: AtomicBool::new(false),
            all_taken: Mutex::new(false),
            all_taken_cv: Condvar::new(),
            hog,
            io_thread_kick: Arc::default(),
        })
    }

    /// Posting from outside the runtime: push, then notify.
    fn post(&self) {
        self.injector.fetch_add(1, SeqCst);
        self.idle.notify_work();
    }

    /// A task woken by a reactor round that thread `by` ran (a worker's
    /// id, or `None` for async-io's thread): to that worker's own queue if
    /// it is in the reactor (its nap ends when the round returns), else
    /// posted as from outside.
    fn deliver(&self, by: Option<usize>) {
        match by {
            Some(id) if self.workers[id].in_reactor.load(SeqCst) => {
                let me = &self.workers[id];
                me.local.fetch_add(1, SeqCst);
                if !me.reactor_work.swap(true, SeqCst) {
                    // The thread's own round: no reactor notification.
                    me.parker.unpark();
                }
            }
            _ => self.post(),
        }
    }

    /// One reactor round, the lock held.
    fn react(&self, by: Option<usize>, wait: Wait) {
        for _ in 0..self.reactor.wait(wait) {
            self.deliver(by);
        }
    }

    /// Takes an item: own queue, injector, then the others' queues.
    fn pop(&self, id: usize) -> bool {
        take_one(&self.workers[id].local)
            || take_one(&self.injector)
            || self.workers.iter().any(|w| take_one(&w.local))
    }

    /// Runs a taken item: the last one ends the model, the others wait
    /// for it.
    fn run_item(&self) {
        if self.taken.fetch_add(1, SeqCst) + 1 == self.total {
            *self.all_taken.lock().unwrap() = true;
            self.all_taken_cv.notify_all();
            self.shutdown.store(true, SeqCst);
            self.idle.wake_all();
            self.reactor.close();
            self.io_thread_kick.unpark();
            return;
        }
        let mut all_taken = self.all_taken.lock().unwrap();
        while !*all_taken {
            all_taken = self.all_taken_cv.wait(all_taken).unwrap();
        }
    }

    /// One poll of worker `id`'s future: `Drive::poll` and the run loop.
    /// `true` once the model is over.
    fn poll_worker(&self, id: usize, own: &mut Own) -> bool {
        let me = &self.workers[id];
        loop {
            if let Some(nap) = own.nap.take() {
                let work = match me.reactor_work.load(SeqCst) {
                    true => ReactorWork::Queued,
                    false => ReactorWork::None,
                };
                let Some(woken) = self.idle.nap_ended(id, &nap, work) else {
                    own.nap = Some(nap);
                    return false;
                };
                me.in_reactor.store(false, SeqCst);
                me.reactor_work.store(false, SeqCst);
                match self.idle.wake_up(id, nap, woken, self) {
                    Awake::Searching => own.searching = true,
                    Awake::Running => {
                        own.searching = false;
                        if me.local.load(SeqCst) > 1 {
                            self.idle.notify_work();
                        }
                    }
                }
            }
            if self.shutdown.load(SeqCst) {
                return true;
            }
            if self.pop(id) {
                if own.searching {
                    own.searching = false;
                    if self.idle.stop_searching() {
                        self.idle.notify_work(); // pass the baton
                    }
                }
                self.run_item();
                continue;
            }
            match self.idle.fall_asleep(id, own.searching, self) {
                None => own.searching = true,
                Some(nap) => {
                    me.in_reactor.store(true, SeqCst);
                    if !own.registered {
                        own.registered = true;
                        let waker = Waker::from(Arc::new(CrossThreadWaker {
                            parker: me.parker.clone(),
                            reactor: self.reactor.clone(),
                        }));
                        self.idle.set_waker(id, &waker);
                    }
                    own.nap = Some(nap); // checked at once, above
                }
            }
        }
    }

    /// Worker `id`'s thread: its future in async-io's `block_on`.
    fn block_on(&self, id: usize) {
        let parker = &self.workers[id].parker;
        let mut own = Own::default();
        loop {
            if self.poll_worker(id, &mut own) {
                return;
            }
            if parker.take() {
                if let Some(_reactor) = self.reactor.lock.try_lock() {
                    self.react(Some(id), Wait::No);
                }
                continue;
            }
            let Some(reactor) = self.reactor.lock.try_lock() else {
                parker.park();
                continue;
            };
            let mut idle_rounds = 0;
            loop {
                parker.io_blocked.store(true, SeqCst);
                if parker.take() {
                    break;
                }
                self.react(Some(id), Wait::Yes);
                if parker.take() {
                    break;
                }
                idle_rounds += 1;
                if let Hog::After(n) = self.hog {
                    if idle_rounds >= n {
                        parker.io_blocked.store(false, SeqCst);
                        drop(reactor);
                        self.io_thread_kick.unpark();
                        parker.park();
                        break;
                    }
                }
                parker.io_blocked.store(false, SeqCst);
            }
            parker.io_blocked.store(false, SeqCst);
        }
    }

    /// async-io's own thread: waits in the reactor whenever it is free,
    /// until the model ends; when the hog rule is on, only once kicked.
    fn io_thread(&self) {
        while !self.shutdown.load(SeqCst) {
            if let Hog::After(_) = self.hog {
                self.io_thread_kick.park();
            }
            let _reactor = self.reactor.lock.lock();
            self.react(None, Wait::Yes);
        }
    }
}

fn spawn_workers(model: &Arc<Model>) -> Vec<thread::JoinHandle<()>> {
    (0..model.workers.len())
        .map(|id| {
            let model = model.clone();
            thread::spawn(move || model.block_on(id))
        })
        .collect()
}

fn spawn_io_thread(model: &Arc<Model>) -> thread::JoinHandle<()> {
    let model = model.clone();
    thread::spawn(move || model.io_thread())
}

fn bounded(preemptions: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder
}

/// An event comes for a worker that naps, or is about to nap, in the
/// reactor: its own round wakes the task into its queue, and the nap ends
/// with it.
#[test]
fn the_reactor_wakes_a_task_for_the_worker_that_waits_in_it() {
    loom::model(|| {
        let model = Model::new(1, 1, Hog::Never);
        let workers = spawn_workers(&model);
        model.reactor.event(1);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(model.taken.load(SeqCst), 1);
    });
}

/// Work posted from outside while the worker falls asleep and waits in
/// the reactor: the unpark reaches it through its waker (the reactor's
/// notification if it already waits there).
#[test]
fn a_post_reaches_a_worker_waiting_in_the_reactor() {
    loom::model(|| {
        let model = Model::new(1, 1, Hog::Never);
        let workers = spawn_workers(&model);
        model.post();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(model.taken.load(SeqCst), 1);
    });
}

/// async-io's own thread competes for the reactor: whichever of it and
/// the worker waits in it, the event's task runs (posted to the injector
/// and the worker unparked, when async-io's thread got it).
#[test]
fn an_event_through_async_ios_thread_wakes_the_worker() {
    bounded(4).check(|| {
        let model = Model::new(1, 1, Hog::Never);
        let workers = spawn_workers(&model);
        let io = spawn_io_thread(&model);
        model.reactor.event(1);
        for w in workers {
            w.join().unwrap();
        }
        io.join().unwrap();
        assert_eq!(model.taken.load(SeqCst), 1);
    });
}

/// The worker gives the reactor up (async-io's hog rule) and parks, and
/// async-io's thread takes over: the event still reaches a running task.
#[test]
fn a_worker_that_gives_the_reactor_up_is_still_woken() {
    bounded(3).check(|| {
        let model = Model::new(1, 1, Hog::After(1));
        let workers = spawn_workers(&model);
        let io = spawn_io_thread(&model);
        model.reactor.notify(); // a round that notifies nobody
        model.reactor.event(1);
        for w in workers {
            w.join().unwrap();
        }
        io.join().unwrap();
        assert_eq!(model.taken.load(SeqCst), 1);
    });
}

/// One round wakes two tasks that need each other into the queue of the
/// worker that waits in the reactor: it wakes the other worker (it has
/// more than one task of its own), which steals one.
#[test]
fn two_tasks_from_one_round_wake_a_second_worker() {
    bounded(3).check(|| {
        let model = Model::new(2, 2, Hog::Never);
        let workers = spawn_workers(&model);
        model.reactor.event(2);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(model.taken.load(SeqCst), 2);
    });
}

/// Both wake sources at once, with async-io's thread in the race: a task
/// woken by the reactor (on whichever thread waits in it) and a task
/// posted from outside need each other, so both workers must run.
#[test]
fn the_reactor_and_a_poster_together_wake_both_workers() {
    bounded(2).check(|| {
        let model = Model::new(2, 2, Hog::Never);
        let workers = spawn_workers(&model);
        let io = spawn_io_thread(&model);
        model.reactor.event(1);
        model.post();
        for w in workers {
            w.join().unwrap();
        }
        io.join().unwrap();
        assert_eq!(model.taken.load(SeqCst), 2);
    });
}
