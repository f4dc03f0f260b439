"""Read-only attach (``open(name, readonly=True)``): consistent reads while other processes write,
every write refused with ``ReadOnlyError`` naming the segment, a read-only buffer, a user who may
only read the segment, and a writer killed mid-update seen rolled back by an observer that
cannot roll it back in the segment."""

from __future__ import annotations

import ctypes
import io
import json
import os
import pickle
import random
import subprocess
import sys
import threading
import time
import unittest

import _support as F
from _support import PACKAGE_PATH, ShmTestCase, header_u64

import shm_core
from shm_core import Descriptor, ReadOnlyError

INNER = Descriptor.struct("Inner", [("x", "i"), ("y", "i")])
STATS = Descriptor.struct(
    "Stats",
    [
        ("requests", "Q"),
        ("load", "d"),
        ("hist", Descriptor.array("I", 4)),
        ("inner", INNER),
        ("state", Descriptor.enum("State", "u8", ["Idle", "Busy"], default="Idle")),
    ],
    align=8,
)

PYBUF_WRITABLE = 0x0001


class _PyBuffer(ctypes.Structure):
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


def get_buffer(obj, flags: int) -> int:
    """``PyObject_GetBuffer(obj, flags)`` as C code calls it, the buffer released at once: 0, or
    the exception the exporter raised."""
    view = _PyBuffer()
    get = ctypes.pythonapi.PyObject_GetBuffer
    get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
    r = get(obj, ctypes.byref(view), flags)
    release = ctypes.pythonapi.PyBuffer_Release
    release.argtypes = [ctypes.POINTER(_PyBuffer)]
    release(ctypes.byref(view))
    return r


#: A uid and a group the tests run as when they need another user (root only).
NOBODY = 65534
GROUP = 4242


