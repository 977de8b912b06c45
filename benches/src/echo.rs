//! The `io` group's server: one echo server per runtime, the same protocol
//! for all (`src/bin/echo.rs` runs one, `src/bin/load.rs` is the client,
//! `benches/io.py` drives both).
//!
//! The protocol: a client sends messages of a fixed size (given to the
//! server too) and waits for each reply, a message of the same size,
//! before it sends the next. The server reads a whole message and writes
//! it back. In the `deadline` workload each request is served inside a
//! 2 ms deadline, and a request whose first byte is [`HOLD`] is held past
//! it (a 10 ms sleep): the deadline cuts it, and the server replies with
//! the message's first byte set to [`CUT`].
//!
//! | runtime | threads | sockets | a request's deadline |
//! |---|---|---|---|
//! | `cancel_scope` | `worker_threads(n)`, idle workers drive async-io's reactor | async-io's `Async` | `move_on_after` |
//! | `cancel_scope_thread` | the same with `drive_io(false)`: async-io's own thread drives it (the runtime before the `async-io` feature) | async-io's `Async` | `move_on_after` |
//! | `tokio` | multi-thread scheduler, `worker_threads(n)`, I/O and time drivers | tokio's | `tokio::time::timeout` |
//! | `smol` | an `async_executor::Executor` run by `n` threads, each in `async_io::block_on` (smol's own setup) | async-io's `Async` | `future::or` with an async-io `Timer` |
//!
//! The accept loop is a task of the runtime in all of them; the main
//! thread only waits for its standard input to close, then exits the
//! process.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// First byte of a request the `deadline` workload holds past its deadline.
pub const HOLD: u8 = b'H';
/// First byte of a request served normally.
pub const SERVE: u8 = b'S';
/// First byte of the reply to a request the deadline cut.
pub const CUT: u8 = b'C';
/// The deadline of one request in the `deadline` workload.
pub const DEADLINE: Duration = Duration::from_millis(2);
/// How long a held request would take without its deadline.
pub const HELD: Duration = Duration::from_millis(10);

/// What the server does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Echo it.
    Echo,
    /// Echo it within [`DEADLINE`], holding [`HOLD`] requests past it.
    Deadline,
}

/// How one server is set up.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Runtime threads (workers, or executor threads for smol).
    pub threads: usize,
    /// Message size in bytes.
    pub size: usize,
    /// What to do with a request.
    pub workload: Workload,
}

/// Binds a listener on an ephemeral port of the loopback interface.
pub fn bind() -> io::Result<TcpListener> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Starts serving on `listener` with `runtime`; what it returns keeps the
/// server running (the process exits without dropping it).
pub fn start(runtime: &str, listener: TcpListener, config: Config) -> Result<Running, String> {
    match runtime {
        "cancel_scope" => ours::start(listener, config, true),
        "cancel_scope_thread" => ours::start(listener, config, false),
        "tokio" => tokio_server::start(listener, config),
        "smol" => smol_server::start(listener, config),
        _ => return Err(format!("unknown runtime {runtime:?}")),
    }
    .map_err(|e| e.to_string())
}

/// A running server's runtime, kept alive.
pub type Running = Box<dyn std::any::Any>;

/// Where a connection's request goes: its reply's first byte.
fn reply_mark(cut: bool) -> Option<u8> {
    cut.then_some(CUT)
}

mod ours {
    use super::*;
    use async_io::Async;
    use cancel_scope::runtime::Builder;
    use cancel_scope::{move_on_after, scope, time::sleep};
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

    pub fn start(listener: TcpListener, config: Config, drive_io: bool) -> io::Result<Running> {
        let rt = Builder::new()
            .worker_threads(config.threads)
            .drive_io(drive_io)
            .build()?;
        let listener = Async::new(listener)?;
        // The main thread waits for the end elsewhere: the scope's
        // `block_on` runs on a thread of its own, parked but for the
        // scope's end, which never comes.
        std::thread::spawn(move || {
            rt.block_on(scope(|connections| async move {
                let spawner = connections.clone();
                connections.spawn(async move {
                    loop {
                        if let Ok((stream, _)) = listener.accept().await {
                            spawner.spawn(connection(stream, config));
                        }
                    }
                });
            }))
        });
        Ok(Box::new(()))
    }

    async fn connection(mut stream: Async<TcpStream>, config: Config) {
        let _ = stream.get_ref().set_nodelay(true);
        let mut buf = vec![0u8; config.size];
        loop {
            if stream.read_exact(&mut buf).await.is_err() {
                return;
            }
            if config.workload == Workload::Deadline {
                let hold = buf[0] == HOLD;
                let served = move_on_after(DEADLINE, |_| async move {
                    if hold {
                        sleep(HELD).await;
                    }
                })
                .await;
                if let Some(mark) = reply_mark(served.is_err()) {
                    buf[0] = mark;
                }
            }
            if stream.write_all(&buf).await.is_err() {
                return;
            }
        }
    }
}

mod tokio_server {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub fn start(listener: TcpListener, config: Config) -> io::Result<Running> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()?;
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(connection(stream, config));
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        });
        Ok(Box::new(rt))
    }

    async fn connection(mut stream: tokio::net::TcpStream, config: Config) {
        let _ = stream.set_nodelay(true);
        let mut buf = vec![0u8; config.size];
        loop {
            if stream.read_exact(&mut buf).await.is_err() {
                return;
            }
            if config.workload == Workload::Deadline {
                let hold = buf[0] == HOLD;
                let served = tokio::time::timeout(DEADLINE, async move {
                    if hold {
                        tokio::time::sleep(HELD).await;
                    }
                })
                .await;
                if let Some(mark) = reply_mark(served.is_err()) {
                    buf[0] = mark;
                }
            }
            if stream.write_all(&buf).await.is_err() {
                return;
            }
        }
    }
}

mod smol_server {
    use super::*;
    use async_executor::Executor;
    use async_io::{Async, Timer};
    use futures_lite::future;
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
    use std::sync::Arc;
    use std::thread;

    pub fn start(listener: TcpListener, config: Config) -> io::Result<Running> {
        let ex = Arc::new(Executor::new());
        for i in 0..config.threads {
            let ex = ex.clone();
            thread::Builder::new()
                .name(format!("smol-{i}"))
                .spawn(move || async_io::block_on(ex.run(future::pending::<()>())))?;
        }
        let listener = Async::new(listener)?;
        let spawner = ex.clone();
        ex.spawn(async move {
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    spawner.spawn(connection(stream, config)).detach();
                }
            }
        })
        .detach();
        Ok(Box::new(ex))
    }

    async fn connection(mut stream: Async<TcpStream>, config: Config) {
        let _ = stream.get_ref().set_nodelay(true);
        let mut buf = vec![0u8; config.size];
        loop {
            if stream.read_exact(&mut buf).await.is_err() {
                return;
            }
            if config.workload == Workload::Deadline {
                let hold = buf[0] == HOLD;
                let served = future::or(
                    async move {
                        if hold {
                            Timer::after(HELD).await;
                        }
                        true
                    },
                    async {
                        Timer::after(DEADLINE).await;
                        false
                    },
                )
                .await;
                if let Some(mark) = reply_mark(!served) {
                    buf[0] = mark;
                }
            }
            if stream.write_all(&buf).await.is_err() {
                return;
            }
        }
    }
}

/// The address a server bound, as its first line of output says it.
pub fn announce(addr: SocketAddr) -> String {
    format!("listening {addr}")
}
