//! Scopes: cancelling a scope and what it reaches, linked and shielded
//! scopes, cancel handles and reasons, try scopes, scope-local values and
//! the shapes of scope trees. One test binary, a module per theme.

#[path = "../support/mod.rs"]
mod support;

mod cancel;
mod handle;
mod linked;
mod locals;
mod reasons;
mod shapes;
mod shield;
mod try_scope;
mod wait_cancelled;
