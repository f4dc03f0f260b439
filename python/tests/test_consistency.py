"""Python and Rust processes racing on one segment never see a torn value: a Python `update`
against Rust `snapshot` readers, Rust `update`s against a Python `snapshot` reader, and single
words stored by one side while the other loads them."""

from __future__ import annotations

import sys
import time
import unittest

from _support import ShmTestCase
from test_format import LEDGER, WORDS

import shm_core

READERS = 4
PY_UPDATES = 4000
RUST_MIN_SNAPSHOTS = 100_000
RUST_UPDATES = 200_000
WORD_STORES = 100_000

W = [0x0000_0000_FFFF_FFFF, 0xFFFF_FFFF_0000_0000]
X = [1.0, -2.5e-300]
H = [0x0000_FFFF, 0xFFFF_0000]
M64 = (1 << 64) - 1


def ledger_at(k: int) -> dict:
    """py-peer's `Ledger::at(k)`, without `updates` and `done`."""
    a = (k * 0x1_0000_0001) & M64
    a = a - (1 << 64) if a >> 63 else a
    b = (-a) & M64
    b = b - (1 << 64) if b >> 63 else b
    d = k & 0xFFFF_FFFF
    return {
        "a": a,
        "b": b,
        "c": float(a),
        "d": d - (1 << 32) if d >> 31 else d,
        "e": k & 0xFFFF,
        "f": [(k + i) & 0xFFFF_FFFF for i in range(4)],
    }


def consistent(v: dict) -> bool:
    k = v["d"] & 0xFFFF_FFFF
    want = ledger_at(k)
    return all(v[key] == want[key] for key in want)


def report(what: str) -> None:
    print(f"\n    {what}", file=sys.stderr, flush=True)


class TornTest(ShmTestCase):
    def test_python_updates_are_never_torn_for_rust_snapshots(self):
        name = self.name("ledger")
        seg = self.keep(shm_core.create(name, LEDGER, ledger_at(0)))
        readers = [self.peer("ledger-reader", name, str(RUST_MIN_SNAPSHOTS)) for _ in range(READERS)]
        for r in readers:
            r.expect("reading")
        start = time.monotonic()
        for k in range(1, PY_UPDATES + 1):
            if k % 2:
                seg.update(updates=k, **ledger_at(k))
            else:

                def step(v, k=k):
                    v.update(ledger_at(k))
                    v["updates"] += 1

                seg.update(step)
        took = time.monotonic() - start
        seg.update(done=1)
        taken = torn = changes = 0
        for r in readers:
            t, n, c = map(int, r.finish().split())
            taken, torn, changes = taken + t, torn + n, changes + c
        report(
            f"{PY_UPDATES} Python updates ({PY_UPDATES / took:.0f}/s) against {READERS} Rust"
            f" readers: {taken} snapshots, {changes} changes seen, {torn} torn"
        )
        self.assertEqual(torn, 0)
        self.assertGreaterEqual(taken, READERS * RUST_MIN_SNAPSHOTS)
        self.assertGreater(changes, READERS * 10, "the readers hardly overlapped the writer")
        v = seg.snapshot()
        self.assertTrue(consistent(v))
        self.assertEqual((v["d"], v["updates"], v["done"]), (PY_UPDATES, PY_UPDATES, 1))

    def test_rust_updates_are_never_torn_for_python_snapshots(self):
        name = self.name("ledger")
        seg = self.keep(shm_core.create(name, LEDGER, ledger_at(0)))
        writer = self.peer("ledger-writer", name, str(RUST_UPDATES))
        taken = torn = 0
        seen = set()
        part_torn = 0
        deadline = time.monotonic() + 120
        while True:
            v = seg.snapshot(timeout=10)
            taken += 1
            if not consistent(v):
                torn += 1
            seen.add(v["d"])
            f = seg["f"].snapshot()  # a consistent read of one nested array
            if any((f[i] - f[0]) & 0xFFFF_FFFF != i for i in range(4)):
                part_torn += 1
            if v["done"] or time.monotonic() > deadline:
                break
        writer.finish()
        report(
            f"{RUST_UPDATES} Rust updates against a Python reader: {taken} snapshots,"
            f" {len(seen)} distinct values, {torn} torn, {part_torn} torn sub-snapshots"
        )
        self.assertEqual((torn, part_torn), (0, 0))
        self.assertGreater(len(seen), 10, "the reader hardly overlapped the writer")
        self.assertEqual(seg.snapshot()["updates"], RUST_UPDATES)

    def test_single_words_are_never_torn_either_way(self):
        name = self.name("words")
        seg = self.keep(shm_core.create(name, WORDS, {"w": W[0], "x": X[0], "h": H[0]}))
        # Python stores, Rust loads.
        reader = self.peer("words-reader", name)
        reader.expect("reading")
        for i in range(WORD_STORES):
            j = i & 1
            seg["w"] = W[j]
            seg["x"] = X[j]
            seg["h"] = H[j]
        seg["stop"] = 1
        loads, torn = map(int, reader.finish().split())
        report(f"{WORD_STORES} x 3 Python stores against Rust loads: {loads} x 3 loads, {torn} torn")
        self.assertEqual(torn, 0)
        # Rust stores, Python loads.
        seg["stop"] = 0
        writer = self.peer("words-writer", name, "3000000")
        loads = torn = 0
        while seg["stop"] == 0:
            w, x, h = seg["w"], seg["x"], seg["h"]
            loads += 1
            if w not in W or x not in X or h not in H:
                torn += 1
        writer.finish()
        report(f"3000000 x 3 Rust stores against Python loads: {loads} x 3 loads, {torn} torn")
        self.assertEqual(torn, 0)
        self.assertGreater(loads, 100)


if __name__ == "__main__":
    unittest.main()
