//! Fan-out: 1,000 requests with a timeout each and a deadline for all,
//! keeping the results that finished.
//!
//! - Each request is a task; `time::timeout` bounds it on its own
//!   (`Err(Elapsed)` after `PER_REQUEST`).
//! - All of them run in an inner scope with a deadline (`move_on_after`):
//!   when it passes, every request still in flight is cancelled.
//! - The results are read with a `JoinSet`, in the order the requests
//!   complete. The set, and the tally the reading loop fills, live
//!   *outside* the inner scope: the deadline drops the loop, not what it
//!   collected, and results that completed before the deadline but were
//!   not read yet are still in the set afterwards. Reading the set after
//!   the deadline gives them, then one `Err(Cancelled)` per request the
//!   deadline stopped.
//!
//! The reading loop spends a while on each result and falls behind, so
//! some results wait unread in the set when the deadline passes.
//!
//! The requests are simulated (a sleep of a made-up latency, started at a
//! steady pace of 5 per millisecond), on a paused clock: the program runs
//! at once and prints the same numbers on every run.
//!
//! Run with `cargo run --example fan_out`.

use cancel_scope::move_on_after;
use cancel_scope::runtime::Builder;
use cancel_scope::time::{self, sleep, timeout, Elapsed};
use cancel_scope::{Cancelled, JoinSet};
use std::time::Duration;

/// Requests sent.
const REQUESTS: u64 = 1_000;
/// Each request's own timeout.
const PER_REQUEST: Duration = Duration::from_millis(100);
/// The deadline for the whole fan-out (half a millisecond off the
/// millisecond grid of the requests, so that nothing ends at the same
/// instant as the deadline).
const DEADLINE: Duration = Duration::from_micros(250_500);

/// How long the reading loop works on each result: long enough that it
/// falls behind, so that some results wait in the set at the deadline.
const PROCESSING: Duration = Duration::from_micros(300);

/// A request's made-up latency: 1 to 130ms, spread by a hash.
fn latency(i: u64) -> Duration {
    let mut x = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Duration::from_millis(1 + (x ^ (x >> 31)) % 130)
}

/// Request `i`: sent at its turn (5 per millisecond), answered after its
/// latency, or given up after `PER_REQUEST`.
async fn request(i: u64) -> (u64, Result<Duration, Elapsed>) {
    sleep(Duration::from_micros(200 * i)).await;
    let answer = timeout(PER_REQUEST, async {
        sleep(latency(i)).await;
        latency(i)
    })
    .await;
    (i, answer)
}

/// What became of the requests read so far.
#[derive(Default, Debug)]
struct Tally {
    answered: usize,
    timed_out: usize,
    cancelled: usize,
    /// The first few answers, in the order they came.
    first: Vec<(u64, Duration)>,
}

impl Tally {
    fn record(&mut self, result: Result<(u64, Result<Duration, Elapsed>), Cancelled>) {
        match result {
            Ok((i, Ok(latency))) => {
                self.answered += 1;
                if self.first.len() < 5 {
                    self.first.push((i, latency));
                }
            }
            Ok((_, Err(_elapsed))) => self.timed_out += 1,
            Err(_cancelled) => self.cancelled += 1,
        }
    }
}

fn main() {
    let rt = Builder::new()
        .start_paused(true)
        .build()
        .expect("start the runtime");
    rt.block_on(async {
        let t0 = time::now();
        println!(
            "{REQUESTS} requests, {PER_REQUEST:?} timeout each, {DEADLINE:?} for all of them"
        );
        let mut set = JoinSet::new();
        let mut before = Tally::default();
        let out = move_on_after(DEADLINE, |s| {
            let (set, before) = (&mut set, &mut before);
            async move {
                for i in 0..REQUESTS {
                    set.spawn_in(&s, request(i));
                }
                while let Some(result) = set.join_next().await {
                    before.record(result);
                    sleep(PROCESSING).await; // the reader falls behind
                }
            }
        })
        .await;
        match out {
            Ok(()) => println!("every request ended before the deadline"),
            Err(cancelled) => println!(
                "at {:?}: {cancelled}; {} requests still in the set",
                time::now() - t0,
                set.len()
            ),
        }
        println!(
            "read by the loop, in completion order: {} answers, {} timed out; the first answers: {:?}",
            before.answered, before.timed_out, before.first
        );

        let mut after = Tally::default();
        while let Some(result) = set.join_next().await {
            after.record(result);
        }
        println!(
            "read from the set after the deadline: {} answers, {} timed out, {} cancelled by the deadline",
            after.answered, after.timed_out, after.cancelled
        );
        let answered = before.answered + after.answered;
        let timed_out = before.timed_out + after.timed_out;
        assert_eq!(
            answered + timed_out + after.cancelled,
            REQUESTS as usize,
            "every request is accounted for"
        );
        println!(
            "kept {answered} answers of {REQUESTS}; {timed_out} timed out, {} cut by the deadline",
            after.cancelled
        );
    });
}
