#!/usr/bin/env python3
"""How repeatable can a capacity search be near a bursty knee? A model fitted
on the windows of `lab compare` runs, then used to replay search designs.

Every window a search measures says, at one load and over one length, whether
the objective broke. Pooled over many runs, those verdicts give the odds that a
window of that length breaks at that load:

    p(load, length) = 1 / (1 + exp(-k * (ln load - ln L50[length])))

fitted per side (maximum likelihood, one slope `k`, one midpoint per window
length). The model then replays designs against those odds, sets of five
runs at a time, and prints how often a set agrees within +-10 % and within
+-15 % on the load speed-up (half its range over the middle of the range, as
docs/lab.md counts it; the goodput speed-up follows the load's here), the
typical spread, and the wall time from the windows' lengths plus the
mean warm-up the runs measured.

It is a model, not a measurement: windows are drawn independently (no drift,
no history between steps), and a window's goodput is taken as proportional to
its load. Use it to compare designs and to size the time a target needs; the
figures that count are runs of the lab itself. The walk it favoured was then
measured (set X in docs/lab.md) and did not narrow the spread: the runs' knee
moved within minutes, and the search's path decided where the last windows
fell, two things the model leaves out.

Usage: lab/bench/knee_model.py lab-out/*/report.json [--sets 2000] [--seed 1]
Stdlib only.
"""

import argparse
import json
import math
import random
import statistics
import sys

LENGTHS = (4, 8, 20)  # growth steps, steps near the knee, confirmations (s)
START = {"single": 10, "group": 40}  # the default search's first loads


def windows(report, side):
    """(load, length bucket, broke, warm-up s) of every window of one side."""
    out = []
    for step in report[side]["steps"]:
        secs = step["summary"]["seconds"]
        bucket = min(LENGTHS, key=lambda b: abs(math.log(secs / b)))
        out.append((step["load"], bucket, not step["kept"], step.get("warmup_s", 0.0)))
    return out


def break_odds(k, mid, load):
    """The odds that a window at `load` breaks the objective, on a curve of
    slope `k` that crosses one half at `mid`."""
    z = k * (math.log(load) - math.log(mid))
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


def log_likelihood(ws, k, mids):
    total = 0.0
    for load, bucket, broke, _ in ws:
        p = min(max(break_odds(k, mids[bucket], load), 1e-9), 1 - 1e-9)
        total += math.log(p if broke else 1.0 - p)
    return total


def fit(ws):
    """Slope and per-length midpoints by coordinate search on a log grid."""
    loads = sorted({w[0] for w in ws})
    lo, hi = loads[0], loads[-1]
    k = 10.0
    mids = {b: math.sqrt(lo * hi) for b in LENGTHS}
    grid = [lo * (hi / lo) ** (i / 400) for i in range(401)]
    for _ in range(6):
        for b in LENGTHS:
            if not any(w[1] == b for w in ws):
                continue
            mids[b] = max(grid, key=lambda m: log_likelihood(ws, k, {**mids, b: m}))
        k = max((1 + i * 0.5 for i in range(120)), key=lambda s: log_likelihood(ws, s, mids))
    return k, mids


class Side:
    def __init__(self, name, k, mids, overhead):
        self.name, self.k, self.mids, self.overhead = name, k, mids, overhead
        self.seconds = 0.0

    def breaks(self, load, length):
        self.seconds += length + self.overhead[length]
        return random.random() < break_odds(self.k, self.mids[length], load)

    def grow(self):
        """Doubling 4 s steps until one breaks: the bracket (held, broke)."""
        load, held = START[self.name], None
        while not self.breaks(load, 4):
            held, load = load, load * 2
        return (held or load / 2), load

    def bisect(self, held):
        """Growth, then 3 bisections of 8 s, appending the loads they keep to
        `held`: the final bracket (held, broke)."""
        lo, hi = self.grow()
        for _ in range(3):
            mid = (lo + hi) / 2
            if self.breaks(mid, 8):
                hi = mid
            else:
                lo = mid
                held.append(mid)
        return lo, hi


