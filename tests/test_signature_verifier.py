"""The verifier stage (central/verifier.py): signatures checked in worker processes, in arrival order,
by the station's policy; a dead worker loses nothing; the status reaches the API (`sig_status`)."""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, free_port
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import wait_for
from test_central_support import (
    central_config,
    event_topic,
    login,
    make_event,
    publish_all,
    publisher,
    running,
)

from central.ingest import Ack, EventItem, IngestCounters, Item, StatusItem, classify
from central.signatures import SignatureChecker, verify_chunk
from central.verifier import Unverified, Verifier, auto_workers
from edge.transport.signing import Signer

N1 = Signer(Ed25519PrivateKey.generate())
N2 = Signer(Ed25519PrivateKey.generate())
FORGER = Signer(Ed25519PrivateKey.generate())
PREFIX = "roadwatch/v1"


def message(seq: int, node: str, signer: Signer | None) -> tuple[str, bytes]:
    payload = make_event(seq, node=node)
    body = signer.sign(payload) if signer is not None else payload
    return event_topic(payload), json.dumps(body).encode()


def pending(topic: str, raw: bytes, mid: int) -> Unverified:
    item = classify(topic, raw, PREFIX, Ack(1, mid, 1), time.time())
    assert isinstance(item, EventItem), item
    return Unverified(item, raw, topic)


# (node, who signs, expected under reject, expected under flag); None: refused
CASES: list[tuple[str, Signer | None, str | None, str]] = [
    ("n1", N1, "valid", "valid"),
    ("n1", FORGER, None, "invalid"),
    ("n2", N2, "valid", "valid"),
    ("n1", None, None, "unsigned"),
    ("n3", N1, None, "unknown_key"),  # no key registered for n3
]


def run_stage(
    policy: Any, workers: int, copies: int
) -> tuple[list[Item], IngestCounters, list[Ack], Verifier]:
    checker = SignatureChecker({"n1": N1.public_key_b64(), "n2": N2.public_key_b64()}, policy)
    out: queue.Queue[Item] = queue.Queue()
    counters, acked = IngestCounters(), list[Ack]()
    stage = Verifier(checker, out, counters, acked.extend, workers)
    batch: list[Item | Unverified] = []
    for i in range(copies):
        for j, (node, signer, _, _) in enumerate(CASES):
            batch.append(pending(*message(i * 10 + j + 1, node, signer), mid=len(batch)))
        batch.append(StatusItem("n1", "online", time.time(), None))
    try:
        stage.pass_on(batch)
    finally:
        stage.stop()
    return [out.get_nowait() for _ in range(out.qsize())], counters, acked, stage


@pytest.mark.parametrize("policy", ["reject", "flag"])
@pytest.mark.parametrize("workers", [0, 2])
def test_stage_keeps_order_and_applies_the_policy_in_workers_or_here(policy: Any, workers: int) -> None:
    copies = 20  # 100 events: over INLINE_MAX, so with workers they are checked in the pool
    passed, counters, acked, stage = run_stage(policy, workers, copies)
    expected: list[tuple[str, str | None]] = []
    for _ in range(copies):
        outcomes = [(node, reject if policy == "reject" else flag) for node, _, reject, flag in CASES]
        expected += [(node, status) for node, status in outcomes if status is not None]
        expected.append(("status", None))
    got = [(i.row.node, i.row.sig_status) if isinstance(i, EventItem) else ("status", None) for i in passed]
    assert got == expected
    seqs = [i.row.seq for i in passed if isinstance(i, EventItem)]
    assert seqs == sorted(seqs)  # arrival order kept
    refused = {"bad_signature": 2 * copies, "unsigned": copies} if policy == "reject" else {}
    assert counters.snapshot()["rejected"] == refused
    assert len(acked) == sum(refused.values())  # a refused event is acknowledged at once, nothing else
    assert (stage.checked_in_workers, stage.pool_failures) == ((5 * copies, 0) if workers else (0, 0))


