"""Typed structs in shared memory, shared with Rust's ``shm_core``: a pure-Python (standard
library only) reader and writer of the segment format of docs/FORMAT.md.

A Rust service writes its live state with ``Shared::<Stats>::create("web-stats", ...)``; Python
reads it::

    import shm_core

    stats = shm_core.open("web-stats")       # checks owner, size, header, descriptor, fingerprint
    stats["load"], stats["hist"][3]          # one field, one atomic load
    stats.snapshot()                         # {"requests": 12, "load": 0.7, "hist": [...]}, consistent
    stats.update(load=0.5, errors=0)         # under the segment's lock, as one seqlock write

and the mirror of ``multiprocessing``'s ``Value``/``Array``, which Rust's ``Value::<f64>::open``
and ``Array::<i32>::open`` accept::

    v = shm_core.Value("d", 3.14, name="ratio")
    a = shm_core.Array("i", [1, 2, 3, 4], name="counts")
    with v.get_lock():
        v.value += 1.0

Errors are :class:`ShmError` subclasses naming the segment: :class:`NotFound`,
:class:`PermissionDenied`, :class:`Corrupt`, :class:`LayoutMismatch`, and more. Waits for the
lock are bounded by ``timeout=`` (``update(..., timeout=2)``, ``get_lock(timeout=2)``, in
seconds; None waits as long as it takes) and end in :class:`Timeout`, naming the segment and the
pid holding the lock.

Poisoning: who is told what
---------------------------
A segment is *poisoned* when a holder of its lock died or failed while holding it and what it
may have half-changed was not repaired. The header's ``poison`` word is sticky: nothing clears it
but ``seg.clear_poison()`` (Rust: ``clear_poison()`` on ``Shared`` and ``Array``), which you call
once you have checked or repaired the value. ``seg.poisoned`` says whether it is poisoned, in
every process, the same as Rust's ``is_poisoned()`` and ``shm inspect``, including a holder's
death no locker has noticed yet.

After each kind of death or failure:

- A process dies holding ``get_lock()`` (Rust: ``lock()``'s guard). Its stores were not
  journaled, so nothing can undo them: poisoned. ``.poisoned`` is True at once; the next locker,
  in either language, writes it into the header.
- A process dies inside ``update()`` while its function runs (Rust: the closure), before it
  stores anything. The value is whole, but nobody can tell this from the case above: poisoned.
- A process dies inside ``update()`` while storing. The next reader or locker, in either
  language, rolls that update back from the journal: the value is exactly the one before it.
  Repaired, so not poisoned, and nobody is told.
- The function given to ``update()`` raises (Rust: the closure panics; nothing is stored), an
  exception leaves a ``with seg.get_lock():`` block (Rust: a panic while a guard is alive), or
  Ctrl-C interrupts an update's stores (they are undone): poisoned, and the exception goes on to
  the caller.
- A Rust locker finds the lock word unusable and re-initialises it: poisoned.
- A reader dies: nothing happens. (A reader that kept losing to writers holds the lock for one
  read; killed then, it counts as a holder.)

And what each call says while the segment is poisoned:

- ``get_lock()``: acquires; ``lock.poisoned`` is True, every time (Rust: ``lock()`` returns
  ``Err(PoisonError)``, ``try_lock*`` ``TryLockError::Poisoned``).
- ``update()``: proceeds (its own write is whole and journaled), says nothing, and leaves the
  segment poisoned.
- ``snapshot()``, field reads, ``.value``: unaffected; they never report poisoning.
- ``seg.poisoned``: True, until ``seg.clear_poison()``.

Platform: Linux with glibc, 64-bit little-endian, and ``libatomic`` for the lock word's
compare-and-swap; consistency relies on x86-64's memory order (see the ``_segment`` module's
notes).
"""

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
    CODES,
    FORMAT_VERSION,
    Descriptor,
    DescriptorError,
    Field,
    fingerprint,
)
from ._segment import (
    ORDERED,
    Array,
    ArrayView,
    Lock,
    Segment,
    StructView,
    Value,
    create,
    open,
    remove,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Array",
    "ArrayView",
    "CODES",
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
    "ORDERED",
    "PermissionDenied",
    "Segment",
    "ShmError",
    "StructView",
    "Timeout",
    "Value",
    "create",
    "fingerprint",
    "open",
    "remove",
]
