#!/usr/bin/env python3
"""The race corpus against four ways of hunting, each with the same budget
of runs, one at a time:

- a plain loop (`while ! cmd; do :; done`), outside bugpack;
- a uniform matrix over every timing (`--runs N --until-repro`);
- an adaptive budget (`--budget N --until-repro`, its default timings);
- the best timing alone (`--timing BEST --budget N --until-repro`), BEST
  being the timing with the highest rate in the rate table.

For each program in benches/races/*/ (a scenario.yaml and its source,
C and Go built here first) it prints, as a Markdown table, the plain
failure rate over --plain-runs runs of the command, the reproduction rate
per timing value over --rate-runs runs each, and for each way of hunting
the runs and seconds to the first reproduction: the median over --seeds
seeds, a hunt that found nothing counting as its whole budget (marked
`>`). Seconds are wall time, bugpack's start-up and clean-up included.
A summary follows: on how many programs the best timing beat the plain
loop, by what factor, and which ones only a perturbation reproduced.

    python3 benches/races/run.py [--bugpack target/release/bugpack]
        [--budget 300] [--seeds 3] [--rate-runs 20] [--plain-runs 300]
        [--only NAME]

Needs gcc, go, python3 and bugpack; takes a few minutes a program on an
otherwise idle machine (other load changes the rates it measures).
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
# Every timing value, as a budget without --timing tries them on this machine.
TIMINGS = "none,slow,jitter,cpu1,load,trace,chaos,noise,quota,delay"


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


def fails(d, run, timeout):
    """One plain run of the command `run` in `d`: whether it failed or hung."""
    try:
        return subprocess.run(["sh", "-c", run], cwd=d, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout).returncode != 0
    except subprocess.TimeoutExpired:
        return True


def plain(d, budget):
    """`while ! cmd; do :; done`: runs and seconds to the first failure."""
    run, timeout = scenario_run(d)
    start = time.monotonic()
    for n in range(1, budget + 1):
        if fails(d, run, timeout):
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
    """Runs and wall seconds to the first reproduction, and whether there was one."""
    report, took = replay(bugpack, d, args)
    first = report.get("first_reproduction")
    if first:
        return first["runs"], took, True
    runs = sum(c["runs"] for c in report["cells"])
    return max(runs, budget), took, False


def median(results):
    """(runs, seconds, found k of n): medians over seeds."""
    runs = statistics.median(r[0] for r in results)
    secs = statistics.median(r[1] for r in results)
    return runs, secs, sum(1 for r in results if r[2]), len(results)


def shown(m):
    runs, secs, found, seeds = m
    mark = "" if found * 2 > seeds else ">"
    return f"{mark}{runs:.0f} / {mark}{secs:.1f} s ({found}/{seeds})"


def best_timing(cells):
    """The timing with the highest reproduction rate (the first on a tie)."""
    timed = [c for c in cells if c["runs"]]
    return max(timed, key=lambda c: c["reproduced"] / c["runs"])["axes"]["timing"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bugpack", default=os.path.join(HERE, "..", "..", "target", "release", "bugpack"))
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rate-runs", type=int, default=20)
    ap.add_argument("--plain-runs", type=int, default=300)
    ap.add_argument("--only")
    a = ap.parse_args()
    cells = len(TIMINGS.split(","))
    names = sorted(n for n in os.listdir(HERE) if os.path.exists(os.path.join(HERE, n, "scenario.yaml")))
    if a.only:
        names = [n for n in names if a.only in n]
    seeds = range(1, a.seeds + 1)
    print(f"Budget {a.budget} runs, --jobs 1; runs / seconds to the first reproduction, median of "
          f"{a.seeds} seeds, (k/n) the hunts that found it; rates over {a.rate_runs} runs a timing.\n")
    print("| program | plain rate | plain loop | uniform matrix | adaptive budget | best timing | "
          "rate per timing |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for name in names:
        d = os.path.join(HERE, name)
        build(d)
        run, timeout = scenario_run(d)
        failed = sum(fails(d, run, timeout) for _ in range(a.plain_runs))
        report, _ = replay(a.bugpack, d, ["--timing", TIMINGS, "--runs", str(a.rate_runs), "--seed", "1",
                                          "--jobs", "1"])
        rates = " ".join(f"{c['axes']['timing']} {c['reproduced']}/{c['runs']}" for c in report["cells"])
        best = best_timing(report["cells"])
        loop = median([plain(d, a.budget) for _ in seeds])
        per_cell = max(1, a.budget // cells)
        uniform = median([hunt(a.bugpack, d, ["--timing", TIMINGS, "--runs", str(per_cell), "--until-repro",
                                              "--seed", str(s), "--jobs", "1"], a.budget) for s in seeds])
        adaptive = median([hunt(a.bugpack, d, ["--budget", str(a.budget), "--until-repro",
                                               "--seed", str(s), "--jobs", "1"], a.budget) for s in seeds])
        alone = median([hunt(a.bugpack, d, ["--timing", best, "--budget", str(a.budget), "--until-repro",
                                            "--seed", str(s), "--jobs", "1"], a.budget) for s in seeds])
        print(f"| `{name}` | {failed}/{a.plain_runs} | {shown(loop)} | {shown(uniform)} | {shown(adaptive)} "
              f"| `{best}`: {shown(alone)} | {rates} |", flush=True)
        summary.append((name, loop, alone, adaptive))
    summarise(summary)


def summarise(summary):
    """How the best timing and the adaptive budget compare with the plain loop."""
    if not summary:
        return
    for label, at in (("best timing", 2), ("adaptive budget", 3)):
        factors = sorted(s[1][1] / s[at][1] for s in summary)
        beaten = sum(1 for f in factors if f > 1)
        only = [s[0] for s in summary if s[at][2] * 2 > s[at][3] and s[1][2] * 2 <= s[1][3]]
        print(f"\n{label}: faster than the plain loop on {beaten} of {len(summary)} programs; "
              f"median factor {statistics.median(factors):.1f}x (seconds; from {factors[0]:.1f}x "
              f"to {factors[-1]:.1f}x); reproduced where the plain loop mostly did not: "
              f"{', '.join(only) or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
