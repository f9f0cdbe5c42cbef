"""Speeds through a known perspective homography: the estimator, speeding events, speeds on line crossings."""

from __future__ import annotations

import numpy as np
import pytest
from rules_paths import FPS, Box, Obj, box, build, run

from edge.geometry import GroundPlane, apply_homography
from edge.rules import SpeedEstimator

# A road seen in perspective: ground (x lateral, y ahead, metres) -> image pixels; y = 0 m is the bottom.
GROUND_TO_IMAGE = np.array([[800.0, 500.0, 5000.0], [0.0, 200.0, 10000.0], [0.0, 1.0, 10.0]])
GROUND_CORNERS = np.array([[-4.0, 0.0], [4.0, 0.0], [4.0, 50.0], [-4.0, 50.0]])
IMAGE_CORNERS = apply_homography(GROUND_TO_IMAGE, GROUND_CORNERS)
CALIBRATION = {"image_points": IMAGE_CORNERS.tolist(), "ground_points_m": GROUND_CORNERS.tolist()}
ROAD = {"road": {"points": [[0, 300], [1000, 300], [1000, 1000], [0, 1000]], "speed_limit_kmh": 40}}


def drive(
    kmh: float,
    y0: float = 2.0,
    y1: float = 45.0,
    x: float = 0.0,
    jitter_px: float = 0.0,
    outlier_at: int | None = None,
) -> list[Box]:
    """Boxes of a vehicle driving away from the camera at constant ground speed `kmh`."""
    step = kmh / 3.6 / FPS
    ys = np.arange(y0, y1, step)
    img = apply_homography(GROUND_TO_IMAGE, np.stack([np.full_like(ys, x), ys], axis=1))
    rng = np.random.default_rng(7)
    img += rng.uniform(-jitter_px, jitter_px, img.shape)
    if outlier_at is not None:
        img[outlier_at, 1] += 30.0
    return [box(float(u), float(v), 40, 40) for u, v in img]


def estimate_along(boxes: list[Box], at: int) -> float:
    ground = GroundPlane(IMAGE_CORNERS, GROUND_CORNERS)
    est = SpeedEstimator(ground, window_s=1.0, min_span_s=0.5)
    for i, b in enumerate(boxes[: at + 1]):
        est.observe([1], [[(b[0] + b[2]) / 2, b[3]]], i / FPS)
    return float(est.speeds_kmh([1], at / FPS)[0])


@pytest.mark.parametrize(
    ("kmh", "jitter_px", "outlier_at"),
    [
        (30.0, 0.0, None),
        (50.0, 0.0, None),
        (90.0, 0.0, None),
        (50.0, 1.0, None),
        (50.0, 1.0, 12),
        (80.0, 1.5, 10),
    ],
)
def test_speed_estimate_within_5_percent(kmh: float, jitter_px: float, outlier_at: int | None) -> None:
    boxes = drive(kmh, jitter_px=jitter_px, outlier_at=outlier_at)
    assert estimate_along(boxes, 14) == pytest.approx(kmh, rel=0.05)


def test_speed_needs_enough_history() -> None:
    boxes = drive(50.0)
    assert np.isnan(estimate_along(boxes, 3))  # 0.3 s of history < min_span_s
    assert np.isfinite(estimate_along(boxes, 5))


SPEEDING = {"kind": "speeding", "name": "fast", "zone": "road"}


@pytest.mark.parametrize(("kmh", "fires"), [(30.0, False), (44.0, False), (60.0, True), (100.0, True)])
def test_speeding_fires_once_above_limit_plus_tolerance(kmh: float, fires: bool) -> None:
    rules = build([SPEEDING], zones=ROAD, calibration=CALIBRATION)
    events = run(rules, [Obj(3, "car", drive(kmh, jitter_px=0.5))])
    assert len(events) == int(fires)
    if fires:
        ev = events[0]
        assert ev.measurements["speed_kmh"] == pytest.approx(kmh, rel=0.05)
        assert ev.measurements["limit_kmh"] == 40
        assert "estimated speed" in ev.texts["en"] and "tốc độ ước tính" in ev.texts["vi"]
    assert rules[0].state_size() == 0


def test_speeding_rule_limit_overrides_zone() -> None:
    rules = build([{**SPEEDING, "limit_kmh": 80, "tolerance_kmh": 0}], zones=ROAD, calibration=CALIBRATION)
    assert run(rules, [Obj(1, "car", drive(60.0))]) == []


def test_speeding_without_calibration_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="calibration"):
        build([SPEEDING], zones=ROAD)


def test_line_crossing_carries_the_estimated_speed() -> None:
    y20 = float(apply_homography(GROUND_TO_IMAGE, [[0.0, 20.0]])[0, 1])  # a line 20 m ahead
    rule = {"kind": "line_crossing", "name": "count", "line": "l", "summaries": False}
    rules = build([rule], calibration=CALIBRATION, lines={"l": {"points": [[0, y20], [1000, y20]]}})
    events = run(rules, [Obj(1, "car", drive(50.0, jitter_px=0.5)), Obj(2, "car", drive(70.0, x=-2.0))])
    speeds = {e.track_ids[0]: e.measurements["speed_kmh"] for e in events}
    assert speeds[1] == pytest.approx(50.0, rel=0.05) and speeds[2] == pytest.approx(70.0, rel=0.05)
    assert all(e.measurements["direction"] == "out" for e in events)  # driving away = up the picture
    assert "estimated speed" in events[0].texts["en"]
