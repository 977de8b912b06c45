//! Recording a run (`Builder::record`, `Runtime::take_trace`): what the
//! events say about scopes, tasks and cancels, how full buffers behave,
//! and that both renderings are well-formed: the Chrome trace is JSON whose
//! slices balance on every track, the SVG is XML with every tag closed.
//!
//! The two formats are read back with the small parsers beside this file
//! (`json.rs`, `xml.rs`), so that the tests need no crate of their own.

use crate::support::{hang_guard, ms, secs, Countdown};
use crate::{json, xml};
use cancel_scope::runtime::{Builder, Runtime};
use cancel_scope::trace::{EventKind, ScopeKind, Trace, Track};
use cancel_scope::{linked_scope, scope, shielded_scope, CancelReason};
use cancel_scope::{move_on_after, sync::Event};
use std::collections::HashMap;

fn recording(workers: usize, per_thread: usize, paused: bool) -> Runtime {
    Builder::new()
        .worker_threads(workers)
        .start_paused(paused)
        .record(per_thread)
        .build()
        .expect("a runtime")
}

/// When each scope of `trace` opened and ended, by id.
fn scope_spans(trace: &Trace) -> HashMap<u64, (usize, Option<usize>, Option<u64>)> {
    let mut spans = HashMap::new();
    for (i, e) in trace.events().iter().enumerate() {
        match &e.kind {
            EventKind::ScopeOpened { scope, parent, .. } => {
                assert!(
                    spans.insert(*scope, (i, None, *parent)).is_none(),
                    "scope #{scope} opened twice"
                );
            }
            EventKind::ScopeEnded { scope } => {
                let span = spans
                    .get_mut(scope)
                    .unwrap_or_else(|| panic!("scope #{scope} ended before it opened"));
                assert!(span.1.replace(i).is_none(), "scope #{scope} ended twice");
            }
            _ => {}
        }
    }
    spans
}

