"""Event clips end to end on real parts: a node reading an H.264 camera (a file played in real time, or a
real RTSP server fed by ffmpeg) raises an intrusion, an operator asks for its clip through the API, the
node uploads it in chunks over a real Mosquitto, the aggregator process verifies and stores it, and the
MP4 served back decodes, lasts pre_s + post_s (+/-1 s) and holds the event."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import pytest
from conftest import Broker, make_h264_camera, require
from test_rtsp import RtspCamera
from test_system_e2e import ROOT, _api, site  # noqa: F401  (site is the aggregator fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PRE_S, POST_S = 3.0, 4.0

EDGE = """\
node_id: e2e-node
model: {{path: "{data}/models/yolox_nano.onnx", intra_op_threads: 1}}
mqtt: {{host: 127.0.0.1, port: {port}, stats_interval_s: 1}}
outbox: {{path: "{outbox}"}}
clip_store: {{path: "{clips}"}}
metrics: {{enabled: false}}
cameras:
  - id: junction
    source: "{camera}"
{source_options}
    detect_fps: 3
    reference_size: [640, 480]
    zones:
      everywhere: {{points: [[0, 0], [640, 0], [640, 480], [0, 480]]}}
    clips: {{enabled: true, kinds: [intrusion], pre_s: {pre}, post_s: {post}}}
    rules:
      - {{kind: intrusion, name: no-entry, zone: everywhere, classes: [person, car, motorcycle], min_observations: 2}}
"""


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """The intersection clip as an IP camera sends it: H.264, a keyframe every second."""
    out = tmp_path_factory.mktemp("cam") / "junction.mp4"
    return make_h264_camera(shared_dir / "videos" / "intersection_cctv.mp4", out)


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00")).timestamp()


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


FILE_CAMERA = "    loop: true\n    realtime: true"
RTSP_CAMERA = "    rtsp_transport: udp"  # rtsp-server-perl serves RTP over UDP


def test_an_operator_fetches_and_plays_the_clip_of_an_alert(
    site: tuple[Broker, str, subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
    shared_dir: Path,
    camera_file: Path,
) -> None:
    _fetch_and_check_a_clip(site, tmp_path, shared_dir, str(camera_file), FILE_CAMERA)


def test_the_clip_of_an_alert_from_an_rtsp_camera(
    site: tuple[Broker, str, subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
    shared_dir: Path,
    camera_file: Path,
) -> None:
    """The issue's done-when: the node reads a real RTSP server (H.264 over RTP, re-encoded live by
    ffmpeg with a keyframe every second), both for detection and for its clip ring."""
    for tool in ("rtsp-server-perl", "ffmpeg"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (scripts/install_system_deps.sh)")
    camera = RtspCamera(camera_file, tmp_path)
    camera.start()
    try:
        _fetch_and_check_a_clip(site, tmp_path, shared_dir, camera.url, RTSP_CAMERA)
    finally:
        camera.stop()


def _ring_armed(segment_list: Path, node: subprocess.Popen[bytes], log_path: Path) -> float:
    """The wall time from which an event has pre_s of recorded video before it: the ring starts when the
    camera first answers (an RTSP publisher may announce its stream seconds after the server listens),
    and its first finished segment is listed about a segment after that."""
    deadline = time.monotonic() + 60
    while not (segment_list.exists() and segment_list.read_text(encoding="utf-8").strip()):
        assert node.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
        assert time.monotonic() < deadline, "the clip ring never started"
        time.sleep(0.2)
    return time.time() + PRE_S + 0.5


def _fetch_and_check_a_clip(
    site: tuple[Broker, str, subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
    shared_dir: Path,
    source: str,
    source_options: str,
) -> str:
    """Returns the id of the event whose clip was fetched and checked."""
    broker, url, _ = site
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(
        EDGE.format(
            data=shared_dir,
            port=broker.port,
            outbox=tmp_path / "outbox.sqlite",
            clips=tmp_path / "node-clips",
            camera=source,
            source_options=source_options,
            pre=PRE_S,
            post=POST_S,
        ),
        encoding="utf-8",
    )
    log_path = tmp_path / "edge.log"
    with log_path.open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", str(cfg)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    armed = _ring_armed(tmp_path / "node-clips" / "ring" / "junction" / "segments.csv", node, log_path)
    try:
        token = _api(url, "/api/login", body={"username": "admin", "password": "e2e-pass"})["token"]
        deadline = time.monotonic() + 90
        event = None
        while event is None:  # the first intrusion alert, once the node has recorded a few seconds
            items = _api(url, "/api/events?kind=intrusion", token)["items"]
            event = next((e for e in items if e["phase"] in ("start", "instant") and _ts(e) > armed), None)
            assert node.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, "no intrusion alert"
            time.sleep(0.5)
        event_id = event["event_id"]
        asked = _api(url, f"/api/events/{event_id}/clip", token, body={})
        assert asked["state"] in ("requested", "pending", "receiving", "ready"), asked
        deadline = time.monotonic() + 60
        while True:
            status, body = _get(f"{url}/api/events/{event_id}/clip", token)
            if status == 200:
                break
            assert status == 404, (status, body[:300])
            assert time.monotonic() < deadline, (body[:300], log_path.read_text(encoding="utf-8")[-3000:])
            time.sleep(0.5)
        state = _api(url, f"/api/events/{event_id}/clip", token, body={})  # stored: not fetched again
        assert state["state"] == "ready" and state["bytes"] == len(body)
    finally:
        node.terminate()
        assert node.wait(timeout=30) == 0, log_path.read_text(encoding="utf-8")[-3000:]
    clip = tmp_path / "got.mp4"
    clip.write_bytes(body)
    cap = cv2.VideoCapture(str(clip))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    duration = frames / 10.0
    assert abs(duration - (PRE_S + POST_S)) <= 1.0, frames
    assert abs(state["duration_s"] - (PRE_S + POST_S)) <= 1.0, state
    event_ts = _ts(event)
    assert state["start_epoch"] <= event_ts <= state["start_epoch"] + state["duration_s"], (state, event_ts)
    audit = _api(url, "/api/audit", token)["items"]
    assert any(a["action"] == "view_clip" and a["target"] == event_id for a in audit)
    assert any(a["action"] == "request_clip" and a["target"] == event_id for a in audit)
    return str(event_id)
