#!/usr/bin/env python3
"""Is this machine steady enough to measure a knee? Times two fixed pieces of
work over and over on one CPU and reports how much their time varies.

- a memory-hard hash (scrypt, 16 MiB a hash: like the argon2 of a login,
  which dominates a budgeted replica's CPU in the market-api scenario);
- a cache-resident one (SHA-256 over 1 KiB, 200,000 times): the CPU alone.

Nothing else should run. On a quiet machine of your own both vary by a few
percent; a virtual machine on a shared host can vary by far more, second to
second, without any steal showing in /proc/stat. A replica under a CPU budget
slows by the same share, and near a knee a few percent of speed decide
whether a window keeps the objective (docs/lab.md, "The machine's own
speed"). Not a test: run it by hand.

Usage: lab/bench/host_speed.py [--seconds 600] [--every 10] [--cpu 1]
Stdlib only.
"""

import argparse
import hashlib
import os
import statistics
import sys
import time


def memory_hard(hashes=8):
    """Milliseconds per scrypt hash (N=2^14, r=8: 16 MiB each)."""
    start = time.perf_counter()
    for i in range(hashes):
        hashlib.scrypt(b"pw%d" % i, salt=b"salt", n=1 << 14, r=8, p=1, maxmem=64 << 20)
    return (time.perf_counter() - start) / hashes * 1000


def cache_resident(rounds=200_000):
    """Milliseconds for `rounds` SHA-256 of 1 KiB."""
    block = b"x" * 1024
    start = time.perf_counter()
    for _ in range(rounds):
        hashlib.sha256(block).digest()
    return (time.perf_counter() - start) * 1000


def spread(values):
    """'median 44.4, 36.6–55.6 (±21 % around the middle), sd 10.0 % of the mean'."""
    lo, hi = min(values), max(values)
    sd = statistics.pstdev(values) / statistics.mean(values) * 100
    return (
        f"median {statistics.median(values):.1f}, {lo:.1f}–{hi:.1f} "
        f"(±{(hi - lo) / (hi + lo) * 100:.0f} % around the middle), sd {sd:.1f} % of the mean"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600, help="how long to sample")
    ap.add_argument("--every", type=float, default=10, help="pause between samples, seconds")
    ap.add_argument("--cpu", type=int, default=1, help="CPU to run on (the replicas' in the lab)")
    a = ap.parse_args()
    try:
        os.sched_setaffinity(0, {a.cpu})
    except (OSError, ValueError) as e:
        print(f"cannot pin to CPU {a.cpu} ({e}); running unpinned", file=sys.stderr)
    mem, cpu = [], []
    end = time.time() + a.seconds
    try:
        while time.time() < end:
            mem.append(memory_hard())
            cpu.append(cache_resident())
            print(
                f"{time.strftime('%H:%M:%S')}  scrypt {mem[-1]:5.1f} ms/hash  "
                f"sha256 {cpu[-1]:4.0f} ms",
                flush=True,
            )
            time.sleep(a.every)
    except KeyboardInterrupt:
        pass
    if len(mem) >= 2:
        print(f"\n{len(mem)} samples")
        print(f"memory-hard  (ms/hash): {spread(mem)}")
        print(f"cache-resident   (ms): {spread(cpu)}")
        print(f"correlation: {statistics.correlation(mem, cpu):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
