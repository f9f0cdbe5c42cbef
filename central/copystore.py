"""Copy a whole store into a new one: SQLite to PostgreSQL when a site outgrows one file, or back for a
portable archive.

Everything the aggregator keeps is copied: events with their acknowledgements, snapshot links (and the
JPEG files when the new store has its own snapshot directory), node state, sequence state and gaps, the
audit log, the webhook queue with its dead letters, login sessions and throttle windows. Rows keep their
ids, so the audit log and webhook queue read the same afterwards; PostgreSQL's identity counters are
moved past the copied ids so new rows do not collide.

The copy is one transaction on the target: an interrupted copy leaves the target empty and can simply
be run again. A target that already holds events is refused, so two stores are never merged by mistake.
Stop the aggregator first; edges and the broker's persistent session hold new events meanwhile.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from central.db import Conn
from central.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Table:
    """A table to copy: its columns, the key to page by (None: a small table read whole), and whether that
    key is an identity column."""

    name: str
    columns: tuple[str, ...]
    key: str | None
    identity: bool = False


def _table(name: str, columns: str, key: str | None, identity: bool = False) -> Table:
    return Table(name, tuple(columns.split()), key, identity)


# every table of the schema (a test checks none is missing after a new migration)
TABLES: tuple[Table, ...] = (
    _table(
        "events",
        "event_id node camera kind phase rule seq ts ts_epoch received_epoch classes payload"
        " ack_by ack_at ack_note sig_status",
        "event_id",
    ),
    _table("snapshot_links", "event_id sha256 bytes received_epoch", "event_id"),
    _table("media_expired", "event_id snapshot_epoch clip_epoch", "event_id"),
    _table(
        "clips",
        "event_id node state reason sha256 bytes duration_s start_epoch requested_epoch updated_epoch",
        "event_id",
    ),
    _table("nodes", "node state state_since last_seen stats", "node"),
    _table("seq_state", "node max_seq max_ts_epoch generation replays", "node"),
    _table(
        "seq_gaps", "id node first_seq last_seq detected_epoch resolved_epoch generation", "id", identity=True
    ),
    _table("audit", "id at_epoch actor action target detail remote", "id", identity=True),
    _table(
        "webhook_queue",
        "id webhook rule event_id body state attempts next_epoch last_error created_epoch updated_epoch",
        "id",
        identity=True,
    ),
    _table("sessions", "token_hash username created_epoch expires_epoch", "token_hash"),
    _table("forward_throttle", "forward_rule node camera event_rule last_epoch", None),
    _table("snapshot_orphans", "event_id node sha256 bytes received_epoch", None),
)


class CopyError(Exception):
    """The copy cannot start (the target is not empty); nothing was written."""


@dataclass(frozen=True, slots=True)
class CopyResult:
    rows: dict[str, int]
    snapshot_files: int


def copy_store(
    source: Store, target: Store, batch: int = 2000, progress: Callable[[str, int], None] | None = None
) -> CopyResult:
    """Copy every row of `source` into the empty `target` in one transaction; returns what was copied."""
    held = target.count_events()
    if held:
        raise CopyError(f"the target store already holds {held} events; copy into a new, empty store")
    files = _copy_snapshot_files(source, target)  # first: a rerun after a failed copy fetches the rest
    rows: dict[str, int] = {}
    with target.tx() as dst:
        for table in TABLES:
            rows[table.name] = _copy_table(source.conn(), dst, table, batch, progress)
            if table.identity and table.key is not None:
                reset = dst.dialect.reset_identity
                if reset is not None:
                    dst.execute(reset.format(table=table.name, column=table.key))
    log.info("copied %s from %s to %s, %d snapshot files", rows, source.label, target.label, files)
    return CopyResult(rows, files)


def _copy_table(
    src: Conn, dst: Conn, table: Table, batch: int, progress: Callable[[str, int], None] | None
) -> int:
    """Page through the source by key (constant memory on either engine) and insert each page."""
    cols = ", ".join(table.columns)
    insert = f"INSERT INTO {table.name} ({cols}) VALUES ({', '.join('?' * len(table.columns))})"
    key = table.key
    copied = 0
    last: object = None
    while True:
        if key is None:  # a small table (one row per forwarding key): read whole
            page = src.execute(f"SELECT {cols} FROM {table.name}").fetchall()
        elif last is None:
            page = src.execute(f"SELECT {cols} FROM {table.name} ORDER BY {key} LIMIT ?", (batch,)).fetchall()
        else:
            page = src.execute(
                f"SELECT {cols} FROM {table.name} WHERE {key} > ? ORDER BY {key} LIMIT ?", (last, batch)
            ).fetchall()
        if page:
            dst.executemany(insert, [tuple(r) for r in page])
            copied += len(page)
            if progress is not None:
                progress(table.name, copied)
        if key is None or len(page) < batch:
            return copied
        last = page[-1][table.columns.index(key)]


def _copy_snapshot_files(source: Store, target: Store) -> int:
    """Copy the linked JPEGs when the target keeps its own directory; existing files are left alone."""
    if source.snapshots.root.resolve() == target.snapshots.root.resolve():
        return 0
    copied = 0
    for (sha,) in source.conn().execute("SELECT DISTINCT sha256 FROM snapshot_links"):
        src, dst = source.snapshots.path_for(sha), target.snapshots.path_for(sha)
        if dst.exists() or not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".copying")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)  # a half-copied file never takes the final name
        copied += 1
    return copied
