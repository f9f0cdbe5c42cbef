"""Event clips across codecs end to end on real parts (node process, Mosquitto, aggregator process): an
H.265 RTSP camera's alert clip arrives, decodes, and the station says it is H.265 (not playable in most
browsers); an MJPEG camera keeps detecting while its clips are off, and the operator's clip request is
answered `unsupported` with the node's reason, which the station shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Broker, require
from test_clip_codecs import make_camera, make_hevc_camera, make_keyframeless_camera
from test_clip_e2e import EDGE, FILE_CAMERA, RTSP_CAMERA, _fetch_and_check_a_clip, _get
from test_rtsp import RtspCamera
from test_system_e2e import ROOT, _api, site  # noqa: F401  (site is the aggregator fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_clip_of_an_alert_from_an_h265_rtsp_camera(
    site: tuple[Broker, str, subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
    shared_dir: Path,
) -> None:
    """rtsp-server-perl relays the camera's own H.265 (copied, as a camera sends it); the node records and
    cuts it, the MP4 that arrives decodes and lasts pre_s + post_s, and the station says its codec."""
    for tool in ("rtsp-server-perl", "ffmpeg"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (scripts/install_system_deps.sh)")
    video = shared_dir / "videos" / "intersection_cctv.mp4"
    hevc = make_hevc_camera(video, tmp_path / "hevc.mp4", seconds=30.0, vf="fps=10")
    camera = RtspCamera(hevc, tmp_path, encoder=["-c:v", "copy"])
    camera.start()
    try:
        event_id = _fetch_and_check_a_clip(site, tmp_path, shared_dir, camera.url, RTSP_CAMERA)
    finally:
        camera.stop()
    url = site[1]
    token = _api(url, "/api/login", body={"username": "admin", "password": "e2e-pass"})["token"]
    state = _api(url, f"/api/events/{event_id}/clip", token, body={})
    assert state["state"] == "ready" and state["codec"] == "hevc" and state["plays_in_browser"] is False


def _still_detecting(url: str, token: str) -> None:
    """The node's latest stats (every second) show the camera streaming and analysed, clips off or not."""
    deadline = time.monotonic() + 20
    while True:
        nodes = {n["node"]: n for n in _api(url, "/api/nodes", token)["items"]}
        cams = {c["camera"]: c for c in (nodes.get("e2e-node") or {}).get("cameras", [])}
        cam = cams.get("junction", {})
        if cam.get("stream_state") == "ok" and float(cam.get("fps") or 0) > 0:
            return
        assert time.monotonic() < deadline, nodes
        time.sleep(0.5)


def test_an_mjpeg_camera_detects_and_its_clip_request_says_why_there_is_none(
    site: tuple[Broker, str, subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
    shared_dir: Path,
) -> None:
    broker, url, _ = site
    video = shared_dir / "videos" / "intersection_cctv.mp4"
    camera = make_camera(video, tmp_path / "mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "5"], 20.0, "fps=10")
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(
        EDGE.format(data=shared_dir, port=broker.port, outbox=tmp_path / "outbox.sqlite",
                    clips=tmp_path / "node-clips", camera=camera, source_options=FILE_CAMERA, pre=1.0, post=1.0),
        encoding="utf-8",
    )  # fmt: skip
    log_path = tmp_path / "edge.log"
    with log_path.open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", str(cfg)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        token = _api(url, "/api/login", body={"username": "admin", "password": "e2e-pass"})["token"]
        event = None
        deadline = time.monotonic() + 90
        while event is None:  # detection works on MJPEG: an intrusion alert arrives
            items = _api(url, "/api/events?kind=intrusion", token)["items"]
            event = next((e for e in items if e["phase"] in ("start", "instant")), None)
            assert node.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(encoding="utf-8")[-3000:]
            time.sleep(0.5)
        asked = _api(url, f"/api/events/{event['event_id']}/clip", token, body={})
        assert asked["state"] in ("requested", "pending", "unsupported"), asked
        deadline = time.monotonic() + 30
        while True:  # answered with the reason, not left to time out
            status, body = _get(f"{url}/api/events/{event['event_id']}/clip", token)
            assert status == 404, status
            if b'"unsupported"' in body:
                break
            assert time.monotonic() < deadline, body[:300]
            time.sleep(0.5)
        assert b"mjpeg" in body and b"H.264" in body, body[:300]
        _still_detecting(url, token)
    finally:
        node.terminate()
        assert node.wait(timeout=30) == 0, log_path.read_text(encoding="utf-8")[-3000:]
    text = log_path.read_text(encoding="utf-8")
    off = [line for line in text.splitlines() if "clips off" in line]
    assert len(off) == 1 and "camera junction" in off[0] and "mjpeg" in off[0], off
    assert "Traceback" not in text


def test_a_file_camera_without_a_decodable_keyframe_is_refused_at_start(
    tmp_path: Path, shared_dir: Path
) -> None:
    """A file is checked before the node starts: a clear config error (exit 2, no restart loop)."""
    camera = make_keyframeless_camera(shared_dir / "videos" / "intersection_cctv.mp4", tmp_path)
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(
        EDGE.format(data=shared_dir, port=1, outbox=tmp_path / "outbox.sqlite", clips=tmp_path / "node-clips",
                    camera=camera, source_options=FILE_CAMERA, pre=1.0, post=1.0),
        encoding="utf-8",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "edge", "run", str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (
        done.returncode == 2
        and "cameras.junction.source" in done.stderr
        and "cannot be decoded" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_an_rtsp_camera_without_a_decodable_keyframe_is_named_and_the_node_runs_on(
    site: tuple[Broker, str, subprocess.Popen[bytes]],  # noqa: F811
    tmp_path: Path,
    shared_dir: Path,
) -> None:
    """Nothing of this live stream decodes: the node stays up, says once why the camera has no clips, and
    the station sees the camera's stream state rather than nothing."""
    for tool in ("rtsp-server-perl", "ffmpeg"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (scripts/install_system_deps.sh)")
    broker, url, _ = site
    stream = make_keyframeless_camera(shared_dir / "videos" / "intersection_cctv.mp4", tmp_path)
    camera = RtspCamera(stream, tmp_path, encoder=["-c:v", "copy", "-copyinkf"])
    camera.start()
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(
        EDGE.format(data=shared_dir, port=broker.port, outbox=tmp_path / "outbox.sqlite",
                    clips=tmp_path / "node-clips", camera=camera.url, source_options=RTSP_CAMERA, pre=1.0,
                    post=1.0),
        encoding="utf-8",
    )  # fmt: skip
    log_path = tmp_path / "edge.log"
    with log_path.open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", str(cfg)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        token = _api(url, "/api/login", body={"username": "admin", "password": "e2e-pass"})["token"]
        deadline = time.monotonic() + 60
        while "no decodable keyframe" not in log_path.read_text(encoding="utf-8"):
            assert node.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(encoding="utf-8")[-3000:]
            time.sleep(0.5)
        nodes = {n["node"]: n for n in _api(url, "/api/nodes", token)["items"]}
        cams = {c["camera"]: c for c in nodes["e2e-node"]["cameras"]}
        assert nodes["e2e-node"]["state"] == "online" and cams["junction"]["stream_state"] != "ok", cams
        assert node.poll() is None
    finally:
        node.terminate()
        camera.stop()
        assert node.wait(timeout=30) == 0, log_path.read_text(encoding="utf-8")[-3000:]
    text = log_path.read_text(encoding="utf-8")
    off = [line for line in text.splitlines() if "clips off" in line]
    assert len(off) == 1 and "camera junction" in off[0] and "1-2 s" in off[0], off
    assert "Traceback" not in text