/// The scopes a cancel reached, by the scope it started at.
fn cancels(trace: &Trace) -> Vec<(u64, u64, CancelReason)> {
    trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ScopeCancelled { scope, by, reason } => Some((*scope, *by, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Every scope of a finished run opened once and ended once, inside its
/// parent's span; every task spawned completed or was cancelled, once.
#[test]
fn every_scope_and_task_of_a_run_has_a_beginning_and_an_end() {
    let _hang = hang_guard();
    let rt = recording(2, 10_000, false);
    let out = rt.block_on(scope(|s| async move {
        for i in 0..4 {
            s.spawn(scope(move |inner| async move {
                for _ in 0..i {
                    inner.spawn(async { cancel_scope::task::yield_now().await });
                }
            }));
        }
        7
    }));
    assert_eq!(out, Ok(7));
    let trace = rt.take_trace();
    assert_eq!(trace.dropped(), 0);
    assert_eq!(trace.workers(), 2);

    let spans = scope_spans(&trace);
    assert_eq!(spans.len(), 5, "the root and four children");
    for (scope, &(opened, ended, parent)) in &spans {
        let ended = ended.unwrap_or_else(|| panic!("scope #{scope} never ended"));
        assert!(opened < ended);
        if let Some(parent) = parent {
            let (p_opened, p_ended, _) = spans[&parent];
            assert!(p_opened < opened, "#{scope} opened before its parent");
            assert!(ended < p_ended.unwrap(), "#{scope} ended after its parent");
        }
    }

    let mut spawned = HashMap::new();
    let mut finished = HashMap::new();
    for e in trace.events() {
        match e.kind {
            EventKind::TaskSpawned { task, .. } => *spawned.entry(task).or_insert(0) += 1,
            EventKind::TaskCompleted { task } | EventKind::TaskCancelled { task, .. } => {
                *finished.entry(task).or_insert(0) += 1
            }
            _ => {}
        }
    }
    // Four scope tasks and 0 + 1 + 2 + 3 yielding ones. (A task's
    // number is its address, which a later task may reuse: count.)
    assert_eq!(spawned.values().sum::<i32>(), 10);
    assert_eq!(spawned, finished);
}

/// On each worker's track, polls do not overlap: each start is followed by
/// its end before the next start, and times never go back.
#[test]
fn polls_on_a_worker_follow_one_another() {
    let _hang = hang_guard();
    let rt = recording(2, 100_000, false);
    let _ = rt.block_on(scope(|s| async move {
        for _ in 0..50 {
            s.spawn(async {
                for _ in 0..5 {
                    cancel_scope::task::yield_now().await;
                }
            });
        }
    }));
    let trace = rt.take_trace();
    let mut open: HashMap<Track, Option<u64>> = HashMap::new();
    let mut last = HashMap::new();
    let mut polls = 0;
    for e in trace.events() {
        if let Some(&before) = last.get(&e.track) {
            assert!(e.at >= before, "time went back on {:?}", e.track);
        }
        last.insert(e.track, e.at);
        match e.kind {
            EventKind::PollStarted { task, .. } => {
                assert!(
                    matches!(e.track, Track::Worker(0 | 1)),
                    "polled on {:?}",
                    e.track
                );
                let was = open.entry(e.track).or_default().replace(task);
                assert_eq!(was, None, "a poll began inside another");
                polls += 1;
            }
            EventKind::PollEnded { task } => {
                let was = open.entry(e.track).or_default().take();
                assert_eq!(was, Some(task), "a poll ended that had not begun");
            }
            _ => {}
        }
    }
    assert!(open.values().all(Option::is_none));
    assert!(
        polls >= 50 * 6,
        "{polls} polls of 50 tasks yielding 5 times"
    );
}

/// A cancel records each scope it reached with the scope it started at: a
/// subtree cancel reaches the children but not a shield; a linked scope's
/// cancel reaches its parent too.
#[test]
fn a_cancel_names_the_scope_it_started_at_and_misses_shields() {
    let _hang = hang_guard();
    let rt = recording(2, 10_000, false);
    let ids = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let ids2 = ids.clone();
    let _ = rt.block_on(scope(|root| async move {
        let inside = Countdown::new(2);
        for shielded in [false, true] {
            let (inside, ids) = (inside.clone(), ids2.clone());
            let body = move |s: cancel_scope::Scope| async move {
                ids.lock().push((s.id(), shielded));
                inside.arrive();
                std::future::pending::<()>().await
            };
            if shielded {
                let around = root.cancel_handle();
                root.spawn(async move {
                    let _ = shielded_scope(move |s| {
                        let s2 = s.clone();
                        async move {
                            // The shield ends itself once the root is
                            // cancelled around it.
                            s2.spawn(async move {
                                around.cancelled().await;
                                s.cancel();
                            });
                            body(s2).await
                        }
                    })
                    .await;
                });
            } else {
                root.spawn(scope(body));
            }
        }
        inside.wait().await;
        root.cancel();
    }));
    let trace = rt.take_trace();
    let root_id = match trace.events()[0].kind {
        EventKind::ScopeOpened { scope, .. } => scope,
        ref other => panic!("the first event is {other:?}"),
    };
    let ids = ids.lock().clone();
    let (plain, shield) = (
        ids.iter().find(|i| !i.1).unwrap().0,
        ids.iter().find(|i| i.1).unwrap().0,
    );
    let reached = cancels(&trace);
    assert!(reached.contains(&(root_id, root_id, CancelReason::Explicit)));
    assert!(reached.contains(&(plain, root_id, CancelReason::Ancestor)));
    assert!(
        !reached.iter().any(|c| c.0 == shield && c.1 == root_id),
        "the root's cancel reached the shield: {reached:?}"
    );
    assert!(reached.contains(&(shield, shield, CancelReason::Explicit)));

    // A linked scope's cancel goes up.
    let _ = rt.block_on(scope(|_| async {
        let _ = linked_scope(|inner| async move { inner.cancel() }).await;
    }));
    let trace = rt.take_trace();
    let (outer, inner) = match (&trace.events()[0].kind, &trace.events()[1].kind) {
        (
            EventKind::ScopeOpened { scope: a, .. },
            EventKind::ScopeOpened { scope: b, kind, .. },
        ) => {
            assert_eq!(*kind, ScopeKind::Linked);
            (*a, *b)
        }
        other => panic!("the first events are {other:?}"),
    };
    let reached = cancels(&trace);
    assert!(
        reached.contains(&(inner, inner, CancelReason::Explicit)),
        "{reached:?}"
    );
    assert!(
        reached.contains(&(outer, inner, CancelReason::LinkedChild)),
        "the linked cancel did not reach the parent: {reached:?}"
    );
}

/// On a paused clock, a deadline's firing and the jumps of the clock are
/// recorded, and the scope the deadline cancelled says why.
#[test]
fn deadlines_and_clock_jumps_are_recorded() {
    let _hang = hang_guard();
    let rt = recording(1, 10_000, true);
    let out = rt.block_on(move_on_after(secs(30), |_| cancel_cancel_forever()));
    assert!(out.is_err());
    let trace = rt.take_trace();
    let fired: Vec<u64> = trace
        .events()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::DeadlineFired { scope } => Some(scope),
            _ => None,
        })
        .collect();
    assert_eq!(fired.len(), 1);
    let jumps: Vec<_> = trace
        .events()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ClockJumped { by } => Some(by),
            _ => None,
        })
        .collect();
    assert_eq!(jumps, [secs(30)]);
    assert!(cancels(&trace)
        .iter()
        .any(|c| c.0 == fired[0] && matches!(c.2, CancelReason::Deadline { .. })));
}

