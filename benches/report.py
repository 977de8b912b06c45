#!/usr/bin/env python3
"""Turns benchmark runs into the tables and the chart of BENCHMARKS.md.

Reads criterion's results (<dir>/<group>/<runtime>/<size>/new/) from one
or more criterion directories (copies of it, one per full run), and, from
the first directory, memory.json (the memory benchmark), counts.json and
growth.json (benches/count.py); and cancel_latency.json (the cancel_latency
benchmark) from every directory that has one. Prints markdown:

- per benchmark, our time per unit (task, group, scope, round) and each
  peer's ratio to ours, the median over the runs of the ratio measured
  within one run (peer time / our time: above 1 means cancel-scope is
  faster) with the lowest and highest of the runs, and the peer's time;
  then the idiomatic entries the same way; with --spread, every run's
  ratios;
- memory, instruction counts, the growth curve, the cancel latencies
  (p50 and p99, and their goals), and the targets.

Writes the chart (per-unit cost of every runtime, grouped by workload, on
a log scale, medians over the runs; for cancel_latency, the p50) as an SVG,
by default to benches/chart.svg beside this script.

Usage: python3 benches/report.py [--spread] [--svg PATH] [CRITERION_DIR ...]

The directory defaults to what criterion uses: $CRITERION_HOME, else
$CARGO_TARGET_DIR/criterion, else target/criterion. python3's standard
library only.
"""

import json
import math
import os
import sys
from pathlib import Path

OURS = "cancel_scope"
# The group the cancel_latency table's medians join, for the tables and
# the chart: one "unit" is one cancel, its time the p50 of its trials (the
# p99s are in the latency table; on a shared machine they measure its
# load as much as the runtimes).
LATENCY = "cancel_latency_p50"
LOADS = ["ready", "slice"]
TRIGGERS = ["cancel", "deadline"]
PEERS = ["tokio", "tokio_token", "smol", "limit"]
IDIOMATIC = ["tokio_idiomatic", "tokio_token_idiomatic", "smol_idiomatic"]
GROUPS = [
    "cancel_flat",
    "cancel_tree",
    "cancel_linked",
    "scope_empty",
    "spawn_join",
    "spawn_join_contended",
    "pingpong",
    "yield_many",
    LATENCY,
    "limit",
]
COLOURS = {
    "cancel_scope": "#1b7837",
    "tokio": "#2166ac",
    "tokio_token": "#67a9cf",
    "smol": "#d6604d",
    "limit": "#999999",
}


def units(group, size):
    """(how many units one iteration handles, the unit's name)."""
    if group == "cancel_tree":
        fanout, depth = (int(x) for x in size.split("x"))
        return sum(fanout ** l for l in range(depth + 1)), "group"
    if group == "scope_empty":
        return 1, "scope"
    if group == "cancel_linked":
        return int(size), "linked scope"
    if group == "spawn_join_contended":
        return 2 * int(size), "task"
    if group == "pingpong":
        return int(size), "round trip"
    if group == "yield_many":
        return int(size), "yield"
    if group == LATENCY:
        return 1, "cancel"
    return int(size), "task"


def criterion_dirs(args):
    if args:
        return [Path(a) for a in args]
    if os.environ.get("CRITERION_HOME"):
        return [Path(os.environ["CRITERION_HOME"])]
    if os.environ.get("CARGO_TARGET_DIR"):
        return [Path(os.environ["CARGO_TARGET_DIR"]) / "criterion"]
    return [Path("target/criterion")]


