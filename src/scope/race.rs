//! [`race_ok`]: the first success wins, the rest are cancelled.
//!
//! The race policy of Java's `anySuccessfulResultOrThrow`: run several
//! futures as tasks of one scope; the first to return `Ok` wins and the
//! scope is cancelled, stopping the others; if every one fails, the caller
//! gets all the errors.

use super::scope;
use super::tree::Links;
use crate::cancelled::{CancelReason, Cancelled};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;

/// Races `entrants`; the first `Ok` wins and the others are cancelled
/// (with [`CancelReason::Lost`]).
///
/// Resolves to `Ok(Ok(winner))`, or `Ok(Err(errors))` with every entrant's
/// error in the order the entrants were given when all of them failed (an
/// empty list for no entrants), or `Err(Cancelled)` if the race was
/// cancelled from outside before anyone won.
///
/// # Examples
///
/// ```
/// use cancel_scope::{race_ok, runtime, time::sleep};
/// use std::time::Duration;
///
/// let out = runtime::block_on(race_ok([
///     Box::pin(async { sleep(Duration::from_secs(60)).await; Ok("slow") })
///         as std::pin::Pin<Box<dyn std::future::Future<Output = Result<&str, ()>> + Send>>,
///     Box::pin(async { Err(()) }),
///     Box::pin(async { Ok("fast") }),
/// ]));
/// assert_eq!(out, Ok(Ok("fast")));
/// ```
#[track_caller]
pub fn race_ok<I, F, T, E>(
    entrants: I,
) -> impl Future<Output = Result<Result<T, Vec<E>>, Cancelled>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let entrants: Vec<F> = entrants.into_iter().collect();
    let count = entrants.len();
    let winner = Arc::new(Mutex::new(None));
    let errors: Arc<Mutex<Vec<Option<E>>>> =
        Arc::new(Mutex::new((0..count).map(|_| None).collect()));
    let (win, errs) = (winner.clone(), errors.clone());
    let race = scope(move |s| {
        for (i, entrant) in entrants.into_iter().enumerate() {
            let (s2, win, errs) = (s.clone(), win.clone(), errs.clone());
            s.spawn(async move {
                match entrant.await {
                    Ok(value) => {
                        let first = {
                            let mut w = win.lock();
                            let first = w.is_none();
                            if first {
                                *w = Some(value);
                            }
                            first
                        };
                        if first {
                            s2.node.cancel(CancelReason::Lost, Links::Ignore);
                        }
                    }
                    Err(error) => errs.lock()[i] = Some(error),
                }
            });
        }
        async {}
    });
    async move {
        let out = race.await;
        if let Some(value) = winner.lock().take() {
            return Ok(Ok(value));
        }
        let errors = std::mem::take(&mut *errors.lock());
        match out {
            Ok(()) => Ok(Err(errors
                .into_iter()
                .map(|e| e.expect("every entrant failed"))
                .collect())),
            Err(cancelled) => Err(cancelled),
        }
    }
}
