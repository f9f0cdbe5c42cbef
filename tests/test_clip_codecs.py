"""Event clips across camera codecs, on real ffmpeg-made cameras and the node's real recorder: H.265 is
kept and cut like H.264 (and the clip says it is H.265, which most browsers cannot play); a codec an MP4
clip cannot carry (MJPEG) or a stream without a decodable keyframe turns that camera's clips off with one
clear log line naming the camera, and a clip request answers `unsupported` with the reason at once."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import pytest
from conftest import require

from edge.capture.clips import Clip, ClipStore, probe_codec
from edge.capture.clipwriter import ClipRequest, ClipWorker
from edge.capture.eventclips import EventClips
from edge.capture.recorder import ClipRecorder, RecorderSettings

pytestmark = [pytest.mark.integration]
SCALE = "scale=320:240,fps=10"


def make_camera(
    source: Path, out: Path, codec_args: list[str], seconds: float = 12.0, vf: str = SCALE
) -> Path:
    """`source` as a camera would send it, re-encoded with `codec_args` (10 fps, no audio)."""
    require(shutil.which("ffmpeg") is not None, "ffmpeg is missing")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-t", f"{seconds:g}", "-i", str(source), "-vf", vf, *codec_args,
         "-an", str(out)],
        check=True, timeout=180,
    )  # fmt: skip
    return out


def make_hevc_camera(source: Path, out: Path, seconds: float = 12.0, vf: str = SCALE) -> Path:
    """H.265 with a keyframe every second, tagged `hvc1` as cameras' MP4 recordings are."""
    args = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=10:min-keyint=10:log-level=error",
            "-tag:v", "hvc1"]  # fmt: skip
    return make_camera(source, out, args, seconds, vf)


def make_keyframeless_camera(source: Path, folder: Path) -> Path:
    """H.264 whose IDR slices were removed (NAL type 5): every frame refers to a picture that never came,
    as after a camera whose keyframes are lost; ffmpeg and OpenCV decode nothing from it."""
    raw = make_camera(source, folder / "nokey.h264", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
                      "-bsf:v", "filter_units=remove_types=5", "-f", "h264"])  # fmt: skip
    out = folder / "nokey.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-r", "10", "-i", str(raw), "-c", "copy", "-copyinkf", "-f", "mpegts",
         str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out


