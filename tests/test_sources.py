"""Sources: every file frame in order with file timestamps, loops, the latest-frame slot that drops
stale frames, and reconnection with capped backoff for sources that fail (never an exception)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import free_port, shared_file
from support import wait_for

from edge.camera_config import CameraConfig
from edge.capture import files, sources
from edge.capture.files import grab_frame, iter_file_frames
from edge.capture.opening import FFMPEG_OPTIONS_ENV, SourceError, open_capture, source_kind
from edge.capture.sharedenv import SharedEnv
from edge.capture.sources import CameraReader


def write_clip(path: Path, n: int, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> Path:
    """A small MJPEG clip whose frame i has grey level 10 * (i % 25): the order is visible in the pixels."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 10 * (i % 25), np.uint8))
    writer.release()
    return path


def level(image: np.ndarray) -> int:
    return round(float(image.mean()) / 10)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("rtsp://10.0.0.5:554/stream1", "rtsp"),
        ("RTSPS://cam/x", "rtsp"),
        ("http://10.0.0.6/mjpg/video.mjpg", "http"),
        ("https://cam/video", "http"),
        ("usb:0", "usb"),
        ("/dev/video2", "usb"),
        ("{data}/videos/vtest.avi", "file"),
        ("clips/a.mp4", "file"),
    ],
)
def test_source_kind(source: str, kind: str) -> None:
    assert source_kind(source) == kind


def test_file_frames_all_in_order_with_file_times(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c.avi", 30, fps=10.0)
    cam = CameraConfig(id="f", source=str(clip))
    before = time.time()
    frames = list(iter_file_frames(cam))
    assert [f.seq for f in frames] == list(range(30))
    assert [level(f.image) for f in frames] == [i % 25 for i in range(30)]
    assert [f.t for f in frames] == pytest.approx([i / 10 for i in range(30)], abs=1e-6)
    start = frames[0].ts
    assert before - 1 <= start <= time.time()
    assert [f.ts - start for f in frames] == pytest.approx([f.t for f in frames], abs=1e-6)
    assert {f.camera for f in frames} == {"f"}


def test_file_max_frames(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 30)))
    assert [f.seq for f in iter_file_frames(cam, max_frames=7)] == list(range(7))


def test_vtest_timestamps_from_file(vtest_path: Path) -> None:
    cam = CameraConfig(id="v", source="{data}/videos/vtest.avi")
    frames = list(iter_file_frames(cam, max_frames=12))
    assert frames[0].image.shape == (576, 768, 3)
    assert [f.t for f in frames] == pytest.approx([i * 0.1 for i in range(12)], abs=1e-6)


def test_loop_restarts_with_increasing_time(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 20, fps=10.0)), loop=True)
    frames = list(iter_file_frames(cam, max_frames=50))
    assert [f.seq for f in frames] == list(range(50))
    ts = [f.t for f in frames]
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert ts == pytest.approx([i / 10 for i in range(50)], abs=1e-6)  # seamless: 1.9 s then 2.0 s
    assert [level(f.image) for f in frames[18:23]] == [18, 19, 0, 1, 2]


def test_realtime_paces_at_file_rate(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 10, fps=50.0)), realtime=True)
    t0 = time.monotonic()
    frames = list(iter_file_frames(cam))
    elapsed = time.monotonic() - t0
    assert len(frames) == 10
    assert elapsed >= 0.17  # frame 9 is due at 0.18 s


def test_missing_file_raises_source_error(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(tmp_path / "nope.avi"))
    with pytest.raises(SourceError, match="cannot open"):
        list(iter_file_frames(cam))