async fn cancel_cancel_forever() {
    std::future::pending::<()>().await
}

/// A full buffer keeps the first events and counts the rest; taking a
/// trace empties the buffers; a runtime that does not record gives an
/// empty trace.
#[test]
fn full_buffers_keep_the_beginning_and_count_the_rest() {
    let _hang = hang_guard();
    let rt = recording(1, 8, false);
    let _ = rt.block_on(scope(|s| async move {
        for _ in 0..100 {
            s.spawn(async {});
        }
    }));
    let trace = rt.take_trace();
    // Two buffers (the worker's and the other threads'), eight each.
    assert!(
        trace.events().len() <= 16,
        "{} events",
        trace.events().len()
    );
    assert!(trace.dropped() >= 100, "{} dropped", trace.dropped());
    assert!(matches!(
        trace.events()[0].kind,
        EventKind::ScopeOpened { .. }
    ));
    let again = rt.take_trace();
    assert!(again.events().is_empty() && again.dropped() == 0);
    // Afterwards the buffers take events again.
    let _ = rt.block_on(scope(|_| async {}));
    assert_eq!(rt.take_trace().events().len(), 2);

    let quiet = Builder::new().worker_threads(1).build().unwrap();
    let _ = quiet.block_on(scope(|s| async move { s.spawn(async {}).await }));
    let trace = quiet.take_trace();
    assert!(trace.events().is_empty() && trace.dropped() == 0);
    assert!(json::parse(&trace.to_chrome_json()).is_ok());
    assert!(xml::check(&trace.to_svg()).is_ok());
}

/// A name with quotes, backslashes, markup and a newline, to be escaped.
const AWKWARD: &str = "a \"quoted\" \\ <b>&amp;</b>\n é";

/// A run with scopes of every kind, cancels, a deadline and tasks on two
/// workers, named awkwardly: the material for the rendering tests.
fn varied_run() -> Trace {
    let rt = recording(2, 100_000, false);
    let go = Event::new();
    let _ = rt.block_on(
        scope(|s| async move {
            let go2 = go.clone();
            s.spawn(shielded_scope(move |_| async move { go2.wait().await }).named("shield"));
            let _ = move_on_after(ms(2), |_| std::future::pending::<()>())
                .named("deadline")
                .await;
            let _ = scope(|inner| async move {
                for _ in 0..20 {
                    inner.spawn(async {
                        for _ in 0..3 {
                            cancel_scope::task::yield_now().await;
                        }
                    });
                }
                let _ = linked_scope(|l| async move { l.cancel() }).await;
            })
            .named("linked parent")
            .await;
            go.set();
            s.cancel();
        })
        .named(AWKWARD),
    );
    rt.take_trace()
}

