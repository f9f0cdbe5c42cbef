"""A corrupt central store stops the aggregator (exit 2, how to restore); /healthz fails while writes fail."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import Broker, free_port
from support import wait_for
from test_central_support import (
    central_config,
    dumps,
    event_topic,
    make_event,
    publish_all,
    publisher,
    running,
    write_config,
)

from central.ingest import event_row
from central.integrity import StoreCorruptError
from central.store import Store

ROOT = Path(__file__).resolve().parents[1]


def filled_store(tmp: Path, n: int = 3000) -> Path:
    db = tmp / "central.sqlite"
    store = Store(db, tmp / "snapshots")
    now = time.time()
    rows = [event_row(make_event(i), now, now) for i in range(1, n + 1)]
    for i in range(0, n, 500):
        store.insert_events(rows[i : i + 500])
    store.checkpoint()
    store.close()
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)
    return db


def overwrite_mid_file(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek((size // 4096 // 2) * 4096)
        f.write(b"\xa5" * 4096 * 4)


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 3)


DAMAGE: dict[str, Callable[[Path], None]] = {"mid-file": overwrite_mid_file, "truncated": truncate}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_corrupt_store_is_refused_on_opening(tmp_path: Path, damage: str) -> None:
    db = filled_store(tmp_path)
    DAMAGE[damage](db)
    with pytest.raises(StoreCorruptError, match="copy-store"):
        Store(db, tmp_path / "snapshots")


@pytest.mark.integration
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_the_aggregator_exits_2_on_a_corrupt_store_saying_how_to_restore(tmp_path: Path, damage: str) -> None:
    filled_store(tmp_path)
    DAMAGE[damage](tmp_path / "central.sqlite")
    cfg = write_config(tmp_path / "central.yaml", central_config(tmp_path, free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "central", "run", str(cfg)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is corrupt" in done.stderr and "copy-store" in done.stderr and "backup" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.integration
def test_healthz_fails_while_store_writes_fail(broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    cfg = central_config(tmp_path, broker.port)
    base = f"http://127.0.0.1:{port}"
    with running(cfg, http_port=port) as agg, publisher(broker.port) as pub:
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, 10)
        side = sqlite3.connect(tmp_path / "central.sqlite", isolation_level=None)
        side.execute(
            "CREATE TRIGGER failing BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk failing'); END"
        )
        first = make_event(1)
        publish_all(pub, [(event_topic(first), dumps(first))])
        wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 503, 10)
        assert "disk failing" in httpx.get(f"{base}/healthz").json()["detail"]
        side.execute("DROP TRIGGER failing")
        side.close()
        second = make_event(2)
        publish_all(pub, [(event_topic(second), dumps(second))])
        wait_for(lambda: second["event_id"] in set(agg.store.event_ids()), 10)
        assert httpx.get(f"{base}/healthz").status_code == 200
