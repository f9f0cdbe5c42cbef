"""Evidence bundles: one event as stored, its snapshot, its signature and its node's public key.

`roadwatch-central export CONFIG EVENT_ID DIR` writes `DIR/<event_id>/` with `event.json` (the payload
exactly as stored, `sig` included), `snapshot.jpg` (when there is one), `signature.txt`,
`public_key.txt` (the node's registered Ed25519 key, base64) and `manifest.json` (sha256 of each file).
`roadwatch-central verify DIR/<event_id>` checks it offline, with nothing but this module: the signature
over the canonical payload with the bundled key, the snapshot against the sha256 the signed payload
declares, and the manifest. The key should also be compared with the one on record for that node
(docs/central.md, "Signed events").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from central.signatures import load_public_key, verify
from central.store import Store

FILES = ("event.json", "snapshot.jpg", "signature.txt", "public_key.txt")


def export_bundle(store: Store, keys: Mapping[str, str], event_id: str, out_dir: Path) -> Path:
    """Write the bundle of one stored event; ValueError when the event is unknown."""
    found = store.evidence(event_id)
    if found is None:
        raise ValueError(f"no stored event {event_id}")
    payload_text, sig_status, sha = found
    payload = json.loads(payload_text)
    bundle = out_dir / event_id
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "event.json").write_text(payload_text, encoding="utf-8")
    if sha is not None:
        path = store.snapshots.path_for(sha)
        if path.exists():
            (bundle / "snapshot.jpg").write_bytes(path.read_bytes())
    if isinstance(payload.get("sig"), str):
        (bundle / "signature.txt").write_text(payload["sig"] + "\n", encoding="ascii")
    key = keys.get(str(payload.get("node")))
    if key is not None:
        (bundle / "public_key.txt").write_text(key + "\n", encoding="ascii")
    manifest = {
        "event_id": event_id,
        "node": payload.get("node"),
        "sig_status_at_arrival": sig_status,
        "files": {
            name: hashlib.sha256((bundle / name).read_bytes()).hexdigest()
            for name in FILES
            if (bundle / name).exists()
        },
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return bundle


def verify_bundle(bundle: Path) -> list[str]:
    """What is wrong with a bundle; an empty list means it is the event its node signed."""
    problems: list[str] = []
    try:
        payload = json.loads((bundle / "event.json").read_text(encoding="utf-8"))
        key = load_public_key((bundle / "public_key.txt").read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        return [f"unreadable bundle: {exc}"]
    status = verify(payload, key)
    if status != "valid":
        problems.append(f"signature {status}")
    declared = payload.get("snapshot")
    snap = bundle / "snapshot.jpg"
    if isinstance(declared, dict) and snap.exists():
        if hashlib.sha256(snap.read_bytes()).hexdigest() != declared.get("sha256"):
            problems.append("snapshot.jpg is not the picture the signed event declares")
    elif snap.exists():
        problems.append("snapshot.jpg present but the signed event declares none")
    try:
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        for name, digest in manifest.get("files", {}).items():
            if name in FILES and hashlib.sha256((bundle / name).read_bytes()).hexdigest() != digest:
                problems.append(f"{name} differs from the manifest")
    except (OSError, ValueError) as exc:
        problems.append(f"manifest: {exc}")
    return problems
