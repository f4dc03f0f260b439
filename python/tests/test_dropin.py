"""multiprocessing's own lesson on shm_core: children started by fork, spawn and forkserver,
pickled handles, a forked child that exits, the buffer protocol, and the signatures."""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import pickle
import unittest

from _support import PACKAGE_PATH, ShmTestCase, shm_path

import shm_core


def _add(v, a, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    a[0] += 0  # the array arrives usable too
    a.update(lambda xs: xs.__setitem__(1, xs[1] + n))


def _exit_child(v):
    # A child that uses the value and exits normally, running the exit handlers.
    v.value = 5


class ChildrenTest(ShmTestCase):
    def run_children(self, method: str) -> None:
        ctx = mp.get_context(method)
        os.environ["PYTHONPATH"] = PACKAGE_PATH + os.pathsep + os.environ.get("PYTHONPATH", "")
        v = self.keep(shm_core.Value("i", 0, name=self.name(method)))
        a = self.keep(shm_core.Array("q", [0, 0], name=self.name(method + "a")))
        procs = [ctx.Process(target=_add, args=(v, a, 200)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(v.value, 800)
        self.assertEqual(a[:], [0, 800])
        self.assertTrue(os.path.exists(shm_path(v.name)), "a child removed its parent's segment")

    def test_fork(self):
        self.run_children("fork")

    def test_spawn(self):
        self.run_children("spawn")

    def test_forkserver(self):
        self.run_children("forkserver")

    def test_a_pool_gets_handles_as_arguments(self):
        v = self.keep(shm_core.Value("q", 0, name=self.name("pool")))
        a = self.keep(shm_core.Array("q", [0, 0], name=self.name("poola")))
        with mp.get_context("spawn").Pool(2) as pool:
            pool.starmap(_add, [(v, a, 10)] * 4)
        self.assertEqual((v.value, a[1]), (40, 40))

    def test_a_forked_child_never_removes_its_parents_segment(self):
        v = self.keep(shm_core.Value("i", 1, name=self.name("forked")))
        for how in ("exit", "close"):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    v.value = 7
                    if how == "close":
                        v.close()  # the child's copy of the creating handle
                    else:
                        shm_core._close_created()  # what the exit handlers run
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertTrue(os.path.exists(shm_path(v.name)), how)
            self.assertEqual(v.value, 7)
        ctx = mp.get_context("fork")
        p = ctx.Process(target=_exit_child, args=(v,))
        p.start()
        p.join(30)
        self.assertEqual(v.value, 5)
        self.assertTrue(os.path.exists(shm_path(v.name)))


class PickleTest(ShmTestCase):
    def test_handles_pickle_by_name_and_layout(self):
        v = self.keep(shm_core.Value("d", 2.5, name=self.name("pv")))
        a = self.keep(shm_core.Array("i", [1, 2, 3], name=self.name("pa")))
        c = self.keep(shm_core.Value("c", b"x", name=self.name("pc")))
        point = shm_core.Descriptor.struct("Point", [("x", "i"), ("y", "i")])
        s = self.keep(shm_core.create(self.name("ps"), point, {"x": 4}))
        for h in (v, a, c, s):
            with self.subTest(type(h).__name__):
                g = self.keep(pickle.loads(pickle.dumps(h)))
                self.assertIs(type(g), type(h))
                self.assertEqual((g.name, g.type, g.is_owner), (h.name, h.type, False))
                self.assertEqual(g.snapshot(), h.snapshot())
                g.close()
        self.assertEqual(pickle.loads(pickle.dumps(point)), point)
        # The layout travels too: a segment replaced by another layout is refused.
        blob = pickle.dumps(a)
        a.close()
        self.keep(shm_core.Array("q", [1], name=a.name))
        with self.assertRaises(shm_core.LayoutMismatch):
            pickle.loads(blob)


class SignatureTest(ShmTestCase):
    def test_multiprocessing_signatures(self):
        v = self.keep(shm_core.Value(ctypes.c_double, 1.5, lock=False, name=self.name("ct")))
        self.assertEqual((v.typecode, v.value), ("d", 1.5))
        r = self.keep(shm_core.RawValue("i", 3, name=self.name("raw")))
        self.assertEqual(r.value, 3)
        ra = self.keep(shm_core.RawArray(ctypes.c_int, 4, name=self.name("rawa")))
        self.assertEqual(ra[:], [0, 0, 0, 0])
        c = self.keep(shm_core.Array("c", b"hello", name=self.name("chars")))
        self.assertEqual((c[0], c[:]), (b"h", b"hello"))
        c[0] = b"j"
        self.assertEqual(c.snapshot(), b"jello")
        with self.assertRaises(ValueError):
            shm_core.Value("i", 0, lock=mp.Lock())
        with self.assertRaises(OverflowError):  # multiprocessing wraps; this refuses
            v2 = self.keep(shm_core.Value("b", 0, name=self.name("ovf")))
            v2.value = 200

    def test_errors_carry_errno_and_filename(self):
        name = self.name("missing")
        with self.assertRaises(FileNotFoundError) as cm:
            shm_core.Value.open(name)
        e = cm.exception
        self.assertEqual((e.errno, e.filename), (2, shm_path(name)))
        v = self.keep(shm_core.Value("i", 0, name=self.name("dup")))
        with self.assertRaises(FileExistsError) as cm:
            shm_core.Value("i", 0, name=v.name)
        self.assertEqual(cm.exception.errno, 17)


class BufferTest(ShmTestCase):
    @unittest.skipUnless(shm_core.BUFFER_PROTOCOL, "the extension was built without the buffer protocol")
    def test_memoryview_is_the_payload(self):
        a = self.keep(shm_core.Array("d", [0.5, 1.5, 2.5], name=self.name("buf")))
        m = memoryview(a)
        self.assertEqual((m.format, m.itemsize, m.shape, m.readonly), ("d", 8, (3,), False))
        self.assertEqual(m.tolist(), [0.5, 1.5, 2.5])
        m[1] = 9.0  # a plain store into the segment
        self.assertEqual(a[1], 9.0)
        a[2] = -1.0
        self.assertEqual(m[2], -1.0)
        with self.assertRaises(BufferError):
            a.close()  # the mapping stays while a view of it exists
        m.release()
        v = self.keep(shm_core.Value("i", 1, name=self.name("nobuf")))
        with self.assertRaises(BufferError):
            memoryview(v)

    @unittest.skipUnless(shm_core.BUFFER_PROTOCOL, "the extension was built without the buffer protocol")
    def test_numpy_reads_a_live_array_without_a_copy(self):
        try:
            import numpy as np
        except ImportError:
            if os.environ.get("SHM_PY_NEED_NUMPY") == "1":
                raise
            self.skipTest("numpy is not installed")
        name = self.name("np")
        a = self.keep(shm_core.Array("q", 1000, name=name))
        view = np.frombuffer(a, dtype=np.int64)
        other = self.keep(shm_core.Array.open(name, "q"))
        other.update(list(range(1000)))  # another handle, as another process would
        self.assertEqual(int(view.sum()), sum(range(1000)))
        view[:] += 1
        self.assertEqual(other[999], 1000)
        a.update(np.zeros(1000, dtype=np.int64))  # a consistent write from a numpy array
        self.assertEqual(int(view.sum()), 0)
        del view


if __name__ == "__main__":
    unittest.main()
