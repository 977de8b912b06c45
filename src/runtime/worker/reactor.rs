//! A worker that drives async-io's reactor (feature `async-io`).
//!
//! async-io's reactor is one per process, behind a lock: whoever holds it
//! waits in `epoll_wait` (or the platform's equivalent) and wakes the
//! tasks whose sockets became ready. Its only public driver is
//! `async_io::block_on`, which, between two polls of its future, waits in
//! the reactor if it can take the lock and on a parker of its own if not;
//! async-io's own thread drives it when nobody else does.
//!
//! So a worker that drives the reactor runs its whole loop inside one
//! `async_io::block_on` (as smol's executor threads do). Its future runs
//! tasks ([`Core::run_loop`]) and returns `Pending` when the worker has
//! nothing to do, after the first two steps of falling asleep
//! (`idle/mod.rs`): a *nap*. `block_on` then waits in the reactor, and a task
//! woken there, on this thread, goes to this worker's own queue
//! (`Phase::InReactor` in `mod.rs`): no other thread and no futex on
//! the way. The nap ends on an unpark (the `Parker` wakes `block_on`'s
//! waker, which interrupts the reactor's wait), on the reactor's tasks,
//! or at the nap's deadline, an async-io timer ([`Alarm`]).
//!
//! While busy, a worker that the reactor has given tasks lets it deliver
//! what is ready every [`GLOBAL_QUEUE_INTERVAL`] tasks (a wake-up of its own
//! waker, which makes `block_on` poll the reactor without waiting), so
//! that I/O waits neither for a worker to run dry nor for async-io's
//! thread; a runtime that does no I/O never does.
//!
//! # The paused clock
//!
//! A paused clock jumps when every thread of the runtime is idle
//! (`Shared::auto_advance`); a worker napping in the reactor is idle. But
//! a task idle on a socket that is already readable (its peer, a task of
//! the same runtime, wrote to it over the loopback, then slept) is not
//! idle for long: the reactor will wake it at its next round. So a worker
//! jumps the clock only from a nap ([`Probe`]):
//!
//! 1. it takes a census: every thread of the runtime idle, and how many
//!    times one left idleness so far (`Shared::wakings`); if someone is
//!    busy, it gives up, and the last one to go idle does this itself;
//! 2. it waits for reactor rounds that began after the census: the first
//!    saw every event ready by then, and the second began only once the
//!    first had woken all its tasks (a round wakes them before it lets the
//!    reactor go); one round that ran on this worker's own thread did both
//!    before `block_on` polls the worker again;
//! 3. it jumps only if everyone is still idle and nobody left idleness
//!    meanwhile: a task those rounds woke is queued, or a worker was
//!    unparked for it, or it already ran (and its thread counted a
//!    waking).
//!
//! I/O that becomes ready later (a peer outside the runtime, still
//! sending) does not hold the clock back. `block_on` and the blocking pool
//! leave the jump to a worker (`Shared::auto_advance_or_defer`).
//!
//! # Why once, why async-io, and why on by default
//!
//! A worker enters `async_io::block_on` once, for its whole life: a
//! `block_on` per nap would, on each return, unpark async-io's own thread,
//! which would take the reactor and keep it, and every wake-up would cross
//! threads again. The reactor is one per process: workers of two runtimes
//! take turns at it, and a task woken by another runtime's worker goes
//! through its own runtime's injector, as from any outside thread. The
//! runtime's timers and async-io's `Timer`s coexist: the runtime's fire on
//! its own clock (paused or real) by its workers, a napping worker bounding
//! its nap by the next one with one [`Alarm`]; async-io's fire on real
//! time, by whoever waits in the reactor, and do not follow a paused clock.
//!
//! What async-io costs that a reactor of our own on `polling` would not: its
//! sources are one-shot, so every wait for readiness re-arms with an
//! `epoll_ctl` (about one per round trip), and a read after a wake-up is
//! followed by one that finds nothing (four socket calls per round trip to
//! tokio's three). Removing those would take socket types of our own that no
//! async-io-based crate would use, and a reactor per runtime that every I/O
//! object is tied to; BENCHMARKS.md, *I/O*, measures what is left. The
//! feature is on by default because every I/O program compiles async-io
//! anyway; a program without I/O turns it off and keeps four dependencies.
//!
//! [`GLOBAL_QUEUE_INTERVAL`]: crate::runtime::queue::GLOBAL_QUEUE_INTERVAL

