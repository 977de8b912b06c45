//! The roster: which of a runtime's threads are still alive, and for each,
//! where it keeps its current scope.
//!
//! Every worker and blocking thread has a [`Seat`], reserved by whoever
//! starts the thread (so a thread the operating system has not scheduled
//! yet counts too), moved into it, and left as the last thing the thread
//! does. A bounded shutdown (`Runtime::shutdown_timeout`) waits, until its
//! deadline, for the roster to empty; the seats still taken then are the
//! threads it leaves running, and each tells where its thread keeps its
//! current scope (`context::ScopeCell`), so that the report can name the
//! scope each one is in. Keeping the roster costs a thread's start and
//! exit a lock each, and a poll nothing: the cell is the thread-local
//! every poll sets anyway.
//!
//! **Rule "a seat names a live cell".** A seat holds the address of its
//! thread's scope cell from the moment that thread occupies the seat until it
//! leaves it, both done on that thread under the roster's lock, and the cell
//! lives as long as its thread. So a reader holding the lock may load the
//! cell. What it loads is a node's address, to compare with nodes the reader
//! holds itself, never to follow: the thread may leave that scope, and the
//! node be freed, the moment after the load.

use crate::runtime::context::{self, ScopeCell};
use crate::scope::tree::Node;
use parking_lot::{Condvar, Mutex};
use slab::Slab;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Instant;

/// The threads of one runtime; see the module docs.
pub(crate) struct Roster {
    seats: Mutex<Slab<Sitter>>,
    /// Signalled whenever a thread leaves its seat.
    left: Condvar,
}

/// What a runtime thread is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The worker with this index.
    Worker(usize),
    /// A thread of the blocking pool.
    Blocking,
}

/// A thread's place in the roster, held by the thread; leaving it (the
/// drop) must be the thread's last act.
pub(crate) struct Seat {
    roster: Arc<Roster>,
    key: usize,
}

/// Who sits in a seat.
struct Sitter {
    role: Role,
    /// Set when the thread occupies its seat.
    thread: Option<Occupant>,
}

/// The thread in a seat, once it runs.
struct Occupant {
    id: ThreadId,
    name: Option<String>,
    /// Rule "a seat names a live cell".
    scope_cell: *const ScopeCell,
}

// SAFETY: `scope_cell` is loaded only under the roster's lock while its thread
// sits in the seat (rule "a seat names a live cell"); the rest is `Send`.
unsafe impl Send for Occupant {}

/// A thread still in its seat when [`Roster::left_running`] looked.
pub(crate) struct Running {
    pub(crate) role: Role,
    pub(crate) thread_name: Option<String>,
    /// The address of the scope the thread was in (null if none): compare,
    /// never follow (rule "a seat names a live cell").
    pub(crate) scope: *const Node,
}

impl Roster {
    pub(crate) fn new() -> Arc<Roster> {
        Arc::new(Roster {
            seats: Mutex::new(Slab::new()),
            left: Condvar::new(),
        })
    }

    /// Reserves a seat for a thread about to be started; move it into the
    /// thread, which [`occupy`](Seat::occupy)s it.
    pub(crate) fn reserve(self: &Arc<Self>, role: Role) -> Seat {
        let key = self.seats.lock().insert(Sitter { role, thread: None });
        Seat {
            roster: self.clone(),
            key,
        }
    }

    /// Waits until every thread but the caller has left its seat, or until
    /// `deadline` (`None`: no deadline). Returns whether all have left.
    pub(crate) fn wait_empty(&self, deadline: Option<Instant>) -> bool {
        let me = thread::current().id();
        let mut seats = self.seats.lock();
        loop {
            let others = seats
                .iter()
                .any(|(_, s)| s.thread.as_ref().map_or(true, |t| t.id != me));
            if !others {
                return true;
            }
            match deadline {
                Some(deadline) => {
                    if self.left.wait_until(&mut seats, deadline).timed_out() {
                        return false;
                    }
                }
                None => self.left.wait(&mut seats),
            }
        }
    }

    /// The threads, but the caller, still in their seats, and the scope
    /// each is in.
    pub(crate) fn left_running(&self) -> Vec<Running> {
        let me = thread::current().id();
        let seats = self.seats.lock();
        let mut running: Vec<Running> = seats
            .iter()
            .filter(|(_, s)| s.thread.as_ref().map_or(true, |t| t.id != me))
            .map(|(_, s)| Running {
                role: s.role,
                thread_name: s.thread.as_ref().and_then(|t| t.name.clone()),
                // SAFETY: rule "a seat names a live cell"; we hold the lock,
                // and the thread sits in its seat, so its cell is alive.
                scope: s.thread.as_ref().map_or(std::ptr::null(), |t| unsafe {
                    (*t.scope_cell).load(Relaxed)
                }),
            })
            .collect();
        // Workers first, by index; the slab's order is the order seats
        // were reserved in, which is the blocking threads' start order.
        running.sort_by_key(|r| match r.role {
            Role::Worker(id) => (0, id),
            Role::Blocking => (1, 0),
        });
        running
    }
}

impl Seat {
    /// Records the calling thread, the one this seat was reserved for, as
    /// its occupant (rule "a seat names a live cell").
    pub(crate) fn occupy(&mut self) {
        let current = thread::current();
        let occupant = Occupant {
            id: current.id(),
            name: current.name().map(str::to_string),
            scope_cell: context::this_thread_scope_cell(),
        };
        self.roster.seats.lock()[self.key].thread = Some(occupant);
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let sitter = self.roster.seats.lock().remove(self.key);
        self.roster.left.notify_all();
        drop(sitter);
    }
}

impl fmt::Debug for Roster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roster")
            .field("threads", &self.seats.lock().len())
            .finish()
    }
}
