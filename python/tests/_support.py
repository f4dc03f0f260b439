"""Helpers for the Python tests: the Rust peer binary, unique segment names that are removed
whatever happens, and child processes (Rust or Python) to kill.

Environment:

- ``SHM_PY_PEER``: path of the ``py-peer`` binary (``cargo test -p tests --test python`` sets it);
  without it, ``target/debug/py-peer`` of this workspace, which must exist.
- ``SHM_PY_PREFIX``: prefix of every segment name the tests make (the Rust harness checks that
  none is left in /dev/shm); default ``pyt``.
- ``SHM_PY_PATH``: the directory holding the ``shm_core`` package with its built extension (the
  Rust harness builds it there); without it, an installed ``shm_core``, or ``python/`` after an
  in-place build (``maturin develop``).
"""

from __future__ import annotations

import itertools
import mmap
import os
import select
import signal
import subprocess
import sys
import time
import unittest
from typing import List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYTHON_DIR)
PACKAGE_PATH = os.environ.get("SHM_PY_PATH", "")
if PACKAGE_PATH:
    sys.path.insert(0, PACKAGE_PATH)
else:
    try:
        import shm_core  # noqa: F401  (installed)
    except ImportError:
        sys.path.insert(0, PYTHON_DIR)

import shm_core  # noqa: E402

#: Where child Python processes find the same package.
PACKAGE_PATH = os.path.dirname(os.path.dirname(os.path.abspath(shm_core.__file__)))

#: Header offsets of docs/FORMAT.md, for tests that plant or inspect raw segment bytes.
OFF_VERSION = 8
OFF_STATE = 12
OFF_FINGERPRINT = 16
OFF_DESCRIPTOR_LEN = 24
OFF_PAYLOAD_OFFSET = 32
OFF_ELEM_COUNT = 48
OFF_CREATOR_PID = 64
OFF_POISON = 88
OFF_JOURNAL_OFFSET = 96
OFF_JOURNAL_LEN = 112
OFF_SEQ = 128
OFF_LOCK = 192


def header_u64(name: str, offset: int) -> int:
    """The header word at ``offset`` of segment ``name``, read from its file (as another process
    would see it)."""
    fd = os.open(shm_path(name), os.O_RDONLY)
    try:
        return int.from_bytes(os.pread(fd, 8, offset), "little")
    finally:
        os.close(fd)


def stop_inside_write_window(name: str, pid: int, timeout: float = 10.0) -> bool:
    """Stops process ``pid`` (SIGSTOP) at a moment its write to segment ``name`` is in progress
    and journaled (``seq`` odd, ``journal_len`` non-zero): polls the header through a read-only
    mapping until it says so, stops the writer, and checks again once it is stopped; if the
    write ended meanwhile, lets it go on (SIGCONT) and tries again. ``False`` if that never
    happened within ``timeout`` seconds (the writer is then left running).

    Killing the stopped writer then kills it between the stores of a write, however short a part
    of its time its writes are. ``pid`` must be a child of this process."""
    fd = os.open(shm_path(name), os.O_RDONLY)
    try:
        view = mmap.mmap(fd, mmap.PAGESIZE, prot=mmap.PROT_READ)
    finally:
        os.close(fd)

    def in_write() -> bool:
        seq = int.from_bytes(view[OFF_SEQ : OFF_SEQ + 8], "little")
        journal = int.from_bytes(view[OFF_JOURNAL_LEN : OFF_JOURNAL_LEN + 8], "little")
        return seq & 1 == 1 and journal != 0

    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not in_write():
                continue
            os.kill(pid, signal.SIGSTOP)
            os.waitpid(pid, os.WUNTRACED)
            if in_write():
                return True
            os.kill(pid, signal.SIGCONT)
        return False
    finally:
        view.close()


def poke(name: str, payload_index: int, data: bytes) -> None:
    """Writes ``data`` at byte ``payload_index`` of the payload of segment ``name``, as a foreign
    process could."""
    fd = os.open(shm_path(name), os.O_RDWR)
    try:
        base = int.from_bytes(os.pread(fd, 8, OFF_PAYLOAD_OFFSET), "little")
        os.pwrite(fd, data, base + payload_index)
    finally:
        os.close(fd)

