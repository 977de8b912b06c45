#!/usr/bin/env python3
"""Instruction counts per task or per scope, and the growth curve of a flat
cancel, from the `count` driver (src/bin/count.rs).

Each count runs the driver under

    valgrind --tool=callgrind --instr-atstart=no

which counts only the driver's measured window (the same window the
criterion benchmarks time), on every thread. A workload is run at two
sizes, and the difference in instructions divided by the difference in
units (tasks, groups, scopes, rounds) is the count per unit, free of fixed
costs (the window's own start and stop, waking the waiting thread).

    python3 benches/count.py counts     # the table, for every runtime
    python3 benches/count.py growth [PEER]
        # cancel of 10^2 .. 10^6 parked tasks: instructions per task
        # ((count at N - count at 1) / (N - 1)) and the time per task (the
        # median of three rounds, each the median of several runs), for
        # cancel_scope, PEER (default smol) and limit

Each writes its results as JSON into the criterion directory
(counts.json, growth.json), where benches/report.py finds them, and
prints them. Counts do not drift from run to run as times do, but where
workers do the work (a peer's cancel, any spawn), how the tasks fall
between them varies: expect up to about 10%.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLAT = ["cancel_scope", "tokio", "tokio_token", "smol", "limit",
        "tokio_idiomatic", "tokio_token_idiomatic"]
TREE = ["cancel_scope", "tokio", "tokio_token", "smol"]
EMPTY = ["cancel_scope", "tokio_token"]
SPAWN = ["cancel_scope", "tokio", "smol", "tokio_idiomatic", "smol_idiomatic"]
SCHED = ["cancel_scope", "tokio", "smol"]

# (row, workload, runtimes, smaller size, larger size, unit)
COUNTS = [
    ("cancel_flat", "cancel_flat", FLAT, "10000", "20000", "task"),
    ("cancel_tree/4x6", "cancel_tree", TREE, "4x5", "4x6", "group"),
    ("cancel_tree/1000x1", "cancel_tree", TREE, "500x1", "1000x1", "group"),
    ("cancel_linked", "cancel_linked", ["cancel_scope"], "100", "200", "linked scope"),
    ("scope_empty/cancel", "scope_empty_cancel", EMPTY, "1000", "2000", "scope"),
    ("scope_empty/create_end", "scope_empty_create_end", EMPTY, "1000", "2000", "scope"),
    ("scope_empty/create_cancel_end", "scope_empty_create_cancel_end", EMPTY,
     "1000", "2000", "scope"),
    ("spawn_join", "spawn_join", SPAWN, "10000", "20000", "task"),
    ("pingpong", "pingpong", SCHED, "10000", "20000", "round trip"),
    ("yield_many", "yield_many", SCHED, "10000", "20000", "yield"),
    ("limit", "limit", SCHED, "10000", "20000", "task"),
]

GROWTH_SIZES = [100, 10_000, 100_000, 1_000_000]
# Timed repetitions per size: fewer where one repetition is long.
GROWTH_REPS = {100: 51, 10_000: 21, 100_000: 7, 1_000_000: 5}


def target_dir():
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(json.loads(meta.stdout)["target_directory"])


def criterion_dir():
    if os.environ.get("CRITERION_HOME"):
        return Path(os.environ["CRITERION_HOME"])
    return target_dir() / "criterion"


def driver():
    subprocess.run(
        ["cargo", "build", "--release", "-p", "cancel-scope-bench", "--bin", "count"],
        cwd=ROOT, check=True)
    return target_dir() / "release" / "count"


def instructions(exe, runtime, workload, size):
    """Instructions counted in one run's window, and its units."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", str(exe), runtime, workload, size],
            check=True, capture_output=True, text=True)
        units = int(next(l.split()[1] for l in run.stdout.splitlines()
                         if l.startswith("units ")))
        total = sum(int(l.split()[1]) for l in out.read_text().splitlines()
                    if l.startswith("totals:"))
    return total, units


def per_unit(exe, runtime, workload, small, big):
    (i1, u1), (i2, u2) = (instructions(exe, runtime, workload, s) for s in (small, big))
    return (i2 - i1) / (u2 - u1)


def time_per_unit(exe, runtime, workload, size, reps):
    run = subprocess.run([str(exe), runtime, workload, str(size), "--time", str(reps)],
                         check=True, capture_output=True, text=True)
    return float(run.stdout.split()[1])


def counts(exe):
    rows = []
    for row, workload, runtimes, small, big, unit in COUNTS:
        for rt in runtimes:
            n = per_unit(exe, rt, workload, small, big)
            rows.append({"row": row, "runtime": rt, "unit": unit, "per_unit": round(n, 1)})
            print(f"{row:32} {rt:24} {n:10.1f} per {unit}", flush=True)
    return {"counts": rows}


def growth(exe, peer, rounds=3):
    runtimes = ["cancel_scope", peer, "limit"]
    instr = {}
    for rt in runtimes:
        base, _ = instructions(exe, rt, "cancel_flat", "1")
        for n in GROWTH_SIZES:
            total, _ = instructions(exe, rt, "cancel_flat", str(n))
            instr[rt, n] = (total - base) / (n - 1)
    # Times: every (runtime, size) once per round, round after round, so
    # that a change in the machine's load touches all of them alike; each
    # round gives a median over its repetitions, and the figure is the
    # median of the rounds.
    times = {}
    for _ in range(rounds):
        for rt in runtimes:
            for n in GROWTH_SIZES:
                times.setdefault((rt, n), []).append(
                    time_per_unit(exe, rt, "cancel_flat", n, GROWTH_REPS[n]))
    rows = []
    for rt in runtimes:
        for n in GROWTH_SIZES:
            ns = sorted(times[rt, n])[len(times[rt, n]) // 2]
            rows.append({"runtime": rt, "tasks": n, "instructions": round(instr[rt, n], 1),
                         "ns": ns, "ns_rounds": times[rt, n]})
            print(f"{rt:14} {n:>9} {instr[rt, n]:10.1f} instr/task {ns:9.1f} ns/task "
                  f"(rounds: {', '.join(f'{t:.1f}' for t in times[rt, n])})", flush=True)
    return {"peer": peer, "growth": rows}


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "counts"
    exe = driver()
    out_dir = criterion_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    if what == "counts":
        result, name = counts(exe), "counts.json"
    elif what == "growth":
        peer = sys.argv[2] if len(sys.argv) > 2 else "smol"
        result, name = growth(exe, peer), "growth.json"
    else:
        sys.exit(__doc__)
    (out_dir / name).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {out_dir / name}")


if __name__ == "__main__":
    main()
