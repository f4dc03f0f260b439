"""The exceptions: one per kind of failure, all subclasses of :class:`ShmError`.

They are the variants of Rust's ``shm_core::Error``, with Rust's messages; each names the
segment, and each exception carries the name in ``.name``. Where a built-in exception means the
same thing, the class derives from it too, so ``except FileNotFoundError`` catches
:class:`NotFound`; those carry ``errno``, ``strerror`` and ``filename`` (``/dev/shm/<name>``) as
an ``OSError`` does.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional


class ShmError(Exception):
    """Base of every error this module raises about a segment. ``.name`` is the segment's name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name

    def __str__(self) -> str:  # OSError subclasses would otherwise format their args
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):  # the constructors take other arguments than ``args``: pickle by state
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls, args, state):
    e = cls.__new__(cls, *args)
    e.args = args
    e.__dict__.update(state)
    return e


class InvalidName(ShmError, ValueError):
    """The name cannot name a segment: empty, too long, or containing ``/`` or NUL."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, f"invalid segment name {name!r}: {reason}")
        self.reason = reason


class AlreadyExists(ShmError, FileExistsError):
    """Creating found a segment (or another object) of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"segment `{name}` already exists")


class NotFound(ShmError, FileNotFoundError):
    """No segment of that name exists."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"segment `{name}` does not exist")


class PermissionDenied(ShmError, PermissionError):
    """The segment belongs to another user, is open to more users than asked for, or is not a
    regular shared-memory object (a symlink, a directory)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, f"segment `{name}`: permission denied: {reason}")
        self.reason = reason


class ReadOnlyError(ShmError, PermissionError):
    """The handle is attached read only (``open(name, readonly=True)``) and the call would write
    to the segment: a store, ``update()``, the lock, ``clear_poison()``, ``notify()``, a writable
    buffer. Nothing was written."""

    def __init__(self, name: str, what: str = "this call") -> None:
        super().__init__(
            name,
            f"segment `{name}` is attached read-only: {what} would write to it"
            " (open it read-write to write)",
        )


class LayoutMismatch(ShmError):
    """The segment holds another type than the program expects; ``.detail`` says how."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(name, f"segment `{name}` has another layout: {detail}")
        self.detail = detail


class Corrupt(ShmError):
    """The object under that name is not a valid segment: truncated, garbage, an inconsistent
    header or descriptor, or an unusable lock."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, f"segment `{name}` is not a valid segment: {reason}")
        self.reason = reason


class NoSpace(ShmError):
    """The shared-memory file system (``/dev/shm``) has no room for the segment."""

    def __init__(self, name: str, nbytes: int = 0) -> None:
        if nbytes:
            msg = (
                f"no space for segment `{name}`: it needs {nbytes} bytes of shared memory"
                " (see `df /dev/shm`)"
            )
        else:
            msg = f"no space for segment `{name}` (see `df /dev/shm`)"
        super().__init__(name, msg)
        self.nbytes = nbytes


class CreatorDied(ShmError):
    """The segment's creator died before the segment was ready: remove it and create it again."""

    def __init__(self, name: str, pid: int) -> None:
        super().__init__(
            name,
            f"segment `{name}` was never made ready: its creator (pid {pid}) died while"
            " creating it; remove it and create it again",
        )
        self.pid = pid


class Timeout(ShmError, TimeoutError):
    """Waiting for the segment (to become ready, for its lock, for a consistent snapshot) took
    longer than allowed. ``.waited`` is how long it waited (seconds); ``.pid``, when the wait was
    for the lock and its holder could be told, is the process that held it (else None)."""

    waited: float = 0.0
    pid: Optional[int] = None

    def __init__(
        self, name: str, what: str, waited: float, pid: Optional[int] = None, why: str = ""
    ) -> None:
        msg = f"segment `{name}`: {what} within {waited:.3f} s"
        super().__init__(name, f"{msg}: {why}" if why else msg)
        self.waited = waited
        self.pid = pid


class Io(ShmError, OSError):
    """A system call failed for another reason; ``.op`` names it and ``__cause__`` holds the
    ``OSError``."""

    def __init__(self, name: str, op: str, error: BaseException) -> None:
        super().__init__(name, f"segment `{name}`: {op} failed: {error}")
        self.op = op


class DescriptorError(ValueError):
    """Descriptor bytes that are not a well-formed, consistent descriptor."""

    def __init__(self, at: int, reason: str) -> None:
        super().__init__(f"descriptor byte {at}: {reason}")
        self.at = at
        self.reason = reason


def _make(kind: str, name: str, message: str, errno: Optional[int], attrs: Dict[str, Any]) -> ShmError:
    """The exception ``kind`` with Rust's ``message`` (called by the native module)."""
    cls = globals()[kind]
    e = cls.__new__(cls)
    e.args = (message,)
    e.name = name
    if isinstance(e, OSError) and errno is not None:
        e.errno = errno
        e.strerror = os.strerror(errno)
        e.filename = f"/dev/shm/{name}"
    for k, v in attrs.items():
        setattr(e, k, v)
    return e
