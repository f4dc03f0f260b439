#!/usr/bin/env python3
"""Prints the live values of any shm segment, from Python, with nothing but the standard library.

    cargo run --example scoreboard -- --seconds 60 --name scoreboard   # a Rust writer, meanwhile:
    python3 examples/python_dashboard.py scoreboard                    # a consistent snapshot a second
    python3 examples/python_dashboard.py scoreboard --interval 0.2 --count 10
    python3 examples/python_dashboard.py scoreboard --json | jq .      # one JSON object a line

It works for any segment: it reads the layout from the segment's own descriptor, so it needs no
type definitions. It attaches read only (``shm_core.open(name, readonly=True)``): the operating
system stops it from writing anything, and read permission suffices, so it can watch a segment
of another user who created it for its group (``mode=0o640``; ``--mode`` says what this
dashboard accepts). Each snapshot is consistent (no update of any process is half-seen, and a
writer killed mid-update is seen rolled back). An array of
flat structs (such as the scoreboard's slots) prints as a table, a struct as one line per field.
Exit status: 0 after ``--count`` snapshots, Ctrl-C, or the segment's removal; 1 if it cannot be
opened (the message says why: not found, another user's, corrupt, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

try:
    import shm_core
except ImportError:  # run from a checkout without `pip install ./python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import shm_core


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        items = [fmt(x) for x in v]
        if len(items) > 16:
            items = items[:8] + [f"... {len(items) - 12} more ..."] + items[-4:]
        return "[" + ", ".join(items) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def flat_fields(value: dict, prefix: str = ""):
    """(path, value) of every field, nested structs flattened to ``a.b``."""
    for k, v in value.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            yield from flat_fields(v, path)
        else:
            yield path, v


def render(seg: shm_core.Segment, snap) -> str:
    if isinstance(snap, list) and snap and all(isinstance(e, dict) for e in snap):
        rows = [dict(flat_fields(e)) for e in snap]
        cols = list(rows[0])
        cells = [[str(i)] + [fmt(r[c]) for c in cols] for i, r in enumerate(rows)]
        head = ["#"] + cols
        widths = [max(len(x) for x in col) for col in zip(head, *cells)]
        line = lambda xs: "  ".join(x.rjust(w) for x, w in zip(xs, widths))  # noqa: E731
        return "\n".join([line(head)] + [line(c) for c in cells])
    if isinstance(snap, dict):
        fields = list(flat_fields(snap))
        width = max((len(p) for p, _ in fields), default=0)
        return "\n".join(f"{p.ljust(width)}  {fmt(v)}" for p, v in fields)
    return fmt(snap)


def same_object(path: str, dev_ino) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == dev_ino


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="the segment's name (the object /dev/shm/NAME)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots (1)")
    p.add_argument("--count", type=int, default=0, help="stop after N snapshots (0: never)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the segment to appear")
    p.add_argument("--json", action="store_true", help="print one JSON object per snapshot")
    p.add_argument(
        "--mode",
        type=lambda m: int(m, 8),
        default=0o640,
        help="the most access the segment may give (octal; 640: group-readable ones too)",
    )
    args = p.parse_args()

    deadline = time.monotonic() + args.wait
    while True:
        try:
            seg = shm_core.open(args.name, mode=args.mode, readonly=True)
            break
        except shm_core.NotFound as e:
            if time.monotonic() >= deadline:
                print(f"python_dashboard: {e}", file=sys.stderr)
                return 1
            time.sleep(0.1)
        except shm_core.ShmError as e:
            print(f"python_dashboard: {e}", file=sys.stderr)
            return 1

    path = os.path.join("/dev/shm", args.name)
    st = os.stat(path)
    dev_ino = (st.st_dev, st.st_ino)
    info = seg.info()
    if not args.json:
        alive = "running" if info["creator_alive"] else "exited"
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["created_at"]))
        print(
            f"{info['name']}: {info['type']}, made by pid {info['creator_pid']} ({alive})"
            f" at {created}, fingerprint {info['fingerprint']}"
            + (", attached read-only" if seg.readonly else "")
        )
    shown = 0
    try:
        with seg:
            while True:
                snap = seg.snapshot()
                if args.json:
                    print(json.dumps({"time": time.time(), "name": args.name, "value": snap}), flush=True)
                else:
                    print(f"\n--- {time.strftime('%H:%M:%S')} ---")
                    print(render(seg, snap), flush=True)
                shown += 1
                if args.count and shown >= args.count:
                    return 0
                time.sleep(args.interval)
                if not same_object(path, dev_ino):
                    print(f"python_dashboard: segment `{args.name}` was removed", file=sys.stderr)
                    return 0
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `| head`: the reader has seen enough
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
