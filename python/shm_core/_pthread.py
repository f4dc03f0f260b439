"""The segment's lock: glibc's robust, process-shared, error-checking ``pthread_mutex_t``, reached
through ``ctypes``.

The pthread functions return an error number (they do not set ``errno``). ``ctypes`` releases the
GIL around each call, so a blocked lock does not stop the other Python threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import time

PTHREAD_PROCESS_SHARED = 1
PTHREAD_MUTEX_ROBUST = 1
PTHREAD_MUTEX_ERRORCHECK = 2

EOWNERDEAD = getattr(errno, "EOWNERDEAD", 130)
ENOTRECOVERABLE = getattr(errno, "ENOTRECOVERABLE", 131)

#: Byte range of glibc's ``__kind`` in a ``pthread_mutex_t`` on 64-bit glibc targets.
KIND = slice(16, 20)


def _load_libc():
    """The C library's pthread functions: in libc since glibc 2.34, in libpthread before (which
    CPython is linked with, so the process's global symbols have them either way)."""
    candidates = [None, ctypes.util.find_library("c"), ctypes.util.find_library("pthread")]
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "pthread_mutex_consistent") and hasattr(lib, "pthread_mutex_timedlock"):
            return lib
    raise ImportError("shm_core needs glibc's robust pthread mutexes (pthread_mutex_consistent)")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = _load_libc()
_vp = ctypes.c_void_p
_int = ctypes.c_int


def _fn(name, *argtypes):
    f = getattr(_libc, name)
    f.argtypes = list(argtypes)
    f.restype = _int
    return f


_lock = _fn("pthread_mutex_lock", _vp)
_trylock = _fn("pthread_mutex_trylock", _vp)
_timedlock = _fn("pthread_mutex_timedlock", _vp, ctypes.POINTER(_Timespec))
_unlock = _fn("pthread_mutex_unlock", _vp)
_consistent = _fn("pthread_mutex_consistent", _vp)
_mutex_init = _fn("pthread_mutex_init", _vp, _vp)
_attr_init = _fn("pthread_mutexattr_init", _vp)
_attr_setpshared = _fn("pthread_mutexattr_setpshared", _vp, _int)
_attr_setrobust = _fn("pthread_mutexattr_setrobust", _vp, _int)
_attr_settype = _fn("pthread_mutexattr_settype", _vp, _int)
_attr_destroy = _fn("pthread_mutexattr_destroy", _vp)


def init(addr: int) -> int:
    """Initialises the mutex at ``addr`` (64 writable bytes nobody uses) as docs/FORMAT.md says:
    process-shared, robust, error-checking. Returns 0 or an error number."""
    attr = (ctypes.c_uint64 * 8)()  # pthread_mutexattr_t is 4 bytes on glibc; room to spare
    a = ctypes.addressof(attr)
    rc = _attr_init(a)
    if rc:
        return rc
    try:
        rc = _attr_setpshared(a, PTHREAD_PROCESS_SHARED)
        if rc == 0:
            rc = _attr_setrobust(a, PTHREAD_MUTEX_ROBUST)
        if rc == 0:
            rc = _attr_settype(a, PTHREAD_MUTEX_ERRORCHECK)
        if rc == 0:
            rc = _mutex_init(addr, a)
        return rc
    finally:
        _attr_destroy(a)


def _template_kind() -> bytes:
    buf = (ctypes.c_uint64 * 8)()
    rc = init(ctypes.addressof(buf))
    if rc:
        raise ImportError(f"pthread_mutex_init of a robust process-shared mutex failed: {rc}")
    return bytes(buf)[KIND]


#: The ``__kind`` bytes of a mutex initialised with our attributes: an opener compares them.
TEMPLATE_KIND = _template_kind()


def lock(addr: int) -> int:
    """``pthread_mutex_lock``; returns 0, ``EOWNERDEAD``, ``EDEADLK``, ..."""
    return _lock(addr)


def trylock(addr: int) -> int:
    return _trylock(addr)


def timedlock(addr: int, seconds: float) -> int:
    """``pthread_mutex_timedlock`` with a deadline ``seconds`` from now (CLOCK_REALTIME, as
    POSIX specifies); ``ETIMEDOUT`` if it stayed held."""
    at = time.time() + max(0.0, seconds)
    ts = _Timespec(int(at), int((at - int(at)) * 1e9))
    return _timedlock(addr, ctypes.byref(ts))


def unlock(addr: int) -> int:
    return _unlock(addr)


def consistent(addr: int) -> int:
    return _consistent(addr)
