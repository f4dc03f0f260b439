"""Typed structs in shared memory, shared with Rust's ``shm_core`` — ``multiprocessing``'s
``Value`` and ``Array`` for any processes, Rust's or Python's, on the Rust implementation.

A Rust service writes its live state with ``Shared::<Stats>::create("web-stats", ...)``; Python
reads it::

    import shm_core

    stats = shm_core.open("web-stats")       # checks owner, size, header, descriptor, fingerprint
    stats["load"], stats["hist"][3]          # one field, one atomic load
    stats.snapshot()                         # {"requests": 12, "load": 0.7, "hist": [...]}, consistent
    stats.update(load=0.5, errors=0)         # under the segment's lock, as one seqlock write

Enum fields read as their variant's name and take one (``stats["state"] = "Busy"``); text
fields (Rust's ``Text<N>``) read as ``str`` and take one of at most N bytes of UTF-8.

And ``multiprocessing``'s ``Value``/``Array``, which Rust's ``Value::<f64>::open`` and
``Array::<i32>::open`` accept, in processes started any way at all::

    v = shm_core.Value("d", 3.14)            # a unique name: v.name
    a = shm_core.Array("i", [1, 2, 3, 4], name="counts")
    with v.get_lock():
        v.value += 1.0

Every operation is Rust's ``shm-core`` (the extension module ``shm_core._native``): the same
checks, lock, seqlock and journal as a Rust program. Linux, 64-bit.

Errors are :class:`ShmError` subclasses naming the segment: :class:`NotFound`,
:class:`PermissionDenied`, :class:`Corrupt`, :class:`LayoutMismatch`, :class:`ReadOnlyError`,
and more. Waits for the
lock are bounded by ``timeout=`` (``update(..., timeout=2)``, ``get_lock(timeout=2)``,
``clear_poison(timeout=2)``, in seconds; None waits as long as it takes) and end in
:class:`Timeout`, naming the segment and the pid holding the lock (``.pid``).

Observers that cannot write
---------------------------
``shm_core.open(name, readonly=True)`` attaches read only (Rust's ``open_readonly``): the object
is opened ``O_RDONLY`` and mapped ``PROT_READ``, so the operating system itself stops every
store, and read permission suffices (a user in the group of a segment created with
``mode=0o640``; such a user is refused read-write, and told to attach read-only)::

    stats = shm_core.open("web-stats", readonly=True, mode=0o640)
    stats.snapshot(), stats["load"], stats.poisoned, stats.info()["creator_alive"]
    stats.wait_until(lambda s: s["requests"] > 100, timeout=5)

Reads are consistent as for a read-write handle: a snapshot never takes the lock nor writes;
while a write is in progress it waits for it, and if that writer was killed mid-update it
returns the value rolled back from the journal in a copy of its own (the segment stays as it
is until a read-write process rolls it back). ``wait_until`` works too; as an observer cannot
register as a waiter, an update wakes it only when a read-write waiter is registered, else it
sees the change at its next re-check, within 100 ms. Every call that would write raises
:class:`ReadOnlyError` (a ``PermissionError``) naming the segment: item and ``.value``
assignment, ``update()``, ``get_lock()``, ``clear_poison()``, ``notify()``; the buffer of an
array is read only (``numpy.frombuffer(a)`` gives an array that is not writeable).

Waiting for each other
----------------------
``seg.wait_until(pred, timeout=None)`` blocks until ``pred(snapshot)`` is true and returns that
snapshot (None if ``timeout`` seconds passed first); it is Rust's ``wait_until``, between any
processes, Rust's or Python's::

    def arrive(c):
        c["ready"] += 1

    ctl.update(arrive)                       # wakes every waiter of ctl, in any process
    ctl.wait_until(lambda c: c["go"])        # the start barrier: {"ready": 4, "go": True, ...}
    v.wait_until(lambda x: x >= 100, timeout=10)   # None if it did not happen within 10 s

``pred`` is checked at once and after every change: an ``update()`` in any process wakes every
waiter, and so does ``notify()``, to call after storing fields (``seg["x"] = 1``,
``v.value = 1``), which wake nobody. A forgotten ``notify()`` costs latency, never a hang: a
waiter checks again at least every 100 ms. The GIL is released while it sleeps, and Ctrl-C
interrupts it (within those 100 ms).

Poisoning: who is told what
---------------------------
A segment is *poisoned* when a holder of its lock died or failed while holding it and what it
may have half-changed was not repaired. The header's ``poison`` word is sticky: nothing clears it
but ``seg.clear_poison()`` (Rust: ``clear_poison()`` on ``Shared`` and ``Array``), which you call
once you have checked or repaired the value. ``seg.poisoned`` says whether it is poisoned, in
every process: it is Rust's ``is_poisoned()``, which ``shm inspect`` reports too, and includes a
holder's death no locker has noticed yet.

After each kind of death or failure:

- A process dies holding ``get_lock()`` (Rust: ``lock()``'s guard). Its stores were not
  journaled, so nothing can undo them: poisoned. ``.poisoned`` is True at once; the next locker,
  in either language, writes it into the header.
- A process dies inside ``update()`` while its function runs (Rust: the closure), before it
  stores anything. The value is whole, but nobody can tell this from the case above: poisoned.
- A process dies inside ``update()`` while storing. The next reader or locker, in either
  language, rolls that update back from the journal: the value is exactly the one before it.
  Repaired, so not poisoned, and nobody is told.
- The function given to ``update()`` raises (``KeyboardInterrupt`` from Ctrl-C included; Rust:
  the closure panics; nothing is stored), or an exception leaves a ``with seg.get_lock():``
  block (Rust: a panic while a guard is alive): poisoned, and the exception goes on to the
  caller. (The stores themselves run in Rust and are not interrupted.)
- A locker finds the lock word unusable and re-initialises it: poisoned.
- A reader dies: nothing happens. (A reader that kept losing to writers holds the lock for one
  read; killed then, it counts as a holder.)

And what each call says while the segment is poisoned:

- ``get_lock()``: acquires; ``lock.poisoned`` is True, every time (Rust: ``lock()`` returns
  ``Err(PoisonError)``, ``try_lock*`` ``TryLockError::Poisoned``).
- ``update()``: proceeds (its own write is whole and journaled), says nothing, and leaves the
  segment poisoned.
- ``snapshot()``, field reads, ``.value``: unaffected; they never report poisoning.
- ``seg.poisoned``: True, until ``seg.clear_poison()``.
"""

