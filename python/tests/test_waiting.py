"""wait_until() and notify(): Python waiting on Rust's changes and Rust waiting on Python's, the
GIL released while blocked, Ctrl-C answered, timeouts, and what is refused."""

from __future__ import annotations

import signal
import threading
import time
import unittest

from _support import ShmTestCase, header_u64

import shm_core

#: docs/FORMAT.md, "Waiting": the two registration slots of waiters.
OFF_WAITERS = 140


def registered(name: str) -> int:
    """How many waiters are registered (asleep, or about to be) on segment ``name`` now."""
    w = header_u64(name, OFF_WAITERS)
    return (w & 0xFFFF) + ((w >> 32) & 0xFFFF)


def until_asleep(name: str, n: int = 1, timeout: float = 60.0) -> None:
    """Returns once ``n`` waiters are registered on ``name``, so that what the test does next is
    found by a waiter that was asleep, not by its first look."""
    deadline = time.monotonic() + timeout
    while registered(name) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{n} waiters never slept on {name}")
        time.sleep(0.0005)


class RustAndPythonTest(ShmTestCase):
    def test_python_is_woken_by_a_rust_update(self):
        name = self.name("wait-rust-update")
        v = self.keep(shm_core.Value("Q", 0, name))
        writer = self.peer("set-u64-when-waited", name, "7", "update")
        self.assertEqual(v.wait_until(lambda x: x == 7, timeout=60), 7)
        writer.expect("done")

    def test_python_is_woken_by_a_rust_store_and_notify(self):
        name = self.name("wait-rust-notify")
        v = self.keep(shm_core.Value("Q", 0, name))
        writer = self.peer("set-u64-when-waited", name, "9", "notify")
        self.assertEqual(v.wait_until(lambda x: x >= 9), 9)
        writer.expect("done")

    def test_rust_is_woken_by_a_python_update(self):
        name = self.name("wait-py-update")
        v = self.keep(shm_core.Value("Q", 0, name))
        waiter = self.peer("wait-u64", name, "5", "60000")
        waiter.expect("waiting")
        until_asleep(name)
        v.update(lambda x: 5)
        waiter.expect("seen 5")

    def test_rust_is_woken_by_a_python_store_and_notify(self):
        name = self.name("wait-py-notify")
        v = self.keep(shm_core.Value("Q", 0, name))
        waiter = self.peer("wait-u64", name, "3", "60000")
        until_asleep(name)
        v.value = 3
        v.notify()
        waiter.expect("seen 3")

    def test_rust_times_out_when_python_changes_nothing_that_satisfies(self):
        name = self.name("wait-py-timeout")
        v = self.keep(shm_core.Value("Q", 0, name))
        waiter = self.peer("wait-u64", name, "100", "300")
        until_asleep(name)
        v.update(lambda x: 1)
        waiter.expect("timeout")


class PythonWaitTest(ShmTestCase):
    def test_the_gil_is_released_while_waiting(self):
        # The waiter blocks in one thread; this thread, needing the GIL, updates the segment.
        # Were the GIL held while blocked, the update could never run and the wait would end
        # only at its timeout, with None.
        name = self.name("wait-gil")
        a = self.keep(shm_core.Array("i", [0, 0, 0], name))
        seen = []
        t = threading.Thread(target=lambda: seen.append(a.wait_until(lambda xs: sum(xs) >= 6, timeout=60)))
        t.start()
        until_asleep(name)
        for i in range(3):
            a.update(lambda xs, i=i: xs.__setitem__(i, 2))
        t.join()
        self.assertEqual(seen, [[2, 2, 2]])

    def test_a_struct_waits_on_a_dict(self):
        name = self.name("wait-struct")
        desc = shm_core.Descriptor.struct("Jobs", [("done", "Q"), ("ready", "?")])
        seg = self.keep(shm_core.create(name, desc, {"done": 0, "ready": False}))
        t = threading.Thread(target=lambda: (until_asleep(name), seg.update(done=4, ready=True)))
        t.start()
        got = seg.wait_until(lambda s: s["ready"] and s["done"] == 4, timeout=60)
        t.join()
        self.assertEqual(got, {"done": 4, "ready": True})

    def test_a_plain_store_without_notify_is_seen_within_the_bounded_recheck(self):
        name = self.name("wait-plain")
        v = self.keep(shm_core.Value("i", 0, name))

        def store():
            until_asleep(name)
            v.value = 1

        t = threading.Thread(target=store)
        t.start()
        self.assertEqual(v.wait_until(lambda x: x == 1, timeout=60), 1)
        t.join()

    def test_timeouts(self):
        v = self.keep(shm_core.Value("i", 1, self.name("wait-timeout")))
        start = time.monotonic()
        self.assertIsNone(v.wait_until(lambda x: x == 2, timeout=0.2))
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        self.assertIsNone(v.wait_until(lambda x: x == 2, timeout=0))
        self.assertEqual(v.wait_until(lambda x: x == 1, timeout=0), 1)
        self.assertEqual(v.wait_until(lambda x: x == 1, timeout=1e300), 1)
        with self.assertRaises(ValueError):
            v.wait_until(lambda x: True, timeout=-1)

    def test_what_pred_raises_ends_the_wait_and_is_raised(self):
        v = self.keep(shm_core.Value("i", 0, self.name("wait-raises")))
        with self.assertRaises(ZeroDivisionError):
            v.wait_until(lambda x: 1 / x)
        with self.assertRaises(TypeError):
            v.wait_until(42)
        # The segment is unharmed.
        self.assertFalse(v.poisoned)
        v.update(lambda x: 3)
        self.assertEqual(v.wait_until(lambda x: x == 3), 3)

    def test_waiting_while_holding_the_lock_is_refused(self):
        v = self.keep(shm_core.Value("i", 0, self.name("wait-held")))
        with v.get_lock():
            with self.assertRaises(RuntimeError) as e:
                v.wait_until(lambda x: x == 1, timeout=1)
        self.assertIn("holds its lock", str(e.exception))
        with self.assertRaises(RuntimeError):
            v.update(lambda x: v.wait_until(lambda y: True) and x)
        # Nothing was stored; the raise poisoned it, as any exception inside update() does.
        self.assertEqual(v.value, 0)

    def test_ctrl_c_interrupts_a_wait(self):
        name = self.name("wait-sigint")
        v = self.keep(shm_core.Value("i", 0, name))
        child = self.python(
            "import shm_core, sys\n"
            f"v = shm_core.Value.open({name!r})\n"
            "print('waiting', flush=True)\n"
            "try:\n"
            "    v.wait_until(lambda x: x == 99)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n"
        )
        child.expect("waiting")
        until_asleep(name)
        child.proc.send_signal(signal.SIGINT)
        child.expect("interrupted")
        self.assertEqual(child.finish(), "")
        self.assertEqual(v.value, 0)


if __name__ == "__main__":
    unittest.main()
