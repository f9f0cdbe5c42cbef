"""The tracker at a few detector runs a second: the distance stage (`match_distance`) and confirmation by
time (`confirm_s`). Table-driven on synthetic boxes; the counting effect is measured on every labelled
clip in docs/evaluation.md ("Counting at the node's detection rate")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge.records import Detections
from edge.vision.assign import match_near
from edge.vision.settings import TrackerConfig
from edge.vision.tracker import Tracker, TrackerSettings

CAR = 2
Box = tuple[float, float, float, float]


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.asarray(rows, np.float64).reshape(-1, 4)


@pytest.mark.parametrize(
    ("tracks", "dets", "gate", "expected"),
    [
        # a 20x20 box moved 30 px (1.5 box sizes): inside a gate of 2, outside one of 1
        (boxes((0, 0, 20, 20)), boxes((30, 0, 50, 20)), [2.0], ([0], [0])),
        (boxes((0, 0, 20, 20)), boxes((30, 0, 50, 20)), [1.0], ([], [])),
        # the same distance but the detection 3x the area: another object, not this one grown
        (boxes((0, 0, 20, 20)), boxes((30, 0, 65, 35)), [5.0], ([], [])),
        # two tracks, two detections: nearest first, so no swap
        (boxes((0, 0, 20, 20), (100, 0, 120, 20)), boxes((125, 0, 145, 20), (25, 0, 45, 20)), [2.0, 2.0],
         ([0, 1], [1, 0])),
        # one detection between two tracks: the nearer track takes it, the other stays unmatched
        (boxes((0, 0, 20, 20), (70, 0, 90, 20)), boxes((30, 0, 50, 20)), [3.0, 3.0], ([0], [0])),
        # a gate of 0 (a track not seen at the previous run) matches nothing
        (boxes((0, 0, 20, 20)), boxes((5, 0, 25, 20)), [0.0], ([], [])),
    ],
    ids=["inside", "outside", "size-differs", "no-swap", "nearest-wins", "zero-gate"],
)  # fmt: skip
def test_match_near(
    tracks: np.ndarray, dets: np.ndarray, gate: list[float], expected: tuple[list[int], list[int]]
) -> None:
    rows, cols = match_near(tracks, dets, np.asarray(gate))
    got = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    assert got == sorted(zip(*expected, strict=True))


@pytest.mark.parametrize(
    ("min_hits", "confirm_s", "fps", "expected"),
    [
        (3, 0.1, 5, 1),
        (3, 0.1, 10, 1),
        (3, 0.1, 12.5, 2),
        (3, 0.1, 25, 3),
        (3, 0.1, 30, 3),  # 0.1 s is exactly three periods: not rounded up to four (capped anyway)
        (3, 0.1, 60, 3),  # never more than min_hits
        (3, 0.0, 5, 3),  # off: min_hits whatever the rate
        (2, 0.3, 5, 2),
    ],
)
def test_required_hits_follow_the_detector_period(
    min_hits: int, confirm_s: float, fps: float, expected: int
) -> None:
    tracker = Tracker(TrackerSettings(min_hits=min_hits, confirm_s=confirm_s))
    for i in range(5):
        tracker.update(Detections.empty(), i / fps)
    assert tracker.required_hits() == expected


def run(frames: list[list[Box]], fps: float, **cfg: Any) -> list[list[int]]:
    """Ids reported per frame for boxes of score 0.8."""
    tracker = Tracker(TrackerSettings.from_config(TrackerConfig.model_validate(cfg)))
    out = []
    for i, frame in enumerate(frames):
        dets = Detections(
            np.asarray(frame, np.float32).reshape(-1, 4),
            np.full(len(frame), 0.8, np.float32),
            np.full(len(frame), CAR, np.int64),
        )
        out.append(tracker.update(dets, i / fps).track_ids.tolist())
    return out


def fast_car(n: int, step: float) -> list[list[Box]]:
    """A 20x12 px car moving `step` px to the right per detector run (a motorway car at 5 runs/s)."""
    return [[(10 + step * i, 100, 30 + step * i, 112)] for i in range(n)]


def test_fast_car_at_five_runs_a_second_keeps_one_id() -> None:
    """20 px a run is 1.3 box sizes (the boxes never overlap): one track, confirmed at its second run (the
    first has no period measured yet) with the defaults; without the distance stage and the confirmation
    by time every run starts a new tentative track and none is ever reported."""
    assert run(fast_car(6, 20), 5) == [[], [1], [1], [1], [1], [1]]
    assert run(fast_car(6, 20), 5, match_distance=0, confirm_s=0) == [[]] * 6
    # 30 px (1.9 box sizes) is beyond the gate of 7.5 sizes/s x 0.2 s: each run is another object
    assert run(fast_car(4, 30), 5) == [[], [1], [2], [3]]


def test_distance_stage_changes_nothing_at_the_full_frame_rate() -> None:
    """At 30 runs/s the gate is 0.25 box sizes: a box jumping 1.5 sizes to another place is not taken."""
    frames: list[list[Box]] = [*fast_car(4, 2), [(10 + 2 * 3 + 30, 100, 30 + 2 * 3 + 30, 112)]]
    ids = run(frames, 30)
    assert ids[:4] == [[], [], [1], [1]]
    assert ids[4] == []  # the jump is not track 1 (it starts a tentative track of its own)


def test_lost_track_gets_no_distance_gate() -> None:
    """A track missed at the previous run does not take a far detection by distance (only by IoU)."""
    # where track 1 would be by now, but 15 px lower: no overlap with its prediction, one box size away
    frames: list[list[Box]] = [*fast_car(3, 20), [], [(10 + 20 * 4, 115, 30 + 20 * 4, 127)]]
    ids = run(frames, 5, max_age_s=1.0)
    assert ids[:4] == [[], [1], [1], []]
    assert ids[4] == [2]  # a new track (confirmed at once at 5 runs/s), not the lost track 1
    # the same box one run earlier, when track 1 was seen at the previous run: taken by distance
    seen: list[list[Box]] = [*fast_car(3, 20), [(10 + 20 * 3, 115, 30 + 20 * 3, 127)]]
    assert run(seen, 5, max_age_s=1.0)[3] == [1]
