//! The seed's second example: linked scopes.
//!
//! An outer scope runs a task that waits forever on an `Event`, and a task
//! that opens an inner *linked* scope which cancels itself. Through the
//! link, cancelling the inner scope cancels the outer one, so the forever
//! task stops and the program exits at once.
//!
//! Python original:
//!
//! ```text
//! async with cancel_scope(asyncio.TaskGroup()) as outer_tg:
//!     outer_tg.create_task(forever.wait())
//!     outer_tg.create_task(inner(outer_tg))
//!
//! async def inner(parent_tg):
//!     async with cancel_scope(asyncio.TaskGroup(), parent_tg) as inner_tg:
//!         cancel_group(inner_tg)
//! ```

use cancel_scope::{linked_scope, runtime, scope, sync::Event};
use std::time::Instant;

fn main() {
    let start = Instant::now();
    let forever = Event::new();
    let out = runtime::block_on(scope(|outer| async move {
        outer.spawn(async move {
            println!("outer task: waiting forever on an event that is never set");
            forever.wait().await;
            unreachable!("the event is never set");
        });
        outer.spawn(async {
            let inner = linked_scope(|inner| async move {
                println!("inner linked scope: cancelling itself");
                inner.cancel();
            })
            .await;
            println!(
                "inner linked scope ended with: {:?}",
                inner.map_err(|c| c.to_string())
            );
        });
    }));
    match &out {
        Ok(()) => println!("outer scope finished normally"),
        Err(cancelled) => println!("outer scope ended with Err: {cancelled}"),
    }
    println!("exited after {:?}", start.elapsed());
    assert!(
        out.is_err(),
        "the link carried the cancellation to the outer scope"
    );
}
