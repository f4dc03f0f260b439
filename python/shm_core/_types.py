"""Small named tuples of the Python API: a primitive type code, a struct field, an enum variant."""

from __future__ import annotations

from typing import Any, Dict, NamedTuple


class Code(NamedTuple):
    """A primitive type code: its canonical letter, Rust name, width in bytes, and the
    ``memoryview``/``struct`` format of one element."""

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
        Code("?", "bool", 1, "?"),
        Code("u", "char", 4, "I"),
    )
}

#: Python type-code letters accepted as aliases of a canonical one (fixed widths, as in Rust).
ALIASES = {"l": "q", "L": "Q", "c": "B"}


class Field(NamedTuple):
    """One field of a struct descriptor."""

    name: str
    offset: int
    type: Any


class Variant(NamedTuple):
    """One variant of an enum descriptor: its name and its number."""

    name: str
    value: int
