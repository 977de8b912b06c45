//! [`BorrowJoinSet`]: the outputs of borrowing tasks, in the order they
//! complete. A [`JoinSet`] of the task module's handles, under the borrow
//! of the scope handle they were spawned through, as a
//! [`BorrowJoinHandle`] is.

use super::{BorrowJoinHandle, BorrowScope};
use crate::cancelled::Cancelled;
use crate::scope::JoinSet;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

/// A set of borrowing tasks whose outputs are read in the order the tasks
/// complete: the borrowing twin of [`JoinSet`], which says how it works.
///
/// Its tasks belong to the scopes they were spawned into, which wait for
/// them; dropping the set detaches them. Like a [`BorrowJoinHandle`], it
/// borrows the [`BorrowScope`] its tasks were spawned through (`'a`), so
/// it stays with that scope handle, and never outlives the data the call
/// lends (`'env`).
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, BorrowJoinSet};
///
/// let files = vec![b"alpha".to_vec(), b"be".to_vec(), b"gamma ray".to_vec()];
/// let files = &files;
/// let longest = runtime::scoped(|s| async move {
///     let mut set = BorrowJoinSet::new();
///     for file in files {
///         set.spawn_in(&s, async move { file.len() });
///     }
///     let mut longest = 0;
///     while let Some(len) = set.join_next().await {
///         longest = longest.max(len.unwrap());
///     }
///     longest
/// });
/// assert_eq!(longest, Ok(9));
/// ```
pub struct BorrowJoinSet<'a, T> {
    set: JoinSet<T>,
    scope: PhantomData<&'a ()>,
}

impl<'a, T> BorrowJoinSet<'a, T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = cancel_scope::BorrowJoinSet::<u32>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        BorrowJoinSet {
            set: JoinSet::new(),
            scope: PhantomData,
        }
    }

    /// Spawns `future` as a task of `scope` (see [`BorrowScope::spawn`])
    /// and adds it to the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, BorrowJoinSet};
    ///
    /// let numbers = [3u64, 4, 5];
    /// let numbers = &numbers;
    /// let out = runtime::scoped(|s| async move {
    ///     let mut set = BorrowJoinSet::new();
    ///     for n in numbers {
    ///         set.spawn_in(&s, async move { n * n });
    ///     }
    ///     let mut sum = 0;
    ///     while let Some(square) = set.join_next().await {
    ///         sum += square.unwrap();
    ///     }
    ///     sum
    /// });
    /// assert_eq!(out, Ok(50));
    /// ```
    pub fn spawn_in<'env, F>(&mut self, scope: &'a BorrowScope<'env>, future: F)
    where
        F: Future<Output = T> + Send + 'env,
        T: Send + 'env,
    {
        self.push(scope.spawn(future));
    }

    /// Adds a borrowing task's handle to the set; see [`JoinSet::push`].
    ///
    /// # Panics
    ///
    /// If the handle has already returned its output.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, BorrowJoinSet};
    ///
    /// let name = String::from("config.toml");
    /// let name = &name;
    /// let out = runtime::scoped(|s| async move {
    ///     let mut set = BorrowJoinSet::new();
    ///     set.push(s.spawn_blocking(move || name.len()));
    ///     set.push(s.spawn(async move { name.matches('o').count() }));
    ///     let mut got = Vec::new();
    ///     while let Some(result) = set.join_next().await {
    ///         got.push(result.unwrap());
    ///     }
    ///     got.sort();
    ///     got
    /// });
    /// assert_eq!(out.unwrap(), [2, 11]);
    /// ```
    pub fn push(&mut self, handle: BorrowJoinHandle<'a, T>) {
        self.set.push(handle.into_inner());
    }

    /// Waits for the next task to complete and returns its output, or
    /// `None` if the set is empty; see [`JoinSet::join_next`] (cancel
    /// safe).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, BorrowJoinSet};
    ///
    /// let out = runtime::scoped(|s| async move {
    ///     let mut set = BorrowJoinSet::new();
    ///     set.spawn_in(&s, async { 1 });
    ///     let first = set.join_next().await;
    ///     (first.map(Result::unwrap), set.join_next().await.is_none())
    /// });
    /// assert_eq!(out, Ok((Some(1), true)));
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, Cancelled>> {
        self.set.join_next().await
    }

    /// The output of a task that has completed, if there is one now; never
    /// waits. See [`JoinSet::try_join_next`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, sync::Event, BorrowJoinSet};
    ///
    /// let go = Event::new();
    /// let go = &go;
    /// let out = runtime::scoped(|s| async move {
    ///     let mut set = BorrowJoinSet::new();
    ///     set.spawn_in(&s, async move { go.wait().await; "done" });
    ///     assert!(set.try_join_next().is_none()); // still waiting
    ///     go.set();
    ///     set.join_next().await.unwrap().unwrap()
    /// });
    /// assert_eq!(out, Ok("done"));
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, Cancelled>> {
        self.set.try_join_next()
    }

    /// Tasks in the set whose outputs have not been returned yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, BorrowJoinSet};
    ///
    /// runtime::scoped(|s| async move {
    ///     let mut set = BorrowJoinSet::new();
    ///     set.spawn_in(&s, async { 1 });
    ///     set.spawn_in(&s, async { 2 });
    ///     assert_eq!(set.len(), 2);
    ///     set.join_next().await;
    ///     assert_eq!(set.len(), 1);
    /// })
    /// .unwrap();
    /// ```
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether every output has been returned (or none was added).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(cancel_scope::BorrowJoinSet::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl<T> Default for BorrowJoinSet<'_, T> {
    fn default() -> Self {
        BorrowJoinSet::new()
    }
}

impl<'a, T> Extend<BorrowJoinHandle<'a, T>> for BorrowJoinSet<'a, T> {
    fn extend<I: IntoIterator<Item = BorrowJoinHandle<'a, T>>>(&mut self, handles: I) {
        for handle in handles {
            self.push(handle);
        }
    }
}

/// Collects borrowing handles into a set.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, BorrowJoinSet};
///
/// let sides = [1u64, 2, 3, 4];
/// let sides = &sides;
/// let out = runtime::scoped(|s| async move {
///     let mut set: BorrowJoinSet<u64> = sides.iter().map(|n| s.spawn(async move { n * n })).collect();
///     let mut sum = 0;
///     while let Some(result) = set.join_next().await {
///         sum += result.unwrap();
///     }
///     sum
/// });
/// assert_eq!(out, Ok(30));
/// ```
impl<'a, T> FromIterator<BorrowJoinHandle<'a, T>> for BorrowJoinSet<'a, T> {
    fn from_iter<I: IntoIterator<Item = BorrowJoinHandle<'a, T>>>(handles: I) -> Self {
        let mut set = BorrowJoinSet::new();
        set.extend(handles);
        set
    }
}

impl<T> fmt::Debug for BorrowJoinSet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BorrowJoinSet").field(&self.set).finish()
    }
}
