//! The scope tree view: `Runtime::scope_tree()` snapshots as data and as
//! rendered text, taken from inside the runtime and from other threads.

use crate::support::{hang_guard, runtime, Clock, Counter};
use cancel_scope::runtime;
use cancel_scope::{
    linked_scope, scope, shielded_scope, sync::Event, task::yield_now, Scope, ScopeSnapshot,
    ScopeState, TreeSnapshot,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Each line of a rendered tree without its `, opened at <location>` end.
fn without_locations(rendered: &str) -> Vec<&str> {
    rendered
        .lines()
        .map(|line| match line.find(", opened at ") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect()
}

/// What the test scopes record about themselves, by name.
#[derive(Default)]
struct Registry {
    ids: BTreeMap<&'static str, u64>,
    lines: BTreeMap<&'static str, u32>,
}

type Shared = Arc<Mutex<Registry>>;

fn record_id(reg: &Shared, name: &'static str, s: &Scope) {
    reg.lock().unwrap().ids.insert(name, s.id());
}

fn record_line(reg: &Shared, name: &'static str, line: u32) {
    reg.lock().unwrap().lines.insert(name, line);
}

/// Spawns a task into `s` that waits on an event nobody sets.
fn park(s: &Scope) {
    s.spawn(Event::new().wait());
}

/// The tree this test builds, in snapshot order (parents before children,
/// siblings oldest first):
///
/// ```text
/// root        running, 4 tasks (3 that opened children, 1 parked)
/// ├── plain   running, 3 tasks (2 parked, 1 that opened grand)
/// │   └── grand      running, 1 task
/// ├── linked  finishing [linked], 1 task (its body has returned)
/// └── shield  running [shielded, deadline in 250ms], 3 tasks
///     └── deep       running, 1 task
/// ```
///
/// Children are opened one after the other, so their order is known. The
/// clock is paused, and the deadline is set in the same poll of the root's
/// body that takes the snapshot, so the deadline shows exactly 250ms.
#[test]
fn a_known_tree_as_data_and_as_text() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Paused, 2));
    let reg: Shared = Arc::default();
    let snapshots: Arc<Mutex<Vec<TreeSnapshot>>> = Arc::default();

    let root_body = {
        let (rt, reg, snapshots) = (rt.clone(), reg.clone(), snapshots.clone());
        move |root: Scope| async move {
            record_id(&reg, "root", &root);
            park(&root);

            // plain, with a grandchild.
            let plain_open = Event::new();
            let plain_body = {
                let (reg, open) = (reg.clone(), plain_open.clone());
                move |plain: Scope| async move {
                    record_id(&reg, "plain", &plain);
                    park(&plain);
                    park(&plain);
                    let grand_open = Event::new();
                    let grand_body = {
                        let (reg, open) = (reg.clone(), grand_open.clone());
                        move |grand: Scope| async move {
                            record_id(&reg, "grand", &grand);
                            park(&grand);
                            open.set();
                            Event::new().wait().await;
                        }
                    };
                    let (line, grand) = (line!(), scope(grand_body));
                    record_line(&reg, "grand", line);
                    plain.spawn(grand);
                    grand_open.wait().await;
                    open.set();
                    Event::new().wait().await;
                }
            };
            let (line, plain) = (line!(), scope(plain_body));
            record_line(&reg, "plain", line);
            root.spawn(plain);
            plain_open.wait().await;

            // linked: its body returns at once, leaving one task.
            let linked_body = {
                let reg = reg.clone();
                move |linked: Scope| async move {
                    // Its task first: the spawn puts it in the tree,
                    // before the shield (siblings oldest first), and
                    // the root waits for its id below.
                    park(&linked);
                    record_id(&reg, "linked", &linked);
                }
            };
            let (line, linked) = (line!(), linked_scope(linked_body));
            record_line(&reg, "linked", line);
            root.spawn(linked);
            while reg.lock().unwrap().ids.len() < 4 {
                yield_now().await;
            }

            // shield, with a nested scope; its handle comes back here.
            let shield_open = Event::new();
            let shield_handle = Arc::new(OnceLock::new());
            let shield_body = {
                let (reg, open) = (reg.clone(), shield_open.clone());
                let handle = shield_handle.clone();
                move |shield: Scope| async move {
                    record_id(&reg, "shield", &shield);
                    let _ = handle.set(shield.clone());
                    park(&shield);
                    let deep_open = Event::new();
                    let deep_body = {
                        let (reg, open) = (reg.clone(), deep_open.clone());
                        move |deep: Scope| async move {
                            record_id(&reg, "deep", &deep);
                            park(&deep);
                            open.set();
                            Event::new().wait().await;
                        }
                    };
                    let (line, deep) = (line!(), scope(deep_body));
                    record_line(&reg, "deep", line);
                    shield.spawn(deep);
                    deep_open.wait().await;
                    open.set();
                    Event::new().wait().await;
                }
            };
            let (line, shield) = (line!(), shielded_scope(shield_body));
            record_line(&reg, "shield", line);
            root.spawn(shield);
            shield_open.wait().await;

            // Wait until the linked body has returned.
            let settled = |tree: &TreeSnapshot| {
                tree.scopes().len() == 6 && tree.scopes()[3].state() == ScopeState::Finishing
            };
            // (Bounded: if the tree is wrong, the checks below say how.)
            let give_up = Instant::now() + Duration::from_secs(10);
            while !settled(&rt.scope_tree()) && Instant::now() < give_up {
                yield_now().await;
            }

            // One poll: set the deadline, snapshot, cancel, snapshot.
            let shield = shield_handle.get().unwrap();
            shield.cancel_after(Duration::from_millis(250));
            let before = rt.scope_tree();
            root.cancel();
            let cancelling = rt.scope_tree();
            snapshots.lock().unwrap().extend([before, cancelling]);
            yield_now().await;
            unreachable!("a cancelled body is dropped at its next await");
        }
    };
    let (root_line, root) = (line!(), scope(root_body));
    record_line(&reg, "root", root_line);
    let out = rt.block_on(root);

    // Cancelling root did not reach the shield: the deadline ended it.
    assert!(out.is_err(), "root was cancelled");
    assert_eq!(rt.live_scopes(), 0);
    assert_eq!(rt.live_tasks(), 0);
    assert!(rt.scope_tree().is_empty());

    let reg = reg.lock().unwrap();
    let mut snapshots = snapshots.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(snapshots.len(), 2, "the root body took both snapshots");
    let cancelling = snapshots.pop().unwrap();
    let before = snapshots.pop().unwrap();

    // The data.
    let order = ["root", "plain", "grand", "linked", "shield", "deep"];
    let scopes = before.scopes();
    assert_eq!(scopes.len(), order.len(), "{before}");
    let expect = |i: usize,
                  depth: usize,
                  state: ScopeState,
                  linked: bool,
                  shielded: bool,
                  deadline: Option<Duration>,
                  tasks: usize| {
        let s: &ScopeSnapshot = &scopes[i];
        let name = order[i];
        assert_eq!(s.id(), reg.ids[name], "id of {name}");
        assert_eq!(s.depth(), depth, "depth of {name}");
        assert_eq!(s.state(), state, "state of {name}");
        assert_eq!(s.is_linked(), linked, "is_linked of {name}");
        assert_eq!(s.is_shielded(), shielded, "is_shielded of {name}");
        assert_eq!(s.deadline_in(), deadline, "deadline_in of {name}");
        assert_eq!(s.live_tasks(), tasks, "live_tasks of {name}");
        assert_eq!(s.location().file(), file!(), "file of {name}");
        assert_eq!(s.location().line(), reg.lines[name], "line of {name}");
        assert!(s.location().column() > 0);
    };
    use ScopeState::{Finishing, Running};
    let ms250 = Some(Duration::from_millis(250));
    expect(0, 0, Running, false, false, None, 4);
    expect(1, 1, Running, false, false, None, 3);
    expect(2, 2, Running, false, false, None, 1);
    expect(3, 1, Finishing, true, false, None, 1);
    expect(4, 1, Running, false, true, ms250, 3);
    expect(5, 2, Running, false, false, None, 1);

    // The text, exactly.
    let line = |i: usize| {
        let s = &scopes[i];
        let plural = if s.live_tasks() == 1 { "" } else { "s" };
        let flags = match (s.is_linked(), s.is_shielded(), s.deadline_in()) {
            (true, _, _) => " [linked]".to_string(),
            (_, true, Some(d)) => format!(" [shielded, deadline in {d:?}]"),
            _ => String::new(),
        };
        format!(
            "scope #{} {}{flags}, {} task{plural}, opened at {}",
            s.id(),
            s.state(),
            s.live_tasks(),
            s.location()
        )
    };
    let expected = format!(
        "{}\n├── {}\n│   └── {}\n├── {}\n└── {}\n    └── {}\n",
        line(0),
        line(1),
        line(2),
        line(3),
        line(4),
        line(5)
    );
    assert_eq!(before.to_string(), expected);
    let id = |name: &str| reg.ids[name];
    assert_eq!(
        without_locations(&before.to_string()),
        [
            format!("scope #{} running, 4 tasks", id("root")),
            format!("├── scope #{} running, 3 tasks", id("plain")),
            format!("│   └── scope #{} running, 1 task", id("grand")),
            format!("├── scope #{} finishing [linked], 1 task", id("linked")),
            format!(
                "└── scope #{} running [shielded, deadline in 250ms], 3 tasks",
                id("shield")
            ),
            format!("    └── scope #{} running, 1 task", id("deep")),
        ]
    );
    let root_at = format!("opened at {}:{root_line}:", file!());
    assert!(
        before
            .to_string()
            .lines()
            .next()
            .unwrap()
            .contains(&root_at),
        "{before}"
    );

    // Right after root.cancel(): root is cancelled but has not ended
    // (its body is still being polled, and the shield keeps running,
    // detached from the dropped task that awaited it).
    let by_id = |id: u64| cancelling.scopes().iter().find(|s| s.id() == id);
    let root_now = by_id(id("root")).expect("root is still in the tree");
    assert_eq!(root_now.state(), ScopeState::Cancelling, "{cancelling}");
    assert_eq!(cancelling.scopes()[0].id(), id("root"));
    let shield_now = by_id(id("shield")).expect("the shield outlives the cancel");
    assert_eq!(shield_now.state(), ScopeState::Detached, "{cancelling}");
    assert!(shield_now.is_shielded());
    assert_eq!(shield_now.depth(), 1);
    assert_eq!(shield_now.deadline_in(), ms250);
    let deep_now = by_id(id("deep")).expect("the cancel did not reach deep");
    assert_eq!(deep_now.state(), ScopeState::Running, "{cancelling}");
    assert_eq!(deep_now.depth(), 2);
    // The other scopes were cancelled, but one whose task was still
    // finishing a poll may linger, detached if its future was dropped.
    for s in cancelling.scopes() {
        if ![id("shield"), id("deep")].contains(&s.id()) {
            let state = s.state();
            let gone = [ScopeState::Cancelling, ScopeState::Detached];
            assert!(gone.contains(&state), "{cancelling}");
        }
    }
    let text = cancelling.to_string();
    assert!(
        text.starts_with(&format!("scope #{} cancelling, ", id("root"))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "└── scope #{} detached [shielded, deadline in 250ms], ",
            id("shield")
        )),
        "{text}"
    );
}