/// The Chrome trace is JSON of the expected shape: on every track `B` and
/// `E` balance and nest and times never go back; every scope's async slice
/// (`b`) has one end (`e`); every flow start has its finish; names come
/// out as they went in.
#[test]
fn the_chrome_trace_is_json_whose_slices_balance() {
    let _hang = hang_guard();
    let trace = varied_run();
    let text = trace.to_chrome_json();
    let doc = json::parse(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    let events = doc
        .get("traceEvents")
        .and_then(json::Value::array)
        .expect("traceEvents");
    let mut depth: HashMap<i64, i64> = HashMap::new();
    let mut last_ts: HashMap<i64, f64> = HashMap::new();
    let mut scopes: HashMap<i64, i64> = HashMap::new();
    let mut flows: HashMap<i64, i64> = HashMap::new();
    let mut names = Vec::new();
    for e in events {
        let ph = e.get("ph").and_then(json::Value::string).expect("ph");
        let tid = e.get("tid").and_then(json::Value::number).map(|t| t as i64);
        if let Some(name) = e.get("name").and_then(json::Value::string) {
            names.push(name.to_string());
        }
        let ts = e.get("ts").and_then(json::Value::number);
        match ph {
            "B" | "E" => {
                let tid = tid.expect("a slice has a track");
                let ts = ts.expect("a slice has a time");
                assert!(
                    ts >= last_ts.get(&tid).copied().unwrap_or(0.0),
                    "time went back"
                );
                last_ts.insert(tid, ts);
                let d = depth.entry(tid).or_default();
                *d += if ph == "B" { 1 } else { -1 };
                assert!(*d >= 0, "an E without its B on track {tid}");
            }
            "b" | "e" => {
                let id = e.get("id").and_then(json::Value::number).expect("id") as i64;
                *scopes.entry(id).or_default() += if ph == "b" { 1 } else { -1 };
            }
            "s" | "f" => {
                let id = e.get("id").and_then(json::Value::number).expect("id") as i64;
                *flows.entry(id).or_default() += if ph == "s" { 1 } else { -1 };
            }
            "X" | "i" | "M" => {}
            other => panic!("unexpected phase {other}"),
        }
    }
    assert!(
        depth.values().all(|&d| d == 0),
        "unbalanced slices: {depth:?}"
    );
    assert!(
        scopes.values().all(|&d| d == 0),
        "unbalanced scopes: {scopes:?}"
    );
    assert!(
        flows.values().all(|&d| d == 0),
        "unbalanced flows: {flows:?}"
    );
    assert_eq!(scopes.len(), 5, "five scopes, the linked one among them");
    assert!(!flows.is_empty(), "a cancel reached other scopes: arrows");
    assert!(names.iter().any(|n| n.starts_with(AWKWARD)), "{names:?}");
}

/// The SVG is well-formed XML, with a bar (and its tooltip) per scope,
/// the awkward name escaped, and a row per worker.
#[test]
fn the_svg_is_well_formed_and_draws_each_scope() {
    let _hang = hang_guard();
    let trace = varied_run();
    let svg = trace.to_svg();
    let texts = xml::check(&svg).unwrap_or_else(|e| panic!("not XML ({e}):\n{svg}"));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let titles: Vec<&String> = texts
        .iter()
        .filter(|t| t.0 == "title")
        .map(|t| &t.1)
        .collect();
    for name in [AWKWARD, "shield", "deadline", "linked parent"] {
        assert!(
            titles.iter().any(|t| t.starts_with(name)),
            "no tooltip for {name:?} in {titles:?}"
        );
    }
    let labels: Vec<&String> = texts
        .iter()
        .filter(|t| t.0 == "text")
        .map(|t| &t.1)
        .collect();
    assert!(labels.iter().any(|l| *l == "worker 0") && labels.iter().any(|l| *l == "worker 1"));
}

/// Names no document format expects: a terminal colour code, NUL and the
/// other C0 controls XML forbids, the two noncharacters XML forbids, and
/// markup. Every renderer gives a well-formed document for them: the SVG
/// shows U+FFFD for what XML cannot hold at all, the Chrome trace's JSON
/// carries them escaped (and so exactly), and the tree view prints them
/// escaped, never raw.
#[test]
fn hostile_names_give_well_formed_documents_in_every_renderer() {
    const HOSTILE: [&str; 3] = [
        "\u{1b}[31mred\u{1b}[0m",
        "nul\u{0} bell\u{7} vt\u{b} ff\u{c} us\u{1f}",
        "\u{fffe}\u{ffff}</title><x a=\"&",
    ];
    let _hang = hang_guard();
    let rt = recording(1, 10_000, false);
    let _ = rt.block_on(
        scope(|_| async {
            let _ = scope(|_| async {}).named(HOSTILE[1]).await;
            let _ = scope(|_| async {}).named(HOSTILE[2]).await;
        })
        .named(HOSTILE[0]),
    );
    let trace = rt.take_trace();

    let svg = trace.to_svg();
    let texts = xml::check(&svg).unwrap_or_else(|e| panic!("not XML ({e}):\n{svg:?}"));
    let titles: Vec<&String> = texts
        .iter()
        .filter(|t| t.0 == "title")
        .map(|t| &t.1)
        .collect();
    let shown = |name: &str| -> String {
        name.chars()
            .map(|c| match c {
                '\t' | '\n' | '\r' => c,
                '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
                c => c,
            })
            .collect()
    };
    for name in HOSTILE {
        assert!(
            titles.iter().any(|t| t.starts_with(&shown(name))),
            "no tooltip for {name:?} in {titles:?}"
        );
    }

    let chrome = trace.to_chrome_json();
    let doc = json::parse(&chrome).unwrap_or_else(|e| panic!("not JSON ({e}):\n{chrome:?}"));
    let names: Vec<&str> = doc
        .get("traceEvents")
        .and_then(json::Value::array)
        .expect("traceEvents")
        .iter()
        .filter_map(|e| e.get("name").and_then(json::Value::string))
        .collect();
    for name in HOSTILE {
        assert!(
            names.iter().any(|n| n.starts_with(name)),
            "{name:?} not carried exactly in {names:?}"
        );
    }
    // The tree view of a live scope named so.
    let _hang = hang_guard();
    let rt = &recording(1, 100, false);
    let printed = rt
        .block_on(scope(|_| async move { rt.scope_tree().to_string() }).named(HOSTILE[1]))
        .unwrap();
    assert!(
        !printed.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in the tree view: {printed:?}"
    );
}
