"""The read side of the store: events with their snapshot and ack, counts, nodes, gaps, audit.

`StoreReads` holds the queries the API and the writer's announcements need; `Store` (store.py) adds the
connections and the writes. Kept apart because the reads grow with the dashboard, the writes with ingest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.db import Conn
from central.scope import Scope
from contract.times import iso_from_epoch


@dataclass(frozen=True, slots=True)
class EventFilter:
    since: float | None = None
    until: float | None = None
    kind: str | None = None
    camera: str | None = None
    node: str | None = None
    cls: str | None = None
    phase: str | None = None
    acknowledged: bool | None = None
    scope: Scope | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None


def scope_sql(scope: Scope | None, node: str = "node", camera: str = "camera") -> tuple[str, list[Any]]:
    """A WHERE condition (and its arguments) that keeps rows of the scope's nodes and cameras; TRUE for
    no scope. An empty scope matches nothing."""
    if scope is None:
        return "1=1", []
    parts: list[str] = []
    args: list[Any] = []
    if scope.nodes:
        parts.append(f"{node} IN ({','.join('?' * len(scope.nodes))})")
        args.extend(sorted(scope.nodes))
    for n, c in sorted(scope.pairs):
        parts.append(f"({node}=? AND {camera}=?)")
        args.extend((n, c))
    return ("(" + " OR ".join(parts) + ")") if parts else "1=0", args


_EVENT_COLUMNS = (
    "e.event_id, e.payload, e.received_epoch, e.ack_by, e.ack_at, e.ack_note, s.sha256 AS snap_sha,"
    " x.snapshot_epoch AS snap_expired, e.sig_status"
)
_EVENT_JOINS = (
    " LEFT JOIN snapshot_links s ON s.event_id = e.event_id"
    " LEFT JOIN media_expired x ON x.event_id = e.event_id"
)


def event_json(row: Sequence[Any]) -> dict[str, Any]:
    """The API's Event: the contract payload plus received_at, snapshot_url, snapshot_expired, ack and
    sig_status (how its signature stood on arrival; null where the station did not check)."""
    _, payload, received_epoch, ack_by, ack_at, ack_note, sha, expired, sig_status = row  # _EVENT_COLUMNS
    out: dict[str, Any] = json.loads(payload)
    out["received_at"] = iso_from_epoch(received_epoch)
    out["snapshot_url"] = f"/api/snapshots/{sha}.jpg" if sha else None
    out["snapshot_expired"] = sha is None and expired is not None
    out["ack"] = {"by": ack_by, "at": ack_at, "note": ack_note} if ack_by else None
    out["sig_status"] = sig_status
    return out


def _sort_key(value: Any) -> tuple[int, float, str]:
    """SQLite's order for JSON scalars: NULL, then numbers, then text (by code point)."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(value))