/// A scope cancelled while one of its tasks is being polled cannot drop
/// that task until the poll returns: it shows `cancelling` meanwhile.
#[test]
fn a_cancelled_scope_waiting_for_a_running_task_shows_cancelling() {
    let _hang = hang_guard();
    let rt = Arc::new(runtime(Clock::Real, 2));
    let spinning = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let out = rt.block_on(scope(|root| {
        let rt = rt.clone();
        async move {
            let handle = Arc::new(OnceLock::new());
            let child = {
                let (handle, spinning, release) =
                    (handle.clone(), spinning.clone(), release.clone());
                root.spawn(scope(move |child| async move {
                    let _ = handle.set(child.cancel_handle());
                    child.spawn(async move {
                        spinning.store(true, SeqCst);
                        // Busy inside one poll, so cancel cannot drop it.
                        while !release.load(SeqCst) {
                            std::hint::spin_loop();
                        }
                    });
                }))
            };
            while !spinning.load(SeqCst) {
                yield_now().await;
            }
            let child_handle = handle.get().unwrap();
            child_handle.cancel();
            let tree = rt.scope_tree();
            release.store(true, SeqCst);
            let child_out = child.await.expect("root's task was not cancelled");
            (tree, child_handle.is_cancelled(), child_out.is_err())
        }
    }));
    let (tree, child_cancelled, child_err) = out.expect("root was not cancelled");
    assert!(child_cancelled);
    // The spinning task finished in the poll the cancel waited for:
    // nothing was cut short, so the child keeps its value.
    assert!(!child_err, "the child scope ended Ok");

    let scopes = tree.scopes();
    assert_eq!(scopes.len(), 2, "{tree}");
    assert_eq!(scopes[0].state(), ScopeState::Running);
    assert_eq!(scopes[0].live_tasks(), 1);
    assert_eq!(scopes[1].state(), ScopeState::Cancelling);
    assert_eq!(scopes[1].depth(), 1);
    assert_eq!(scopes[1].live_tasks(), 1, "the spinning task is alive");
    assert_eq!(
        without_locations(&tree.to_string()),
        [
            format!("scope #{} running, 1 task", scopes[0].id()),
            format!("└── scope #{} cancelling, 1 task", scopes[1].id()),
        ]
    );
    assert!(rt.scope_tree().is_empty());
}

