"""The segment's lock word (docs/FORMAT.md, "The lock"): one 64-bit word that names the thread
holding the lock (its thread id and the low 32 bits of its start time), with a waiters bit; its
low 32 bits are a shared futex. Nothing in it is a pointer.

Python has no atomic compare-and-swap of its own: ``__atomic_compare_exchange_8`` from
``libatomic`` (the C compilers' atomics library) does it, through ``ctypes``, which also makes
the ``futex`` system calls (releasing the GIL while they sleep).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import io
import os
import threading
import time
from typing import Callable, Optional, Tuple

TID_MASK = 0x3FFF_FFFF
WAITERS = 1 << 31
IDENTITY = TID_MASK | (0xFFFF_FFFF << 32)

#: How long a blocked locker waits before it first checks that the owner lives, and how often
#: after that (the sleeps end by then), in seconds: as Rust's lock.
FIRST_CHECK = 0.002
CHECK_EVERY = 0.010

_SYS_FUTEX = 202  # x86_64
_FUTEX_WAIT = 0  # shared: never FUTEX_PRIVATE_FLAG, the waiters are in other processes
_FUTEX_WAKE = 1
_SEQ_CST = 5


def _load_libatomic():
    for name in ("libatomic.so.1", ctypes.util.find_library("atomic")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "__atomic_compare_exchange_8"):
            return lib
    raise ImportError(
        "shm_core needs libatomic (libatomic.so.1, from gcc's runtime: e.g. the libatomic1 "
        "package) for the 64-bit compare-and-swap of the segment's lock word"
    )


_atomic = _load_libatomic()
_cas8 = _atomic.__atomic_compare_exchange_8
_cas8.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_int]
_cas8.restype = ctypes.c_bool
_load8 = _atomic.__atomic_load_8
_load8.argtypes = [ctypes.c_void_p, ctypes.c_int]
_load8.restype = ctypes.c_uint64

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def load(addr: int) -> int:
    """The lock word at ``addr``, one atomic 8-byte load."""
    return _load8(addr, _SEQ_CST)


def cas(addr: int, expected: int, new: int) -> bool:
    """Compare-and-swap of the lock word at ``addr`` (sequentially consistent)."""
    exp = ctypes.c_uint64(expected)
    return bool(_cas8(addr, ctypes.addressof(exp), new, _SEQ_CST, _SEQ_CST))


def futex_wait(addr: int, expected: int, timeout: float) -> None:
    """Sleeps while the low 32 bits of the word at ``addr`` are ``expected``, at most ``timeout``
    seconds (or until woken)."""
    t = max(0.0, timeout)
    ts = _Timespec(int(t), int((t - int(t)) * 1e9))
    _syscall(
        ctypes.c_long(_SYS_FUTEX), ctypes.c_void_p(addr), ctypes.c_int(_FUTEX_WAIT),
        ctypes.c_uint32(expected & 0xFFFF_FFFF), ctypes.byref(ts), None, ctypes.c_int(0),
    )


def futex_wake(addr: int) -> None:
    """Wakes one waiter on the word at ``addr``."""
    _syscall(
        ctypes.c_long(_SYS_FUTEX), ctypes.c_void_p(addr), ctypes.c_int(_FUTEX_WAKE),
        ctypes.c_int(1), None, None, ctypes.c_int(0),
    )


# --- who this thread is, and whether an owner lives -----------------------------------------


def stat_of(tid: int) -> Optional[Tuple[str, int]]:
    """The state letter and start time (clock ticks since boot) of thread or process ``tid``,
    from ``/proc/<tid>/stat``."""
    try:
        with io.open(f"/proc/{tid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain ") ": parse from the last one.
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return fields[0][:1], int(fields[19])  # fields 3 (state) and 22 (starttime)
    except (IndexError, ValueError):
        return None


_ENV: list = []  # [] not computed; [None] cannot check owners; [(pidns, timens)]
_local = threading.local()


def _after_fork() -> None:
    _ENV.clear()
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_after_fork)


def env() -> Optional[Tuple[int, int]]:
    """This process's pid and time namespaces (their inode numbers), or None if it cannot check
    owners through /proc (none, or one of another pid namespace)."""
    if not _ENV:
        _ENV.append(_probe_env())
    return _ENV[0]


def _probe_env() -> Optional[Tuple[int, int]]:
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return None
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    try:
        timens = os.stat("/proc/self/ns/time").st_ino
    except FileNotFoundError:
        timens = 0
    except OSError:
        return None
    if not 0 < pidns <= 0xFFFF_FFFF or timens > 0xFFFF_FFFF:
        return None
    return pidns, timens


def me() -> int:
    """This thread's name, as a lock word holds it: its id and tag."""
    name = getattr(_local, "name", None)
    if name is None:
        tid = threading.get_native_id()
        st = stat_of(tid) if env() is not None else None
        tag = (st[1] & 0xFFFF_FFFF) if st else 0
        name = (tid & TID_MASK) | tag << 32
        if env() is not None and st is None:
            return name  # /proc would not say now: not checkable; look again next time
        _local.name = name
        _local.checkable = env() is not None
    return name


