"""The durable state of forwarding in the store: the webhook queue with its dead letters, and the throttle
windows of forwarding rules.

Part of the store layer (with store.py, queries.py, sessions.py, copystore.py): forward.py decides what
to send and how; every SQL statement about it lives here, so both engines run it through one seam
(central/db.py) and the forwarding logic can be read without SQL in the way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.store import Store
from contract.times import iso_from_epoch

ThrottleKey = tuple[str, str, str, str]  # forwarding rule, node, camera, event rule


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """A webhook call that is due."""

    item_id: int
    webhook: str
    body: str
    attempts: int


def enqueue_webhooks(
    store: Store, hooks: Sequence[str], *, rule: str, event_id: str, body: str, now: float
) -> None:
    with store.tx() as conn:
        conn.executemany(
            "INSERT INTO webhook_queue (webhook, rule, event_id, body, state, attempts, next_epoch,"
            " created_epoch, updated_epoch) VALUES (?,?,?,?,'pending',0,?,?,?)",
            [(hook, rule, event_id, body, now, now, now) for hook in hooks],
        )


def due_calls(store: Store, now: float, limit: int) -> list[QueuedCall]:
    """Pending calls whose retry time has come, oldest first."""
    rows = (
        store.conn()
        .execute(
            "SELECT id, webhook, body, attempts FROM webhook_queue"
            " WHERE state='pending' AND next_epoch<=? ORDER BY next_epoch LIMIT ?",
            (now, limit),
        )
        .fetchall()
    )
    return [QueuedCall(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def mark_delivered(store: Store, item_id: int, attempts: int, now: float) -> None:
    with store.tx() as conn:
        conn.execute(
            "UPDATE webhook_queue SET state='delivered', attempts=?, last_error=NULL, updated_epoch=?"
            " WHERE id=?",
            (attempts, now, item_id),
        )


def mark_dead(store: Store, item_id: int, attempts: int, error: str, now: float) -> None:
    with store.tx() as conn:
        conn.execute(
            "UPDATE webhook_queue SET state='dead', attempts=?, last_error=?, updated_epoch=? WHERE id=?",
            (attempts, error, now, item_id),
        )


def mark_retry(store: Store, item_id: int, attempts: int, error: str, next_epoch: float, now: float) -> None:
    with store.tx() as conn:
        conn.execute(
            "UPDATE webhook_queue SET attempts=?, last_error=?, next_epoch=?, updated_epoch=? WHERE id=?",
            (attempts, error, next_epoch, now, item_id),
        )


def deadletters(store: Store, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    conn = store.conn()
    total = int(conn.execute("SELECT COUNT(*) FROM webhook_queue WHERE state='dead'").fetchone()[0])
    rows = conn.execute(
        "SELECT id, webhook, rule, event_id, attempts, last_error, created_epoch, updated_epoch"
        " FROM webhook_queue WHERE state='dead' ORDER BY id DESC LIMIT ? OFFSET ?",
        (limit, offset),
    )
    items = [
        {
            "id": r[0],
            "webhook": r[1],
            "rule": r[2],
            "event_id": r[3],
            "attempts": r[4],
            "last_error": r[5],
            "created_at": iso_from_epoch(r[6]),
            "failed_at": iso_from_epoch(r[7]),
        }
        for r in rows
    ]
    return items, total


def requeue(store: Store, item_id: int) -> bool:
    """Give a dead letter a fresh set of attempts; False when there is no such dead letter."""
    now = time.time()
    with store.tx() as conn:
        cur = conn.execute(
            "UPDATE webhook_queue SET state='pending', attempts=0, next_epoch=?, updated_epoch=?"
            " WHERE id=? AND state='dead'",
            (now, now, item_id),
        )
        return cur.rowcount > 0


def queue_counts(store: Store) -> dict[str, int]:
    rows = store.conn().execute("SELECT state, COUNT(*) FROM webhook_queue GROUP BY state")
    return {r[0]: int(r[1]) for r in rows}


def load_throttles(store: Store) -> dict[ThrottleKey, float]:
    """The throttle windows open before a restart, so a restart does not repeat a held-back alert."""
    rows = store.conn().execute(
        "SELECT forward_rule, node, camera, event_rule, last_epoch FROM forward_throttle"
    )
    return {(str(r[0]), str(r[1]), str(r[2]), str(r[3])): float(r[4]) for r in rows}


def save_throttle(store: Store, key: ThrottleKey, now: float) -> None:
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO forward_throttle (forward_rule, node, camera, event_rule, last_epoch) "
            "VALUES (?,?,?,?,?) ON CONFLICT (forward_rule, node, camera, event_rule) "
            "DO UPDATE SET last_epoch=excluded.last_epoch",
            (*key, now),
        )


def forget_throttles(store: Store, before: float) -> None:
    with store.tx() as conn:
        conn.execute("DELETE FROM forward_throttle WHERE last_epoch < ?", (before,))
