"""The segment's robust lock across languages: a process killed (SIGKILL) holding it, or in the
middle of an update, blocks nobody in the other language; the next locker is told once; a
half-done update is rolled back from the journal."""

from __future__ import annotations

import random
import sys
import threading
import time
import unittest

import _support as F
from _support import ShmTestCase, header_u64

import shm_core

ROUNDS = 5

HOLD_LOCK = """
import sys, time, shm_core
v = shm_core.Value.open(sys.argv[1] if len(sys.argv) > 1 else {name!r})
v.get_lock().acquire()
print("locked", flush=True)
time.sleep(3600)
"""

UPDATE_FOREVER = """
import array, sys, shm_core
a = shm_core.Array.open({name!r}, "q")
n = len(a)
values = [array.array("q", [k]) * n for k in range(2)]
print("started", flush=True)
k = 0
while True:
    k += 1
    a.update(values[k & 1])
"""


class KilledHolderTest(ShmTestCase):
    def test_rust_killed_holding_the_lock_does_not_block_python(self):
        name = self.name("rustlock")
        v = self.keep(shm_core.Value("Q", 0, name=name))
        lock = v.get_lock()
        for r in range(ROUNDS):
            holder = self.peer("lock-and-hang", name)
            holder.expect("locked")
            self.assertFalse(lock.acquire(timeout=0.05), f"round {r}: acquired a held lock")
            holder.kill9()
            start = time.monotonic()
            self.assertTrue(lock.acquire(timeout=5), f"round {r}")
            took = time.monotonic() - start
            self.assertLess(took, 1.0, f"round {r}: the lock took {took:.3f} s")
            self.assertTrue(lock.poisoned, f"round {r}: the dead holder was not reported")
            v.value += 1
            lock.release()
            # Told once: the next locker, in either language, finds it clean.
            with lock:
                self.assertFalse(lock.poisoned)
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "clean")
        self.assertEqual(v.value, 2 * ROUNDS)

    def test_python_killed_holding_the_lock_does_not_block_rust(self):
        name = self.name("pylock")
        v = self.keep(shm_core.Value("Q", 0, name=name))
        for r in range(ROUNDS):
            holder = self.python(HOLD_LOCK.format(name=name))
            holder.expect("locked")
            self.assertEqual(self.run_peer("lock-once", name, "50").split()[0], "busy")
            # Readers never need the lock while no update is in progress.
            self.assertEqual(v.snapshot(timeout=0.5), 2 * r)
            self.assertFalse(v.get_lock().acquire(timeout=0.05))
            holder.kill9()
            how, ms = self.run_peer("lock-once", name, "5000").split()
            self.assertEqual(how, "poisoned", f"round {r}")
            self.assertLess(int(ms), 1000, f"round {r}: Rust waited {ms} ms")
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "clean")
            with v.get_lock() as lock:
                self.assertFalse(lock.poisoned)
        self.assertEqual(v.value, 2 * ROUNDS)


