"""The segment format (docs/FORMAT.md, version 2): header offsets, type codes, the layout
descriptor and its fingerprint. Pure data: nothing here touches shared memory."""

from __future__ import annotations

import struct
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

FORMAT_VERSION = 2
MAGIC = b"SHMCORE\0"
HEADER_SIZE = 256
MAX_DESCRIPTOR_LEN = 64 * 1024
MAX_DEPTH = 32
MAX_NAME_LEN = 255
PAYLOAD_ALIGN = 128
PAGE = 4096

# Header fields: byte offset in the segment.
OFF_MAGIC = 0
OFF_VERSION = 8
OFF_STATE = 12
OFF_FINGERPRINT = 16
OFF_DESCRIPTOR_LEN = 24
OFF_FLAGS = 28
OFF_PAYLOAD_OFFSET = 32
OFF_PAYLOAD_LEN = 40
OFF_ELEM_COUNT = 48
OFF_ELEM_SIZE = 56
OFF_CREATOR_PID = 64
OFF_CREATOR_START = 72
OFF_CREATED_AT = 80
OFF_POISON = 88
OFF_JOURNAL_OFFSET = 96
OFF_JOURNAL_START = 104
OFF_JOURNAL_LEN = 112
OFF_SEQ = 128
OFF_LOCK = 192
OFF_LOCK_PIDNS = 200
OFF_LOCK_TIMENS = 204
OFF_LOCK_FOREIGN = 208
LOCK_SIZE = 64

STATE_INITIALIZING = 0
STATE_READY = 1
FLAG_ARRAY = 1 << 0
FLAG_KEEP = 1 << 1

TAG_PRIMITIVE = 0x50  # 'P'
TAG_ARRAY = 0x41  # 'A'
TAG_STRUCT = 0x53  # 'S'

# The header is in the byte order of the machines sharing it; this module is for little-endian
# 64-bit hosts (x86_64), which is what the fingerprint below folds in.
MAGIC_WORD = int.from_bytes(MAGIC, sys.byteorder)


class Code(NamedTuple):
    """A primitive type code: its canonical letter, Rust name, width, and the ``memoryview``
    format used to load and store it (one aligned access of that width)."""

    letter: str
    rust: str
    size: int
    fmt: str


#: Canonical type codes (the letters a descriptor holds), as in docs/FORMAT.md.
CODES: Dict[str, Code] = {
    c.letter: c
    for c in (
        Code("b", "i8", 1, "b"),
        Code("B", "u8", 1, "B"),
        Code("h", "i16", 2, "h"),
        Code("H", "u16", 2, "H"),
        Code("i", "i32", 4, "i"),
        Code("I", "u32", 4, "I"),
        Code("q", "i64", 8, "q"),
        Code("Q", "u64", 8, "Q"),
        Code("f", "f32", 4, "f"),
        Code("d", "f64", 8, "d"),
        # bool: one byte, 0 is false and any other byte reads as true; stored as 0 or 1.
        Code("?", "bool", 1, "B"),
        # char: a Unicode scalar value as u32; anything else reads as U+FFFD.
        Code("u", "char", 4, "I"),
    )
}

#: Python type-code letters accepted as aliases of a canonical one (fixed widths, as in Rust).
ALIASES = {"l": "q", "L": "Q", "c": "B"}

# The memoryview formats must have the widths above on this platform.
for _c in CODES.values():
    assert struct.calcsize(_c.fmt) == _c.size, _c

INT_RANGES = {
    "b": (-(1 << 7), (1 << 7) - 1),
    "B": (0, (1 << 8) - 1),
    "h": (-(1 << 15), (1 << 15) - 1),
    "H": (0, (1 << 16) - 1),
    "i": (-(1 << 31), (1 << 31) - 1),
    "I": (0, (1 << 32) - 1),
    "q": (-(1 << 63), (1 << 63) - 1),
    "Q": (0, (1 << 64) - 1),
}


def canonical_code(typecode: str) -> Code:
    """The :class:`Code` for a Python type-code letter (``'l'`` is ``'q'``, ``'c'`` is ``'B'``)."""
    if not isinstance(typecode, str) or len(typecode) != 1:
        raise TypeError(f"a type code is one letter, not {typecode!r}")
    letter = ALIASES.get(typecode, typecode)
    code = CODES.get(letter)
    if code is None:
        known = " ".join(list(CODES) + list(ALIASES))
        raise ValueError(f"unknown type code {typecode!r}; known codes: {known}")
    return code