from __future__ import annotations

import atexit
import itertools
import os
import secrets
import threading
import weakref
from typing import Any, Dict, List, NamedTuple, Optional, Union

from . import _native, _views
from ._errors import (
    AlreadyExists,
    Corrupt,
    CreatorDied,
    DescriptorError,
    InvalidName,
    Io,
    LayoutMismatch,
    NoSpace,
    NotFound,
    PermissionDenied,
    ReadOnlyError,
    ShmError,
    Timeout,
)
from ._native import FORMAT_VERSION, Descriptor, Lock, fingerprint
from ._types import CODES, Code, Field, Variant
from ._views import ArrayView, StructView

__version__ = "0.1.0"

DEFAULT_MODE = 0o600
DEFAULT_WAIT = 1.0

#: Whether arrays support the buffer protocol here (``memoryview(a)``, ``numpy.frombuffer``):
#: the extension was built for Python 3.11 or later.
BUFFER_PROTOCOL = _native.BUFFER_PROTOCOL

_counter = itertools.count()

# Handles this process created, closed at exit so their segments are removed even when the
# interpreter does not collect them (a handle in a cycle, a global at shutdown). A forked child
# inherits them but never removes its parent's segments: Rust's handle checks the process.
_created: "weakref.WeakSet[Segment]" = weakref.WeakSet()
_created_lock = threading.Lock()


def _close_created() -> None:
    with _created_lock:
        handles = list(_created)
    for h in handles:
        try:
            h.close()
        except Exception:
            pass


atexit.register(_close_created)


def _fresh_name() -> str:
    return f"py-{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}"


def _typecode(typecode_or_type: Any) -> str:
    """A type-code letter, from a letter or a ctypes type (``ctypes.c_double`` is ``'d'``)."""
    if isinstance(typecode_or_type, str):
        return typecode_or_type
    letter = getattr(typecode_or_type, "_type_", None)
    if isinstance(letter, str) and len(letter) == 1:
        return letter
    raise TypeError(
        f"a type is a type-code letter ('i', 'd', ...) or a ctypes type, not {typecode_or_type!r}"
    )


def _check_lock(lock: Any) -> None:
    if lock is not True and lock is not False:
        raise ValueError(
            "lock: the segment has its own lock, shared with every process (Rust's too);"
            " pass lock=True or lock=False"
        )


def _reopen(
    cls: type,
    name: str,
    expect: Optional[bytes],
    shape: str,
    mode: int,
    as_bytes: bool,
    readonly: bool = False,
) -> "Segment":
    """Unpickles a handle: opens the segment by name in this process (read only if the
    pickled handle was)."""
    desc = Descriptor.parse(expect) if expect is not None else None
    h = _native.open_segment(name, desc, shape, mode, DEFAULT_WAIT, as_bytes, readonly)
    return _native.SegmentBase.__new__(cls, h)