@pytest.mark.parametrize(
    ("every", "max_frames", "seqs"),
    [
        (1, None, list(range(12))),  # keep all: as without `keep`
        (3, None, [0, 3, 6, 9]),  # the others are grabbed, never retrieved
        (5, 7, [0, 5]),  # max_frames counts every frame read, kept or not
        (100, None, [0]),
    ],
)
def test_file_keep_retrieves_only_kept_frames(
    tmp_path: Path, every: int, max_frames: int | None, seqs: list[int]
) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 12, fps=10.0)))
    asked: list[float] = []

    def keep(t: float) -> bool:
        asked.append(t)
        return round(t * 10) % every == 0

    frames = list(iter_file_frames(cam, max_frames=max_frames, keep=keep))
    assert [f.seq for f in frames] == seqs
    assert [level(f.image) for f in frames] == seqs  # the picture of the kept frame, not of a skipped one
    assert [f.t for f in frames] == pytest.approx([s / 10 for s in seqs], abs=1e-6)
    assert asked == pytest.approx([i / 10 for i in range(max_frames or 12)], abs=1e-6)


def test_grab_frame_by_index(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 12)), loop=True, realtime=True)
    frame = grab_frame(cam, index=5)
    assert frame is not None and frame.seq == 5 and level(frame.image) == 5
    assert grab_frame(cam, index=40) is None  # past the end (loop is ignored for a set-up grab)


def test_reader_sync_mode_delivers_every_frame_then_ends(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 40)))
    reader = CameraReader(cam, drop=False)
    reader.start()
    got = []
    try:
        while True:
            frame = reader.latest(timeout=2.0)
            if frame is None:
                break
            got.append(frame.seq)
            time.sleep(0.002)  # a consumer slower than the decoder
    finally:
        reader.stop()
    assert got == list(range(40))
    assert reader.state == "ended"
    assert reader.dropped_frames == 0 and reader.frames_read == 40
    assert [(c.previous, c.state) for c in reader.status_changes()] == [("starting", "ok"), ("ok", "ended")]


def test_reader_keep_hands_over_kept_frames_and_counts_all(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 40, fps=10.0)))
    wake = threading.Event()
    reader = CameraReader(cam, drop=False, wake=wake, keep=lambda t: round(t * 10) % 4 == 0)
    reader.start()
    got: list[int] = []
    try:
        while (frame := reader.latest(timeout=2.0)) is not None:
            got.append(frame.seq)
    finally:
        reader.stop()
    assert got == list(range(0, 40, 4))
    assert reader.frames_read == 40 and reader.dropped_frames == 0
    assert wake.is_set()


def test_stream_keep_retrieves_only_kept_frames() -> None:
    cap = FakeCapture(True, 9)
    cam = CameraConfig(id="s", source="http://cam/mjpg")
    kept = itertools.cycle([True, False, False])
    reader = CameraReader(cam, drop=False, opener=lambda *_: cap, keep=lambda _t: next(kept))
    reader.start()
    got: list[int] = []
    try:
        while len(got) < 3 and (frame := reader.latest(timeout=2.0)) is not None:
            got.append(frame.seq)
        assert wait_for(lambda: reader.state == "lost")  # the fake fails after its 9 frames
    finally:
        reader.stop()
    assert got == [0, 3, 6]
    assert reader.frames_read == 9
    assert cap.retrieved == 3


def test_latest_slot_drops_stale_frames(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 120)))
    reader = CameraReader(cam)  # drop=True: one-frame slot
    reader.start()
    try:
        assert wait_for(lambda: reader.state == "ended")
        frame = reader.latest(timeout=1.0)
        assert frame is not None and frame.seq == 119  # the newest, not the oldest
        assert reader.latest(timeout=0.05) is None  # taken: the slot is empty, no queue behind it
    finally:
        reader.stop()
    assert reader.frames_read == 120
    assert reader.dropped_frames == 119
    assert reader.stats().dropped_frames == 119