def test_a_killed_worker_loses_nothing_and_the_batch_is_checked_here() -> None:
    checker = SignatureChecker({"n1": N1.public_key_b64()}, "reject")
    out: queue.Queue[Item] = queue.Queue()
    stage = Verifier(checker, out, IngestCounters(), lambda acks: None, workers=1)
    stage.start()
    try:
        wait_for(lambda: len(stage.worker_pids()) == 1, 60)
        os.kill(stage.worker_pids()[0], signal.SIGKILL)
        stopping = threading.Event()
        for seq in range(1, 201):
            topic, raw = message(seq, "n1", N1)
            stage.offer(pending(topic, raw, seq).item, raw, topic, stopping)
        wait_for(lambda: out.qsize() == 200, 60)
    finally:
        stage.stop()
    rows = [out.get_nowait() for _ in range(200)]
    assert [r.row.seq for r in rows if isinstance(r, EventItem)] == list(range(1, 201))
    assert {r.row.sig_status for r in rows if isinstance(r, EventItem)} == {"valid"}
    assert stage.pool_failures >= 1 and stage.checked_here >= 1


def test_worker_count_by_cpus() -> None:
    assert [auto_workers(c) for c in (1, 2, 3, 4, 8, 64)] == [0, 1, 2, 3, 4, 4]


@pytest.mark.integration
def test_api_events_carry_the_signature_status(broker: Broker, tmp_path: Path) -> None:
    """Under `flag` the station stores events whose signature did not check out; the API says so."""
    http_port = free_port()
    cfg = central_config(
        tmp_path, broker.port, http_port, signatures={"policy": "flag", "keys": {"n1": N1.public_key_b64()}}
    )
    sent = [message(1, "n1", N1), message(2, "n1", FORGER), message(3, "n1", None), message(4, "n3", N1)]
    ids = [json.loads(raw)["event_id"] for _, raw in sent]
    with running(cfg, http_port) as agg, publisher(broker.port) as pub:
        publish_all(pub, sent)
        wait_for(lambda: agg.writer.stored_events == 4, 20)
        with login(f"http://127.0.0.1:{http_port}", "viewer") as client:
            r = client.get("/api/events", params={"limit": 10})
            assert r.status_code == 200, r.text
            by_id = {e["event_id"]: e["sig_status"] for e in r.json()["items"]}
            detail = [client.get(f"/api/events/{i}").json()["sig_status"] for i in ids]
    expected = ["valid", "invalid", "unsigned", "unknown_key"]
    assert [by_id[i] for i in ids] == expected
    assert detail == expected


def test_a_worker_chunk_never_fails_on_a_bad_payload() -> None:
    keys = SignatureChecker({"n1": N1.public_key_b64()}, "reject").raw_keys
    good = message(1, "n1", N1)[1]
    forged = message(2, "n1", FORGER)[1]
    nan = good.replace(b'"confidence": 0.8', b'"confidence": NaN')  # refused by the aggregator's parser
    assert nan != good
    assert verify_chunk(keys, [b"not json", good, b"[1, 2]", forged, good, nan]) == [
        "invalid",
        "valid",
        "invalid",
        "invalid",
        "valid",
        "invalid",
    ]


# (workers, messages queued behind the first, one more arriving while it waits, expected batch, waits)
FILL_CASES = [
    (1, 0, False, 1, False),  # a lone event is not held back
    (1, 3, False, 4, True),  # under load: waits for more, up to linger_s
    (1, 3, True, 5, True),  # what arrives meanwhile joins the batch
    (1, 600, False, 512, False),  # a full batch goes at once
    (0, 3, False, 4, False),  # no workers: nothing to fill chunks for
]


@pytest.mark.parametrize(("workers", "queued", "late", "size", "waits"), FILL_CASES)
def test_batches_fill_under_load_for_the_workers(
    workers: int, queued: int, late: bool, size: int, waits: bool
) -> None:
    checker = SignatureChecker({"n1": N1.public_key_b64()}, "reject")
    stage = Verifier(checker, queue.Queue(), IngestCounters(), lambda acks: None, workers)
    stage.linger_s = 0.3 if workers else 0.0
    for _ in range(queued):
        stage.inbox.put(StatusItem("n1", "online", 0.0, None))
    if late:
        threading.Timer(0.05, stage.inbox.put, (StatusItem("n1", "offline", 0.0, None),)).start()
    batch: list[Item | Unverified] = [StatusItem("n1", "online", 0.0, None)]
    t0 = time.monotonic()
    stage._fill(batch)
    elapsed = time.monotonic() - t0
    assert len(batch) == size
    assert (elapsed >= 0.3) if waits else (elapsed < 0.15)
