"""Login sessions in the store, keyed by the sha256 of their token (part of the store layer: its SQL).

Only the hash is kept, with the user name and expiry, so a copy of the database holds no usable token and
an upgrade or a restart logs nobody out. The role is never stored: it comes from the config at each start.
"""

from __future__ import annotations

from central.store import Store


class SessionTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, token_hash: str, username: str, now: float, expires: float) -> None:
        with self.store.tx() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_epoch <= ?", (now,))
            conn.execute(
                "INSERT INTO sessions (token_hash, username, created_epoch, expires_epoch) VALUES (?,?,?,?)",
                (token_hash, username, now, expires),
            )

    def lookup(self, token_hash: str, now: float) -> tuple[str, float] | None:
        """(username, expiry) of a live session."""
        row = (
            self.store.conn()
            .execute(
                "SELECT username, expires_epoch FROM sessions WHERE token_hash=? AND expires_epoch > ?",
                (token_hash, now),
            )
            .fetchone()
        )
        return None if row is None else (str(row[0]), float(row[1]))

    def delete(self, token_hash: str) -> None:
        with self.store.tx() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash=?", (token_hash,))