class Segment(_native.SegmentBase):
    """A segment made by Rust's ``shm_core`` (or by this module), attached by name.

    ``seg["load"]``, ``seg["hist"][3]``, ``seg["inner"]["x"]`` read fields (each primitive with
    one atomic load); ``seg["load"] = 0.5`` stores one; :meth:`snapshot` copies the whole value
    consistently; :meth:`update` changes several fields at once; :meth:`get_lock` is the lock.
    Get one with :func:`open`; :class:`Value` and :class:`Array` are the ``multiprocessing``
    kinds. Closing (or leaving a ``with`` block, or garbage collection, or the end of the
    process) unmaps it; the handle that created a segment also removes it then, unless created
    with ``keep=True`` — never a forked child's copy of it, nor a handle that only opened it.

    A handle pickles as its name and layout: unpickled in another process (``spawn``,
    ``forkserver``, a ``Pool`` argument), it opens the segment by name, which must still exist.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __new__(cls, *args: Any, **kwargs: Any):
        raise TypeError("open a segment with shm_core.open(name), or create one with shm_core.create")

    def keys(self) -> List[str]:
        """The fields of a struct segment."""
        return _views.root_keys(self)

    def __iter__(self):
        if self.is_array:
            for i in range(len(self)):
                yield self[i]
        else:
            yield from iter(_views._root(self))

    def get_obj(self) -> "Segment":
        """``multiprocessing``'s ``get_obj()``: the object itself."""
        return self

    def __reduce__(self):
        shape = "array" if self.is_array else ("value" if self.descriptor.kind == "primitive" else "any")
        return (
            _reopen,
            (
                type(self),
                self.name,
                self.descriptor.encode(),
                shape,
                self.mode,
                self.typecode == "c",
                self.readonly,
            ),
        )

    def __repr__(self) -> str:
        state = " (closed)" if self.closed else " (read-only)" if self.readonly else ""
        return f"<shm_core.{type(self).__name__} {self.name!r}: {self.type}{state}>"


def _track(seg: "Segment") -> "Segment":
    with _created_lock:
        _created.add(seg)
    return seg


class Value(Segment):
    """One primitive in a named segment: ``Value('d', 3.14)`` is ``multiprocessing.Value('d',
    3.14)`` that Rust's ``Value::<f64>::open(name)`` accepts. ``typecode_or_type`` is a type-code
    letter or a ctypes type; without ``value`` it holds zero; without ``name`` it gets a unique
    one (``.name``). ``lock`` is accepted as ``multiprocessing`` has it: the segment's own lock
    is always there (``get_lock()``).

    ``.value`` reads (one atomic load) and writes (one atomic store); read-modify-write is not
    atomic: use ``with v.get_lock(): v.value += 1`` or ``v.update(lambda x: x + 1)``.
    """

    def __new__(
        cls,
        typecode_or_type: Any,
        value: Any = None,
        name: Optional[str] = None,
        *,
        lock: Any = True,
        mode: int = DEFAULT_MODE,
        keep: bool = False,
    ):
        _check_lock(lock)
        h = _native.create_value(
            _typecode(typecode_or_type), value, _fresh_name() if name is None else name, mode, keep
        )
        return _track(_native.SegmentBase.__new__(cls, h))

    @classmethod
    def open(
        cls,
        name: str,
        typecode: Optional[str] = None,
        *,
        mode: int = DEFAULT_MODE,
        wait: float = DEFAULT_WAIT,
        readonly: bool = False,
    ) -> "Value":
        """Opens a single primitive made by Rust's ``Value::<T>`` (or by ``Value``); with
        ``typecode``, it must be that type, else :class:`LayoutMismatch`. ``readonly``: as for
        :func:`open`."""
        desc = Descriptor.primitive(_typecode(typecode)) if typecode is not None else None
        as_bytes = typecode == "c"
        h = _native.open_segment(name, desc, "value", mode, wait, as_bytes, readonly)
        return _native.SegmentBase.__new__(cls, h)


