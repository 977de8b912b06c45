//! The `io` group's echo server (`src/echo.rs`), one runtime per process.
//!
//! ```text
//! echo <runtime> <threads> <size> [echo|deadline]
//! ```
//!
//! `runtime`: `cancel_scope`, `cancel_scope_thread`, `tokio`, `smol`. It
//! prints `listening <address>`, serves until its standard input closes,
//! then exits. `benches/io.py` runs it beside the load generator.

use cancel_scope_bench::echo::{self, Config, Workload};
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: echo <runtime> <threads> <size> [echo|deadline]";
    let (Some(runtime), Some(threads), Some(size)) = (args.first(), args.get(1), args.get(2))
    else {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    };
    let (Ok(threads), Ok(size)) = (threads.parse(), size.parse()) else {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    };
    let workload = match args.get(3).map(String::as_str) {
        None | Some("echo") => Workload::Echo,
        Some("deadline") => Workload::Deadline,
        Some(other) => {
            eprintln!("unknown workload {other:?}; {usage}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config {
        threads,
        size,
        workload,
    };
    let listener = match echo::bind() {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bind: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("a bound address");
    let _running = match echo::start(runtime, listener, config) {
        Ok(running) => running,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", echo::announce(addr));
    let _ = std::io::stdout().flush();
    // Serve until the driver closes our standard input.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0);
}