# --- fingerprint ----------------------------------------------------------------------------

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a(data: bytes, h: int = FNV_OFFSET) -> int:
    """64-bit FNV-1a of ``data``, continuing from hash state ``h``."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK64
    return h


#: What precedes the descriptor in the fingerprint: "shm-core layout", the format version
#: (u32 little-endian), the byte order ('l') and the pointer width in bytes (8).
FINGERPRINT_PREFIX = (
    b"shm-core layout"
    + struct.pack("<I", FORMAT_VERSION)
    + (b"l" if sys.byteorder == "little" else b"b")
    + bytes([struct.calcsize("P")])
)
_SEED = fnv1a(FINGERPRINT_PREFIX)


def fingerprint(descriptor: bytes) -> int:
    """The layout fingerprint of encoded descriptor bytes (docs/FORMAT.md, "Fingerprint")."""
    return fnv1a(descriptor, _SEED)


# --- descriptor -----------------------------------------------------------------------------


class DescriptorError(ValueError):
    """Descriptor bytes that are not a well-formed, consistent descriptor."""

    def __init__(self, at: int, reason: str) -> None:
        super().__init__(f"descriptor byte {at}: {reason}")
        self.at = at
        self.reason = reason


class Field(NamedTuple):
    """One field of a struct descriptor."""

    name: str
    offset: int
    type: "Descriptor"


class Descriptor:
    """The layout of a type in a segment, read without the Rust type.

    ``kind`` is ``"primitive"`` (``code`` is its :class:`Code`), ``"array"`` (``elem`` and
    ``length``) or ``"struct"`` (``fields``, a tuple of :class:`Field`). ``str()`` spells it as
    Rust source does: ``f64``, ``[[f32; 4]; 4]``, ``Stats``.
    """

    __slots__ = ("name", "size", "align", "kind", "code", "elem", "length", "fields", "_enc")

    def __init__(
        self,
        name: str,
        size: int,
        align: int,
        kind: str,
        code: Optional[Code] = None,
        elem: Optional["Descriptor"] = None,
        length: int = 0,
        fields: Sequence[Field] = (),
    ) -> None:
        self.name = name
        self.size = size
        self.align = align
        self.kind = kind
        self.code = code
        self.elem = elem
        self.length = length
        self.fields: Tuple[Field, ...] = tuple(fields)
        self._enc: Optional[bytes] = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def primitive(cls, typecode: str) -> "Descriptor":
        """The descriptor of one primitive, e.g. ``Descriptor.primitive('d')`` for ``f64``."""
        code = canonical_code(typecode)
        return cls(code.rust, code.size, code.size, "primitive", code=code)

    @classmethod
    def array(cls, elem: Union["Descriptor", str], length: int) -> "Descriptor":
        """The descriptor of ``[elem; length]``."""
        if isinstance(elem, str):
            elem = cls.primitive(elem)
        if length < 0:
            raise ValueError("an array length cannot be negative")
        return cls("", elem.size * length, elem.align, "array", elem=elem, length=length)

    @classmethod
    def struct(
        cls,
        name: str,
        fields: Sequence[Tuple[str, Union["Descriptor", str]]],
        align: int = 1,
    ) -> "Descriptor":
        """The descriptor of a ``#[repr(C)]`` struct (``#[repr(C, align(N))]`` with ``align``):
        fields placed in order, each at the next multiple of its alignment, the size rounded up
        to the struct's alignment, exactly as Rust lays it out."""
        if align <= 0 or align & (align - 1) or align > PAGE:
            raise ValueError(f"a struct's alignment is a power of two up to {PAGE}, not {align}")
        placed = []
        end = 0
        for fname, ftype in fields:
            if isinstance(ftype, str):
                ftype = cls.primitive(ftype)
            align = max(align, ftype.align)
            offset = -(-end // ftype.align) * ftype.align
            placed.append(Field(fname, offset, ftype))
            end = offset + ftype.size
        size = -(-end // align) * align
        d = cls(name, size, align, "struct", fields=placed)
        d.encode()  # checks names and depth
        return d

    # -- encoding -------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The descriptor bytes as written into a segment header."""
        if self._enc is None:
            out = bytearray()
            self._encode_into(out, 0)
            if len(out) > MAX_DESCRIPTOR_LEN:
                raise ValueError(f"the descriptor is {len(out)} bytes, more than 64 KiB")
            self._enc = bytes(out)
        return self._enc

    def _encode_into(self, out: bytearray, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError(f"a layout nests arrays and structs more than {MAX_DEPTH} deep")
        tag = {"primitive": TAG_PRIMITIVE, "array": TAG_ARRAY, "struct": TAG_STRUCT}[self.kind]
        out += struct.pack("<BQQ", tag, self.size, self.align)
        _put_name(out, self.name)
        if self.kind == "primitive":
            assert self.code is not None
            out += self.code.letter.encode("ascii")
        elif self.kind == "array":
            assert self.elem is not None
            out += struct.pack("<Q", self.length)
            self.elem._encode_into(out, depth + 1)
        else:
            out += struct.pack("<I", len(self.fields))
            for f in self.fields:
                _put_name(out, f.name)
                out += struct.pack("<Q", f.offset)
                f.type._encode_into(out, depth + 1)

    @property
    def fingerprint(self) -> int:
        """The 64-bit layout fingerprint, as Rust's ``T::FINGERPRINT``."""
        return fingerprint(self.encode())

    # -- parsing --------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes) -> "Descriptor":
        """Parses descriptor bytes, checking everything docs/FORMAT.md lists: raises
        :class:`DescriptorError` (a ``ValueError``) on anything malformed or inconsistent."""
        if len(data) > MAX_DESCRIPTOR_LEN:
            raise DescriptorError(
                0, f"{len(data)} bytes, more than the {MAX_DESCRIPTOR_LEN} allowed"
            )
        r = _Reader(bytes(data))
        d = r.node(0)
        if r.remaining():
            raise DescriptorError(r.pos, f"{r.remaining()} bytes after the end")
        d._enc = bytes(data)
        return d

    # -- comparison and display -----------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Descriptor):
            return NotImplemented
        return self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    def __str__(self) -> str:
        if self.kind == "primitive":
            return self.code.rust  # type: ignore[union-attr]
        if self.kind == "array":
            return f"[{self.elem}; {self.length}]"
        return self.name

    def __repr__(self) -> str:
        if self.kind == "struct":
            inner = ", ".join(f"{f.name}@{f.offset}: {f.type}" for f in self.fields)
            return f"<Descriptor struct {self.name} {{{inner}}} size={self.size} align={self.align}>"
        return f"<Descriptor {self} size={self.size} align={self.align}>"

    def first_difference(self, expected: "Descriptor") -> Optional[str]:
        """The first way in which ``self`` (found in a segment) differs from ``expected``, in the
        words Rust's ``LayoutMismatch`` uses, or ``None`` if they are the same."""
        return _diff(self, expected, "")


def _put_name(out: bytearray, name: str) -> None:
    raw = name.encode("utf-8")
    if len(raw) > MAX_NAME_LEN:
        raise ValueError(f"a type or field name is longer than {MAX_NAME_LEN} bytes: {name!r}")
    out.append(len(raw))
    out += raw


# The fewest bytes a node can take (tag, size, align, name length, a primitive's code), and a field.
_MIN_NODE_LEN = 1 + 8 + 8 + 1 + 1
_MIN_FIELD_LEN = 1 + 8 + _MIN_NODE_LEN


class _Reader:
    """Reads descriptor bytes as hostile input, with the checks of Rust's ``Descriptor::parse``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return max(0, len(self.data) - self.pos)

    def take(self, n: int) -> bytes:
        if self.remaining() < n:
            raise DescriptorError(self.pos, f"needs {n} more bytes, the descriptor ends")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def name(self) -> str:
        n = self.u8()
        at = self.pos
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DescriptorError(at, "a name is not UTF-8") from None

    def fail(self, reason: str) -> DescriptorError:
        return DescriptorError(self.pos, reason)

    def node(self, depth: int) -> Descriptor:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} deep")
        at = self.pos
        tag = self.u8()
        size = self.u64()
        align = self.u64()
        name = self.name()
        if align == 0 or align & (align - 1):
            raise self.fail(f"alignment {align} is not a power of two")
        if size % align:
            raise self.fail(f"size {size} is not a multiple of alignment {align}")
        if tag == TAG_PRIMITIVE:
            code_at = self.pos
            byte = self.u8()
            code = CODES.get(chr(byte))
            if code is None:
                raise DescriptorError(code_at, f"unknown type code {byte:#04x}")
            if size != code.size or align != code.size:
                raise self.fail(
                    f"{code.rust} must have size and alignment {code.size}, not {size} and {align}"
                )
            return Descriptor(name, size, align, "primitive", code=code)
        if tag == TAG_ARRAY:
            length = self.u64()
            elem = self.node(depth + 1)
            if elem.size * length != size or elem.align != align:
                raise self.fail(
                    f"an array of {length} elements of size {elem.size} and alignment"
                    f" {elem.align} cannot have size {size} and alignment {align}"
                )
            return Descriptor(name, size, align, "array", elem=elem, length=length)
        if tag == TAG_STRUCT:
            count = self.u32()
            if count * _MIN_FIELD_LEN > self.remaining():
                raise self.fail(f"{count} fields cannot fit in what remains")
            fields: List[Field] = []
            seen = set()
            end = 0
            for _ in range(count):
                fname = self.name()
                offset = self.u64()
                ty = self.node(depth + 1)
                field_end = offset + ty.size
                if field_end > size:
                    raise self.fail(f"field `{fname}` does not fit in the struct")
                if offset < end or offset % ty.align or ty.align > align:
                    raise self.fail(
                        f"field `{fname}` at offset {offset} overlaps another or is misaligned"
                    )
                if fname in seen:
                    raise self.fail(f"field `{fname}` appears twice")
                seen.add(fname)
                end = field_end
                fields.append(Field(fname, offset, ty))
            return Descriptor(name, size, align, "struct", fields=fields)
        raise DescriptorError(at, f"unknown node tag {tag:#04x}")


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _diff(found: Descriptor, want: Descriptor, path: str) -> Optional[str]:
    def at(what: str) -> str:
        return f"field `{path}`: {what}" if path else what

    if found.kind == "primitive" and want.kind == "primitive" and found.code == want.code:
        return None
    if found.kind == "array" and want.kind == "array" and found.length == want.length:
        return _diff(found.elem, want.elem, f"{path}[]")  # type: ignore[arg-type]
    if found.kind == "struct" and want.kind == "struct":
        if found.name != want.name:
            return at(f"segment holds `{found.name}`, this program expects `{want.name}`")
        ff, wf = found.fields, want.fields
        for i, w in enumerate(wf):
            fpath = _path(path, w.name)
            if i >= len(ff):
                return (
                    f"field `{fpath}`: missing from the segment (this program expects {w.type}"
                    f" at offset {w.offset})"
                )
            f = ff[i]
            if f.name != w.name:
                wanted_elsewhere = any(x.name == w.name for x in ff)
                found_elsewhere = any(x.name == f.name for x in wf)
                if wanted_elsewhere and found_elsewhere:
                    return (
                        f"fields in another order: at offset {f.offset} the segment has"
                        f" `{_path(path, f.name)}`, this program expects `{fpath}`"
                    )
                if not wanted_elsewhere:
                    return (
                        f"field `{fpath}`: missing from the segment (this program expects"
                        f" {w.type} at offset {w.offset}; the segment has `{f.name}` there)"
                    )
                return (
                    f"field `{_path(path, f.name)}`: the segment has {f.type} at offset"
                    f" {f.offset}, which this program does not expect"
                )
            if f.offset != w.offset or str(f.type) != str(w.type):
                return (
                    f"field `{fpath}`: segment has {f.type} at offset {f.offset}, this program"
                    f" expects {w.type} at offset {w.offset}"
                )
            d = _diff(f.type, w.type, fpath)
            if d is not None:
                return d
        if len(ff) > len(wf):
            extra = ff[len(wf)]
            return (
                f"field `{_path(path, extra.name)}`: the segment has {extra.type} at offset"
                f" {extra.offset}, which this program does not expect"
            )
        if found.size != want.size or found.align != want.align:
            return at(
                f"`{want.name}` has size {found.size} and alignment {found.align} in the segment,"
                f" this program expects size {want.size} and alignment {want.align}"
            )
        return None
    return at(f"segment holds {found}, this program expects {want}")
