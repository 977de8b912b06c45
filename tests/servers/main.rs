//! Servers and what scopes own: concurrency limits under load, and
//! resources bound to a scope. One test binary, a module per theme.

#[path = "../support/mod.rs"]
mod support;

mod resources;
mod servers;
