"""The conformance vectors of docs/vectors checked against this package, as Rust's
tests/tests/vectors checks them against shm-core: the same files, one test per vector. The
package is the bindings of shm-core, so this checks Rust's code again, through the way Python
reaches it (``shm_core.open``, ``Value.open``, ``Array.open``, ``create``, ``Descriptor``), and
the bytes it leaves in /dev/shm.

A vector this package disagrees with is listed in ``DIFFERS`` with what differs: its test is
expected to fail (``unittest.expectedFailure``) until the two agree again.
"""

from __future__ import annotations

import json
import operator
import os
import re
import threading
import unittest
from typing import Any, Callable, Dict, List, Tuple

from _support import REPO, ShmTestCase

import shm_core
from shm_core import CODES, Descriptor, DescriptorError, fingerprint

VECTORS = os.path.join(REPO, "docs", "vectors")


def _load(file: str) -> Any:
    with open(os.path.join(VECTORS, file), encoding="utf-8") as f:
        return json.load(f)


LAYOUTS = _load("layouts.json")
DESCRIPTORS = _load("descriptors.json")
SEGMENTS = _load("segments.json")
JOURNAL = _load("journal.json")
WAITING = _load("waiting.json")
LOCKS = _load("locks.json")

#: Vectors this package disagrees with ("file/id"), and how. None: every check is Rust's.
DIFFERS: Dict[str, str] = {}

_LAYOUT_BY_ID = {layout["id"]: layout for layout in LAYOUTS["layouts"]}
_LETTER_OF_RUST = {code.rust: code.letter for code in CODES.values()}
_HEADER: Dict[str, Tuple[int, int]] = {
    field: (at, width) for field, (at, width) in SEGMENTS["header_fields"].items()
}


def _int(v: Any) -> int:
    """An integer of the vectors: a number, or ``"0x..."`` for 64-bit values."""
    return int(v, 16) if isinstance(v, str) else v


def _build(tree: Any) -> Descriptor:
    """The descriptor of a vector's ``type`` tree, laid out by ``Descriptor.struct`` (as
    ``#[repr(C)]``)."""
    if isinstance(tree, str):
        return Descriptor.primitive(_LETTER_OF_RUST[tree])
    if "array" in tree:
        return Descriptor.array(_build(tree["array"]), tree["len"])
    if "text" in tree:
        return Descriptor.text(tree["text"])
    if "enum" in tree:
        variants = [(v["name"], v["value"]) for v in tree["variants"]]
        return Descriptor.enum(tree["enum"], tree["repr"], variants, default=tree["default"])
    fields = [(f["name"], _build(f["type"])) for f in tree["fields"]]
    return Descriptor.struct(tree["struct"], fields, align=tree.get("align", 1))


def _element(layout_id: str) -> Descriptor:
    return Descriptor.parse(bytes.fromhex(_LAYOUT_BY_ID[layout_id]["descriptor"]))


def _header_get(data: bytes, field: str) -> int:
    at, width = _HEADER[field]
    return int.from_bytes(data[at : at + width], "little")


def _regions(base: Dict[str, Any]) -> Dict[str, int]:
    h = base["header"]
    return {
        "object": 0,
        "descriptor": 256,
        "payload": h["payload_offset"],
        "journal": h["journal_offset"],
    }


def _side_bytes(name: str, journal_id: int, record: bytes) -> bytes:
    """A side journal of segment ``name`` (docs/FORMAT.md, "The side journal"): its 512-byte header,
    then ``record`` at the start of its record area."""
    header = bytearray(512)
    header[0:8] = b"SHMJRNL\0"
    header[8:12] = shm_core.FORMAT_VERSION.to_bytes(4, "little")
    header[12:16] = len(name.encode()).to_bytes(4, "little")
    header[16:24] = journal_id.to_bytes(8, "little")
    header[32 : 32 + len(name.encode())] = name.encode()
    return bytes(header) + record


def _create_base(name: str, base: Dict[str, Any]) -> None:
    count = base["count"] if base["array"] else None
    shm_core.create(name, _element(base["layout"]), count=count, keep=True).close()


