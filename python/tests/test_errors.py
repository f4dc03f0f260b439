"""Objects that are not good segments raise the exception Rust's `open` reports for them, each
naming the segment: missing, garbage, truncated, inconsistent, another user's, too open, not a
regular file, half-made by a dead creator."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import unittest

import _support as F
from _support import ShmTestCase, shm_path

import shm_core


class HostileTest(ShmTestCase):
    def good_image(self) -> bytes:
        """The bytes of a valid `Value('d', 1.0)` segment."""
        name = self.name("template")
        v = shm_core.Value("d", 1.0, name=name)
        with open(shm_path(name), "rb") as f:
            data = f.read()
        v.close()
        return data

    def plant(self, tag: str, data: bytes, mode: int = 0o600) -> str:
        name = self.name(tag)
        fd = os.open(shm_path(name), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
        finally:
            os.close(fd)
        return name

    def check(self, name: str, kind: type, words: str = "", rust: bool = True, **opts) -> None:
        """Python's `Value.open` raises ``kind`` naming the segment, and Rust's
        `Value::<f64>::open` reports the variant of the same name."""
        with self.assertRaises(kind) as cm:
            shm_core.Value.open(name, "d", **opts)
        e = cm.exception
        self.assertIs(type(e), kind, str(e))
        self.assertIn(name, str(e))
        self.assertEqual(e.name, name)
        self.assertIn(words, str(e))
        if rust:
            got = self.run_peer("try-open", "value-f64", name)
            self.assertEqual(got.split()[0], kind.__name__, got)

    def patched(self, image: bytes, offset: int, fmt: str, value) -> bytes:
        b = bytearray(image)
        struct.pack_into(fmt, b, offset, value)
        return bytes(b)

    def test_missing(self):
        self.check(self.name("missing"), shm_core.NotFound, "does not exist")

    def test_garbage(self):
        rng = random.Random(1)
        junk = b"GARBAGE!" + bytes(rng.randrange(256) for _ in range(4088))
        self.check(self.plant("garbage", junk), shm_core.Corrupt, "magic")

    def test_truncated_and_extended(self):
        image = self.good_image()
        self.check(self.plant("short", image[:100]), shm_core.Corrupt, "fewer than the 256")
        self.check(self.plant("trunc", image[:-8]), shm_core.Corrupt, "does not add up")
        self.check(self.plant("long", image + bytes(128)), shm_core.Corrupt, "does not add up")

    def test_inconsistent_headers(self):
        image = self.good_image()
        cases = {
            "version": (F.OFF_VERSION, "I", 5, "version 5"),
            "older version": (F.OFF_VERSION, "I", 3, "version 3, and this shm-core reads only version 4"),
            "first version": (F.OFF_VERSION, "I", 1, "version 1"),
            "state": (F.OFF_STATE, "I", 7, "init state 7"),
            "desclen": (F.OFF_DESCRIPTOR_LEN, "I", 1 << 20, "does not add up"),
            "count": (F.OFF_ELEM_COUNT, "Q", 2, "does not add up"),
            "payload": (F.OFF_PAYLOAD_OFFSET, "Q", 1 << 62, "does not add up"),
            "journal": (F.OFF_JOURNAL_OFFSET, "Q", 136, "does not add up"),
            "fingerprint": (F.OFF_FINGERPRINT, "Q", 12345, "fingerprint does not match"),
        }
        for tag, (off, fmt, value, words) in cases.items():
            with self.subTest(tag):
                self.check(self.plant(tag, self.patched(image, off, fmt, value)), shm_core.Corrupt, words)

    def test_inconsistent_descriptor_with_a_matching_fingerprint(self):
        image = bytearray(self.good_image())
        n = struct.unpack_from("I", image, F.OFF_DESCRIPTOR_LEN)[0]
        desc = bytearray(image[256 : 256 + n])
        struct.pack_into("<Q", desc, 1, 16)  # f64 of size 16
        image[256 : 256 + n] = desc
        struct.pack_into("Q", image, F.OFF_FINGERPRINT, shm_core.fingerprint(bytes(desc)))
        self.check(self.plant("desc", bytes(image)), shm_core.Corrupt, "descriptor byte")

    def test_another_layout(self):
        image = bytearray(self.good_image())
        desc = shm_core.Descriptor.primitive("q").encode()
        image[256 : 256 + len(desc)] = desc
        struct.pack_into("Q", image, F.OFF_FINGERPRINT, shm_core.fingerprint(desc))
        self.check(self.plant("layout", bytes(image)), shm_core.LayoutMismatch, "holds i64")

    def test_not_ready(self):
        # Empty (a creator between open and ftruncate), or sized but not written: wait, then time out.
        self.check(self.plant("empty", b""), shm_core.Timeout, "did not become ready", wait=0.2)
        self.check(self.plant("zeros", bytes(4096)), shm_core.Timeout, wait=0.2)
        # Half-made by a creator that is gone: say so at once.
        dead = subprocess.Popen(["true"])
        dead.wait()
        image = self.good_image()
        image = self.patched(image, F.OFF_STATE, "I", 0)
        image = self.patched(image, F.OFF_CREATOR_PID, "I", dead.pid)
        self.check(self.plant("orphan", image), shm_core.CreatorDied, f"pid {dead.pid}")

    @unittest.skipUnless(os.geteuid() == 0, "chown to another user needs root")
    def test_another_users_segment(self):
        name = self.plant("foreign", self.good_image())
        os.chown(shm_path(name), 65534, 65534)
        self.check(name, shm_core.PermissionDenied, "belongs to uid 65534 (group 65534, mode 0o600)")
        self.check(name, shm_core.PermissionDenied, "not in its group 65534", mode=0o660)
        # Accepted only when group access is asked for, the group is ours, and its mode gives the
        # group read and write access; each refusal names the cause that holds.
        os.chown(shm_path(name), 65534, os.getegid())
        self.check(name, shm_core.PermissionDenied, "did not ask for group access")
        self.check(
            name, shm_core.PermissionDenied, "does not give its group read and write", mode=0o660
        )
        os.chmod(shm_path(name), 0o660)
        self.keep(shm_core.Value.open(name, "d", mode=0o660)).close()

    def test_too_open_or_not_a_regular_file(self):
        name = self.plant("open", self.good_image(), mode=0o644)
        self.check(name, shm_core.PermissionDenied, "opens it to more users")
        self.keep(shm_core.Value.open(name, "d", mode=0o666)).close()
        with self.assertRaises(shm_core.PermissionDenied):
            shm_core.Value.open(name, mode=0o700)  # not a mode one can ask for
        target = self.plant("target", self.good_image())
        link = self.name("symlink")
        os.symlink(shm_path(target), shm_path(link))
        self.check(link, shm_core.PermissionDenied, "symbolic link")
        fifo = self.name("fifo")
        os.mkfifo(shm_path(fifo), 0o600)
        self.check(fifo, shm_core.PermissionDenied, "not a regular")
        directory = self.name("dir")
        os.mkdir(shm_path(directory), 0o700)
        # Rust reports this one as an I/O error (EISDIR from shm_open).
        self.check(directory, shm_core.PermissionDenied, "not a regular", rust=False)

    def test_invalid_names(self):
        for bad in ["", "a/b", "x" * 256, ".", "..", "nul\0"]:
            with self.subTest(bad):
                with self.assertRaises(shm_core.InvalidName):
                    shm_core.open(bad)
                with self.assertRaises(ValueError):  # an InvalidName is a ValueError
                    shm_core.Value("i", 0, name=bad)
        self.assertEqual(self.run_peer("try-open", "value-f64", "a/b").split()[0], "InvalidName")

    def test_create_refuses_an_existing_name(self):
        name = self.name("exists")
        v = self.keep(shm_core.Value("i", 1, name=name))
        with self.assertRaises(shm_core.AlreadyExists) as cm:
            shm_core.Array("i", [1], name=name)
        self.assertIsInstance(cm.exception, FileExistsError)
        self.assertEqual(v.value, 1)

    def test_random_header_mutations_never_crash_and_agree_with_rust(self):
        image = self.good_image()
        rng = random.Random(7)
        agreed = 0
        for i in range(60):
            data = bytearray(image)
            off = rng.randrange(0, 256 + 32)
            data[off] ^= 1 << rng.randrange(8)
            name = self.plant(f"mut{i}", bytes(data))
            try:
                shm_core.Value.open(name, "d", wait=0.05).close()
                ours = "ok"
            except shm_core.ShmError as e:
                ours = type(e).__name__
                self.assertIn(name, str(e))
            theirs = self.run_peer("try-open", "value-f64", name).split()[0]
            # Rust waits a second for a segment whose state went to 0; so do we, if asked.
            if ours != theirs:
                self.fail(f"byte {off}: Python says {ours}, Rust says {theirs}")
            agreed += 1
            os.unlink(shm_path(name))
        self.assertEqual(agreed, 60)


if __name__ == "__main__":
    unittest.main()
