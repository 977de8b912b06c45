//! A picture of a runtime's scope tree, for debugging.
//!
//! [`Runtime::scope_tree`](crate::runtime::Runtime::scope_tree) copies the
//! tree node by node, each scope under its own lock: each scope is seen in
//! a consistent state, the tree as it was while the copy ran. The copy
//! renders as an indented text tree:
//!
//! ```text
//! scope #0 "server" running [2 cleanups], 1 task, opened at src/main.rs:9:22
//! ├── scope #3 "daemons" running [daemons], 1 task, opened at src/main.rs:9:22
//! ├── scope #1 running [linked, 1 not ready], 2 tasks, opened at src/main.rs:12:13
//! └── scope #2 cancelling [shielded, deadline in 250ms], 1 task, opened at src/main.rs:20:13
//! ```
//!
//! A scope's daemons are a child scope of their own, named `"daemons"`;
//! a scope running its cleanups is `cleaning up`, with a shielded child
//! `"cleanups"` and, below it, the `"cleanup"` scope of the one running.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

/// A copy of a runtime's scope tree, each scope copied under its own lock.
///
/// Its `Display` is an indented text tree; [`scopes`](TreeSnapshot::scopes)
/// gives the same nodes as data, parents before children.
///
/// # Examples
///
/// ```
/// use cancel_scope::{runtime::Runtime, scope, ScopeState};
///
/// let rt = &Runtime::new();
/// let _ = rt.block_on(scope(|s| async move {
///     s.spawn(std::future::pending::<()>());
///     let tree = rt.scope_tree();
///     assert_eq!(tree.scopes().len(), 1);
///     assert_eq!(tree.scopes()[0].state(), ScopeState::Running);
///     assert!(tree.to_string().starts_with("scope #"));
///     s.cancel();
/// }));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TreeSnapshot {
    pub(crate) scopes: Vec<ScopeSnapshot>,
}

/// One scope in a [`TreeSnapshot`]; its accessors are shown below.
///
/// # Examples
///
/// ```
/// use cancel_scope::{linked_scope, runtime::Runtime, scope, ScopeState};
/// use std::time::Duration;
///
/// let rt = &Runtime::new();
/// let _ = rt.block_on(scope(|s| async move {
///     s.cancel_after(Duration::from_secs(60));
///     s.spawn(std::future::pending::<()>());
///     let tree = rt.scope_tree();
///     let root = &tree.scopes()[0];
///     assert_eq!((root.id(), root.depth()), (s.id(), 0));
///     assert_eq!(root.state(), ScopeState::Running);
///     assert!(!root.is_linked() && !root.is_shielded());
///     assert!(root.deadline_in().unwrap() <= Duration::from_secs(60));
///     assert_eq!(root.live_tasks(), 1);
///     assert_eq!(root.location().file(), file!());
///     s.cancel();
/// }));
/// ```
#[derive(Clone, Debug)]
pub struct ScopeSnapshot {
    pub(crate) id: u64,
    pub(crate) depth: usize,
    pub(crate) state: ScopeState,
    pub(crate) linked: bool,
    pub(crate) shielded: bool,
    pub(crate) deadline_in: Option<Duration>,
    pub(crate) live_tasks: usize,
    pub(crate) queued_tasks: usize,
    pub(crate) limit: Option<usize>,
    pub(crate) stop_requested: bool,
    pub(crate) location: &'static Location<'static>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) supervisor: bool,
    pub(crate) daemons: bool,
    pub(crate) pending_cleanups: usize,
    pub(crate) cancel_handlers: usize,
    pub(crate) tasks_not_ready: usize,
}

/// Where a scope is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeState {
    /// Not cancelled, and its body is still running.
    Running,
    /// Not cancelled; the body has ended and the scope waits for its tasks
    /// and nested scopes.
    Finishing,
    /// Cancelled; some tasks or nested scopes have not ended yet.
    Cancelling,
    /// Its future was dropped (for a shield: detached) and it waits for its
    /// remaining tasks before it leaves the tree.
    Detached,
    /// Its body, tasks, nested scopes and daemons have ended, and it runs
    /// its cleanups ([`Scope::defer`](crate::Scope::defer)), in a child
    /// scope named `"cleanups"`.
    CleaningUp,
}

impl TreeSnapshot {
    /// The scopes, in depth-first order: each parent before its children.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = &Runtime::new();
    /// let _ = rt.block_on(scope(|outer| async move {
    ///     scope(|inner| async move {
    ///         let tree = rt.scope_tree();
    ///         let ids: Vec<u64> = tree.scopes().iter().map(|s| s.id()).collect();
    ///         assert_eq!(ids, [outer.id(), inner.id()]);
    ///         assert_eq!(tree.scopes()[1].depth(), 1);
    ///     })
    ///     .await
    /// }));
    /// ```
    pub fn scopes(&self) -> &[ScopeSnapshot] {
        &self.scopes
    }

    /// Whether the tree was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = cancel_scope::runtime::Runtime::new();
    /// assert!(rt.scope_tree().is_empty());
    /// assert_eq!(rt.scope_tree().to_string(), "(no scopes)\n");
    /// ```
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}

impl ScopeSnapshot {
    /// The scope's id, unique within its runtime (see [`Scope::id`](crate::Scope::id)).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Nesting depth: 0 for a root.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Where the scope is in its life.
    pub fn state(&self) -> ScopeState {
        self.state
    }

    /// Whether it is a [`linked_scope`](crate::linked_scope).
    pub fn is_linked(&self) -> bool {
        self.linked
    }

    /// Whether it is a [`shielded_scope`](crate::shielded_scope).
    pub fn is_shielded(&self) -> bool {
        self.shielded
    }