def test_latest_slot_with_slow_consumer_counts_drops(tmp_path: Path) -> None:
    cam = CameraConfig(id="f", source=str(write_clip(tmp_path / "c.avi", 60, fps=100.0)), realtime=True)
    reader = CameraReader(cam)
    reader.start()
    seqs: list[int] = []
    try:
        while reader.state != "ended" or len(seqs) == 0:
            frame = reader.latest(timeout=1.0)
            if frame is None:
                break
            seqs.append(frame.seq)
            time.sleep(0.05)  # 20 fps consumer of a 100 fps camera
        last = reader.latest(timeout=0.0)
        if last is not None:
            seqs.append(last.seq)
    finally:
        reader.stop()
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert reader.dropped_frames > 20
    assert reader.dropped_frames + len(seqs) == reader.frames_read == 60
    assert reader.fps > 30


class FakeCapture:
    """A stand-in for cv2.VideoCapture that opens or not and yields `n` frames, then fails."""

    def __init__(self, opened: bool, n: int = 0) -> None:
        self.opened, self.n = opened, n
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.retrieve() if self.grab() else (False, None)

    def grab(self) -> bool:
        if self.n <= 0:
            return False
        self.n -= 1
        self.retrieved = getattr(self, "retrieved", 0)
        return True

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        self.retrieved = getattr(self, "retrieved", 0) + 1
        return True, np.zeros((4, 4, 3), np.uint8)

    def release(self) -> None:
        self.released = True


def test_reconnect_with_capped_backoff_reports_lost_and_restored() -> None:
    plan = [FakeCapture(False) for _ in range(4)] + [FakeCapture(True, 3)]
    opened: list[FakeCapture] = []
    lock = threading.Lock()

    def opener(source: str, transport: str, open_s: float, read_s: float) -> FakeCapture:
        assert source == "rtsp://cam/x" and transport == "udp"
        with lock:
            cap = plan.pop(0) if plan else FakeCapture(False)
            opened.append(cap)
            return cap

    cam = CameraConfig(id="gate", source="rtsp://cam/x", rtsp_transport="udp")
    reader = CameraReader(cam, backoff_min_s=0.01, backoff_max_s=0.04, opener=opener)
    reader.start()
    try:
        assert wait_for(lambda: reader.frames_read == 3 and reader.reconnects >= 6)
    finally:
        reader.stop()
    changes = [(c.previous, c.state) for c in reader.status_changes()]
    assert changes[:3] == [("starting", "lost"), ("lost", "ok"), ("ok", "lost")]
    restored = reader.status_changes  # drained: a second call gives nothing new before new changes
    assert restored() == []
    # 4 failed opens: 0.01, 0.02, 0.04, 0.04 (capped); after frames came, back to the minimum
    assert reader.delays[:6] == [0.01, 0.02, 0.04, 0.04, 0.01, 0.02]
    assert all(c.released for c in opened[:5])
    assert reader.state == "lost"


def test_restored_change_carries_outage() -> None:
    caps = [FakeCapture(True, 2), FakeCapture(False), FakeCapture(True, 2)]

    def opener(*_: object) -> FakeCapture:
        return caps.pop(0) if caps else FakeCapture(False)

    cam = CameraConfig(id="c", source="http://cam/mjpg")
    reader = CameraReader(cam, backoff_min_s=0.02, backoff_max_s=0.02, opener=opener)
    reader.start()
    try:
        assert wait_for(lambda: reader.frames_read == 4)
    finally:
        reader.stop()
    changes = reader.status_changes()
    transitions = [(c.previous, c.state) for c in changes[:3]]
    assert transitions == [("starting", "ok"), ("ok", "lost"), ("lost", "ok")]
    assert changes[0].down_s is None
    assert changes[2].down_s is not None and changes[2].down_s >= 0.03  # two waits of 0.02 s
    assert changes[1].reason == "read failed or timed out"
    assert all(c.camera == "c" for c in changes)


