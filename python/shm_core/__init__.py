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
:class:`PermissionDenied`, :class:`Corrupt`, :class:`LayoutMismatch`, and more.

Platform: Linux with glibc, 64-bit little-endian; consistency relies on x86-64's memory order
(see the ``_segment`` module's notes).
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
