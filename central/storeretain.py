"""The retention sweep's SQL (settings and the why: central/retention.py).

Events go by the age of their kind; snapshot links by the snapshot age, then the oldest while over the
disk budget; a file is removed only when no link names it. A snapshot taken away from an event that is
still kept is recorded in `media_expired`, so the dashboard can say "expired" instead of showing a
broken picture; clips (stored by the clip store) are marked the same way (`mark_expired`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from central.retention import RetentionPolicy

if TYPE_CHECKING:
    from central.db import Conn
    from central.store import Store

log = logging.getLogger(__name__)


def _delete_events(conn: Conn, policy: RetentionPolicy, now: float) -> int:
    n = 0
    for kind, age_s in sorted(policy.per_kind_s.items()):
        n += conn.execute("DELETE FROM events WHERE kind=? AND ts_epoch<?", (kind, now - age_s)).rowcount
    kinds = sorted(policy.per_kind_s)
    others = f" AND kind NOT IN ({','.join('?' * len(kinds))})" if kinds else ""
    n += conn.execute(
        f"DELETE FROM events WHERE ts_epoch<?{others}", [now - policy.default_s, *kinds]
    ).rowcount
    conn.execute("DELETE FROM media_expired WHERE event_id NOT IN (SELECT event_id FROM events)")
    return n


def _drop_links(conn: Conn, event_ids: list[str], now: float) -> None:
    """Delete these snapshot links, marking the events that remain as having an expired snapshot."""
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        conn.execute(
            "INSERT INTO media_expired (event_id, snapshot_epoch)"
            f" SELECT event_id, ? FROM events WHERE event_id IN ({marks})"
            " ON CONFLICT (event_id) DO UPDATE SET snapshot_epoch=excluded.snapshot_epoch",
            [now, *chunk],
        )
        conn.execute(f"DELETE FROM snapshot_links WHERE event_id IN ({marks})", chunk)


def retain(store: Store, policy: RetentionPolicy, now: float) -> tuple[int, int]:
    """Apply `policy`; returns (events deleted, snapshot files deleted)."""
    cutoff = now - policy.default_s
    with store.tx() as conn:
        n_events = _delete_events(conn, policy, now)
        old = conn.execute(
            "SELECT event_id, sha256 FROM snapshot_links WHERE received_epoch<?", (now - policy.snapshots_s,)
        ).fetchall()
        doomed = [str(r[1]) for r in old]
        _drop_links(conn, [str(r[0]) for r in old], now)
        conn.execute("DELETE FROM seq_gaps WHERE detected_epoch<?", (cutoff,))
        conn.execute("DELETE FROM webhook_queue WHERE state='delivered' AND updated_epoch<?", (cutoff,))
        total = int(conn.execute("SELECT COALESCE(SUM(bytes),0) FROM snapshot_links").fetchone()[0])
        if total > policy.max_snapshot_bytes:
            over: list[str] = []
            for event_id, sha, size in conn.execute(
                "SELECT event_id, sha256, bytes FROM snapshot_links ORDER BY received_epoch"
            ).fetchall():
                if total <= policy.max_snapshot_bytes:
                    break
                over.append(str(event_id))
                doomed.append(str(sha))
                total -= int(size)
            _drop_links(conn, over, now)
        orphans = [sha for sha in set(doomed) if not store.referenced(conn, sha)]  # links and orphans
    for sha in orphans:
        store.snapshots.delete(sha)
    if n_events or orphans:
        log.info("retention: deleted %d events and %d snapshot files", n_events, len(orphans))
    return n_events, len(orphans)


def mark_clips_expired(store: Store, event_ids: list[str], now: float) -> None:
    """For the clip store's sweep: record that these events' clips were deleted by retention."""
    with store.tx() as conn:
        conn.executemany(
            "INSERT INTO media_expired (event_id, clip_epoch) VALUES (?,?)"
            " ON CONFLICT (event_id) DO UPDATE SET clip_epoch=excluded.clip_epoch",
            [(e, now) for e in event_ids],
        )
