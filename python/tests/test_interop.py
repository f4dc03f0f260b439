"""Rust and Python on the same segments: every primitive, nested arrays and structs, read and
written from both sides; Python's Value and Array opened and changed by Rust."""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess
import sys
import unittest

from _support import REPO, ShmTestCase
from test_format import MIXED

import shm_core

#: `mixed_example()` of py-peer.
EXAMPLE = {
    "i8_": -128,
    "u8_": 255,
    "i16_": -32768,
    "u16_": 65535,
    "i32_": -(2**31),
    "u32_": 2**32 - 1,
    "i64_": -(2**63),
    "u64_": 2**64 - 1,
    "f32_": 1.5,
    "f64_": -2.25e-10,
    "flag": True,
    "letter": "é",
    "grid": [[0.5, 1.5, 2.5], [-0.5, -1.5, -2.5]],
    "hist": [1, 1 << 40, 3, 2**64 - 2],
    "inner": {
        "x": 7,
        "y": [-1, 0, 1],
        "points": [{"x": -3, "y": 4, "tag": "A"}, {"x": 5, "y": -6, "tag": "\N{CRAB}"}],
        "on": False,
    },
    "tail": 42,
}


def flatten(value, path=""):
    """``path=value`` in py-peer's dump format."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += flatten(v, f"{path}.{k}" if path else k)
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += flatten(v, f"{path}[{i}]")
        return out
    return [(path, value)]


def parse_dump(text, like):
    """py-peer's dump, with each value converted to the type of the same path in ``like``."""
    types = dict(flatten(like))
    out = {}
    for line in text.splitlines():
        path, raw = line.split("=", 1)
        t = types[path]
        if isinstance(t, bool):
            out[path] = raw == "true"
        elif isinstance(t, str):
            out[path] = chr(int(raw))
        elif isinstance(t, float):
            out[path] = float(raw)
        else:
            out[path] = int(raw)
    return out


