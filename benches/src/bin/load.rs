//! The `io` group's load generator: the same client for every server
//! (`src/echo.rs` has the protocol), in a process of its own.
//!
//! ```text
//! load <address> <connections> <size> <warm-up secs> <measured secs> [hold-every]
//! ```
//!
//! Each connection sends a message, waits for its whole reply, and sends
//! the next; with `hold-every` k > 0, every k-th message asks the server
//! to hold it past its deadline. After the warm-up it counts round trips
//! and their latencies for the measured time, then prints one JSON line:
//! round trips per second and the median and 99th-percentile latency in
//! the measured window, and round trips over the whole run (to divide the
//! server's CPU time by).
//!
//! The client runs on one thread (tokio's current-thread scheduler), so
//! that `benches/io.py` can pin it to one core and the server to the
//! other.

use cancel_scope_bench::echo::{HOLD, SERVE};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the connections share (one thread: no locks).
#[derive(Default)]
struct Tally {
    /// Round trips since the start.
    total: Cell<u64>,
    /// Set once the warm-up is over; latencies are kept from then.
    measuring: Cell<bool>,
    /// Set when the measured time is over.
    done: Cell<bool>,
    /// Latencies in the measured window, in nanoseconds.
    latencies: RefCell<Vec<u64>>,
}

async fn connection(addr: SocketAddr, size: usize, hold_every: u64, tally: Rc<Tally>) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    let mut message = vec![SERVE; size];
    let mut reply = vec![0u8; size];
    let mut sent: u64 = 0;
    while !tally.done.get() {
        sent += 1;
        message[0] = match hold_every > 0 && sent.is_multiple_of(hold_every) {
            true => HOLD,
            false => SERVE,
        };
        let start = Instant::now();
        stream.write_all(&message).await.expect("send a request");
        stream.read_exact(&mut reply).await.expect("read a reply");
        let took = start.elapsed();
        tally.total.set(tally.total.get() + 1);
        if tally.measuring.get() && !tally.done.get() {
            tally.latencies.borrow_mut().push(took.as_nanos() as u64);
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: load <address> <connections> <size> <warm-up secs> <measured secs> [hold-every]";
    let parsed = (|| {
        let addr: SocketAddr = args.first()?.parse().ok()?;
        let connections: usize = args.get(1)?.parse().ok()?;
        let size: usize = args.get(2)?.parse().ok()?;
        let warm_up: f64 = args.get(3)?.parse().ok()?;
        let measured: f64 = args.get(4)?.parse().ok()?;
        let hold_every: u64 = match args.get(5) {
            Some(k) => k.parse().ok()?,
            None => 0,
        };
        Some((addr, connections, size, warm_up, measured, hold_every))
    })();
    let Some((addr, connections, size, warm_up, measured, hold_every)) = parsed else {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start the client's runtime");
    let tally = Rc::new(Tally::default());
    let local = tokio::task::LocalSet::new();
    let (window, in_window) = local.block_on(&rt, {
        let tally = tally.clone();
        async move {
            let tasks: Vec<_> = (0..connections)
                .map(|_| {
                    tokio::task::spawn_local(connection(addr, size, hold_every, tally.clone()))
                })
                .collect();
            tokio::time::sleep(Duration::from_secs_f64(warm_up)).await;
            tally.measuring.set(true);
            let start = Instant::now();
            let before = tally.total.get();
            tokio::time::sleep(Duration::from_secs_f64(measured)).await;
            let in_window = tally.total.get() - before;
            let window = start.elapsed();
            tally.done.set(true);
            for task in tasks {
                let _ = task.await;
            }
            (window, in_window)
        }
    });
    let mut latencies = tally.latencies.take();
    latencies.sort_unstable();
    println!(
        "{{\"round_trips_per_s\": {:.1}, \"p50_us\": {:.2}, \"p99_us\": {:.2}, \"round_trips_total\": {}}}",
        in_window as f64 / window.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        tally.total.get(),
    );
    ExitCode::SUCCESS
}