class ReadsTest(ShmTestCase):
    def test_reads_consistent_values_while_rust_updates(self):
        # `update-forever` sets every element to k, k + 1, ... one update each: an observer must
        # only ever see all elements equal, and see them grow.
        name = self.name("roreads")
        self.keep(shm_core.Array("q", 5000, name=name))
        ro = self.keep(shm_core.open(name, readonly=True))
        self.assertIsInstance(ro, shm_core.Array)
        self.assertTrue(ro.readonly)
        writer = self.peer("update-forever", name)
        writer.expect("started")
        seen = []
        deadline = time.monotonic() + 60
        while len(set(seen)) < 5 and time.monotonic() < deadline:
            v = ro.snapshot()
            self.assertEqual(len(v), 5000)
            self.assertEqual(len(set(v)), 1, f"a torn snapshot: {sorted(set(v))[:4]}")
            part = ro[100:4000:7]
            self.assertEqual(len(set(part)), 1, f"a torn slice: {sorted(set(part))[:4]}")
            seen.append(v[0])
        writer.kill9()
        self.assertEqual(seen, sorted(seen), "values went back")
        self.assertGreaterEqual(len(set(seen)), 5, f"the writer's updates were not seen: {seen}")
        self.assertGreaterEqual(ro[0], seen[-1])
        self.assertEqual(len(ro), 5000)

    def test_struct_value_and_array_reads(self):
        name = self.name("rostruct")
        rw = self.keep(
            shm_core.create(
                name,
                STATS,
                {"requests": 7, "load": 0.5, "hist": [1, 2, 3, 4], "inner": {"x": -1, "y": 2}},
            )
        )
        ro = self.keep(shm_core.open(name, readonly=True))
        self.assertIsInstance(ro, shm_core.Segment)
        self.assertEqual(ro.snapshot(), rw.snapshot())
        self.assertEqual((ro["requests"], ro["load"], ro["hist"][2], ro["inner"]["x"]), (7, 0.5, 3, -1))
        self.assertEqual(ro["hist"][1:3], [2, 3])
        self.assertEqual(ro["state"], "Idle")
        self.assertEqual(ro["inner"].snapshot(), {"x": -1, "y": 2})
        rw.update(requests=8, state="Busy", inner={"y": 5})
        self.assertEqual(ro.snapshot(), rw.snapshot())
        self.assertEqual(ro.snapshot()["state"], "Busy")
        info = ro.info()
        self.assertEqual((info["name"], info["type"], info["creator_alive"]), (name, "Stats", True))
        self.assertEqual(info["creator_pid"], os.getpid())

        v_name = self.name("rovalue")
        v = self.keep(shm_core.Value("d", 1.5, name=v_name))
        rv = self.keep(shm_core.Value.open(v_name, "d", readonly=True))
        self.assertEqual((rv.value, rv.snapshot()), (1.5, 1.5))
        v.value = 2.5
        self.assertEqual(rv.value, 2.5)
        self.assertEqual(self.keep(shm_core.open(v_name, readonly=True)).value, 2.5)

        a_name = self.name("roarray")
        a = self.keep(shm_core.Array("i", [1, 2, 3, 4, 5], name=a_name))
        ra = self.keep(shm_core.Array.open(a_name, "i", readonly=True))
        self.assertEqual((ra[0], ra[-1], ra[1:4], ra[::-2], ra[4:1:-1], ra[3:1]), (1, 5, [2, 3, 4], [5, 3, 1], [5, 4, 3], []))
        self.assertEqual(ra.tolist(), [1, 2, 3, 4, 5])
        self.assertEqual(list(ra), [1, 2, 3, 4, 5])
        with self.assertRaises(IndexError):
            ra[5]
        a.update([5, 4, 3, 2, 1])
        self.assertEqual(ra.snapshot(), [5, 4, 3, 2, 1])
        # Another layout than expected: refused, as for a read-write open.
        with self.assertRaises(shm_core.LayoutMismatch):
            shm_core.Array.open(a_name, "q", readonly=True)
        with self.assertRaises(shm_core.LayoutMismatch):
            shm_core.Value.open(a_name, readonly=True)
        with self.assertRaises(shm_core.NotFound):
            shm_core.open(self.name("romissing"), readonly=True)

    def test_wait_until_poisoned_and_creator_alive(self):
        name = self.name("rowait")
        v = self.keep(shm_core.Value("Q", 0, name=name))
        ro = self.keep(shm_core.open(name, readonly=True))

        def later():
            time.sleep(0.05)
            v.update(lambda x: x + 3)

        t = threading.Thread(target=later)
        t.start()
        try:
            # No read-write waiter is registered: the observer sees the change at a re-check.
            self.assertEqual(ro.wait_until(lambda x: x >= 3, timeout=30), 3)
        finally:
            t.join()
        self.assertIsNone(ro.wait_until(lambda x: x > 3, timeout=0.05))

        self.assertFalse(ro.poisoned)
        with self.assertRaises(ZeroDivisionError):
            with v.get_lock():
                1 / 0  # an exception leaving the block poisons the lock
        self.assertTrue(v.poisoned)
        self.assertTrue(ro.poisoned)
        self.assertEqual(ro.snapshot(), 3)  # reads are unaffected
        v.clear_poison()
        self.assertFalse(ro.poisoned)
        self.assertTrue(ro.info()["creator_alive"])

        s_name = self.name("rowaits")
        rw = self.keep(shm_core.create(s_name, STATS))
        rs = self.keep(shm_core.open(s_name, readonly=True))
        t = threading.Thread(target=lambda: (time.sleep(0.05), rw.update(state="Busy")))
        t.start()
        try:
            got = rs.wait_until(lambda s: s["state"] == "Busy", timeout=30)
        finally:
            t.join()
        self.assertEqual(got, rw.snapshot())