def _apply(path: str, patch: Dict[str, Any], regions: Dict[str, int]) -> None:
    """A vector's patch: ``chmod``, then ``set`` (header fields), ``write``, ``truncate``, then
    ``side``: a side journal made for the segment (its header carrying the segment's journal id,
    or the ``id`` given), ``hex`` at the start of its record area."""
    unknown = set(patch) - {"chmod", "set", "write", "truncate", "side"}
    assert not unknown, f"unknown patch steps {unknown}"
    if "chmod" in patch:
        os.chmod(path, patch["chmod"])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        for field, value in patch.get("set", {}).items():
            at, width = _HEADER[field]
            data[at : at + width] = _int(value).to_bytes(width, "little")
        for w in patch.get("write", []):
            at = regions[w["region"]] + w["at"]
            raw = bytes.fromhex(w["hex"])
            data[at : at + len(raw)] = raw
        f.seek(0)
        f.write(data)
    if "truncate" in patch:
        os.truncate(path, patch["truncate"])
    if "side" in patch:
        side = patch["side"]
        name = os.path.basename(path)
        journal_id = _header_get(bytes(data), "journal_id")
        stamped = _int(side["id"]) if "id" in side else journal_id
        side_path = os.path.join(os.path.dirname(path), f"{name}.journal-{journal_id:016x}")
        with open(side_path, "wb") as f:
            f.write(_side_bytes(name, stamped, bytes.fromhex(side["hex"])))
        os.chmod(side_path, 0o600)


def _open(name: str, how: Dict[str, Any]) -> shm_core.Segment:
    """Opens as a vector's ``open`` says. ``single`` of a struct: this package has no typed open
    of one struct value, so ``open(name, expect=...)``, which accepts either shape."""
    wait = how.get("wait_ms", 100) / 1000
    if how["as"] == "any":
        return shm_core.open(name, wait=wait)
    desc = _element(how["expect"])
    if how["as"] == "array":
        return shm_core.Array.open(name, desc, wait=wait)
    if desc.kind == "primitive":
        return shm_core.Value.open(name, desc.code.letter, wait=wait)
    return shm_core.open(name, expect=desc, wait=wait)


def _attach(cls: type, method: str, key: str, test: Callable[..., None]) -> None:
    name = "test_" + re.sub(r"\W+", "_", method).strip("_").lower()
    assert not hasattr(cls, name), f"two vectors make the test {name}"
    if key in DIFFERS:
        test = unittest.expectedFailure(test)
    test.__doc__ = key
    setattr(cls, name, test)


class LayoutVectors(unittest.TestCase):
    """Each layout: the descriptor bytes parse and encode back, their fingerprint, size and
    alignment, and ``Descriptor.struct``'s ``#[repr(C)]`` placement of the type tree gives the
    same bytes."""

    def test_format_version(self) -> None:
        self.assertEqual(LAYOUTS["format_version"], shm_core.FORMAT_VERSION)


def _layout_test(v: Dict[str, Any]) -> Callable[[LayoutVectors], None]:
    def test(self: LayoutVectors) -> None:
        raw = bytes.fromhex(v["descriptor"])
        parsed = Descriptor.parse(raw)
        self.assertEqual(parsed.encode(), raw)
        self.assertEqual(f"{fingerprint(raw):#018x}", v["fingerprint"])
        self.assertEqual((parsed.size, parsed.align), (v["size"], v["align"]))
        built = _build(v["type"])
        self.assertEqual(built.encode().hex(), v["descriptor"])
        self.assertEqual(f"{built.fingerprint:#018x}", v["fingerprint"])

    return test


for _v in LAYOUTS["layouts"]:
    _attach(LayoutVectors, "layout " + _v["id"], "layouts/" + _v["id"], _layout_test(_v))


class DescriptorVectors(unittest.TestCase):
    """Each hostile (or merely unusual) descriptor: refused at the byte and for the reason the
    vector says, or accepted with its size, alignment and fingerprint."""


def _descriptor_test(case: Dict[str, Any]) -> Callable[[DescriptorVectors], None]:
    def test(self: DescriptorVectors) -> None:
        raw = bytes.fromhex(case["hex"])
        if "error" in case:
            with self.assertRaises(DescriptorError) as cm:
                Descriptor.parse(raw)
            self.assertEqual(cm.exception.at, case["error"]["at"], str(cm.exception))
            self.assertIn(case["error"]["reason"], cm.exception.reason)
        else:
            d = Descriptor.parse(raw)
            ok = case["ok"]
            self.assertEqual(
                (d.size, d.align, f"{fingerprint(raw):#018x}"),
                (ok["size"], ok["align"], ok["fingerprint"]),
            )

    return test


for _c in DESCRIPTORS["cases"]:
    _attach(
        DescriptorVectors, "descriptor " + _c["id"], "descriptors/" + _c["id"], _descriptor_test(_c)
    )


class SegmentVectors(ShmTestCase):
    """Each base as created by this package (header fields, size, descriptor), and each crafted
    segment's outcome at open: its shape, or the error's kind and reason."""


