//! A TCP echo server with async-io: a scope per connection, and a graceful
//! shutdown.
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
//! - **Graceful shutdown.** The connections' tasks belong to one scope,
//!   `connections`, whose body is the accept loop. After `MAX_CONNECTIONS`
//!   connections the loop ends and drops the listener (stop accepting: a
//!   late client is refused), then gives the open connections `GRACE` to
//!   finish (`cancel_after`): the scope ends as soon as they are done, or
//!   cancels whatever is left when the grace period is over (hard cancel).
//!
//! The clients run in the same program: three quick ones, one that falls
//! silent, one too slow to finish within the grace period, and one that
//! comes after the server stopped accepting.
//!
//! Run with `cargo run --example echo_server`.

use async_io::Async;
use cancel_scope::sync::Event;
use cancel_scope::time::sleep;
use cancel_scope::{runtime, scope, CancelReason};
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use futures_lite::StreamExt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Connections the server takes before it stops accepting.
const MAX_CONNECTIONS: usize = 5;
/// How long a connection may stay silent.
const IDLE: Duration = Duration::from_millis(200);
/// How long open connections may go on once the server stops accepting.
const GRACE: Duration = Duration::from_millis(400);

/// Milliseconds since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", t0.elapsed().as_millis())
}

/// Serves `MAX_CONNECTIONS` connections, then shuts down gracefully.
/// `Err` if the grace period ran out with connections still open.
async fn server(listener: Async<TcpListener>, stopped: Event, t0: Instant) -> io::Result<()> {
    let out = scope(|connections| async move {
        for n in 1..=MAX_CONNECTIONS {
            let (stream, peer) = listener.accept().await?;
            println!("{} server: connection {n} from {peer}", at(t0));
            connections.spawn(serve(n, stream, t0));
        }
        drop(listener); // stop accepting: new connections are refused
        stopped.set();
        println!(
            "{} server: stopped accepting; open connections have {GRACE:?}",
            at(t0)
        );
        connections.cancel_after(GRACE);
        Ok::<(), io::Error>(())
    })
    .await;
    match out {
        Ok(result) => {
            println!("{} server: every connection finished in time", at(t0));
            result
        }
        Err(cancelled) => {
            println!(
                "{} server: grace period over, cut the rest ({cancelled})",
                at(t0)
            );
            Ok(())
        }
    }
}

/// One connection, in a scope of its own: echoes lines until the client
/// closes, or stays silent for `IDLE`.
async fn serve(n: usize, stream: Async<TcpStream>, t0: Instant) {
    let out = scope(|conn| async move {
        conn.cancel_after(IDLE);
        let mut lines = BufReader::new(&stream).lines();
        let mut echoed = 0;
        while let Some(Ok(line)) = lines.next().await {
            conn.cancel_after(IDLE); // not idle: move the deadline back
            (&stream).write_all(format!("{line}\n").as_bytes()).await?;
            echoed += 1;
        }
        Ok::<usize, io::Error>(echoed)
    })
    .await;
    match out {
        Ok(Ok(echoed)) => println!(
            "{} server: connection {n} closed by the client after {echoed} lines",
            at(t0)
        ),
        Ok(Err(e)) => println!("{} server: connection {n} failed: {e}", at(t0)),
        Err(c) if matches!(c.reason(), CancelReason::Deadline { .. }) => {
            println!(
                "{} server: connection {n} idle for {IDLE:?}, closed",
                at(t0)
            )
        }
        Err(c) => println!("{} server: connection {n} stopped: {c}", at(t0)),
    }
}

/// Sends `lines`, one every `pause`, reading each echo; reports how far it
/// got before it or the server closed the connection.
async fn client(name: &str, addr: SocketAddr, lines: usize, pause: Duration, t0: Instant) {
    let stream = match Async::<TcpStream>::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => return println!("{} {name}: cannot connect: {e}", at(t0)),
    };
    let mut echoes = BufReader::new(&stream).lines();
    for i in 1..=lines {
        let sent = (&stream)
            .write_all(format!("{name} line {i}\n").as_bytes())
            .await;
        match (sent, echoes.next().await) {
            (Ok(()), Some(Ok(_echo))) => {}
            _ => return println!("{} {name}: server closed after {} echoes", at(t0), i - 1),
        }
        sleep(pause).await;
    }
    println!("{} {name}: got all {lines} echoes, closing", at(t0));
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
    let t0 = Instant::now();
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    let addr = listener.get_ref().local_addr()?;
    println!(
        "{} echo server on {addr} (async-io's reactor driven by: {:?})",
        at(t0),
        runtime::io_driver()
    );
    let out = runtime::block_on(scope(|s| async move {
        let stopped = Event::new();
        let server = s.spawn(server(listener, stopped.clone(), t0));
        for i in 1..=3 {
            let name = format!("client {i}");
            s.spawn(async move { client(&name, addr, 3, Duration::from_millis(10), t0).await });
        }
        s.spawn(silent_client(addr, t0));
        s.spawn(client(
            "slow client",
            addr,
            20,
            Duration::from_millis(100),
            t0,
        ));
        s.spawn(async move {
            stopped.wait().await;
            client("late client", addr, 1, Duration::ZERO, t0).await
        });
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