def frames_of(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    return frames


def _record(source: Path, folder: Path, no_keyframe_s: float = 15.0) -> ClipRecorder:
    settings = RecorderSettings(str(source), live=False, keep_s=40.0, no_keyframe_s=no_keyframe_s)
    rec = ClipRecorder("gate", settings, folder)
    rec.start()
    return rec


def _wait_state(rec: ClipRecorder, state: str, timeout_s: float = 30.0) -> None:
    deadline = time.time() + timeout_s
    while rec.state != state and time.time() < deadline:
        time.sleep(0.2)
    assert rec.state == state, (rec.state, rec.message)


@pytest.mark.slow
def test_an_h265_camera_gives_a_decodable_clip_that_says_it_is_h265(shared_dir: Path, tmp_path: Path) -> None:
    camera = make_hevc_camera(shared_dir / "videos" / "intersection_cctv.mp4", tmp_path / "hevc.mp4")
    rec = _record(camera, tmp_path / "ring")
    store = ClipStore(tmp_path / "clips", 10**9, 3600.0)
    worker = ClipWorker({"gate": rec}, store)
    clips = EventClips({"gate": rec}, worker, {})
    try:
        _wait_state(rec, "recording")
        time.sleep(3.5)
        event_ts = time.time()
        worker.request(ClipRequest("ev-h265", "gate", event_ts, 3.0, 4.0))
        written: list[Clip] = []
        deadline = time.time() + 30
        while not written and time.time() < deadline:
            written = worker.step()
            time.sleep(0.3)
    finally:
        rec.stop()
    assert written, worker.failures
    clip = written[0]
    assert rec.codec == "hevc" and probe_codec(clip.path) == "hevc"
    assert abs(clip.duration_s - 7.0) <= 1.0 and clip.start <= event_ts <= clip.start + clip.duration_s
    assert abs(frames_of(clip.path) - 70) <= 12  # decodes (10 fps)
    found = clips.lookup("gate", "ev-h265")
    assert found.state == "ready" and found.path == clip.path


@pytest.mark.parametrize(
    ("encoding", "why"),
    [
        (["-c:v", "mjpeg", "-q:v", "5", "-f", "avi"], "'mjpeg'"),
        (["-c:v", "mpeg4", "-g", "10", "-f", "avi"], "'mpeg4'"),
    ],
)
def test_a_codec_mp4_clips_cannot_carry_turns_clips_off_with_the_reason(
    shared_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, encoding: list[str], why: str
) -> None:
    camera = make_camera(shared_dir / "videos" / "intersection_cctv.mp4", tmp_path / "cam.avi", encoding, 4)
    assert frames_of(camera) == 40  # detection reads it as it reads any camera (OpenCV decodes it)
    caplog.set_level(logging.INFO, logger="edge.capture")
    rec = _record(camera, tmp_path / "ring")
    worker = ClipWorker({"gate": rec}, ClipStore(tmp_path / "clips", 10**9, 3600.0))
    clips = EventClips({"gate": rec}, worker, {})
    try:
        _wait_state(rec, "unsupported", 20.0)
        worker.request(ClipRequest("ev-1", "gate", time.time() - 20, 1.0, 1.0))
        assert worker.step() == [] and worker.failed == 1
        found = clips.lookup("gate", "ev-1")
    finally:
        rec.stop()
    assert found.state == "unsupported" and why in found.reason and "H.264" in found.reason
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "camera gate" in errors[0] and why in errors[0], errors


def test_a_stream_without_a_decodable_keyframe_turns_clips_off_with_the_reason(
    shared_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    camera = make_keyframeless_camera(shared_dir / "videos" / "intersection_cctv.mp4", tmp_path)
    assert probe_codec(camera) == "h264" and frames_of(camera) == 0
    caplog.set_level(logging.INFO, logger="edge.capture")
    rec = _record(camera, tmp_path / "ring", no_keyframe_s=3.0)
    worker = ClipWorker({"gate": rec}, ClipStore(tmp_path / "clips", 10**9, 3600.0))
    clips = EventClips({"gate": rec}, worker, {})
    try:
        worker.request(ClipRequest("ev-2", "gate", time.time(), 1.0, 1.0))
        assert clips.lookup("gate", "ev-2").state == "pending"  # until post_s has passed
        _wait_state(rec, "no_keyframe", 20.0)
        started = time.monotonic()
        assert worker.step() == [] and worker.failed == 1  # at once, not after the worker's give-up time
        assert time.monotonic() - started < 2.0
        time.sleep(2.0)
        assert rec.state == "no_keyframe"  # still watching in case a keyframe comes, not restarted
        found = clips.lookup("gate", "ev-2")
    finally:
        rec.stop()
    assert found.state == "unsupported" and "keyframe" in found.reason and "1-2 s" in found.reason
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "camera gate" in errors[0] and "keyframe" in errors[0], errors


@pytest.mark.slow
def test_clips_come_back_by_themselves_when_keyframes_come(
    shared_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """12 s without a keyframe, then H.264 with one every second (MPEG-TS joins byte by byte)."""
    video = shared_dir / "videos" / "intersection_cctv.mp4"
    late = tmp_path / "late.ts"
    good = make_camera(video, tmp_path / "good.ts", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
                       "-f", "mpegts"], 6.0)  # fmt: skip
    late.write_bytes(make_keyframeless_camera(video, tmp_path).read_bytes() + good.read_bytes())
    caplog.set_level(logging.INFO, logger="edge.capture")
    rec = _record(late, tmp_path / "ring", no_keyframe_s=3.0)
    try:
        _wait_state(rec, "no_keyframe", 20.0)
        _wait_state(rec, "recording", 30.0)
    finally:
        rec.stop()
    assert rec.message == "" and rec.codec == "h264"
    assert any("keyframe came" in r.getMessage() and "camera gate" in r.getMessage() for r in caplog.records)
