//! Runs one workload of the benchmarks once, for one runtime, so that
//! callgrind can count its instructions; or several times, for its time.
//!
//! ```text
//! count <runtime> <workload> <size> [--time REPS]
//! ```
//!
//! - `runtime`: `cancel_scope`, `tokio`, `tokio_token`, `smol`, `limit`,
//!   `tokio_idiomatic`, `tokio_token_idiomatic`, `smol_idiomatic` (each
//!   workload has a subset: those of its criterion group);
//!   `cancel_scope_scoped` for `spawn_join` through a borrowing call.
//! - `workload`: `cancel_flat`, `cancel_tree`, `cancel_linked`,
//!   `scope_empty_cancel`, `scope_empty_create_end`,
//!   `scope_empty_create_cancel_end`, `spawn_join`, `pingpong`,
//!   `yield_many`, `limit`.
//! - `size`: tasks, scopes, linked scopes or rounds; `<fanout>x<depth>`
//!   for `cancel_tree`.
//!
//! Without `--time` it runs the workload once to warm up, then once more
//! with the measured window open to callgrind; run it as
//! `valgrind --tool=callgrind --instr-atstart=no count ...`, so that only
//! the window (on every thread) is counted. It prints `units N`: the
//! tasks, groups, scopes or rounds the window handled. The difference
//! between two sizes, divided by the difference in units, is the count per
//! unit, free of fixed costs (`benches/count.py` does this).
//!
//! With `--time REPS` it runs the workload once to warm up, then `REPS`
//! times, and prints the median time per unit in nanoseconds.

use cancel_scope_bench::cancel::*;
use cancel_scope_bench::limit::{limit_cancel_scope, limit_smol, limit_tokio};
use cancel_scope_bench::schedule::*;
use cancel_scope_bench::{cancel_scope_rt, cancel_scope_rt_for_counting, tokio_rt, window, Smol};
use std::process::ExitCode;
use std::time::Duration;

/// One iteration of a workload, and the units it handles.
struct Workload {
    run: Box<dyn Fn() -> Duration>,
    units: usize,
}

