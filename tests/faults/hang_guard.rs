//! The hang guard itself (`support/hang.rs`): a test that hangs ends the
//! test binary with its name within the bound, and a guard dropped, also
//! by a panic, ends its watch.

use crate::reliability::{is_child, run_in_child_captured};
use crate::support::{
    expect_panic, hang_guard, hang_guard_for, test_name, watched_names, HANG_LIMIT,
};
use std::time::Duration;

/// The bound of the hung child: short, so that the parent waits little.
const SHORT: Duration = Duration::from_millis(200);

/// In a child process, a test that never ends under a short guard: the
/// watchdog names it on stderr and aborts the child, well before the
/// parent's own limit. The child's harness captures its output, as a
/// plain `cargo test` does, and the report must still reach stderr.
#[test]
#[cfg_attr(miri, ignore = "Miri cannot start a child process")]
fn a_hung_test_is_reported_by_name_and_ends_the_binary() {
    if is_child() {
        let _hang = hang_guard_for(&test_name(), SHORT);
        loop {
            std::thread::park();
        }
    }
    let out = run_in_child_captured();
    assert!(
        out.status.is_some_and(|s| !s.success()),
        "the hung child {} (stderr: {})",
        out.verdict(HANG_LIMIT),
        out.stderr
    );
    let report = format!("{} did not finish within {SHORT:?}: it hangs", test_name());
    assert!(out.stderr.contains(&report), "stderr: {}", out.stderr);
    assert!(
        !out.stdout.contains("test result"),
        "the harness went on: {}",
        out.stdout
    );
}

/// A guard is watched while alive, and dropping it, in order or by a
/// panic's unwinding, ends the watch.
#[test]
fn a_guard_is_watched_until_it_is_dropped() {
    let _hang = hang_guard();
    let name = format!("{} (inner)", test_name());
    let watched = || watched_names().iter().filter(|n| **n == name).count();
    let inner = hang_guard_for(&name, HANG_LIMIT);
    assert_eq!(watched(), 1);
    drop(inner);
    assert_eq!(watched(), 0);
    let message = expect_panic(|| {
        let _inner = hang_guard_for(&name, HANG_LIMIT);
        assert_eq!(watched(), 1);
        panic!("the body fails");
    });
    assert_eq!(message, "the body fails");
    assert_eq!(watched(), 0, "the unwinding dropped the guard");
    assert!(
        watched_names().contains(&test_name()),
        "the outer guard stays"
    );
}
