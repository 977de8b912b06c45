//! Views of a run: the recorded timeline with its renderers, and the
//! scope tree view. One test binary, a module per theme.

#[path = "../support/mod.rs"]
mod support;

mod timeline;
mod tree_view;
