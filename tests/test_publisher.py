"""Publisher behaviour that needs no broker, and recovery paths that need one briefly."""

from __future__ import annotations

import getpass
import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_broker, require
from support import wait_for

from common.settings import SecretRef
from edge.config import NodeMqttSettings as MqttSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import OutboxSink, Publisher


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": kind}


def test_reserved_node_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        Publisher("alerts", MqttSettings(), Outbox(tmp_path / "o.sqlite"))


def test_outbox_and_mqtt_prefix_must_agree(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", topic_prefix="other/v1")
    with pytest.raises(ValueError, match="prefix"):
        Publisher("n1", MqttSettings(), outbox)
    Publisher("n1", MqttSettings(topic_prefix="other/v1"), outbox)  # agreeing prefixes are fine


def test_username_other_than_node_id_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Publisher("n1", MqttSettings(username="n2"), Outbox(tmp_path / "o.sqlite"))
    assert any("differs from node id" in r.getMessage() for r in caplog.records)


def test_unreachable_broker_keeps_events_and_stops_quickly(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    publisher = Publisher("n1", MqttSettings(port=free_port(), reconnect_min_s=1, reconnect_max_s=1), outbox)
    publisher.start()
    sink = OutboxSink(outbox, publisher)
    factory = EventFactory("n1", "gate", "UTC", texts=_texts)
    for i in range(3):
        sink.put(factory.make("intrusion", "yard", 1.0e9 + i), None)
    time.sleep(0.5)
    assert not publisher.connected
    assert not publisher.publish_stats({"v": 1})
    t0 = time.monotonic()
    publisher.stop(10)
    assert time.monotonic() - t0 < 3  # nothing to flush to: no point waiting for the timeout
    assert outbox.depth() == 3
    stats = publisher.stats()
    assert stats.sent == 0 and stats.acked == 0 and stats.outbox.depth == 3


@pytest.mark.integration
def test_rejected_publishes_stay_in_the_outbox(tmp_path: Path) -> None:
    """A PUBACK with a failure reason never deletes the row; the event waits for the next start."""
    (tmp_path / "acl").write_text("topic write roadwatch/v1/n1/status\n", encoding="utf-8")
    broker = make_broker(tmp_path, f"acl_file {tmp_path / 'acl'}\nuser {getpass.getuser()}\n")
    broker.start()
    outbox = Outbox(tmp_path / "o.sqlite")
    publisher = Publisher("n1", MqttSettings(port=broker.port), outbox)
    publisher.start()
    try:
        factory = EventFactory("n1", "gate", "UTC", texts=_texts)
        OutboxSink(outbox, publisher).put(factory.make("intrusion", "yard", 1.0e9), b"jpeg")
        assert wait_for(lambda: publisher.stats().rejected == 1, 5)
        assert outbox.depth() == 1 and publisher.stats().acked == 0
    finally:
        publisher.stop(1)
        broker.stop()


@pytest.mark.integration
def test_auth_failure_heals_after_the_retry_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tool = shutil.which("mosquitto_passwd")
    require(tool is not None, "mosquitto_passwd is not installed")
    assert tool is not None
    subprocess.run([tool, "-c", "-b", str(tmp_path / "passwd"), "n1", "right"], check=True)
    broker = make_broker(
        tmp_path, f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\nuser {getpass.getuser()}\n"
    )
    broker.start()
    monkeypatch.setenv("RW_TEST_PW", "wrong")
    settings = MqttSettings(port=broker.port, username="n1", password=SecretRef(env="RW_TEST_PW"))
    outbox = Outbox(tmp_path / "o.sqlite")
    publisher = Publisher("n1", settings, outbox, auth_retry_s=2.0)
    caplog.set_level(logging.INFO, logger="edge.transport.publisher")
    publisher.start()
    try:
        assert wait_for(lambda: publisher.auth_failed, 5)
        monkeypatch.setenv("RW_TEST_PW", "right")  # the operator fixes the secret
        assert wait_for(lambda: publisher.connected, 6)
        assert not publisher.auth_failed
    finally:
        publisher.stop(2)
        broker.stop()
    assert sum(r.levelno >= logging.ERROR for r in caplog.records) == 1
