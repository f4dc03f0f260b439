"""The Python API on its own: multiprocessing's Value and Array, field access, update forms,
lifetimes."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import unittest

from _support import PACKAGE_PATH, ShmTestCase, poke, shm_path

import shm_core
from shm_core import Descriptor as D


class ValueArrayTest(ShmTestCase):
    def test_value_like_multiprocessing(self):
        v = self.keep(shm_core.Value("i", 7, name=self.name("v")))
        self.assertEqual((v.value, v.typecode, v.type), (7, "i", "i32"))
        v.value = -3
        with v.get_lock():
            v.value += 10
        self.assertEqual(v.get_obj().value, 7)
        self.assertEqual(v.update(lambda x: x * 2), 14)
        self.assertEqual(v.snapshot(), 14)
        with self.assertRaises(OverflowError):
            v.value = 1 << 31
        with self.assertRaises(TypeError):
            v.value = 1.5
        with self.assertRaises(TypeError):
            v["x"]
        self.assertEqual(v.value, 14)
        self.assertIs(type(shm_core.open(v.name)), shm_core.Value)

    def test_array_like_multiprocessing(self):
        a = self.keep(shm_core.Array("d", [0.5, 1.5, 2.5, 3.5], name=self.name("a")))
        self.assertEqual(len(a), 4)
        self.assertEqual(a[1], 1.5)
        self.assertEqual(a[-1], 3.5)
        self.assertEqual(a[1:3], [1.5, 2.5])
        self.assertEqual(a[::-1], [3.5, 2.5, 1.5, 0.5])
        self.assertEqual(list(a), [0.5, 1.5, 2.5, 3.5])
        a[0] = 9
        a[2:4] = [7, 8]
        self.assertEqual(a.tolist(), [9.0, 1.5, 7.0, 8.0])
        with self.assertRaises(ValueError):
            a[0:2] = [1]
        with self.assertRaises(IndexError):
            a[4]
        a.update([1, 2, 3, 4])
        a.update({0: 10})
        self.assertEqual(a.snapshot(), [10.0, 2.0, 3.0, 4.0])
        with self.assertRaises(ValueError):
            a.update([1, 2])
        with self.assertRaises(TypeError):
            a.update(x=1)
        self.assertIs(type(shm_core.open(a.name)), shm_core.Array)
        empty = self.keep(shm_core.Array("i", [], name=self.name("empty")))
        self.assertEqual((len(empty), empty.snapshot()), (0, []))
        self.assertEqual(shm_core.Array.open(empty.name).snapshot(), [])

    def test_chars_and_bools(self):
        a = self.keep(shm_core.Array("u", list("héllo"), name=self.name("chars")))
        self.assertEqual("".join(a.snapshot()), "héllo")
        with self.assertRaises(TypeError):
            a[0] = "ab"
        with self.assertRaises(ValueError):
            a[0] = "\ud800"  # a surrogate is no char
        # Bytes another process wrote that are no char or bool read as U+FFFD and True.
        poke(a.name, 0, (0xD800).to_bytes(4, "little"))
        self.assertEqual(a[0], "\ufffd")
        b = self.keep(shm_core.Array("?", [True, False], name=self.name("bools")))
        poke(b.name, 0, b"\x02")
        self.assertEqual(b.snapshot(), [True, False])


class StructTest(ShmTestCase):
    STATS = D.struct(
        "Stats",
        [
            ("requests", "Q"),
            ("load", "d"),
            ("hist", D.array("I", 4)),
            ("inner", D.struct("Inner", [("x", "h"), ("y", D.array("f", 2))])),
        ],
    )

    def test_fields_views_and_update_forms(self):
        s = self.keep(shm_core.create(self.name("stats"), self.STATS, {"load": 0.5}))
        self.assertEqual(
            s.snapshot(),
            {"requests": 0, "load": 0.5, "hist": [0] * 4, "inner": {"x": 0, "y": [0.0, 0.0]}},
        )
        s["requests"] = 3
        s["hist"][2] = 9
        s["inner"]["y"][1] = 1.25
        s["inner"] = {"x": -1}
        self.assertEqual(s["inner"].snapshot(), {"x": -1, "y": [0.0, 1.25]})
        self.assertIn("hist", s["inner"].keys() + ["hist"])
        self.assertEqual(len(s["hist"]), 4)
        self.assertIsInstance(s["hist"], shm_core.ArrayView)
        self.assertIsInstance(s["inner"], shm_core.StructView)
        s.update(requests=4, hist={0: 1}, inner={"y": [2, 3]})
        self.assertEqual(s.snapshot()["inner"]["y"], [2.0, 3.0])

        def bump(v):
            v["requests"] += 1
            v["hist"][3] = v["requests"]
            return v["requests"]

        self.assertEqual(s.update(bump), 5)
        self.assertEqual(s["hist"][:], [1, 0, 9, 5])
        for bad, exc in [
            (lambda v: v.pop("load"), KeyError),
            (lambda v: v.update(nope=1), KeyError),
            (lambda v: v["hist"].append(1), ValueError),
            (lambda v: v.update(load="x"), TypeError),
        ]:
            with self.assertRaises(exc):
                s.update(bad)
        with self.assertRaises(KeyError):
            s.update(nope=1)
        with self.assertRaises(TypeError):
            s.update(bump, requests=1)
        self.assertEqual(s["requests"], 5)

    def test_array_of_structs(self):
        point = D.struct("Point", [("x", "i"), ("y", "i")])
        a = self.keep(shm_core.create(self.name("points"), point, [{"x": 1}, {"y": 2}], count=2))
        self.assertIs(type(a), shm_core.Array)
        self.assertIsNone(a.typecode)
        self.assertEqual(a[1]["y"], 2)
        a[0]["y"] = 5
        a.update({1: {"x": 7}})
        self.assertEqual(a.snapshot(), [{"x": 1, "y": 5}, {"x": 7, "y": 2}])
        self.assertEqual(shm_core.Array.open(a.name, point).snapshot()[0]["y"], 5)


class LifetimeTest(ShmTestCase):
    def test_the_creator_removes_unless_kept_and_openers_never_do(self):
        name = self.name("life")
        v = shm_core.Value("i", 1, name=name)
        w = shm_core.Value.open(name)
        w.close()
        self.assertTrue(os.path.exists(shm_path(name)))
        with self.assertRaises(ValueError):
            w.value
        v.close()
        v.close()  # twice is fine
        self.assertFalse(os.path.exists(shm_path(name)))

        kept = self.name("kept")
        with shm_core.Value("i", 2, name=kept, keep=True) as k:
            self.assertTrue(k.info()["keep"])
        self.assertEqual(shm_core.Value.open(kept).value, 2)
        shm_core.remove(kept)
        with self.assertRaises(shm_core.NotFound):
            shm_core.remove(kept)

    def test_garbage_collection_and_exit_remove_what_was_created(self):
        name = self.name("gc")
        shm_core.Value("i", 1, name=name)  # dropped at once
        gc.collect()
        self.assertFalse(os.path.exists(shm_path(name)))
        name = self.name("exit")
        code = f"import shm_core; v = shm_core.Array('i', [1, 2], name={name!r}); print(v.name)"
        env = dict(os.environ, PYTHONPATH=PACKAGE_PATH)
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
        self.assertFalse(os.path.exists(shm_path(name)))

    def test_a_removed_name_reused_is_not_removed_by_the_old_creator(self):
        name = self.name("reuse")
        old = shm_core.Value("i", 1, name=name)
        shm_core.remove(name)
        new = self.keep(shm_core.Value("i", 2, name=name))
        old.close()
        self.assertEqual(shm_core.Value.open(name).value, 2)
        self.assertTrue(new.is_owner)

    def test_generated_names_and_mode(self):
        v = self.keep(shm_core.Value("i", 0, mode=0o660))
        self._names.append(v.name)
        self.assertEqual(os.stat(shm_path(v.name)).st_mode & 0o777, 0o660)
        with self.assertRaises(shm_core.PermissionDenied):
            shm_core.Value.open(v.name)  # more open than the default 0o600 accepts
        self.assertEqual(shm_core.Value.open(v.name, mode=0o660).value, 0)


if __name__ == "__main__":
    unittest.main()
