"""Event clips on the node: the segment ring, the clip store's bounds, and real ffmpeg recordings."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import pytest
from conftest import make_h264_camera
from support import wait_for

from edge.camera_config import CameraConfig
from edge.capture.clips import Clip, ClipStore, SegmentRing, probe_duration
from edge.capture.clipwriter import ClipRequest, ClipWorker
from edge.capture.eventclips import EventClips
from edge.capture.recorder import ClipRecorder, RecorderSettings


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _ring(tmp_path: Path, rows: list[str], now: float, keep_s: float = 100.0) -> SegmentRing:
    for row in rows:
        (tmp_path / row.split(",")[0]).write_bytes(b"x")
    (tmp_path / "segments.csv").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    ring = SegmentRing(tmp_path, keep_s, Clock(now))
    ring.poll()
    return ring


@pytest.mark.parametrize(
    ("t0", "t1", "expected"),
    [
        (1002.5, 1004.5, ["c", "d", "e"]),  # from the keyframe nearest t0 (a tie: the earlier one)
        (1002.4, 1004.5, ["c", "d", "e"]),
        (1002.7, 1004.5, ["d", "e"]),  # the next keyframe is nearer: half a GOP short rather than long
        (1000.0, 1001.0, ["a"]),
        (999.0, 1001.5, ["a", "b"]),  # before the ring: from its first segment
        (1003.0, 1003.0 + 10, ["d", "e"]),  # beyond the ring: what there is (the worker waits)
    ],
)
def test_ring_covering(tmp_path: Path, t0: float, t1: float, expected: list[str]) -> None:
    # stream seconds 0..5, all read at wall 1005: the smallest lag (the last segment's) maps stream 0 to 1000
    rows = [f"{n},{i}.0,{i + 1}.0" for i, n in enumerate("abcde")]
    ring = _ring(tmp_path, rows, now=1005.0)
    assert [s.path.name for s in ring.covering(t0, t1)] == expected


def test_the_clip_never_starts_after_its_event(tmp_path: Path) -> None:
    rows = [f"{n},{i}.0,{i + 1}.0" for i, n in enumerate("abcde")]
    ring = _ring(tmp_path, rows, now=1005.0)
    # pre_s 0.2: the nearest keyframe (1003) would come after the event at 1002.9; 1002 holds it
    assert [s.path.name for s in ring.covering(1002.7, 1004.0, latest_start=1002.9)] == ["c", "d"]
    assert [s.path.name for s in ring.covering(1002.7, 1004.0, latest_start=1003.0)] == ["d"]


def test_ring_reads_lines_once_skips_a_partial_line_and_prunes_old_files(tmp_path: Path) -> None:
    clock = Clock(1010.0)
    ring = SegmentRing(tmp_path, keep_s=4.0, clock=clock)
    for name in "abc":
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "segments.csv").write_text("a,0.0,2.0\nb,2.0,4.0\nc,4.0", encoding="utf-8")
    ring.poll()  # lag: 1010 - 4 = 1006: a ends at 1008, b at 1010
    assert [s.path.name for s in ring.segments()] == ["a", "b"]
    with (tmp_path / "segments.csv").open("a", encoding="utf-8") as fh:
        fh.write(",6.0\n")
    clock.t = 1013.0  # keep 4 s: a (ended 1008) goes, its file too
    ring.poll()
    assert [s.path.name for s in ring.segments()] == ["b", "c"]
    assert not (tmp_path / "a").exists() and (tmp_path / "b").exists()


def test_a_pinned_ring_deletes_nothing_until_released(tmp_path: Path) -> None:
    clock = Clock(1010.0)
    ring = SegmentRing(tmp_path, keep_s=4.0, clock=clock)
    for name in "ab":
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "segments.csv").write_text("a,0.0,2.0\nb,2.0,4.0\n", encoding="utf-8")
    ring.poll()
    clock.t = 1030.0  # both are past keep_s now
    with ring.pinned():  # a clip is being cut from them
        ring.poll()
        assert (tmp_path / "a").exists() and len(ring.segments()) == 2
    ring.poll()
    assert not (tmp_path / "a").exists() and ring.segments() == []


def test_store_drops_oldest_by_age_then_size(tmp_path: Path) -> None:
    store = ClipStore(tmp_path, max_bytes=250, max_age_s=100.0)
    now = time.time()
    for name, age in (("old", 500), ("mid", 50), ("new", 10), ("newest", 1)):
        path = store.path_for(name)
        path.write_bytes(b"v" * 100)
        os.utime(path, (now - age, now - age))
    assert store.prune(now) == 2  # 'old' by age; then 300 > 250 bytes: 'mid'
    assert sorted(p.stem for p in tmp_path.glob("*.mp4")) == ["new", "newest"]
    assert store.dropped == 2 and store.get("new") is not None and store.get("old") is None


def test_clip_kinds_are_checked() -> None:
    cam = CameraConfig.model_validate({"id": "c", "source": "x.mp4", "clips": {"enabled": True}})
    assert "suspected_collision" in cam.clips.kinds and "line_crossing" not in cam.clips.kinds
    with pytest.raises(ValueError, match="unknown event kind"):
        CameraConfig.model_validate({"id": "c", "source": "x.mp4", "clips": {"kinds": ["crash"]}})


@pytest.fixture(scope="module")
def h264_camera(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A small H.264 'camera' with a keyframe every second, as IP cameras are usually set up."""
    out = tmp_path_factory.mktemp("cam") / "cam.mp4"
    return make_h264_camera(shared_dir / "videos" / "intersection_cctv.mp4", out, "scale=320:240,fps=10")


