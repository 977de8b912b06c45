//! Every example in `examples/` builds and runs to a clean exit, quickly.
//!
//! The examples are found by listing the directory (`examples/<name>.rs`
//! and `examples/<name>/main.rs`), so a new example is covered without
//! touching this file. They are built once, in the dev profile, with the
//! same cargo that runs this test and its `async-io` feature, then each
//! binary runs on its own with a time limit; a failure shows the
//! example's output. `cargo test` builds the examples in that profile
//! already, so under it the build finds nothing left to do (a release
//! build cost a second build of every dependency).

use crate::support::{run_bounded, Finished};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one example may run.
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// The examples cargo discovers on its own: `examples/<name>.rs` and
/// `examples/<name>/main.rs`, sorted by name.
fn example_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = if path.is_dir() && path.join("main.rs").is_file() {
            path.file_name()
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            path.file_stem()
        } else {
            None
        };
        if let Some(name) = name.and_then(|n| n.to_str()) {
            names.push(name.to_string());
        }
    }
    names.sort();
    names
}

/// Where the examples are built: `$CARGO_TARGET_DIR` if set, else the
/// package's `target` directory.
fn target_dir(manifest_dir: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest_dir.join(dir),
        _ => manifest_dir.join("target"),
    }
}

/// How one example run went.
struct Run {
    name: String,
    finished: Finished,
}

impl Run {
    fn verdict(&self) -> String {
        self.finished.verdict(TIME_LIMIT)
    }
}

/// Runs one example binary, killing it at the time limit.
fn run(name: &str, binary: &Path) -> Run {
    Run {
        name: name.to_string(),
        finished: run_bounded(&mut Command::new(binary), TIME_LIMIT),
    }
}

#[test]
fn every_example_runs_and_exits_cleanly() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = example_names(&manifest_dir.join("examples"));
    for known in [
        "hello",
        "nested_scopes",
        "fan_out",
        "pipeline",
        "blocking",
        "echo_server",
        "supervisor",
        "resources",
        "timeline",
        "tree_view",
        "work_stealing",
        "borrowed",
    ] {
        assert!(
            names.iter().any(|n| n == known),
            "example {known} not found among {names:?}"
        );
    }

    let target = target_dir(manifest_dir);
    // Built as this test was: without the `async-io` feature when it is
    // off, so that the examples run on async-io's own thread then.
    let features: &[&str] = match cfg!(feature = "async-io") {
        true => &[],
        false => &["--no-default-features"],
    };
    let build = Command::new(env!("CARGO"))
        .args(["build", "--examples", "--quiet", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"))
        .args(features)
        .arg("--target-dir")
        .arg(&target)
        .current_dir(manifest_dir)
        .output()
        .expect("running cargo build");
    assert!(
        build.status.success(),
        "cargo build --examples failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );

    let bin_dir = target.join("debug").join("examples");
    let runs: Vec<Run> = names
        .iter()
        .map(|name| {
            let binary = bin_dir.join(format!("{name}{}", env::consts::EXE_SUFFIX));
            assert!(
                binary.is_file(),
                "example {name} was not built at {}",
                binary.display()
            );
            run(name, &binary)
        })
        .collect();

    println!("{:<20} {:>10}  result", "example", "time");
    for r in &runs {
        println!(
            "{:<20} {:>10.1?}  {}",
            r.name,
            r.finished.elapsed,
            r.verdict()
        );
    }
    let failures: Vec<String> = runs
        .iter()
        .filter(|r| !r.finished.succeeded())
        .map(|r| {
            format!(
                "=== example {}: {} ({:?})\n--- stdout:\n{}\n--- stderr:\n{}",
                r.name,
                r.verdict(),
                r.finished.elapsed,
                r.finished.stdout,
                r.finished.stderr
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        runs.len(),
        failures.join("\n")
    );
}
