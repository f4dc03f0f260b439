"""Enums and texts shared with Rust: Python reads and writes variants by name and texts as
``str``, both ways; refuses what Rust would not store; and reads numbers that are no variant and
bytes that are not UTF-8, planted by a peer that ignores the rules, as Rust does."""

from __future__ import annotations

import struct

from _support import ShmTestCase, shm_path

import shm_core
from shm_core import Descriptor

#: py-peer's `WorkState`, `Level` and `Board`, laid out by this module.
WORK_STATE = Descriptor.enum("WorkState", "u8", ["Idle", "Busy", ("Stopping", 9)], default="Idle")
LEVEL = Descriptor.enum("Level", "i16", [("Low", -300), ("Zero", 0), ("High", 300)], default="Zero")
BOARD = Descriptor.struct(
    "Board", [("state", WORK_STATE), ("client", Descriptor.text(16)), ("level", LEVEL)]
)

#: py-peer's `board_example()`.
EXAMPLE = [
    {"state": "Busy", "client": "10.0.0.7", "level": "Low"},
    {"state": "Idle", "client": "", "level": "Zero"},
    {"state": "Idle", "client": "", "level": "Zero"},
]


def read_dump(child) -> dict:
    """py-peer's `dump_board` lines: ``{"[0].state": ("Busy", 1), "[0].client": "...", ...}``."""
    out = {}
    while True:
        line = child.readline()
        if line == "end":
            return out
        path, raw = line.split("=", 1)
        if path.endswith(".client"):
            out[path] = bytes.fromhex(raw).decode("utf-8")
        else:
            name, number = raw.split("/")
            out[path] = (name, int(number))


def read_object(name: str) -> bytes:
    with open(shm_path(name), "rb") as f:
        return f.read()


def payload_offset(name: str) -> int:
    """Where the payload starts: the header's ``payload_offset`` (docs/FORMAT.md)."""
    return struct.unpack_from("<Q", read_object(name), 32)[0]


def plant(name: str, offset: int, data: bytes) -> None:
    """Writes ``data`` at ``offset`` of the payload through /dev/shm, as a peer ignoring the
    rules would."""
    at = payload_offset(name) + offset
    with open(shm_path(name), "r+b") as f:
        f.seek(at)
        f.write(data)


