"""Signed events: the node signs (edge/transport/signing.py), the station verifies with the node's key
(central/signatures.py) by policy and keeps the signature; an exported bundle verifies offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, require
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import wait_for
from test_central_support import (
    central_config,
    publish_all,
    publisher,
    running,
    write_config,
)

from central.ingest import EventItem, classify
from central.signatures import SignatureChecker, load_public_key, verify
from contract.validate import Rejection
from edge.config import OutboxSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.signing import Signer

ROOT = Path(__file__).resolve().parents[1]
KEY = Signer(Ed25519PrivateKey.generate())
OTHER = Signer(Ed25519PrivateKey.generate())
JPEG = b"\xff\xd8" + bytes(range(256)) * 4


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": "Xe máy đi vào", "vi": f"{kind} {rule}"}


def signed_payload(tmp: Path, signer: Signer = KEY, node: str = "n1") -> tuple[bytes, bytes]:
    """(payload, topic) of a real event stored by a real outbox with a snapshot, signed by `signer`."""
    factory = EventFactory(node, "gate", "Asia/Ho_Chi_Minh", texts=_texts)
    event = factory.make("line_crossing", "north", time.time(), classes=("motorcycle",), track_ids=(7,),
                         measurements={"speed_kmh": 31.25, "direction": "in"})  # fmt: skip
    with Outbox(tmp / f"{node}-{id(signer)}.sqlite", sign=signer.sign) as outbox:
        outbox.put(event, JPEG)
        item = outbox.pending(1)[0]
    return item.payload, item.topic.encode()


def test_what_the_edge_signs_the_station_verifies(tmp_path: Path) -> None:
    payload, _ = signed_payload(tmp_path)
    data = json.loads(payload)
    key = load_public_key(KEY.public_key_b64())
    assert verify(data, key) == "valid"
    assert verify(data, load_public_key(OTHER.public_key_b64())) == "invalid"
    assert verify(data, None) == "unknown_key"
    assert verify({k: v for k, v in data.items() if k != "sig"}, key) == "unsigned"
    for field, value in (
        ("camera", "yard"),
        ("seq", 2),
        ("snapshot", None),
        ("ts", "2026-01-01T00:00:00.000Z"),
    ):
        assert verify({**data, field: value}, key) == "invalid", field  # the snapshot digest is covered


def test_a_payload_rewritten_by_the_outbox_is_signed_again(tmp_path: Path) -> None:
    factory = EventFactory("n1", "gate", "UTC", texts=_texts)
    with Outbox(tmp_path / "o.sqlite", OutboxSettings(max_mb=0.01), sign=KEY.sign) as outbox:
        for i in range(8):  # over the budget: the oldest snapshots are dropped, their events rewritten
            outbox.put(factory.make("intrusion", "yard", time.time(), track_ids=(i,)), JPEG * 2)
        items = outbox.pending(100)
    rewritten = [json.loads(i.payload) for i in items if i.snapshot is None]
    assert rewritten and all(p["snapshot"] is None for p in rewritten)
    key = load_public_key(KEY.public_key_b64())
    assert all(verify(json.loads(i.payload), key) == "valid" for i in items)


@pytest.mark.parametrize(
    ("policy", "who", "expected"),
    [("reject", "n1", "valid"), ("reject", "other-key", "bad_signature"), ("reject", "unsigned", "unsigned"),
     ("reject", "n2", "bad_signature"), ("flag", "other-key", "invalid"), ("flag", "unsigned", "unsigned"),
     ("flag", "n2", "unknown_key"), ("off", "other-key", None)],
)  # fmt: skip
def test_station_policy(tmp_path: Path, policy: Any, who: str, expected: str | None) -> None:
    signer = OTHER if who == "other-key" else KEY
    payload, topic = signed_payload(tmp_path, signer, node="n2" if who == "n2" else "n1")
    if who == "unsigned":
        payload = json.dumps({k: v for k, v in json.loads(payload).items() if k != "sig"}).encode()
    checker = SignatureChecker({"n1": KEY.public_key_b64()}, policy)
    result = classify(topic.decode(), payload, "roadwatch/v1", None, time.time(), 300, checker)
    if expected in ("bad_signature", "unsigned") and policy == "reject":
        assert isinstance(result, Rejection) and result.reason == expected
    else:
        assert isinstance(result, EventItem) and result.row.sig_status == expected


@pytest.mark.parametrize(
    ("policy", "who", "expected"),
    [("flag", "n1", None), ("flag", "unsigned", None), ("reject", "unsigned", "unsigned")],
)  # fmt: skip
def test_a_station_without_keys_flags_nothing(
    tmp_path: Path, policy: Any, who: str, expected: str | None
) -> None:
    """No key registered: `flag` stores no status (the dashboard would mark every event otherwise);
    `reject` still refuses what it cannot check."""
    payload, topic = signed_payload(tmp_path, KEY, node="n1")
    if who == "unsigned":
        payload = json.dumps({k: v for k, v in json.loads(payload).items() if k != "sig"}).encode()
    result = classify(
        topic.decode(), payload, "roadwatch/v1", None, time.time(), 300, SignatureChecker({}, policy)
    )
    if policy == "reject":
        assert isinstance(result, Rejection) and result.reason == expected
    else:
        assert isinstance(result, EventItem) and result.row.sig_status is None


def test_a_signing_key_made_by_openssl_loads_and_a_wrong_file_is_a_clear_error(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed")
    assert openssl is not None
    key = tmp_path / "node.key"
    subprocess.run([openssl, "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    signer = Signer.from_file(key)
    assert verify(signer.sign({"v": 1}), load_public_key(signer.public_key_b64())) == "valid"
    (tmp_path / "bad.key").write_text("not a key", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.key"):
        Signer.from_file(tmp_path / "bad.key")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


@pytest.mark.integration
def test_signed_events_end_to_end_with_export_and_offline_verify(broker: Broker, tmp_path: Path) -> None:
    cfg = central_config(
        tmp_path, broker.port, signatures={"policy": "reject", "keys": {"n1": KEY.public_key_b64()}}
    )
    good, topic = signed_payload(tmp_path)
    data = json.loads(good)
    forged = json.dumps({**data, "event_id": "0" * 8 + data["event_id"][8:], "camera": "gate"}).encode()
    unsigned = json.dumps({k: v for k, v in data.items() if k not in ("sig", "event_id")} | {
        "event_id": "1" * 8 + data["event_id"][8:]}).encode()  # fmt: skip
    snap_topic = data["snapshot"]["topic"]
    with running(cfg) as agg, publisher(broker.port) as pub:
        publish_all(pub, [(snap_topic, JPEG), (topic.decode(), good), (topic.decode(), forged),
                          (topic.decode(), unsigned)])  # fmt: skip
        wait_for(lambda: sum(agg.counters.snapshot()["rejected"].values()) == 2, 10)
        wait_for(lambda: agg.store.evidence(data["event_id"]) is not None, 10)
        assert agg.counters.snapshot()["rejected"] == {"bad_signature": 1, "unsigned": 1}
        stored = agg.store.evidence(data["event_id"])
        assert stored is not None and stored[1] == "valid" and json.loads(stored[0])["sig"] == data["sig"]
        wait_for(lambda: agg.store.evidence(data["event_id"])[2] is not None, 10)  # type: ignore[index]
    config = write_config(tmp_path / "central.yaml", cfg)
    done = run_cli("export", str(config), data["event_id"], str(tmp_path / "evidence"))
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "evidence" / data["event_id"]
    assert {p.name for p in bundle.iterdir()} == {
        "event.json", "snapshot.jpg", "signature.txt", "public_key.txt", "manifest.json"}  # fmt: skip
    assert run_cli("verify", str(bundle)).returncode == 0
    tampered = tmp_path / "tampered"
    changes: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("snapshot.jpg", lambda b: b[:-1] + b"\x00"),
        ("event.json", lambda b: b.replace(b'"gate"', b'"yard"')),
    ]
    for name, change in changes:
        shutil.rmtree(tampered, ignore_errors=True)
        shutil.copytree(bundle, tampered)
        (tampered / name).write_bytes(change((tampered / name).read_bytes()))
        bad = run_cli("verify", str(tampered))
        assert bad.returncode == 1 and "OK" not in bad.stdout, name


# what the station's check (libsodium) says of a signature or key gone wrong; the node signs with
# `cryptography`, so the valid row also shows the two libraries agree
MALFORMED: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("as signed", {}, None, "valid"),
    ("short signature", {"sig": "eHh4eHh4eHh4eA=="}, None, "invalid"),
    ("not base64", {"sig": "@@@"}, None, "invalid"),
    ("empty signature", {"sig": ""}, None, "invalid"),
    ("field changed", {"seq": 2}, None, "invalid"),
    ("all-zero key", {}, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "invalid"),
    ("no key", {}, "", "unknown_key"),
]


@pytest.mark.parametrize(("case", "change", "key_b64", "expected"), MALFORMED)
def test_malformed_signatures_and_keys_are_invalid(
    case: str, change: dict[str, Any], key_b64: str | None, expected: str
) -> None:
    payload = {**KEY.sign({"node": "n1", "seq": 1, "texts": {"vi": "Xe máy đi vào"}}), **change}
    key = None if key_b64 == "" else load_public_key(key_b64 or KEY.public_key_b64())
    assert verify(payload, key) == expected, case