    /// Time left until its deadline, if it has one.
    pub fn deadline_in(&self) -> Option<Duration> {
        self.deadline_in
    }

    /// Tasks spawned into it that have not ended: those started and those
    /// still queued behind its limit.
    pub fn live_tasks(&self) -> usize {
        self.live_tasks
    }

    /// Tasks of a limited scope waiting for a slot, never polled yet
    /// ([`ScopeFuture::limit`](crate::ScopeFuture::limit)); 0 for a scope
    /// without a limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_scope::{runtime::Runtime, scope};
    ///
    /// let rt = &Runtime::new();
    /// let _ = rt.block_on(scope(|s| async move {
    ///     for _ in 0..3 {
    ///         s.spawn(std::future::pending::<()>());
    ///     }
    ///     let tree = rt.scope_tree();
    ///     let me = &tree.scopes()[0];
    ///     assert_eq!((me.running_tasks(), me.queued_tasks(), me.limit()), (2, 1, Some(2)));
    ///     assert!(tree.to_string().contains("3 tasks (2 running, 1 queued, limit 2)"));
    ///     s.cancel();
    /// }).limit(2));
    /// ```
    pub fn queued_tasks(&self) -> usize {
        self.queued_tasks
    }

    /// Tasks started and not ended: [`live_tasks`](ScopeSnapshot::live_tasks)
    /// less [`queued_tasks`](ScopeSnapshot::queued_tasks).
    pub fn running_tasks(&self) -> usize {
        self.live_tasks - self.queued_tasks.min(self.live_tasks)
    }

    /// The scope's concurrency limit, if it has one.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Whether a stop was requested of it, or of an enclosing scope whose
    /// request reached it ([`Scope::request_stop`](crate::Scope::request_stop)).
    pub fn is_stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// Where it was opened.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// Its name, if it was given one
    /// ([`ScopeFuture::named`](crate::ScopeFuture::named)).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether it is a [`supervisor_scope`](crate::supervisor_scope).
    pub fn is_supervisor(&self) -> bool {
        self.supervisor
    }

    /// Whether it is the scope of its parent's daemons
    /// ([`Scope::spawn_daemon`](crate::Scope::spawn_daemon)).
    pub fn is_daemons(&self) -> bool {
        self.daemons
    }

    /// Cleanups registered and not started yet
    /// ([`Scope::defer`](crate::Scope::defer)).
    pub fn pending_cleanups(&self) -> usize {
        self.pending_cleanups
    }

    /// Cancel handlers waiting for a cancel
    /// ([`Scope::on_cancel`](crate::Scope::on_cancel)).
    pub fn cancel_handlers(&self) -> usize {
        self.cancel_handlers
    }

    /// Tasks spawned with [`Scope::spawn_ready`](crate::Scope::spawn_ready)
    /// that have not said they are ready.
    pub fn tasks_not_ready(&self) -> usize {
        self.tasks_not_ready
    }
}

impl fmt::Display for ScopeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScopeState::Running => "running",
            ScopeState::Finishing => "finishing",
            ScopeState::Cancelling => "cancelling",
            ScopeState::Detached => "detached",
            ScopeState::CleaningUp => "cleaning up",
        })
    }
}

impl fmt::Display for ScopeSnapshot {
    /// One line: id, name, state, flags, tasks, location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scope #{}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " {}", self.state)?;
        let mut flags = Vec::new();
        if self.supervisor {
            flags.push("supervisor".to_string());
        }
        if self.linked {
            flags.push("linked".to_string());
        }
        if self.shielded {
            flags.push("shielded".to_string());
        }
        if self.daemons {
            flags.push("daemons".to_string());
        }
        if let Some(left) = self.deadline_in {
            flags.push(format!("deadline in {left:?}"));
        }
        let counted = [
            (self.pending_cleanups, "cleanup", "cleanups"),
            (self.cancel_handlers, "cancel handler", "cancel handlers"),
            (self.tasks_not_ready, "not ready", "not ready"),
        ];
        for (n, one, many) in counted {
            match n {
                0 => {}
                1 => flags.push(format!("1 {one}")),
                n => flags.push(format!("{n} {many}")),
            }
        }
        if self.stop_requested {
            flags.push("stop requested".to_string());
        }
        if !flags.is_empty() {
            write!(f, " [{}]", flags.join(", "))?;
        }
        let plural = if self.live_tasks == 1 { "" } else { "s" };
        write!(f, ", {} task{plural}", self.live_tasks)?;
        if let Some(limit) = self.limit {
            write!(
                f,
                " ({} running, {} queued, limit {limit})",
                self.running_tasks(),
                self.queued_tasks
            )?;
        }
        write!(f, ", opened at {}", self.location)
    }
}

impl fmt::Display for TreeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scopes.is_empty() {
            return writeln!(f, "(no scopes)");
        }
        // `open[d]`: whether an ancestor at depth `d` has siblings still to
        // come, so its column keeps a vertical bar.
        let mut open: Vec<bool> = Vec::new();
        for (i, scope) in self.scopes.iter().enumerate() {
            let depth = scope.depth;
            let last = !self.scopes[i + 1..]
                .iter()
                .take_while(|s| s.depth >= depth)
                .any(|s| s.depth == depth);
            if depth > 0 {
                for &bar in &open[1..depth] {
                    f.write_str(if bar { "│   " } else { "    " })?;
                }
                f.write_str(if last { "└── " } else { "├── " })?;
            }
            writeln!(f, "{scope}")?;
            open.truncate(depth);
            open.push(!last);
        }
        Ok(())
    }
}