class WritesRefusedTest(ShmTestCase):
    def refused(self, name: str, f, what: str) -> None:
        with self.assertRaises(ReadOnlyError) as cm:
            f()
        e = cm.exception
        self.assertIsInstance(e, PermissionError)
        self.assertIsInstance(e, shm_core.ShmError)
        self.assertEqual(e.name, name)
        self.assertIn(f"segment `{name}` is attached read-only: {what} would write to it", str(e))

    def test_every_write_path_of_a_struct_is_refused(self):
        name = self.name("rowrite")
        rw = self.keep(shm_core.create(name, STATS, {"requests": 1, "hist": [1, 2, 3, 4]}))
        ro = self.keep(shm_core.open(name, readonly=True))
        before = rw.snapshot()
        self.refused(name, lambda: ro.__setitem__("requests", 2), "assigning `requests`")
        self.refused(name, lambda: ro.__setitem__("state", "Busy"), "assigning `state`")
        self.refused(name, lambda: ro["inner"].__setitem__("x", 2), "assigning `inner.x`")
        self.refused(name, lambda: ro["hist"].__setitem__(1, 9), "assigning `hist[1]`")
        self.refused(name, lambda: ro["hist"].__setitem__(slice(0, 2), [9, 9]), "assigning `hist`")
        self.refused(name, lambda: ro.update(requests=5), "update()")
        self.refused(name, lambda: ro.update({"requests": 5}), "update()")
        self.refused(name, lambda: ro.update(lambda s: s.update(requests=5)), "update()")
        self.refused(name, lambda: ro.update(), "update()")
        self.refused(name, ro.get_lock, "get_lock() (locking writes the lock word)")
        self.refused(name, lambda: ro.get_lock(timeout=1), "get_lock() (locking writes the lock word)")
        self.refused(name, ro.clear_poison, "clear_poison()")
        self.refused(name, ro.notify, "notify() (it writes the segment's header)")
        self.assertEqual(rw.snapshot(), before)
        self.assertFalse(rw.poisoned)
        # Pickled, it attaches read only again.
        again = self.keep(pickle.loads(pickle.dumps(ro)))
        self.assertTrue(again.readonly)
        self.assertEqual(again.snapshot(), before)
        self.refused(name, lambda: again.update(requests=5), "update()")
        self.assertIn("(read-only)", repr(ro))
        self.assertFalse(rw.readonly)

    def test_every_write_path_of_a_value_and_an_array_is_refused(self):
        v_name = self.name("rowritev")
        v = self.keep(shm_core.Value("i", 4, name=v_name))
        rv = self.keep(shm_core.open(v_name, readonly=True))
        self.refused(v_name, lambda: setattr(rv, "value", 5), "setting .value")
        self.refused(v_name, lambda: rv.update(lambda x: x + 1), "update()")
        self.refused(v_name, lambda: rv.update(5), "update()")
        self.refused(v_name, rv.get_lock, "get_lock() (locking writes the lock word)")
        self.refused(v_name, rv.clear_poison, "clear_poison()")
        self.refused(v_name, rv.notify, "notify() (it writes the segment's header)")
        self.assertEqual(v.value, 4)

        a_name = self.name("rowritea")
        a = self.keep(shm_core.Array("d", [0.5, 1.5], name=a_name))
        ra = self.keep(shm_core.open(a_name, readonly=True))
        self.refused(a_name, lambda: ra.__setitem__(0, 2.0), "item assignment")
        self.refused(a_name, lambda: ra.__setitem__(slice(0, 2), [2.0, 3.0]), "item assignment")
        self.refused(a_name, lambda: ra.update([2.0, 3.0]), "update()")
        self.refused(a_name, lambda: ra.update({1: 2.0}), "update()")
        self.refused(a_name, ra.get_lock, "get_lock() (locking writes the lock word)")
        self.assertEqual(a.snapshot(), [0.5, 1.5])

    @unittest.skipUnless(shm_core.BUFFER_PROTOCOL, "the extension was built without the buffer protocol")
    def test_the_buffer_is_read_only(self):
        name = self.name("robuf")
        a = self.keep(shm_core.Array("q", [1, 2, 3], name=name))
        ra = self.keep(shm_core.open(name, readonly=True))
        m = memoryview(ra)
        self.assertEqual((m.format, m.itemsize, m.shape, m.readonly), ("q", 8, (3,), True))
        self.assertEqual(m.tolist(), [1, 2, 3])
        with self.assertRaises(TypeError):
            m[0] = 5
        a[1] = 20  # the view is the segment itself
        self.assertEqual(m[1], 20)
        m.release()
        # Whoever asks for a writable buffer is refused, naming the segment.
        with self.assertRaises(TypeError):
            io.BytesIO(b"\x09" * 24).readinto(ra)
        with self.assertRaises(BufferError) as cm:
            get_buffer(ra, PYBUF_WRITABLE)
        self.assertIn(f"segment `{name}` is attached read-only", str(cm.exception))
        # The same request of a read-write handle is granted.
        self.assertEqual(get_buffer(a, PYBUF_WRITABLE), 0)
        self.assertEqual(a.snapshot(), [1, 20, 3])
        ra.close()  # no export left counted by the refusal

    @unittest.skipUnless(shm_core.BUFFER_PROTOCOL, "the extension was built without the buffer protocol")
    def test_numpy_array_of_a_read_only_handle_is_not_writeable(self):
        try:
            import numpy as np
        except ImportError:
            if os.environ.get("SHM_PY_NEED_NUMPY") == "1":
                raise
            self.skipTest("numpy is not installed")
        name = self.name("ronp")
        a = self.keep(shm_core.Array("q", 100, name=name))
        ra = self.keep(shm_core.open(name, readonly=True))
        view = np.frombuffer(ra, dtype=np.int64)
        self.assertFalse(view.flags.writeable)
        with self.assertRaises(ValueError):
            view[0] = 1
        with self.assertRaises(ValueError):
            view.setflags(write=True)
        a.update(list(range(100)))
        self.assertEqual(int(view.sum()), sum(range(100)))
        del view