def _record(source: Path, folder: Path) -> ClipRecorder:
    rec = ClipRecorder("cam", RecorderSettings(str(source), live=False, keep_s=40.0), folder)
    rec.start()
    return rec


@pytest.mark.integration
@pytest.mark.slow
def test_recorded_clip_decodes_spans_pre_and_post_and_holds_the_event(
    h264_camera: Path, tmp_path: Path
) -> None:
    rec = _record(h264_camera, tmp_path / "ring")
    store = ClipStore(tmp_path / "clips", 10**9, 3600.0)
    worker = ClipWorker({"cam": rec}, store)
    try:
        time.sleep(5.0)
        event_ts = time.time()
        worker.request(ClipRequest("ev-1", "cam", event_ts, 3.0, 4.0))
        worker.request(ClipRequest("ev-1b", "cam", event_ts, 3.0, 4.0))  # a second alert of that frame
        clips: list[Clip] = []
        deadline = time.time() + 30
        while not clips and time.time() < deadline:
            clips = worker.step()
            time.sleep(0.3)
    finally:
        rec.stop()
    assert rec.state == "stopped" and len(clips) == 2
    clip = clips[0]
    assert worker.linked == 1 and clips[1].path == store.path_for("ev-1b")  # cut once, linked
    assert clips[1].path.stat().st_ino == clip.path.stat().st_ino and clips[1].sha256 == clip.sha256
    assert clip.path == store.path_for("ev-1") and clip.path.stat().st_size == clip.bytes
    assert abs(clip.duration_s - 7.0) <= 1.0, clip
    assert clip.start <= event_ts <= clip.start + clip.duration_s
    cap = cv2.VideoCapture(str(clip.path))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert abs(frames - 70) <= 12  # 10 fps
    assert probe_duration(clip.path) == pytest.approx(clip.duration_s)
    assert not list((tmp_path / "clips").glob("*.part"))


@pytest.mark.integration
def test_unsupported_codec_stops_only_that_recorder_with_a_clear_reason(
    vtest_path: Path, tmp_path: Path
) -> None:
    rec = _record(vtest_path, tmp_path / "ring")  # MS-MPEG4: not something an MP4 clip may carry
    worker = ClipWorker({"cam": rec}, ClipStore(tmp_path / "clips", 10**9, 3600.0))
    try:
        deadline = time.time() + 20
        while rec.state == "starting" and time.time() < deadline:
            time.sleep(0.2)
        assert rec.state == "unsupported" and "msmpeg4v3" in rec.message and "H.264" in rec.message
        worker.request(ClipRequest("ev-2", "cam", time.time() - 20, 1.0, 1.0))
        assert worker.step() == []
        assert worker.failed == 1 and "H.264" in worker.failures["ev-2"]
    finally:
        rec.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_a_full_clip_store_evicts_the_oldest_real_clip_and_says_so(h264_camera: Path, tmp_path: Path) -> None:
    """The node's clip store holds about one clip: the second real clip evicts the first (counted), a
    request for the first then answers `missing` with the reason, and the second is ready to upload."""
    rec = _record(h264_camera, tmp_path / "ring")
    store = ClipStore(tmp_path / "clips", max_bytes=10**9, max_age_s=3600.0)
    worker = ClipWorker({"cam": rec}, store)
    clips = EventClips({"cam": rec}, worker, {})
    written: list[Clip] = []

    def cut(event_id: str, pre_s: float, post_s: float) -> None:
        worker.request(ClipRequest(event_id, "cam", time.time(), pre_s, post_s))
        deadline = time.time() + 30
        count = len(written)
        while len(written) == count and time.time() < deadline:
            written.extend(worker.step())
            time.sleep(0.3)

    try:
        # Under load ffmpeg can take seconds to start: count the pre-event video from the first segment.
        wait_for(lambda: rec.state == "recording", 30.0, "the ring recording")
        time.sleep(3.0)
        cut("ev-a", 2.0, 1.0)  # 3-4 s of video
        assert written, worker.failures
        store.max_bytes = written[0].bytes + 1  # the store is full with this one clip
        time.sleep(1.5)  # the next event, in later segments
        cut("ev-b", 0.5, 0.5)  # 1-2 s: smaller than the first, so it fits once that one is evicted
    finally:
        rec.stop()
    assert [c.path.name for c in written] == ["ev-a.mp4", "ev-b.mp4"], worker.failures
    assert store.get("ev-a") is None and store.get("ev-b") is not None
    assert store.dropped == 1 and clips.counters()["clips_evicted_total"] == 1
    gone = clips.lookup("cam", "ev-a")
    assert gone.state == "missing" and "removed" in gone.reason
    ready = clips.lookup("cam", "ev-b")
    assert ready.state == "ready" and ready.path == store.path_for("ev-b")
