"""Gap tracking of each node's event sequence, telling a node restart from a replayed old number.

Every stored edge event carries the node's `seq` (+1 per event, kept across restarts in the outbox). A
jump ahead opens a gap; a late event inside a gap closes that part of it. A number at or below the
highest seen that fills no gap is one of two things:

- a **restart** of the node's counter (a fresh outbox, e.g. after a corrupt one was set aside): its
  events are *newer* (node time) than the newest event of the old counter. The counter's generation goes
  up; the old counter's open gaps stay open, and only gaps of the current generation can be filled;
- a **replay** of an old number (a resent or forged old event under a new id): its time is not newer. It
  is counted (`seq_state.replays`) and changes nothing, so it can no longer reset the tracking and make
  the next regular event look like a gap of hundreds.

A mixin of `Store` (store.py), like the reads (queries.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from central.db import Conn

log = logging.getLogger(__name__)

SeqMark = tuple[str, int, float]  # node, seq, the event's node time (epoch s)


class SequenceSql:
    """Needs `tx()` from Store."""

    def tx(self) -> Any:
        raise NotImplementedError

    def track_sequences(self, seqs: Sequence[SeqMark], now: float) -> None:
        """Record gaps in each node's event sequence and resolve the ones that late events fill."""
        if not seqs:
            return
        with self.tx() as conn:
            _track_batch(conn, seqs, now)

    def sequence_state(self, node: str) -> dict[str, Any] | None:
        """max_seq, max_ts_epoch, generation (restarts seen) and replays of a node."""
        with self.tx() as conn:
            row = conn.execute(
                "SELECT max_seq, max_ts_epoch, generation, replays FROM seq_state WHERE node=?", (node,)
            ).fetchone()
        if row is None:
            return None
        return {"max_seq": int(row[0]), "max_ts_epoch": float(row[1]), "generation": int(row[2]),
                "replays": int(row[3])}  # fmt: skip

    def fill_gaps(self, seqs: Sequence[tuple[str, int]], now: float) -> None:
        """Events received again (already stored): close the gaps they lie in. Their first storing was
        committed but its sequence tracking was not (a crash between the two), else this finds nothing."""
        if not seqs:
            return
        with self.tx() as conn:
            for node, seq in seqs:
                gap = conn.execute(
                    "SELECT g.id, g.first_seq, g.last_seq FROM seq_gaps g JOIN seq_state s ON s.node=g.node"
                    " WHERE g.node=? AND g.generation=s.generation AND g.resolved_epoch IS NULL"
                    " AND g.first_seq<=? AND g.last_seq>=?",
                    (node, seq, seq),
                ).fetchone()
                if gap is not None:
                    _fill(conn, int(gap[0]), int(gap[1]), int(gap[2]), seq, now)

    def watermark(self, node: str) -> tuple[int, list[tuple[int, int]]] | None:
        """(highest stored seq of the node's current counter, open gaps of that counter)."""
        with self.tx() as conn:
            row = conn.execute("SELECT max_seq, generation FROM seq_state WHERE node=?", (node,)).fetchone()
            if row is None:
                return None
            gaps = conn.execute(
                "SELECT first_seq, last_seq FROM seq_gaps WHERE node=? AND generation=?"
                " AND resolved_epoch IS NULL ORDER BY first_seq",
                (node, int(row[1])),
            ).fetchall()
        return int(row[0]), [(int(g[0]), int(g[1])) for g in gaps]

    def sequence_nodes(self) -> list[str]:
        with self.tx() as conn:
            return [str(r[0]) for r in conn.execute("SELECT node FROM seq_state")]


def _track_batch(conn: Conn, seqs: Sequence[SeqMark], now: float) -> None:
    """Track a batch in order. The usual case, a node's next number (top + 1), needs no query: its state
    is kept here and written once per node at the end, instead of a SELECT and an UPDATE per event (most
    of the writer's per-event cost). Anything else flushes that node's state and goes through `_track`."""
    known: dict[str, tuple[int, float]] = {}  # node -> (max_seq, max_ts_epoch) as now in the database
    dirty: dict[str, tuple[int, float]] = {}  # node -> state advanced here, not yet written
    for node, seq, ts in seqs:
        state = dirty.get(node) or known.get(node)
        if state is not None and seq == state[0] + 1:
            dirty[node] = (seq, max(ts, state[1]))
            continue
        _write_state(conn, node, dirty.pop(node, None))
        known[node] = _track(conn, node, seq, ts, now)
    for node, state in dirty.items():
        _write_state(conn, node, state)


