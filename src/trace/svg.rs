//! A [`Trace`] as an SVG timeline, readable without any tool.
//!
//! Time runs left to right. The upper band holds the scopes: each is a bar
//! from its opening to its end, placed on the first row below its parent's
//! that is free for that span, so a child sits under its parent and
//! siblings alive at once sit on rows of their own. The part of a bar after
//! the scope was cancelled is drawn in red, and each cancel walk is a red
//! line at the instant it began, spanning the rows of the scopes it reached.
//! The lower band has a row per worker (and one for the other threads, if a
//! poll ran there) with a mark for each task poll, coloured by the poll's
//! scope.

use super::{EventKind, ScopeKind, Trace, Track};
use std::collections::HashMap;
use std::fmt::Write;
use std::panic::Location;
use std::time::Duration;

const WIDTH: f64 = 960.0;
/// Room on the left for the rows' labels.
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 18.0;
const BAR: f64 = 14.0;
/// Height of the time axis under the scope band.
const AXIS: f64 = 28.0;

/// A scope's bar.
struct Bar {
    label: String,
    location: &'static Location<'static>,
    kind: ScopeKind,
    opened: Duration,
    ended: Option<Duration>,
    cancelled: Option<Duration>,
    row: usize,
}

/// Renders `trace`; see the module docs.
pub(super) fn render(trace: &Trace) -> String {
    // The axis starts at the first event, not at the runtime's start.
    let origin = trace.events.first().map_or(Duration::ZERO, |e| e.at);
    let end = trace
        .events
        .last()
        .map_or(Duration::ZERO, |e| e.at)
        .max(origin + Duration::from_micros(1));
    let span = (end - origin).as_secs_f64();
    let plot = WIDTH - LEFT - RIGHT;
    let x = |at: Duration| LEFT + at.saturating_sub(origin).as_secs_f64() / span * plot;

    // The scopes, their rows, and the cancel walks.
    let mut bars: Vec<Bar> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    // For each row, when the last bar placed on it ends.
    let mut rows_free_at: Vec<Duration> = Vec::new();
    // A walk: where it began, and the rows of the scopes it reached.
    let mut walks: Vec<(Duration, u64, Vec<usize>)> = Vec::new();
    let mut ends: HashMap<u64, Duration> = HashMap::new();
    for event in &trace.events {
        if let EventKind::ScopeEnded { scope } = event.kind {
            ends.insert(scope, event.at);
        }
    }
    for event in &trace.events {
        match &event.kind {
            EventKind::ScopeOpened {
                scope,
                parent,
                name,
                kind,
                location,
            } => {
                let ended = ends.get(scope).copied();
                let below = parent
                    .and_then(|p| index.get(&p))
                    .map_or(0, |&p| bars[p].row + 1);
                let row = (below..)
                    .find(|&r| rows_free_at.get(r).map_or(true, |&free| free <= event.at))
                    .unwrap_or(below);
                if rows_free_at.len() <= row {
                    rows_free_at.resize(row + 1, Duration::ZERO);
                }
                // A scope still open holds its row to the end.
                rows_free_at[row] = ended.unwrap_or(Duration::MAX);
                let label = match name {
                    Some(name) => format!("{name} #{scope}"),
                    None => format!("#{scope}"),
                };
                index.insert(*scope, bars.len());
                bars.push(Bar {
                    label,
                    location,
                    kind: *kind,
                    opened: event.at,
                    ended,
                    cancelled: None,
                    row,
                });
            }
            EventKind::ScopeCancelled { scope, by, .. } => {
                let Some(&i) = index.get(scope) else { continue };
                bars[i].cancelled.get_or_insert(event.at);
                let row = bars[i].row;
                match walks.iter_mut().rev().find(|w| w.1 == *by) {
                    Some(walk) if scope != by => walk.2.push(row),
                    _ => walks.push((event.at, *by, vec![row])),
                }
            }
            _ => {}
        }
    }
    let scope_rows = rows_free_at.len();

    // The polls, merged where they would overlap on screen.
    let tracks = trace.workers + 1;
    let track_of = |track: Track| match track {
        Track::Worker(w) => w.min(trace.workers),
        _ => trace.workers,
    };
    let mut marks: Vec<Vec<(f64, f64, u64)>> = vec![Vec::new(); tracks];
    let mut polling: Vec<Option<(Duration, u64)>> = vec![None; tracks];
    for event in &trace.events {
        let t = track_of(event.track);
        match event.kind {
            EventKind::PollStarted { scope, .. } => polling[t] = Some((event.at, scope)),
            EventKind::PollEnded { .. } => {
                if let Some((start, scope)) = polling[t].take() {
                    push_mark(&mut marks[t], x(start), x(event.at), scope);
                }
            }
            _ => {}
        }
    }
    for (t, open) in polling.iter().enumerate() {
        if let Some((start, scope)) = *open {
            push_mark(&mut marks[t], x(start), x(end), scope);
        }
    }

    // The other threads' row only when a poll ran there.
    let shown = if marks[trace.workers].is_empty() {
        trace.workers
    } else {
        tracks
    };
    let scopes_top = 30.0;
    let axis_top = scopes_top + scope_rows as f64 * ROW + 4.0;
    let workers_top = axis_top + AXIS + 16.0;
    let height = workers_top + shown as f64 * ROW + 34.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" style="max-width:100%;height:auto" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="18" font-size="13" font-weight="bold">scopes</text>
"#
    );
    for bar in &bars {
        let y = scopes_top + bar.row as f64 * ROW;
        let (x0, x1) = (x(bar.opened), x(bar.ended.unwrap_or(end)));
        let fill = match bar.kind {
            ScopeKind::Shielded => "#7fb3d5",
            ScopeKind::Linked => "#c39bd3",
            ScopeKind::Supervisor => "#82c79a",
            ScopeKind::Daemons => "#d7bde2",
            ScopeKind::Cleanups => "#f0b27a",
            _ => "#aab7b8",
        };
        let _ = write!(
            svg,
            r#"<g><title>{} ({}, {}): {} to {}</title><rect x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{BAR}" fill="{fill}"/>"#,
            escape(&bar.label),
            kind_name(bar.kind),
            escape(&bar.location.to_string()),
            time_label(bar.opened - origin),
            bar.ended
                .map_or("the end of the trace".into(), |e| time_label(e - origin)),
            (x1 - x0).max(0.5),
        );
        if let Some(cancelled) = bar.cancelled {
            let xc = x(cancelled).max(x0);
            let _ = write!(
                svg,
                r##"<rect x="{xc:.2}" y="{y:.1}" width="{:.2}" height="{BAR}" fill="#e74c3c" fill-opacity="0.55"/>"##,
                (x1 - xc).max(0.5),
            );
        }
        // The label goes inside the bar if it fits, else after it if the
        // row is free there, else only in the tooltip.
        let room = 6.5 * bar.label.chars().count() as f64 + 6.0;
        let next_on_row = bars
            .iter()
            .filter(|b| b.row == bar.row && b.opened >= bar.ended.unwrap_or(end))
            .map(|b| x(b.opened))
            .fold(WIDTH - RIGHT, f64::min);
        let at = if x1 - x0 >= room {
            Some(x0 + 3.0)
        } else if next_on_row - x1 >= room {
            Some(x1 + 3.0)
        } else {
            None
        };
        if let Some(at) = at {
            let _ = write!(
                svg,
                r#"<text x="{at:.2}" y="{:.1}">{}</text>"#,
                y + BAR - 3.0,
                escape(&bar.label)
            );
        }
        svg.push_str("</g>\n");
    }
    for (at, by, rows) in &walks {
        let top = rows.iter().min().copied().unwrap_or(0);
        let bottom = rows.iter().max().copied().unwrap_or(0);
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.2}" x2="{0:.2}" y1="{1:.1}" y2="{2:.1}" stroke="#c0392b" stroke-width="2"><title>cancel of #{by} at {4}, reaching {3} scope(s)</title></line>"##,
            x(*at),
            scopes_top + top as f64 * ROW - 2.0,
            scopes_top + bottom as f64 * ROW + BAR + 2.0,
            rows.len(),
            time_label(*at - origin),
        );
    }

    // The time axis.
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{axis_top:.1}" y2="{axis_top:.1}" stroke="#555"/>"##,
        WIDTH - RIGHT
    );
    let step = tick_step(end - origin);
    let mut tick = Duration::ZERO;
    while origin + tick <= end {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.2}" x2="{0:.2}" y1="{axis_top:.1}" y2="{1:.1}" stroke="#555"/><text x="{0:.2}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
            x(origin + tick),
            axis_top + 5.0,
            axis_top + 17.0,
            time_label(tick),
        );
        tick += step;
    }

    // The workers.
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">task polls</text>"#,
        workers_top - 6.0
    );
    for (t, marks) in marks.iter().enumerate().take(shown) {
        let y = workers_top + t as f64 * ROW;
        let label = if t < trace.workers {
            format!("worker {t}")
        } else {
            "other threads".to_string()
        };
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text><rect x="{LEFT}" y="{y:.1}" width="{plot:.1}" height="{BAR}" fill="#f4f6f6"/>"##,
            LEFT - 6.0,
            y + BAR - 3.0,
        );
        for &(x0, x1, scope) in marks {
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.2}" y="{y:.1}" width="{:.2}" height="{BAR}" fill="{}"/>"#,
                (x1 - x0).max(0.5),
                colour(scope),
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" fill="#555">grey: scope · purple: linked · blue: shielded · green: supervisor · red: cancelled{}</text>"##,
        height - 10.0,
        if trace.dropped > 0 {
            format!(" · {} events not kept", trace.dropped)
        } else {
            String::new()
        },
    );
    svg.push_str("</svg>\n");
    svg
}

