"""Camera health on real vtest.avi frames: darkened, covered, blurred, shifted and frozen stretches each
give their start event after the hold time and their end event after recovery; normal footage (and a
darker, lower-contrast evening view) gives nothing. Stream changes become stream_lost / restored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera_config import CameraConfig, HealthSettings
from edge.capture.files import iter_file_frames
from edge.capture.health import CameraHealth
from edge.capture.sources import StreamChange
from edge.events import EventFactory
from edge.records import Event, Frame

Edit = Callable[[np.ndarray], np.ndarray]
T0 = 1_790_000_000.0


@pytest.fixture(scope="module")
def clip(vtest_path: Path) -> list[np.ndarray]:
    """The first 60 frames of vtest.avi; the tests space them 1 s apart (one health evaluation each)."""
    cam = CameraConfig(id="v", source=str(vtest_path))
    return [f.image for f in iter_file_frames(cam, max_frames=60)]


def new_health(settings: HealthSettings | None = None) -> CameraHealth:
    return CameraHealth(settings or HealthSettings(), EventFactory("n1", "gate"))


def feed(
    health: CameraHealth, images: list[np.ndarray], start_t: float = 0.0
) -> list[tuple[str, str, float]]:
    events: list[Event] = []
    for i, img in enumerate(images):
        t = start_t + i
        events.extend(health.update(Frame("gate", i, t, T0 + t, img)))
    assert all(e.rule == "camera_health" and e.camera == "gate" and e.node == "n1" for e in events)
    return [(e.kind, e.phase, e.ts - T0) for e in events]


def tamper(
    clip: list[np.ndarray], edit: Edit, start: int = 10, stop: int = 30, n: int = 50
) -> list[np.ndarray]:
    return [edit(img) if start <= i < stop else img for i, img in enumerate(clip[:n])]


def darken(img: np.ndarray) -> np.ndarray:
    return (img * 0.05).astype(np.uint8)


def cover(img: np.ndarray) -> np.ndarray:
    return np.full_like(img, 90)


def blur(img: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), 3), np.uint8)


def shift(img: np.ndarray) -> np.ndarray:
    m = np.array([[1, 0, 40], [0, 1, 12]], np.float32)
    return np.asarray(cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE))


def rotate(img: np.ndarray) -> np.ndarray:
    m = cv2.getRotationMatrix2D((img.shape[1] / 2, img.shape[0] / 2), 6, 1.0)
    return np.asarray(cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE))


def test_normal_footage_gives_nothing(clip: list[np.ndarray]) -> None:
    health = new_health()
    assert feed(health, clip) == []
    assert health.last is not None and health.active == ()


def test_evening_view_is_not_tampering(clip: list[np.ndarray]) -> None:
    """A darker, lower-contrast scene keeps its (contrast-normalised) sharpness: no defocus, no block."""
    health = new_health()
    assert feed(health, tamper(clip, lambda im: (im * 0.3).astype(np.uint8), start=10, stop=60, n=60)) == []


@pytest.mark.parametrize(
    ("edit", "kind", "lag_s"),
    [
        (darken, "camera_blocked", 0),
        (cover, "camera_blocked", 0),
        (blur, "camera_defocused", 0),
        # moves are judged on a running-average background, which needs a few seconds to follow
        (shift, "camera_moved", 3),
        (rotate, "camera_moved", 3),
    ],
)
def test_tampering_starts_after_hold_and_ends_after_recovery(
    clip: list[np.ndarray], edit: Edit, kind: str, lag_s: float
) -> None:
    # frames 10..29 tampered; hold 5 s -> start at t=15; back at t=30, clear 3 s -> end at t=33
    events = feed(new_health(), tamper(clip, edit))
    assert [(k, phase) for k, phase, _ in events] == [(kind, "start"), (kind, "end")]
    (_, _, start), (_, _, end) = events
    assert 15.0 <= start <= 15.0 + lag_s
    assert 33.0 <= end <= 33.0 + lag_s


def test_frozen_picture(clip: list[np.ndarray]) -> None:
    health = new_health()
    images = [clip[10] if 10 <= i < 30 else img for i, img in enumerate(clip[:50])]
    events: list[tuple[str, str, float]] = []
    frozen_seen = False
    for i, img in enumerate(images):
        events.extend(
            (e.kind, e.phase, float(e.ts - T0)) for e in health.update(Frame("gate", i, i, T0 + i, img))
        )
        frozen_seen |= health.frozen
    # unchanged from t=11 (first repeat): 10 s hold -> start at 21; picture moves at 30 -> end at 33
    assert events == [("frozen_picture", "start", 21.0), ("frozen_picture", "end", 33.0)]
    assert frozen_seen and not health.frozen


def test_event_measurements(clip: list[np.ndarray]) -> None:
    health = new_health()
    got: list[Event] = []
    for i, img in enumerate(tamper(clip, blur, n=40)):
        got.extend(health.update(Frame("gate", i, float(i), T0 + i, img)))
    start, end = got
    assert (start.kind, start.phase, start.frame_seq) == ("camera_defocused", "start", 15)
    assert start.measurements["duration_s"] == 5.0
    assert start.measurements["sharpness"] < 0.3 * start.measurements["reference_sharpness"]
    assert end.measurements["duration_s"] == 18.0  # reported from t=15 to t=33
    assert start.texts["en"] and start.texts["vi"]


def test_short_glitch_does_not_start(clip: list[np.ndarray]) -> None:
    assert feed(new_health(), tamper(clip, darken, start=10, stop=14)) == []  # 4 s < 5 s hold


def test_take_reference_accepts_a_new_view(clip: list[np.ndarray]) -> None:
    health = new_health()
    images = tamper(clip, shift, start=10, stop=60, n=60)
    assert [e[:2] for e in feed(health, images[:20])] == [("camera_moved", "start")]
    health.take_reference()  # the technician turned it on purpose
    assert feed(health, images[20:], start_t=20.0) == [("camera_moved", "end", 23.0)]


def test_evaluates_once_per_interval(clip: list[np.ndarray]) -> None:
    health = new_health(HealthSettings(interval_s=1.0))
    times = []
    for i in range(30):  # 10 fps for 3 s
        health.update(Frame("gate", i, i / 10, T0 + i / 10, clip[i]))
        assert health.last is not None
        times.append(health.last.t)
    assert sorted(set(times)) == [0.0, 1.0, 2.0]


def test_disabled_does_nothing(clip: list[np.ndarray]) -> None:
    health = new_health(HealthSettings(enabled=False))
    assert feed(health, tamper(clip, darken)) == []
    assert health.last is None


def change(
    previous: str, state: str, ts: float, down_s: float | None = None, reason: str = ""
) -> StreamChange:
    return StreamChange("gate", previous, state, ts - T0, ts, reason, down_s)  # type: ignore[arg-type]


def test_stream_changes_become_events() -> None:
    health = new_health()
    assert health.stream_events(change("starting", "ok", T0)) == []
    lost = health.stream_events(change("ok", "lost", T0 + 5, reason="read failed or timed out"))
    assert [(e.kind, e.phase, e.rule, e.ts) for e in lost] == [
        ("stream_lost", "instant", "camera_health", T0 + 5)
    ]
    assert lost[0].measurements == {"reason": "read failed or timed out"}
    back = health.stream_events(change("lost", "ok", T0 + 65, down_s=60.0))
    assert [(e.kind, e.measurements) for e in back] == [("stream_restored", {"down_s": 60.0})]
    assert health.stream_events(change("ok", "ended", T0 + 70)) == []
    # a camera dead at boot is reported too
    assert [e.kind for e in health.stream_events(change("starting", "lost", T0))] == ["stream_lost"]


def test_lost_stream_ends_a_frozen_picture(clip: list[np.ndarray]) -> None:
    health = new_health()
    feed(health, [clip[0]] * 15)
    assert health.frozen
    events = health.stream_events(change("ok", "lost", T0 + 15))
    assert [(e.kind, e.phase) for e in events] == [("stream_lost", "instant"), ("frozen_picture", "end")]
    assert not health.frozen