def checkable() -> bool:
    """Whether others can check this thread's name against /proc: if not, a lock it takes must
    be marked foreign first, or others would take it for a dead owner."""
    return getattr(_local, "checkable", False)


def _thread_exists(tid: int) -> bool:
    try:
        os.kill(tid, 0)  # signal 0 sends nothing: only checks that the thread exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


ALIVE, DEAD, UNKNOWN = "alive", "dead", "unknown"


def may_judge(foreign: int, pidns: int, timens: int) -> bool:
    """Whether this process may judge the owners of a lock whose area says so."""
    e = env()
    return e is not None and foreign == 0 and (pidns, timens) == e


def judge(word: int, foreign: int, pidns: int, timens: int) -> str:
    """Whether the owner ``word`` names lives: ``ALIVE``, ``DEAD``, or ``UNKNOWN`` (this process
    may not judge it: the lock is foreign, or from other namespaces; or /proc would not say)."""
    tid = word & TID_MASK
    if tid == 0 or not may_judge(foreign, pidns, timens):
        return UNKNOWN
    if not _thread_exists(tid):
        return DEAD
    st = stat_of(tid)
    if st is None:
        return DEAD if not _thread_exists(tid) else UNKNOWN
    state, start = st
    if state in ("Z", "X") or (start & 0xFFFF_FFFF) != word >> 32:
        return DEAD
    return ALIVE


def tgid_of(tid: int) -> Optional[int]:
    """The process (thread group) of thread ``tid``, from /proc."""
    try:
        with io.open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# --- locking --------------------------------------------------------------------------------

TOOK, TOOK_OVER, BUSY, HELD_HERE = "took", "took over", "busy", "held here"


def lock(
    addr: int,
    area: Callable[[], Tuple[int, int, int]],
    mark_foreign: Callable[[], None],
    blocking: bool,
    deadline: Optional[float],
    held_here: Callable[[], bool],
) -> str:
    """Takes the lock word at ``addr``: ``TOOK``, ``TOOK_OVER`` (from a dead owner, or from a
    peer that wrote this thread's name while it holds nothing), ``BUSY`` (not blocking, or the
    deadline passed), or ``HELD_HERE`` (the word names this thread and ``held_here()`` says it
    holds the lock). ``area()`` reads ``(lock_foreign, lock_pidns, lock_timens)`` after the
    word; ``mark_foreign()`` marks the lock foreign, done first when others could not check this
    thread's name. A blocking wait sleeps in slices of at most 100 ms, so Ctrl-C can interrupt
    it."""
    name = me()
    if not checkable():
        mark_foreign()
    slept = False
    next_check: Optional[float] = None
    tries = 0
    while True:
        w = load(addr)
        if w & TID_MASK == 0:
            if cas(addr, w, name | (WAITERS if slept else 0)):
                return TOOK
            continue
        if w & IDENTITY == name:
            if held_here():
                return HELD_HERE
            if cas(addr, w, name | WAITERS):
                return TOOK_OVER
            continue
        if not blocking:
            tries += 1
            if judge(w, *area()) == DEAD and cas(addr, w, name | WAITERS):
                return TOOK_OVER
            if tries >= 3 or load(addr) == w:
                return BUSY
            continue
        now = time.monotonic()
        if next_check is None:
            next_check = now + FIRST_CHECK
        if now >= next_check:
            if judge(w, *area()) == DEAD:
                if cas(addr, w, name | WAITERS):
                    return TOOK_OVER
                continue
            next_check = now + CHECK_EVERY
        if deadline is not None and now >= deadline:
            return BUSY
        waiting = w | WAITERS
        if w != waiting and not cas(addr, w, waiting):
            continue
        until = min(next_check, now + 0.1)
        if deadline is not None:
            until = min(until, deadline)
        futex_wait(addr, waiting, until - now)
        slept = True


def unlock(addr: int) -> None:
    """Releases the lock word at ``addr``, held by this thread; wakes a waiter if one sleeps.
    A word that no longer names this thread (a peer wrote it) is left alone."""
    name = me()
    while True:
        w = load(addr)
        if w & IDENTITY != name:
            return
        if cas(addr, w, 0):
            if w & WAITERS:
                futex_wake(addr)
            return
