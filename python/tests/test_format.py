"""The descriptor encoding and the fingerprint, byte for byte against Rust's, and the parser's
checks on hostile descriptor bytes."""

from __future__ import annotations

import random
import struct
import unittest

from _support import ShmTestCase

import shm_core
from shm_core import Descriptor as D
from shm_core import DescriptorError

POINT = D.struct("Point", [("x", "h"), ("y", "h"), ("tag", "u")])
NESTED = D.struct(
    "Nested", [("x", "H"), ("y", D.array("i", 3)), ("points", D.array(POINT, 2)), ("on", "?")]
)
MIXED = D.struct(
    "Mixed",
    [
        ("i8_", "b"),
        ("u8_", "B"),
        ("i16_", "h"),
        ("u16_", "H"),
        ("i32_", "i"),
        ("u32_", "I"),
        ("i64_", "q"),
        ("u64_", "Q"),
        ("f32_", "f"),
        ("f64_", "d"),
        ("flag", "?"),
        ("letter", "u"),
        ("grid", D.array(D.array("f", 3), 2)),
        ("hist", D.array("Q", 4)),
        ("inner", NESTED),
        ("tail", "B"),
    ],
)
LEDGER = D.struct(
    "Ledger",
    [
        ("a", "q"),
        ("b", "q"),
        ("c", "d"),
        ("d", "i"),
        ("e", "H"),
        ("f", D.array("I", 4)),
        ("updates", "Q"),
        ("done", "I"),
    ],
)
WORDS = D.struct("Words", [("w", "Q"), ("x", "d"), ("h", "I"), ("stop", "I")])

#: The Rust types of py-peer, as this module describes them.
LAYOUTS = {
    "Mixed": MIXED,
    "Nested": NESTED,
    "Point": POINT,
    "Ledger": LEDGER,
    "Words": WORDS,
    "f64": D.primitive("d"),
    "i32": D.primitive("i"),
    "char": D.primitive("u"),
    "bool": D.primitive("?"),
    "grid": D.array(D.array("f", 3), 2),
}


class FingerprintTest(ShmTestCase):
    def test_every_layout_encodes_and_fingerprints_as_rust_does(self):
        lines = self.run_peer("layouts").splitlines()
        self.assertEqual(len(lines), len(LAYOUTS))
        for line in lines:
            label, fp, hexd = line.split()
            with self.subTest(label):
                ours = LAYOUTS[label]
                rust = bytes.fromhex(hexd)
                self.assertEqual(ours.encode(), rust)
                self.assertEqual(ours.fingerprint, int(fp, 16))
                self.assertEqual(shm_core.fingerprint(rust), int(fp, 16))
                self.assertEqual(D.parse(rust), ours)
                self.assertEqual(str(D.parse(rust)), str(ours))

    def test_the_fingerprint_is_fnv1a_over_the_documented_prefix(self):
        desc = D.primitive("d").encode()
        h = 0xCBF29CE484222325
        version = struct.pack("<I", shm_core.FORMAT_VERSION)
        for b in b"shm-core layout" + version + b"l" + b"\x08" + desc:
            h = ((h ^ b) * 0x100000001B3) % (1 << 64)
        self.assertEqual(shm_core.fingerprint(desc), h)

    def test_primitive_encoding_is_as_documented(self):
        want = b"P" + struct.pack("<QQ", 8, 8) + b"\x03f64" + b"d"
        self.assertEqual(D.primitive("d").encode(), want)

    def test_aliases_are_recorded_as_canonical_codes(self):
        self.assertEqual(D.primitive("l"), D.primitive("q"))
        self.assertEqual(D.primitive("L"), D.primitive("Q"))
        self.assertEqual(D.primitive("c"), D.primitive("B"))
        with self.assertRaises(ValueError):
            D.primitive("x")

    def test_struct_layout_is_repr_c(self):
        self.assertEqual([(f.name, f.offset) for f in POINT.fields], [("x", 0), ("y", 2), ("tag", 4)])
        self.assertEqual((POINT.size, POINT.align), (8, 4))
        aligned = D.struct("Slot", [("count", "Q"), ("sum", "d"), ("last", "I")], align=64)
        self.assertEqual((aligned.size, aligned.align), (64, 64))


class ParseTest(unittest.TestCase):
    def bad(self, data: bytes, words: str) -> None:
        with self.assertRaises(DescriptorError) as cm:
            D.parse(data)
        self.assertIn(words, str(cm.exception))

    @staticmethod
    def node(tag: bytes, size: int, align: int, name: bytes, body: bytes) -> bytes:
        return tag + struct.pack("<QQ", size, align) + bytes([len(name)]) + name + body

    def test_every_consistency_check(self):
        n = self.node
        self.bad(b"", "the descriptor ends")
        self.bad(n(b"P", 8, 8, b"f64", b"d") + b"\0", "1 bytes after the end")
        self.bad(n(b"P", 8, 3, b"f64", b"d"), "not a power of two")
        self.bad(n(b"P", 12, 8, b"f64", b"d"), "not a multiple of alignment")
        self.bad(n(b"P", 8, 8, b"x", b"z"), "unknown type code")
        self.bad(n(b"P", 8, 8, b"x", b"l"), "unknown type code")  # aliases never appear
        self.bad(n(b"P", 16, 8, b"f64", b"d"), "must have size and alignment 8")
        self.bad(n(b"X", 8, 8, b"", b""), "unknown node tag")
        self.bad(n(b"P", 8, 8, b"\xff", b"d"), "not UTF-8")
        elem = n(b"P", 4, 4, b"i32", b"i")
        self.bad(n(b"A", 16, 4, b"", struct.pack("<Q", 3) + elem), "cannot have size 16")
        self.bad(n(b"A", 1 << 63, 4, b"", struct.pack("<Q", 1 << 62) + elem), "cannot have size")

        def field(name: bytes, off: int, node: bytes) -> bytes:
            return bytes([len(name)]) + name + struct.pack("<Q", off) + node

        i32 = elem
        two = struct.pack("<I", 2)
        self.bad(n(b"S", 8, 4, b"S", two + field(b"a", 0, i32) + field(b"a", 4, i32)), "appears twice")
        self.bad(n(b"S", 8, 4, b"S", two + field(b"a", 0, i32) + field(b"b", 2, i32)), "overlaps")
        self.bad(n(b"S", 8, 4, b"S", two + field(b"a", 0, i32) + field(b"b", 6, i32)), "does not fit")
        self.bad(n(b"S", 4, 2, b"S", struct.pack("<I", 1) + field(b"a", 0, i32)), "misaligned")
        self.bad(n(b"S", 8, 4, b"S", struct.pack("<I", 1000) + field(b"a", 0, i32)), "cannot fit")
        deep = n(b"P", 4, 4, b"i32", b"i")
        for _ in range(40):
            deep = n(b"A", 4, 4, b"", struct.pack("<Q", 1) + deep)
        self.bad(deep, "nested more than 32 deep")
        self.bad(b"\0" * 70000, "more than the 65536 allowed")

    def test_random_mutations_never_crash_the_parser(self):
        rng = random.Random(8)
        good = MIXED.encode()
        for _ in range(3000):
            data = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.2:
                data = data[: rng.randrange(len(data))]
            try:
                d = D.parse(bytes(data))
            except DescriptorError:
                continue
            # What parses re-encodes to the same bytes.
            self.assertEqual(d.encode(), bytes(data))


if __name__ == "__main__":
    unittest.main()
