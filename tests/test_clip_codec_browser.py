"""The dashboard tells the operator the truth about a clip's codec and why there is no clip, on a real
aggregator and browser: an H.265 clip comes with a note that most browsers cannot play it and a download
link (an H.264 clip has none); a camera whose codec gives no clips shows the node's reason on the card.
The node is a plain MQTT client speaking the clip contract, as in tests/test_clip_browser.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import require
from test_dashboard_browser import PREFIX, Site, Tab, browser, card, login, open_tab, site  # noqa: F401

from contract.clips import ClipMeta, split_clip, topic_clip_chunk, topic_clip_meta

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ENCODERS = {
    "h264": ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
    "hevc": ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"],
}
WHY = "video codec 'mjpeg' cannot be kept as MP4 clips; use H.264 or H.265"


def _clip(folder: Path, codec: str) -> bytes:
    require(shutil.which("ffmpeg") is not None, "ffmpeg is missing")
    out = folder / f"{codec}.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=10",
         *ENCODERS[codec], "-preset", "ultrafast", "-movflags", "+faststart", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out.read_bytes()


def _answer(site: Site, publish: Callable[[mqtt.Client, str], None]) -> None:  # noqa: F811
    """The node: on `upload_clip`, `publish(client, event_id)`."""

    def on_command(client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        publish(client, json.loads(msg.payload)["event_id"])

    site.pub.node_health("n1", "online", {"gate": {"fps": 5.0, "stream_state": "ok"}})
    site.pub.client.message_callback_add(f"{PREFIX}/n1/+/commands/upload_clip", on_command)
    site.pub.client.subscribe(f"{PREFIX}/n1/+/commands/upload_clip", qos=1)


def _ask(site: Site, open_tab: Any) -> tuple[Tab, str]:  # noqa: F811
    operator: Tab = open_tab()
    login(operator, "operator")
    event = site.pub.event("intrusion", camera="gate", classes=("person",), phase="start")
    operator.page.wait_for_selector(card(event), timeout=10_000)
    operator.page.click(f"{card(event)} button.clip-button")
    return operator, card(event)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_an_h265_clip_says_browsers_may_not_play_it_and_offers_a_download(
    site: Site,  # noqa: F811
    open_tab: Any,  # noqa: F811
    tmp_path: Path,
    codec: str,
) -> None:
    data = _clip(tmp_path, codec)

    def upload(client: mqtt.Client, event_id: str) -> None:
        sha, chunks = split_clip(data)
        meta = ClipMeta(v=1, event_id=event_id, state="ready", sha256=sha, bytes=len(data),
                        chunks=len(chunks), duration_s=2.0, start_ts=1.0)  # fmt: skip
        client.publish(topic_clip_meta(PREFIX, "n1", "gate", event_id), meta.model_dump_json(), qos=1)
        for n, chunk in enumerate(chunks):
            client.publish(topic_clip_chunk(PREFIX, "n1", "gate", event_id, n), chunk, qos=1)

    _answer(site, upload)
    tab, at = _ask(site, open_tab)
    tab.page.wait_for_selector(f"{at} video.clip", timeout=30_000)
    note = tab.page.locator(f"{at} .clip-codec")
    if codec == "h264":
        assert note.count() == 0
    else:
        assert "H.265" in note.inner_text()  # Vietnamese first: "Video H.265 (HEVC): nhiều trình duyệt..."
        href = note.locator("a").get_attribute("href") or ""
        got = tab.page.request.get(site.url + href)
        assert got.ok and got.body() == data and got.headers["x-clip-codec"] == "hevc"
    assert tab.errors == []


def test_a_camera_without_clips_shows_the_nodes_reason_on_the_card(
    site: Site,  # noqa: F811
    open_tab: Any,  # noqa: F811
) -> None:
    def refuse(client: mqtt.Client, event_id: str) -> None:
        meta = ClipMeta(v=1, event_id=event_id, state="unsupported", reason=WHY)
        client.publish(topic_clip_meta(PREFIX, "n1", "gate", event_id), meta.model_dump_json(), qos=1)

    _answer(site, refuse)
    tab, at = _ask(site, open_tab)
    tab.page.locator(f"{at} .clip-state", has_text="mjpeg").wait_for(timeout=30_000)  # CSP: no eval
    text = tab.page.locator(f"{at} .clip-state").inner_text()
    assert "Camera này không hỗ trợ video sự kiện" in text and WHY in text, text
    assert tab.page.locator(f"{at} video.clip").count() == 0 and tab.errors == []