use super::{Core, Pause, Phase, CURRENT_CORE};
use crate::runtime::idle::{Nap, ReactorWork, Woken};
use crate::runtime::Shared;
use async_io::{Async, ReadableOwned};
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::net::{Ipv4Addr, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Runs worker `core` until shutdown, inside async-io's `block_on`.
pub(super) fn run(core: &Core, shared: &Shared) {
    let mut drive = Drive {
        nap: None,
        looking: None,
        alarm: Alarm {
            timer: async_io::Timer::never(),
            at: None,
        },
        probe: Probe::Unmade,
    };
    async_io::block_on(poll_fn(|cx| drive.poll(core, shared, cx)));
}

/// The state of the future a driving worker runs in.
struct Drive {
    /// The nap the worker is in, if any.
    nap: Option<Nap>,
    /// The phase the worker left to look at the reactor between tasks,
    /// while it looks.
    looking: Option<Phase>,
    alarm: Alarm,
    probe: Probe,
}

impl Drive {
    fn poll(&mut self, core: &Core, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(phase) = self.looking.take() {
            core.back_from_look(shared, phase);
        }
        loop {
            if let Some(nap) = self.nap.take() {
                let woken = shared
                    .idle
                    .nap_ended(core.id, &nap, core.reactor_work.get())
                    .or_else(|| self.probe.jump_clock(core, shared));
                match woken {
                    Some(woken) => core.wake_from_nap(shared, nap, woken),
                    None => {
                        self.alarm.arm(nap.wake_at(), cx);
                        self.nap = Some(nap);
                        return Poll::Pending;
                    }
                }
            }
            match core.run_loop(shared) {
                Pause::Shutdown => return Poll::Ready(()),
                Pause::LookAtIo => {
                    self.looking = Some(core.phase.replace(Phase::InReactor));
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Pause::Nap(nap) => {
                    // `block_on`'s waker is the same for the whole loop: register
                    // it once. Then go round: an unpark that came before the
                    // registration is seen by the check above.
                    if core.nap_waker.get().is_none() {
                        shared.idle.set_waker(core.id, cx.waker());
                        let _ = core.nap_waker.set(cx.waker().clone());
                    }
                    if shared.timers.clock().is_paused() {
                        self.probe.start(core, cx);
                    }
                    self.nap = Some(nap);
                }
            }
        }
    }
}

/// On a paused clock, how a napping worker makes sure the reactor has
/// delivered what was ready before it jumps the clock (module docs): a
/// UDP socket holding a datagram it sent itself, never read, so always
/// readable. A fresh wait for its readiness (async-io's `readable`, which
/// accepts only a round that began after the wait did) makes the
/// reactor's next round report it.
enum Probe {
    /// Not needed yet (the clock never was paused at a nap).
    Unmade,
    /// No socket could be made: jump as a worker that sleeps does.
    Unavailable,
    Made {
        socket: Arc<Async<UdpSocket>>,
        check: Check,
        /// Wakes `block_on`'s, first noting whether the round that
        /// reported the socket ran on this worker's thread.
        waker: Waker,
        on_this_thread: Arc<AtomicBool>,
    },
}

/// Where a napping worker's look before the jump is.
enum Check {
    /// Nothing to do in this nap (done, or given up).
    Off,
    /// The nap began: take the census first.
    Due,
    /// Everyone was idle when `Shared::wakings` read `since`; `done`
    /// rounds reported the socket since, and `round` waits for the next.
    Rounds {
        since: u64,
        done: u8,
        round: Pin<Box<ReadableOwned<UdpSocket>>>,
    },
}

impl Probe {
    /// Rounds to wait for before the clock may jump (module docs): the
    /// first began after everyone was idle, and the second only once the
    /// first had woken all its tasks. One round that ran on this worker's
    /// thread did both before `block_on` polls the worker again.
    const ROUNDS: u8 = 2;

    /// A nap on a paused clock begins: look before jumping.
    fn start(&mut self, core: &Core, cx: &Context<'_>) {
        if let Probe::Unmade = self {
            *self = match Probe::socket() {
                Ok(socket) => {
                    let on_this_thread = Arc::new(AtomicBool::new(false));
                    let waker = {
                        let on_this_thread = on_this_thread.clone();
                        let inner = cx.waker().clone();
                        let core = core as *const Core as usize;
                        waker_fn::waker_fn(move || {
                            if CURRENT_CORE.with(Cell::get) as usize == core {
                                on_this_thread.store(true, Relaxed);
                            }
                            inner.wake_by_ref();
                        })
                    };
                    Probe::Made {
                        socket: Arc::new(socket),
                        check: Check::Off,
                        waker,
                        on_this_thread,
                    }
                }
                Err(_) => Probe::Unavailable,
            };
        }
        if let Probe::Made { check, .. } = self {
            *check = Check::Due;
        }
    }

    fn socket() -> std::io::Result<Async<UdpSocket>> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.send_to(&[0], socket.local_addr()?)?;
        Async::new(socket)
    }

    /// Takes the census, waits for the rounds, then tries to jump the
    /// clock (`Shared::auto_advance_unless_woken`). `Some` if it jumped: the
    /// nap ends, with the tasks the timers woke in this worker's queue.
    fn jump_clock(&mut self, core: &Core, shared: &Shared) -> Option<Woken> {
        let since = match self {
            Probe::Unmade => return None,
            Probe::Unavailable => None,
            Probe::Made {
                socket,
                check,
                waker,
                on_this_thread,
            } => {
                let mut cx = Context::from_waker(waker);
                loop {
                    match check {
                        Check::Off => return None,
                        Check::Due => {
                            let since = shared.wakings();
                            if !shared.everyone_idle() {
                                // The last to go idle looks itself.
                                *check = Check::Off;
                                return None;
                            }
                            on_this_thread.store(false, Relaxed);
                            *check = Check::Rounds {
                                since,
                                done: 0,
                                round: Box::pin(socket.clone().readable_owned()),
                            };
                        }
                        Check::Rounds { since, done, round } => {
                            match round.as_mut().poll(&mut cx) {
                                Poll::Pending => return None,
                                Poll::Ready(Ok(())) if on_this_thread.swap(false, Relaxed) => {
                                    *done = Probe::ROUNDS;
                                }
                                Poll::Ready(Ok(())) => *done += 1,
                                // Cannot look: jump as without the reactor.
                                Poll::Ready(Err(_)) => *done = Probe::ROUNDS,
                            }
                            if *done >= Probe::ROUNDS {
                                let since = *since;
                                *check = Check::Off;
                                break Some(since);
                            }
                            *round = Box::pin(socket.clone().readable_owned());
                        }
                    }
                }
            }
        };
        // The tasks its timers wake go to our queue, as the reactor's do,
        // and the nap ends with them (a timer is not I/O: the worker's
        // role stays as it was).
        let io = core.io.get();
        let jumped = shared.auto_advance_unless_woken(since);
        core.io.set(io);
        match core.reactor_work.get() {
            ReactorWork::Queued => Some(Woken::WithWork),
            ReactorWork::None => jumped.then_some(Woken::TimedOut),
        }
    }
}

/// The async-io timer that ends a nap at its deadline (the next runtime
/// timer, or the watch's end). One per worker, re-armed only when a nap
/// needs an earlier deadline than the one set or the one set has passed:
/// arming a timer interrupts the reactor's wait (async-io notifies the
/// reactor of each new timer), so a watch re-arms it once an interval, not
/// once a nap. A deadline that no nap needs any more polls the worker once
/// for nothing.
struct Alarm {
    timer: async_io::Timer,
    /// The instant the timer is set for.
    at: Option<Instant>,
}

impl Alarm {
    /// Makes sure the worker is polled by `wake_at`.
    fn arm(&mut self, wake_at: Option<Instant>, cx: &mut Context<'_>) {
        let Some(wake_at) = wake_at else { return };
        if self
            .at
            .is_some_and(|at| at <= wake_at && Instant::now() < at)
        {
            return;
        }
        self.timer.set_at(wake_at);
        self.at = Some(wake_at);
        // Registers the timer with the reactor (a passed deadline is seen
        // by the nap's next check, which this wake-up brings).
        if Pin::new(&mut self.timer).poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
    }
}
