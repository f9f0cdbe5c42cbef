"""The camera's `tracker:` settings through the whole analysis (objects -> filter -> tracker -> line rule).

Box paths frame by frame and the crossings they must give: a faint vehicle must be counted before the
line, a one-frame flicker must not count twice, a van seen as car and truck counts once, a rider counts
once as a motorcycle. Plus the optimal assignment against brute force.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from edge.analyzer import CameraAnalyzer
from edge.camera_config import COCO_NAMES, CameraConfig
from edge.events import EventFactory
from edge.records import Detections, Frame, ImageArray
from edge.vision.assign import match_greedy, match_optimal
from edge.vision.settings import TrackerConfig
from edge.vision.tracker import TrackerSettings

PERSON, CAR, MOTO, TRUCK = 0, 2, 3, 7
FPS = 10.0
IMAGE = np.zeros((240, 320, 3), np.uint8)
Obj = tuple[tuple[float, float, float, float], float, int]


class Scripted:
    """A detector seam that returns the next scripted frame's boxes."""

    names = COCO_NAMES

    def __init__(self, frames: Sequence[Sequence[Obj]]) -> None:
        self.frames = frames
        self.i = 0

    def detect(self, image: ImageArray, min_score: float = 0.25, classes: object = None) -> Detections:
        objs = [o for o in self.frames[self.i] if o[1] >= min_score]
        self.i += 1
        return Detections(
            np.array([o[0] for o in objs], np.float32).reshape(-1, 4),
            np.array([o[1] for o in objs], np.float32),
            np.array([o[2] for o in objs], np.int64),
        )


def crossings(frames: Sequence[Sequence[Obj]], **camera: Any) -> list[tuple[int, str, str]]:
    """(frame, class, direction) of every crossing of a horizontal line at y = 120 (centre anchor)."""
    cam = CameraConfig.model_validate(
        {
            "id": "c",
            "source": "x.mp4",
            "reference_size": [320, 240],
            "classes": ["person", "car", "motorcycle", "truck"],
            "motion": {"enabled": False},
            "health": {"enabled": False},
            "lines": {"l": {"points": [[0, 120], [320, 120]]}},
            "rules": [
                {"kind": "line_crossing", "name": "l", "line": "l", "anchor": "center", "summaries": False}
            ],
            **camera,
        }
    )
    an = CameraAnalyzer(cam, Scripted(frames), EventFactory("n", "c"), "UTC", health_enabled=False)
    out = []
    for i in range(len(frames)):
        for ev in an.process(Frame("c", i, i / FPS, 1.8e9 + i / FPS, IMAGE)).events:
            out.append((int(ev.frame_seq or 0), ev.classes[0], str(ev.measurements["direction"])))
    return out


def path(
    n: int, y0: float, dy: float, score: float | list[float], cls: int, w: float = 30, h: float = 20
) -> list[list[Obj]]:
    scores = score if isinstance(score, list) else [score] * n
    return [[((100, y0 + dy * i - h / 2, 100 + w, y0 + dy * i + h / 2), scores[i], cls)] for i in range(n)]


def test_faint_vehicle_counts_with_the_camera_min_score() -> None:
    """A small far car scoring 0.32 before the line: with a fixed 0.6 new-track score it never counts."""
    frames = path(12, 70, 10, 0.32, CAR)  # centre on y = 120 at frame 5, confirmed past it at frame 6
    assert crossings(frames, min_score=0.2) == [(6, "car", "in")]
    assert crossings(frames, min_score=0.2, tracker={"high_score": 0.5, "new_track_margin": 0.1}) == []


def test_faint_vehicle_must_be_tracked_before_the_line() -> None:
    """Track starts need min_hits frames: a faint car first seen 2 frames before the line still counts."""
    frames: list[list[Obj]] = [[] for _ in range(3)] + path(9, 100, 10, 0.32, CAR)
    assert [c[1:] for c in crossings(frames, min_score=0.2, tracker={"min_hits": 2})] == [("car", "in")]
    # confirmed only past the line (`confirm_s: 0`: min_hits whatever the detection rate)
    assert crossings(frames, min_score=0.2, tracker={"min_hits": 4, "confirm_s": 0}) == []


@pytest.mark.parametrize(
    ("tracker", "expected"),
    [({}, [("car", "in")]), ({"low_score": 0.1}, [])],
    ids=["default-low-score-0.05", "low-score-0.1"],
)
def test_fading_vehicle_is_followed_over_the_line(tracker: dict[str, Any], expected: list[Any]) -> None:
    """A van at 0.3 that fades to 0.07 as it crosses (behind a camera's burnt-in text): the second stage
    follows it down to `low_score` (0.05 by default) and it counts; at 0.1 its track coasts and ends."""
    frames = path(16, 70, 8, [0.3] * 5 + [0.07] * 11, CAR)
    assert [c[1:] for c in crossings(frames, min_score=0.2, tracker=tracker)] == expected


