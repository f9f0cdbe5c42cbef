"""Hostile input: >= 10,000 generated bad payloads interleaved with valid ones over a real broker.

The aggregator must stay up, store every valid event exactly once (including valid events whose text
looks like SQL), and count every bad message as rejected.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from support import wait_for
from test_central_support import (
    PREFIX,
    central_config,
    dumps,
    event_topic,
    make_event,
    publish_all,
    publisher,
    running,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_BAD = 10_000
SQL = ["'; DROP TABLE events; --", "1 OR 1=1", '" UNION SELECT * FROM audit --', "x'); DELETE FROM nodes; --"]


def _topic(p: dict[str, Any]) -> str:
    return f"{PREFIX}/n1/gate/events/line_crossing"


def _mutated(rng: random.Random, seq: int, change: Callable[[dict[str, Any]], Any]) -> tuple[str, bytes]:
    p = make_event(seq)
    change(p)
    return _topic(p), json.dumps(p, allow_nan=True).encode("utf-8")


def _bad_message(rng: random.Random, i: int) -> tuple[str, bytes]:
    seq = 100_000 + i
    family = i % 16
    if family == 0:  # truncated JSON
        raw = dumps(make_event(seq))
        return _topic({}), raw[: rng.randrange(1, len(raw) - 1)]
    if family == 1:  # wrong types
        field, value = rng.choice(
            [
                ("seq", "7"),
                ("seq", 1.5),
                ("seq", True),
                ("confidence", "high"),
                ("classes", {"car": 1}),
                ("track_ids", ["a"]),
                ("box", [1, 2, 3]),
                ("node", 5),
                ("ts", 12345),
                ("texts", ["vi"]),
                ("measurements", [1, 2]),
                ("snapshot", "yes"),
                ("phase", "middle"),
            ]
        )
        return _mutated(rng, seq, lambda p: p.__setitem__(field, value))
    if family == 2:  # huge strings
        return _mutated(rng, seq, lambda p: p.__setitem__("rule", "x" * rng.randint(1025, 20_000)))
    if family == 3:  # huge arrays
        return _mutated(rng, seq, lambda p: p.__setitem__("track_ids", list(range(rng.randint(65, 5000)))))
    if family == 4:  # NaN and infinities
        value = rng.choice([float("nan"), float("inf"), float("-inf")])
        return _mutated(rng, seq, lambda p: p.__setitem__("confidence", value))
    if family == 5:  # unknown kinds
        return _mutated(
            rng,
            seq,
            lambda p: p.__setitem__("kind", rng.choice(["ufo", "LINE_CROSSING", "", "node_offline"])),
        )
    if family == 6:  # unknown versions
        return _mutated(rng, seq, lambda p: p.__setitem__("v", rng.choice([0, 2, "1", None, 1.5, True])))
    if family == 7:  # SQL-looking strings where the contract forbids them
        field = rng.choice(["event_id", "node", "camera"])
        return _mutated(rng, seq, lambda p: p.__setitem__(field, rng.choice(SQL)))
    if family == 8:  # invalid UTF-8
        raw = dumps(make_event(seq)).replace(b"north_line", b"north\xff\xfeline")
        return _topic({}), raw
    if family == 9:  # binary on the event topic
        return _topic({}), rng.randbytes(rng.randint(1, 2000))
    if family == 10:  # over 64 KiB
        return _topic({}), b'{"v":1,"pad":"' + b"a" * 70_000 + b'"}'
    if family == 11:  # not an object
        return _topic({}), rng.choice([b"[]", b"1", b'"event"', b"null", b"true", b"[" * 5000])
    if family == 12:  # missing fields
        return _mutated(rng, seq, lambda p: p.pop(rng.choice(["event_id", "seq", "ts", "rule", "snapshot"])))
    if family == 13:  # unknown extra fields
        return _mutated(rng, seq, lambda p: p.__setitem__("injected", "1; DROP TABLE events"))
    if family == 14:  # topic says another camera / kind
        p = make_event(seq)
        return f"{PREFIX}/n1/other/events/line_crossing", dumps(p)
    # deep nesting and bad snapshot digests
    return _mutated(
        rng, seq, lambda p: p.__setitem__("snapshot", {"topic": "t", "sha256": "ABC", "bytes": 1})
    )


def test_ten_thousand_bad_payloads_never_stop_ingest(broker: Broker, tmp_path: Path) -> None:
    rng = random.Random(20261128)
    good: list[dict[str, Any]] = []
    messages: list[tuple[str, bytes]] = []
    for i in range(N_BAD):
        messages.append(_bad_message(rng, i))
        if i % 10 == 0:
            p = make_event(len(good) + 1)
            if len(good) % 5 == 0:  # valid events may carry SQL-looking text: stored verbatim
                p["rule"] = rng.choice(SQL)
                p["texts"] = {"vi": rng.choice(SQL), "en": "Robert'); DROP TABLE students;--"}
            good.append(p)
            messages.append((event_topic(p), dumps(p)))
    messages += [(event_topic(p), dumps(p)) for p in good[:50]]  # re-deliveries: stored once
    with running(central_config(tmp_path, broker.port)) as agg, publisher(broker.port) as pub:
        publish_all(pub, messages)
        wait_for(
            lambda: (
                agg.counters.snapshot()["rejected_total"] >= N_BAD and agg.writer.stored_events >= len(good)
            ),
            60,
        )
        late = make_event(len(good) + 1)  # still up and ingesting
        publish_all(pub, [(event_topic(late), dumps(late))])
        wait_for(lambda: agg.store.get_event(late["event_id"]) is not None, 5)
        counts = agg.counters.snapshot()
        assert counts["rejected_total"] == N_BAD, counts
        assert counts["accepted"]["EventItem"] == len(good) + 50 + 1
        assert agg.writer.errors == 0
        stored = set(agg.store.event_ids())
        assert stored == {p["event_id"] for p in [*good, late]}
        sql_event = agg.store.get_event(good[0]["event_id"])
        assert (
            sql_event is not None
            and sql_event["rule"] == good[0]["rule"]
            and sql_event["texts"] == good[0]["texts"]
        )
        reasons = set(counts["rejected"])
        assert {
            "not_json",
            "invalid",
            "unknown_kind",
            "unknown_version",
            "not_utf8",
            "too_large",
            "non_finite",
            "not_object",
            "topic_mismatch",
        } <= reasons, reasons
