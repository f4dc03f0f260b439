"""Segments: create and open them with the checks of docs/FORMAT.md, read and write their fields,
take consistent snapshots, and update several fields at once under the segment's lock.

How memory is accessed
----------------------
Every field is read and written through a ``memoryview`` of the mapping cast to the field's
format (``'q'``, ``'d'``, ...), one element at a time (``view[i]``, ``view[i] = x``) or as a run
(``view[a:b].tolist()``, which CPython also reads one element at a time). CPython implements each
element access as one ``memcpy`` of the element's width from or to an address aligned to that
width, which C compilers turn into a single load or store instruction; on x86-64 an aligned load
or store of 1, 2, 4 or 8 bytes is atomic. So a Python read never sees half of a Rust store, and a
Rust atomic load never sees half of a Python store. Runs are never copied with slice assignment
or ``bytes()``, which use ``memmove`` and may split an element.

Ordering: x86-64 keeps loads in order with loads and stores in order with stores (TSO), so the
seqlock's "counter, fields, counter" reads and "counter odd, fields, counter even" writes need no
fence instruction there, which is why Rust's fences compile to nothing on it. CPython runs each
of these accesses as a separate C call, which no compiler reorders. These are the module's
assumptions; on another architecture it warns at import (see ``ORDERED``).
"""

from __future__ import annotations

import array
import ctypes
import errno
import io
import itertools
import math
import mmap
import operator
import os
import platform
import secrets
import stat
import struct
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from . import _lock as lw
from ._errors import (
    AlreadyExists,
    Corrupt,
    CreatorDied,
    InvalidName,
    Io,
    LayoutMismatch,
    NoSpace,
    NotFound,
    PermissionDenied,
    ShmError,
    Timeout,
)
from ._format import (
    FLAG_ARRAY,
    FLAG_KEEP,
    FORMAT_VERSION,
    HEADER_SIZE,
    INT_RANGES,
    MAGIC_WORD,
    MAX_DESCRIPTOR_LEN,
    OFF_CREATED_AT,
    OFF_CREATOR_PID,
    OFF_CREATOR_START,
    OFF_DESCRIPTOR_LEN,
    OFF_ELEM_COUNT,
    OFF_ELEM_SIZE,
    OFF_FINGERPRINT,
    OFF_FLAGS,
    OFF_JOURNAL_LEN,
    OFF_JOURNAL_OFFSET,
    OFF_JOURNAL_START,
    OFF_LOCK,
    OFF_LOCK_FOREIGN,
    OFF_LOCK_PIDNS,
    OFF_LOCK_TIMENS,
    OFF_MAGIC,
    OFF_PAYLOAD_LEN,
    OFF_PAYLOAD_OFFSET,
    OFF_POISON,
    OFF_SEQ,
    OFF_STATE,
    OFF_VERSION,
    PAGE,
    PAYLOAD_ALIGN,
    STATE_INITIALIZING,
    STATE_READY,
    Code,
    Descriptor,
    DescriptorError,
    fingerprint,
)

SHM_DIR = "/dev/shm"
DEFAULT_MODE = 0o600
DEFAULT_WAIT = 1.0
_MASK64 = (1 << 64) - 1

#: Whether this machine orders plain loads and stores as the seqlock needs (x86-64's TSO).
ORDERED = platform.machine().lower() in ("x86_64", "amd64") and struct.calcsize("P") == 8

if not sys.platform.startswith("linux"):
    raise ImportError("shm_core speaks the segment format of Linux (glibc) segments in /dev/shm")
if sys.byteorder != "little" or struct.calcsize("P") != 8:
    raise ImportError("shm_core supports 64-bit little-endian hosts, as shm-core's segments do")
if not ORDERED:
    warnings.warn(
        f"shm_core: on {platform.machine()} plain loads and stores may be reordered, which "
        "snapshot() and update() assume they are not (as on x86-64): a snapshot may be torn",
        RuntimeWarning,
        stacklevel=2,
    )

_FORMATS = "bBhHiIqQfd"
_counter = itertools.count()

#: For tests: called after each store of an update, between the journal and the end of the
#: write (a test kills the process there).
_mid_write_hook: Optional[Callable[[], None]] = None


# --- names, modes, processes ----------------------------------------------------------------


