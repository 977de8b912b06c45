//! A task woken by a task that then computes without yielding must not
//! wait for that computation: it sits in the busy worker's LIFO slot, and
//! an idle worker must take it from there.
//!
//! Each case wakes a parked task (with an `Event`, or a channel send) from
//! a task that then spins for [`SPIN`] on the same worker, and records
//! how long the woken task took to start. Without a way out of the slot
//! it starts only when the spin ends; the runtime's promise is that an
//! idle worker takes it within [`LIMIT`]. The bound is checked on the best
//! of three rounds, so one unlucky scheduling delay on a loaded machine
//! does not fail the test, while a task stuck for the whole spin always
//! does.

use crate::support::{first_pending, hang_guard, runtime, Clock};
use cancel_scope::runtime::Runtime;
use cancel_scope::scope;
use cancel_scope::sync::Event;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the waking task computes after the wake.
const SPIN: Duration = Duration::from_millis(200);

/// How soon the woken task must start.
const LIMIT: Duration = Duration::from_millis(10);

/// Rounds per case; the best one is held to [`LIMIT`].
const ROUNDS: usize = 3;

/// Computes without yielding for `d`.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// How the waking task wakes the parked one.
#[derive(Clone, Copy, Debug)]
enum Wake {
    Event,
    Channel,
}

/// One round: the delay between the wake and the woken task's start.
fn woken_start_delay(rt: &Runtime, how: Wake) -> Duration {
    rt.block_on(scope(|s| async move {
        let (parked_tx, parked_rx) = mpsc::channel();
        let event = Event::new();
        let (tx, rx) = async_channel::bounded::<()>(1);
        let waiter = {
            let event = event.clone();
            s.spawn(first_pending(
                async move {
                    match how {
                        Wake::Event => event.wait().await,
                        Wake::Channel => rx.recv().await.expect("a message"),
                    }
                    Instant::now()
                },
                parked_tx,
            ))
        };
        parked_rx.recv().expect("the waiter parks");
        let waker = s.spawn(async move {
            let woke_at = Instant::now();
            match how {
                Wake::Event => event.set(),
                Wake::Channel => tx.send(()).await.expect("the waiter listens"),
            }
            spin(SPIN);
            woke_at
        });
        let started = waiter.await.expect("the waiter ends");
        let woke_at = waker.await.expect("the waker ends");
        started.saturating_duration_since(woke_at)
    }))
    .expect("the scope is not cancelled")
}

/// The cases run one at a time: three 200 ms spins at once on a 2-core
/// machine would measure the machine, not the runtime.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(workers: usize, how: Wake) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, workers);
    let delays: Vec<Duration> = (0..ROUNDS).map(|_| woken_start_delay(&rt, how)).collect();
    let best = *delays.iter().min().expect("rounds ran");
    assert!(
        best <= LIMIT,
        "{workers} workers, woken by {how:?}: started after {delays:?}, not within {LIMIT:?}"
    );
    assert!(
        delays.iter().all(|d| *d < SPIN / 2),
        "{workers} workers, woken by {how:?}: a round waited for the spin: {delays:?}"
    );
}

#[test]
fn a_task_woken_by_an_event_starts_while_its_waker_computes() {
    check(2, Wake::Event);
}

#[test]
fn a_task_woken_by_a_channel_send_starts_while_its_sender_computes() {
    check(2, Wake::Channel);
}

#[test]
fn the_same_with_four_workers() {
    check(4, Wake::Event);
    check(4, Wake::Channel);
}
