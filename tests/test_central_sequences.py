"""Clock skew and sequence regressions in central ingest: far-future events refused; a replayed old
sequence number does not reset gap tracking, a node restart is recognised."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import Broker
from support import wait_for
from test_central_support import (
    central_config,
    dumps,
    event_topic,
    make_event,
    publish_all,
    publisher,
    running,
)

from central.ingest import EventItem, classify
from central.store import Store
from contract.validate import Rejection

T0 = 1_796_000_000.0
Mark = tuple[int, float]  # seq, node time offset from T0


def gaps(store: Store) -> list[tuple[int, int, int]]:
    rows = store.conn().execute(
        "SELECT first_seq, last_seq, generation FROM seq_gaps WHERE node='n1' AND resolved_epoch IS NULL"
        " ORDER BY generation, first_seq"
    )
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


RUN = [(i, float(i)) for i in range(1, 501)]  # 500 events, one a second
# (case, marks, open gaps (first, last, generation), generation, replays)
CASES: list[tuple[str, list[Mark], list[tuple[int, int, int]], int, int]] = [
    ("in-order", [(1, 1), (2, 2), (3, 3)], [], 0, 0),
    ("gap", [(1, 1), (2, 2), (5, 5)], [(3, 4, 0)], 0, 0),
    ("late-fill", [(1, 1), (4, 4), (2, 2)], [(3, 3, 0)], 0, 0),
    ("replayed-1", [*RUN, (1, 1), (501, 501)], [], 0, 1),
    ("replayed-middle", [*RUN, (250, 250), (501, 501)], [], 0, 1),
    ("restart-at-1", [*RUN, (1, 600), (2, 601)], [], 1, 0),
    ("restart-first-lost", [*RUN, (3, 600), (4, 601)], [(1, 2, 1)], 1, 0),
    (
        "restart-keeps-old-gap",
        [(1, 1), (2, 2), (6, 6), (1, 60), (2, 61), (3, 62), (4, 63)],
        [(3, 5, 0)],
        1,
        0,
    ),
    ("restart-then-gap", [(1, 1), (2, 2), (1, 60), (4, 61)], [(2, 3, 1)], 1, 0),
    # the first events a broker lost while later ones got through: below the first seen number is a gap,
    # so the storage watermark never covers (and a node never deletes) what was not stored
    ("first-seen-late", [(15, 15), (16, 16)], [(1, 14, 0)], 0, 0),
    ("first-seen-late-then-filled", [(15, 15), *[(i, float(i)) for i in range(1, 15)]], [], 0, 0),
]


def test_watermark_never_covers_numbers_before_the_first_seen(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    store.track_sequences([("n1", 15, T0)], T0 + 1)
    assert store.watermark("n1") == (15, [(1, 14)])
    store.track_sequences([("n1", i, T0 - 20 + i) for i in range(1, 15)], T0 + 2)
    assert store.watermark("n1") == (15, [])
    store.close()


@pytest.mark.parametrize(("marks", "open_gaps", "generation", "replays"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_sequence_tracking(
    tmp_path: Path, marks: list[Mark], open_gaps: list[tuple[int, int, int]], generation: int, replays: int
) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "s")
    for seq, offset in marks:
        store.track_sequences([("n1", seq, T0 + offset)], T0 + offset + 0.5)
    state = store.sequence_state("n1")
    assert state is not None
    assert gaps(store) == open_gaps
    assert (state["generation"], state["replays"]) == (generation, replays)
    store.close()


@pytest.mark.parametrize(("marks", "open_gaps", "generation", "replays"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_sequence_tracking_in_one_batch_matches_one_by_one(
    tmp_path: Path, marks: list[Mark], open_gaps: list[tuple[int, int, int]], generation: int, replays: int
) -> None:
    """The writer's batches take a shortcut for a node's next number; interleaved with another node's
    numbers in one batch, the outcome is the one of tracking each event on its own."""
    mixed = [m for seq, offset in marks for m in (("n1", seq, T0 + offset), ("n2", seq + 1, T0 + offset))]
    one = Store(tmp_path / "one.sqlite", tmp_path / "s1")
    for mark in mixed:
        one.track_sequences([mark], T0 + 1000)
    batch = Store(tmp_path / "batch.sqlite", tmp_path / "s2")
    batch.track_sequences(mixed, T0 + 1000)
    assert gaps(batch) == gaps(one) == open_gaps
    for node in ("n1", "n2"):
        assert batch.sequence_state(node) == one.sequence_state(node)
        assert batch.watermark(node) == one.watermark(node)
    one.close()
    batch.close()


@pytest.mark.parametrize(
    ("ahead_s", "skew_s", "accepted"),
    [(0, 300, True), (-86400, 300, True), (299, 300, True), (301, 300, False), (5, 0, False),
     (253402214399 - T0, 300, False)],
)  # fmt: skip
def test_events_dated_beyond_the_allowed_skew_are_refused(
    ahead_s: float, skew_s: float, accepted: bool
) -> None:
    payload = make_event(1, ts=T0 + ahead_s)
    result = classify(event_topic(payload), dumps(payload), "roadwatch/v1", None, T0, skew_s)
    if accepted:
        assert isinstance(result, EventItem)
        assert result.row.received_epoch == T0 and result.row.ts_epoch == pytest.approx(
            T0 + ahead_s, abs=1e-3
        )
    else:
        assert isinstance(result, Rejection) and result.reason == "clock_skew"


@pytest.mark.integration
def test_far_future_and_replayed_events_on_a_real_aggregator(broker: Broker, tmp_path: Path) -> None:
    cfg = central_config(tmp_path, broker.port, mqtt={"max_clock_skew_s": 60})
    now = time.time()
    regular = [make_event(i, ts=now - 100 + i) for i in range(1, 11)]
    future = make_event(11, ts=253402214399.0)  # 9999-12-31T23:59:59Z
    replay = make_event(2, ts=now - 98)  # an old number again, under a new id
    after = make_event(11, ts=now)
    with running(cfg) as agg, publisher(broker.port) as pub:
        publish_all(pub, [(event_topic(p), dumps(p)) for p in regular])
        wait_for(lambda: agg.store.count_events() == 10, 10)
        publish_all(pub, [(event_topic(p), dumps(p)) for p in (future, replay, after)])
        wait_for(lambda: agg.store.count_events() == 12, 10)
        assert agg.counters.snapshot()["rejected"] == {"clock_skew": 1}
        assert future["event_id"] not in set(agg.store.event_ids())
        assert agg.store.open_gaps() == []  # the replay did not make event 11 look like a gap 3..10
        state = agg.store.sequence_state("n1")
        assert state is not None and (state["max_seq"], state["replays"]) == (11, 1)
        stored = (
            agg.store.conn()
            .execute(
                "SELECT ts_epoch, received_epoch FROM events WHERE event_id=?", (regular[0]["event_id"],)
            )
            .fetchone()
        )
        assert stored[0] == pytest.approx(now - 99, abs=1e-3) and stored[1] >= now  # both times kept
