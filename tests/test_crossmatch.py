"""Counted crossings matched to labelled ones (scripts/crossmatch.py): the class check of the evaluation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from crossmatch import Crossing, confusions, match, tolerance_frames, truth_crossings

C = Crossing


@pytest.mark.parametrize(
    ("counted", "truth", "pairs"),
    [
        ([C(100, "in", "car")], [C(104, "in", "car")], [(0, 0)]),  # within tolerance
        ([C(100, "in", "car")], [C(111, "in", "car")], []),  # too far apart
        ([C(100, "out", "car")], [C(100, "in", "car")], []),  # other direction
        # two crossings within one window: the classes decide who pairs with whom
        ([C(100, "in", "person"), C(101, "in", "car")], [C(100, "in", "car"), C(102, "in", "person")],
         [(0, 1), (1, 0)]),
        # a truth alt_class agrees as well as its class
        ([C(50, "in", "truck"), C(52, "in", "car")], [C(52, "in", "car", ("truck",)), C(50, "in", "car")],
         [(0, 0), (1, 1)]),
        # no class agrees: nearest frames first, each side used once
        ([C(10, "in", "person"), C(30, "in", "person")], [C(28, "in", "bicycle")], [(1, 0)]),
        ([], [C(1, "in", "car")], []),
    ],
)  # fmt: skip
def test_match(counted: list[Crossing], truth: list[Crossing], pairs: list[tuple[int, int]]) -> None:
    assert match(counted, truth, tol=10) == pairs


@pytest.mark.parametrize(
    ("counted", "truth", "riders", "pedestrians"),
    [
        ([C(192, "out", "person")], [C(186, "out", "bicycle")], 1, 0),  # the lone cyclist, eu clip
        ([C(192, "out", "bicycle")], [C(186, "out", "bicycle")], 0, 0),
        ([C(20, "in", "person")], [C(20, "in", "motorcycle")], 1, 0),
        ([C(20, "in", "person")], [C(20, "in", "car", ("motorcycle",))], 1, 0),  # alt_class two-wheeler
        ([C(20, "in", "motorcycle")], [C(20, "in", "person")], 0, 1),  # a pedestrian made a vehicle
        ([C(20, "in", "car")], [C(20, "in", "person")], 0, 1),
        ([C(20, "in", "person")], [C(20, "in", "person")], 0, 0),
        ([C(20, "in", "person")], [C(20, "in", "car")], 0, 0),  # wrong class, but neither confusion
        ([C(20, "in", "person"), C(21, "in", "bicycle")], [C(20, "in", "bicycle"), C(22, "in", "person")], 0, 0),
        ([C(20, "in", "person")], [C(80, "in", "bicycle")], 0, 0),  # unmatched: a miss and an extra
    ],
)  # fmt: skip
def test_confusions(counted: list[Crossing], truth: list[Crossing], riders: int, pedestrians: int) -> None:
    got = confusions(counted, truth, tol=13)
    assert (got["riders_as_pedestrians"], got["pedestrians_as_vehicles"]) == (riders, pedestrians)


@pytest.mark.parametrize(
    ("fps", "seconds", "frames"),
    [(25.0, 0.5, 13), (60.0, 0.5, 30), (10.0, 0.5, 5), (4.0, 0.5, 5), (None, 0.5, 5), (25.0, 0.2, 13),
     (25.0, 1.0, 25)],
)  # fmt: skip
def test_tolerance_is_at_least_half_a_second_and_five_frames(
    fps: float | None, seconds: float, frames: int
) -> None:
    assert tolerance_frames(fps, seconds) == frames


def test_truth_crossings_read_class_and_alt_class() -> None:
    truth = {
        "crossings": [
            {"frame": 54, "class": "bus", "direction": "in", "alt_class": "car"},
            {"frame": 186, "class": "bicycle", "direction": "out"},
            {"frame": 9, "class": "car", "direction": "sideways"},  # not a direction: skipped
            {"class": "car", "direction": "in"},  # no frame: skipped
        ]
    }
    assert truth_crossings(truth) == [C(54, "in", "bus", ("car",)), C(186, "out", "bicycle")]