fn workload(runtime: &str, name: &str, size: &str, counting: bool) -> Result<Workload, String> {
    let count = || {
        size.parse::<usize>()
            .map_err(|_| format!("size {size:?}: not a count"))
    };
    macro_rules! ours {
        ($f:expr) => {{
            let rt = if counting {
                cancel_scope_rt_for_counting()
            } else {
                cancel_scope_rt()
            };
            Box::new(move || $f(&rt)) as Box<dyn Fn() -> Duration>
        }};
    }
    macro_rules! tokio {
        ($f:expr) => {{
            let rt = tokio_rt();
            Box::new(move || $f(&rt)) as Box<dyn Fn() -> Duration>
        }};
    }
    macro_rules! smol {
        ($f:expr) => {{
            let smol = Smol::new();
            Box::new(move || $f(&smol)) as Box<dyn Fn() -> Duration>
        }};
    }
    let unknown = || Err(format!("no runtime {runtime:?} in workload {name:?}"));
    let (run, units) = match name {
        "cancel_flat" => {
            let n = count()?;
            let run = match runtime {
                "cancel_scope" => ours!(|rt| flat_cancel_scope(rt, n)),
                "tokio" => tokio!(|rt| flat_tokio(rt, n)),
                "tokio_token" => tokio!(|rt| flat_tokio_token(rt, n)),
                "smol" => smol!(|s| flat_smol(s, n)),
                "limit" => Box::new(move || flat_limit(n)) as Box<dyn Fn() -> Duration>,
                "tokio_idiomatic" => tokio!(|rt| flat_tokio_idiomatic(rt, n)),
                "tokio_token_idiomatic" => tokio!(|rt| flat_tokio_token_idiomatic(rt, n)),
                _ => return unknown(),
            };
            (run, n)
        }
        "cancel_tree" => {
            let shape = Shape::parse(size).ok_or(format!("size {size:?}: not FANOUTxDEPTH"))?;
            let run = match runtime {
                "cancel_scope" => ours!(|rt| tree_cancel_scope(rt, shape)),
                "tokio" => tokio!(|rt| tree_tokio(rt, shape)),
                "tokio_token" => tokio!(|rt| tree_tokio_token(rt, shape)),
                "smol" => smol!(|s| tree_smol(s, shape)),
                _ => return unknown(),
            };
            (run, shape.groups())
        }
        "cancel_linked" => {
            let n = count()?;
            let run = match runtime {
                "cancel_scope" => ours!(|rt| linked_cancel_scope(rt, n)),
                _ => return unknown(),
            };
            (run, n)
        }
        "scope_empty_cancel" | "scope_empty_create_end" | "scope_empty_create_cancel_end" => {
            let k = count()?;
            let what = name.trim_start_matches("scope_empty_");
            let run = match (runtime, what) {
                ("cancel_scope", "cancel") => ours!(|rt| empty_cancel_cancel_scope(rt, k)),
                ("cancel_scope", "create_end") => {
                    ours!(|rt| empty_create_end_cancel_scope(rt, k))
                }
                ("cancel_scope", _) => ours!(|rt| empty_create_cancel_end_cancel_scope(rt, k)),
                ("tokio_token", "cancel") => Box::new(move || empty_cancel_tokio_token(k)) as _,
                ("tokio_token", "create_end") => {
                    Box::new(move || empty_create_end_tokio_token(k)) as _
                }
                ("tokio_token", _) => Box::new(move || empty_create_cancel_end_tokio_token(k)) as _,
                _ => return unknown(),
            };
            (run, k)
        }
        "spawn_join" => {
            let n = count()?;
            let run = match runtime {
                "cancel_scope" => ours!(|rt| spawn_join_cancel_scope(rt, n)),
                "cancel_scope_scoped" => ours!(|rt| spawn_join_cancel_scope_scoped(rt, n)),
                "tokio" => tokio!(|rt| spawn_join_tokio(rt, n)),
                "smol" => smol!(|s| spawn_join_smol(s, n)),
                "tokio_idiomatic" => tokio!(|rt| spawn_join_tokio_idiomatic(rt, n)),
                "smol_idiomatic" => smol!(|s| spawn_join_smol_idiomatic(s, n)),
                _ => return unknown(),
            };
            (run, n)
        }
        "limit" => {
            let n = count()?;
            let run = match runtime {
                "cancel_scope" => ours!(|rt| limit_cancel_scope(rt, n)),
                "tokio" => tokio!(|rt| limit_tokio(rt, n)),
                "smol" => smol!(|s| limit_smol(s, n)),
                _ => return unknown(),
            };
            (run, n)
        }
        "pingpong" | "yield_many" => {
            let n = count()?;
            let ping = name == "pingpong";
            let run = match (runtime, ping) {
                ("cancel_scope", true) => ours!(|rt| pingpong_cancel_scope(rt, n)),
                ("cancel_scope", false) => ours!(|rt| yield_cancel_scope(rt, n)),
                ("tokio", true) => tokio!(|rt| pingpong_tokio(rt, n)),
                ("tokio", false) => tokio!(|rt| yield_tokio(rt, n)),
                ("smol", true) => smol!(|s| pingpong_smol(s, n)),
                ("smol", false) => smol!(|s| yield_smol(s, n)),
                _ => return unknown(),
            };
            (run, n)
        }
        other => return Err(format!("no workload {other:?}")),
    };
    Ok(Workload { run, units })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (runtime, name, size) = match &args[..] {
        [r, w, s, ..] => (r.as_str(), w.as_str(), s.as_str()),
        _ => {
            eprintln!("usage: count <runtime> <workload> <size> [--time REPS]");
            return ExitCode::from(2);
        }
    };
    let reps = match &args[3..] {
        [] => None,
        [flag, n] if flag == "--time" => match n.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                eprintln!("--time wants a positive count");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: count <runtime> <workload> <size> [--time REPS]");
            return ExitCode::from(2);
        }
    };
    let w = match workload(runtime, name, size, reps.is_none()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Warm-up: first-use costs (thread-locals, allocator arenas, the
    // runtime's buffers) stay out of the measurement.
    (w.run)();
    match reps {
        None => {
            window::set_counting(true);
            (w.run)();
            window::set_counting(false);
            println!("units {}", w.units);
        }
        Some(reps) => {
            let mut ns: Vec<f64> = (0..reps)
                .map(|_| (w.run)().as_nanos() as f64 / w.units as f64)
                .collect();
            ns.sort_by(f64::total_cmp);
            println!("ns_per_unit {:.2}", ns[ns.len() / 2]);
        }
    }
    // Skip tearing down whatever a runtime still holds: the figure is out.
    std::process::exit(0)
}