def _path_of(name: str) -> str:
    """Checks a segment name as Rust's ``validate_name`` does; returns its path in /dev/shm."""
    if not isinstance(name, str):
        raise TypeError(f"a segment name is a str, not {type(name).__name__}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(name, "it is not valid UTF-8") from None
    if not raw:
        raise InvalidName(name, "it is empty")
    if len(raw) > 255:
        raise InvalidName(name, "it is longer than 255 bytes")
    if "/" in name:
        raise InvalidName(name, "it contains '/'")
    if "\0" in name:
        raise InvalidName(name, "it contains a NUL byte")
    if name in (".", ".."):
        raise InvalidName(name, "`.` and `..` name directories")
    return os.path.join(SHM_DIR, name)


def _check_mode(name: str, mode: int) -> None:
    if mode & ~0o666 or mode & 0o600 != 0o600:
        raise PermissionDenied(
            name,
            f"mode {mode:#o} is not allowed: it must give the owner read and write, and may add"
            " group and other read/write (e.g. 0o600, 0o660)",
        )


def _os_error(name: str, op: str, e: OSError) -> ShmError:
    """The exception that says what an OS error from ``op`` on segment ``name`` means."""
    code = e.errno
    if code == errno.EEXIST:
        return AlreadyExists(name)
    if code == errno.ENOENT:
        return NotFound(name)
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(name, f"{op} was refused: {e.strerror}")
    if code == errno.ELOOP:
        return PermissionDenied(name, "the name is a symbolic link, not a shared-memory object")
    if code in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
        return PermissionDenied(
            name, "the object under this name is not a regular shared-memory object"
        )
    if code == errno.ENAMETOOLONG:
        return InvalidName(name, "longer than the system allows")
    if code in (errno.ENOSPC, errno.EFBIG):
        return NoSpace(name)
    return Io(name, op, e)


def _stat_of(pid: int) -> Optional[Tuple[str, int]]:
    """The state letter and start time (clock ticks since boot) of ``pid``, from /proc."""
    return lw.stat_of(pid)


def _alive(pid: int, start: int) -> bool:
    """Whether process ``pid`` still runs and started at ``start`` (0: unknown)."""
    if pid <= 0 or pid > 0x7FFFFFFF:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    st = _stat_of(pid)
    if st is None:  # no /proc entry (another pid namespace): trust kill
        return True
    state, started = st
    if state in ("Z", "X"):  # killed but not reaped yet: dead to us
        return False
    return start == 0 or started == start


def _my_start() -> int:
    st = _stat_of(os.getpid())
    return st[1] if st else 0


def _check_object(name: str, st: os.stat_result, mode: int) -> None:
    """Refuses what Rust's ``check_ownership`` refuses: not a regular file, another user's
    (unless group access was asked for and it is one of our groups'), or open beyond ``mode``."""
    if not stat.S_ISREG(st.st_mode):
        raise PermissionDenied(
            name, "the object under this name is not a regular shared-memory object"
        )
    me = os.geteuid()
    if st.st_uid != me:
        groups = set(os.getgroups()) | {os.getegid()}
        if not (mode & 0o060 and st.st_gid in groups):
            raise PermissionDenied(
                name,
                f"it is owned by uid {st.st_uid}, not by this user (uid {me}); ask for group"
                " access (mode 0o660) to share across users",
            )
    beyond = st.st_mode & 0o777 & ~mode
    if beyond:
        raise PermissionDenied(
            name,
            f"its mode {st.st_mode & 0o777:#o} opens it to more users than the {mode:#o} this"
            " program accepts",
        )


# --- the mapping ----------------------------------------------------------------------------


class _Map:
    """A mapped object and the typed views every access goes through (see the module doc)."""

    def __init__(self, fd: int, size: int) -> None:
        self.size = size
        self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        raw = memoryview(self.mm)
        self.raw = raw
        self.views: Dict[str, memoryview] = {}
        for fmt in _FORMATS:
            n = struct.calcsize(fmt)
            self.views[fmt] = raw[: size - size % n].cast(fmt)
        self.q = self.views["Q"]
        self.u32 = self.views["I"]
        self._lockbuf = (ctypes.c_char * 8).from_buffer(self.mm, OFF_LOCK)
        self.lock_addr = ctypes.addressof(self._lockbuf)
        self.closed = False

    def u64_at(self, off: int) -> int:
        return self.q[off >> 3]

    def set_u64(self, off: int, v: int) -> None:
        self.q[off >> 3] = v

    def u32_at(self, off: int) -> int:
        return self.u32[off >> 2]

    def set_u32(self, off: int, v: int) -> None:
        self.u32[off >> 2] = v

    def bytes_at(self, off: int, n: int) -> bytes:
        """A copy of bytes ``off..off+n``, read one byte at a time (each byte is atomic)."""
        return bytes(self.views["B"][off : off + n].tolist())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for v in self.views.values():
            v.release()
        self.views = {}
        self.q = self.u32 = None  # type: ignore[assignment]
        self.raw.release()
        self._lockbuf = None  # type: ignore[assignment]
        try:
            self.mm.close()
        except BufferError:
            # Someone holds a buffer of the mapping (a ctypes object of their own): it is
            # unmapped when that goes away.
            pass


def _release(m: _Map, path: Optional[str], dev_ino: Optional[Tuple[int, int]]) -> None:
    """Unmaps, and unlinks ``path`` if it still names the object this handle created."""
    m.close()
    if path is None or dev_ino is None:
        return
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return
    if (st.st_dev, st.st_ino) == dev_ino:
        try:
            os.unlink(path)
        except OSError:
            pass


# --- reading and writing values -------------------------------------------------------------


def _char(v: int) -> str:
    return chr(v) if v < 0xD800 or 0xE000 <= v <= 0x10FFFF else "\ufffd"


def _shape(desc: Descriptor) -> Tuple[Tuple[int, ...], Descriptor]:
    """``[[T; 3]; 2]`` -> ``((2, 3), T)``."""
    dims = []
    while desc.kind == "array":
        dims.append(desc.length)
        desc = desc.elem  # type: ignore[assignment]
    return tuple(dims), desc


def _reshape(flat: list, shape: Tuple[int, ...]) -> list:
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


Reader = Callable[[Dict[str, memoryview], int], Any]


def _reader(desc: Descriptor) -> Reader:
    """A function ``(views, offset) -> value`` reading ``desc`` at ``offset`` of the mapping:
    a scalar, a (nested) list or a dict, every primitive read with one load."""
    if desc.kind == "primitive":
        code = desc.code
        assert code is not None
        fmt, size, letter = code.fmt, code.size, code.letter
        if letter == "?":
            return lambda vs, off: vs["B"][off] != 0
        if letter == "u":
            return lambda vs, off: _char(vs["I"][off >> 2])
        return lambda vs, off: vs[fmt][off // size]
    if desc.kind == "array":
        shape, leaf = _shape(desc)
        if leaf.kind == "primitive":
            code = leaf.code
            assert code is not None
            n = math.prod(shape)
            fmt, size, letter = code.fmt, code.size, code.letter

            def read_run(vs: Dict[str, memoryview], off: int) -> list:
                i = off // size
                flat = vs[fmt][i : i + n].tolist()
                if letter == "?":
                    flat = [x != 0 for x in flat]
                elif letter == "u":
                    flat = [_char(x) for x in flat]
                return _reshape(flat, shape)

            return read_run
        elem = _reader(desc.elem)  # type: ignore[arg-type]
        esize, length = desc.elem.size, desc.length  # type: ignore[union-attr]
        return lambda vs, off: [elem(vs, off + i * esize) for i in range(length)]
    fields = [(f.name, f.offset, _reader(f.type)) for f in desc.fields]
    return lambda vs, off: {name: r(vs, off + o) for name, o, r in fields}


Copier = Callable[[Dict[str, memoryview], int, Dict[str, memoryview], int], None]


def _copier(desc: Descriptor) -> Copier:
    """A function ``(src, src_off, dst, dst_off)`` copying every primitive of ``desc`` with one
    load and one store each (runs of primitives through ``tolist``, also one load each)."""
    if desc.kind == "primitive":
        code = desc.code
        assert code is not None
        fmt, size = code.fmt, code.size

        def one(src, so, dst, do):
            dst[fmt][do // size] = src[fmt][so // size]

        return one
    if desc.kind == "array":
        shape, leaf = _shape(desc)
        if leaf.kind == "primitive":
            code = leaf.code
            assert code is not None
            fmt, size, n = code.fmt, code.size, math.prod(shape)

            def run(src, so, dst, do):
                i, j = so // size, do // size
                dst[fmt][j : j + n] = array.array(fmt, src[fmt][i : i + n].tolist())

            return run
        elem = _copier(desc.elem)  # type: ignore[arg-type]
        es, length = desc.elem.size, desc.length  # type: ignore[union-attr]

        def each(src, so, dst, do):
            for k in range(length):
                elem(src, so + k * es, dst, do + k * es)

        return each
    fields = [(f.offset, _copier(f.type)) for f in desc.fields]

    def struct_(src, so, dst, do):
        for o, c in fields:
            c(src, so + o, dst, do + o)

    return struct_


# A planned store: (format, element index in that format's view, raw value).
Store = Tuple[str, int, Any]


def _raw(code: Code, value: Any, path: str) -> Any:
    """The value to store for ``value`` in a field of type ``code``; raises ``TypeError`` or
    ``OverflowError`` (naming the field) before anything is written."""
    letter = code.letter
    where = f"`{path}` ({code.rust})" if path else code.rust
    if letter == "?":
        if not isinstance(value, (bool, int)) and not hasattr(value, "__index__"):
            raise TypeError(f"{where} takes a bool, not {type(value).__name__}")
        return 1 if value else 0
    if letter == "u":
        if not isinstance(value, str) or len(value) != 1:
            raise TypeError(f"{where} takes a str of one character, not {value!r}")
        v = ord(value)
        if 0xD800 <= v <= 0xDFFF:
            raise ValueError(f"{where}: a surrogate ({v:#x}) is not a Unicode scalar value")
        return v
    if letter in ("f", "d"):
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{where} takes a number, not {type(value).__name__}")
        f = float(value)
        if letter == "f" and math.isfinite(f):
            # Rounded to f32 here (out of range: infinity, as Rust's `as f32`), so that the
            # store itself never fails, whatever this Python's memoryview does with overflow.
            try:
                f = struct.unpack("f", struct.pack("f", f))[0]
            except OverflowError:
                f = math.copysign(math.inf, f)
        return f
    if letter == "B" and isinstance(value, (bytes, bytearray)) and len(value) == 1:
        return value[0]  # multiprocessing's Value('c', b'x')
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{where} takes an int, not {type(value).__name__}") from None
    lo, hi = INT_RANGES[letter]
    if not lo <= v <= hi:
        raise OverflowError(f"{where}: {v} is out of range {lo}..={hi}")
    return v


def _store_prim(code: Code, off: int, value: Any, path: str, out: List[Store]) -> None:
    out.append((code.fmt, off // code.size, _raw(code, value, path)))


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


def _plan_assign(desc: Descriptor, off: int, value: Any, path: str, out: List[Store]) -> None:
    """Stores for setting ``desc`` at ``off`` to ``value``: a scalar; a sequence of the array's
    length or a mapping ``{index: value}``; a mapping ``{field: value}`` (fields left out are
    left alone)."""
    if desc.kind == "primitive":
        _store_prim(desc.code, off, value, path, out)  # type: ignore[arg-type]
    elif desc.kind == "array":
        elem = desc.elem
        assert elem is not None
        if isinstance(value, Mapping):
            items = [(_index(k, desc.length, path), v) for k, v in value.items()]
        elif isinstance(value, (str, bytes, bytearray)) and not (
            elem.kind == "primitive" and elem.code.letter in "uB"  # type: ignore[union-attr]
        ):
            raise TypeError(f"`{path}` is an array of {desc.length}: give a list")
        else:
            try:
                values = list(value)
            except TypeError:
                raise TypeError(
                    f"`{path or 'the array'}` takes a sequence of {desc.length} values or a"
                    f" mapping {{index: value}}, not {type(value).__name__}"
                ) from None
            if len(values) != desc.length:
                raise ValueError(
                    f"`{path or 'the array'}` has {desc.length} elements; {len(values)} given"
                )
            items = list(enumerate(values))
        for i, v in items:
            _plan_assign(elem, off + i * elem.size, v, f"{path}[{i}]", out)
    else:
        if not isinstance(value, Mapping):
            raise TypeError(
                f"`{path or desc.name}` is a struct {desc.name}: give a mapping of its fields,"
                f" not {type(value).__name__}"
            )
        by_name = {f.name: f for f in desc.fields}
        for k, v in value.items():
            f = by_name.get(k)
            if f is None:
                raise KeyError(f"{desc.name} has no field `{k}` (fields: {', '.join(by_name)})")
            _plan_assign(f.type, off + f.offset, v, _join(path, k), out)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _same_bits(code: Code, a: Any, b: Any) -> bool:
    if code.letter in ("f", "d"):
        return struct.pack(code.fmt, a) == struct.pack(code.fmt, b)
    return a == b


def _copy(v: Any) -> Any:
    """A deep copy of a value as read (dicts, lists, scalars)."""
    if isinstance(v, list):
        if v and isinstance(v[0], (list, dict)):
            return [_copy(x) for x in v]
        return v[:]  # scalars are immutable: a run of them copies at C speed
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v


#: The unsigned memoryview format of each primitive width.
_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _primitives(d: Descriptor, base: int, start: int, end: int) -> Iterator[Tuple[int, int]]:
    """(offset, width) of every primitive of ``d``, placed at ``base``, inside ``[start, end)``."""
    if base >= end or base + d.size <= start:
        return
    if d.kind == "primitive":
        yield base, d.code.size
    elif d.kind == "array":
        size = d.elem.size
        if size == 0:
            return
        i = max(0, start - base) // size
        while i < d.length and base + i * size < end:
            yield from _primitives(d.elem, base + i * size, start, end)
            i += 1
    else:
        for f in d.fields:
            yield from _primitives(f.type, base + f.offset, start, end)


def _views_of(buf: bytearray) -> Dict[str, memoryview]:
    """Typed views of a private buffer whose length is a multiple of 8."""
    mv = memoryview(buf)
    return {fmt: mv.cast(fmt) for fmt in _FORMATS}


def _plan_changes(
    desc: Descriptor, off: int, old: Any, new: Any, path: str, out: List[Store]
) -> None:
    """Stores for the primitives that differ between ``old`` (as read) and ``new`` (as the
    update function left it): only those are written, as Rust's ``update`` does."""
    if desc.kind == "primitive":
        code = desc.code
        assert code is not None
        raw = _raw(code, new, path)
        if not _same_bits(code, _raw(code, old, path), raw):
            out.append((code.fmt, off // code.size, raw))
    elif desc.kind == "array":
        elem = desc.elem
        assert elem is not None
        if not isinstance(new, (list, tuple)) or len(new) != desc.length:
            got = f"{len(new)} elements" if isinstance(new, (list, tuple)) else type(new).__name__
            raise ValueError(f"`{path or 'the array'}` must stay a list of {desc.length}: {got}")
        es = elem.size
        if elem.kind == "primitive":
            # A copy shares the scalars it did not change: find the others at C speed.
            for i in itertools.compress(range(desc.length), map(operator.is_not, old, new)):
                _plan_changes(elem, off + i * es, old[i], new[i], f"{path}[{i}]", out)
            return
        for i in range(desc.length):
            _plan_changes(elem, off + i * es, old[i], new[i], f"{path}[{i}]", out)
    else:
        if not isinstance(new, Mapping):
            raise TypeError(f"`{path or desc.name}` must stay a dict of its fields")
        names = {f.name for f in desc.fields}
        extra = [k for k in new if k not in names]
        if extra:
            raise KeyError(f"{desc.name} has no field `{extra[0]}` (fields: {', '.join(names)})")
        for f in desc.fields:
            if f.name not in new:
                raise KeyError(f"field `{_join(path, f.name)}` was removed from the dict")
            _plan_changes(
                f.type, off + f.offset, old[f.name], new[f.name], _join(path, f.name), out
            )


# --- views ----------------------------------------------------------------------------------


class _View:
    """A place in a segment's payload: a struct or an array, possibly nested."""

    __slots__ = ("_seg", "_desc", "_off", "_path")

    def __init__(self, seg: "Segment", desc: Descriptor, off: int, path: str) -> None:
        self._seg = seg
        self._desc = desc
        self._off = off
        self._path = path

    @property
    def descriptor(self) -> Descriptor:
        return self._desc

    def snapshot(self, timeout: Optional[float] = None) -> Any:
        """A consistent copy of this part of the segment (see :meth:`Segment.snapshot`)."""
        r = _reader(self._desc)
        vs = self._seg._views()
        return self._seg._consistent(lambda: r(vs, self._off), timeout)

    def _child(self, desc: Descriptor, off: int, path: str) -> Any:
        if desc.kind == "primitive":
            return _reader(desc)(self._seg._views(), off)
        return _make_view(self._seg, desc, off, path)

    def _set(self, desc: Descriptor, off: int, value: Any, path: str) -> None:
        out: List[Store] = []
        _plan_assign(desc, off, value, path, out)
        vs = self._seg._views()
        for fmt, i, raw in out:
            vs[fmt][i] = raw

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._path or '(root)'}: {self._desc} of {self._seg.name!r}>"


class StructView(_View):
    """A struct in a segment: ``view["field"]`` reads a primitive field (one atomic load) or
    returns a view of a nested array or struct; ``view["field"] = x`` stores (each primitive with
    one atomic store; use :meth:`Segment.update` to change several fields as one)."""

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
        self._set(f.type, self._off + f.offset, value, _join(self._path, key))

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

    def _elem_at(self, i: int) -> Tuple[Descriptor, int, str]:
        elem = self._desc.elem
        return elem, self._off + i * elem.size, f"{self._path}[{i}]"  # type: ignore[union-attr]

    def __getitem__(self, i: Union[int, slice]) -> Any:
        if isinstance(i, slice):
            elem = self._desc.elem
            r = _reader(elem)  # type: ignore[arg-type]
            vs = self._seg._views()
            return [r(vs, self._off + k * elem.size) for k in range(*i.indices(len(self)))]  # type: ignore[union-attr]
        return self._child(*self._elem_at(_index(i, len(self), self._path or "array")))

    def __setitem__(self, i: Union[int, slice], value: Any) -> None:
        if isinstance(i, slice):
            idx = range(*i.indices(len(self)))
            values = list(value)
            if len(values) != len(idx):
                raise ValueError(
                    f"`{self._path or 'array'}`: slice of {len(idx)} elements, {len(values)} given"
                )
            out: List[Store] = []
            for k, v in zip(idx, values):
                elem, off, path = self._elem_at(k)
                _plan_assign(elem, off, v, path, out)
            vs = self._seg._views()
            for fmt, j, raw in out:
                vs[fmt][j] = raw
            return
        elem, off, path = self._elem_at(_index(i, len(self), self._path or "array"))
        self._set(elem, off, value, path)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def _make_view(seg: "Segment", desc: Descriptor, off: int, path: str) -> _View:
    return (StructView if desc.kind == "struct" else ArrayView)(seg, desc, off, path)


# --- the lock -------------------------------------------------------------------------------

#: The segments whose lock each thread holds (by device and inode, as Rust's list): a lock
#: word naming this thread is this thread's only if it is listed here; else a peer wrote it.
_held = threading.local()


def _held_set() -> set:
    h = getattr(_held, "set", None)
    if h is None:
        h = _held.set = set()
    return h


os.register_at_fork(after_in_child=lambda: _held.__dict__.clear())


def _check_timeout(timeout: Optional[float]) -> None:
    if timeout is not None and not timeout >= 0:  # `not >=` refuses NaN too
        raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout!r}")


class Lock:
    """The segment's lock (``get_lock()``): the lock word in the header (it names the thread
    holding it), the same one Rust's ``lock()`` and ``update()`` take.

    Used as ``with seg.get_lock() as lock: ...``. Like ``multiprocessing``'s lock it is
    re-entrant within a thread (``update()`` inside ``with get_lock()`` works).

    Waiting: ``with`` waits as long as it takes for ``get_lock()``, and at most ``timeout``
    seconds for ``get_lock(timeout=...)``, then raises :class:`Timeout` naming the segment and
    the pid holding the lock. ``acquire()`` keeps ``multiprocessing``'s contract: it returns
    False when the lock stayed held (``blocking=False``, or after ``timeout`` seconds; without a
    ``timeout``, that of ``get_lock(timeout=...)``; a negative one waits as long as it takes).

    Poisoning (see the package documentation, "Poisoning: who is told what"): ``poisoned`` is
    True when the segment was poisoned as this thread acquired the lock: a previous holder died
    holding it, or failed (an exception) while holding it, and what it may have half-changed was
    not repaired. It stays so for every locker until :meth:`Segment.clear_poison`. An exception
    that leaves a ``with`` block of the lock poisons the segment, as a panic with Rust's lock
    guard alive does: the stores made under the lock are not journaled, so nothing can undo
    them.
    """

    def __init__(
        self, seg: "Segment", timeout: Optional[float] = None, base: Optional["Lock"] = None
    ) -> None:
        self._seg = seg
        self._timeout = timeout
        # Every Lock of a handle shares who holds it through the handle: the handle's own.
        self._base = self if base is None else base
        if base is None:
            self._owner: Optional[int] = None
            self._depth = 0
            self._poisoned = False

    @property
    def poisoned(self) -> bool:
        """Whether the segment was poisoned when this thread acquired the lock."""
        return self._base._poisoned

    @property
    def timeout(self) -> Optional[float]:
        """How long ``with`` (and ``acquire()`` without a timeout) waits, in seconds; None: as
        long as it takes."""
        return self._timeout

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Takes the lock; returns False if it stayed held: at once with ``blocking=False``,
        after ``timeout`` seconds (default: this lock's :attr:`timeout`; negative: no limit)
        otherwise. A blocked acquire can be interrupted with Ctrl-C."""
        b = self._base
        me = threading.get_ident()
        if b._owner == me:
            b._depth += 1
            return True
        if timeout is None:
            timeout = self._timeout
        poisoned = self._seg._lock_raw(blocking, None if timeout is None or timeout < 0 else timeout)
        if poisoned is None:
            return False
        b._owner = me
        b._depth = 1
        b._poisoned = poisoned
        return True

    def release(self) -> None:
        b = self._base
        if b._owner != threading.get_ident():
            raise RuntimeError(f"segment `{self._seg.name}`: release of a lock this thread does not hold")
        b._depth -= 1
        if b._depth == 0:
            b._owner = None
            self._seg._unlock_raw()

    def held(self) -> bool:
        """Whether this thread holds the lock (through this handle)."""
        return self._base._owner == threading.get_ident()

    def __enter__(self) -> "Lock":
        start = time.monotonic()
        if not self.acquire():
            raise self._seg._lock_timeout("its lock was not released", time.monotonic() - start)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            # Failed holding the lock: its unjournaled stores may be half done.
            self._seg._m.set_u32(OFF_POISON, 1)
        self.release()

    def __repr__(self) -> str:
        state = "held" if self._base._owner is not None else "free here"
        return f"<shm_core.Lock of {self._seg.name!r}: {state}>"


# --- segments -------------------------------------------------------------------------------


class Segment:
    """A segment made by Rust's ``shm_core`` (or by this module), attached by name.

    ``seg["load"]``, ``seg["hist"][3]``, ``seg["inner"]["x"]`` read fields (each primitive with
    one atomic load); ``seg["load"] = 0.5`` stores one; :meth:`snapshot` copies the whole value
    consistently; :meth:`update` changes several fields at once; :meth:`get_lock` is the lock.
    Get one with :func:`open`; :class:`Value` and :class:`Array` are the ``multiprocessing``-style
    kinds. Closing (or leaving a ``with`` block, or garbage collection) unmaps it; the handle
    that created a segment also removes it then, unless created with ``keep=True``.
    """

    name: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("open a segment with shm_core.open(name), or create one with shm_core.create")

    # -- construction -----------------------------------------------------------------------

    def _attach(
        self,
        name: str,
        m: _Map,
        desc: Descriptor,
        count: int,
        is_array: bool,
        payload_offset: int,
        journal_offset: int,
        owner: bool,
        keep: bool,
        path: str,
        dev_ino: Tuple[int, int],
    ) -> None:
        self.name = name
        self._m = m
        self.descriptor = desc
        self.count = count
        self.is_array = is_array
        self.is_owner = owner
        self.keep = keep
        self._payload = payload_offset
        self._payload_len = desc.size * count
        self._journal = journal_offset
        self._dev_ino = dev_ino
        self._lock = Lock(self)
        self._finalizer = weakref.finalize(
            self, _release, m, path if owner and not keep else None, dev_ino
        )
        root = Descriptor.array(desc, count) if is_array else desc
        self._root_desc = root
        self._root_reader = _reader(root)
        #: How many snapshots fell back to reading under the lock (see ``snapshot``).
        self.locked_reads = 0

    # -- information ------------------------------------------------------------------------

    @property
    def type(self) -> str:
        """What the segment holds, as Rust spells it: ``f64``, ``Stats``, ``[i32; 4]``
        (an array segment of 4 ``i32``)."""
        return str(self._root_desc)

    @property
    def fingerprint(self) -> int:
        return self.descriptor.fingerprint

    @property
    def closed(self) -> bool:
        return self._m.closed

    def info(self) -> Dict[str, Any]:
        """The header's facts: creator, creation time, shape, flags."""
        m = self._check_open()
        pid = m.u32_at(OFF_CREATOR_PID)
        start = m.u64_at(OFF_CREATOR_START)
        return {
            "name": self.name,
            "type": self.type,
            "element": str(self.descriptor),
            "count": self.count,
            "array": self.is_array,
            "fingerprint": f"{self.fingerprint:#018x}",
            "creator_pid": pid,
            "creator_alive": _alive(pid, start),
            "created_at": m.u64_at(OFF_CREATED_AT),
            "keep": bool(m.u32_at(OFF_FLAGS) & FLAG_KEEP),
            "size": m.size,
        }

    def __repr__(self) -> str:
        state = " (closed)" if self.closed else ""
        return f"<shm_core.{type(self).__name__} {self.name!r}: {self.type}{state}>"

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Unmaps the segment; the handle that created it also removes it (unless kept).
        Views and values read before stay valid; the handle cannot be used after."""
        if self._lock.held():
            raise RuntimeError(f"segment `{self.name}`: close() while this thread holds its lock")
        self._finalizer()

    def __enter__(self) -> "Segment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> _Map:
        m = self._m
        if m.closed:
            raise ValueError(f"segment `{self.name}` is closed")
        return m

    def _views(self) -> Dict[str, memoryview]:
        return self._check_open().views

    # -- field access -----------------------------------------------------------------------

    def _root_view(self) -> _View:
        if self._root_desc.kind == "primitive":
            raise TypeError(f"segment `{self.name}` holds a single {self.type}: use .value")
        return _make_view(self, self._root_desc, self._payload, "")

    def __getitem__(self, key: Any) -> Any:
        return self._root_view()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._root_view()[key] = value

    def __len__(self) -> int:
        return len(self._root_view())

    def __iter__(self):
        return iter(self._root_view())

    def keys(self) -> List[str]:
        v = self._root_view()
        if not isinstance(v, StructView):
            raise TypeError(f"segment `{self.name}` holds {self.type}, not a struct")
        return v.keys()

    # -- consistency ------------------------------------------------------------------------

    def snapshot(self, timeout: Optional[float] = None) -> Any:
        """A consistent copy of the whole value: a dict for a struct, a (nested) list for an
        array, a scalar for a primitive. No ``update`` of any process is half-seen.

        A seqlock read, as Rust's ``snapshot()``: it retries while an update is in progress. If
        the writer of that update died (the counter stays odd while the lock is free), it rolls
        the half-done update back from the journal after about a millisecond: the value is
        then the one before that update, and the segment is not poisoned (taking the lock for
        that, it poisons the segment if it finds instead that a holder died with no write in
        progress, as every locker does). It never reports poisoning: see :attr:`poisoned`.
        Python reads are slow next to Rust writes, so after a few lost races it reads holding
        the lock instead, which always succeeds (and holds up writers for that one read).
        ``timeout`` (seconds) bounds the wait; the default waits as long as it takes, which is
        only long while a live process holds the lock in the middle of an update. Raises
        :class:`Timeout` if it runs out.
        """
        vs = self._views()
        r, off = self._root_reader, self._payload
        return self._consistent(lambda: r(vs, off), timeout)

    def update(self, fn: Any = None, /, *, timeout: Optional[float] = None, **fields: Any) -> Any:
        """Changes several fields at once, as one seqlock write under the segment's lock, so a
        ``snapshot()`` in any process (Rust or Python) sees all of the change or none of it.

        - ``update(load=0.7, errors=3)``, ``update(inner={"x": 5})``, ``update(hist={3: 7})``:
          sets the named fields (a nested dict sets some fields of a nested struct, a dict
          ``{index: value}`` some elements of an array, a list all of them);
        - ``update(fn)``: ``fn`` gets a copy of the value (a dict, a list) to change in place;
          the primitives it changed are stored and ``update`` returns what ``fn`` returns.
          For a single primitive (a :class:`Value`), ``fn`` gets the value and returns the new
          one, which ``update`` returns: ``v.update(lambda x: x + 1)``.
        - ``update(value)``: sets the whole value the same way (an :class:`Array` from a list, or
          some elements from ``{index: value}``).

        ``timeout`` (seconds; None, the default: as long as it takes) bounds the wait for the
        lock: if another process keeps it that long, :class:`Timeout` is raised, naming the
        segment and the pid holding the lock, and nothing is changed. (A struct field called
        ``timeout`` is set with ``update({"timeout": x})``.)

        Values are checked before the lock is taken: a bad one raises and changes nothing.
        ``fn`` runs holding the lock, before the write begins, so readers are not held up while
        it runs; if it raises, nothing is stored and the segment is poisoned (as a panic in
        Rust's ``update`` closure poisons it). On a poisoned segment (:attr:`poisoned`: a
        holder of the lock died or failed before), ``update`` proceeds, its own write being
        whole and journaled, and leaves the poisoning in place: only :meth:`clear_poison`
        clears it. Only the primitives that change are stored, so concurrent Rust field atomics
        (``fetch_add``) on the others are not lost; on those it changes, they are overwritten.
        A process killed in the middle of the stores leaves a journal from which the next
        locker or reader, in any language, rolls the update back: the value is then exactly
        the one before, and the segment is not poisoned. Who is told what after each kind of
        death: the package documentation, "Poisoning: who is told what".
        """
        _check_timeout(timeout)
        if fn is not None and fields:
            raise TypeError("update() takes a function or a value, or fields, not both")
        root = self._root_desc
        off = self._payload
        given: Optional[List[Store]] = None
        if fields or (fn is not None and not callable(fn)):
            if fields and root.kind != "struct":
                raise TypeError(f"segment `{self.name}` holds {self.type}: it has no named fields")
            given = []  # checked before taking the lock: a bad value changes nothing
            _plan_assign(root, off, fields if fields else fn, "", given)
            if not given:
                return None
        elif fn is None:
            return None
        lock = self._lock
        start_wait = time.monotonic()
        if not lock.acquire(timeout=-1 if timeout is None else timeout):
            raise self._lock_timeout(
                "update(): its lock was not released", time.monotonic() - start_wait
            )
        try:
            result = None
            if given is not None:
                stores = given
                start, rdesc = self._range_of(stores)
                old_img = self._copy_out(start, rdesc)
            else:
                start, rdesc = 0, root
                old_img = self._copy_out(0, root)
                stores = []
                try:
                    # The old value, decoded from the very bytes the journal will hold.
                    old = self._root_reader(_views_of(old_img), 0)
                    new = _copy(old)
                    result = fn(new)
                    if root.kind == "primitive":
                        new = result
                    _plan_changes(root, off, old, new, "", stores)
                except BaseException:
                    # As FORMAT.md says of a failed computation: nothing is stored, and the
                    # segment is poisoned until clear_poison().
                    self._m.set_u32(OFF_POISON, 1)
                    raise
                if stores and self.is_array:  # journal only the span of changed elements
                    start, rdesc = self._range_of(stores)
                    old_img = old_img[start : start + -(-rdesc.size // 8) * 8]
            if stores:
                self._write(start, rdesc.size, old_img, stores)
            return result
        finally:
            lock.release()

    def get_lock(self, timeout: Optional[float] = None) -> Lock:
        """The segment's lock, as ``multiprocessing.Value(...).get_lock()``: ``with
        seg.get_lock(): ...`` excludes every other locker, Rust's ``lock()`` and ``update()``
        included. Stores made while holding it are not seen as one by ``snapshot()``: use
        :meth:`update` for that.

        ``timeout`` (seconds; None, the default: as long as it takes) bounds the wait of
        ``with seg.get_lock(timeout=2): ...``, which raises :class:`Timeout` naming the segment
        and the pid holding the lock; ``acquire()`` of that lock returns False after it instead
        (``acquire(timeout=...)`` takes a timeout of its own, as ``multiprocessing``'s does).
        Whatever the timeout, it is the same lock, re-entrant within a thread.

        ``lock.poisoned`` says whether the segment was poisoned when it was acquired; an
        exception leaving the ``with`` block poisons it (see :class:`Lock`).
        """
        _check_timeout(timeout)
        if timeout is None:
            return self._lock
        return Lock(self, timeout, self._lock)

    @property
    def poisoned(self) -> bool:
        """Whether the segment is poisoned: a holder of its lock died or failed while holding it,
        and what it may have half-changed was not repaired. The same state as Rust's
        ``is_poisoned()`` and ``shm inspect``: the header's sticky ``poison`` word is set, or the
        lock word says its holder died (or names a thread that no longer exists) while no
        write is in progress, a death no locker has noticed yet. A writer killed in the middle
        of an update's stores does not poison: that update is rolled back. Stays True until
        :meth:`clear_poison`; see the package documentation, "Poisoning: who is told what"."""
        m = self._check_open()
        if m.u32_at(OFF_POISON) != 0:
            return True
        for _ in range(4):
            seq = m.u64_at(OFF_SEQ)
            if seq & 1:
                break
            word = lw.load(m.lock_addr)
            dead = (
                word & lw.TID_MASK != 0
                and lw.judge(word, *self._lock_area()) == lw.DEAD
                and lw.load(m.lock_addr) == word
            )
            if m.u64_at(OFF_SEQ) == seq:
                return dead or m.u32_at(OFF_POISON) != 0
        return m.u32_at(OFF_POISON) != 0

    def clear_poison(self, *, timeout: Optional[float] = None) -> None:
        """Says the segment is consistent again (as ``Mutex::clear_poison`` does in Rust): after
        it, :attr:`poisoned` is False and lockers are told nothing, until the next death or
        failure. Call it once you have checked or repaired the value.

        It takes the lock for a moment (re-entrant: call it inside ``with get_lock()``), so that
        a holder's death nobody has noticed yet is dealt with first and cleared too; ``timeout``
        bounds that wait, as for :meth:`update`."""
        _check_timeout(timeout)
        lock = self._lock
        start_wait = time.monotonic()
        if not lock.acquire(timeout=-1 if timeout is None else timeout):
            raise self._lock_timeout(
                "clear_poison(): its lock was not released", time.monotonic() - start_wait
            )
        try:
            self._m.set_u32(OFF_POISON, 0)
        finally:
            lock.release()

    # -- the seqlock and the lock (docs/FORMAT.md, "The lock", "Consistency protocol") -------

    def _range_of(self, stores: List[Store]) -> Tuple[int, Descriptor]:
        """The payload range an update journals: the whole value, or, in an array segment, the
        span of elements the stores touch. Returns its start and its layout."""
        if not self.is_array:
            return 0, self._root_desc
        es = self.descriptor.size
        lo = min(i * struct.calcsize(fmt) for fmt, i, _ in stores) - self._payload
        hi = max((i + 1) * struct.calcsize(fmt) for fmt, i, _ in stores) - self._payload
        first, last = lo // es, -(-hi // es)
        return first * es, Descriptor.array(self.descriptor, last - first)

    def _copy_out(self, start: int, desc: Descriptor) -> bytearray:
        """A private copy of payload bytes ``start..start + desc.size``, every field read with
        one atomic load (padding left zero)."""
        img = bytearray(-(-desc.size // 8) * 8)
        dst = _views_of(img)
        _copier(desc)(self._views(), self._payload + start, dst, 0)
        for v in dst.values():
            v.release()
        return img

    def _write(self, start: int, length: int, old_img: bytearray, stores: List[Store]) -> None:
        """A journaled seqlock write (docs/FORMAT.md, "Multi-field write") of ``stores`` over the
        payload range ``start..start + length``, whose old bytes are ``old_img``. The caller
        holds the lock."""
        m = self._check_open()
        new_img = bytearray(old_img)
        nv = _views_of(new_img)
        base = self._payload + start
        for fmt, i, raw in stores:
            nv[fmt][i - base // struct.calcsize(fmt)] = raw
        for v in nv.values():
            v.release()
        jo, pl = self._journal, self._payload_len
        vs = m.views
        odd = m.u64_at(OFF_SEQ) | 1  # odd already only if a dead writer's was not ended
        m.set_u64(OFF_SEQ, odd)
        # Only lock holders touch the journal, so plain copies are fine here.
        m.raw[jo + start : jo + start + length] = old_img[:length]
        m.raw[jo + pl + start : jo + pl + start + length] = new_img[:length]
        m.set_u64(OFF_JOURNAL_START, start)
        m.set_u64(OFF_JOURNAL_LEN, length)
        # No fences: x86-64 does not reorder stores with stores (see the module doc).
        done = False
        try:
            hook = _mid_write_hook
            for fmt, i, raw in stores:
                vs[fmt][i] = raw
                if hook is not None:
                    hook()
            done = True
        finally:
            if not done:
                # Interrupted (KeyboardInterrupt) mid-write: undo, and poison the segment as
                # Rust does on a panic in an update (an update that raises poisons it).
                self._undo(m)
                m.set_u32(OFF_POISON, 1)
            m.set_u64(OFF_JOURNAL_LEN, 0)
            m.set_u64(OFF_SEQ, (odd + 1) & _MASK64)

    def _undo(self, m: _Map) -> bool:
        """Holding the lock: rolls back a recorded, unfinished update and clears the record.

        Every primitive of the range whose journaled old and new copies differ gets its old value
        back, with one store of its own width (docs/FORMAT.md, "Undo"): other processes may be
        using the same fields with atomics of that width meanwhile."""
        length = m.u64_at(OFF_JOURNAL_LEN)
        if length == 0:
            return False
        start = m.u64_at(OFF_JOURNAL_START)
        pl = self._payload_len
        fits = start + length <= pl  # the shared header's record, checked against our own length
        elem = self.descriptor
        if fits and elem.size > 0:
            jo, po = self._journal, self._payload
            end = start + length
            k = start // elem.size
            while k * elem.size < end:
                for off, width in _primitives(elem, k * elem.size, start, end):
                    view = m.views[_UNSIGNED[width]]
                    old, new = view[(jo + off) // width], view[(jo + pl + off) // width]
                    if old != new:
                        view[(po + off) // width] = old
                k += 1
        m.set_u64(OFF_JOURNAL_LEN, 0)
        return fits

    def _consistent(self, read: Callable[[], Any], timeout: Optional[float]) -> Any:
        m = self._check_open()
        q, si = m.q, OFF_SEQ >> 3
        deadline = None if timeout is None else time.monotonic() + timeout
        odd_since: Optional[float] = None
        tries = 0
        spins = 0
        while True:
            before = q[si]
            if not before & 1:
                r = read()
                if q[si] == before:
                    return r
                odd_since = None
                tries += 1
                if tries >= 8:
                    # Writers keep winning: a Python read is slow next to a Rust update.
                    return self._read_locked(read, deadline)
                continue
            now = time.monotonic()
            if odd_since is None:
                odd_since = now
            elif now - odd_since >= 0.001:
                self._recover_dead_writer()
                odd_since = now
            if deadline is not None and now >= deadline:
                raise self._lock_timeout(
                    "no consistent snapshot: a write stayed in progress", timeout or 0.0
                )
            spins += 1
            if spins < 16:
                pass
            elif spins < 64:
                time.sleep(0)
            else:
                time.sleep(50e-6)

    def _read_locked(self, read: Callable[[], Any], deadline: Optional[float]) -> Any:
        """Reads holding the lock: no update can be in progress then (one whose writer died is
        undone on the way in), so the read is consistent."""
        if self._lock.held():
            self._recover_locked()  # rolled back: repaired, not poisoned
            return read()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if self._lock_raw(True, left) is None:
            raise self._lock_timeout("no consistent snapshot: the lock stayed held", left or 0.0)
        self.locked_reads += 1
        try:
            return read()
        finally:
            self._unlock_raw()

    def _recover_locked(self) -> bool:
        """Holding the lock: an odd counter means its writer died mid-write. Undo its stores
        from the journal and end the write (the value is then the one before that update: the
        segment is repaired, not poisoned). Returns whether there was one."""
        m = self._m
        seq = m.u64_at(OFF_SEQ)
        if not seq & 1:
            return False
        self._undo(m)
        m.set_u64(OFF_SEQ, (seq + 1) & _MASK64)
        return True

    def _recover_dead_writer(self) -> None:
        """The counter has stayed odd: if the lock is free, its writer is dead."""
        if self._lock.held():
            self._recover_locked()  # rolled back: repaired, not poisoned
            return
        if self._lock_raw(False, None) is not None:
            self._unlock_raw()

    def _lock_area(self) -> Tuple[int, int, int]:
        """``lock_foreign``, ``lock_pidns`` and ``lock_timens``: whether the owners the lock word
        names may be judged here."""
        m = self._m
        return m.u32_at(OFF_LOCK_FOREIGN), m.u32_at(OFF_LOCK_PIDNS), m.u32_at(OFF_LOCK_TIMENS)

    def _mark_foreign(self) -> None:
        """Marks the lock foreign, for good: nobody takes an owner for dead any more."""
        if self._m.u32_at(OFF_LOCK_FOREIGN) == 0:
            self._m.set_u32(OFF_LOCK_FOREIGN, 1)

    def _lock_raw(self, blocking: bool, timeout: Optional[float]) -> Optional[bool]:
        """Takes the lock word; returns whether the segment is poisoned (once a dead holder is
        dealt with), or ``None`` if the lock stayed held.

        Every locker (a reader taking it for a moment included) deals with a dead holder the same
        way: a writer that died in the middle of its stores is rolled back from the journal and
        nothing is poisoned; a holder that died with no write in progress may have left
        unjournaled stores half done, so the segment is poisoned until ``clear_poison()``.
        """
        m = self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        key = self._dev_ino
        got = lw.lock(
            m.lock_addr, self._lock_area, self._mark_foreign, blocking, deadline,
            lambda: key in _held_set(),
        )
        if got == lw.BUSY:
            return None
        if got == lw.HELD_HERE:
            raise RuntimeError(
                f"segment `{self.name}`: this thread already holds its lock (through another handle)"
            )
        _held_set().add(key)
        # A holder that died outside a write window may have left unjournaled stores half done.
        if got == lw.TOOK_OVER and not m.u64_at(OFF_SEQ) & 1:
            m.set_u32(OFF_POISON, 1)  # sticky: only clear_poison() stores 0
        # A writer that died mid-update left the counter odd: undo it before anyone looks.
        self._recover_locked()
        return m.u32_at(OFF_POISON) != 0

    def _lock_timeout(self, what: str, waited: float) -> Timeout:
        """The :class:`Timeout` for a wait on the lock, saying who holds it."""
        word = lw.load(self._m.lock_addr)
        tid = word & lw.TID_MASK
        if tid == 0:
            return Timeout(self.name, what, waited)
        life = lw.judge(word, *self._lock_area())
        if life == lw.UNKNOWN:
            return Timeout(
                self.name, what, waited, None,
                f"thread {tid} holds it, and whether it lives cannot be told (the segment is"
                " shared across pid namespaces, or /proc does not show it)",
            )
        if life == lw.DEAD:
            return Timeout(
                self.name, what, waited, None,
                f"its holder, thread {tid}, no longer exists (the next locker takes it over)",
            )
        pid = lw.tgid_of(tid)
        if pid is None:
            return Timeout(self.name, what, waited, None, f"thread {tid} holds it")
        who = f"pid {pid}" if pid == tid else f"pid {pid} (thread {tid})"
        return Timeout(self.name, what, waited, pid, f"{who} holds it and is alive")

    def _unlock_raw(self) -> None:
        _held_set().discard(self._dev_ino)
        lw.unlock(self._m.lock_addr)


class Value(Segment):
    """One primitive in a named segment: ``Value('d', 3.14, name='x')`` is
    ``multiprocessing.Value('d', 3.14)`` that Rust's ``Value::<f64>::open("x")`` accepts.
    Without ``init`` it holds zero (``False``, ``'\\0'``); without ``name`` it gets a unique one
    (``.name``).

    ``.value`` reads (one atomic load) and writes (one atomic store); read-modify-write is not
    atomic: use ``with v.get_lock(): v.value += 1`` (excludes other lockers and updates, not
    Rust's ``fetch_add``) or ``v.update(lambda x: x + 1)``.
    """

    def __init__(
        self,
        typecode: str,
        init: Any = None,
        name: Optional[str] = None,
        *,
        mode: int = DEFAULT_MODE,
        keep: bool = False,
    ) -> None:
        desc = Descriptor.primitive(typecode)
        _create_into(self, name, desc, 1, False, init, mode, keep)

    @classmethod
    def open(
        cls,
        name: str,
        typecode: Optional[str] = None,
        *,
        mode: int = DEFAULT_MODE,
        wait: float = DEFAULT_WAIT,
    ) -> "Value":
        """Opens a single primitive made by Rust's ``Value::<T>`` (or by ``Value``); with
        ``typecode``, it must be that type, else :class:`LayoutMismatch`."""
        expect = Descriptor.primitive(typecode) if typecode is not None else None
        seg = _open_into(cls.__new__(cls), name, expect, mode, wait)
        if seg.is_array or seg.descriptor.kind != "primitive":
            shape = f"an array of {seg.count} {seg.descriptor}" if seg.is_array else f"a single {seg.descriptor}"
            seg.close()
            raise LayoutMismatch(name, f"the segment holds {shape}, this program expects a single primitive")
        return seg

    @property
    def typecode(self) -> str:
        return self.descriptor.code.letter  # type: ignore[union-attr]

    @property
    def value(self) -> Any:
        return self._root_reader(self._views(), self._payload)

    @value.setter
    def value(self, v: Any) -> None:
        code = self.descriptor.code
        assert code is not None
        raw = _raw(code, v, "value")
        self._views()[code.fmt][self._payload // code.size] = raw

    def get_obj(self) -> "Value":
        return self


class Array(Segment):
    """A run of primitives in a named segment: ``Array('i', [1, 2, 3, 4], name='a')`` is
    ``multiprocessing.Array('i', [1, 2, 3, 4])`` that Rust's ``Array::<i32>::open("a")``
    accepts. ``Array('i', 10)`` holds ten zeros. Indexing, slicing and ``len`` as a list; each
    element is read and written atomically; ``snapshot()`` and ``update()`` for all at once.
    An :class:`Array` opened from Rust may also hold arrays or structs (``arr[2]["x"]``).
    """

    def __init__(
        self,
        typecode: str,
        size_or_initializer: Any,
        name: Optional[str] = None,
        *,
        mode: int = DEFAULT_MODE,
        keep: bool = False,
    ) -> None:
        desc = Descriptor.primitive(typecode)
        if isinstance(size_or_initializer, int):
            count, init = size_or_initializer, None
        else:
            init = list(size_or_initializer)
            count = len(init)
        _create_into(self, name, desc, count, True, init, mode, keep)

    @classmethod
    def open(
        cls,
        name: str,
        typecode: Union[str, Descriptor, None] = None,
        *,
        mode: int = DEFAULT_MODE,
        wait: float = DEFAULT_WAIT,
    ) -> "Array":
        """Opens an array segment made by Rust's ``Array::<T>`` (or by ``Array``), of any
        length; with ``typecode`` (or an element :class:`Descriptor`) its elements must be of that
        type, else :class:`LayoutMismatch`."""
        expect = Descriptor.primitive(typecode) if isinstance(typecode, str) else typecode
        seg = _open_into(cls.__new__(cls), name, expect, mode, wait)
        if not seg.is_array:
            what = str(seg.descriptor)
            seg.close()
            raise LayoutMismatch(
                name, f"the segment holds a single {what}, this program expects an array"
            )
        return seg

    @property
    def typecode(self) -> Optional[str]:
        code = self.descriptor.code
        return code.letter if code is not None else None

    def __len__(self) -> int:
        return self.count

    def get_obj(self) -> "Array":
        return self

    def tolist(self) -> list:
        """All elements, each read atomically (not as one: see :meth:`snapshot`)."""
        return self._root_reader(self._views(), self._payload)


# --- create and open ------------------------------------------------------------------------


def _create_into(
    seg: Segment,
    name: Optional[str],
    desc: Descriptor,
    count: int,
    is_array: bool,
    init: Any,
    mode: int,
    keep: bool,
) -> Segment:
    """Creates a segment, in the order of docs/FORMAT.md "Creation, step by step"."""
    if name is None:
        name = f"py-{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}"
    path = _path_of(name)
    _check_mode(name, mode)
    if desc.align > PAGE:
        raise ValueError("a segment cannot align its payload to more than a page (4096 bytes)")
    if count < 0:
        raise ValueError("an array cannot have a negative length")
    encoded = desc.encode()
    align = max(PAYLOAD_ALIGN, desc.align)
    payload_offset = -(-(HEADER_SIZE + len(encoded)) // align) * align
    payload_len = desc.size * count
    journal_offset = -(-(payload_offset + payload_len) // align) * align
    total = journal_offset + 2 * payload_len
    if total > (1 << 63) - 1:
        raise NoSpace(name, 0)
    root = Descriptor.array(desc, count) if is_array else desc
    stores: List[Store] = []
    if init is not None:
        _plan_assign(root, payload_offset, init, "", stores)  # checked before anything exists

    # 1. The object, exactly our mode whatever the umask, sized, and its space reserved.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        raise _os_error(name, "shm_open", e) from e
    m: Optional[_Map] = None
    try:
        try:
            os.fchmod(fd, mode)
            os.ftruncate(fd, total)
        except OSError as e:
            raise _os_error(name, "ftruncate", e) from e
        try:
            os.posix_fallocate(fd, 0, total)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EFBIG):
                raise NoSpace(name, total) from e
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise _os_error(name, "posix_fallocate", e) from e
        st = os.fstat(fd)
        m = _Map(fd, total)
        # 2. Who the creator is, then the magic: an opener that sees the magic can tell.
        m.set_u32(OFF_CREATOR_PID, os.getpid())
        m.set_u64(OFF_CREATOR_START, _my_start())
        m.set_u64(OFF_CREATED_AT, int(time.time()))
        m.set_u64(OFF_MAGIC, MAGIC_WORD)
        # 3. The rest of the header, the descriptor, the lock.
        m.set_u32(OFF_VERSION, FORMAT_VERSION)
        m.set_u64(OFF_FINGERPRINT, fingerprint(encoded))
        m.set_u32(OFF_DESCRIPTOR_LEN, len(encoded))
        m.set_u32(OFF_FLAGS, (FLAG_ARRAY if is_array else 0) | (FLAG_KEEP if keep else 0))
        m.set_u64(OFF_PAYLOAD_OFFSET, payload_offset)
        m.set_u64(OFF_PAYLOAD_LEN, payload_len)
        m.set_u64(OFF_JOURNAL_OFFSET, journal_offset)
        m.set_u64(OFF_ELEM_COUNT, count)
        m.set_u64(OFF_ELEM_SIZE, desc.size)
        bv = m.views["B"]
        for i, b in enumerate(encoded):
            bv[HEADER_SIZE + i] = b
        env = lw.env()
        m.set_u64(OFF_LOCK, 0)
        m.set_u32(OFF_LOCK_PIDNS, env[0] if env else 0)
        m.set_u32(OFF_LOCK_TIMENS, env[1] if env else 0)
        m.set_u32(OFF_LOCK_FOREIGN, 0 if env else 1)
        # 4. The initial payload (the object is all zeros until now).
        for fmt, i, raw in stores:
            m.views[fmt][i] = raw
        # 5. Ready.
        m.set_u32(OFF_STATE, STATE_READY)
    except BaseException:
        if m is not None:
            m.close()
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)
    seg._attach(
        name, m, desc, count, is_array, payload_offset, journal_offset, True, keep, path,
        (st.st_dev, st.st_ino),
    )
    return seg


def _open_into(
    seg: Segment, name: str, expect: Optional[Descriptor], mode: int, wait: float
) -> Segment:
    """Opens ``name`` with every check of docs/FORMAT.md "Opening: what to check, in order",
    waiting up to ``wait`` seconds for a segment another process is still creating."""
    path = _path_of(name)
    _check_mode(name, mode)
    start = time.monotonic()
    deadline = start + wait
    pause = 50e-6

    def wait_more() -> bool:
        nonlocal pause
        now = time.monotonic()
        if now >= deadline:
            return False
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, 0.01)
        return True

    def timeout() -> Timeout:
        return Timeout(
            name,
            "did not become ready (its creator may have died before writing the header)",
            time.monotonic() - start,
        )

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise _os_error(name, "shm_open", e) from e
        m: Optional[_Map] = None
        try:
            st = os.fstat(fd)
            _check_object(name, st, mode)
            size = st.st_size
            if size == 0:  # a creator between its open and ftruncate
                if wait_more():
                    continue
                raise timeout()
            if size < HEADER_SIZE:
                raise Corrupt(name, f"it has {size} bytes, fewer than the {HEADER_SIZE} of a header")
            try:
                m = _Map(fd, size)
            except OSError as e:
                raise _os_error(name, "mmap", e) from e
            if os.fstat(fd).st_size != size:  # resized while mapping: a creator, or a hostile peer
                m.close()
                m = None
                if wait_more():
                    continue
                raise Corrupt(name, "its size changed while it was being opened")
            while True:
                magic = m.u64_at(OFF_MAGIC)
                state = m.u32_at(OFF_STATE)
                if magic == MAGIC_WORD:
                    if state == STATE_READY:
                        break
                    if state != STATE_INITIALIZING:
                        raise Corrupt(name, f"unknown init state {state}")
                    pid, started = m.u32_at(OFF_CREATOR_PID), m.u64_at(OFF_CREATOR_START)
                    if not _alive(pid, started):
                        raise CreatorDied(name, pid)
                elif magic != 0 or state != 0:
                    raise Corrupt(name, "it does not start with the shm-core magic bytes")
                if not wait_more():
                    raise timeout()
            desc, count, is_array, payload_offset, journal_offset = _validate(name, m, size, expect)
            seg._attach(
                name, m, desc, count, is_array, payload_offset, journal_offset, False, True, path,
                (st.st_dev, st.st_ino),
            )
            return seg
        except BaseException:
            if m is not None:
                m.close()
            raise
        finally:
            os.close(fd)


def _validate(
    name: str, m: _Map, size: int, expect: Optional[Descriptor]
) -> Tuple[Descriptor, int, bool, int, int]:
    """Checks a ready header against the object's size (and ``expect``); copies what it needs,
    so a peer rewriting the header later cannot move this handle's view."""
    version = m.u32_at(OFF_VERSION)
    if version != FORMAT_VERSION:
        raise Corrupt(
            name,
            f"it is in segment format version {version}; this library reads version {FORMAT_VERSION}",
        )
    desc_len = m.u32_at(OFF_DESCRIPTOR_LEN)
    payload_offset = m.u64_at(OFF_PAYLOAD_OFFSET)
    payload_len = m.u64_at(OFF_PAYLOAD_LEN)
    journal_offset = m.u64_at(OFF_JOURNAL_OFFSET)
    count = m.u64_at(OFF_ELEM_COUNT)
    elem_size = m.u64_at(OFF_ELEM_SIZE)
    flags = m.u32_at(OFF_FLAGS)
    fp = m.u64_at(OFF_FINGERPRINT)
    # Python's integers do not overflow; a sum or product past u64 cannot equal a size.
    if (
        desc_len > MAX_DESCRIPTOR_LEN
        or HEADER_SIZE + desc_len > payload_offset
        or elem_size * count != payload_len
        or payload_offset + payload_len > journal_offset
        or journal_offset + 2 * payload_len != size
    ):
        raise Corrupt(
            name,
            f"its header does not add up: descriptor {desc_len} bytes, payload {payload_len} bytes"
            f" at offset {payload_offset} ({count} x {elem_size}), journal at {journal_offset},"
            f" object {size} bytes",
        )
    raw = m.bytes_at(HEADER_SIZE, desc_len)
    try:
        found = Descriptor.parse(raw)
    except DescriptorError as e:
        raise Corrupt(name, str(e)) from None
    if fingerprint(raw) != fp:
        raise Corrupt(name, "its fingerprint does not match its descriptor")
    if found.size != elem_size:
        raise Corrupt(name, f"its elements are {elem_size} bytes but its descriptor says {found.size}")
    # Attach to the lock: a process in other namespaces than the creator's (or that cannot check
    # owners) marks it foreign before it ever locks, so nobody takes an owner for dead.
    env = lw.env()
    if env is None or env != (m.u32_at(OFF_LOCK_PIDNS), m.u32_at(OFF_LOCK_TIMENS)):
        if m.u32_at(OFF_LOCK_FOREIGN) == 0:
            m.set_u32(OFF_LOCK_FOREIGN, 1)
    if expect is not None and fp != expect.fingerprint:
        detail = found.first_difference(expect) or (
            f"the segment holds {found}, this program expects {expect}"
        )
        raise LayoutMismatch(name, detail)
    is_array = bool(flags & FLAG_ARRAY)
    if not is_array and count != 1:
        # What Rust's typed open reports for a single value whose count is not 1.
        raise LayoutMismatch(
            name, f"the segment holds a single {found} but says it has {count} elements"
        )
    if payload_offset % found.align or journal_offset % found.align:
        raise Corrupt(
            name,
            f"its payload ({payload_offset}) or journal ({journal_offset}) offset is not aligned"
            f" to {found.align}",
        )
    return found, count, is_array, payload_offset, journal_offset


def open(  # noqa: A001 - the module's verb, as shm_core::Shared::open
    name: str,
    expect: Optional[Descriptor] = None,
    *,
    mode: int = DEFAULT_MODE,
    wait: float = DEFAULT_WAIT,
) -> Segment:
    """Attaches to the segment ``name``, whatever it holds, checking it as Rust's ``open`` does
    (owner, mode, size, magic, version, header, descriptor, fingerprint, lock). Returns a
    :class:`Value` for a single primitive, an :class:`Array` for an array segment, else a
    :class:`Segment`. With ``expect`` (a :class:`Descriptor` of one element), a segment of
    another layout raises :class:`LayoutMismatch` naming the first difference.

    ``mode``: the most access accepted (``0o660`` accepts a group-shared segment); ``wait``:
    seconds to wait for a segment another process is still creating.
    """
    seg = _open_into(Segment.__new__(Segment), name, expect, mode, wait)
    if seg.is_array:
        seg.__class__ = Array
    elif seg.descriptor.kind == "primitive":
        seg.__class__ = Value
    return seg


def create(
    name: Optional[str],
    descriptor: Descriptor,
    init: Any = None,
    *,
    count: Optional[int] = None,
    mode: int = DEFAULT_MODE,
    keep: bool = False,
) -> Segment:
    """Creates a segment holding one ``descriptor`` (``count=None``) or an array of ``count``
    of them, initialised from ``init`` (a dict for a struct, a list for an array; zeros where
    absent). ``Descriptor.struct("Stats", [("requests", "Q"), ("load", "d")])`` lays a struct out
    as ``#[repr(C)]`` does, so Rust's ``Shared::<Stats>::open`` accepts the segment."""
    is_array = count is not None
    if is_array and init is not None and count != len(init):
        raise ValueError(f"count is {count} but init has {len(init)} elements")
    seg = Segment.__new__(Array if is_array else (Value if descriptor.kind == "primitive" else Segment))
    return _create_into(seg, name, descriptor, count if is_array else 1, is_array, init, mode, keep)


def remove(name: str) -> None:
    """Removes the segment ``name``: processes that have it open keep their mapping; new opens
    raise :class:`NotFound`."""
    path = _path_of(name)
    try:
        os.unlink(path)
    except OSError as e:
        raise _os_error(name, "shm_unlink", e) from e