/// No scopes: the snapshot is empty and renders as `(no scopes)`.
#[test]
fn an_empty_runtime_renders_no_scopes() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let tree = rt.scope_tree();
    assert!(tree.is_empty());
    assert!(tree.scopes().is_empty());
    assert_eq!(tree.to_string(), "(no scopes)\n");

    // And again once a run has come and gone.
    let out = rt.block_on(scope(
        |s| async move { s.spawn(async { 1 }).await.unwrap() },
    ));
    assert_eq!(out, Ok(1));
    assert_eq!(rt.scope_tree().to_string(), "(no scopes)\n");

    // Nothing in this test binary uses the default runtime.
    assert_eq!(runtime::scope_tree().to_string(), "(no scopes)\n");
}

/// Scopes opened outside any scope are roots: two `block_on` calls on two
/// threads give two trees, oldest first, with no connectors.
#[test]
fn two_roots_render_side_by_side() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let stop = Event::new();
    let first_open = Event::new();
    let second_open = Event::new();
    thread::scope(|threads| {
        let rt = &rt;
        // A root with one waiting task and a nested scope whose body
        // has returned, leaving one waiting task.
        let open_root = |open: Event, after: Option<Event>| {
            let stop = stop.clone();
            threads.spawn(move || {
                if let Some(after) = after {
                    rt.block_on(after.wait());
                }
                rt.block_on(scope(|s| async move {
                    s.spawn(stop.wait());
                    let inner_stop = stop.clone();
                    s.spawn(scope(move |inner| async move {
                        inner.spawn(inner_stop.wait());
                    }));
                    open.set();
                    stop.wait().await;
                }))
            })
        };
        let first = open_root(first_open.clone(), None);
        let second = open_root(second_open.clone(), Some(first_open.clone()));
        rt.block_on(second_open.wait());
        let settled = |tree: &TreeSnapshot| {
            let states: Vec<_> = tree.scopes().iter().map(|s| s.state()).collect();
            use ScopeState::{Finishing, Running};
            states == [Running, Finishing, Running, Finishing]
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let tree = loop {
            let tree = rt.scope_tree();
            if settled(&tree) || Instant::now() > deadline {
                break tree;
            }
            thread::yield_now();
        };
        let depths: Vec<_> = tree.scopes().iter().map(|s| s.depth()).collect();
        assert_eq!(depths, [0, 1, 0, 1], "{tree}");
        let ids: Vec<_> = tree.scopes().iter().map(|s| s.id()).collect();
        assert!(ids[0] < ids[2], "older root first: {tree}");
        assert_eq!(
            without_locations(&tree.to_string()),
            [
                format!("scope #{} running, 2 tasks", ids[0]),
                format!("└── scope #{} finishing, 1 task", ids[1]),
                format!("scope #{} running, 2 tasks", ids[2]),
                format!("└── scope #{} finishing, 1 task", ids[3]),
            ]
        );
        stop.set();
        assert_eq!(first.join().unwrap(), Ok(()));
        assert_eq!(second.join().unwrap(), Ok(()));
    });
    assert!(rt.scope_tree().is_empty());
}