class OtherUserTest(ShmTestCase):
    @unittest.skipUnless(os.geteuid() == 0, "running as another user needs root")
    def test_a_group_reader_attaches_read_only_and_is_refused_read_write(self):
        name = self.name("rogroup")
        rw = self.keep(shm_core.Array("q", 1000, name=name, mode=0o640))
        os.chown(F.shm_path(name), -1, GROUP)
        # The reader, as another uid whose only group is the segment's: read-write refused
        # (saying it may attach read-only), read-only snapshots consistent while this process
        # updates, and every write refused. It loads the package first, then gives up root
        # (the interpreter may live where that user cannot read).
        script = f"""
import json, os, shm_core
os.setgroups([])
os.setgid({GROUP})
os.setuid({NOBODY})
assert (os.getuid(), os.getgid(), os.getgroups()) == ({NOBODY}, {GROUP}, [])
out = {{}}
try:
    shm_core.open({name!r}, mode=0o640)
    out["rw"] = "opened"
except shm_core.PermissionDenied as e:
    out["rw"] = str(e)
ro = shm_core.open({name!r}, mode=0o640, readonly=True)
print("attached", flush=True)
seen, torn = set(), 0
while len(seen) < 5 or min(seen) == 0:
    v = ro.snapshot()
    torn += len(set(v)) != 1
    seen.add(v[0])
    if len(seen) > 1000:
        break
out["torn"] = torn
out["seen"] = sorted(seen)
try:
    ro[0] = 1
except shm_core.ReadOnlyError as e:
    out["store"] = str(e)
out["poisoned"] = ro.poisoned
print(json.dumps(out), flush=True)
"""
        env = dict(os.environ)
        env["PYTHONPATH"] = PACKAGE_PATH
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
        )
        stop = threading.Event()

        def write():
            k = 0
            while not stop.is_set():
                k += 1
                rw.update([k] * 1000)

        try:
            line = proc.stdout.readline().decode()
            self.assertEqual(line, "attached\n", proc.stderr.read().decode() if not line else line)
            writer = threading.Thread(target=write)
            writer.start()
            try:
                out, err = proc.communicate(timeout=120)
            finally:
                stop.set()
                writer.join()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err.decode())
        got = json.loads(out.decode())
        self.assertIn(f"segment `{name}`: permission denied", got["rw"])
        self.assertIn("does not give its group read and write access", got["rw"])
        self.assertIn("shm_core.open(name, readonly=True)", got["rw"])
        self.assertEqual(got["torn"], 0)
        self.assertGreaterEqual(len(got["seen"]), 5)
        self.assertIn(f"segment `{name}` is attached read-only", got["store"])
        self.assertFalse(got["poisoned"])
        self.assertEqual(len(set(rw.snapshot())), 1)