def _base_test(base: Dict[str, Any]) -> Callable[[SegmentVectors], None]:
    def test(self: SegmentVectors) -> None:
        name = self.name("vec-base")
        _create_base(name, base)
        with open(os.path.join("/dev/shm", name), "rb") as f:
            data = f.read()
        self.assertEqual(len(data), base["size"])
        got = {field: _header_get(data, field) for field in base["header"]}
        want = {field: _int(v) for field, v in base["header"].items()}
        self.assertEqual(got, want)
        descriptor = _LAYOUT_BY_ID[base["layout"]]["descriptor"]
        self.assertEqual(data[256 : 256 + len(descriptor) // 2].hex(), descriptor)

    return test


def _crafted(
    self: ShmTestCase, file: Dict[str, Any], case: Dict[str, Any]
) -> Tuple[str, Dict[str, int]]:
    """Makes the base of ``case`` (named for ``self``'s tearDown to remove) and patches it."""
    base = next(b for b in file["bases"] if b["id"] == case["base"])
    regions = _regions(base)
    name = self.name("vec")
    _create_base(name, base)
    _apply(os.path.join("/dev/shm", name), case.get("patch", {}), regions)
    return name, regions


def _segment_test(case: Dict[str, Any]) -> Callable[[SegmentVectors], None]:
    def test(self: SegmentVectors) -> None:
        name, _ = _crafted(self, SEGMENTS, case)
        try:
            seg = _open(name, case["open"])
        except shm_core.ShmError as e:
            got = f"{type(e).__name__}: {e}"
            self.assertNotIn("ok", case, f"refused: {got}")
            self.assertEqual(type(e).__name__, case["error"]["kind"], got)
            self.assertIn(case["error"].get("reason", ""), str(e))
            return
        try:
            self.assertNotIn("error", case, "opened")
            self.assertEqual(
                (seg.is_array, seg.count), (case["ok"]["array"], case["ok"]["count"])
            )
        finally:
            seg.close()

    return test


for _file, _vectors in (("segments", SEGMENTS), ("journal", JOURNAL), ("waiting", WAITING)):
    for _b in _vectors["bases"]:
        _key = f"{_file}/base {_b['id']}"
        _attach(SegmentVectors, _key.replace("/", " "), _key, _base_test(_b))

for _c in SEGMENTS["cases"]:
    _attach(SegmentVectors, "segment " + _c["id"], "segments/" + _c["id"], _segment_test(_c))


class JournalVectors(ShmTestCase):
    """Each undo case: what a dead writer left, and the payload, ``seq``, ``journal_len``,
    ``journal_where`` and ``poison`` after a fresh opener's snapshot recovered it; where the case
    made a side journal, whether ``remove`` then removed the object under its name."""


def _journal_test(case: Dict[str, Any]) -> Callable[[JournalVectors], None]:
    def test(self: JournalVectors) -> None:
        name, regions = _crafted(self, JOURNAL, case)
        seg = shm_core.open(name)
        try:
            seg.snapshot(timeout=10)
        finally:
            seg.close()
        with open(os.path.join("/dev/shm", name), "rb") as f:
            data = f.read()
        base = next(b for b in JOURNAL["bases"] if b["id"] == case["base"])
        start, length = regions["payload"], base["header"]["payload_len"]
        after = case["after"]
        got = (
            data[start : start + length].hex(),
            _header_get(data, "seq"),
            _header_get(data, "journal_len"),
            _header_get(data, "journal_where"),
            _header_get(data, "poison"),
        )
        want = (after["payload"],) + tuple(
            _int(after[k]) for k in ("seq", "journal_len", "journal_where", "poison")
        )
        self.assertEqual(got, want)
        if "side_after_remove" in after:
            shm_core.remove(name)
            left = [e for e in os.listdir("/dev/shm") if e.startswith(name + ".journal-")]
            self.assertEqual("kept" if left else "removed", after["side_after_remove"])

    return test


for _c in JOURNAL["cases"]:
    _attach(JournalVectors, "undo " + _c["id"], "journal/" + _c["id"], _journal_test(_c))


class WaitingVectors(ShmTestCase):
    """Each waiting case: its steps (snapshots, ``notify()``, writes, one test of a wait), then
    the waiting words and ``seq``."""


#: The comparisons of a waiting vector's ``check`` step.
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _step(seg: shm_core.Segment, step: Any) -> None:
    """One step of a waiting vector. Paths are ``.``: the vectors' bases are single values."""
    if step == "snapshot":
        seg.snapshot()
    elif step == "notify":
        seg.notify()
    elif "set" in step:
        path, value = step["set"]
        assert path == ".", f"path {path}"
        seg.update(lambda _old: int(value, 0))
    elif "check" in step:
        path, op, value = step["check"]
        assert path == ".", f"path {path}"
        seg.wait_until(lambda x: _COMPARE[op](x, int(value, 0)), timeout=0)
    else:
        raise AssertionError(f"unknown step {step}")


def _waiting_test(case: Dict[str, Any]) -> Callable[[WaitingVectors], None]:
    def test(self: WaitingVectors) -> None:
        name, _ = _crafted(self, WAITING, case)
        for step in case["steps"]:
            seg = shm_core.open(name)
            try:
                _step(seg, step)
            finally:
                seg.close()
        with open(os.path.join("/dev/shm", name), "rb") as f:
            data = f.read()
        got = {field: _header_get(data, field) for field in case["after"]}
        self.assertEqual(got, {field: _int(v) for field, v in case["after"].items()})

    return test


def _thread_name() -> int:
    """The calling thread's name as a lock word holds it: its id, and the low 32 bits of its
    start time above them."""
    tid = threading.get_native_id()
    with open(f"/proc/{tid}/stat", "rb") as f:
        text = f.read().decode()
    start = int(text[text.rfind(")") + 1 :].split()[19])
    return (start & 0xFFFF_FFFF) << 32 | tid


class _Owners:
    """The threads a ``locks.json`` word names: ``live`` runs until :meth:`stop`, ``dead`` has
    exited, ``self`` is the calling thread."""

    def __init__(self) -> None:
        names: List[int] = []
        t = threading.Thread(target=lambda: names.append(_thread_name()))
        t.start()
        t.join()
        self.dead = names.pop()
        self._stop = threading.Event()
        got = threading.Event()

        def live() -> None:
            names.append(_thread_name())
            got.set()
            self._stop.wait()

        self._live = threading.Thread(target=live)
        self._live.start()
        got.wait()
        self.live = names.pop()

    def word(self, spec: Any) -> int:
        if isinstance(spec, str):
            return _int(spec)
        name = {"live": self.live, "dead": self.dead, "self": _thread_name()}[spec["owner"]]
        if spec["tag"] == "wrong":
            name = (name & 0xFFFF_FFFF) | (((name >> 32) + 1) & 0xFFFF_FFFF) << 32
        return name | _int(spec.get("flags", 0))

    def stop(self) -> None:
        self._stop.set()
        self._live.join()


class LockVectors(ShmTestCase):
    """Each lock word: what a process that opens the segment reports (poisoned or not), who it
    says holds the lock, what a non-blocking acquire gives, and the header after."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.owners = _Owners()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.owners.stop()
        super().tearDownClass()


def _lock_test(case: Dict[str, Any]) -> Callable[[LockVectors], None]:
    def test(self: LockVectors) -> None:
        # Python has no lock holder to ask for: the vector's `holder` is Rust's (and the `shm`
        # tool's) to check; the rest is checked here.
        word = self.owners.word(case["word"])
        sets = dict(case["set"], lock=f"{word:#018x}")
        name, _ = _crafted(self, LOCKS, dict(case, patch={"set": sets}))
        seg = shm_core.open(name)
        try:
            poisoned = seg.poisoned
            lock = seg.get_lock()
            if lock.acquire(blocking=False):
                try_lock = "poisoned" if lock.poisoned else "acquired"
                lock.release()
            else:
                try_lock = "busy"
        finally:
            seg.close()
        with open(os.path.join("/dev/shm", name), "rb") as f:
            data = f.read()
        lock_after = _header_get(data, "lock")
        after = {
            "lock": "as written" if lock_after == word else f"{lock_after:#018x}",
            "poison": _header_get(data, "poison"),
            "seq": _header_get(data, "seq"),
            "lock_foreign": _header_get(data, "lock_foreign"),
        }
        want_after = dict(case["after"])
        if want_after["lock"] != "as written":
            want_after["lock"] = f"{_int(want_after['lock']):#018x}"
        self.assertEqual(
            (poisoned, try_lock, after), (case["is_poisoned"], case["try_lock"], want_after)
        )

    return test


for _c in WAITING["cases"]:
    _attach(WaitingVectors, "waiting " + _c["id"], "waiting/" + _c["id"], _waiting_test(_c))

for _c in LOCKS["cases"]:
    _attach(LockVectors, "lock " + _c["id"], "locks/" + _c["id"], _lock_test(_c))


if __name__ == "__main__":
    unittest.main()