PREFIX = os.environ.get("SHM_PY_PREFIX", "pyt")
_counter = itertools.count()


def peer_path() -> str:
    path = os.environ.get("SHM_PY_PEER") or os.path.join(REPO, "target", "debug", "py-peer")
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"the Rust peer {path} is missing: run `cargo test -p tests --test python`, or "
            "`cargo build -p tests --bin py-peer` and set SHM_PY_PEER"
        )
    return path


def fresh_name(tag: str) -> str:
    return f"{PREFIX}-{tag}-{os.getpid()}-{next(_counter)}"


def shm_path(name: str) -> str:
    return os.path.join("/dev/shm", name)


def remove_quietly(name: str) -> None:
    """Removes the object ``name``, and any side journal of it (``<name>.journal-<id>``)."""
    try:
        os.unlink(shm_path(name))
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        os.rmdir(shm_path(name))
    prefix = name + ".journal-"
    for entry in os.listdir("/dev/shm"):
        if entry.startswith(prefix):
            try:
                os.unlink(shm_path(entry))
            except FileNotFoundError:
                pass


class Child:
    """A child process with piped stdin/stdout, killed and reaped by ``close``."""

    def __init__(self, argv: List[str], env: Optional[dict] = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._buf = b""
        self._eof = False

    def readline(self, timeout: float = 20.0) -> Optional[str]:
        """The next line of stdout, or None at its end; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf and not self._eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.argv}: said nothing within {timeout} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                self._eof = not chunk
                self._buf += chunk
        if b"\n" not in self._buf:
            if not self._buf:
                return None
            line, self._buf = self._buf, b""
        else:
            line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def expect(self, line: str, timeout: float = 20.0) -> None:
        """Reads stdout until a line equals ``line``; fails if the child ends or takes too long."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            out = self.readline(max(0.0, deadline - time.monotonic()))
            if out is None:
                self.proc.wait()
                err = self.proc.stderr.read().decode()
                raise AssertionError(f"{self.argv} ended before saying {line!r}: {got} {err}")
            got.append(out)
            if out == line:
                return

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 120.0) -> str:
        """Closes stdin, waits for the child to exit 0, returns the rest of its stdout."""
        out, err = self.proc.communicate(timeout=timeout)
        text = (self._buf + out).decode()
        self._buf = b""
        if self.proc.returncode != 0:
            raise AssertionError(
                f"{self.argv} failed ({self.proc.returncode}): {text} {err.decode()}"
            )
        return text

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def close(self) -> None:
        self.kill9()


def python_child(script: str) -> Child:
    """``python -c script`` with this package importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PATH + os.pathsep + env.get("PYTHONPATH", "")
    return Child([sys.executable, "-c", script], env=env)


class ShmTestCase(unittest.TestCase):
    """Gives each test fresh segment names and children, removed and killed in ``tearDown``,
    whatever the outcome."""

    def setUp(self) -> None:
        self._names: List[str] = []
        self._children: List[Child] = []
        self._handles: List[shm_core.Segment] = []

    def tearDown(self) -> None:
        for c in self._children:
            c.close()
        for h in self._handles:
            try:
                lock = h.get_lock()
                while lock.held():
                    lock.release()
                h.close()
            except Exception:
                pass
        for n in self._names:
            remove_quietly(n)

    def name(self, tag: str) -> str:
        n = fresh_name(tag)
        self._names.append(n)
        return n

    def keep(self, seg):
        """Closes ``seg`` in tearDown."""
        self._handles.append(seg)
        return seg

    def peer(self, *args: str) -> Child:
        c = Child([peer_path(), *args])
        self._children.append(c)
        return c

    def run_peer(self, *args: str, timeout: float = 120.0) -> str:
        r = subprocess.run(
            [peer_path(), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if r.returncode != 0:
            raise AssertionError(f"py-peer {args} failed ({r.returncode}): {r.stdout} {r.stderr}")
        return r.stdout.strip()

    def python(self, script: str) -> Child:
        c = python_child(script)
        self._children.append(c)
        return c
