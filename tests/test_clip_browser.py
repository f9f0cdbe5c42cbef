"""The dashboard's "Xem video" button on a real aggregator and browser: the page asks for the clip, a node
(here a plain MQTT client speaking the clip contract) uploads it on `upload_clip`, and the card shows a
playing <video> next to the snapshot; a read-only account gets no button."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import require
from test_dashboard_browser import PREFIX, Site, Tab, browser, card, login, open_tab, site  # noqa: F401

from contract.clips import ClipMeta, split_clip, topic_clip_chunk, topic_clip_meta

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    require(shutil.which("ffmpeg") is not None, "ffmpeg is missing")
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=10",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out.read_bytes()


def test_an_operator_plays_an_alert_clip_on_its_card(
    site: Site,  # noqa: F811
    open_tab: Any,  # noqa: F811
    clip_file: bytes,
) -> None:
    site.pub.node_health("n1", "online", {"gate": {"fps": 5.0, "stream_state": "ok"}})
    asked: list[str] = []

    def on_command(client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        asked.append(body["event_id"])
        sha, chunks = split_clip(clip_file)
        meta = ClipMeta(
            v=1, event_id=body["event_id"], state="ready", sha256=sha, bytes=len(clip_file),
            chunks=len(chunks), duration_s=3.0, start_ts=1.0,
        )  # fmt: skip
        client.publish(topic_clip_meta(PREFIX, "n1", "gate", body["event_id"]), meta.model_dump_json(), qos=1)
        for n, chunk in enumerate(chunks):
            client.publish(topic_clip_chunk(PREFIX, "n1", "gate", body["event_id"], n), chunk, qos=1)

    site.pub.client.message_callback_add(f"{PREFIX}/n1/+/commands/upload_clip", on_command)
    site.pub.client.subscribe(f"{PREFIX}/n1/+/commands/upload_clip", qos=1)
    operator: Tab = open_tab()
    login(operator, "operator")
    viewer: Tab = open_tab()
    login(viewer, "viewer")
    event = site.pub.event("intrusion", camera="gate", classes=("person",), phase="start")
    page = operator.page
    page.wait_for_selector(card(event), timeout=10_000)
    viewer.page.wait_for_selector(card(event), timeout=10_000)
    assert viewer.page.locator(f"{card(event)} button.clip-button").count() == 0
    page.click(f"{card(event)} button.clip-button")
    page.wait_for_selector(f"{card(event)} video.clip", timeout=30_000)
    assert asked == [event["event_id"]]
    src = page.get_attribute(f"{card(event)} video.clip", "src")
    assert src == f"/api/events/{event['event_id']}/clip"
    playable = page.evaluate(
        "document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.640015\"')"
    )
    if playable:  # Chromium builds without H.264 still show the element; the bytes are checked below
        page.wait_for_function(
            f'document.querySelector("{card(event)} video.clip").readyState >= 1', timeout=10_000
        )
        duration = page.evaluate(f'document.querySelector("{card(event)} video.clip").duration')
        assert abs(duration - 3.0) < 0.5
    got = page.request.get(site.url + src)
    assert got.ok and got.headers["content-type"] == "video/mp4" and got.body() == clip_file
    part = page.request.get(site.url + src, headers={"Range": "bytes=0-99"})  # seeking
    assert part.status == 206 and part.body() == clip_file[:100]
    assert operator.errors == [] and viewer.errors == []
