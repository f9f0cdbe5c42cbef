"""The failed-login limiter: atomic, and keyed so that nobody can lock the real admin out.

Two limits apply to every attempt: failed logins per (account, address) and failed logins per address
over all accounts. The account alone is never a key: with "5 bad guesses for admin from anywhere lock
admin", anyone on the network could keep the commune's admin out. An attacker on one address gets
`per_account` guesses per account and `per_address` in all per window; the admin on another address is
not affected.

Checking and counting are one step: `reserve` counts an attempt as in flight under the lock before its
password is checked (a scrypt check takes tens of milliseconds), so 100 parallel logins from one address
try at most the limit's number of passwords instead of all passing the check before any failure lands.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

MAX_KEYS = 10000  # beyond this, keys whose window has passed are forgotten


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved login attempt; hand it back to `settle` once the password is checked."""

    keys: tuple[str, str]


class LoginLimiter:
    def __init__(self, per_account: int, per_address: int, window_s: float) -> None:
        self.window_s = window_s
        self._limits = (per_account, per_address)
        self._failures: dict[str, deque[float]] = {}
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def reserve(self, username: str, remote: str, now: float) -> Attempt | None:
        """An attempt to check a password, or None when a limit is reached (nothing is counted then)."""
        keys = (f"user:{username}@{remote}", f"addr:{remote}")
        with self._lock:
            for key, limit in zip(keys, self._limits, strict=True):
                if self._recent(key, now) + self._pending.get(key, 0) >= limit:
                    return None
            for key in keys:
                self._pending[key] = self._pending.get(key, 0) + 1
        return Attempt(keys)

    def settle(self, attempt: Attempt, ok: bool, now: float) -> None:
        """Count a failure, or clear the (account, address) failures after a good login."""
        with self._lock:
            for key in attempt.keys:
                left = self._pending.get(key, 0) - 1
                if left > 0:
                    self._pending[key] = left
                else:
                    self._pending.pop(key, None)
            if ok:
                self._failures.pop(attempt.keys[0], None)
                return
            for key in attempt.keys:
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > MAX_KEYS:
                horizon = now - self.window_s
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > horizon}

    def _recent(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and times[0] < now - self.window_s:
            times.popleft()
        return len(times)
