//! cancel-scope measured against tokio (with tokio-util's
//! `CancellationToken`) and smol (`async-executor`): the workloads that the
//! criterion benchmarks time (`cancel.rs`, `schedule.rs` at the package's
//! root), that the memory table measures (`memory.rs`) and that the
//! `count` driver repeats under callgrind (`src/bin/count.rs`); and the
//! `io` group's echo servers (`echo.rs`, run by `src/bin/echo.rs` against
//! the load generator `src/bin/load.rs`).
//!
//! One workload is one function per runtime, returning the measured time
//! of one iteration; the same function serves all three uses, so what is
//! counted is what is timed. BENCHMARKS.md, at the repository's root,
//! says what each one times for each runtime.

pub mod cancel;
pub mod echo;
pub mod latch;
pub mod latency;
pub mod limit;
pub mod parked;
pub mod runtimes;
pub mod schedule;
pub mod window;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

pub use parked::parked_task;
pub use runtimes::{
    cancel_scope_rt, cancel_scope_rt_for_counting, tokio_rt, tokio_rt_timed, Smol, WORKERS,
};
pub use window::Window;

/// A boxed, sendable future, for recursive task trees.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where criterion writes its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `criterion` in the target directory
/// the running benchmark was built in (it runs as
/// `<target>/release/deps/<name>-*`). The JSON tables that `report.py`
/// reads beside criterion's own results go there.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("criterion");
    }
    let exe = std::env::current_exe().expect("own executable");
    match exe.ancestors().nth(3) {
        Some(target) => target.join("criterion"),
        None => PathBuf::from("target").join("criterion"),
    }
}
