"""The station's clip assembly (central/clipfetch.py) over a real SQLite store: order, duplicates, a bad
digest, a chunk flood and the per-node quota, the wrong node, and what is (never) served half-way."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Postgres
from test_central_support import make_event

from central.clipfetch import ClipAssembler, ClipFiles, ClipReceiver, expire_clips
from central.ingest import event_row
from central.store import Store
from contract.clips import ClipMeta, parse_clip_topic, split_clip, topic_clip_chunk, topic_clip_meta

P = "roadwatch/v1"
CHUNK = 1024
T0 = 1_795_000_000.0


@dataclass
class Bench:
    store: Store
    asm: ClipAssembler
    event_id: str

    def meta(self, data: bytes, node: str = "n1", **over: object) -> bytes:
        sha, chunks = split_clip(data, CHUNK)
        fields: dict[str, object] = dict(
            v=1, event_id=self.event_id, state="ready", sha256=sha, bytes=len(data), chunks=len(chunks),
            chunk_bytes=CHUNK, duration_s=15.0, start_ts=T0 - 5,
        )  # fmt: skip
        fields.update(over)
        return ClipMeta.model_validate(fields).model_dump_json().encode()

    def send(self, index: int | None, payload: bytes, node: str = "n1") -> str:
        topic = (
            topic_clip_meta(P, node, "gate", self.event_id)
            if index is None
            else topic_clip_chunk(P, node, "gate", self.event_id, index)
        )
        parsed = parse_clip_topic(topic, P)
        assert parsed is not None
        return self.asm.message(parsed, payload, T0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    if request.param == "sqlite":
        store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    else:
        pg: Postgres = request.getfixturevalue("postgres_server")
        store = Store(pg.create_database(), tmp_path / "snaps", pg.password)
    payload = make_event(1, node="n1", camera="gate", ts=T0)
    store.insert_events([event_row(payload, T0, T0 + 0.1)])
    store.clip_requested(payload["event_id"], "n1", T0)
    asm = ClipAssembler(ClipFiles(tmp_path / "clips"), store, quota_bytes=10 * CHUNK)
    yield Bench(store, asm, payload["event_id"])
    store.close()


DATA = random.Random(7).randbytes(5 * CHUNK + 100)  # 6 chunks, the last one short
_, CHUNKS = split_clip(DATA, CHUNK)


@pytest.mark.parametrize(
    ("order", "last"),
    [
        ([0, 1, 2, 3, 4, 5], "stored"),
        ([5, 3, 1, 0, 2, 4], "stored"),  # out of order
        ([0, 0, 1, 1, 2, 3, 4, 5], "stored"),  # duplicates (QoS 1 redelivery)
        ([0, 1, 2, 3, 4], "chunk"),  # one missing: nothing stored
    ],
)
def test_chunks_in_any_order_make_the_clip_once(bench: Bench, order: list[int], last: str) -> None:
    assert bench.send(None, bench.meta(DATA)) == "meta"
    outcomes = [bench.send(i, CHUNKS[i]) for i in order]
    assert outcomes[-1] == last
    row = bench.store.clip(bench.event_id)
    assert row is not None
    if last == "stored":
        assert outcomes.count("stored") == 1 and row.state == "ready" and row.bytes == len(DATA)
        assert row.sha256 is not None and bench.asm.files.path_for(row.sha256).read_bytes() == DATA
        assert not list(bench.asm.files.partial.iterdir())
    else:
        assert row.state == "receiving" and row.sha256 is None
        assert not list(bench.asm.files.root.glob("*/*.mp4"))  # nothing half-stored is servable


@pytest.mark.parametrize(
    ("case", "outcome"),
    [
        ("bad_sha", "bad_sha"),
        ("long_chunk", "bad_chunk"),
        ("index_beyond", "bad_chunk"),
        ("over_quota", "over_quota"),
        ("wrong_node", "wrong_node"),
        ("chunk_before_meta", "no_meta"),
        ("garbage_meta", "bad_meta"),
        ("not_requested", "not_requested"),
    ],
)
def test_bad_deliveries_are_refused_and_counted(bench: Bench, case: str, outcome: str) -> None:
    got: str
    if case == "bad_sha":
        bench.send(None, bench.meta(DATA, sha256="0" * 64))
        got = [bench.send(i, c) for i, c in enumerate(CHUNKS)][-1]
    elif case in ("long_chunk", "index_beyond"):
        bench.send(None, bench.meta(DATA))
        got = bench.send(0, CHUNKS[0] + b"x") if case == "long_chunk" else bench.send(6, CHUNKS[5])
    elif case == "over_quota":
        big = bytes(11 * CHUNK)
        got = bench.send(None, bench.meta(big))
    elif case == "wrong_node":
        got = bench.send(None, bench.meta(DATA), node="n2")
    elif case == "chunk_before_meta":
        got = bench.send(0, CHUNKS[0])
    elif case == "garbage_meta":
        got = bench.send(None, b"{not json")
    else:
        bench.store.clip_stored(bench.event_id, "n1", "a" * 64, 1, 1.0, T0, T0)  # already stored
        got = bench.send(None, bench.meta(DATA))
    assert got == outcome and bench.asm.counts[outcome] >= 1
    assert not list(bench.asm.files.root.glob("*/*.mp4"))
    row = bench.store.clip(bench.event_id)
    assert row is not None and (row.state == "ready") == (case == "not_requested")


def test_a_repeated_upload_resumes_and_states_are_recorded(bench: Bench) -> None:
    bench.send(None, bench.meta(DATA))
    for i in (0, 1, 2):
        bench.send(i, CHUNKS[i])
    assert bench.send(None, bench.meta(DATA)) == "meta"  # the node sends again after a cut uplink
    assert [bench.send(i, CHUNKS[i]) for i in range(6)][-1] == "stored"
    other = make_event(2, node="n1", camera="gate", ts=T0)
    bench.store.insert_events([event_row(other, T0, T0 + 0.1)])
    bench.store.clip_requested(other["event_id"], "n1", T0)
    bench.event_id = other["event_id"]
    pending = ClipMeta(v=1, event_id=other["event_id"], state="pending", reason="post_s").model_dump_json()
    assert bench.send(None, pending.encode()) == "state"
    row = bench.store.clip(other["event_id"])
    assert row is not None and (row.state, row.reason) == ("pending", "post_s")


def test_partials_expire_and_the_receiver_refuses_foreign_topics(bench: Bench) -> None:
    bench.send(None, bench.meta(DATA))
    assert bench.asm.partial_bytes("n1") == len(DATA)
    assert bench.asm.sweep(T0 + 10_000) == 1 and bench.asm.partial_bytes("n1") == 0
    assert not list(bench.asm.files.partial.iterdir())
    rx = ClipReceiver(bench.asm, P, queue_max=1)
    assert not rx.offer(f"{P}/n1/gate/clips/x/meta", b"")
    assert rx.offer(topic_clip_meta(P, "n1", "gate", bench.event_id), b"{}")
    assert not rx.offer(topic_clip_meta(P, "n1", "gate", bench.event_id), b"{}")  # queue full
    assert bench.asm.counts["bad_topic"] == 1 and bench.asm.counts["queue_full"] == 1


def test_retention_expires_old_clips_and_deletes_their_files(bench: Bench) -> None:
    bench.send(None, bench.meta(DATA))
    assert [bench.send(i, c) for i, c in enumerate(CHUNKS)][-1] == "stored"
    row = bench.store.clip(bench.event_id)
    assert row is not None and row.sha256 is not None
    path = bench.asm.files.path_for(row.sha256)
    assert expire_clips(bench.store, bench.asm.files, T0 - 1, T0 + 10) == 0 and path.is_file()  # young
    assert expire_clips(bench.store, bench.asm.files, T0 + 1, T0 + 10) == 1
    row = bench.store.clip(bench.event_id)
    assert row is not None and (row.state, row.sha256) == ("expired", None) and not path.exists()
    marked = bench.store.conn().execute(
        "SELECT clip_epoch FROM media_expired WHERE event_id=?", (bench.event_id,)
    )
    assert marked.fetchone()[0] == T0 + 10
    assert bench.asm.files.path_for("a" * 64).name == "a" * 64 + ".mp4"
    with pytest.raises(ValueError):
        bench.asm.files.path_for("../x")
