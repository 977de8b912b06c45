#!/usr/bin/env python3
"""Turns a `cargo bench` run into the tables of BENCHMARKS.md.

Reads criterion's results (`<dir>/<group>/<runtime>/<size>/new/`) and the
memory benchmark's `memory.json` from the criterion directory, and prints
markdown: one row per benchmark with the median of every runtime and our
ratio against each peer (peer time / our time: above 1 means cancel-scope
is faster), the memory table, and the project's targets, met or not.

Usage: python3 benches/report.py [CRITERION_DIR ...]

The directory defaults to what criterion uses: $CRITERION_HOME, else
$CARGO_TARGET_DIR/criterion, else target/criterion. Given several
directories (copies of the criterion directory from separate runs), the
medians table is the first run's, and a second table lists every run's
ratios; the targets are then judged on the median ratio over the runs.
"""

import json
import os
import sys
from pathlib import Path

OURS = "cancel_scope"
PEERS = ["tokio_joinset", "tokio_token", "smol", "limit"]
GROUPS = [
    "cancel_flat",
    "cancel_tree",
    "cancel_linked",
    "cancel_empty",
    "spawn_join",
    "pingpong",
    "yield_many",
]


def criterion_dirs():
    if len(sys.argv) > 1:
        return [Path(a) for a in sys.argv[1:]]
    if os.environ.get("CRITERION_HOME"):
        return [Path(os.environ["CRITERION_HOME"])]
    if os.environ.get("CARGO_TARGET_DIR"):
        return [Path(os.environ["CARGO_TARGET_DIR"]) / "criterion"]
    return [Path("target/criterion")]


def load(root):
    """{(group, size): {runtime: median_ns}}"""
    rows = {}
    for bench in root.glob("*/*/*/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        key = (meta["group_id"], meta["value_str"])
        rows.setdefault(key, {})[meta["function_id"]] = est["median"]["point_estimate"]
    return rows


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def size_order(size):
    try:
        return (0, int(size))
    except ValueError:
        return (1, size)


def ratio(rows, key, peer):
    r = rows.get(key, {})
    if OURS in r and peer in r:
        return r[peer] / r[OURS]
    return None


def ordered_keys(rows):
    keys = []
    for group in GROUPS:
        keys += sorted((k for k in rows if k[0] == group), key=lambda k: size_order(k[1]))
    return keys


def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def main():
    roots = criterion_dirs()
    runs = [load(root) for root in roots]
    for root, rows in zip(roots, runs):
        if not rows:
            sys.exit(f"no criterion results under {root}")
    rows = runs[0]

    print("| benchmark | cancel_scope | " + " | ".join(PEERS) + " |")
    print("|---|---:|" + "---:|" * len(PEERS))
    for key in ordered_keys(rows):
        r = rows[key]
        cells = [fmt_time(r[OURS]) if OURS in r else "–"]
        for peer in PEERS:
            if peer not in r:
                cells.append("–")
            elif OURS in r:
                cells.append(f"{fmt_time(r[peer])} (**{r[peer] / r[OURS]:.2f}×**)")
            else:
                cells.append(fmt_time(r[peer]))
        print(f"| {key[0]}/{key[1]} | " + " | ".join(cells) + " |")

    if len(runs) > 1:
        print()
        print(f"Ratios (peer / cancel_scope) in each of the {len(runs)} runs, in order:")
        print()
        print("| benchmark | " + " | ".join(f"vs {p}" for p in PEERS) + " |")
        print("|---|" + "---|" * len(PEERS))
        for key in ordered_keys(rows):
            cells = []
            for peer in PEERS:
                rs = [ratio(run, key, peer) for run in runs]
                if all(r is None for r in rs):
                    cells.append("–")
                else:
                    cells.append(" / ".join("–" if r is None else f"{r:.2f}" for r in rs))
            print(f"| {key[0]}/{key[1]} | " + " | ".join(cells) + " |")

    memory = None
    mem_file = roots[0] / "memory.json"
    if mem_file.exists():
        memory = json.loads(mem_file.read_text())
        print()
        print(f"Memory per parked task ({memory['tasks']:,} tasks):")
        print()
        print("| runtime | RSS bytes/task | heap bytes/task |")
        print("|---|---:|---:|")
        for rt, m in memory["runtimes"].items():
            print(f"| {rt} | {m['rss']:.0f} | {m['heap']:.0f} |")

    def target(name, values, goal, how):
        values = [v for v in values if v is not None]
        if not values:
            print(f"| {name} | {how} | not measured | – |")
            return
        mid = median(values)
        met = "met" if mid >= goal else "**not met**"
        if len(values) > 1:
            met += f" ({sum(v >= goal for v in values)}/{len(values)} runs)"
        print(f"| {name} | {how} | {mid:.2f}× | {met} |")

    def each(f):
        return [f(run) for run in runs]

    def best_flat(run):
        rs = [ratio(run, ("cancel_flat", "10000"), p) for p in ("tokio_joinset", "tokio_token", "smol")]
        rs = [r for r in rs if r is not None]
        return min(rs) if rs else None

    print()
    label = "median ratio" if len(runs) > 1 else "ratio"
    print(f"| target | goal | {label} | |")
    print("|---|---|---:|---|")
    target("cancel_flat/10000 vs best peer", each(best_flat), 3.0, "≥ 3×")
    target("cancel_flat/10000 vs limit",
           each(lambda run: ratio(run, ("cancel_flat", "10000"), "limit")),
           0.5, "≥ 0.5× (within 2×)")
    for shape in ("4x10", "1000x1"):
        target(f"cancel_tree/{shape} vs tokio_token",
               each(lambda run: ratio(run, ("cancel_tree", shape), "tokio_token")), 3.0, "≥ 3×")
    for what in ("cancel", "create_end"):
        target(f"cancel_empty/{what} vs tokio_token",
               each(lambda run: ratio(run, ("cancel_empty", what), "tokio_token")), 1.0, "≥ 1×")
    for peer in ("tokio_joinset", "smol"):
        target(f"spawn_join/10000 vs {peer}",
               each(lambda run: ratio(run, ("spawn_join", "10000"), peer)), 1.2, "≥ 1.2×")
    for group in ("pingpong", "yield_many"):
        target(f"{group} vs tokio_joinset",
               each(lambda run: ratio(run, (group, "10000"), "tokio_joinset")), 1.0, "≥ 1×")
    if memory:
        ours = memory["runtimes"].get("cancel_scope")
        tokio = memory["runtimes"].get("tokio")
        if ours and tokio:
            for field in ("rss", "heap"):
                target(f"memory ({field}) vs tokio", [tokio[field] / ours[field]], 1.0,
                       "≥ 1× (no more than tokio)")


if __name__ == "__main__":
    main()