class EnumTextTest(ShmTestCase):
    def test_the_descriptors_match_rusts(self):
        # Rust opens what Python creates only if the fingerprints agree: checked below; here
        # the shape, as FORMAT.md gives it.
        self.assertEqual((BOARD.size, BOARD.align), (28, 4))
        self.assertEqual([f.offset for f in BOARD.fields], [0, 4, 24])
        self.assertEqual(str(BOARD.fields[1].type), "Text<16>")
        self.assertEqual(Descriptor.parse(BOARD.encode()), BOARD)
        self.assertEqual(LEVEL.variants[0], shm_core.Variant("Low", -300))
        self.assertEqual((LEVEL.kind, LEVEL.code.letter, LEVEL.default), ("enum", "h", 1))
        self.assertEqual((BOARD.fields[1].type.kind, BOARD.fields[1].type.capacity), ("text", 16))
        # Numbered as Rust numbers variants without a value: one more than the previous.
        self.assertEqual(
            [v.value for v in Descriptor.enum("E", "i8", [("A", -2), "B", "C"]).variants], [-2, -1, 0]
        )
        with self.assertRaises(ValueError):
            Descriptor.enum("E", "u8", [("A", 256)])
        with self.assertRaises(ValueError):
            Descriptor.enum("E", "f64", ["A"])
        with self.assertRaises(ValueError):
            Descriptor.text(1 << 32)

    def test_python_reads_what_rust_wrote_and_rust_reads_what_python_writes(self):
        name = self.name("board")
        rust = self.peer("create-board", name)
        rust.expect("ready")
        seg = self.keep(shm_core.open(name, expect=BOARD))
        self.assertEqual(seg.snapshot(), EXAMPLE)
        self.assertEqual((seg[0]["state"], seg[0]["client"], seg[0]["level"]), ("Busy", "10.0.0.7", "Low"))
        self.assertIs(type(seg[0]["client"]), str)

        # One field at a time, and several at once.
        seg[1]["state"] = "Stopping"
        seg[1]["client"] = "ünïcødé 1234"  # 16 bytes of UTF-8: the capacity
        seg[2]["level"] = "High"
        seg.update({0: {"client": "a"}})  # shorter: nothing of "10.0.0.7" stays after it

        def change(board):
            board[2]["state"] = "Busy"
            board[2]["client"] = "from python"
            return "done"

        self.assertEqual(seg.update(change), "done")
        rust.send("dump")
        self.assertEqual(
            read_dump(rust),
            {
                "[0].state": ("Busy", 1),
                "[0].client": "a",
                "[0].level": ("Low", -300),
                "[1].state": ("Stopping", 9),
                "[1].client": "ünïcødé 1234",
                "[1].level": ("Zero", 0),
                "[2].state": ("Busy", 1),
                "[2].client": "from python",
                "[2].level": ("High", 300),
            },
        )
        raw = read_object(name)
        client0 = payload_offset(name) + 4
        self.assertEqual(raw[client0 : client0 + 20], struct.pack("<I", 1) + b"a" + bytes(15))

    def test_what_rust_would_not_store_is_refused_and_changes_nothing(self):
        name = self.name("board-refuse")
        rust = self.peer("create-board", name)
        rust.expect("ready")
        seg = self.keep(shm_core.open(name))
        before = seg.snapshot()
        with self.assertRaises(ValueError) as cm:
            seg[0]["state"] = "busy"
        self.assertIn('`[0].state` (WorkState) has no variant "busy"', str(cm.exception))
        self.assertIn("its variants are Idle, Busy, Stopping", str(cm.exception))
        with self.assertRaises(TypeError):
            seg[0]["state"] = 1  # a name, not a number
        with self.assertRaises(ValueError) as cm:
            seg[0]["client"] = "10.0.0.7 and then some"
        self.assertIn("holds at most 16 bytes of UTF-8", str(cm.exception))
        with self.assertRaises(ValueError):
            seg[0]["client"] = "\ud800"  # a lone surrogate has no UTF-8
        with self.assertRaises(TypeError):
            seg[0]["client"] = b"bytes"
        with self.assertRaises(ValueError):
            seg.update({1: {"state": "Idle", "level": "Nope"}})  # the whole update is refused
        self.assertEqual(seg.snapshot(), before)
        rust.send("dump")
        self.assertEqual(read_dump(rust)["[0].client"], "10.0.0.7")

    def test_rust_opens_a_board_python_created(self):
        name = self.name("board-py")
        init = [
            {"state": "Stopping", "client": "py", "level": "High"},
            {"state": "Busy", "client": "", "level": "Low"},
        ]
        self.keep(shm_core.create(name, BOARD, init, count=2))
        got = {}
        for line in self.run_peer("dump-board", name).splitlines():
            if line != "end":
                path, raw = line.split("=", 1)
                got[path] = raw
        self.assertEqual(got["[0].state"], "Stopping/9")
        self.assertEqual(got["[0].client"], b"py".hex())
        self.assertEqual(got["[0].level"], "High/300")
        self.assertEqual(got["[1].state"], "Busy/1")
        self.assertEqual(got["[1].level"], "Low/-300")

    def test_planted_numbers_and_bytes_read_as_rust_reads_them(self):
        name = self.name("board-planted")
        rust = self.peer("create-board", name)
        rust.expect("ready")
        seg = self.keep(shm_core.open(name))
        plant(name, 0, bytes([7]))  # no variant of WorkState
        plant(name, 24, struct.pack("<h", 301))  # no variant of Level
        plant(name, 4, struct.pack("<I", 1000) + b"ok\x80 rest")  # length past 16, not UTF-8
        plant(name, 28 + 4, struct.pack("<I", 2) + "aé".encode())  # a character cut
        self.assertEqual(seg[0]["state"], "Idle")  # the default, as Rust's load
        self.assertEqual(seg[0]["level"], "Zero")
        self.assertEqual(seg[0]["client"], "ok")
        self.assertEqual(seg[1]["client"], "a")
        rust.send("dump")
        dump = read_dump(rust)
        self.assertEqual(dump["[0].state"], ("Idle", 7))
        self.assertEqual(dump["[0].level"], ("Zero", 301))
        self.assertEqual((dump["[0].client"], dump["[1].client"]), ("ok", "a"))
        # An update that leaves them alone leaves the numbers there; one that sets them stores
        # variants.
        seg.update({2: {"state": "Busy"}})
        self.assertEqual(read_object(name)[payload_offset(name)], 7)
        seg.update({0: {"state": "Stopping", "client": "fixed"}})
        rust.send("dump")
        dump = read_dump(rust)
        self.assertEqual((dump["[0].state"], dump["[0].client"]), (("Stopping", 9), "fixed"))

    def test_a_single_enum_and_a_single_text_have_a_value(self):
        state, text = self.name("state"), self.name("text")
        s = self.keep(shm_core.create(state, WORK_STATE, "Busy"))
        t = self.keep(shm_core.create(text, Descriptor.text(8), "from py"))
        self.assertEqual((s.value, t.value, s.typecode, t.typecode), ("Busy", "from py", None, None))
        self.assertEqual(self.run_peer("state-and-text", state, text), 'Busy "from py"')
        self.assertEqual((s.value, t.value), ("Stopping", "from rs"))
        s.value = "Idle"
        self.assertEqual(s.update(lambda v: "Busy" if v == "Idle" else v), "Busy")
        self.assertEqual(s.snapshot(), "Busy")
        with self.assertRaises(ValueError):
            t.value = "123456789"
        self.assertEqual(t.value, "from rs")
        reopened = self.keep(shm_core.open(text, expect=Descriptor.text(8)))
        self.assertEqual(reopened.value, "from rs")
        with self.assertRaises(TypeError):
            reopened["x"]
        with self.assertRaises(shm_core.LayoutMismatch) as cm:
            shm_core.open(state, expect=Descriptor.enum("WorkState", "u8", ["Idle", "Busy"]))
        self.assertIn("the segment's `WorkState` has variant `Stopping` (9)", str(cm.exception))
