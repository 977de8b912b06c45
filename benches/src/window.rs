//! The measured window of a workload: a start time for the clock and, when
//! the `count` driver runs under callgrind, the stretch of the run whose
//! instructions are counted.
//!
//! A workload calls [`Window::open`] just before the operation and
//! [`Window::close`] once the main thread knows the operation is over,
//! before any cleanup that is not measured. For the clock the workload
//! names the end time itself (for a peer's cancel, when the last future was
//! dropped, on whichever thread). For the instruction count, `close` first
//! lets the workers finish what the operation left them (freeing a
//! cancelled task after its future was dropped, going back to sleep), so
//! that the count holds all of a runtime's work on every thread.
//!
//! Counting uses callgrind's client requests to switch instrumentation on
//! and off (run with `--instr-atstart=no`); outside valgrind they do
//! nothing. They are only issued when [`set_counting`] turned them on.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

static COUNTING: AtomicBool = AtomicBool::new(false);

/// How long [`Window::close`] lets the workers settle before counting
/// stops: long enough for a worker to drop and free the last cancelled
/// task and park again (under valgrind, which runs one thread at a time).
const SETTLE: Duration = Duration::from_millis(50);

/// Turns the callgrind window on (the `count` driver) or off.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Relaxed);
}

/// A measurement in progress.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    start: Instant,
}

impl Window {
    /// Starts counting (under the driver) and the clock.
    pub fn open() -> Window {
        if COUNTING.load(Relaxed) {
            callgrind::start_instrumentation();
        }
        Window {
            start: Instant::now(),
        }
    }

    /// Ends the measurement: returns the time from the start to `end`, and
    /// under the driver stops counting once the workers have settled.
    pub fn close(self, end: Instant) -> Duration {
        if COUNTING.load(Relaxed) {
            thread::sleep(SETTLE);
            callgrind::stop_instrumentation();
        }
        end.saturating_duration_since(self.start)
    }
}

/// callgrind's client requests (`valgrind/callgrind.h`): a magic
/// instruction sequence that does nothing on a real CPU and that valgrind
/// recognises.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod callgrind {
    /// `VG_USERREQ_TOOL_BASE('C', 'T')`.
    const BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);
    const START_INSTRUMENTATION: u64 = BASE + 4;
    const STOP_INSTRUMENTATION: u64 = BASE + 5;

    fn request(code: u64) {
        let args: [u64; 6] = [code, 0, 0, 0, 0, 0];
        // SAFETY: the four rotations of `rdi` add up to 128 bits, so they
        // leave it as it was, and `xchg rbx, rbx` changes nothing: on a real
        // CPU this is a no-op. Under valgrind it reads the six words of
        // `args`, which live until the asm ends, and writes only `rdx`
        // (declared as an output). No stack or flags beyond those declared.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdi") 0u64 => _,
                in("rax") args.as_ptr(),
                inout("rdx") 0u64 => _,
                options(nostack),
            );
        }
    }

    pub fn start_instrumentation() {
        request(START_INSTRUMENTATION);
    }

    pub fn stop_instrumentation() {
        request(STOP_INSTRUMENTATION);
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod callgrind {
    pub fn start_instrumentation() {}
    pub fn stop_instrumentation() {}
}
