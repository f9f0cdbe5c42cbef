"""Verifying the nodes' event signatures (the signing side is edge/transport/signing.py).

Each node signs the canonical JSON of its event payload without `sig` (sorted keys, separators `,` and
`:`, UTF-8) with its own Ed25519 key; the payload includes the snapshot's sha256, so the signature covers
the picture too. The station registers each node's public key (`signatures.keys`, base64 of the raw 32
bytes) and chooses what happens to an event that is unsigned, signed by an unknown node or badly signed:
`reject` (counted as `unsigned` / `bad_signature`), `flag` (stored, with its status kept beside it) or
`off` (not checked). The signature is stored inside the payload, so an export carries it.

The canonical form is defined once, in contract/signing.py; a contract test signs on the edge and
verifies here. At a high rate the checks run in worker processes (central/verifier.py); `verify_chunk`
is what they run, so it takes and returns only plain bytes and strings.

Verification uses libsodium through PyNaCl (the PyCA project beside `cryptography`, which the nodes sign
with): on the station's x86 CPU its Ed25519 check took 90-100 us against 130-150 us for `cryptography`'s
(docs/benchmarks.md, "Central aggregator"), and the check is most of what signed ingest adds.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from typing import Any, Literal

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from contract.signing import SIG_KEY, canonical
from contract.validate import decode_json

SigStatus = Literal["valid", "unsigned", "unknown_key", "invalid"]


def load_public_key(b64: str) -> VerifyKey:
    """A node's public key from base64 of its 32 raw bytes; ValueError otherwise."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from exc
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return VerifyKey(raw)


def verify(payload: Mapping[str, Any], key: VerifyKey | None) -> SigStatus:
    """How the payload's signature stands against the node's key."""
    sig = payload.get(SIG_KEY)
    if not isinstance(sig, str):
        return "unsigned"
    if key is None:
        return "unknown_key"
    try:
        key.verify(canonical(payload), base64.b64decode(sig, validate=True))
    except (BadSignatureError, binascii.Error, ValueError, TypeError):
        return "invalid"
    return "valid"


def verify_chunk(keys: Mapping[str, bytes], payloads: list[bytes]) -> list[SigStatus]:
    """Verify raw event messages against their nodes' raw public keys (run in a worker process).

    Takes the message bytes, not parsed payloads: parsing and canonicalising here keeps that work off
    the aggregator's GIL too, and bytes cost almost nothing to send to a worker."""
    parsed = {node: _public_key(raw) for node, raw in keys.items()}
    out: list[SigStatus] = []
    for payload in payloads:
        try:  # the aggregator's own parser: the worker checks the very object the aggregator stores
            data = decode_json(payload)
            node = data.get("node") if isinstance(data, dict) else None
            out.append(verify(data, parsed.get(str(node))) if isinstance(data, dict) else "invalid")
        except (ValueError, TypeError, AttributeError):  # validated before; still, never fail the chunk
            out.append("invalid")
    return out


@functools.lru_cache(maxsize=1024)
def _public_key(raw: bytes) -> VerifyKey:
    """A worker parses each node's key once, not once per chunk (a chunk may hold a handful of events)."""
    return VerifyKey(raw)


class SignatureChecker:
    """The station's keys and policy; `check` verifies in the calling thread, `decide` applies the policy
    to a status verified elsewhere."""

    def __init__(self, keys: Mapping[str, str], policy: Literal["reject", "flag", "off"]) -> None:
        self.keys = {node: load_public_key(b64) for node, b64 in keys.items()}
        self.raw_keys = {node: base64.b64decode(b64) for node, b64 in keys.items()}
        self.policy = policy

    @property
    def verifies(self) -> bool:
        """Whether any Ed25519 check can happen: checked, and at least one node's key registered."""
        return self.policy != "off" and bool(self.keys)

    def check(self, payload: Mapping[str, Any]) -> tuple[SigStatus | None, str | None]:
        """(status to store or None when not checked, rejection reason or None)."""
        if self.policy == "off" or (self.policy == "flag" and not self.keys):
            return None, None
        return self.decide(verify(payload, self.keys.get(str(payload.get("node")))))

    def decide(self, status: SigStatus) -> tuple[SigStatus | None, str | None]:
        """The policy for a verified status: (status to store, rejection reason or None).

        Under `flag` with no node key registered the station checks nothing it could vouch for, so it
        stores no status: otherwise every event of a station that has not set up signing yet would wear
        an "unsigned" marker on the dashboard, and the marker would stop meaning anything."""
        if self.policy == "off" or (self.policy == "flag" and not self.keys):
            return None, None
        if status == "valid" or self.policy == "flag":
            return status, None
        return status, "unsigned" if status == "unsigned" else "bad_signature"
