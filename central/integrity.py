"""Integrity of the central store at start: a corrupt store stops the aggregator with a way back.

A SQLite file corrupted mid-file used to start fine: /healthz said 200 and logins worked, but nothing was
stored and /api/events answered 500. Now the store is checked before the aggregator takes traffic
(SQLite: `PRAGMA quick_check`, which reads every page once; PostgreSQL: a full read of every table, since
the server checks its own pages and reports damage as an error of class XX), and a damaged store is
refused with exit status 2 (systemd does not restart-loop on it) and a message that says how to restore.
Nothing is acknowledged to the broker meanwhile, so the events queued in the aggregator's persistent
session wait for the restored store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from central.db import Conn

TABLES = (
    "events",
    "snapshot_links",
    "nodes",
    "seq_state",
    "seq_gaps",
    "audit",
    "sessions",
)  # a full read of each: PostgreSQL reports bad pages

RESTORE = (
    "stop the aggregator, move the damaged file aside (keep it), then either restore the latest backup "
    "(docs/central.md, 'Recovering a corrupt store') or start on a new store and copy what is still "
    "readable: `roadwatch-central copy-store OLD.yaml NEW.yaml`, OLD.yaml naming the damaged store"
)


class StoreCorruptError(Exception):
    """The store's files are damaged: no retry helps, a person must restore it."""

    def __init__(self, label: str, problem: str) -> None:
        super().__init__(f"store {label} is corrupt ({problem[:300]}); to restore: {RESTORE}")
        self.problem = problem


def is_corruption(exc: BaseException) -> bool:
    """Whether a database error means damaged files (not a lock, a full disk or a lost connection)."""
    if isinstance(exc, sqlite3.DatabaseError):
        name = getattr(exc, "sqlite_errorname", "")
        return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (
            not name and ("malformed" in str(exc) or "not a database" in str(exc))
        )
    state = getattr(exc, "sqlstate", None)  # psycopg: XX001 data_corrupted, XX002 index_corrupted
    return isinstance(state, str) and state in ("XX001", "XX002")


@contextmanager
def corruption_guard(label: str) -> Iterator[None]:
    """Turn a database error that means damaged files into StoreCorruptError."""
    try:
        yield
    except StoreCorruptError:
        raise
    except Exception as exc:
        if is_corruption(exc):
            raise StoreCorruptError(label, str(exc)) from exc
        raise


def verify_store(conn: Conn, label: str) -> None:
    """Raise StoreCorruptError when the store's pages are damaged; cheap enough to run at every start."""
    with corruption_guard(label):
        if conn.dialect.name == "sqlite":
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
            if found != ["ok"]:
                raise StoreCorruptError(label, "; ".join(found[:5]))
            return
        for table in TABLES:
            conn.execute(f"SELECT COUNT(*) FROM (SELECT * FROM {table}) AS t").fetchone()
