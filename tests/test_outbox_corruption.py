"""A corrupt outbox file is moved aside, a fresh one starts, the loss is logged and counted; the node runs.

Real SQLite files damaged the way SD cards and full disks damage them: a page overwritten mid-file, the
file cut short, the header gone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from mqtt_node_proc import Receiver

from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.outbox_check import integrity_problem

ROOT = Path(__file__).resolve().parents[1]
PAGE = 4096


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": kind}


def filled_outbox(path: Path, n: int = 300) -> None:
    factory = EventFactory("n1", "gate", "UTC", texts=_texts)
    with Outbox(path) as outbox:
        for i in range(n):
            outbox.put(factory.make("intrusion", "yard", 1795878000.0 + i, track_ids=(i,)), os.urandom(700))


def overwrite_mid_file(path: Path) -> None:
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as f:  # a run of pages in the middle, as a lost flash block looks
        f.seek((pages // 2) * PAGE)
        f.write(b"\xa5" * PAGE * 4)


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 3)


def wipe_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\x00" * 100)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "mid-file": overwrite_mid_file,
    "truncated": truncate,
    "no-header": wipe_header,
}


def test_a_sound_outbox_passes_and_keeps_its_events(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    filled_outbox(path, 20)
    assert integrity_problem(path) is None
    with Outbox(path) as outbox:
        assert outbox.recovery is None and outbox.depth() == 20 and outbox.stats().recovered == 0


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_corrupt_outbox_is_moved_aside_and_a_fresh_one_starts(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.sqlite"
    filled_outbox(path)
    original = path.read_bytes()
    DAMAGE[damage](path)
    assert integrity_problem(path) is not None
    caplog.set_level(logging.ERROR, logger="edge.transport.outbox_check")
    with Outbox(path) as outbox:
        assert outbox.recovery is not None
        moved = outbox.recovery.moved_to
        assert moved.parent == tmp_path and moved.name.startswith("o.sqlite.corrupt-")
        assert outbox.depth() == 0 and outbox.stats().recovered == 1
        factory = EventFactory("n1", "gate", "UTC", texts=_texts)
        seq = outbox.put(factory.make("intrusion", "yard", 1795879000.0), b"jpeg")
        # the old meta page survives a damaged middle, so numbering goes on instead of restarting
        assert seq == (301 if damage == "mid-file" else 1)
    assert moved.stat().st_size > 0 and moved.read_bytes() != original  # kept for salvage, not deleted
    assert integrity_problem(path) is None
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1 and str(path) in errors[0] and str(moved) in errors[0]
    with Outbox(path) as again:  # the count survives restarts, and a sound file is not moved again
        assert again.recovery is None and again.stats().recovered == 1 and again.depth() == 1


@pytest.mark.integration
@pytest.mark.parametrize("damage", ["mid-file", "truncated"])
def test_a_node_process_with_a_corrupt_outbox_keeps_running_and_delivers(
    broker: Broker, tmp_path: Path, damage: str
) -> None:
    db = tmp_path / "node.sqlite"
    filled_outbox(db)
    DAMAGE[damage](db)
    rx = Receiver(broker.port)
    assert rx.subscribed.wait(5)
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "mqtt_node_proc.py"), "--port", str(broker.port),
             "--db", str(db), "--count", "5", "--drain-timeout", "20"],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "drained depth=0" in done.stdout
        assert "is corrupt" in done.stderr and str(db) in done.stderr
        assert rx.wait_for(lambda: len(rx.event_ids()) == 5, 10)
    finally:
        rx.close()
    assert len(list(tmp_path.glob("node.sqlite.corrupt-*"))) == 1