/// Snapshots taken by another OS thread while tasks run, spawn and end
/// are consistent trees.
#[test]
fn snapshots_from_another_thread_while_tasks_run() {
    let _hang = hang_guard();
    let rt = runtime(Clock::Real, 2);
    let watcher_ended = Counter::new();
    let churned = Counter::new();
    let (ready, is_ready) = mpsc::channel::<()>();

    thread::scope(|threads| {
        let rt = &rt;
        let (ended, churned_watch) = (watcher_ended.clone(), churned.clone());
        let watcher = threads.spawn(move || {
            // Stop the churn however this thread ends, even by a panic.
            let _stop = ended.on_drop();
            is_ready.recv().unwrap();
            let mut seen_full = 0;
            let mut taken = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            // Keep snapshotting until the tree was seen whole many
            // times and the tasks have churned a while.
            while (seen_full < 50 || churned_watch.get() < 200) && Instant::now() < deadline {
                let tree = rt.scope_tree();
                check_consistent(&tree);
                taken += 1;
                let scopes = tree.scopes();
                // Whole: the root, both groups, and the deadline set.
                let deadline = scopes.iter().find_map(ScopeSnapshot::deadline_in);
                if let (true, Some(left)) = (scopes.len() >= 3, deadline) {
                    seen_full += 1;
                    // The snapshot reads the clock just before it takes
                    // the tree lock, so a deadline set while it waits for
                    // the lock can show a little more than 3600s.
                    assert!(left <= Duration::from_secs(3601), "{tree}");
                    assert!(left > Duration::from_secs(3500), "{tree}");
                    assert!(tree.to_string().contains("deadline in "), "{tree}");
                }
            }
            (seen_full, taken)
        });

        let out = rt.block_on(scope(|root| {
            let (watcher_ended, churned) = (watcher_ended.clone(), churned.clone());
            async move {
                for worker in 0..2 {
                    let (watcher_ended, churned) = (watcher_ended.clone(), churned.clone());
                    root.spawn(scope(move |group| async move {
                        if worker == 0 {
                            group.cancel_after(Duration::from_secs(3600));
                        }
                        // Short-lived nested scopes and tasks, over and over.
                        while watcher_ended.get() == 0 {
                            let _ = scope(|s| async move {
                                s.spawn(async {
                                    yield_now().await;
                                });
                                yield_now().await;
                            })
                            .await;
                            churned.inc();
                        }
                    }));
                }
                ready.send(()).unwrap();
            }
        }));
        assert!(out.is_ok());
        let (seen_full, taken) = watcher.join().unwrap();
        assert!(seen_full > 0, "took {taken} snapshots, none whole");
    });
    assert!(rt.scope_tree().is_empty());
}

