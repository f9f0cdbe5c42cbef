"""The store's SQL for snapshot binding: events' declared digests and the orphan snapshots' own table.

A mixin of `Store` (store.py), kept apart like the reads (queries.py): `central/binding.py` decides, this
module only reads and writes. Orphans are keyed by (event id, node, sha256), so a forged orphan for
another node's event id never replaces the genuine one; the right one is chosen when the event arrives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from central.db import Conn
    from central.snapshots import SnapshotFiles

OrphanRow = tuple[str, str, str, int, float]  # event_id, node, sha256, bytes, received_epoch


class SnapshotSql:
    """Needs `conn()`, `tx()` and `snapshots` from Store."""

    snapshots: SnapshotFiles

    def conn(self) -> Conn:
        raise NotImplementedError

    def tx(self) -> Any:
        raise NotImplementedError

    def event_bindings(self, event_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """event id -> (node, declared snapshot sha256 or None) for the stored events among `event_ids`."""
        out: dict[str, tuple[str, str | None]] = {}
        ids = list(dict.fromkeys(event_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for event_id, node, payload in self.conn().execute(
                f"SELECT event_id, node, payload FROM events WHERE event_id IN ({marks})", chunk
            ):
                snap = json.loads(payload).get("snapshot")
                sha = snap.get("sha256") if isinstance(snap, dict) else None
                out[event_id] = (node, sha if isinstance(sha, str) else None)
        return out

    def orphan_bytes(self, node: str) -> int:
        row = (
            self.conn()
            .execute("SELECT COALESCE(SUM(bytes), 0) FROM snapshot_orphans WHERE node=?", (node,))
            .fetchone()
        )
        return int(row[0])

    def add_orphan(self, event_id: str, node: str, sha256: str, nbytes: int, received: float) -> None:
        self.conn().execute(
            "INSERT INTO snapshot_orphans (event_id, node, sha256, bytes, received_epoch) VALUES (?,?,?,?,?)"
            " ON CONFLICT (event_id, node, sha256) DO NOTHING",
            (event_id, node, sha256, nbytes, received),
        )

    def orphans_for(self, event_ids: Sequence[str]) -> list[OrphanRow]:
        """The orphans waiting for these events (left in place until `forget_orphans`)."""
        out: list[OrphanRow] = []
        ids = list(dict.fromkeys(event_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn().execute(
                "SELECT event_id, node, sha256, bytes, received_epoch FROM snapshot_orphans"
                f" WHERE event_id IN ({marks})",
                chunk,
            )
            out.extend((r[0], r[1], r[2], int(r[3]), float(r[4])) for r in rows)
        return out

    def forget_orphans(self, event_ids: Sequence[str]) -> None:
        """Delete the orphans of these events, once their links are recorded."""
        ids = list(dict.fromkeys(event_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self.conn().execute(f"DELETE FROM snapshot_orphans WHERE event_id IN ({marks})", chunk)

    def expire_orphans(self, cutoff: float) -> list[str]:
        """Delete orphans received before `cutoff`; returns their digests."""
        with self.tx() as conn:
            shas = [
                r[0]
                for r in conn.execute("SELECT sha256 FROM snapshot_orphans WHERE received_epoch<?", (cutoff,))
            ]
            conn.execute("DELETE FROM snapshot_orphans WHERE received_epoch<?", (cutoff,))
        return shas

    def referenced(self, conn: Conn, sha256: str) -> bool:
        """Whether a link or an orphan still names this file."""
        for table in ("snapshot_links", "snapshot_orphans"):
            if conn.execute(f"SELECT 1 FROM {table} WHERE sha256=?", (sha256,)).fetchone() is not None:
                return True
        return False

    def drop_unreferenced(self, shas: Sequence[str]) -> int:
        """Delete the files of these digests that nothing names any more; returns how many."""
        conn = self.conn()
        doomed = [sha for sha in set(shas) if not self.referenced(conn, sha)]
        for sha in doomed:
            self.snapshots.delete(sha)
        return len(doomed)

    def evidence(self, event_id: str) -> tuple[str, str | None, str | None] | None:
        """(stored payload JSON, signature status, linked snapshot sha256) of one event, for export."""
        row = (
            self.conn()
            .execute(
                "SELECT e.payload, e.sig_status, s.sha256 FROM events e"
                " LEFT JOIN snapshot_links s ON s.event_id = e.event_id WHERE e.event_id=?",
                (event_id,),
            )
            .fetchone()
        )
        return None if row is None else (str(row[0]), row[1], row[2])
