//! A node's ancestry, as the borrowing scopes check it: a nested scope
//! may borrow what its lender's call borrows only if it opened inside the
//! lender's subtree (`scope/borrowed/`).

use super::Node;

impl Node {
    /// Whether `ancestor` is this node's parent, or its parent's, and so on
    /// up to the root. Parents are fixed at open and each node counts its
    /// parent, so the chain is read without a lock; the caller holds a
    /// reference to `ancestor`, so its address names no other node.
    pub(crate) fn descends_from(&self, ancestor: &Node) -> bool {
        let mut node = self.parent.as_deref();
        while let Some(n) = node {
            if std::ptr::eq(n, ancestor) {
                return true;
            }
            node = n.parent.as_deref();
        }
        false
    }
}
