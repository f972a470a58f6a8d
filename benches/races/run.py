#!/usr/bin/env python3
"""The race corpus against three ways of hunting: a plain loop
(`while ! cmd; do :; done`), a uniform matrix (`--runs N --until-repro`
over every timing) and an adaptive budget (`--budget N --until-repro`).

For each program in benches/races/*/ (a scenario.yaml and its source,
C and Go built here first), it reports the runs and seconds to the first
reproduction, the median over --seeds seeds (a hunt that found nothing in
the budget counts as the whole budget, marked with a `>`), and the
reproduction rate per timing value over --rate-runs runs each.

    python3 benches/races/run.py [--bugpack target/release/bugpack]
        [--budget 300] [--seeds 3] [--rate-runs 20] [--only NAME]

Needs gcc, go, python3 and bugpack; takes a few minutes a program.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMINGS = "none,slow,jitter,cpu1,load,trace,chaos,noise,quota:20"


def build(d):
    if os.path.exists(os.path.join(d, "main.c")):
        subprocess.run(["gcc", "-O1", "-pthread", "-o", "prog", "main.c"], cwd=d, check=True)
    elif os.path.exists(os.path.join(d, "main.go")):
        env = dict(os.environ, GO111MODULE="off", GOCACHE=os.path.join(tempfile.gettempdir(), "bugpack-races-gocache"))
        subprocess.run(["go", "build", "-o", "prog", "main.go"], cwd=d, check=True, env=env)


def scenario_run(d):
    """The scenario's run line and timeout in seconds."""
    run, timeout = None, 10.0
    with open(os.path.join(d, "scenario.yaml")) as f:
        for line in f:
            if line.startswith("run:"):
                run = line.split(":", 1)[1].strip().strip("'")
            if line.startswith("timeout:"):
                timeout = float(line.split(":", 1)[1].strip().rstrip("s"))
    return run, timeout


def plain(d, budget):
    """`while ! cmd; do :; done`: runs and seconds to the first failure."""
    run, timeout = scenario_run(d)
    start = time.monotonic()
    for n in range(1, budget + 1):
        try:
            code = subprocess.run(["sh", "-c", run], cwd=d, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = "hang"
        if code != 0:
            return n, time.monotonic() - start, True
    return budget, time.monotonic() - start, False


def replay(bugpack, d, args):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        start = time.monotonic()
        subprocess.run([bugpack, "-q", "replay", d, "--yes", "--json", out.name] + args,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took = time.monotonic() - start
        with open(out.name) as f:
            text = f.read()
        if not text:
            sys.exit(f"bugpack replay {d} {' '.join(args)} wrote no report")
        return json.loads(text), took


def hunt(bugpack, d, args, budget):
    report, took = replay(bugpack, d, args)
    first = report.get("first_reproduction")
    if first:
        return first["runs"], first["elapsed_ms"] / 1000, True
    runs = sum(c["runs"] for c in report["cells"])
    return max(runs, budget), took, False


def median(results):
    runs = statistics.median(r[0] for r in results)
    secs = statistics.median(r[1] for r in results)
    found = sum(1 for r in results if r[2])
    mark = "" if found * 2 > len(results) else ">"
    return f"{mark}{runs:.0f} runs / {mark}{secs:.1f} s ({found}/{len(results)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bugpack", default=os.path.join(HERE, "..", "..", "target", "release", "bugpack"))
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rate-runs", type=int, default=20)
    ap.add_argument("--only")
    a = ap.parse_args()
    cells = len(TIMINGS.split(","))
    names = sorted(n for n in os.listdir(HERE) if os.path.isdir(os.path.join(HERE, n)))
    if a.only:
        names = [n for n in names if a.only in n]
    print(f"budget {a.budget} runs, median of {a.seeds} seeds; (k/n) = hunts that found it")
    print(f"{'program':<16} {'plain loop':<30} {'uniform matrix':<30} {'adaptive budget':<30} rate per timing")
    for name in names:
        d = os.path.join(HERE, name)
        build(d)
        loops = [plain(d, a.budget) for _ in range(a.seeds)]
        per_cell = max(1, a.budget // cells)
        uniform = [hunt(a.bugpack, d, ["--timing", TIMINGS, "--runs", str(per_cell), "--until-repro",
                                         "--seed", str(s), "--jobs", "1"], a.budget)
                   for s in range(1, a.seeds + 1)]
        adaptive = [hunt(a.bugpack, d, ["--timing", TIMINGS, "--budget", str(a.budget), "--until-repro",
                                          "--seed", str(s), "--jobs", "1"], a.budget)
                    for s in range(1, a.seeds + 1)]
        report, _ = replay(a.bugpack, d, ["--timing", TIMINGS, "--runs", str(a.rate_runs), "--seed", "1"])
        rates = " ".join(f"{c['axes']['timing']}={c['reproduced']}/{c['runs']}" for c in report["cells"])
        print(f"{name:<16} {median(loops):<30} {median(uniform):<30} {median(adaptive):<30} {rates}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