class KilledWriterTest(ShmTestCase):
    def test_rust_killed_inside_its_update_function_blocks_no_python_reader(self):
        # Rust runs the update's function before it stores anything: killed there, it held the
        # lock but left the value whole.
        name = self.name("rustwrite")
        a = self.keep(shm_core.Array("q", [10, -10, 7], name=name))
        for r in range(ROUNDS):
            writer = self.peer("update-and-hang", name)
            writer.expect("in-update")
            writer.kill9()
            start = time.monotonic()
            self.assertEqual(a.snapshot(timeout=5), [10, -10, 7], f"round {r}")
            took = time.monotonic() - start
            self.assertLess(took, 1.0, f"round {r}: the snapshot took {took:.3f} s")
            with a.get_lock() as lock:
                self.assertTrue(lock.poisoned, f"round {r}")
            with a.get_lock() as lock:
                self.assertFalse(lock.poisoned)
        # And Python's next update goes through.
        a.update(lambda v: v.__setitem__(2, v[2] + 1))
        self.assertEqual(a.snapshot(), [10, -10, 8])

    def test_rust_killed_between_stores_is_rolled_back_for_python(self):
        # `update-forever` sets all elements to k, k + 1, ... one update each; killed at a
        # random moment, it sometimes dies between the stores of an update (the counter odd, the
        # journal recorded). Python must then see the whole old value, never a mix.
        name = self.name("rustkill")
        a = self.keep(shm_core.Array("q", 20_000, name=name))
        rng = random.Random(3)
        rounds = mid_write = 0
        while rounds < 200 and (mid_write < 3 or rounds < 20):
            rounds += 1
            writer = self.peer("update-forever", name)
            writer.expect("started")
            time.sleep(rng.uniform(0, 0.02))
            writer.kill9()
            odd = header_u64(name, F.OFF_SEQ) & 1
            recorded = header_u64(name, F.OFF_JOURNAL_LEN) != 0
            mid_write += odd and recorded
            v = a.snapshot(timeout=5)
            self.assertEqual(len(set(v)), 1, f"round {rounds}: a mix of {sorted(set(v))[:4]}")
            if odd:
                with a.get_lock() as lock:
                    self.assertTrue(lock.poisoned, f"round {rounds}")
            self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 0)
            self.assertEqual(header_u64(name, F.OFF_JOURNAL_LEN), 0)
        print(
            f"\n    {rounds} Rust writers killed at random: {mid_write} between stores, all rolled back",
            file=sys.stderr,
        )
        self.assertGreaterEqual(mid_write, 1, "no kill landed between stores")

    def test_rust_killed_mid_update_is_rolled_back_by_a_python_locker(self):
        name = self.name("rustwrite2")
        a = self.keep(shm_core.Array("q", [1, 2, 3], name=name))
        writer = self.peer("update-and-hang", name)
        writer.expect("in-update")
        writer.kill9()
        lock = a.get_lock()
        self.assertTrue(lock.acquire(timeout=5))
        try:
            self.assertTrue(lock.poisoned)
            self.assertEqual(a.tolist(), [1, 2, 3])
        finally:
            lock.release()

    def test_python_killed_between_stores_is_rolled_back_for_rust_and_python(self):
        # A Python process sets all elements to 0 or 1, one update each, until killed at a random
        # moment; some kills land between the stores of an update (the counter odd, the journal
        # recorded). Rust and Python readers must then see one value throughout, never a mix.
        name = self.name("pykill")
        a = self.keep(shm_core.Array("q", 200_000, name=name))
        rng = random.Random(4)
        rounds = mid_write = 0
        while rounds < 300 and (mid_write < 2 or rounds < 10):
            rounds += 1
            writer = self.python(UPDATE_FOREVER.format(name=name))
            writer.expect("started")
            time.sleep(rng.uniform(0.01, 0.1))
            writer.kill9()
            odd = header_u64(name, F.OFF_SEQ) & 1
            mid_write += odd and header_u64(name, F.OFF_JOURNAL_LEN) != 0
            if odd or rounds % 10 == 1:
                values, _ms = self.run_peer("snapshot-i64", name).rsplit(" ", 1)
                self.assertEqual(len(set(values.split())), 1, f"round {rounds}: Rust saw a mix")
            self.assertEqual(len(set(a.snapshot())), 1, f"round {rounds}: Python saw a mix")
            self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 0)
        print(
            f"\n    {rounds} Python writers killed at random: {mid_write} between stores, all rolled back",
            file=sys.stderr,
        )
        self.assertGreaterEqual(mid_write, 1, "no kill landed between stores")


class LockApiTest(ShmTestCase):
    def test_reentrant_within_a_thread_exclusive_across_threads(self):
        v = self.keep(shm_core.Value("i", 0, name=self.name("reent")))
        lock = v.get_lock()
        with lock:
            with lock:
                v.update(lambda x: x + 1)  # update inside get_lock() works
            got = []
            t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
            t.start()
            t.join()
            self.assertEqual(got, [False])
        self.assertEqual(v.value, 1)
        with self.assertRaises(RuntimeError):
            lock.release()

    def test_a_failing_update_stores_nothing_and_poisons(self):
        a = self.keep(shm_core.Array("i", [1, 2, 3], name=self.name("fail")))

        def bad(v):
            v[0] = 100
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            a.update(bad)
        self.assertEqual(a[:], [1, 2, 3])
        with a.get_lock() as lock:
            self.assertTrue(lock.poisoned)
        with self.assertRaises(OverflowError):
            a.update({0: 1 << 40})  # a bad value is refused before the lock is taken
        with a.get_lock() as lock:
            self.assertFalse(lock.poisoned)

    def test_a_snapshot_does_not_wait_for_a_live_lock_holder(self):
        a = self.keep(shm_core.Array("q", [1, 2, 3], name=self.name("slow")))
        holder = self.python(HOLD_LOCK.replace("Value", "Array").format(name=a.name))
        holder.expect("locked")
        self.assertFalse(a.get_lock().acquire(timeout=0.05))
        start = time.monotonic()
        self.assertEqual(a.snapshot(), [1, 2, 3])
        self.assertLess(time.monotonic() - start, 1.0)
        holder.kill9()


if __name__ == "__main__":
    unittest.main()
