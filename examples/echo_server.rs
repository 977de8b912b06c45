//! A TCP echo server with async-io: a scope per connection, at most
//! `MAX_CONCURRENT` connections served at once, and a graceful shutdown
//! on Ctrl-C.
//!
//! - **I/O.** `async_io::Async<TcpListener>` and `Async<TcpStream>`. With
//!   the runtime's `async-io` feature (on by default), idle workers wait
//!   in async-io's reactor, so a connection's task is woken on the worker
//!   that saw its socket become ready, and runs there. Without it, the
//!   same code works, and async-io's own thread waits in the reactor and
//!   hands each woken task over to the workers. The first line printed
//!   says which.
//! - **A scope per connection.** Each connection is served inside a scope
//!   of its own, with a deadline that every line moves back: a client
//!   silent for `IDLE` has its scope cancelled, and the dropped future
//!   closes the socket.
//! - **A limit.** The connections are tasks of one scope, `connections`,
//!   opened with `limit(MAX_CONCURRENT)`. Its body is the accept loop,
//!   which waits for a free slot (`slot()`) before it accepts: a client
//!   beyond the limit waits in the operating system's backlog, not in the
//!   program.
//! - **Graceful shutdown.** Ctrl-C calls `shutdown(GRACE)` on the scope's
//!   handle: a stop request, which the accept loop and every connection
//!   see (`stop_requested()`). The accept loop ends and drops the listener
//!   (a late client is refused); a connection finishes the line it is on,
//!   says goodbye and closes. After `GRACE`, whatever is still running is
//!   cancelled, and the scope's `Err` names it (`still_running()`).
//!
//! The clients run in the same program: three quick ones, one that falls
//! silent, and one whose request takes the server longer than the grace
//! period (its handler does not listen for the request meanwhile). After
//! five connections the program presses Ctrl-C itself (the handler's own
//! code runs), and one more client comes too late.
//!
//! Run with `cargo run --example echo_server`; with `-- --serve` it serves
//! on 127.0.0.1:7007 until you press Ctrl-C (try `nc 127.0.0.1 7007`).

use async_io::Async;
use cancel_scope::sync::Event;
use cancel_scope::time::sleep;
use cancel_scope::{runtime, scope, stop_requested, CancelHandle};
use futures_lite::future;
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use futures_lite::StreamExt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Connections served at once; more wait in the backlog.
const MAX_CONCURRENT: usize = 4;
/// Connections the demo serves before it presses Ctrl-C.
const DEMO_CONNECTIONS: usize = 5;
/// How long a connection may stay silent.
const IDLE: Duration = Duration::from_millis(200);
/// How long open connections may go on once a shutdown is requested.
const GRACE: Duration = Duration::from_millis(400);
/// How long the server works on a `long job` line.
const LONG_JOB: Duration = Duration::from_secs(2);

/// Milliseconds since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", t0.elapsed().as_millis())
}

/// Serves until a shutdown is requested through `handle` (Ctrl-C), then
/// shuts down gracefully. `accepted` is told each connection's number.
async fn server(
    listener: Async<TcpListener>,
    handle: CancelHandle,
    accepted: async_channel::Sender<usize>,
    t0: Instant,
) -> io::Result<()> {
    let out = scope(|connections| async move {
        for n in 1.. {
            // A free slot first, so that a client beyond the limit waits
            // in the backlog; then a client. Either wait ends at a request
            // to stop (dropping a slot held meanwhile gives it back).
            let next = async {
                let slot = connections.slot().await.ok()?;
                Some((slot, listener.accept().await))
            };
            let stop = async {
                stop_requested().await;
                None
            };
            let Some((slot, accepted_one)) = future::or(stop, next).await else {
                break;
            };
            let (stream, peer) = accepted_one?;
            println!("{} server: connection {n} from {peer}", at(t0));
            slot.spawn(
                scope(move |conn| serve(conn, n, stream, t0)).named(format!("connection {n}")),
            );
            let _ = accepted.try_send(n);
        }
        drop(listener); // stop accepting: new connections are refused
        println!(
            "{} server: stopped accepting; open connections have {GRACE:?}",
            at(t0)
        );
        Ok::<(), io::Error>(())
    })
    .named("connections")
    .limit(MAX_CONCURRENT)
    .with_cancel_handle(&handle)
    .await;
    match out {
        Ok(result) => {
            println!("{} server: every connection finished in time", at(t0));
            result
        }
        Err(cancelled) => {
            println!("{} server: grace period over ({cancelled})", at(t0));
            if let Some(tree) = cancelled.still_running() {
                for scope in tree.scopes().iter().skip(1) {
                    let name = scope.name().unwrap_or("a scope");
                    println!(
                        "{}   cut short: {name}, opened at {}",
                        at(t0),
                        scope.location()
                    );
                }
            }
            Ok(())
        }
    }
}

