"""Accounts, password hashes, login sessions and API tokens (the failed-login limit is central/limiter.py).

Password hashes are self-describing strings so the YAML can carry them and the algorithm can change
later: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>` (default) or `pbkdf2_sha256$<iterations>$<salt>$<hash>`.
Comparison is constant-time. Session tokens are random; the store keeps only their sha256 with the
user name and expiry, so an upgrade or a restart logs nobody out and a copy of the database holds no
usable token. A session's role is always the account's role in the current config: removing an account
(or lowering its role) and restarting takes effect on its open sessions at once. Static API tokens are
configured as `sha256$<hex>` because they are long random strings, for which a fast hash is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from central.config import Account, ApiToken, Role
from central.limiter import LoginLimiter
from central.sessions import SessionTable

log = logging.getLogger(__name__)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A scrypt hash string for the YAML (`roadwatch-central hash-password`)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of a password against a hash string; False for malformed hashes."""
    try:
        parts = encoded.split("$")
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, expected = base64.b64decode(parts[4]), base64.b64decode(parts[5])
            got = hashlib.scrypt(
                password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=2**26
            )
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            salt, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.pbkdf2_hmac(
                "sha256", password.encode("utf-8"), salt, int(parts[1]), dklen=len(expected)
            )
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role

    def can(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class LoginLimitedError(Exception):
    """Too many failed logins from this address (for this account or in all); answer 429."""


class Authenticator:
    """Checks logins and bearer tokens; thread-safe (FastAPI runs sync handlers in a pool)."""

    def __init__(
        self,
        accounts: list[Account],
        tokens: list[ApiToken],
        session_ttl_s: float,
        max_failures: int = 5,
        window_s: float = 300.0,
        sessions: SessionTable | None = None,
        max_failures_per_address: int | None = None,
    ) -> None:
        """`max_failures` counts per (account, address); per address over all accounts the limit is
        `max_failures_per_address` (default four times `max_failures`)."""
        self._hashes: dict[str, tuple[str, Role]] = {}
        for account in accounts:
            if account.password is not None:
                if account.password.uses_default():
                    log.warning(
                        "account %s uses the documented demo password; set %s before real use",
                        account.username,
                        account.password.env,
                    )
                encoded = hash_password(account.password.resolve())
            else:
                assert account.password_hash is not None
                encoded = account.password_hash
            self._hashes[account.username] = (encoded, account.role)
        self._tokens = {t.token_hash: Principal(f"token:{t.name}", t.role) for t in tokens}
        self._sessions: dict[str, tuple[Principal, float]] = {}  # cache by token hash
        self._table = sessions
        self.session_ttl_s = session_ttl_s
        per_address = max_failures * 4 if max_failures_per_address is None else max_failures_per_address
        self.limiter = LoginLimiter(max_failures, per_address, window_s)
        self._lock = threading.Lock()
        self._dummy = hash_password("not a password")

    def login(
        self, username: str, password: str, remote: str, now: float | None = None
    ) -> tuple[str, Principal] | None:
        """A new session token for good credentials, else None; raises LoginLimitedError without checking
        the password when this address has had too many failures."""
        now = time.time() if now is None else now
        attempt = self.limiter.reserve(username, remote, now)
        if attempt is None:
            raise LoginLimitedError(username)
        entry = self._hashes.get(username)
        # verify against a dummy hash for unknown users, so timing does not reveal which names exist
        ok = verify_password(password, entry[0] if entry else self._dummy) and entry is not None
        self.limiter.settle(attempt, ok, now)
        if not ok or entry is None:
            return None
        token = new_token()
        principal = Principal(username, entry[1])
        expires = now + self.session_ttl_s
        if self._table is not None:
            self._table.save(hash_token(token), username, now, expires)
        self._cache(hash_token(token), principal, expires, now)
        return token, principal

    def _cache(self, key: str, principal: Principal, expires: float, now: float) -> None:
        with self._lock:
            self._sessions[key] = (principal, expires)
            if len(self._sessions) > 10000:
                self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}

    def logout(self, token: str) -> None:
        key = hash_token(token)
        with self._lock:
            self._sessions.pop(key, None)
        if self._table is not None:
            self._table.delete(key)

    def resolve(self, token: str, now: float | None = None) -> Principal | None:
        """The principal of a session token or a static API token."""
        now = time.time() if now is None else now
        key = hash_token(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                if session[1] > now:
                    return session[0]
                del self._sessions[key]
        static = self._tokens.get(key)
        if static is not None or self._table is None:
            return static
        stored = self._table.lookup(key, now)  # a session from before a restart
        if stored is None:
            return None
        entry = self._hashes.get(stored[0])
        if entry is None:  # the account was removed from the config
            return None
        principal = Principal(stored[0], entry[1])
        self._cache(key, principal, stored[1], now)
        return principal