class KilledWriterTest(ShmTestCase):
    def test_a_writer_killed_mid_update_is_seen_rolled_back_by_an_observer(self):
        # `update-forever` sets all elements to k, k + 1, ... one update each; killed at a random
        # moment, it sometimes dies between the stores of an update (the counter odd). An
        # observer reading meanwhile, and after, sees whole values only, never hangs, and leaves
        # the segment as it is (it cannot write): the read-write handle rolls it back after.
        name = self.name("rokill")
        a = self.keep(shm_core.Array("q", 20_000, name=name))
        ro = self.keep(shm_core.open(name, readonly=True))
        rng = random.Random(5)
        rounds = mid_write = 0
        while rounds < 200 and (mid_write < 1 or rounds < 8):
            rounds += 1
            stop = threading.Event()
            torn = []
            reads = [0]

            def observe():
                while not stop.is_set():
                    v = ro.snapshot()
                    reads[0] += 1
                    if len(set(v)) != 1:
                        torn.append(sorted(set(v))[:4])

            observer = threading.Thread(target=observe)
            observer.start()
            try:
                writer = self.peer("update-forever", name)
                writer.expect("started")
                time.sleep(rng.uniform(0, 0.02))
                if rounds % 2 == 1:
                    # Stopped inside a journaled write first: killed between its stores.
                    self.assertTrue(
                        F.stop_inside_write_window(name, writer.proc.pid),
                        f"round {rounds}: never stopped inside a write",
                    )
                writer.kill9()
                odd = header_u64(name, F.OFF_SEQ) & 1
                recorded = header_u64(name, F.OFF_JOURNAL_LEN) != 0
                # The observer keeps reading across the death.
                time.sleep(0.01)
            finally:
                stop.set()
                observer.join(timeout=60)
            self.assertFalse(observer.is_alive(), f"round {rounds}: the observer hangs")
            self.assertEqual(torn, [], f"round {rounds}: torn snapshots")
            v = ro.snapshot()
            self.assertEqual(len(set(v)), 1, f"round {rounds}: a mix of {sorted(set(v))[:4]}")
            if odd and recorded:
                mid_write += 1
                # The observer computed the rollback in its own copy: the segment is as the
                # dead writer left it, and the rolled-back value is the one before its update.
                self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 1, f"round {rounds}")
                self.assertFalse(ro.poisoned, f"round {rounds}")
                self.assertEqual(a.snapshot(), v, f"round {rounds}")
            # A read-write handle rolls it back in the segment.
            self.assertEqual(a.snapshot(), v)
            self.assertEqual(header_u64(name, F.OFF_SEQ) & 1, 0)
            self.assertEqual(ro.snapshot(), v)
            # Killed holding the lock outside the stores: poisoned, rightly.
            a.clear_poison()
        print(
            f"\n    {rounds} Rust writers killed while a read-only observer read: {mid_write} between stores, all seen rolled back",
            file=sys.stderr,
        )
        self.assertGreaterEqual(mid_write, 1, "no kill landed between stores")


if __name__ == "__main__":
    unittest.main()
