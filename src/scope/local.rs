//! [`ScopeLocal`]: a value a scope lends to every task and scope inside it.
//!
//! A scope opened with [`with_local`](crate::ScopeFuture::with_local)
//! keeps the value in its node, where it never changes; reading walks from
//! the scope being polled up through its ancestors to the nearest one that
//! set the key (a nested scope can shadow it). Nothing is locked: a node's
//! parent and locals are fixed when it opens.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;

/// A key for a value that a scope lends its subtree: declare one as a
/// `static`, attach a value with
/// [`with_local`](crate::ScopeFuture::with_local), read it from any task or
/// nested scope with [`with`](ScopeLocal::with) or
/// [`get`](ScopeLocal::get). Task-locals that tasks inherit, which a tree
/// of scopes makes possible: request ids, budgets, tracing context.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime, scope, ScopeLocal};
///
/// static USER: ScopeLocal<String> = ScopeLocal::new();
///
/// let out = runtime::block_on(
///     scope(|s| async move {
///         let outer = s.spawn(async { USER.get() });
///         let inner = scope(|s| async move { s.spawn(async { USER.get() }).await })
///             .with_local(&USER, "bob".to_string());
///         (outer.await.unwrap(), inner.await.unwrap().unwrap())
///     })
///     .with_local(&USER, "alice".to_string()),
/// );
/// assert_eq!(out, Ok((Some("alice".into()), Some("bob".into()))));
/// ```
///
/// # A key is a `static`, never a `const`
///
/// A key's identity is its address, and only a `static` has one address.
/// Each use of a `const` is a new temporary, so two `const` keys could
/// share an address and a value set under one would be read by the other,
/// or a read would find nothing. The key holds a cell so that a reference
/// to a `const` key is never promoted to `'static`: using one does not
/// compile (E0716).
///
/// ```compile_fail,E0716
/// use cancel_scope::{runtime, scope, ScopeLocal};
///
/// const USER: ScopeLocal<String> = ScopeLocal::new(); // `static` is right
///
/// let _ = runtime::block_on(scope(|_| async { USER.get() }));
/// ```
pub struct ScopeLocal<T> {
    /// Never read or written. Not zero-sized, so each `static` key has an
    /// address of its own; and a cell, so that `&KEY` of a `const` is not
    /// promoted to a `&'static` (see the type's docs).
    _identity: UnsafeCell<u8>,
    _value: PhantomData<fn() -> T>,
}

// SAFETY: the cell is never accessed: it is there for its address and to
// keep references to `const` keys from being promoted. Nothing of `T` is
// held (`PhantomData<fn() -> T>`).
unsafe impl<T> Sync for ScopeLocal<T> {}

// The cell is never touched, so nothing can be seen half-updated.
impl<T> std::panic::RefUnwindSafe for ScopeLocal<T> {}

impl<T: Send + Sync + 'static> ScopeLocal<T> {
    /// A new key; declare it as a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// static DEPTH: cancel_scope::ScopeLocal<u32> = cancel_scope::ScopeLocal::new();
    /// ```
    #[allow(clippy::new_without_default)]
    pub const fn new() -> ScopeLocal<T> {
        ScopeLocal {
            _identity: UnsafeCell::new(0),
            _value: PhantomData,
        }
    }

    /// The key's identity: its address.
    pub(crate) fn key(&'static self) -> usize {
        self as *const ScopeLocal<T> as usize
    }

    /// Runs `f` with the value the nearest enclosing scope set for this
    /// key, or `None` outside any scope that set it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, ScopeLocal};
    ///
    /// static LIMITS: ScopeLocal<Vec<u32>> = ScopeLocal::new();
    ///
    /// let out = runtime::block_on(
    ///     scope(|_| async { LIMITS.with(|l| l.map(|l| l.len())) }).with_local(&LIMITS, vec![1, 2]),
    /// );
    /// assert_eq!(out, Ok(Some(2)));
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(Option<&T>) -> R) -> R {
        crate::runtime::context::with_current_scope(|node| {
            // SAFETY: `with_current_scope` keeps the node alive while its
            // closure runs, and `f` runs inside it.
            let node = node.map(|n| unsafe { n.as_ref() });
            f(node
                .and_then(|n| n.local(self.key()))
                .and_then(|v| v.downcast_ref::<T>()))
        })
    }

    /// A clone of the value; see [`with`](ScopeLocal::with).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime, scope, ScopeLocal};
    ///
    /// static ID: ScopeLocal<u64> = ScopeLocal::new();
    ///
    /// assert_eq!(runtime::block_on(scope(|_| async { ID.get() }).with_local(&ID, 9)), Ok(Some(9)));
    /// ```
    pub fn get(&'static self) -> Option<T>
    where
        T: Clone,
    {
        self.with(|v| v.cloned())
    }
}

impl<T> fmt::Debug for ScopeLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeLocal").finish_non_exhaustive()
    }
}
