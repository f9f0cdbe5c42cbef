"""PostgreSQL as the aggregator's store, end to end: config and `check`, then real Mosquitto into a real
PostgreSQL, visible through the API, duplicates stored once. Store-level behaviour on both engines is in
test_central_store.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import Broker, Postgres, free_port, make_postgres, wait_port
from support import wait_for
from test_central_config import _cli
from test_central_support import (
    central_config,
    dumps,
    event_topic,
    login,
    make_event,
    publish_all,
    publisher,
    running,
    write_config,
)

from central.config import validate_config
from common.yamlconf import ConfigError

pytestmark = pytest.mark.integration


def test_a_postgresql_url_is_accepted_with_its_password_from_a_secret(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    cfg = validate_config(
        {
            "store": {
                "url": "postgresql://rw@db.local:5433/roadwatch",
                "password": {"file": str(tmp_path / "pw")},
            }
        }
    )
    assert cfg.store.is_postgres and cfg.store.target == "postgresql://rw@db.local:5433/roadwatch"
    assert cfg.store.password is not None and cfg.store.password.resolve() == "s3cret"
    for store, message in (
        ({"url": "postgresql://rw@db/roadwatch", "password": "s3cret"}, "secrets are not read from the YAML"),
        ({"url": "postgresql://rw@db/roadwatch", "password": {"env": "RW_SURELY_UNSET_VAR"}}, "is not set"),
        ({"url": "postgresql://rw@db/", "password": None}, "expected postgresql://user@host:port/dbname"),
        ({"url": "sqlite:///x.sqlite", "password": {"file": str(tmp_path / "pw")}}, "only a postgresql://"),
    ):
        with pytest.raises(ConfigError, match=message):
            validate_config({"store": {k: v for k, v in store.items() if v is not None}})


def test_check_accepts_a_postgresql_store(tmp_path: Path) -> None:
    path = tmp_path / "central.yaml"
    path.write_text(
        "store:\n  url: postgresql://roadwatch@127.0.0.1:5432/roadwatch\n  password: {env: RW_TEST_DB_PW}\n",
        encoding="utf-8",
    )
    done = _cli("check", str(path), env={**os.environ, "RW_TEST_DB_PW": "x"})
    assert done.returncode == 0 and ": OK (" in done.stdout, done.stderr
    done = _cli("check", str(path), env={k: v for k, v in os.environ.items() if k != "RW_TEST_DB_PW"})
    assert (
        done.returncode == 2
        and "store.password: environment variable RW_TEST_DB_PW is not set" in done.stderr
    )


def test_events_over_mqtt_are_stored_once_in_postgresql_and_served(
    broker: Broker, postgres_server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RW_TEST_DB_PW", postgres_server.password)
    cfg = central_config(
        tmp_path,
        broker.port,
        store={"url": postgres_server.create_database(), "password": {"env": "RW_TEST_DB_PW"}},
    )
    port = free_port()
    now = time.time()
    first, second, last = (make_event(i, ts=now - 10 + i) for i in (1, 2, 3))
    with (
        running(cfg, http_port=port) as agg,
        login(f"http://127.0.0.1:{port}", "op") as api,
        publisher(broker.port) as pub,
    ):
        msgs = [(event_topic(p), dumps(p)) for p in (first, first, second, first, last)]
        publish_all(pub, msgs)  # one topic, QoS 1: `last` is stored after every duplicate was seen
        wait_for(lambda: api.get(f"/api/events/{last['event_id']}").status_code == 200, 5.0)
        assert agg.store.label.startswith("postgresql://") and agg.store.count_events() == 3
        page = api.get("/api/events", params={"limit": 10}).json()
        assert page["total"] == 3
        assert [e["event_id"] for e in page["items"]] == [p["event_id"] for p in (last, second, first)]
        r = api.post(f"/api/events/{first['event_id']}/ack", json={"note": "checked"})
        assert r.status_code == 200 and r.json()["ack"]["by"] == "op"
        assert api.get("/api/events", params={"acknowledged": "true"}).json()["total"] == 1
        assert agg.counters.snapshot()["accepted"]["EventItem"] == 5


def _start(path: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "central", "run", str(path)],
            env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_aggregator_waits_for_a_database_that_comes_up_late(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The station after a power cut: the aggregator starts before PostgreSQL and waits, never exits."""
    root = Path(tempfile.mkdtemp(prefix="roadwatch-pg-late-"))  # readable for the server's user
    late = make_postgres(root)
    monkeypatch.setenv("RW_TEST_DB_PW", late.password)
    port = free_port()
    store = {
        "url": late.url("postgres"),
        "password": {"env": "RW_TEST_DB_PW"},
        "snapshots_dir": str(tmp_path / "s"),
    }
    path = write_config(
        tmp_path / "central.yaml", central_config(tmp_path, broker.port, http_port=port, store=store)
    )
    log = tmp_path / "central.log"
    proc = _start(path, {**os.environ, "RW_TEST_DB_PW": late.password}, log)
    started = False
    try:
        wait_for(lambda: log.read_text(encoding="utf-8").count("unreachable") >= 2, 20)
        assert proc.poll() is None, log.read_text(encoding="utf-8")
        late.start()
        started = True
        wait_port(port, 60)
        with login(f"http://127.0.0.1:{port}", "viewer") as api:
            assert api.get("/api/status").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text(encoding="utf-8")
        if started:
            late.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_refused_database_login_is_a_config_error_not_a_wait(
    broker: Broker, postgres_server: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RW_TEST_DB_PW", "not-the-password")
    store = {
        "url": postgres_server.create_database(),
        "password": {"env": "RW_TEST_DB_PW"},
        "snapshots_dir": str(tmp_path / "s"),
    }
    path = write_config(tmp_path / "central.yaml", central_config(tmp_path, broker.port, store=store))
    log = tmp_path / "central.log"
    proc = _start(path, {**os.environ, "RW_TEST_DB_PW": "not-the-password"}, log)
    assert proc.wait(30) == 2  # systemd does not restart on 2
    assert "store: connection failed" in log.read_text(encoding="utf-8")
    assert "password authentication failed" in log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_events_published_while_postgresql_restarts_are_all_stored(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away under a running aggregator: batches are held unacknowledged and every event
    is stored once it is back; the broker's flow control keeps the rest meanwhile."""
    root = Path(tempfile.mkdtemp(prefix="roadwatch-pg-restart-"))
    pg = make_postgres(root)
    pg.start()
    running_pg = True
    monkeypatch.setenv("RW_TEST_DB_PW", pg.password)
    store = {"url": pg.url("postgres"), "password": {"env": "RW_TEST_DB_PW"}}
    cfg = central_config(tmp_path, broker.port, store=store)
    before = [make_event(i) for i in range(1, 51)]
    during = [make_event(i) for i in range(51, 151)]
    try:
        with running(cfg) as agg, publisher(broker.port) as pub:
            publish_all(pub, [(event_topic(p), dumps(p)) for p in before])
            wait_for(lambda: agg.writer.stored_events == 50, 10)
            pg.stop()
            running_pg = False
            publish_all(pub, [(event_topic(p), dumps(p)) for p in during])
            wait_for(lambda: agg.writer.errors >= 2, 10)  # it is holding a batch, not dropping it
            pg.start()
            running_pg = True
            wait_for(lambda: agg.writer.stored_events == 150, 30)
            assert set(agg.store.event_ids()) == {p["event_id"] for p in before + during}
    finally:
        if running_pg:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)
