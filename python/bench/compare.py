"""shm_core against multiprocessing on the lesson's own work, side by side in one run.

Each measure runs both implementations alternately (interleaved rounds), and reports the median
and the spread (min..max) over the rounds, per operation:

- locked increment: ``with v.get_lock(): v.value += 1``
- ``.value`` read, ``.value`` write
- ``a[:]`` of 1 000 doubles
- 4 processes x 1 000 locked increments (fork), wall time

    python3 python/bench/compare.py [--rounds 7]

A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

try:
    import shm_core
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import shm_core


def per_op(fn, n: int) -> float:
    t = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t) / n


def locked_increment(v):
    def run(n):
        for _ in range(n):
            with v.get_lock():
                v.value += 1
    return run


def read(v):
    def run(n):
        for _ in range(n):
            v.value
    return run


def write(v):
    def run(n):
        for i in range(n):
            v.value = i
    return run


def slice_all(a):
    def run(n):
        for _ in range(n):
            a[:]
    return run


def _worker(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def processes(make):
    def run(n):
        v = make()
        ctx = mp.get_context("fork")
        ps = [ctx.Process(target=_worker, args=(v, 1000)) for _ in range(4)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        assert v.value == 4000, v.value
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the operation counts")
    args = ap.parse_args()
    sv, mv = shm_core.Value("q", 0), mp.Value("q", 0)
    sa, ma = shm_core.Array("d", [0.5] * 1000), mp.Array("d", [0.5] * 1000)
    k = args.scale
    cases = [
        ("locked increment", locked_increment(sv), locked_increment(mv), int(100_000 * k)),
        (".value read", read(sv), read(mv), int(200_000 * k)),
        (".value write", write(sv), write(mv), int(200_000 * k)),
        ("a[:] of 1000 doubles", slice_all(sa), slice_all(ma), int(2_000 * k)),
        ("4 procs x 1000 locked increments", processes(lambda: shm_core.Value("q", 0)),
         processes(lambda: mp.Value("q", 0)), 1),
    ]
    print(f"Python {sys.version.split()[0]}, {args.rounds} interleaved rounds; median (min..max) per operation")
    print(f"{'operation':34} {'shm_core':>26} {'multiprocessing':>26} {'ratio':>6}")
    for label, ours, theirs, n in cases:
        a, b = [], []
        for _ in range(args.rounds):
            a.append(per_op(ours, n))
            b.append(per_op(theirs, n))
        unit, f = ("ms", 1e3) if n == 1 else ("us", 1e6)

        def fmt(xs):
            return f"{statistics.median(xs) * f:8.3f} ({min(xs) * f:.3f}..{max(xs) * f:.3f}) {unit}"

        print(f"{label:34} {fmt(a):>26} {fmt(b):>26} {statistics.median(b) / statistics.median(a):5.1f}x")
    sv.close()
    sa.close()


if __name__ == "__main__":
    main()
