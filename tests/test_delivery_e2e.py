"""Nothing lost, nothing doubled, end to end: real broker (shipped ACL, persistence, a long autosave),
real aggregator and node processes, SIGKILLs at the worst moments.

A broker acknowledges (PUBACK) and keeps the events for the absent aggregator in memory; killed before its
autosave it loses them. The node still has them (delivery: aggregator) and publishes them again once the
aggregator's watermark does not cover them within the timeout.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, make_secure_broker
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from test_central_support import central_config, write_config

from edge.transport.signing import Signer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
USERS = {"n1": "pw-n1", "aggregator": "pw-agg"}
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "RW_N1_PW": USERS["n1"], "RW_AGG_PW": USERS["aggregator"]}
COUNT = 150


class Station:
    """The broker, the aggregator process and the node process of one scenario."""

    def __init__(self, tmp: Path, signed: bool = False) -> None:
        self.tmp = tmp
        self.key: Path | None = None
        signatures: dict[str, Any] = {"policy": "off"}
        if signed:  # the node signs, the aggregator verifies in a worker process and refuses bad ones
            key = Ed25519PrivateKey.generate()
            self.key = tmp / "n1.key"
            self.key.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
            public = Signer(key).public_key_b64()
            signatures = {"policy": "reject", "keys": {"n1": public}, "workers": 1}
        saved = tmp / "broker"
        saved.mkdir()
        # autosave far away: a SIGKILL loses everything the broker held since it started
        self.broker: Broker = make_secure_broker(
            tmp, USERS, f"persistence true\npersistence_location {saved}/\nautosave_interval 3600\n"
        )
        self.broker.start()
        cfg = central_config(
            tmp,
            self.broker.port,
            mqtt={"username": "aggregator", "password": {"env": "RW_AGG_PW"}},
            signatures=signatures,
        )
        self.config = write_config(tmp / "central.yaml", cfg)
        self.db = tmp / "central.sqlite"
        self.aggregator: subprocess.Popen[bytes] | None = None
        self.node: subprocess.Popen[str] | None = None

    def start_aggregator(self) -> None:
        with (self.tmp / "central.log").open("ab") as log:
            self.aggregator = subprocess.Popen(
                [sys.executable, "-m", "central", "run", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=ENV,
            )  # fmt: skip
        self.wait(lambda: "connected to" in (self.tmp / "central.log").read_text(errors="replace"), 30)

    def stop_aggregator(self, sig: int) -> None:
        assert self.aggregator is not None
        self.aggregator.send_signal(sig)
        self.aggregator.wait(20)
        self.aggregator = None
        (self.tmp / "central.log").write_text("", encoding="utf-8")  # the next start's "connected"

    def kill_broker(self) -> None:
        assert self.broker.proc is not None
        self.broker.proc.kill()
        self.broker.proc.wait()
        self.broker.proc = None

    def start_node(self, count: int) -> None:
        if self.node is not None and self.node.stdout is not None:
            self.node.stdout.close()  # a node process that was killed
        with (self.tmp / "node.log").open("a") as log:
            self.node = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "mqtt_node_proc.py"), "--port", str(self.broker.port),
                 "--db", str(self.tmp / "node.sqlite"), "--count", str(count), "--rate", "300",
                 "--snapshot-bytes", "0", "--username", "n1", "--password-env", "RW_N1_PW",
                 "--delivery", "aggregator", "--ack-timeout", "3", "--drain-timeout", "90",
                 *(("--signing-key", str(self.key)) if self.key is not None else ())],
                stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, env=ENV,
            )  # fmt: skip

    def node_stored(self) -> int:
        """Events the node process has put in its outbox (it prints one line per event)."""
        assert self.node is not None and self.node.stdout is not None
        n = 0
        for line in self.node.stdout:
            if line.startswith("stored "):
                n += 1
                if n == COUNT:
                    return n
        return n

    def sig_statuses(self) -> set[str | None]:
        with sqlite3.connect(self.db, timeout=10) as conn:
            return {r[0] for r in conn.execute("SELECT DISTINCT sig_status FROM events")}

    def stored(self) -> tuple[int, int]:
        """(rows, distinct event ids) in the central store."""
        if not self.db.exists():
            return 0, 0
        with sqlite3.connect(self.db, timeout=10) as conn:
            row = conn.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events").fetchone()
        return int(row[0]), int(row[1])

    @staticmethod
    def wait(predicate: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        for proc in (self.node, self.aggregator):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.node is not None and self.node.stdout is not None:
            self.node.stdout.close()
        self.broker.stop()


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Station]:
    monkeypatch.setenv("RW_AGG_PW", USERS["aggregator"])  # the config check reads the secret
    s = Station(tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def signed_station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Station]:
    monkeypatch.setenv("RW_AGG_PW", USERS["aggregator"])
    s = Station(tmp_path, signed=True)
    try:
        yield s
    finally:
        s.close()


def finish(station: Station) -> None:
    """The node drains (every event confirmed stored by the aggregator) and exits 0; nothing doubled."""
    assert station.node is not None
    assert station.node.wait(120) == 0, (station.tmp / "node.log").read_text(errors="replace")[-3000:]
    assert station.stored() == (COUNT, COUNT)


def test_broker_killed_while_the_aggregator_is_away(station: Station) -> None:
    station.start_aggregator()
    station.stop_aggregator(signal.SIGTERM)  # away; its session was never saved to disk
    station.start_node(COUNT)
    assert station.node_stored() == COUNT
    time.sleep(1.0)  # all PUBACKed by the broker, held for the absent aggregator
    station.kill_broker()
    station.broker.start()
    station.start_aggregator()
    finish(station)


def test_aggregator_killed_mid_burst(station: Station) -> None:
    station.start_aggregator()
    station.start_node(COUNT)
    station.wait(lambda: station.stored()[0] >= 20, 30)
    station.stop_aggregator(signal.SIGKILL)
    assert station.node_stored() == COUNT
    station.start_aggregator()
    finish(station)


def test_aggregator_killed_mid_burst_with_signatures_checked_in_workers(signed_station: Station) -> None:
    """The verifier stage (central/verifier.py) between ingest and writer keeps exactly-once: a SIGKILL
    of the aggregator (and so of its signature workers) mid-burst loses and doubles nothing."""
    station = signed_station
    station.start_aggregator()
    station.start_node(COUNT)
    station.wait(lambda: station.stored()[0] >= 20, 30)
    station.stop_aggregator(signal.SIGKILL)
    assert station.node_stored() == COUNT
    station.start_aggregator()
    finish(station)
    assert station.sig_statuses() == {"valid"}


def test_aggregator_and_broker_killed(station: Station) -> None:
    station.start_aggregator()
    station.start_node(COUNT)
    station.wait(lambda: station.stored()[0] >= 20, 30)
    station.stop_aggregator(signal.SIGKILL)
    assert station.node_stored() == COUNT
    time.sleep(1.0)
    station.kill_broker()
    station.broker.start()
    station.start_aggregator()
    finish(station)


def test_node_restarted_while_aggregator_and_broker_are_killed(station: Station) -> None:
    station.start_aggregator()
    station.stop_aggregator(signal.SIGKILL)
    station.start_node(COUNT)
    assert station.node_stored() == COUNT
    time.sleep(1.0)
    assert station.node is not None
    station.node.kill()  # the node dies with everything PUBACKed and nothing confirmed
    station.node.wait()
    station.kill_broker()
    station.broker.start()
    station.start_aggregator()
    station.start_node(0)  # the same outbox: it publishes what it still holds
    finish(station)
