//! The timeline of a run: recording what scopes, tasks and workers did, and
//! drawing it.
//!
//! The program serves one search request the structured way:
//!
//! - three replicas are asked at once, each in a scope of its own, in a
//!   race (`race_ok`): the first answer wins and the race's scope is
//!   cancelled, and with it the two slower replicas;
//! - `ranking` scores the results on two tasks that share the workers;
//! - `report` is given 15ms (`move_on_after`) and needs more: its deadline
//!   cancels it;
//! - `audit log` is shielded: it is written in full even though the request
//!   is cancelled around it once the answer is out.
//!
//! The runtime is built with `record`, and the run's [`Trace`] is written
//! twice: as a Chrome trace (open `timeline.json` in ui.perfetto.dev or
//! `chrome://tracing`: a track per worker, scopes as nested slices, arrows
//! from each cancel to the scopes it reached) and as an SVG (open
//! `timeline.svg` in a browser). The picture in `examples/timeline.svg` is
//! one such run.
//!
//! Run it with `cargo run --example timeline`; give a directory to write
//! to as an argument (the default is `target/timeline`).
//!
//! [`Trace`]: cancel_scope::trace::Trace

use cancel_scope::runtime::Builder;
use cancel_scope::time::{move_on_after, sleep};
use cancel_scope::{race_ok, scope, shielded_scope};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A replica answers after its latency.
async fn ask_replica(latency_ms: u64) -> String {
    sleep(Duration::from_millis(latency_ms)).await;
    format!("answer from the {latency_ms}ms replica")
}

/// Work that keeps a worker busy for about `ms`, a slice at a time.
async fn crunch(ms: u64) -> u64 {
    let until = Instant::now() + Duration::from_millis(ms);
    let mut rounds = 0;
    while Instant::now() < until {
        let slice = Instant::now() + Duration::from_micros(300);
        while Instant::now() < slice {
            std::hint::spin_loop();
        }
        rounds += 1;
        futures_lite::future::yield_now().await;
    }
    rounds
}

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/timeline"), PathBuf::from);
    let rt = Builder::new()
        .worker_threads(2)
        .record(100_000)
        .build()
        .expect("a runtime");

    let answer = rt.block_on(
        scope(|request| async move {
            // The audit log is written whatever happens to the request.
            request.spawn(
                shielded_scope(|_| async {
                    sleep(Duration::from_millis(40)).await;
                    println!("audit log written");
                })
                .named("audit log"),
            );

            // The first replica to answer wins; the race cancels the others.
            let answer = race_ok([4, 9, 14].map(|latency| {
                scope(move |_| ask_replica(latency)).named(format!("replica {latency}ms"))
            }))
            .await;
            println!("replicas: {answer:?}");

            let ranked = scope(|ranking| async move {
                let a = ranking.spawn(crunch(6));
                let b = ranking.spawn(crunch(6));
                a.await.unwrap_or(0) + b.await.unwrap_or(0)
            })
            .named("ranking")
            .await;
            println!("ranking: {ranked:?} slices");

            let report = move_on_after(Duration::from_millis(15), |_| async {
                sleep(Duration::from_millis(40)).await;
                "report sent"
            })
            .named("report")
            .await;
            println!("report: {report:?}");

            // The answer is out: stop everything else, the audit log
            // aside. The body ends here; the scope waits for the shield.
            request.cancel();
        })
        .named("request"),
    );
    println!("request: {answer:?}");

    let trace = rt.take_trace();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("timeline.json"), trace.to_chrome_json())?;
    std::fs::write(out.join("timeline.svg"), trace.to_svg())?;
    println!(
        "{} events ({} not kept) written to {}",
        trace.events().len(),
        trace.dropped(),
        out.join("timeline.{json,svg}").display()
    );
    Ok(())
}
