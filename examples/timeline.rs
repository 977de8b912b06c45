//! The timeline of a run: recording what scopes, tasks and workers did, and
//! drawing it.
//!
//! The program serves one search request the structured way:
//!
//! - `connect` is a Happy Eyeballs race (RFC 8305, simplified): three
//!   connection attempts start 5ms apart, each in a scope of its own, and
//!   the first to connect wins (`race_ok`): the race's scope is cancelled,
//!   and with it the attempts still trying (the first address never
//!   answers);
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

use cancel_scope::move_on_after;
use cancel_scope::runtime::Builder;
use cancel_scope::time::sleep;
use cancel_scope::{race_ok, scope, shielded_scope};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A simulated connection attempt: it connects after `connect_ms`, or
/// never (`None`: a black-holed address).
async fn connect(addr: &str, connect_ms: Option<u64>) -> String {
    match connect_ms {
        Some(ms) => sleep(Duration::from_millis(ms)).await,
        None => std::future::pending().await,
    }
    format!("connected to {addr}")
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

            // Happy Eyeballs: staggered attempts, the first to connect wins,
            // the race cancels the others.
            let addresses = [
                ("2001:db8::1", None),
                ("192.0.2.7", Some(9)),
                ("2001:db8::2", Some(3)),
            ];
            let attempts =
                addresses
                    .into_iter()
                    .enumerate()
                    .map(|(i, (addr, connect_ms))| async move {
                        sleep(Duration::from_millis(5 * i as u64)).await;
                        scope(move |_| connect(addr, connect_ms))
                            .named(format!("attempt {addr}"))
                            .await
                    });
            let connection = race_ok(attempts).await;
            println!("connect: {connection:?}");

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
