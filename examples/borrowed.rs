//! Borrowing scopes: verify a set of blocks in parallel, borrowing them.
//!
//! The blocks (`&[Vec<u8>]`) and their expected checksums belong to
//! `main`. `Runtime::scoped` runs a scope whose tasks borrow them: one task
//! per block, on the work-stealing workers, with no `Arc` and no clone of
//! the data. That is sound because the call blocks until every task has
//! ended and been dropped, so no task can outlive the data it reads.
//!
//! The scope verifies under two policies at once:
//!
//! - **first error**: a nested `try_scope`; the first corrupt block
//!   cancels the other checks, which stop at their next chunk;
//! - **deadline**: `cancel_after` on the call's scope; when it passes,
//!   whatever still runs is cancelled, and the count of blocks verified so
//!   far (a counter on `main`'s stack, borrowed too) says how far it got.
//!
//! Three runs: clean blocks, one corrupt block, and slow storage that
//! cannot keep up with the deadline.
//!
//! Run with `cargo run --example borrowed`.

use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::task::yield_now;
use cancel_scope::time::sleep;
use cancel_scope::{CancelReason, Cancelled};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

const BLOCKS: usize = 48;
const BLOCK_LEN: usize = 64 * 1024;
/// A block is checked a chunk at a time; between chunks, a cancel can
/// stop the check.
const CHUNK: usize = 4096;

/// Adler-32 over `data`, resumed from `state`.
fn adler32(state: u32, data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (state & 0xffff, state >> 16);
    for &byte in data {
        a = (a + u32::from(byte)) % MOD;
        b = (b + a) % MOD;
    }
    (b << 16) | a
}

/// A block whose checksum is not the expected one.
#[derive(Debug)]
struct Corrupt {
    block: usize,
}

/// What a run of checks came to.
enum Verdict {
    AllGood { digest: u32 },
    Corrupt(Corrupt),
    Cancelled(Cancelled),
}

/// How the storage behaves in a run.
#[derive(Clone, Copy)]
enum Storage {
    Fast,
    /// Each block takes a little longer to read than the one before it.
    Slow {
        per_block: Duration,
    },
}

/// Checks one block, a chunk at a time.
async fn verify(
    index: usize,
    block: &[u8],
    expected: u32,
    storage: Storage,
) -> Result<u32, Corrupt> {
    if let Storage::Slow { per_block } = storage {
        sleep(per_block * index as u32).await;
    }
    let mut sum = 1;
    for chunk in block.chunks(CHUNK) {
        sum = adler32(sum, chunk);
        yield_now().await;
    }
    if sum == expected {
        Ok(sum)
    } else {
        Err(Corrupt { block: index })
    }
}

/// Verifies every block in parallel, borrowing the blocks, the expected
/// sums and the `verified` counter from the caller.
fn verify_all(
    rt: &Runtime,
    blocks: &[Vec<u8>],
    expected: &[u32],
    storage: Storage,
    deadline: Duration,
    verified: &AtomicUsize,
) -> Verdict {
    let out = rt.scoped(|s| async move {
        s.cancel_after(deadline);
        s.try_scope(|checks| async move {
            let tasks: Vec<_> = blocks
                .iter()
                .zip(expected)
                .enumerate()
                .map(|(index, (block, &sum))| {
                    checks.spawn(async move {
                        let sum = verify(index, block, sum, storage).await?;
                        verified.fetch_add(1, Relaxed);
                        Ok(sum)
                    })
                })
                .collect();
            // Fold the block sums, in block order, into one digest.
            let mut digest = 1;
            for task in tasks {
                if let Ok(sum) = task.await {
                    digest = adler32(digest, &sum.to_le_bytes());
                }
            }
            Ok(digest)
        })
        .await
    });
    match out {
        Ok(Ok(Ok(digest))) => Verdict::AllGood { digest },
        Ok(Ok(Err(corrupt))) => Verdict::Corrupt(corrupt),
        Ok(Err(cancelled)) | Err(cancelled) => Verdict::Cancelled(cancelled),
    }
}

fn run(
    rt: &Runtime,
    name: &str,
    (blocks, expected): (&[Vec<u8>], &[u32]),
    storage: Storage,
    deadline: Duration,
) {
    let verified = AtomicUsize::new(0);
    let start = Instant::now();
    let verdict = verify_all(rt, blocks, expected, storage, deadline, &verified);
    // Every task has ended: `verified` is final, and the blocks are ours
    // again.
    let (elapsed, verified) = (start.elapsed(), verified.load(Relaxed));
    match verdict {
        Verdict::AllGood { digest } => println!(
            "{name:<9} all {verified} blocks verified in {elapsed:.1?}, digest {digest:#010x}"
        ),
        Verdict::Corrupt(Corrupt { block }) => println!(
            "{name:<9} block {block} is corrupt; {verified} of {BLOCKS} verified, the rest cancelled"
        ),
        Verdict::Cancelled(cancelled) => {
            assert!(matches!(cancelled.reason(), CancelReason::Deadline { .. }));
            println!("{name:<9} {cancelled}; {verified} of {BLOCKS} verified by then");
        }
    }
}

fn main() {
    let rt = Builder::new().worker_threads(4).build().unwrap();
    let mut blocks: Vec<Vec<u8>> = (0..BLOCKS)
        .map(|i| (0..BLOCK_LEN).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    let expected: Vec<u32> = blocks.iter().map(|b| adler32(1, b)).collect();

    // A deadline far off for fast storage, a tight one for slow storage.
    let (far, tight) = (Duration::from_secs(10), Duration::from_millis(60));
    run(&rt, "clean", (&blocks, &expected), Storage::Fast, far);

    // Flip one byte: the check of that block fails, and cancels the rest.
    blocks[BLOCKS / 3][1000] ^= 0x40;
    run(&rt, "corrupt", (&blocks, &expected), Storage::Fast, far);
    blocks[BLOCKS / 3][1000] ^= 0x40;

    let slow = Storage::Slow {
        per_block: Duration::from_millis(2),
    };
    run(&rt, "slow", (&blocks, &expected), slow, tight);

    // The data was never moved or shared: it is still `main`'s.
    assert_eq!(adler32(1, &blocks[0]), expected[0]);
}