def _write_state(conn: Conn, node: str, state: tuple[int, float] | None) -> None:
    if state is not None:
        conn.execute("UPDATE seq_state SET max_seq=?, max_ts_epoch=? WHERE node=?", (*state, node))


def _track(conn: Conn, node: str, seq: int, ts: float, now: float) -> tuple[int, float]:
    """Track one number; returns the node's (max_seq, max_ts_epoch) after it."""
    row = conn.execute(
        "SELECT max_seq, max_ts_epoch, generation FROM seq_state WHERE node=?", (node,)
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO seq_state (node, max_seq, max_ts_epoch, generation, replays) VALUES (?,?,?,0,0)",
            (node, seq, ts),
        )
        if seq > 1:
            # Counters start at 1: numbers below the first one seen are not stored (yet). Without this
            # gap the storage watermark would cover them, and a node whose first events were lost by a
            # broker while later ones got through would delete the lost ones from its outbox.
            conn.execute(
                "INSERT INTO seq_gaps (node, first_seq, last_seq, detected_epoch, generation)"
                " VALUES (?,?,?,?,0)",
                (node, 1, seq - 1, now),
            )
        return seq, ts
    top, top_ts, generation = int(row[0]), float(row[1]), int(row[2])
    if seq > top:
        if seq > top + 1:
            conn.execute(
                "INSERT INTO seq_gaps (node, first_seq, last_seq, detected_epoch, generation)"
                " VALUES (?,?,?,?,?)",
                (node, top + 1, seq - 1, now, generation),
            )
            log.warning("node %s: sequence gap %d..%d", node, top + 1, seq - 1)
        conn.execute(
            "UPDATE seq_state SET max_seq=?, max_ts_epoch=? WHERE node=?", (seq, max(ts, top_ts), node)
        )
        return seq, max(ts, top_ts)
    gap = conn.execute(
        "SELECT id, first_seq, last_seq FROM seq_gaps WHERE node=? AND generation=?"
        " AND resolved_epoch IS NULL AND first_seq<=? AND last_seq>=?",
        (node, generation, seq, seq),
    ).fetchone()
    if gap is not None:
        _fill(conn, int(gap[0]), int(gap[1]), int(gap[2]), seq, now)
        return top, top_ts
    if ts > top_ts:
        log.warning("node %s restarted its event sequence at %d (was at %d)", node, seq, top)
        conn.execute(
            "UPDATE seq_state SET max_seq=?, max_ts_epoch=?, generation=generation+1 WHERE node=?",
            (seq, ts, node),
        )
        if seq > 1:  # the new counter's first events never came
            conn.execute(
                "INSERT INTO seq_gaps (node, first_seq, last_seq, detected_epoch, generation)"
                " VALUES (?,?,?,?,?)",
                (node, 1, seq - 1, now, generation + 1),
            )
        return seq, ts
    log.warning("node %s: event with old sequence number %d (highest %d) counted as a replay", node, seq, top)
    conn.execute("UPDATE seq_state SET replays=replays+1 WHERE node=?", (node,))
    return top, top_ts


def _fill(conn: Conn, gid: int, first: int, last: int, seq: int, now: float) -> None:
    conn.execute("UPDATE seq_gaps SET resolved_epoch=? WHERE id=?", (now, gid))
    for lo, hi in ((first, seq - 1), (seq + 1, last)):
        if lo <= hi:  # the unfilled rest stays open, keeping its detection time
            conn.execute(
                "INSERT INTO seq_gaps (node, first_seq, last_seq, detected_epoch, generation)"
                " SELECT node, ?, ?, detected_epoch, generation FROM seq_gaps WHERE id=?",
                (lo, hi, gid),
            )
