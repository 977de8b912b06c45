//! Run queues and the find-task order.
//!
//! Each worker owns a FIFO [`crossbeam_deque::Worker`]: tasks spawned or
//! rescheduled on a worker go to its back, as do tasks displaced from the
//! worker's LIFO slot, where a wake on a worker goes first
//! (`lifo_slot.rs`). Tasks woken or spawned anywhere else go to the shared
//! [`Injector`]. Idle workers steal from each other through [`Stealer`]s.
//! This module knows nothing of scopes.

use crate::loom::deque::{Injector, Steal, Stealer, Worker as Deque};
use crate::task::TaskRef;
use std::iter;

/// How often (in tasks run) a worker looks at the injector before its own
/// queue, so tasks woken from outside are not starved by a worker whose
/// local queue never empties. 61 is tokio's choice: prime, so it does not
/// line up with periodic workloads.
pub(crate) const GLOBAL_QUEUE_INTERVAL: u32 = 61;

/// Finds the next task for the worker that owns `local`.
///
/// Order: finish what we started before taking on something new (our own
/// queue), then a batch from the injector, then steal from the other
/// workers, starting at a random victim so thieves spread out. Two
/// fairness ticks break that order now and then: every
/// [`GLOBAL_QUEUE_INTERVAL`] tasks the injector comes first, so tasks woken
/// from outside are not starved by a busy local queue; half an interval
/// later the other workers come first, so a task queued behind one that
/// never yields is not starved while the injector keeps us busy.
/// `stolen(victim)` is told of each successful steal from a worker.
pub(crate) fn find_task(
    local: &Deque<TaskRef>,
    injector: &Injector<TaskRef>,
    stealers: &[Stealer<TaskRef>],
    tick: u32,
    random: usize,
    stolen: impl Fn(usize),
) -> Option<TaskRef> {
    let steal_from_others = || -> Steal<TaskRef> {
        let n = stealers.len();
        (0..n)
            .map(|i| {
                let victim = (random + i) % n;
                let steal = stealers[victim].steal_batch_and_pop(local);
                if steal.is_success() {
                    stolen(victim);
                }
                steal
            })
            .collect()
    };
    match tick % GLOBAL_QUEUE_INTERVAL {
        0 => {
            if let Some(task) = steal_retrying(|| injector.steal_batch_and_pop(local)) {
                return Some(task);
            }
        }
        STEAL_TICK => {
            if let Some(task) = steal_retrying(steal_from_others) {
                return Some(task);
            }
        }
        _ => {}
    }
    local.pop().or_else(|| {
        steal_retrying(|| {
            injector
                .steal_batch_and_pop(local)
                .or_else(steal_from_others)
        })
    })
}

/// The tick, within each [`GLOBAL_QUEUE_INTERVAL`], at which the other
/// workers' queues come first: half an interval after the injector's turn.
const STEAL_TICK: u32 = GLOBAL_QUEUE_INTERVAL / 2;

/// Whether any queue a sleeper would look at holds a task.
pub(crate) fn any_work(injector: &Injector<TaskRef>, stealers: &[Stealer<TaskRef>]) -> bool {
    !injector.is_empty() || stealers.iter().any(|s| !s.is_empty())
}

fn steal_retrying(mut attempt: impl FnMut() -> Steal<TaskRef>) -> Option<TaskRef> {
    iter::repeat_with(&mut attempt)
        .find(|s| !s.is_retry())
        .and_then(Steal::success)
}
