//! Small synchronisation primitives for tasks.

mod event;

pub use event::{Event, EventWait};
