//! A pipeline over channels: producer, transformer, consumer; cancel the
//! producer, and the rest drain.
//!
//! Each stage is a task that owns the sending end of the channel after it
//! (async-channel's bounded channels). Stopping the pipeline takes one
//! cancel, of the producer's scope, and no stop message:
//!
//! 1. cancelling the producer's scope drops the producer's future, and
//!    with it its `Sender`: the first channel is closed;
//! 2. the transformer's `recv` still returns the items already in the
//!    channel, then `Err(RecvError)`: it has drained its input, so it ends
//!    and drops its own `Sender`, closing the second channel;
//! 3. the consumer drains that one the same way, and ends.
//!
//! Nothing that was sent is lost. The item the producer was trying to send
//! when it was cancelled (its channel was full) was never sent: a `send`
//! future dropped before it completes drops its item, which is why the
//! count of items *sent* is taken after each `send` returns.
//!
//! The program runs on a paused clock with one worker: it runs at once,
//! and prints the same lines in the same order on every run.
//!
//! Run with `cargo run --example pipeline`.

use async_channel::{bounded, Receiver, Sender};
use cancel_scope::runtime::Builder;
use cancel_scope::scope;
use cancel_scope::time::{self, sleep};
use std::time::{Duration, Instant};

/// Room in each channel.
const CAPACITY: usize = 3;
/// The producer makes an item this often...
const PRODUCE_EVERY: Duration = Duration::from_millis(10);
/// ...the transformer needs this long for one, so items pile up...
const TRANSFORM: Duration = Duration::from_millis(25);
/// ...until the producer's scope is cancelled at this time.
const STOP_AFTER: Duration = Duration::from_millis(95);

/// The virtual time since `t0`, as a log prefix.
fn at(t0: Instant) -> String {
    format!("[{:>4}ms]", (time::now() - t0).as_millis())
}

/// Sends 0, 1, 2, ... until cancelled; counts what was sent.
async fn produce(out: Sender<u64>, sent: Sender<u64>, t0: Instant) {
    for i in 0.. {
        sleep(PRODUCE_EVERY).await;
        if out.send(i).await.is_err() {
            return;
        }
        println!("{} producer:    sent {i}", at(t0));
        let _ = sent.try_send(i);
    }
}

/// Squares each item; ends once its input is closed and drained.
async fn transform(input: Receiver<u64>, out: Sender<u64>, t0: Instant) {
    while let Ok(x) = input.recv().await {
        sleep(TRANSFORM).await;
        if out.send(x * x).await.is_err() {
            return;
        }
    }
    println!(
        "{} transformer: input closed and drained; closing my output",
        at(t0)
    );
}

/// Prints each item; ends once its input is closed and drained. Returns
/// how many items it got.
async fn consume(input: Receiver<u64>, t0: Instant) -> usize {
    let mut got = 0;
    while let Ok(y) = input.recv().await {
        println!("{} consumer:    got {y}", at(t0));
        got += 1;
    }
    println!("{} consumer:    input closed and drained", at(t0));
    got
}

fn main() {
    let rt = Builder::new()
        .start_paused(true)
        .worker_threads(1)
        .build()
        .expect("start the runtime");
    let (consumed, sent) = rt
        .block_on(scope(|s| async move {
            let t0 = time::now();
            let (raw_tx, raw_rx) = bounded(CAPACITY);
            let (squared_tx, squared_rx) = bounded(CAPACITY);
            let (sent_tx, sent_rx) = async_channel::unbounded();
            s.spawn(transform(raw_rx, squared_tx, t0));
            let consumer = s.spawn(consume(squared_rx, t0));

            // The producer in a scope of its own: cancelling it stops the
            // producer alone.
            let producer = scope(|p| async move {
                p.spawn(produce(raw_tx, sent_tx, t0));
                sleep(STOP_AFTER).await;
                println!("{} main:        cancelling the producer's scope", at(t0));
                p.cancel();
            })
            .await;
            println!(
                "{} main:        producer's scope ended: {}",
                at(t0),
                producer.unwrap_err()
            );
            let consumed = consumer.await.expect("the consumer is not cancelled");
            (consumed, sent_rx.len())
        }))
        .expect("the pipeline's scope is not cancelled");
    println!("sent {sent} items, consumed {consumed}: the cancel lost none of them");
    assert_eq!(consumed, sent);
}
