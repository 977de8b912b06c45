#!/usr/bin/env python3
"""The `io` group: echo servers on each runtime against one load generator.

    python3 benches/io.py [ROUNDS] [--measure SECS] [--only RUNTIME,...]
                          [--table WORDS] [--conns N,...] [--no-perf]

Each run starts a server (`src/bin/echo.rs`) pinned to core 0 and the load
generator (`src/bin/load.rs`, the same client for every server) pinned to
core 1, with `taskset`; the client warms up for half a second, then counts
round trips and their latencies for `--measure` seconds (default 3).

Configurations: 2 server threads (the main table; two threads on one
core, as the server gets one core) and 1 server thread, each with 1, 16
and 128 connections and 64-byte and 4 KiB messages; and the `deadline`
workload (2 threads, 64 bytes, a 2 ms deadline per request, every tenth
request held past it) at 1, 16 and 128 connections.

Runtimes: `cancel_scope` (idle workers drive async-io's reactor),
`cancel_scope_thread` (the same runtime with `drive_io(false)`: async-io's
own thread drives it, as before the feature), `tokio`, `smol`.

A round runs every configuration once for every runtime, the runtimes in
a different order each round; ROUNDS rounds (default 5), then one more
round with `perf stat` attached to the server for its system calls and
context switches (its times are not used). For each run:

- round trips per second and the p50 and p99 latency, from the client;
- the server's CPU time and context switches over the client's whole run
  (all its threads, from /proc/PID/task/*/schedstat and status), divided
  by the client's round trips over the same run;
- the same for async-io's own thread alone (where there is one): how much
  of the work still goes through it.

`--only`, `--table` (a configuration whose table's title contains WORDS)
and `--conns` keep part of the runs; `--no-perf` skips the `perf` round.

The tables give, per configuration, each runtime's median and, for the
peers, the median of the per-round ratios ours/peer with the lowest and
highest (round trips: above 1 we do more; latency and CPU: below 1 we
take less). Results also go to io.json in the criterion directory.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIMES = ["cancel_scope", "cancel_scope_thread", "tokio", "smol"]
PEERS = ["tokio", "smol", "cancel_scope_thread"]
CONNECTIONS = [1, 16, 128]
SIZES = [64, 4096]
HOLD_EVERY = 10
WARM_UP = 0.5
SERVER_CORE, CLIENT_CORE = "0", "1"
SYSCALLS = ["futex", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl",
            "read", "write", "recvfrom", "sendto"]


FILTER = {"table": None, "conns": None}


def configs():
    return [c for c in all_configs()
            if (FILTER["table"] is None or FILTER["table"] in c["table"])
            and (FILTER["conns"] is None or c["connections"] in FILTER["conns"])]


def all_configs():
    out = []
    for threads in (2, 1):
        for conns in CONNECTIONS:
            for size in SIZES:
                out.append({"table": f"echo, {threads} thread{'s' if threads > 1 else ''}",
                            "workload": "echo", "threads": threads,
                            "connections": conns, "size": size})
    for conns in CONNECTIONS:
        out.append({"table": "deadline, 2 threads", "workload": "deadline", "threads": 2,
                    "connections": conns, "size": 64})
    return out


def target_dir():
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(json.loads(meta.stdout)["target_directory"])


def build():
    subprocess.run(["cargo", "build", "--release", "-p", "cancel-scope-bench",
                    "--bin", "echo", "--bin", "load"], cwd=ROOT, check=True)
    release = target_dir() / "release"
    return release / "echo", release / "load"


def threads_of(pid):
    """{tid: (name, cpu ns, context switches)} for every thread of pid."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            cpu_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text().splitlines()
            switches = sum(int(l.split()[1]) for l in status
                           if l.startswith(("voluntary_ctxt_switches",
                                            "nonvoluntary_ctxt_switches")))
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[task.name] = (name, cpu_ns, switches)
    return out


def delta(before, after, only=None):
    cpu = switches = 0
    for tid, (name, c, s) in after.items():
        if only is not None and name != only:
            continue
        _, c0, s0 = before.get(tid, (name, 0, 0))
        cpu += c - c0
        switches += s - s0
    return cpu, switches