/// One connection, in its scope `conn`: echoes lines until the client
/// closes, stays silent for `IDLE`, or a stop is requested (then it says
/// goodbye). A `long job` line takes `LONG_JOB`, deaf to the request.
async fn serve(
    conn: cancel_scope::Scope,
    n: usize,
    stream: Async<TcpStream>,
    t0: Instant,
) -> io::Result<usize> {
    conn.cancel_after(IDLE);
    let mut lines = BufReader::new(&stream).lines();
    let mut echoed = 0;
    loop {
        let next = async { lines.next().await };
        let stop = async {
            stop_requested().await;
            None
        };
        let Some(Ok(line)) = future::or(stop, next).await else {
            break;
        };
        conn.cancel_after(IDLE); // not idle: move the deadline back
        if line.ends_with("long job") {
            conn.cancel_after(LONG_JOB * 2); // working, not idle
            sleep(LONG_JOB).await;
        }
        (&stream).write_all(format!("{line}\n").as_bytes()).await?;
        echoed += 1;
    }
    if conn.is_stop_requested() {
        (&stream)
            .write_all(b"bye: the server is shutting down\n")
            .await?;
        println!("{} server: connection {n} said goodbye", at(t0));
    }
    Ok(echoed)
}

/// Sends `lines`, one every `pause`, reading each echo; reports how far it
/// got before it or the server closed the connection.
async fn client(name: &str, addr: SocketAddr, lines: &[&str], pause: Duration, t0: Instant) {
    let stream = match Async::<TcpStream>::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => return println!("{} {name}: cannot connect: {e}", at(t0)),
    };
    let mut echoes = BufReader::new(&stream).lines();
    for (i, line) in lines.iter().enumerate() {
        let sent = (&stream)
            .write_all(format!("{name}: {line}\n").as_bytes())
            .await;
        match (sent, echoes.next().await) {
            (Ok(()), Some(Ok(echo))) if echo.starts_with("bye") => {
                return println!("{} {name}: the server said {echo:?}", at(t0))
            }
            (Ok(()), Some(Ok(_echo))) => {}
            _ => return println!("{} {name}: server closed after {i} echoes", at(t0)),
        }
        sleep(pause).await;
    }
    println!("{} {name}: got all {} echoes, closing", at(t0), lines.len());
}

/// Sends one line, then stays silent until the server closes.
async fn silent_client(addr: SocketAddr, t0: Instant) {
    let Ok(stream) = Async::<TcpStream>::connect(addr).await else {
        return println!("{} silent client: cannot connect", at(t0));
    };
    let _ = (&stream).write_all(b"hello\n").await;
    let mut echoes = BufReader::new(&stream).lines();
    let _echo = echoes.next().await;
    println!("{} silent client: sent one line, now silent", at(t0));
    while let Some(Ok(_)) = echoes.next().await {}
    println!("{} silent client: the server closed the connection", at(t0));
}

fn main() -> io::Result<()> {
    let serve_only = std::env::args().any(|a| a == "--serve");
    let t0 = Instant::now();
    let port = if serve_only { 7007 } else { 0 };
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], port))?;
    let addr = listener.get_ref().local_addr()?;
    println!(
        "{} echo server on {addr} (async-io's reactor driven by: {:?})",
        at(t0),
        runtime::io_driver()
    );

    // Ctrl-C: a graceful shutdown of the connections' scope.
    let handle = CancelHandle::new();
    let ctrl_c = {
        let handle = handle.clone();
        move || {
            println!("{} Ctrl-C: shutting down, grace {GRACE:?}", at(t0));
            handle.shutdown(GRACE);
        }
    };
    ctrlc::set_handler(ctrl_c.clone()).expect("install the Ctrl-C handler");

    let (accepted, accepts) = async_channel::unbounded();
    if serve_only {
        drop(accepts);
        return runtime::block_on(server(listener, handle, accepted, t0));
    }
    let out = runtime::block_on(scope(|s| async move {
        let stopped = Event::new();
        let server = s.spawn(server(listener, handle, accepted, t0));
        let quick = ["one", "two", "three"];
        for i in 1..=3 {
            let name = format!("client {i}");
            s.spawn(
                async move { client(&name, addr, &quick, Duration::from_millis(10), t0).await },
            );
        }
        s.spawn(silent_client(addr, t0));
        s.spawn(async move {
            let lines = ["hi", "long job", "more"];
            client("busy client", addr, &lines, Duration::from_millis(10), t0).await
        });
        s.spawn({
            let stopped = stopped.clone();
            async move {
                stopped.wait().await;
                client("late client", addr, &["hello?"], Duration::ZERO, t0).await
            }
        });
        // The demo presses Ctrl-C once enough clients were served.
        for _ in 0..DEMO_CONNECTIONS {
            let _ = accepts.recv().await;
        }
        sleep(Duration::from_millis(50)).await;
        println!("{} (pressing Ctrl-C for you)", at(t0));
        ctrl_c();
        stopped.set();
        server.await
    }));
    let result = out.expect("the program's scope is not cancelled");
    result.expect("the server's task is not cancelled")?;
    println!(
        "{} done: the server and every client ended with the scope",
        at(t0)
    );
    Ok(())
}