def search(side, confirmations=3):
    """Today's default: growth, 3 bisections of 8 s, 20 s confirmations that
    step down by the last gap when they break (the last one is kept anyway)."""
    lo, hi = side.bisect([])
    gap, load = hi - lo, lo
    for i in range(confirmations):
        if not side.breaks(load, 20) or i == confirmations - 1:
            return load
        load -= gap
    return load


def walk(side, n):
    """Today's growth and bisections, then n windows of 8 s walking from the
    highest load held, down the last gap after a break and up after a hold;
    the estimate is the mean of every load held after the first break (the
    bisections' and the walk's): an average over the knee's luck instead of
    the verdict of its last window."""
    held = []
    lo, hi = side.bisect(held)
    gap, load = hi - lo, lo
    for _ in range(n):
        if side.breaks(load, 8):
            load -= gap
        else:
            held.append(load)
            load += gap
    return statistics.mean(held) if held else load


def staircase(side, n):
    """Growth, then n windows of 8 s from the bracket's middle, an eighth of
    the bracket down after a break and up after a hold; the estimate is the
    mean load from the third window on."""
    lo, hi = side.grow()
    load, step, track = (lo + hi) / 2, (hi - lo) / 8, []
    for _ in range(n):
        track.append(load)
        load += -step if side.breaks(load, 8) else step
    return statistics.mean(track[2:])


def replay(design, fits, sets, runs=5, startup=10.0):
    within10 = within15 = 0
    spreads, walls = [], []
    for _ in range(sets):
        ratios = []
        for _ in range(runs):
            single, group = (Side(name, *fits[name]) for name in ("single", "group"))
            ratios.append(design(group) / design(single))
            walls.append(startup + max(single.seconds, group.seconds))
        lo, hi = min(ratios), max(ratios)
        spread = (hi - lo) / (hi + lo)
        spreads.append(spread)
        within10 += spread <= 0.10
        within15 += spread <= 0.15
    return within10 / sets, within15 / sets, statistics.median(spreads), statistics.median(walls)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", nargs="+", help="report.json files of lab compare runs")
    ap.add_argument("--sets", type=int, default=2000, help="sets of five runs replayed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--steeper",
        type=float,
        default=1.0,
        help="multiply the fitted slopes: windows pooled from runs hours apart mix knees "
        "that moved, which flattens the fitted curve (1.6 makes the default's replayed "
        "spread match the measured sets)",
    )
    a = ap.parse_args()
    random.seed(a.seed)
    reports = [json.load(open(p)) for p in a.reports]
    fits = {}
    for name in ("single", "group"):
        ws = [w for r in reports for w in windows(r, name)]
        k, mids = fit(ws)
        overhead = {
            b: statistics.mean([w[3] for w in ws if w[1] == b] or [5.0]) for b in LENGTHS
        }
        fits[name] = (k * a.steeper, mids, overhead)
        print(
            f"{name:6} {len(ws):4} windows: slope k = {k:.1f} per unit of ln(load); "
            + ", ".join(f"{b} s windows break half the time at {mids[b]:.0f}" for b in LENGTHS)
            + "; mean warm-up "
            + ", ".join(f"{overhead[b]:.1f} s" for b in LENGTHS)
        )
    print(f"\n{'design':36} {'sets within ±10 %':>18} {'±15 %':>6} {'median spread':>14} {'wall':>6}")
    designs = (
        [("search (today's default)", search)]
        + [(f"walk, {n} windows of 8 s, mean held", lambda s, n=n: walk(s, n)) for n in (4, 6)]
        + [(f"staircase, {n} windows of 8 s", lambda s, n=n: staircase(s, n)) for n in (8, 12, 16)]
    )
    for label, design in designs:
        share10, share15, spread, wall = replay(design, fits, a.sets)
        print(f"{label:36} {share10:>17.0%} {share15:>6.0%} {spread:>13.1%} {wall:>5.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
