"""End to end with the real edge side: edge Outbox + Publisher -> Mosquitto -> central -> HTTP API."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Broker, free_port
from support import wait_for
from test_central_support import central_config, login, running

from edge.config import NodeMqttSettings as MqttSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import OutboxSink, Publisher

pytestmark = pytest.mark.integration


def test_event_from_a_real_edge_publisher_is_visible_within_one_second(
    broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    image = np.zeros((120, 160, 3), np.uint8)
    cv2.rectangle(image, (40, 30), (120, 90), (0, 200, 255), -1)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    jpeg = encoded.tobytes()
    settings = MqttSettings(host="127.0.0.1", port=broker.port, client_id="edge-n7")
    outbox = Outbox(tmp_path / "outbox.sqlite", topic_prefix=settings.topic_prefix)
    publisher = Publisher("n7", settings, outbox)
    sink = OutboxSink(outbox, publisher)
    factory = EventFactory("n7", "cho", "Asia/Ho_Chi_Minh")
    event = factory.make(
        "intrusion",
        "san_sau",
        time.time(),
        phase="start",
        classes=("person",),
        track_ids=(5,),
        confidence=0.74,
        box=(40.0, 30.0, 120.0, 90.0),
        measurements={"dwell_s": 3.5},
    )
    with (
        running(central_config(tmp_path, broker.port), http_port=port),
        login(f"http://127.0.0.1:{port}", "viewer") as api,
    ):
        publisher.start()
        try:
            wait_for(lambda: api.get("/api/nodes").json()["items"] != [], 5)  # the node announced itself
            start = time.monotonic()
            sink.put(event, jpeg)
            wait_for(lambda: api.get(f"/api/events/{event.event_id}").status_code == 200, 1.0)
            got = api.get(f"/api/events/{event.event_id}").json()
            assert time.monotonic() - start < 1.0
            assert got["seq"] == 1 and got["kind"] == "intrusion" and got["texts"] == event.texts
            wait_for(lambda: api.get(f"/api/events/{event.event_id}").json()["snapshot_url"] is not None, 2.0)
            url = api.get(f"/api/events/{event.event_id}").json()["snapshot_url"]
            assert api.get(url).content == jpeg
            assert api.get("/api/nodes").json()["items"][0]["state"] == "online"
        finally:
            publisher.stop(timeout=5)
        wait_for(lambda: api.get("/api/nodes").json()["items"][0]["state"] == "stopped", 5)
    outbox.close()