def test_unexpected_error_in_reader_is_counted_not_raised() -> None:
    calls = []

    def opener(*_: object) -> FakeCapture:
        calls.append(1)
        raise RuntimeError("driver exploded")

    cam = CameraConfig(id="c", source="usb:3")
    reader = CameraReader(cam, backoff_min_s=0.01, backoff_max_s=0.01, opener=opener)
    reader.start()
    try:
        assert wait_for(lambda: reader.errors >= 3)
        assert reader._thread is not None and reader._thread.is_alive()
    finally:
        reader.stop()
    assert reader.state == "lost"
    assert reader.status_changes()[0].reason == "error: driver exploded"


def test_missing_file_is_lost_and_retried(tmp_path: Path) -> None:
    reader = CameraReader(
        CameraConfig(id="f", source=str(tmp_path / "gone.avi")), backoff_min_s=0.01, backoff_max_s=0.05
    )
    reader.start()
    try:
        assert wait_for(lambda: reader.reconnects >= 5)
        assert reader.stats().state == "lost"
        assert max(reader.delays) == 0.05
        os.replace(write_clip(tmp_path / "new.avi", 5), tmp_path / "gone.avi")  # appears: picked up by itself
        assert wait_for(lambda: reader.state == "ended")
    finally:
        reader.stop()
    assert reader.frames_read == 5


def test_closed_rtsp_port_is_lost_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FFMPEG_OPTIONS_ENV, "keep;me")
    url = f"rtsp://127.0.0.1:{free_port()}/nothing"
    cam = CameraConfig(id="r", source=url, rtsp_transport="udp")
    reader = CameraReader(cam, backoff_min_s=0.05, backoff_max_s=0.1, open_timeout_s=2.0, read_timeout_s=2.0)
    reader.start()
    try:
        assert wait_for(lambda: reader.reconnects >= 2, timeout_s=20)
    finally:
        reader.stop()
    assert reader.state == "lost"
    assert reader.frames_read == 0
    assert reader.status_changes()[0].state == "lost"
    assert os.environ[FFMPEG_OPTIONS_ENV] == "keep;me"  # the process-wide option is restored after each open


def test_open_capture_rejects_unknown_transport() -> None:
    with pytest.raises(ValueError, match="rtsp_transport"):
        open_capture("rtsp://127.0.0.1:1/x", "sctp")


def test_reader_rejects_bad_backoff() -> None:
    with pytest.raises(ValueError, match="backoff"):
        CameraReader(CameraConfig(id="c", source="usb:0"), backoff_min_s=2.0, backoff_max_s=1.0)


def test_status_queue_and_delay_log_are_bounded() -> None:
    """An unread flapping camera must not grow memory: only the newest changes are kept."""

    def opener(*_: object) -> FakeCapture:
        return FakeCapture(True, 1)  # one frame, then the read fails: ok, lost, ok, lost...

    reader = CameraReader(
        CameraConfig(id="c", source="rtsp://cam/x"),
        backoff_min_s=0.001,
        backoff_max_s=0.001,
        max_changes=4,
        opener=opener,
    )
    reader.start()
    try:
        assert wait_for(lambda: reader.reconnects >= 60)
    finally:
        reader.stop()
    changes = reader.status_changes()
    assert len(changes) == 4
    assert all(b.t >= a.t for a, b in itertools.pairwise(changes))
    assert changes[-1].t > 0 and len(reader.delays) <= 32


