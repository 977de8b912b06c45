//! Views of a run: the recorded timeline with its renderers, and the
//! scope tree view; with the small JSON parser and XML checker the
//! renderers' output is read back with. One test binary, a module per
//! theme.

#[path = "../support/mod.rs"]
mod support;

mod json;
mod timeline;
mod tree_view;
mod xml;