class RustCreatesTest(ShmTestCase):
    def test_python_reads_every_primitive_nested_array_and_struct(self):
        name = self.name("mixed")
        rust = self.peer("create-mixed", name)
        rust.expect("ready")
        seg = self.keep(shm_core.open(name, expect=MIXED))
        self.assertIs(type(seg), shm_core.Segment)
        self.assertEqual(seg.type, "Mixed")
        self.assertEqual(seg.snapshot(), EXAMPLE)
        # Field by field, by name and path.
        for key in EXAMPLE:
            if not isinstance(EXAMPLE[key], (dict, list)):
                self.assertEqual(seg[key], EXAMPLE[key], key)
                self.assertIs(type(seg[key]), type(EXAMPLE[key]), key)
        self.assertEqual(seg["hist"][3], 2**64 - 2)
        self.assertEqual(seg["hist"][-1], 2**64 - 2)
        self.assertEqual(seg["hist"][1:3], [1 << 40, 3])
        self.assertEqual(seg["grid"][1][2], -2.5)
        self.assertEqual(seg["inner"]["x"], 7)
        self.assertEqual(seg["inner"]["points"][1]["tag"], "\N{CRAB}")
        self.assertEqual(seg["inner"]["points"].snapshot()[0], {"x": -3, "y": 4, "tag": "A"})
        self.assertEqual(list(seg["inner"]["y"]), [-1, 0, 1])
        self.assertEqual(seg.keys(), list(EXAMPLE))
        with self.assertRaises(KeyError):
            seg["nope"]
        with self.assertRaises(IndexError):
            seg["hist"][4]
        info = seg.info()
        self.assertEqual(info["creator_pid"], rust.proc.pid)
        self.assertTrue(info["creator_alive"])
        self.assertFalse(seg.is_owner)
        seg.close()
        rust.finish()
        self.assertFalse(os.path.exists(f"/dev/shm/{name}"))

    def test_rust_sees_what_python_writes(self):
        name = self.name("mixedw")
        rust = self.peer("create-mixed", name)
        rust.expect("ready")
        seg = self.keep(shm_core.open(name))
        want = copy.deepcopy(EXAMPLE)
        # One field at a time (single atomic stores).
        seg["i8_"] = 127
        seg["u64_"] = 0
        seg["f32_"] = -0.125
        seg["flag"] = False
        seg["letter"] = "z"
        seg["hist"][0] = 99
        seg["inner"]["points"][0]["tag"] = "\N{SNOWMAN}"
        want.update(i8_=127, u64_=0, f32_=-0.125, flag=False, letter="z")
        want["hist"][0] = 99
        want["inner"]["points"][0]["tag"] = "\N{SNOWMAN}"
        # Several at once.
        seg.update(i16_=1234, grid=[[1, 2, 3], [4, 5, 6]], inner={"on": True, "y": {2: 77}})
        want.update(i16_=1234, grid=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        want["inner"]["on"] = True
        want["inner"]["y"][2] = 77

        def change(v):
            v["tail"] += 1
            v["inner"]["points"][1]["x"] = -v["inner"]["points"][1]["x"]
            return "done"

        self.assertEqual(seg.update(change), "done")
        want["tail"] += 1
        want["inner"]["points"][1]["x"] = -5
        self.assertEqual(seg.snapshot(), want)
        rust.send("dump")
        lines = []
        while True:
            line = rust.readline()
            if line == "end":
                break
            lines.append(line)
        self.assertEqual(parse_dump("\n".join(lines), want), dict(flatten(want)))
        seg.close()
        rust.finish()

    def test_value_open_and_layout_mismatch_from_rust(self):
        name = self.name("f32")
        rust = self.peer("create-f32", name)
        rust.expect("ready")
        v = self.keep(shm_core.Value.open(name))
        self.assertEqual((v.typecode, v.value), ("f", 0.25))
        with self.assertRaises(shm_core.LayoutMismatch) as cm:
            shm_core.Value.open(name, "d")
        self.assertIn(name, str(cm.exception))
        self.assertIn("segment holds f32, this program expects f64", str(cm.exception))
        with self.assertRaises(shm_core.LayoutMismatch):
            shm_core.Array.open(name)
        v.close()
        rust.finish()


class PythonCreatesTest(ShmTestCase):
    def test_rust_opens_and_changes_value_and_array(self):
        vname, aname = self.name("value"), self.name("array")
        v = self.keep(shm_core.Value("d", 3.14, name=vname))
        a = self.keep(shm_core.Array("i", [1, 2, 3, 4], name=aname))
        self.assertEqual(self.run_peer("value-f64", vname, "6.5"), "3.14")
        self.assertEqual(v.value, 6.5)
        self.assertEqual(self.run_peer("array-i32", aname), "1 2 3 4")
        self.assertEqual(a[:], [1011, 22, 33, 44])
        self.assertEqual(a.snapshot(), [1011, 22, 33, 44])
        # Rust's own atomics and Python's lock-protected changes add up.
        self.run_peer("add-f64", vname, "1000")
        with v.get_lock():
            v.value += 0.5
        self.assertEqual(v.value, 1007.0)
        v.close()
        a.close()
        # The creating handle removed them.
        self.assertEqual(self.run_peer("try-open", "value-f64", vname).split()[0], "NotFound")

    def test_rust_opens_a_struct_python_laid_out(self):
        name = self.name("pymixed")
        self.keep(shm_core.create(name, MIXED, EXAMPLE))
        self.assertEqual(self.run_peer("check-mixed", name), "same")
        self.assertEqual(self.run_peer("try-open", "ledger", name).split()[0], "LayoutMismatch")

    def test_every_type_code_round_trips_and_rust_agrees_on_the_shape(self):
        samples = {
            "b": -5, "B": 200, "h": -300, "H": 60000, "i": -70000, "I": 4000000000,
            "q": -(2**40), "Q": 2**63 + 1, "l": -7, "L": 7, "f": 0.75, "d": 1e300,
            "?": True, "u": "\N{GREEK SMALL LETTER ALPHA}", "c": b"x",
        }  # fmt: skip
        for code, value in samples.items():
            with self.subTest(code):
                name = self.name("code")
                v = self.keep(shm_core.Value(code, value, name=name))
                self.assertEqual(v.value, value)
                # 'c' is stored as u8: as multiprocessing's, a 'c' handle reads bytes, and a
                # handle that opens the segment without saying 'c' reads the number.
                number = value[0] if isinstance(value, bytes) else value
                self.assertEqual(shm_core.Value.open(name).value, number)
                self.assertEqual(shm_core.Value.open(name, code).value, value)
                a = self.keep(shm_core.Array(code, [value] * 3, name=self.name("codes")))
                self.assertEqual(a.snapshot(), value * 3 if code == "c" else [value] * 3)
                v.close()
                a.close()
        name = self.name("u64")
        self.keep(shm_core.Value("L", 5, name=name))
        self.assertEqual(self.run_peer("try-open", "value-u64", name), "ok")
        self.assertEqual(self.run_peer("try-open", "value-f64", name).split()[0], "LayoutMismatch")
        self.assertEqual(self.run_peer("try-open", "array-i64", name).split()[0], "LayoutMismatch")

    def test_array_of_zeros_and_shape_mismatch(self):
        name = self.name("zeros")
        a = self.keep(shm_core.Array("i", 10, name=name))
        self.assertEqual(a.snapshot(), [0] * 10)
        self.assertEqual(self.run_peer("try-open", "array-i32", name), "ok")
        self.assertEqual(self.run_peer("try-open", "array-i64", name).split()[0], "LayoutMismatch")
        with self.assertRaises(shm_core.LayoutMismatch):
            shm_core.Value.open(name)
        with self.assertRaises(shm_core.LayoutMismatch):
            shm_core.Array.open(name, "I")

    def test_floats_keep_their_bits(self):
        name = self.name("f32bits")
        a = self.keep(shm_core.Array("f", [0.1, -0.0, float("inf")], name=name))
        want = [struct.unpack("f", struct.pack("f", 0.1))[0], -0.0, float("inf")]
        self.assertEqual(a.snapshot(), want)
        self.assertEqual(struct.pack("d", a[1]), struct.pack("d", -0.0))
        a[0] = 1e300  # rounds to f32 as Rust's `as f32` does
        self.assertEqual(a[0], float("inf"))
        with self.assertRaises(TypeError):
            a[0] = "1.0"


class DashboardTest(ShmTestCase):
    def test_the_dashboard_example_prints_a_rust_segment(self):
        name = self.name("dash")
        rust = self.peer("create-mixed", name)
        rust.expect("ready")
        script = os.path.join(REPO, "examples", "python_dashboard.py")
        out = subprocess.run(
            [sys.executable, script, name, "--count", "2", "--interval", "0.01"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        self.assertIn(f"{name}: Mixed, made by pid {rust.proc.pid} (running)", out)
        self.assertIn(", attached read-only\n", out)
        self.assertEqual(out.count("--- "), 2)
        self.assertIn("inner.points  [{x: -3, y: 4, tag: A}, {x: 5, y: -6, tag: \N{CRAB}}]", out)
        line = subprocess.run(
            [sys.executable, script, name, "--json", "--count", "1"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        self.assertEqual(json.loads(line)["value"], EXAMPLE)
        missing = subprocess.run([sys.executable, script, self.name("none")], capture_output=True, text=True)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("does not exist", missing.stderr)
        rust.finish()


if __name__ == "__main__":
    unittest.main()
