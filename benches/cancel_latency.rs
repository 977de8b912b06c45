//! `cancel_latency/<runtime>/<load>/<trigger>/<n>`: the time from a
//! cancel, or from a deadline, until a group of `n` busy tasks (1, 100,
//! 10,000) has ended, as a distribution: its median (p50) and 99th
//! percentile (p99) over many trials. The workloads are in
//! `src/latency.rs`, which says what each runtime does.
//!
//! - `load`: `ready`, each task loops on its runtime's always-ready
//!   primitive; `slice`, each works 10 µs, then yields.
//! - `trigger`: `cancel`, a cancel call on the waiting thread;
//!   `deadline`, a deadline set 1 ms ahead, which comes due while the
//!   tasks run.
//! - `runtime`: `cancel_scope` (a scope), `tokio` (`abort()` on every
//!   handle), `tokio_token` (a `CancellationToken` raced in `select!`).
//!
//! Trials of the three runtimes alternate, so that a change in the
//! machine's load touches them alike.
//!
//! Not a criterion benchmark (criterion reports means of batches, and the
//! tail is the point here): it prints a table and writes
//! `cancel_latency.json` beside criterion's results, for
//! `benches/report.py`. `cargo bench -p cancel-scope-bench --bench
//! cancel_latency` runs it, in about five minutes; a filter argument runs
//! only the cases whose id, followed by `/`, contains it (`--
//! slice/deadline`, `-- ready/cancel/1/`), and writes
//! no table; `--trials N` sets the trials of every case.
#![allow(missing_docs)]

use cancel_scope_bench::latency::{self, Load, Trigger};
use cancel_scope_bench::{cancel_scope_rt, criterion_dir, tokio_rt_timed};
use std::time::Duration;

const SIZES: [usize; 3] = [1, 100, 10_000];
const LOADS: [Load; 2] = [Load::Ready, Load::Slice];
const TRIGGERS: [Trigger; 2] = [Trigger::Cancel, Trigger::Deadline];
const RUNTIMES: [&str; 3] = ["cancel_scope", "tokio", "tokio_token"];

/// Trials per case: enough for a p99 of 200 samples where a trial is
/// quick; at 10,000 tasks a trial spawns and starts them all (tens of
/// milliseconds), so fewer.
fn default_trials(n: usize) -> usize {
    if n >= 10_000 {
        100
    } else {
        200
    }
}

/// The `q` quantile of `sorted` (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

fn main() {
    // `cargo bench` passes `--bench` and any filter.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trials_arg = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .map(|t| t.parse::<usize>().expect("--trials N"));
    let filter = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with('-') && (*i == 0 || args[i - 1] != "--trials"))
        .map(|(_, a)| a.clone());
    let ours = cancel_scope_rt();
    let tokio = tokio_rt_timed();
    println!(
        "cancel_latency ({} workers; p50 / p99; a peer's ratio is its time over ours)",
        cancel_scope_bench::WORKERS
    );
    let mut json = Vec::new();
    for load in LOADS {
        for trigger in TRIGGERS {
            for n in SIZES {
                let case = format!("{}/{}/{n}", load.name(), trigger.name());
                let ids: Vec<String> = RUNTIMES
                    .iter()
                    .map(|rt| format!("cancel_latency/{rt}/{case}"))
                    .collect();
                if let Some(f) = &filter {
                    // Against `<id>/`, so that `ready/cancel/1/` names one
                    // case.
                    if !ids.iter().any(|id| format!("{id}/").contains(f.as_str())) {
                        continue;
                    }
                }
                let trials = trials_arg.unwrap_or(default_trials(n));
                let mut samples: [Vec<Duration>; 3] = Default::default();
                for _ in 0..trials {
                    samples[0].push(latency::cancel_scope(&ours, load, trigger, n));
                    samples[1].push(latency::tokio_abort(&tokio, load, trigger, n));
                    samples[2].push(latency::tokio_token(&tokio, load, trigger, n));
                }
                let mut stats = Vec::new();
                for (rt, mut s) in RUNTIMES.iter().zip(samples) {
                    s.sort();
                    stats.push((*rt, quantile(&s, 0.5), quantile(&s, 0.99)));
                }
                let (p50, p99) = (stats[0].1, stats[0].2);
                let mut line = format!(
                    "{case:<22} {:<10} {:>10} / {:>10}",
                    "ours",
                    fmt(p50),
                    fmt(p99)
                );
                for (rt, q50, q99) in &stats[1..] {
                    line += &format!(
                        " | {rt} {} / {} ({:.1}x / {:.1}x)",
                        fmt(*q50),
                        fmt(*q99),
                        q50.as_secs_f64() / p50.as_secs_f64(),
                        q99.as_secs_f64() / p99.as_secs_f64()
                    );
                }
                println!("{line}");
                for (rt, q50, q99) in stats {
                    json.push(format!(
                        "{{\"runtime\": \"{rt}\", \"load\": \"{}\", \"trigger\": \"{}\", \
                         \"tasks\": {n}, \"trials\": {trials}, \"p50_ns\": {}, \"p99_ns\": {}}}",
                        load.name(),
                        trigger.name(),
                        q50.as_nanos(),
                        q99.as_nanos()
                    ));
                }
            }
        }
    }
    if filter.is_some() {
        // A partial run leaves the table of a full one as it was.
        return;
    }
    let json = format!(
        "{{\"warm_ms\": {}, \"slice_us\": {}, \"deadline_ahead_ms\": {}, \"cases\": [\n{}\n]}}\n",
        latency::WARM.as_millis(),
        latency::SLICE.as_micros(),
        latency::DEADLINE_AHEAD.as_millis(),
        json.join(",\n")
    );
    let dir = criterion_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join("cancel_latency.json");
        if std::fs::write(&path, json).is_ok() {
            println!("written: {}", path.display());
        }
    }
}
