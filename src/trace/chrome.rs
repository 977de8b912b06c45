//! A [`Trace`] in the Chrome trace event format: a JSON object whose
//! `traceEvents` Perfetto and `chrome://tracing` draw.
//!
//! - A track (`tid`) per worker, and one for the other threads, each named
//!   by a metadata event; task polls are `B`/`E` slices on their worker's
//!   track.
//! - Each scope is an async slice (`b`/`e`, its own id), named after the
//!   scope, with its location, parent and kind as arguments; a scope still
//!   open when the trace was taken ends at the trace's last instant.
//! - Each scope a cancel reached gets a short `X` slice on the cancelling
//!   thread's track, and a flow arrow (`s` to `f`) from the slice of the
//!   scope the cancel started at; steals, deadlines, clock jumps and the
//!   tasks' spawns, completions and cancels are instant events.
//!
//! Times are microseconds since the recording started.

use super::{Event, EventKind, ScopeKind, Trace, Track};
use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

/// Renders `trace`; see the module docs.
pub(super) fn render(trace: &Trace) -> String {
    let mut out = Json::default();
    let other = trace.workers;
    out.meta("process_name", 0, "cancel-scope run");
    for w in 0..trace.workers {
        out.meta("thread_name", w, &format!("worker {w}"));
    }
    out.meta("thread_name", other, "other threads");
    let tid = |track: Track| match track {
        Track::Worker(w) => w,
        _ => other,
    };
    let end = trace.events.last().map_or(Duration::ZERO, |e| e.at);
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut open_scopes: Vec<u64> = Vec::new();
    let mut open_polls: HashMap<usize, usize> = HashMap::new();
    // Where each cancel walk's first cancel happened, for its arrows.
    let mut walks: HashMap<u64, (Duration, usize)> = HashMap::new();
    let mut flow = 0u64;
    for Event { at, track, kind } in &trace.events {
        let (ts, tid) = (*at, tid(*track));
        match kind {
            EventKind::ScopeOpened {
                scope,
                parent,
                name,
                location,
                kind,
            } => {
                let label = match name {
                    Some(name) => format!("{name} #{scope}"),
                    None => format!("scope #{scope}"),
                };
                let kind = match kind {
                    ScopeKind::Plain => "plain",
                    ScopeKind::Linked => "linked",
                    ScopeKind::Shielded => "shielded",
                    ScopeKind::Supervisor => "supervisor",
                    ScopeKind::Daemons => "daemons",
                    ScopeKind::Cleanups => "cleanups",
                    #[allow(unreachable_patterns)]
                    _ => "other",
                };
                let parent = parent.map_or_else(|| "none".to_string(), |p| format!("#{p}"));
                out.event(format_args!(
                    r#""ph":"b","cat":"scope","id":{scope},"pid":1,"tid":{tid},"ts":{},"name":{},"args":{{"location":{},"parent":{},"kind":{}}}"#,
                    micros(ts),
                    string(&label),
                    string(&location.to_string()),
                    string(&parent),
                    string(kind),
                ));
                names.insert(*scope, label);
                open_scopes.push(*scope);
            }
            EventKind::ScopeEnded { scope } => {
                let Some(i) = open_scopes.iter().position(|s| s == scope) else {
                    continue; // its opening was not recorded
                };
                open_scopes.remove(i);
                out.scope_end(*scope, &names[scope], tid, ts);
            }
            EventKind::ScopeCancelled { scope, reason, by } => {
                let label = names
                    .get(scope)
                    .cloned()
                    .unwrap_or_else(|| format!("scope #{scope}"));
                out.event(format_args!(
                    r#""ph":"X","cat":"cancel","pid":1,"tid":{tid},"ts":{},"dur":1,"name":{},"args":{{"reason":{}}}"#,
                    micros(ts),
                    string(&format!("cancelled: {label}")),
                    string(&reason.to_string()),
                ));
                if scope == by {
                    walks.insert(*by, (ts, tid));
                } else if let Some(&(start, start_tid)) = walks.get(by) {
                    flow += 1;
                    out.event(format_args!(
                        r#""ph":"s","cat":"cancel","id":{flow},"pid":1,"tid":{start_tid},"ts":{},"name":"cancel""#,
                        micros(start),
                    ));
                    out.event(format_args!(
                        r#""ph":"f","bp":"e","cat":"cancel","id":{flow},"pid":1,"tid":{tid},"ts":{},"name":"cancel""#,
                        micros(ts),
                    ));
                }
            }
            EventKind::PollStarted { task, scope } => {
                *open_polls.entry(tid).or_default() += 1;
                out.event(format_args!(
                    r#""ph":"B","cat":"poll","pid":1,"tid":{tid},"ts":{},"name":{},"args":{{"task":{task}}}"#,
                    micros(ts),
                    string(&format!("poll: task of scope #{scope}")),
                ));
            }
            EventKind::PollEnded { .. } => {
                let open = open_polls.entry(tid).or_default();
                if *open == 0 {
                    continue; // its start was not recorded
                }
                *open -= 1;
                out.event(format_args!(
                    r#""ph":"E","pid":1,"tid":{tid},"ts":{}"#,
                    micros(ts)
                ));
            }
            other => {
                let name = match other {
                    EventKind::TaskSpawned { scope, .. } => format!("spawn into #{scope}"),
                    EventKind::TaskCompleted { .. } => "task completed".to_string(),
                    EventKind::TaskCancelled { scope, .. } => {
                        format!("task of #{scope} cancelled")
                    }
                    EventKind::Steal { from } => format!("stole from worker {from}"),
                    EventKind::DeadlineFired { scope } => format!("deadline of #{scope}"),
                    EventKind::ClockJumped { by } => format!("clock jumped {by:?}"),
                    _ => format!("{other:?}"),
                };
                out.event(format_args!(
                    r#""ph":"i","s":"t","pid":1,"tid":{tid},"ts":{},"name":{}"#,
                    micros(ts),
                    string(&name),
                ));
            }
        }
    }
    // Close what the trace left open, at its last instant.
    for (tid, open) in open_polls {
        for _ in 0..open {
            out.event(format_args!(
                r#""ph":"E","pid":1,"tid":{tid},"ts":{}"#,
                micros(end)
            ));
        }
    }
    for scope in open_scopes.into_iter().rev() {
        out.scope_end(scope, &names[&scope], other, end);
    }
    out.finish(trace.dropped)
}

/// The JSON being written.
#[derive(Default)]
struct Json {
    events: String,
}

impl Json {
    fn event(&mut self, fields: std::fmt::Arguments<'_>) {
        if !self.events.is_empty() {
            self.events.push_str(",\n");
        }
        let _ = write!(self.events, "{{{fields}}}");
    }

    fn meta(&mut self, what: &str, tid: usize, name: &str) {
        self.event(format_args!(
            r#""ph":"M","pid":1,"tid":{tid},"name":{},"args":{{"name":{}}}"#,
            string(what),
            string(name)
        ));
    }

    fn scope_end(&mut self, scope: u64, label: &str, tid: usize, at: Duration) {
        self.event(format_args!(
            r#""ph":"e","cat":"scope","id":{scope},"pid":1,"tid":{tid},"ts":{},"name":{}"#,
            micros(at),
            string(label)
        ));
    }

    fn finish(self, dropped: u64) -> String {
        format!(
            "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"dropped_events\":{dropped}}},\"traceEvents\":[\n{}\n]}}\n",
            self.events
        )
    }
}

/// Microseconds, as the format wants them, to the nanosecond.
fn micros(at: Duration) -> String {
    format!("{}.{:03}", at.as_micros(), at.subsec_nanos() % 1000)
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
