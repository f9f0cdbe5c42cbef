"""Integrity check of the outbox file at start, and what to do with a corrupt one.

A corrupt outbox (an SD card that lost a sector, a file cut short by a full disk) used to end the node in a
traceback that systemd restarted five times and gave up on: the cameras stayed dark until someone deleted
the file. Here a file that fails `PRAGMA quick_check` (or that SQLite does not even recognise) is moved
aside with a UTC timestamp, so nothing is deleted and it can be examined or salvaged later, and a fresh
outbox starts. The caller logs the loss naming the file and counts it (a metric).

The check reads the whole file once, which is fine for an outbox (bounded by `outbox.max_mb`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class Recovery:
    """A corrupt outbox that was moved aside: where it went, why, and what could still be read of it."""

    moved_to: Path
    problem: str
    next_seq: int  # read from the old file where possible, so sequence numbers do not go backwards


def integrity_problem(path: Path) -> str | None:
    """None when the SQLite file at `path` is sound (or absent), else what is wrong with it."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(path, timeout=10.0)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise  # another process holds it: not corruption
        return str(exc)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found[:5])


def salvage_next_seq(path: Path) -> int:
    """The next sequence number the old outbox would have given, where its meta or events can be read."""
    best = 1
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(path)) as conn:
        for sql in ("SELECT value FROM meta WHERE key = 'next_seq'", "SELECT MAX(seq) + 1 FROM events"):
            with contextlib.suppress(sqlite3.Error):
                row = conn.execute(sql).fetchone()
                if row is not None and isinstance(row[0], int):
                    best = max(best, row[0])
    return best


def set_aside(path: Path, problem: str, now: float | None = None) -> Recovery:
    """Rename the corrupt file (and its WAL and shared-memory files) to `<name>.corrupt-<UTC time>`."""
    next_seq = salvage_next_seq(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.rename(target)
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return Recovery(target, problem, next_seq)


def recover_if_corrupt(path: Path) -> Recovery | None:
    """Check the outbox at `path`; a corrupt one is moved aside (logged with both names) and reported."""
    problem = integrity_problem(path)
    if problem is None:
        return None
    recovery = set_aside(path, problem)
    log.error(
        "outbox %s is corrupt (%s): moved aside to %s and a fresh outbox started; the events it held are "
        "lost unless salvaged from that file",
        path,
        problem[:200],
        recovery.moved_to,
    )
    return recovery