def test_shared_env_lets_agreeing_opens_overlap_and_a_hanging_open_block_others_only_briefly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two tcp opens hold the variable at once; a udp open waits out their grace period (not their
    whole open, which here never ends until released), then sees udp; the process value comes back
    when the last open is out."""
    monkeypatch.setenv("RW_TEST_OPTS", "before")
    env = SharedEnv("RW_TEST_OPTS", grace_s=1.0)
    inside = threading.Barrier(2, timeout=5)  # both tcp holders must be inside together
    release = threading.Event()
    seen: list[tuple[str, float]] = []

    def hold_tcp() -> None:
        with env.holding("tcp"):
            inside.wait()
            release.wait(10)

    def hold_udp() -> None:
        t0 = time.monotonic()
        with env.holding("udp"):
            seen.append((os.environ["RW_TEST_OPTS"], time.monotonic() - t0))

    tcp = [threading.Thread(target=hold_tcp) for _ in range(2)]
    for t in tcp:
        t.start()
    udp = threading.Thread(target=hold_udp)
    udp.start()
    udp.join(5)
    assert not udp.is_alive() and all(t.is_alive() for t in tcp)  # in while the tcp opens still hang
    assert seen[0][0] == "udp" and 0.5 < seen[0][1] < 3.0  # after (about) the grace period
    release.set()
    for t in tcp:
        t.join(5)
    assert os.environ["RW_TEST_OPTS"] == "before"


def test_shared_env_without_grace_holds_a_value_for_the_whole_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default (OpenCV reads the variable somewhere inside its serialised open) a udp open waits
    until the tcp open is out, however long it takes."""
    monkeypatch.delenv("RW_TEST_OPTS", raising=False)
    env = SharedEnv("RW_TEST_OPTS")
    inside, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def hold_tcp() -> None:
        with env.holding("tcp"):
            inside.set()
            release.wait(10)
            seen.append(os.environ["RW_TEST_OPTS"])

    def hold_udp() -> None:
        with env.holding("udp"):
            seen.append(os.environ["RW_TEST_OPTS"])

    tcp = threading.Thread(target=hold_tcp)
    tcp.start()
    assert inside.wait(5)
    udp = threading.Thread(target=hold_udp)
    udp.start()
    udp.join(1.5)
    assert udp.is_alive() and not seen  # still waiting after longer than any grace would be
    release.set()
    for t in (tcp, udp):
        t.join(5)
    assert seen == ["tcp", "udp"]
    assert "RW_TEST_OPTS" not in os.environ


@pytest.mark.parametrize(("asked", "low", "high"), [(1, 1, 1), (2, 2, 2), (0, 1, 64)])  # 0: FFmpeg's choice
def test_open_capture_passes_decode_threads_to_ffmpeg(
    shared_dir: Path, asked: int, low: int, high: int
) -> None:
    h264 = shared_file(shared_dir, "videos/intersection_cctv.mp4")  # a camera's codec (some cap the count)
    cap = open_capture(str(h264), decode_threads=asked)
    try:
        assert cap.isOpened() and cap.getBackendName() == "FFMPEG"
        assert low <= int(cap.get(cv2.CAP_PROP_N_THREADS)) <= high
        assert cap.read()[0]  # and it still decodes
    finally:
        cap.release()


@pytest.mark.parametrize("source", ["file", "http://127.0.0.1:9/cam"])
def test_camera_decode_threads_reach_the_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """Files (edge.capture.files) and streams (the reader's opener) both open with the camera's setting."""
    clip = write_clip(tmp_path / "c.avi", 20)
    seen: list[object] = []

    def recording(*args: object, **kwargs: object) -> cv2.VideoCapture:
        seen.append(kwargs.get("decode_threads"))
        return open_capture(str(clip), decode_threads=1)

    monkeypatch.setattr(files, "open_capture", recording)
    monkeypatch.setattr(sources, "open_capture", recording)
    cam = CameraConfig(id="c", source=str(clip) if source == "file" else source, decode_threads=3)
    reader = CameraReader(cam, drop=False)
    reader.start()
    try:
        assert wait_for(lambda: reader.frames_read > 0, 10)
    finally:
        reader.stop()
    assert seen[:1] == [3]


@pytest.mark.parametrize("bad", [-1, 17, "two"])
def test_camera_rejects_bad_decode_threads(bad: object) -> None:
    with pytest.raises(ValueError, match="decode_threads"):
        CameraConfig(id="c", source="usb:0", decode_threads=bad)