class Array(Segment):
    """A run of values in a named segment: ``Array('i', [1, 2, 3, 4])`` is
    ``multiprocessing.Array('i', [1, 2, 3, 4])`` that Rust's ``Array::<i32>::open(name)``
    accepts; ``Array('i', 10)`` holds ten zeros. Indexing, slicing and ``len`` as a list; each
    element is read and written atomically; ``snapshot()`` and ``update()`` for all at once;
    ``memoryview(a)`` and ``numpy.frombuffer(a)`` see the elements themselves (plain memory, not
    atomic). An :class:`Array` opened from Rust may also hold arrays or structs (``a[2]["x"]``).
    """

    def __new__(
        cls,
        typecode_or_type: Any,
        size_or_initializer: Any,
        name: Optional[str] = None,
        *,
        lock: Any = True,
        mode: int = DEFAULT_MODE,
        keep: bool = False,
    ):
        _check_lock(lock)
        h = _native.create_array(
            _typecode(typecode_or_type), size_or_initializer, _fresh_name() if name is None else name, mode, keep
        )
        return _track(_native.SegmentBase.__new__(cls, h))

    @classmethod
    def open(
        cls,
        name: str,
        typecode: Union[str, Descriptor, None] = None,
        *,
        mode: int = DEFAULT_MODE,
        wait: float = DEFAULT_WAIT,
        readonly: bool = False,
    ) -> "Array":
        """Opens an array segment made by Rust's ``Array::<T>`` (or by ``Array``), of any
        length; with ``typecode`` (or an element :class:`Descriptor`) its elements must be of that
        type, else :class:`LayoutMismatch`. ``readonly``: as for :func:`open`."""
        if isinstance(typecode, Descriptor) or typecode is None:
            desc = typecode
        else:
            desc = Descriptor.primitive(_typecode(typecode))
        h = _native.open_segment(name, desc, "array", mode, wait, typecode == "c", readonly)
        return _native.SegmentBase.__new__(cls, h)


def RawValue(typecode_or_type: Any, *args: Any, **kwargs: Any) -> Value:
    """``multiprocessing.RawValue``: the same as :class:`Value` (its lock costs nothing unless
    taken)."""
    return Value(typecode_or_type, *args, **kwargs)


def RawArray(typecode_or_type: Any, size_or_initializer: Any, **kwargs: Any) -> Array:
    """``multiprocessing.RawArray``: the same as :class:`Array`."""
    return Array(typecode_or_type, size_or_initializer, **kwargs)


def open(  # noqa: A001 - the module's verb, as shm_core::Shared::open
    name: str,
    expect: Optional[Descriptor] = None,
    *,
    mode: int = DEFAULT_MODE,
    wait: float = DEFAULT_WAIT,
    readonly: bool = False,
) -> Segment:
    """Attaches to the segment ``name``, whatever it holds, checking it as Rust's ``open`` does
    (owner, mode, size, magic, version, header, descriptor, fingerprint, lock). Returns a
    :class:`Value` for a single primitive, an :class:`Array` for an array segment, else a
    :class:`Segment`. With ``expect`` (a :class:`Descriptor` of one element), a segment of
    another layout raises :class:`LayoutMismatch` naming the first difference.

    ``mode``: the most access accepted (``0o660`` accepts a group-shared segment, ``0o640`` one
    its group may read); ``wait``: seconds to wait for a segment another process is still
    creating.

    ``readonly``: attach read only, as Rust's ``open_readonly`` (see "Observers that cannot
    write" above): ``O_RDONLY`` and ``PROT_READ``, read permission suffices, reads are
    consistent, and every call that would write raises :class:`ReadOnlyError`.
    """
    h = _native.open_segment(name, expect, "any", mode, wait, False, readonly)
    cls = {"array": Array, "value": Value}.get(h.shape, Segment)
    return _native.SegmentBase.__new__(cls, h)


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
    name = _fresh_name() if name is None else name
    if count is not None and init is not None and count != len(init):
        raise ValueError(f"count is {count} but init has {len(init)} elements")
    if descriptor.kind == "primitive":
        letter = descriptor.code.letter
        if count is None:
            return Value(letter, init, name, mode=mode, keep=keep)
        return Array(letter, init if init is not None else count, name, mode=mode, keep=keep)
    h = _native.create_raw(name, descriptor, init, count, mode, keep)
    cls = Array if count is not None else Segment
    return _track(_native.SegmentBase.__new__(cls, h))


def remove(name: str) -> None:
    """Removes the segment ``name``: processes that have it open keep their mapping; new opens
    raise :class:`NotFound`."""
    _native.remove(name)


class Stale(NamedTuple):
    """A segment whose creator died without removing it (``ready``: whether it was finished)."""

    name: str
    creator_pid: int
    ready: bool


def stale() -> List[Stale]:
    """Segments in ``/dev/shm`` whose creator died without removing them (killed, say): what a
    restarting program may remove with :func:`remove` before creating its segment again."""
    return [Stale(*s) for s in _native.stale()]


__all__ = [
    "AlreadyExists",
    "Array",
    "ArrayView",
    "BUFFER_PROTOCOL",
    "CODES",
    "Code",
    "Corrupt",
    "CreatorDied",
    "Descriptor",
    "DescriptorError",
    "FORMAT_VERSION",
    "Field",
    "InvalidName",
    "Io",
    "LayoutMismatch",
    "Lock",
    "NoSpace",
    "NotFound",
    "PermissionDenied",
    "RawArray",
    "RawValue",
    "ReadOnlyError",
    "Segment",
    "ShmError",
    "Stale",
    "StructView",
    "Timeout",
    "Value",
    "Variant",
    "create",
    "fingerprint",
    "open",
    "remove",
    "stale",
]
