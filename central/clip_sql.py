"""The store's SQL for event video clips (table `clips`, migration 7); `central/clipfetch.py` decides.

One row per event: the state of its clip (requested, pending, ready, missing, unsupported, rejected,
expired), why, and for a ready clip its sha256 (the file lives content-addressed beside the snapshots).
A mixin of `Store`, kept apart like snapshot_sql.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from central.db import Conn

_COLUMNS = (
    "event_id, node, state, reason, sha256, bytes, duration_s, start_epoch, requested_epoch, updated_epoch"
)


@dataclass(frozen=True, slots=True)
class ClipRow:
    event_id: str
    node: str
    state: str
    reason: str
    sha256: str | None
    bytes: int
    duration_s: float
    start_epoch: float
    requested_epoch: float
    updated_epoch: float


class ClipSql:
    """Needs `conn()` and `tx()` from Store."""

    def conn(self) -> Conn:
        raise NotImplementedError

    def tx(self) -> Any:
        raise NotImplementedError

    def clip(self, event_id: str) -> ClipRow | None:
        row = self.conn().execute(f"SELECT {_COLUMNS} FROM clips WHERE event_id=?", (event_id,)).fetchone()
        if row is None:
            return None
        return ClipRow(
            str(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4], int(row[5]), float(row[6]),
            float(row[7]), float(row[8]), float(row[9]),
        )  # fmt: skip

    def clip_expected_node(self, event_id: str) -> str | None:
        """The node that may deliver this event's clip now: asked for and not yet stored (or expired)."""
        row = self.conn().execute("SELECT node, state FROM clips WHERE event_id=?", (event_id,)).fetchone()
        return str(row[0]) if row is not None and row[1] not in ("ready", "expired") else None

    def clip_requested(self, event_id: str, node: str, now: float) -> None:
        """A request from the API: a stored clip stays ready, anything else starts over as requested."""
        with self.tx() as conn:
            conn.execute(
                f"INSERT INTO clips ({_COLUMNS}) VALUES (?,?,'requested','',NULL,0,0,0,?,?)"
                " ON CONFLICT (event_id) DO UPDATE SET requested_epoch=excluded.requested_epoch,"
                " state=CASE WHEN clips.state='ready' THEN 'ready' ELSE 'requested' END,"
                " updated_epoch=excluded.updated_epoch",
                (event_id, node, now, now),
            )

    def clip_state(self, event_id: str, node: str, state: str, reason: str, now: float) -> None:
        """A state from the node or the assembler; never downgrades a ready clip."""
        with self.tx() as conn:
            conn.execute(
                f"INSERT INTO clips ({_COLUMNS}) VALUES (?,?,?,?,NULL,0,0,0,?,?)"
                " ON CONFLICT (event_id) DO UPDATE SET state=excluded.state, reason=excluded.reason,"
                " updated_epoch=excluded.updated_epoch WHERE clips.state<>'ready'",
                (event_id, node, state, reason[:300], now, now),
            )

    def clip_stored(
        self, event_id: str, node: str, sha256: str, nbytes: int, duration_s: float, start: float, now: float
    ) -> None:
        with self.tx() as conn:
            conn.execute(
                f"INSERT INTO clips ({_COLUMNS}) VALUES (?,?,'ready','',?,?,?,?,?,?)"
                " ON CONFLICT (event_id) DO UPDATE SET state='ready', reason='', sha256=excluded.sha256,"
                " bytes=excluded.bytes, duration_s=excluded.duration_s, start_epoch=excluded.start_epoch,"
                " updated_epoch=excluded.updated_epoch",
                (event_id, node, sha256, nbytes, duration_s, start, now, now),
            )

    def clips_interrupted(self, reason: str, now: float) -> int:
        """At start-up: uploads that were being received when the aggregator stopped lost their partial
        file with the process; they become `rejected` (the dashboard offers to ask again), never a
        `receiving` that nothing will complete. Returns how many."""
        with self.tx() as conn:
            return int(
                conn.execute(
                    "UPDATE clips SET state='rejected', reason=?, updated_epoch=? WHERE state='receiving'",
                    (reason[:300], now),
                ).rowcount
            )

    def clips_stored_before(self, cutoff: float) -> list[tuple[str, str]]:
        """(event id, sha256) of ready clips stored before `cutoff`, for retention."""
        rows = self.conn().execute(
            "SELECT event_id, sha256 FROM clips WHERE state='ready' AND updated_epoch<?", (cutoff,)
        )
        return [(str(e), str(s)) for e, s in rows.fetchall()]

    def clips_expire(self, event_ids: list[str], now: float) -> list[str]:
        """Mark clips expired; returns the sha256 no ready clip references any more (files to delete)."""
        with self.tx() as conn:
            shas = set()
            for event_id in event_ids:
                row = conn.execute("SELECT sha256 FROM clips WHERE event_id=?", (event_id,)).fetchone()
                if row is not None and row[0]:
                    shas.add(str(row[0]))
                conn.execute(
                    "UPDATE clips SET state='expired', reason='removed by retention', sha256=NULL,"
                    " updated_epoch=? WHERE event_id=?",
                    (now, event_id),
                )
            return [
                s
                for s in sorted(shas)
                if conn.execute("SELECT 1 FROM clips WHERE sha256=?", (s,)).fetchone() is None
            ]