class StoreReads:
    """Read queries over a thread-local connection; `conn()` is supplied by `Store`."""

    def conn(self) -> Conn:
        raise NotImplementedError

    def open_gaps(self, node: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT node, first_seq, last_seq, detected_epoch FROM seq_gaps WHERE resolved_epoch IS NULL"
        args: list[Any] = []
        if node is not None:
            sql += " AND node=?"
            args.append(node)
        return [
            {"node": r[0], "first_seq": r[1], "last_seq": r[2], "detected_at": iso_from_epoch(r[3])}
            for r in self.conn().execute(sql + " ORDER BY node, first_seq", args)
        ]

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        row = (
            self.conn()
            .execute(
                f"SELECT {_EVENT_COLUMNS} FROM events e{_EVENT_JOINS} WHERE e.event_id=?",
                (event_id,),
            )
            .fetchone()
        )
        return event_json(row) if row else None

    def list_events(self, flt: EventFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Newest first; returns one page and the total that matches."""
        conn = self.conn()
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("e.kind", flt.kind),
            ("e.camera", flt.camera),
            ("e.node", flt.node),
            ("e.phase", flt.phase),
        ):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if flt.since is not None:
            where.append("e.ts_epoch>=?")
            args.append(flt.since)
        if flt.until is not None:
            where.append("e.ts_epoch<?")
            args.append(flt.until)
        if flt.cls is not None:
            where.append(conn.dialect.has_class)
            args.append(flt.cls)
        if flt.acknowledged is not None:
            where.append("e.ack_by IS NOT NULL" if flt.acknowledged else "e.ack_by IS NULL")
        if flt.scope is not None:
            cond, scope_args = scope_sql(flt.scope, "e.node", "e.camera")
            where.append(cond)
            args.extend(scope_args)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = int(conn.execute(f"SELECT COUNT(*) FROM events e{clause}", args).fetchone()[0])
        rows = conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events e{_EVENT_JOINS}{clause}"
            " ORDER BY e.ts_epoch DESC, e.event_id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [event_json(r) for r in rows], total

    def count_events(self, scope: Scope | None = None) -> int:
        cond, args = scope_sql(scope)
        return int(self.conn().execute(f"SELECT COUNT(*) FROM events WHERE {cond}", args).fetchone()[0])

    def snapshot_owners(self, sha: str) -> list[tuple[str, str, str]]:
        """(event id, node, camera) of the stored events that link this snapshot."""
        rows = self.conn().execute(
            "SELECT e.event_id, e.node, e.camera FROM snapshot_links s JOIN events e"
            " ON e.event_id = s.event_id WHERE s.sha256=? ORDER BY e.event_id",
            (sha,),
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def event_ids(self) -> list[str]:
        return [r[0] for r in self.conn().execute("SELECT event_id FROM events")]

    def counts(
        self,
        since: float | None,
        until: float | None,
        camera: str | None,
        rule: str | None,
        scope: Scope | None = None,
    ) -> list[dict[str, Any]]:
        """Line crossings per hour, node, camera, line rule, direction and class."""
        cond, args = scope_sql(scope)
        where = ["kind='line_crossing'", cond]
        for cond, value in (
            ("ts_epoch>=?", since),
            ("ts_epoch<?", until),
            ("camera=?", camera),
            ("rule=?", rule),
        ):
            if value is not None:
                where.append(cond)
                args.append(value)
        conn = self.conn()
        d = conn.dialect
        rows = conn.execute(
            f"SELECT {d.hour} AS hour, node, camera, rule, {d.direction} AS direction,"
            f" {d.first_class} AS cls, COUNT(*) AS n FROM events"
            f" WHERE {' AND '.join(where)} GROUP BY hour, node, camera, rule, direction, cls",
            args,
        ).fetchall()
        # sorted here, not in SQL: engines order NULLs, mixed JSON types and text collations differently
        rows.sort(key=lambda r: (r[0], r[1], r[2], r[3], _sort_key(r[4]), _sort_key(r[5])))
        return [
            {
                "hour": r[0],
                "node": r[1],
                "camera": r[2],
                "rule": r[3],
                "direction": r[4],
                "class": r[5],
                "count": r[6],
            }
            for r in rows
        ]

    def nodes(self) -> list[dict[str, Any]]:
        out = []
        rows = self.conn().execute("SELECT node, state, state_since, last_seen, stats FROM nodes").fetchall()
        for r in sorted(rows, key=lambda r: str(r[0])):  # by code point, whatever the database's collation
            stats = json.loads(r[4]) if r[4] else {}
            cameras = [
                {
                    "camera": cam,
                    "stream_state": c.get("stream_state"),
                    "fps": c.get("fps"),
                    "inference_ms": c.get("inference_ms"),
                    "dropped_frames": c.get("dropped_frames"),
                }
                for cam, c in sorted((stats.get("cameras") or {}).items())
            ]
            out.append(
                {
                    "node": r[0],
                    "state": r[1],
                    "state_since": iso_from_epoch(r[2]),
                    "last_seen": iso_from_epoch(r[3]),
                    "cameras": cameras,
                }
            )
        return out

    def node(self, node: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes() if n["node"] == node), None)

    def audit_log(
        self, limit: int, offset: int, flt: AuditFilter | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first, filtered by actor, action, target (exact) and time."""
        flt = flt or AuditFilter()
        where: list[str] = ["1=1"]
        args: list[Any] = []
        for cond, value in (
            ("actor=?", flt.actor),
            ("action=?", flt.action),
            ("target=?", flt.target),
            ("at_epoch>=?", flt.since),
            ("at_epoch<?", flt.until),
        ):
            if value is not None:
                where.append(cond)
                args.append(value)
        clause = " AND ".join(where)
        conn = self.conn()
        total = int(conn.execute(f"SELECT COUNT(*) FROM audit WHERE {clause}", args).fetchone()[0])
        rows = conn.execute(
            "SELECT id, at_epoch, actor, action, target, detail, remote FROM audit"
            f" WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        items = [
            {
                "id": r[0],
                "at": iso_from_epoch(r[1]),
                "actor": r[2],
                "action": r[3],
                "target": r[4],
                "detail": r[5],
                "remote": r[6],
            }
            for r in rows
        ]
        return items, total