FLICKER_SCORES = [0.7, 0.7, 0.7, 0.7, 0.7, 0.05, 0.7, 0.05, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]


@pytest.mark.parametrize("min_hits", [1, 2, 3])
def test_flicker_does_not_double_count(min_hits: int) -> None:
    """The detection drops out around the line (score below the floor) twice: still one crossing."""
    frames = path(14, 80, 7, FLICKER_SCORES, CAR)
    assert [c[1:] for c in crossings(frames, tracker={"min_hits": min_hits})] == [("car", "in")]


def test_jitter_back_across_the_line_counts_once() -> None:
    ys = [80, 90, 100, 110, 117, 123, 119, 127, 135, 145, 155, 165]
    frames = [[((100, y - 20, 160, y + 20), 0.8, CAR)] for y in ys]
    assert [c[1:] for c in crossings(frames)] == [("car", "in")]


def test_van_seen_as_car_and_truck_counts_once_as_the_majority() -> None:
    frames = [
        [((100, y - 10, 140, y + 10), 0.7, CAR), ((101, y - 11, 141, y + 9), 0.5 if i % 3 else 0.8, TRUCK)]
        for i, y in enumerate(range(70, 190, 10))
    ]
    assert [c[1:] for c in crossings(frames)] == [("car", "in")]
    # Without group suppression both boxes become tracks and the van counts twice.
    assert sorted(c[1] for c in crossings(frames, objects={"groups": []})) == ["car", "truck"]


def test_rider_counts_once_as_motorcycle_never_as_person() -> None:
    frames = [
        [((100, y - 30, 120, y + 5), 0.8, PERSON), ((98, y - 5, 122, y + 15), 0.2, MOTO)]
        for y in range(60, 200, 10)
    ]
    got = crossings(frames, min_score=0.3, class_min_score={"motorcycle": 0.2})
    assert [c[1:] for c in got] == [("motorcycle", "in")]
    alone = [[o for o in f if o[2] == PERSON] for f in frames]
    assert [c[1:] for c in crossings(alone, min_score=0.3)] == [("person", "in")]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, {"high_score": 0.05, "new_track_score": 0.05, "low_score": 0.05, "min_hits": 3}),
        ({"high_score": 0.5, "new_track_margin": 0.1}, {"high_score": 0.5, "new_track_score": 0.6}),
        ({"low_score": 0.2, "high_score": 0.0}, {"high_score": 0.2, "low_score": 0.2}),
        ({"new_track_margin": 0.5, "high_score": 0.8}, {"new_track_score": 1.0}),
        ({"assignment": "optimal", "max_age_s": 0.5}, {"assignment": "optimal", "max_age_s": 0.5}),
    ],
)
def test_tracker_settings_from_config(given: dict[str, Any], expected: dict[str, Any]) -> None:
    settings = TrackerSettings.from_config(TrackerConfig.model_validate(given))
    for key, value in expected.items():
        assert getattr(settings, key) == pytest.approx(value) if isinstance(value, float) else value


def test_optimal_assignment_beats_greedy_where_greedy_steals() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.0]])
    assert match_greedy(iou, 0.3)[0].tolist() == [0]  # greedy takes 0.9 and leaves row 1 without a match
    rows, cols = match_optimal(iou, 0.3)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


def _brute(iou: np.ndarray[Any, Any], gate: float) -> tuple[int, float]:
    n, m = iou.shape
    best = (0, 0.0)
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                vals = [iou[r, c] for r, c in zip(rows, cols, strict=True)]
                if all(v >= gate for v in vals):
                    best = max(best, (k, float(sum(vals))))
    return best


def test_optimal_assignment_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(150):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        iou = rng.random((n, m)) * (rng.random((n, m)) > 0.3)
        rows, cols = match_optimal(iou, 0.2)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        k, total = _brute(iou, 0.2)
        assert len(rows) == k and float(iou[rows, cols].sum()) == pytest.approx(total)
    assert [a.size for a in match_optimal(np.zeros((0, 3)), 0.2)] == [0, 0]


def test_tracker_config_errors_name_the_field() -> None:
    from common.yamlconf import ConfigError
    from edge.config import validate_config

    for tracker, field in (({"min_hits": 0}, "min_hits"), ({"assignment": "best"}, "assignment")):
        doc = {"node_id": "n", "cameras": [{"id": "c", "source": "x.mp4", "tracker": tracker}]}
        with pytest.raises(ConfigError) as err:
            validate_config(doc, "node.yaml")
        assert f"cameras.c.tracker.{field}" in str(err.value)
