//! The runtimes under test, configured alike: two worker threads each, and
//! the benchmark's own thread spawning, cancelling and waiting through the
//! runtime's `block_on` (`futures_lite`'s for smol).

use std::future::Future;
use std::thread;

/// Worker threads of every runtime under test.
pub const WORKERS: usize = 2;

/// Our runtime with [`WORKERS`] workers.
pub fn cancel_scope_rt() -> cancel_scope::runtime::Runtime {
    cancel_scope::runtime::Builder::new()
        .worker_threads(WORKERS)
        .build()
        .expect("start the cancel-scope runtime")
}

/// Our runtime as [`cancel_scope_rt`], but with parallel drop off, for
/// counting instructions under callgrind: everything runs there some fifty
/// times slower, so a cancel's plain drops would look slow and be shared
/// with the workers, which in the timed runs they never are.
pub fn cancel_scope_rt_for_counting() -> cancel_scope::runtime::Runtime {
    cancel_scope::runtime::Builder::new()
        .worker_threads(WORKERS)
        .parallel_drop(false)
        .build()
        .expect("start the cancel-scope runtime")
}

/// Tokio's multi-thread scheduler with [`WORKERS`] workers and no I/O or
/// timer driver (none of the workloads needs one).
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .expect("start the tokio runtime")
}

/// [`tokio_rt`] with tokio's timer driver, for the workloads with a
/// deadline (`cancel_latency`).
pub fn tokio_rt_timed() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_time()
        .build()
        .expect("start the tokio runtime")
}

/// smol's executor (`async-executor`) run by [`WORKERS`] threads.
///
/// The executor is leaked, so that tasks can spawn into it through a
/// `&'static` reference (the tree workloads), with no reference count per
/// task; a process makes only a few.
pub struct Smol {
    /// The executor, for spawning from any thread.
    pub ex: &'static async_executor::Executor<'static>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Smol {
    /// Starts the executor threads.
    pub fn new() -> Smol {
        let ex: &'static async_executor::Executor<'static> =
            Box::leak(Box::new(async_executor::Executor::new()));
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads = (0..WORKERS)
            .map(|i| {
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("smol-{i}"))
                    .spawn(move || {
                        let _ = futures_lite::future::block_on(ex.run(stopped.recv()));
                    })
                    .expect("start a smol executor thread")
            })
            .collect();
        Smol {
            ex,
            stop: Some(stop),
            threads,
        }
    }

    /// Spawns onto the executor.
    pub fn spawn<F>(&self, future: F) -> async_executor::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.ex.spawn(future)
    }

    /// Drives `future` on the calling thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        futures_lite::future::block_on(future)
    }
}

impl Default for Smol {
    fn default() -> Smol {
        Smol::new()
    }
}

impl Drop for Smol {
    fn drop(&mut self) {
        // Closing the channel ends `ex.run` on every thread.
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