/// Adds a poll mark, merging it into the last one if they touch on screen
/// and belong to the same scope: a run of short polls is one mark.
fn push_mark(marks: &mut Vec<(f64, f64, u64)>, x0: f64, x1: f64, scope: u64) {
    if let Some(last) = marks.last_mut() {
        if last.2 == scope && x0 - last.1 < 0.5 {
            last.1 = last.1.max(x1);
            return;
        }
    }
    marks.push((x0, x1, scope));
}

fn kind_name(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::Linked => "linked",
        ScopeKind::Shielded => "shielded",
        ScopeKind::Supervisor => "supervisor",
        ScopeKind::Daemons => "daemons",
        ScopeKind::Cleanups => "cleanups",
        _ => "scope",
    }
}

/// A colour per scope, spread around the hue circle.
fn colour(scope: u64) -> String {
    let hue = scope.wrapping_mul(137) % 360;
    format!("hsl({hue},55%,50%)")
}

/// A round step giving five to ten ticks over `end`.
fn tick_step(end: Duration) -> Duration {
    let nanos = end.as_nanos().max(1) as f64;
    let mut step = 10f64.powf((nanos / 10.0).log10().floor());
    while nanos / step > 10.0 {
        step *= if (nanos / (step * 2.0)) <= 10.0 {
            2.0
        } else {
            5.0
        };
    }
    Duration::from_nanos(step.max(1.0) as u64)
}

fn time_label(at: Duration) -> String {
    let nanos = at.as_nanos();
    if nanos == 0 {
        "0".to_string()
    } else if nanos % 1_000_000 == 0 {
        format!("{} ms", nanos / 1_000_000)
    } else if nanos >= 1_000_000 {
        format!("{:.3} ms", at.as_secs_f64() * 1e3)
    } else if nanos % 1_000 == 0 {
        format!("{} µs", nanos / 1_000)
    } else if nanos >= 1_000 {
        format!("{:.3} µs", at.as_secs_f64() * 1e6)
    } else {
        format!("{nanos} ns")
    }
}

/// Text made safe to put in XML.
/// Text for XML character data or a double-quoted attribute: markup
/// characters as entities, and the characters XML 1.0 forbids outright
/// (most C0 controls, U+FFFE, U+FFFF; not even a character reference may
/// name them) as U+FFFD, so that any scope name or path gives a well-formed
/// document.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out
}
