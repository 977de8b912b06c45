//! Scope-local values: a value a scope attaches is seen, read-only, by
//! every task and nested scope of its subtree, however deep and on
//! whichever worker; a nested scope shadows it; outside any scope that set
//! it, it is `None`.

use crate::support::{hang_guard, runtime, Clock};
use cancel_scope::task::yield_now;
use cancel_scope::{scope, shielded_scope, ScopeLocal};

static REQUEST_ID: ScopeLocal<u64> = ScopeLocal::new();
static USER: ScopeLocal<String> = ScopeLocal::new();

/// Three levels down (a task of a scope opened by a task of a scope
/// opened in the body), on the workers, the value is seen; a sibling key
/// never set reads `None`.
#[test]
fn a_local_is_seen_three_levels_down() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(
        scope(|s| async move {
            let deep = s.spawn(scope(|s1| async move {
                s1.spawn(scope(|s2| async move {
                    s2.spawn(async {
                        yield_now().await;
                        (REQUEST_ID.get(), USER.get())
                    })
                    .await
                    .unwrap()
                }))
                .await
                .unwrap()
                .unwrap()
            }));
            deep.await.unwrap().unwrap()
        })
        .with_local(&REQUEST_ID, 42),
    );
    assert_eq!(out, Ok((Some(42), None)));
}

/// A nested scope shadows the value for its own subtree only; a shield
/// inside still sees the nearest value; outside every scope it is `None`.
#[test]
fn a_nested_scope_shadows_a_local() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let out = rt.block_on(
        scope(|s| async move {
            let shadowed = scope(|inner| async move {
                let task = inner.spawn(async { REQUEST_ID.get() }).await.unwrap();
                let shield = shielded_scope(|_| async { REQUEST_ID.get() })
                    .await
                    .unwrap();
                (REQUEST_ID.get(), task, shield)
            })
            .with_local(&REQUEST_ID, 2)
            .await
            .unwrap();
            let after = s.spawn(async { REQUEST_ID.get() }).await.unwrap();
            (shadowed, after, USER.with(|u| u.map(String::len)))
        })
        .with_local(&REQUEST_ID, 1)
        .with_local(&USER, "ada".into()),
    );
    assert_eq!(out, Ok(((Some(2), Some(2), Some(2)), Some(1), Some(3))));
    assert_eq!(REQUEST_ID.get(), None);
    assert_eq!(rt.block_on(async { REQUEST_ID.get() }), None);
}
