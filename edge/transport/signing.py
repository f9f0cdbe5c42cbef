"""Signed events: the node signs every event payload with its own Ed25519 key.

An event that police may hand to investigators must be provably the one a node produced. The signature
covers the canonical JSON of the payload without its `sig` key (sorted keys, no spaces, UTF-8), which
includes `snapshot.sha256`, so it binds the picture too. The aggregator verifies it with the node's
registered public key (central/signatures.py, the same canonical form) and keeps it, and
`roadwatch-central verify` checks an exported bundle offline.

The key is a PEM file (`openssl genpkey -algorithm ed25519`), made by the installer and readable only by
the service user. A payload the outbox rewrites (its snapshot dropped by the size policy) is signed again.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.signing import SIG_KEY, canonical


class Signer:
    """Signs event payloads with one node's private key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        """Load a PEM Ed25519 private key; ValueError naming the file when it is not one."""
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"signing key {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"signing key {path}: not an Ed25519 private key")
        return cls(key)

    def public_key_b64(self) -> str:
        """The raw 32-byte public key in base64: what the station registers for this node."""
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the payload with `sig`: the base64 Ed25519 signature of `canonical(payload)`."""
        signed = {k: v for k, v in payload.items() if k != SIG_KEY}
        signed[SIG_KEY] = base64.b64encode(self._key.sign(canonical(signed))).decode("ascii")
        return signed
