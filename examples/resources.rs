//! A service that owns what it starts, released in the right order
//! whichever way its scope ends.
//!
//! - Its **log**, **temporary directory** and **connection pool** are
//!   released by cleanups (`Scope::defer`, `defer_async`,
//!   `defer_async_within`): newest first, after the last of its work,
//!   told how the service ended. The pool closes politely when the service
//!   completed, and rolls back when it was cut, within a grace period.
//! - A **heartbeat** is a daemon (`Scope::spawn_daemon`): the service does
//!   not wait for it, and stops it once its work is over.
//! - Its **listener** starts with `Scope::spawn_ready`: the clients
//!   connect only once it listens.
//! - Each connection is served by a **blocking reader** on the blocking
//!   pool, which no cancel can interrupt; a cancel handler
//!   (`Scope::on_cancel`) shuts its socket down, which makes the read
//!   return.
//!
//! The service runs twice: once to the end of its work, once cut by a
//! deadline while a client (on a thread of its own, standing for another
//! machine) keeps an idle connection open. The second run shows the
//! handlers stopping the readers, and the same cleanups in the same order.
//!
//! Run with `cargo run --example resources`.

use async_io::Async;
use cancel_scope::runtime::Runtime;
use cancel_scope::time::{self, sleep};
use cancel_scope::{move_on_after, scope, Ready, Scope, ScopeEnd};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn main() {
    let rt = Runtime::new();

    println!("== the service runs to the end of its work");
    let out = rt.block_on(scope(|s| service(s, 2)).named("service"));
    println!("service: {out:?}\n");
    assert_eq!(out.ok(), Some(2));

    println!("== the service is cut by a deadline");
    let deadline = Duration::from_millis(150);
    let out = rt.block_on(move_on_after(deadline, |s| service(s, 1000)).named("service"));
    println!("service: {}", out.as_ref().unwrap_err());
    assert!(out.is_err());
}

/// The time since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", (time::now() - t0).as_millis())
}

/// The service: opens its resources, starts its heartbeat and listener,
/// and serves `requests` requests of its own client.
async fn service(s: Scope, requests: usize) -> usize {
    let t0 = time::now();

    // Opened first, released last: the log.
    s.defer(move |end| println!("{} log flushed: the service {}", at(t0), describe(&end)))
        .unwrap();

    // A temporary directory, removed on the blocking pool.
    let dir = std::env::temp_dir().join(format!("resources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    s.defer_async(move |cleanup, _| async move {
        let removed = cleanup.spawn_blocking(move || std::fs::remove_dir_all(dir));
        let _ = removed.await;
        println!("{} temporary directory removed", at(t0));
    })
    .unwrap();

    // A connection pool, closed within a grace period.
    s.defer_async_within(Duration::from_millis(100), move |_, end| async move {
        let polite = end.is_completed();
        let mut gone = Unclosed { left: 3, t0 };
        for conn in 1..=3 {
            if polite {
                sleep(Duration::from_millis(20)).await; // a goodbye to the database
                println!("{} pool: connection {conn} closed", at(t0));
            } else {
                sleep(Duration::from_millis(60)).await; // roll back a transaction
                println!("{} pool: connection {conn} rolled back", at(t0));
            }
            gone.left -= 1;
        }
    })
    .unwrap();

    // A heartbeat the service does not wait for.
    s.spawn_daemon(async move {
        loop {
            sleep(Duration::from_millis(60)).await;
            println!("{} heartbeat", at(t0));
        }
    });

    // The listener: the clients connect once it listens.
    let listening = s.clone();
    let (addr, listener) = s
        .spawn_ready(move |ready| listen(ready, listening, t0))
        .await
        .expect("the listener starts");
    println!("{} listening on {addr}", at(t0));

    // A client elsewhere keeps an idle connection open until it is told
    // to leave.
    let (leave, told) = mpsc::channel::<()>();
    thread::spawn(move || {
        let idle = TcpStream::connect(addr).expect("connect");
        let _ = told.recv();
        drop(idle);
    });

    // The service's own client.
    let mut client = Async::<TcpStream>::connect(addr).await.expect("connect");
    let mut served = 0;
    for _ in 0..requests {
        client.write_all(b"ping").await.expect("write");
        let mut echo = [0; 4];
        client.read_exact(&mut echo).await.expect("read");
        served += 1;
        sleep(Duration::from_millis(20)).await;
    }
    println!("{} {served} requests served", at(t0));
    drop(client);
    drop(leave); // the idle client leaves
    listener.cancel(); // stop listening
    served
}

/// Binds, says so, and serves each connection with a blocking reader.
async fn listen(ready: Ready<SocketAddr>, service: Scope, t0: Instant) -> io::Result<()> {
    let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
    ready.send(listener.get_ref().local_addr()?);
    for id in 1.. {
        let (stream, _) = listener.accept().await?;
        let stream = stream.into_inner()?;
        stream.set_nonblocking(false)?;
        serve_blocking(&service, stream, id, t0)?;
    }
    Ok(())
}

/// Echoes what a connection sends, with blocking calls on the pool; a
/// cancel of the service shuts the socket down, which ends the read.
fn serve_blocking(service: &Scope, stream: TcpStream, id: u32, t0: Instant) -> io::Result<()> {
    let stopper = stream.try_clone()?;
    let handler = service.on_cancel(move |why| {
        println!("{} conn {id}: {why}; shutting its socket down", at(t0));
        let _ = stopper.shutdown(Shutdown::Both);
    });
    drop(service.spawn_blocking(move || {
        let _handler = handler; // registered while the reader runs
        let mut stream = stream;
        let mut buf = [0; 64];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            if stream.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        println!("{} conn {id}: reader returned", at(t0));
    }));
    Ok(())
}

/// Says how many pool connections a grace period left unclosed.
struct Unclosed {
    left: u32,
    t0: Instant,
}

impl Drop for Unclosed {
    fn drop(&mut self) {
        if self.left > 0 {
            println!(
                "{} pool: grace period over, {} connection(s) dropped",
                at(self.t0),
                self.left
            );
        }
    }
}

fn describe(end: &ScopeEnd) -> String {
    match end {
        ScopeEnd::Completed { .. } => "completed".to_string(),
        ScopeEnd::Cancelled(why) => format!("was {why}"),
        ScopeEnd::Failed => "failed".to_string(),
        _ => "panicked".to_string(),
    }
}