def run_one(echo, load, runtime, cfg, measure, perf=False):
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, str(echo), runtime, str(cfg["threads"]),
         str(cfg["size"]), cfg["workload"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"{runtime}: server said {line!r}")
        addr = line.split()[1]
        perf_proc = perf_out = None
        if perf:
            perf_out = tempfile.NamedTemporaryFile(suffix=".csv", delete=False).name
            events = ["task-clock", "context-switches", "raw_syscalls:sys_enter"] + [
                f"syscalls:sys_enter_{s}" for s in SYSCALLS]
            perf_proc = subprocess.Popen(
                ["perf", "stat", "-x,", "-o", perf_out, "-e", ",".join(events),
                 "-p", str(server.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.2)
        before = threads_of(server.pid)
        hold = str(HOLD_EVERY) if cfg["workload"] == "deadline" else "0"
        client = subprocess.run(
            ["taskset", "-c", CLIENT_CORE, str(load), addr, str(cfg["connections"]),
             str(cfg["size"]), str(WARM_UP), str(measure), hold],
            check=True, capture_output=True, text=True)
        after = threads_of(server.pid)
        result = json.loads(client.stdout)
        total = result["round_trips_total"]
        cpu, switches = delta(before, after)
        io_cpu, io_switches = delta(before, after, only="async-io")
        result.update({
            "cpu_us_per_rt": cpu / 1000 / total,
            "switches_per_rt": switches / total,
            "asyncio_thread_cpu_us_per_rt": io_cpu / 1000 / total,
            "asyncio_thread_switches_per_rt": io_switches / total,
        })
        if perf:
            perf_proc.send_signal(signal.SIGINT)
            perf_proc.wait()
            counts = {}
            for row in Path(perf_out).read_text().splitlines():
                parts = row.split(",")
                if len(parts) > 2 and parts[2] and not row.startswith("#"):
                    try:
                        counts[parts[2]] = float(parts[0])
                    except ValueError:
                        pass
            os.unlink(perf_out)
            per_rt = {}
            for event, n in counts.items():
                key = event.replace("syscalls:sys_enter_", "").replace(
                    "raw_syscalls:sys_enter", "syscalls")
                per_rt[key] = n / total
            result["perf_per_rt"] = per_rt
        return result
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def key(cfg):
    return f"{cfg['table']}|{cfg['connections']}|{cfg['size']}"


def ratio_cell(values):
    if not values:
        return "–"
    values = sorted(values)
    return f"**{statistics.median(values):.2f}×** {values[0]:.2f}–{values[-1]:.2f}"


def report(runs, counts, runtimes):
    """Markdown tables from runs[key][runtime] = [result per round]."""
    lines = []
    tables = []
    for cfg in configs():
        if cfg["table"] not in tables:
            tables.append(cfg["table"])
    peers = [p for p in PEERS if p in runtimes]
    for table in tables:
        lines.append(f"\n### {table}\n")
        head = "| conns | size | ours rt/s | " + " | ".join(
            f"rt/s vs {p}" for p in peers) + " | ours p50 / p99 µs | " + " | ".join(
            f"p50 vs {p}" for p in peers) + " |"
        lines.append(head)
        lines.append("|" + "---|" * (head.count("|") - 1))
        for cfg in configs():
            if cfg["table"] != table:
                continue
            r = runs.get(key(cfg), {})
            ours = r.get("cancel_scope", [])
            if not ours:
                continue
            med = lambda rs, f: statistics.median(x[f] for x in rs)
            cells = [str(cfg["connections"]), f"{cfg['size']} B",
                     f"{med(ours, 'round_trips_per_s') / 1000:.1f}k"]
            for p in peers:
                theirs = r.get(p, [])
                cells.append(ratio_cell([a["round_trips_per_s"] / b["round_trips_per_s"]
                                         for a, b in zip(ours, theirs)]))
            cells.append(f"{med(ours, 'p50_us'):.0f} / {med(ours, 'p99_us'):.0f}")
            for p in peers:
                theirs = r.get(p, [])
                cells.append(ratio_cell([a["p50_us"] / b["p50_us"]
                                         for a, b in zip(ours, theirs)]))
            lines.append("| " + " | ".join(cells) + " |")
        # CPU and switches per round trip, each runtime's median; and the
        # perf round's system calls.
        lines.append("")
        head = ("| conns | size | runtime | CPU µs/rt | switches/rt | async-io thread "
                "CPU µs/rt, switches/rt | futex/rt | epoll_wait/rt | epoll_ctl/rt | "
                "recv+send/rt | read+write/rt | syscalls/rt |")
        lines.append(head)
        lines.append("|" + "---|" * (head.count("|") - 1))
        for cfg in configs():
            if cfg["table"] != table:
                continue
            for rt in runtimes:
                rs = runs.get(key(cfg), {}).get(rt, [])
                if not rs:
                    continue
                med = lambda f: statistics.median(x[f] for x in rs)
                p = counts.get(key(cfg), {}).get(rt, {}).get("perf_per_rt", {})
                g = lambda *names: sum(p.get(n, 0.0) for n in names)
                io = (f"{med('asyncio_thread_cpu_us_per_rt'):.2f}, "
                      f"{med('asyncio_thread_switches_per_rt'):.3f}")
                cells = [str(cfg["connections"]), f"{cfg['size']} B", rt,
                         f"{med('cpu_us_per_rt'):.2f}", f"{med('switches_per_rt'):.3f}", io,
                         f"{g('futex'):.2f}",
                         f"{g('epoll_wait', 'epoll_pwait', 'epoll_pwait2'):.2f}",
                         f"{g('epoll_ctl'):.2f}", f"{g('recvfrom', 'sendto'):.2f}",
                         f"{g('read', 'write'):.2f}", f"{g('syscalls'):.2f}"]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    args = sys.argv[1:]
    rounds, measure, only, perf = 5, 3.0, None, True
    while args:
        a = args.pop(0)
        if a == "--measure":
            measure = float(args.pop(0))
        elif a == "--only":
            only = args.pop(0).split(",")
        elif a == "--table":
            FILTER["table"] = args.pop(0)
        elif a == "--conns":
            FILTER["conns"] = [int(c) for c in args.pop(0).split(",")]
        elif a == "--no-perf":
            perf = False
        elif a.isdigit():
            rounds = int(a)
        else:
            sys.exit(__doc__)
    runtimes = [r for r in RUNTIMES if only is None or r in only]
    echo, load = build()
    runs, counts = {}, {}
    for n in range(rounds):
        for cfg in configs():
            order = runtimes[n % len(runtimes):] + runtimes[:n % len(runtimes)]
            for rt in order:
                result = run_one(echo, load, rt, cfg, measure)
                runs.setdefault(key(cfg), {}).setdefault(rt, []).append(result)
                print(f"round {n + 1} {key(cfg):28} {rt:20} "
                      f"{result['round_trips_per_s'] / 1000:8.1f}k rt/s "
                      f"p50 {result['p50_us']:7.1f} p99 {result['p99_us']:8.1f} µs "
                      f"cpu {result['cpu_us_per_rt']:5.2f} µs/rt "
                      f"sw {result['switches_per_rt']:.3f}/rt", flush=True)
    for cfg in configs() if perf else []:
        for rt in runtimes:
            result = run_one(echo, load, rt, cfg, min(measure, 2.0), perf=True)
            counts.setdefault(key(cfg), {})[rt] = result
            print(f"perf    {key(cfg):28} {rt:20} " + " ".join(
                f"{k} {v:.2f}" for k, v in sorted(result["perf_per_rt"].items())), flush=True)
    text = report(runs, counts, runtimes)
    print(text)
    out = target_dir() / "criterion"
    out.mkdir(parents=True, exist_ok=True)
    (out / "io.json").write_text(json.dumps({"runs": runs, "counts": counts}, indent=1) + "\n")
    (out / "io.md").write_text(text + "\n")
    print(f"written: {out / 'io.json'}, {out / 'io.md'}")


if __name__ == "__main__":
    main()
