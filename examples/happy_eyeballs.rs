//! Happy Eyeballs (RFC 8305): racing connection attempts with staggered
//! starts.
//!
//! A host has several addresses (IPv6 and IPv4, interleaved). Trying them
//! one at a time is slow when an address is a black hole; trying all at
//! once floods the network. RFC 8305 staggers them:
//!
//! - start attempt 1;
//! - if an attempt has neither succeeded nor failed within 250ms of its
//!   start, start the next one (the earlier one keeps going);
//! - if an attempt fails, start the next one at once;
//! - the first attempt to succeed wins, and every other one is cancelled.
//!
//! `race_ok` provides the last rule: each attempt is an entrant, the first
//! `Ok` wins and the other entrants are cancelled, and if all fail the
//! caller gets every error, in the order of the addresses. The staggering
//! is a chain of `Event`s: entrant `i` waits until entrant `i - 1` has
//! started, then until it fails or 250ms pass (`time::timeout`), whichever
//! comes first.
//!
//! Connection attempts are simulated with sleeps; the runtime runs on a
//! paused clock, so the program finishes at once and the timeline it
//! prints is exact and the same on every run.
//!
//! Run with `cargo run --example happy_eyeballs`.

use cancel_scope::runtime::Builder;
use cancel_scope::sync::Event;
use cancel_scope::time::{self, sleep, timeout};
use cancel_scope::{race_ok, scope};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// RFC 8305's recommended "Connection Attempt Delay".
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// How a simulated connection attempt to one address goes.
#[derive(Clone, Copy)]
enum Outcome {
    /// The handshake completes after this long.
    Connects(Duration),
    /// The attempt is refused after this long.
    Refused(Duration),
    /// No answer, ever (a black-holed address).
    Silent,
}

/// A simulated TCP connect.
async fn connect(addr: &str, outcome: Outcome) -> Result<String, String> {
    match outcome {
        Outcome::Connects(after) => {
            sleep(after).await;
            Ok(format!("connection to {addr}"))
        }
        Outcome::Refused(after) => {
            sleep(after).await;
            Err("connection refused".to_string())
        }
        Outcome::Silent => {
            sleep(Duration::from_secs(75)).await; // a typical OS connect timeout
            Err("timed out".to_string())
        }
    }
}

/// The virtual time since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", (time::now() - t0).as_millis())
}

/// Prints what became of an attempt that was cancelled by the winner.
struct Attempt {
    n: usize,
    addr: &'static str,
    t0: Instant,
    started: bool,
    over: bool,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.over {
            return;
        }
        let what = if self.started {
            "cancelled: another attempt won"
        } else {
            "never started"
        };
        println!("{} #{} {:<18} {what}", at(self.t0), self.n, self.addr);
    }
}

type Entrant = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// One entrant of the race: waits for its turn, then tries `addr`.
fn attempt(
    n: usize,
    addr: &'static str,
    outcome: Outcome,
    t0: Instant,
    prev: Option<(Event, Event)>,
    started: Event,
    failed: Event,
) -> Entrant {
    Box::pin(async move {
        let mut me = Attempt {
            n,
            addr,
            t0,
            started: false,
            over: false,
        };
        if let Some((prev_started, prev_failed)) = prev {
            prev_started.wait().await;
            // The previous attempt fails, or gets 250ms: then it is our turn.
            let _ = timeout(ATTEMPT_DELAY, prev_failed.wait()).await;
        }
        me.started = true;
        started.set();
        println!("{} #{n} {addr:<18} connecting", at(t0));
        let result = connect(addr, outcome).await;
        me.over = true;
        match &result {
            Ok(_) => println!("{} #{n} {addr:<18} connected", at(t0)),
            Err(e) => {
                println!("{} #{n} {addr:<18} failed: {e}", at(t0));
                failed.set();
            }
        }
        result
    })
}

/// Connects to the first address that answers, RFC 8305 style.
async fn happy_eyeballs(addrs: &[(&'static str, Outcome)]) -> Result<String, Vec<String>> {
    let t0 = time::now();
    let mut entrants = Vec::new();
    let mut prev: Option<(Event, Event)> = None;
    for (i, &(addr, outcome)) in addrs.iter().enumerate() {
        let (started, failed) = (Event::new(), Event::new());
        entrants.push(attempt(
            i + 1,
            addr,
            outcome,
            t0,
            prev.take(),
            started.clone(),
            failed.clone(),
        ));
        prev = Some((started, failed));
    }
    race_ok(entrants)
        .await
        .expect("nothing outside cancels the race")
}

async fn demo() {
    use Outcome::*;
    let ms = Duration::from_millis;

    println!("Race 1: a refusal, a black hole, a slow address and a fast one");
    let addrs = [
        ("[2001:db8::10]:443", Refused(ms(80))),
        ("192.0.2.10:443", Silent),
        ("[2001:db8::11]:443", Connects(ms(400))),
        ("192.0.2.11:443", Connects(ms(120))),
        ("[2001:db8::12]:443", Connects(ms(10))),
    ];
    match happy_eyeballs(&addrs).await {
        Ok(conn) => println!("=> using the {conn}\n"),
        Err(errors) => println!("=> every attempt failed: {errors:?}\n"),
    }

    println!("Race 2: every address fails");
    let addrs = [
        ("[2001:db8::20]:443", Refused(ms(30))),
        ("192.0.2.20:443", Refused(ms(500))),
        ("[2001:db8::21]:443", Refused(ms(40))),
    ];
    match happy_eyeballs(&addrs).await {
        Ok(conn) => println!("=> using the {conn}"),
        Err(errors) => {
            println!("=> every attempt failed (errors come in address order):");
            for ((addr, _), e) in addrs.iter().zip(errors) {
                println!("   {addr}: {e}");
            }
        }
    }
}

fn main() {
    // A paused clock; one worker keeps the printed order of events that
    // happen at the same instant the same on every run.
    let rt = Builder::new()
        .start_paused(true)
        .worker_threads(1)
        .build()
        .expect("start the runtime");
    // The demo runs as a task of the runtime; `block_on` waits for it.
    rt.block_on(scope(|s| async move { s.spawn(demo()).await }))
        .expect("the demo's scope is not cancelled")
        .expect("the demo task is not cancelled");
}
