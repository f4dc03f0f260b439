"""Views of the fields of a segment of any layout: ``seg["inner"]["x"]``, ``seg["hist"][3]``.

A view is a place in the payload (a descriptor, an offset, a path); reading a primitive is one
atomic load and writing one is one atomic store, done by the native module; an enum (its
variant's name) and a text (a ``str``) are read consistently, by their path, and written as
Rust's atomics write them; ``snapshot()`` of a view is a consistent read of that part, by its
path."""

from __future__ import annotations

import operator
from typing import Any, List, Union

from ._native import Descriptor


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _index(i: Any, n: int, path: str) -> int:
    try:
        i = operator.index(i)
    except TypeError:
        raise TypeError(f"`{path}` is indexed by an int, not {type(i).__name__}") from None
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"`{path}`: index out of range for {n} elements")
    return i


class _View:
    __slots__ = ("_seg", "_desc", "_off", "_path")

    def __init__(self, seg: Any, desc: Descriptor, off: int, path: str) -> None:
        self._seg = seg
        self._desc = desc
        self._off = off
        self._path = path

    @property
    def descriptor(self) -> Descriptor:
        return self._desc

    def snapshot(self, timeout: Any = None) -> Any:
        """A consistent copy of this part of the segment (see ``Segment.snapshot``)."""
        return self._seg._get(self._path)

    def _child(self, desc: Descriptor, off: int, path: str) -> Any:
        if desc.kind == "primitive":
            return self._seg._load(off, desc.code.letter)
        if desc.kind in ("enum", "text"):
            return self._seg._get(path)
        return make_view(self._seg, desc, off, path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._path or '(root)'}: {self._desc} of {self._seg.name!r}>"


class StructView(_View):
    """A struct in a segment: ``view["field"]`` reads a primitive field (one atomic load) or
    returns a view of a nested array or struct; ``view["field"] = x`` stores (each primitive with
    one atomic store; use ``update`` to change several fields as one)."""

    __slots__ = ()

    def _field(self, key: str):
        for f in self._desc.fields:
            if f.name == key:
                return f
        raise KeyError(
            f"{self._desc.name} has no field `{key}` (fields:"
            f" {', '.join(f.name for f in self._desc.fields)})"
        )

    def __getitem__(self, key: str) -> Any:
        f = self._field(key)
        return self._child(f.type, self._off + f.offset, _join(self._path, key))

    def __setitem__(self, key: str, value: Any) -> None:
        f = self._field(key)
        self._seg._assign(self._off + f.offset, f.type, value, _join(self._path, key))

    def keys(self) -> List[str]:
        return [f.name for f in self._desc.fields]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._desc.fields)

    def __contains__(self, key: object) -> bool:
        return any(f.name == key for f in self._desc.fields)


class ArrayView(_View):
    """An array in a segment: ``view[i]`` reads an element (a primitive with one atomic load, or
    a view of a nested array or struct), ``view[a:b]`` a list of values, ``view[i] = x`` and
    ``view[a:b] = [...]`` store element by element."""

    __slots__ = ()

    def __len__(self) -> int:
        return self._desc.length

    def _elem_at(self, i: int):
        elem = self._desc.elem
        return elem, self._off + i * elem.size, f"{self._path}[{i}]"

    def __getitem__(self, i: Union[int, slice]) -> Any:
        if isinstance(i, slice):
            out = []
            for k in range(*i.indices(len(self))):
                elem, off, path = self._elem_at(k)
                out.append(self._seg._get(path) if elem.kind != "primitive" else self._child(elem, off, path))
            return out
        return self._child(*self._elem_at(_index(i, len(self), self._path or "array")))

    def __setitem__(self, i: Union[int, slice], value: Any) -> None:
        if isinstance(i, slice):
            idx = range(*i.indices(len(self)))
            values = list(value)
            if len(values) != len(idx):
                raise ValueError(
                    f"`{self._path or 'array'}`: slice of {len(idx)} elements, {len(values)} given"
                )
            # Every value checked before any is stored.
            self._seg._assign(
                self._off, self._desc, {k: v for k, v in zip(idx, values)}, self._path
            )
            return
        elem, off, path = self._elem_at(_index(i, len(self), self._path or "array"))
        self._seg._assign(off, elem, value, path)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def make_view(seg: Any, desc: Descriptor, off: int, path: str) -> _View:
    return (StructView if desc.kind == "struct" else ArrayView)(seg, desc, off, path)


def _root(seg: Any) -> _View:
    if seg.is_array:
        return ArrayView(seg, Descriptor.array(seg.descriptor, seg.count), 0, "")
    if seg.descriptor.kind in ("primitive", "enum", "text"):
        raise TypeError(f"segment `{seg.name}` holds a single {seg.type}: use .value")
    return make_view(seg, seg.descriptor, 0, "")


def root_getitem(seg: Any, key: Any) -> Any:
    return _root(seg)[key]


def root_setitem(seg: Any, key: Any, value: Any) -> None:
    _root(seg)[key] = value


def root_len(seg: Any) -> int:
    return len(_root(seg))


def root_keys(seg: Any) -> List[str]:
    v = _root(seg)
    if not isinstance(v, StructView):
        raise TypeError(f"segment `{seg.name}` holds {seg.type}, not a struct")
    return v.keys()
