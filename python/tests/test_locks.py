"""The segment's lock across languages: a process killed (SIGKILL) holding it, or in the
middle of an update, blocks nobody in the other language; a half-done update is rolled back from
the journal (and poisons nothing); a holder that died with no write in progress poisons the
segment for every locker and reader of ``.poisoned`` until ``clear_poison()``.

Some tests here check what Rust's lockers do with the poisoning (``lock-once``, ``lock-array``):
they say so in their docstrings."""

from __future__ import annotations

import os
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
            self.assertFalse(v.poisoned, f"round {r}: a live holder poisons nothing")
            self.assertFalse(lock.acquire(timeout=0.05), f"round {r}: acquired a held lock")
            holder.kill9()
            # Nobody has taken the lock since: its word alone says that the holder died.
            self.assertTrue(v.poisoned, f"round {r}: the unnoticed death was not reported")
            start = time.monotonic()
            self.assertTrue(lock.acquire(timeout=5), f"round {r}")
            took = time.monotonic() - start
            self.assertLess(took, 1.0, f"round {r}: the lock took {took:.3f} s")
            self.assertTrue(lock.poisoned, f"round {r}: the dead holder was not reported")
            v.value += 1
            lock.release()
            # Sticky: every later locker is told, an update goes through and leaves it so.
            with lock:
                self.assertTrue(lock.poisoned, f"round {r}: the poisoning was cleared")
            v.update(lambda x: x + 1)
            self.assertTrue(v.poisoned, f"round {r}: update() cleared the poisoning")
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "poisoned")
            v.clear_poison()
            self.assertFalse(v.poisoned, f"round {r}")
            with lock:
                self.assertFalse(lock.poisoned, f"round {r}")
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "clean")
        self.assertEqual(v.value, 4 * ROUNDS)

    def test_python_killed_holding_the_lock_does_not_block_rust(self):
        """Also checks Rust's side: its locker that finds the holder dead poisons the segment,
        and the next Rust and Python lockers are told too."""
        name = self.name("pylock")
        v = self.keep(shm_core.Value("Q", 0, name=name))
        for r in range(ROUNDS):
            holder = self.python(HOLD_LOCK.format(name=name))
            holder.expect("locked")
            self.assertEqual(self.run_peer("lock-once", name, "50").split()[0], "busy")
            # Readers never need the lock while no update is in progress.
            self.assertEqual(v.snapshot(timeout=0.5), 3 * r)
            self.assertFalse(v.get_lock().acquire(timeout=0.05))
            holder.kill9()
            self.assertTrue(v.poisoned, f"round {r}")
            how, ms = self.run_peer("lock-once", name, "5000").split()
            self.assertEqual(how, "poisoned", f"round {r}")
            self.assertLess(int(ms), 1000, f"round {r}: Rust waited {ms} ms")
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "poisoned")
            self.assertTrue(v.poisoned, f"round {r}: Rust cleared the poisoning")
            with v.get_lock() as lock:
                self.assertTrue(lock.poisoned, f"round {r}")
            self.assertTrue(v.poisoned, f"round {r}: a Python locker cleared the poisoning")
            v.clear_poison()
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "clean")
            with v.get_lock() as lock:
                self.assertFalse(lock.poisoned)
        self.assertEqual(v.value, 3 * ROUNDS)

    def test_python_killed_holding_get_lock_poisons_until_cleared(self):
        name = self.name("pyheld")
        v = self.keep(shm_core.Value("q", 5, name=name))
        other = self.keep(shm_core.Value.open(name))  # another handle says the same
        holder = self.python(HOLD_LOCK.format(name=name))
        holder.expect("locked")
        self.assertFalse(v.poisoned, "a live holder poisons nothing")
        holder.kill9()
        self.assertTrue(v.poisoned)
        self.assertTrue(other.poisoned)
        self.assertEqual(v.update(lambda x: x + 1), 6)
        self.assertTrue(v.poisoned, "update() cleared the poisoning")
        self.assertTrue(other.poisoned)
        for _ in range(2):
            with v.get_lock() as lock:
                self.assertTrue(lock.poisoned)
        self.assertEqual(v.snapshot(), 6)  # readers are not told
        other.clear_poison()
        self.assertFalse(v.poisoned)
        self.assertFalse(other.poisoned)
        with v.get_lock() as lock:
            self.assertFalse(lock.poisoned)
        self.assertEqual(v.update(lambda x: x + 1), 7)
        self.assertFalse(v.poisoned)


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
            # It died holding the lock with no write in progress: as a holder of lock() would.
            self.assertTrue(a.poisoned, f"round {r}")
            start = time.monotonic()
            self.assertEqual(a.snapshot(timeout=5), [10, -10, 7], f"round {r}")
            took = time.monotonic() - start
            self.assertLess(took, 1.0, f"round {r}: the snapshot took {took:.3f} s")
            for _ in range(2):
                with a.get_lock() as lock:
                    self.assertTrue(lock.poisoned, f"round {r}")
            a.clear_poison()
            with a.get_lock() as lock:
                self.assertFalse(lock.poisoned)
        # And Python's next update goes through.
        a.update(lambda v: v.__setitem__(2, v[2] + 1))
        self.assertEqual(a.snapshot(), [10, -10, 8])
        self.assertFalse(a.poisoned)

    def test_rust_killed_between_stores_is_rolled_back_for_python(self):
        # `update-forever` sets all elements to k, k + 1, ... one update each. Killed at a random
        # moment (even rounds), it sometimes dies between the stores of an update; in odd rounds
        # it is stopped inside a journaled write first (the windows are a small part of its
        # time), so it always does: the counter odd, the journal recorded. Python must then see
        # the whole old value, never a mix.
        name = self.name("rustkill")
        a = self.keep(shm_core.Array("q", 20_000, name=name))
        rng = random.Random(3)
        rounds = mid_write = 0
        while rounds < 200 and (mid_write < 3 or rounds < 20):
            rounds += 1
            writer = self.peer("update-forever", name)
            writer.expect("started")
            time.sleep(rng.uniform(0, 0.02))
            if rounds % 2 == 1:
                self.assertTrue(
                    F.stop_inside_write_window(name, writer.proc.pid),
                    f"round {rounds}: never stopped inside a write",
                )
            writer.kill9()
            odd = header_u64(name, F.OFF_SEQ) & 1
            recorded = header_u64(name, F.OFF_JOURNAL_LEN) != 0
            mid_write += odd and recorded
            if odd:
                # Not poisoned, before or after: the dead writer's update is rolled back.
                self.assertFalse(a.poisoned, f"round {rounds}")
            v = a.snapshot(timeout=5)
            self.assertEqual(len(set(v)), 1, f"round {rounds}: a mix of {sorted(set(v))[:4]}")
            if odd:
                self.assertFalse(a.poisoned, f"round {rounds}: a rollback poisoned")
                with a.get_lock() as lock:
                    self.assertFalse(lock.poisoned, f"round {rounds}: a rollback poisoned")
            self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 0)
            self.assertEqual(header_u64(name, F.OFF_JOURNAL_LEN), 0)
            # Killed outside the stores, it may have died holding the lock: poisoned, rightly.
            a.clear_poison()
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

    def test_python_killed_between_stores_is_rolled_back_and_poisons_nothing(self):
        """Also checks Rust's side: its reader's and locker's rollbacks poison nothing.

        A Python process sets all elements to 0 or 1, one update each, until killed at a random
        moment; some kills land between the stores of an update (the counter odd, the journal
        recorded). The update's stores run in Rust, so there is no hook to stop a Python writer
        there: random kills are how a test gets one. Whoever comes next (a Rust reader, a Python
        reader, a Python locker, a Rust locker: each in turn) must see one value throughout,
        never a mix, and the rollback must leave the segment unpoisoned."""
        name = self.name("pykill")
        a = self.keep(shm_core.Array("q", 200_000, name=name))
        rng = random.Random(4)
        rounds = mid_write = 0
        while rounds < 300 and (mid_write < 4 or rounds < 10):
            rounds += 1
            writer = self.python(UPDATE_FOREVER.format(name=name))
            writer.expect("started")
            time.sleep(rng.uniform(0.01, 0.1))
            writer.kill9()
            odd = header_u64(name, F.OFF_SEQ) & 1
            if odd:
                # A write in progress: for a rollback to mend, whatever the lock word says.
                self.assertFalse(a.poisoned, f"round {rounds}: a dead writer's stores poisoned")
                mid_write += header_u64(name, F.OFF_JOURNAL_LEN) != 0
                who = mid_write % 4
                if who == 0:
                    values, _ms = self.run_peer("snapshot-i64", name).rsplit(" ", 1)
                    self.assertEqual(len(set(values.split())), 1, f"round {rounds}: Rust saw a mix")
                elif who == 1:
                    v = a.snapshot()
                    self.assertEqual(len(set(v)), 1, f"round {rounds}: Python saw a mix")
                elif who == 2:
                    with a.get_lock() as lock:
                        self.assertFalse(lock.poisoned, f"round {rounds}: a rollback poisoned")
                        self.assertEqual(len(set(a[:])), 1, f"round {rounds}: Python saw a mix")
                else:
                    how, _ms, *seen = self.run_peer("lock-array", name, "2000").split()
                    self.assertEqual(how, "clean", f"round {rounds}: Rust's rollback poisoned")
                    self.assertEqual(len(set(seen)), 1, f"round {rounds}: Rust saw a mix")
                self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 0, f"round {rounds}")
                self.assertFalse(a.poisoned, f"round {rounds}: the rollback poisoned")
            elif rounds % 10 == 1:
                values, _ms = self.run_peer("snapshot-i64", name).rsplit(" ", 1)
                self.assertEqual(len(set(values.split())), 1, f"round {rounds}: Rust saw a mix")
            self.assertEqual(len(set(a.snapshot())), 1, f"round {rounds}: Python saw a mix")
            self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 0)
            # Killed outside the stores, it may have died holding the lock: poisoned, rightly.
            a.clear_poison()
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

    def test_the_lock_cannot_be_taken_again_inside_an_update_function(self):
        # It would wait for itself: refused at once, as Rust's lock() panics inside update().
        v = self.keep(shm_core.Value("q", 1, name=self.name("inside")))
        attempts = [
            lambda x: v.get_lock().acquire(timeout=5),
            lambda x: v.update(lambda y: y, timeout=5),
            lambda x: v.clear_poison(timeout=5),
            lambda x: v.get_lock().release(),
        ]
        for i, attempt in enumerate(attempts):
            for outer in (False, True):
                with self.assertRaises(RuntimeError, msg=f"attempt {i}") as cm:
                    if outer:
                        with v.get_lock():
                            v.update(lambda x: (attempt(x), x + 1)[1])
                    else:
                        v.update(lambda x: (attempt(x), x + 1)[1])
                self.assertIn("inside update()", str(cm.exception))
                # The failed function stored nothing, poisoned the segment, and left the lock
                # free: another thread takes it at once.
                self.assertEqual(v.value, 1)
                self.assertFalse(v.get_lock().held(), f"attempt {i}")
                got = []

                def take_and_release():
                    lock = v.get_lock()
                    got.append(lock.acquire(timeout=5))
                    if got[-1]:
                        got.append(lock.poisoned)
                        lock.release()

                t = threading.Thread(target=take_and_release)
                t.start()
                t.join()
                self.assertEqual(got, [True, True], f"attempt {i}")
                self.assertTrue(v.poisoned)
                v.clear_poison()

    def test_a_failing_update_stores_nothing_and_poisons(self):
        a = self.keep(shm_core.Array("i", [1, 2, 3], name=self.name("fail")))

        def bad(v):
            v[0] = 100
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            a.update(bad)
        self.assertEqual(a[:], [1, 2, 3])
        self.assertTrue(a.poisoned)
        with a.get_lock() as lock:
            self.assertTrue(lock.poisoned)
        with self.assertRaises(OverflowError):
            a.update({0: 1 << 40})  # a bad value is refused before the lock is taken
        a.update({0: 4})
        self.assertEqual(a[:], [4, 2, 3])
        with a.get_lock() as lock:
            self.assertTrue(lock.poisoned, "an update cleared the poisoning")
            a.clear_poison()
        self.assertFalse(a.poisoned)
        with a.get_lock() as lock:
            self.assertFalse(lock.poisoned)

    def test_an_exception_leaving_get_lock_poisons(self):
        v = self.keep(shm_core.Value("i", 1, name=self.name("raise")))
        with v.get_lock():
            v.value += 1
        self.assertFalse(v.poisoned)
        with self.assertRaises(ZeroDivisionError):
            with v.get_lock():
                v.value += 1
                v.value //= 0
        self.assertTrue(v.poisoned)
        with v.get_lock() as lock:
            self.assertTrue(lock.poisoned)
        v.clear_poison()
        self.assertFalse(v.poisoned)

    def test_rust_lockers_leave_python_poisoning_in_place(self):
        """Checks Rust's side: its lockers report the poisoning and never clear it."""
        name = self.name("ruststicky")
        v = self.keep(shm_core.Value("Q", 0, name=name))
        with self.assertRaises(ZeroDivisionError):
            v.update(lambda x: x // 0)
        for _ in range(2):
            self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "poisoned")
        self.assertTrue(v.poisoned)
        v.clear_poison()
        self.assertEqual(self.run_peer("lock-once", name, "2000").split()[0], "clean")
        self.assertEqual(v.value, 3)

    def test_waits_for_the_lock_end_with_a_timeout_naming_the_holder(self):
        name = self.name("held")
        v = self.keep(shm_core.Value("q", 0, name=name))
        holder = self.python(HOLD_LOCK.format(name=name))
        holder.expect("locked")
        pid = holder.proc.pid
        attempts = [
            lambda: v.update(lambda x: x + 1, timeout=0.1),
            lambda: v.update(7, timeout=0.1),
            lambda: v.clear_poison(timeout=0.1),
        ]

        def with_lock():
            with v.get_lock(timeout=0.1):
                v.value = 99

        attempts.append(with_lock)
        for i, attempt in enumerate(attempts):
            with self.assertRaises(shm_core.Timeout, msg=f"attempt {i}") as cm:
                attempt()
            self.assertEqual(cm.exception.name, name)
            self.assertEqual(cm.exception.pid, pid)
            self.assertIn(f"`{name}`", str(cm.exception))
            self.assertIn(f"pid {pid} holds it", str(cm.exception))
        self.assertFalse(v.get_lock(timeout=0.05).acquire())
        self.assertFalse(v.get_lock().acquire(timeout=0.05))
        self.assertEqual(v.value, 0)
        self.assertFalse(v.poisoned)  # waiting out a live holder poisons nothing
        with self.assertRaises(ValueError):
            v.get_lock(timeout=-1)
        holder.kill9()
        # A lock with a timeout is the same lock as get_lock()'s: re-entrant within a thread.
        with v.get_lock(timeout=5) as lock:
            self.assertTrue(lock.poisoned)
            self.assertTrue(v.get_lock().held())
            self.assertEqual(v.update(lambda x: x + 1, timeout=0), 1)
        self.assertFalse(v.get_lock().held())

    def test_update_of_fields_ends_with_a_timeout_while_a_thread_holds_the_lock(self):
        desc = shm_core.Descriptor.struct("Pair", [("a", "q"), ("b", "q")])
        s = self.keep(shm_core.create(self.name("fields"), desc, {"a": 1, "b": 2}))
        held, done = threading.Event(), threading.Event()

        def hold():
            with s.get_lock():
                held.set()
                done.wait(20)

        t = threading.Thread(target=hold)
        t.start()
        try:
            self.assertTrue(held.wait(20))
            with self.assertRaises(shm_core.Timeout) as cm:
                s.update(a=10, b=20, timeout=0.05)
            self.assertEqual(cm.exception.pid, os.getpid())
        finally:
            done.set()
            t.join()
        self.assertEqual(s.snapshot(), {"a": 1, "b": 2})
        s.update(a=10, b=20, timeout=5)
        self.assertEqual(s.snapshot(), {"a": 10, "b": 20})

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
