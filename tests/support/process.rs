//! Running a child process with a time limit, its output captured.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How a child process run by [`run_bounded`] ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status; `None` if it was killed at the time limit.
    pub status: Option<ExitStatus>,
    /// How long it ran.
    pub elapsed: Duration,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Finished {
    /// Whether it exited on its own, with success.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// One line on how it ended: `ok`, `failed (<status>)` or `killed at
    /// the <limit> time limit`.
    pub fn verdict(&self, limit: Duration) -> String {
        match self.status {
            None => format!("killed at the {limit:?} time limit"),
            Some(status) if status.success() => "ok".to_string(),
            Some(status) => format!("failed ({status})"),
        }
    }
}

/// Runs `command` (stdin closed, stdout and stderr captured) and kills it
/// if it has not exited within `limit`.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Finished {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child process") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    Finished {
        status,
        elapsed: start.elapsed(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a child's pipe to the end on a thread of its own, so a chatty
/// child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