def load(root):
    """{(group, size): {runtime: median ns per unit}}"""
    rows = {}
    for bench in root.glob("*/*/*/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        group, size = meta["group_id"], meta["value_str"]
        n, _ = units(group, size)
        rows.setdefault((group, size), {})[meta["function_id"]] = (
            est["median"]["point_estimate"] / n)
    return rows


def median(values):
    values = sorted(v for v in values if v is not None)
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def size_order(size):
    if size.count("/") == 2:  # cancel_latency: load/trigger/tasks
        load, trigger, n = size.split("/")
        return (2, LOADS.index(load), TRIGGERS.index(trigger), int(n))
    head = size.split("x")[0]
    try:
        return (0, int(head), size)
    except ValueError:
        return (1, 0, ["cancel", "create_end", "create_cancel_end"].index(size)
                if size in ("cancel", "create_end", "create_cancel_end") else 9)


def ordered_keys(keys):
    out = []
    for group in GROUPS:
        out += sorted((k for k in keys if k[0] == group), key=lambda k: size_order(k[1]))
    return out


def ratio(run, key, peer):
    r = run.get(key, {})
    if OURS in r and peer in r:
        return r[peer] / r[OURS]
    return None


class Report:
    def __init__(self, runs):
        self.runs = runs
        self.keys = ordered_keys(set().union(*(run.keys() for run in runs)))

    def time(self, key, rt):
        return median(run.get(key, {}).get(rt) for run in self.runs)

    def ratio(self, key, peer):
        return median(ratio(run, key, peer) for run in self.runs)

    def table(self, peers, with_ours=True):
        head = "| benchmark | per |" + (f" {OURS} |" if with_ours else "")
        print(head + "".join(f" {p} |" for p in peers))
        print("|---|---|" + ("---:|" if with_ours else "") + "---:|" * len(peers))
        for key in self.keys:
            if not any(self.time(key, p) is not None for p in peers):
                continue
            _, unit = units(*key)
            ours = self.time(key, OURS)
            cells = [fmt_ns(ours) if ours is not None else "–"] if with_ours else []
            for p in peers:
                t, r = self.time(key, p), self.ratio(key, p)
                if t is None:
                    cells.append("–")
                elif r is None:
                    cells.append(fmt_ns(t))
                else:
                    rs = [v for v in (ratio(run, key, p) for run in self.runs) if v is not None]
                    spread = f" {min(rs):.2f}–{max(rs):.2f}," if len(rs) > 1 else ""
                    cells.append(f"**{r:.2f}×**{spread} {fmt_ns(t)}")
            print(f"| {key[0]}/{key[1]} | {unit} | " + " | ".join(cells) + " |")

    def spread(self):
        print("| benchmark |" + "".join(f" vs {p} |" for p in PEERS))
        print("|---|" + "---|" * len(PEERS))
        for key in self.keys:
            cells = []
            for p in PEERS:
                rs = [ratio(run, key, p) for run in self.runs]
                cells.append("–" if all(r is None for r in rs)
                             else " / ".join("–" if r is None else f"{r:.2f}" for r in rs))
            if any(c != "–" for c in cells):
                print(f"| {key[0]}/{key[1]} | " + " | ".join(cells) + " |")


def print_memory(root):
    f = root / "memory.json"
    if not f.exists():
        return
    memory = json.loads(f.read_text())
    print(f"\nMemory per parked task ({memory['tasks']:,} tasks):\n")
    print("| runtime | heap bytes/task | RSS bytes/task |")
    print("|---|---:|---:|")
    for rt, m in memory["runtimes"].items():
        print(f"| {rt} | {m['heap']:.0f} | {m['rss']:.0f} |")
    return memory


def print_counts(root):
    f = root / "counts.json"
    if not f.exists():
        return
    rows = json.loads(f.read_text())["counts"]
    runtimes = [rt for rt in [OURS] + PEERS + IDIOMATIC if any(r["runtime"] == rt for r in rows)]
    print("\nInstructions per unit (callgrind, every thread):\n")
    print("| workload | per |" + "".join(f" {rt} |" for rt in runtimes))
    print("|---|---|" + "---:|" * len(runtimes))
    order = []
    for r in rows:
        if r["row"] not in order:
            order.append(r["row"])
    for row in order:
        mine = {r["runtime"]: r for r in rows if r["row"] == row}
        unit = next(iter(mine.values()))["unit"]
        cells = [f"{mine[rt]['per_unit']:,.0f}" if rt in mine else "–" for rt in runtimes]
        print(f"| {row} | {unit} | " + " | ".join(cells) + " |")


def print_growth(root):
    f = root / "growth.json"
    if not f.exists():
        return
    data = json.loads(f.read_text())
    rows = data["growth"]
    runtimes = []
    for r in rows:
        if r["runtime"] not in runtimes:
            runtimes.append(r["runtime"])
    sizes = sorted({r["tasks"] for r in rows})
    print("\nCancel of N parked tasks, per task: instructions / median ns:\n")
    print("| tasks |" + "".join(f" {rt} |" for rt in runtimes))
    print("|---:|" + "---:|" * len(runtimes))
    for n in sizes:
        cells = []
        for rt in runtimes:
            r = next((r for r in rows if r["runtime"] == rt and r["tasks"] == n), None)
            cells.append("–" if r is None else f"{r['instructions']:,.0f} / {r['ns']:.0f} ns")
        print(f"| {n:,} | " + " | ".join(cells) + " |")


def load_latency(roots):
    """The cancel_latency tables of every run that has one, merged:
    {(load, trigger, tasks): {runtime: row}}, each row's p50 and p99 the
    median over the runs (and the runs' p99s kept, for their spread)."""
    tables = [json.loads((r / "cancel_latency.json").read_text())
              for r in roots if (r / "cancel_latency.json").exists()]
    if not tables:
        return None
    rows = {}
    for data in tables:
        for row in data["cases"]:
            key = (row["load"], row["trigger"], row["tasks"])
            rows.setdefault(key, {}).setdefault(row["runtime"], []).append(row)
    cases = {}
    for key, by_rt in rows.items():
        for rt, rs in by_rt.items():
            cases.setdefault(key, {})[rt] = {
                "p50_ns": median(r["p50_ns"] for r in rs),
                "p99_ns": median(r["p99_ns"] for r in rs),
                "p99s": [r["p99_ns"] for r in rs],
                "trials": sum(r["trials"] for r in rs),
            }
    data = dict(tables[0], runs=len(tables))
    return data, cases


def print_latency(rep, latency):
    """p50 and p99 of every cancel_latency case, the peers' as ratios to
    ours, then the goals."""
    if latency is None:
        return
    data, cases = latency
    peers = ["tokio", "tokio_token"]
    runs = data["runs"]
    over = f"the median of {runs} runs' p50 and p99" if runs > 1 else "one run"
    trials = sorted({r["trials"] for c in cases.values() for r in c.values()})
    print(f"\nCancel latency, p50 / p99 ({over}; trials per case, all runs: "
          f"{', '.join(map(str, trials))}; a peer's ratios are its p50 and p99 over ours):\n")
    print(f"| case | {OURS} |" + "".join(f" {p} |" for p in peers))
    print("|---|---:|" + "---:|" * len(peers))
    for key in sorted(cases, key=lambda k: (LOADS.index(k[0]), TRIGGERS.index(k[1]), k[2])):
        row = cases[key]
        ours = row.get(OURS)
        cells = [f"{fmt_ns(ours['p50_ns'])} / {fmt_ns(ours['p99_ns'])}" if ours else "–"]
        for p in peers:
            r = row.get(p)
            if r is None:
                cells.append("–")
            elif ours:
                cells.append(f"**{r['p50_ns'] / ours['p50_ns']:.1f}× / "
                             f"{r['p99_ns'] / ours['p99_ns']:.1f}×**, "
                             f"{fmt_ns(r['p50_ns'])} / {fmt_ns(r['p99_ns'])}")
            else:
                cells.append(f"{fmt_ns(r['p50_ns'])} / {fmt_ns(r['p99_ns'])}")
        print(f"| {key[0]}/{key[1]}/{key[2]:,} | " + " | ".join(cells) + " |")

    # The goals, on the p99. The wake-up: our p99 for one always-ready
    # task cancelled (nothing to wait for but the waiting thread's wake-up
    # and the scope's end). The walk: a cancel of 10,000 parked tasks
    # (cancel_flat/10000, when the criterion results are there).
    slice_ns = data["slice_us"] * 1e3
    wake = cases.get(("ready", "cancel", 1), {}).get(OURS)
    flat = rep.time(("cancel_flat", "10000"), OURS)
    print("\n| latency goal | bound | our p99 | |")
    print("|---|---:|---:|---|")
    for (load, trigger, n), row in sorted(
            cases.items(), key=lambda kv: (LOADS.index(kv[0][0]), TRIGGERS.index(kv[0][1]),
                                           kv[0][2])):
        ours = row.get(OURS)
        if ours is None:
            continue
        if load == "ready":
            bound, what = 1e6, "1 ms"
        elif n <= 100 and wake:
            bound = 2 * slice_ns + wake["p99_ns"]
            what = f"2 × slice + wake-up = {fmt_ns(bound)}"
        elif n > 100 and flat is not None:
            bound = flat * n + 2 * slice_ns
            what = f"walk + 2 × slice = {fmt_ns(bound)}"
        else:
            continue
        met = "met" if ours["p99_ns"] <= bound else "**not met**"
        if len(ours["p99s"]) > 1:
            met += f" ({sum(p <= bound for p in ours['p99s'])}/{len(ours['p99s'])} runs)"
        print(f"| {load}/{trigger}/{n:,} | {what} | {fmt_ns(ours['p99_ns'])} | {met} |")


def add_latency_rows(run, latency):
    """Adds the cancel_latency p50s to a run's rows, as group LATENCY."""
    if latency is None:
        return
    _, cases = latency
    for (load, trigger, n), row in cases.items():
        run[(LATENCY, f"{load}/{trigger}/{n}")] = {rt: r["p50_ns"] for rt, r in row.items()}


def print_targets(rep, memory):
    def line(name, values, goal, how):
        values = [v for v in values if v is not None]
        if not values:
            print(f"| {name} | {how} | not measured | – |")
            return
        mid = median(values)
        met = "met" if mid >= goal else "**not met**"
        if len(values) > 1:
            met += f" ({sum(v >= goal for v in values)}/{len(values)} runs)"
        print(f"| {name} | {how} | {mid:.2f}× | {met} |")

    def each(key, peer):
        return [ratio(run, key, peer) for run in rep.runs]

    def best_of(run, key, peers):
        rs = [ratio(run, key, p) for p in peers]
        rs = [r for r in rs if r is not None]
        return min(rs) if rs else None

    def best_flat(run):
        rs = [ratio(run, ("cancel_flat", "10000"), p) for p in ("tokio", "tokio_token", "smol")]
        rs = [r for r in rs if r is not None]
        return min(rs) if rs else None

    print("\n| target | goal | median ratio | |")
    print("|---|---|---:|---|")
    line("scope_empty/create_cancel_end vs tokio_token",
         each(("scope_empty", "create_cancel_end"), "tokio_token"), 2.0, "≥ 2×")
    line("scope_empty/cancel vs tokio_token",
         each(("scope_empty", "cancel"), "tokio_token"), 1.0, "≥ 1×")
    line("cancel_flat/10000 vs best peer", [best_flat(run) for run in rep.runs], 8.0, "≥ 8×")
    for shape in ("4x6", "1000x1"):
        line(f"cancel_tree/{shape} vs tokio_token", each(("cancel_tree", shape), "tokio_token"),
             6.0, "≥ 6×")
    line("spawn_join/10000 vs smol", each(("spawn_join", "10000"), "smol"), 1.5, "≥ 1.5×")
    line("spawn_join_contended/10000 vs smol", each(("spawn_join_contended", "10000"), "smol"),
         1.5, "≥ 1.5×")
    line("pingpong vs tokio", each(("pingpong", "10000"), "tokio"), 1.2, "≥ 1.2×")
    line("yield_many vs tokio", each(("yield_many", "10000"), "tokio"), 1.0, "≥ 1×")
    line("limit/10000 vs the faster peer", [best_of(run, ("limit", "10000"), ("tokio", "smol"))
                                            for run in rep.runs], 1.5, "≥ 1.5×")
    if memory:
        ours, smol = memory["runtimes"].get(OURS), memory["runtimes"].get("smol")
        if ours and smol:
            line("heap per parked task vs smol", [smol["heap"] / ours["heap"]], 1.0,
                 "≥ 1× (no more than smol)")


# ------------------------------------------------------------------ chart

def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chart(rep, path):
    """Grouped bars: one group per benchmark, one bar per runtime, height
    the median time per unit on a log scale."""
    runtimes = [OURS] + PEERS
    keys = [k for k in rep.keys if sum(rep.time(k, rt) is not None for rt in runtimes) > 1]
    bar, gap = 14, 24
    widths = [sum(rep.time(k, rt) is not None for rt in runtimes) * bar for k in keys]
    left, top, plot_h, bottom = 70, 84, 320, 150
    width = max(left + sum(widths) + gap * (len(keys) + 1) + 10, 760)
    height = top + plot_h + bottom
    values = [rep.time(k, rt) for k in keys for rt in runtimes if rep.time(k, rt) is not None]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))

    def y(v):
        return top + plot_h * (1 - (math.log10(v) - math.log10(lo))
                               / (math.log10(hi) - math.log10(lo)))

    runs = f"median over {len(rep.runs)} runs" if len(rep.runs) > 1 else "one run"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">'
           f'Cost per unit of work: time per unit, log scale, lower is better</text>',
           f'<text x="{left}" y="40" fill="#444">{runs}; every runtime with 2 workers; '
           f'equal work in every group (BENCHMARKS.md says what each bar times).</text>',
           f'<text x="{left}" y="56" fill="#444">Unit: a task cancelled or spawned, '
           f'a group of a tree, a linked scope, a scope, a round trip, a yield; '
           f'cancel_latency_p50: a group of busy tasks stopped, to its end (median).</text>']
    lx = left
    for rt in runtimes:
        out.append(f'<rect x="{lx}" y="65" width="11" height="11" fill="{COLOURS[rt]}"/>')
        out.append(f'<text x="{lx + 15}" y="75">{rt}</text>')
        lx += 15 + 7 * len(rt) + 22
    decade = lo
    while decade <= hi * 1.001:
        yy = y(decade)
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                   f'{esc(fmt_ns(decade))}</text>')
        decade *= 10
    x = left + gap
    for key, w in zip(keys, widths):
        for rt in runtimes:
            v = rep.time(key, rt)
            if v is None:
                continue
            yy = y(v)
            out.append(f'<rect x="{x}" y="{yy:.1f}" width="{bar - 2}" '
                       f'height="{top + plot_h - yy:.1f}" fill="{COLOURS[rt]}">'
                       f'<title>{esc(f"{key[0]}/{rt}/{key[1]}: {fmt_ns(v)} per {units(*key)[1]}")}'
                       f'</title></rect>')
            x += bar
        cx = x - w / 2
        ly = top + plot_h + 14
        out.append(f'<text transform="translate({cx:.1f},{ly}) rotate(-35)" '
                   f'text-anchor="end">{esc(key[0])}/{esc(key[1])}</text>')
        x += gap
    out.append(f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h}" '
               f'y2="{top + plot_h}" stroke="#333"/>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def main():
    args = sys.argv[1:]
    svg = Path(__file__).resolve().parent / "chart.svg"
    spread = "--spread" in args
    args = [a for a in args if a != "--spread"]
    if args[:1] == ["--svg"]:
        svg, args = Path(args[1]), args[2:]
    roots = criterion_dirs(args)
    runs = [load(root) for root in roots]
    for root, run in zip(roots, runs):
        if not run:
            sys.exit(f"no criterion results under {root}")
    latency = load_latency(roots)
    add_latency_rows(runs[0], latency)
    rep = Report(runs)
    n = len(runs)
    what = f"median over {n} runs" if n > 1 else "one run"
    print(f"Time per unit; peers as the ratio of their time to ours, measured "
          f"in the same run ({what}; then the lowest and highest ratio of the runs):\n")
    rep.table(PEERS)
    print(f"\nIdiomatic entries, same form ({what}):\n")
    rep.table(IDIOMATIC)
    if n > 1 and spread:
        print(f"\nRatios (peer / cancel_scope) in each of the {n} runs, in order:\n")
        rep.spread()
    memory = print_memory(roots[0])
    print_counts(roots[0])
    print_growth(roots[0])
    print_latency(rep, latency)
    print_targets(rep, memory)
    chart(rep, svg)
    print(f"\nchart written: {svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