/// The invariants every snapshot must satisfy, whenever it was taken.
fn check_consistent(tree: &TreeSnapshot) {
    let scopes = tree.scopes();
    let rendered = tree.to_string();
    if scopes.is_empty() {
        assert_eq!(rendered, "(no scopes)\n");
        return;
    }
    assert_eq!(scopes[0].depth(), 0, "{tree}");
    for pair in scopes.windows(2) {
        assert!(pair[1].depth() <= pair[0].depth() + 1, "{tree}");
    }
    let mut ids: Vec<_> = scopes.iter().map(ScopeSnapshot::id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), scopes.len(), "ids are unique: {tree}");
    let lines: Vec<_> = rendered.lines().collect();
    assert_eq!(lines.len(), scopes.len(), "{tree}");
    for (line, s) in lines.iter().zip(scopes) {
        let prefix = 4 * s.depth();
        let (indent, rest) = line.split_at(line.char_indices().nth(prefix).unwrap().0);
        assert_eq!(indent.chars().count(), prefix);
        if s.depth() > 0 {
            assert!(
                indent.ends_with("├── ") || indent.ends_with("└── "),
                "{line:?}"
            );
        }
        assert!(rest.starts_with(&format!("scope #{} ", s.id())), "{line:?}");
        assert!(rest.ends_with(&s.location().to_string()), "{line:?}");
    }
}
