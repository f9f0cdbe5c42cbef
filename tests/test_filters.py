"""Per-camera detection filter: classes, per-class thresholds, box-area bounds, built once per camera."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from edge.camera_config import COCO_NAMES, CameraConfig
from edge.records import Detections
from edge.vision.filters import ClassFilter, filter_detections

PERSON, BICYCLE, CAR, BUS, TRAIN, TRUCK, DOG = (COCO_NAMES.index(n) for n in (
    "person", "bicycle", "car", "bus", "train", "truck", "dog"
))  # fmt: skip


def camera(**kw: Any) -> CameraConfig:
    return CameraConfig.model_validate({"id": "gate", "source": "clip.mp4", **kw})


def dets(*rows: tuple[int, float, tuple[float, float, float, float]]) -> Detections:
    """Rows of (class id, score, xyxy)."""
    return Detections(
        np.array([r[2] for r in rows], np.float32).reshape(-1, 4),
        np.array([r[1] for r in rows], np.float32),
        np.array([r[0] for r in rows], np.int64),
    )


BOX = (0.0, 0.0, 10.0, 10.0)  # 100 px^2 of a 100x100 frame: 1 %


@pytest.mark.parametrize(
    ("settings", "rows", "kept"),
    [
        # default classes: people and road vehicles; a dog and a train are dropped
        ({}, [(PERSON, 0.9, BOX), (DOG, 0.9, BOX), (TRAIN, 0.9, BOX), (TRUCK, 0.9, BOX)], [0, 3]),
        # default threshold 0.35, inclusive
        ({}, [(CAR, 0.35, BOX), (CAR, 0.34, BOX)], [0]),
        # per-class threshold overrides the default for that class only
        (
            {"class_min_score": {"person": 0.6}},
            [(PERSON, 0.5, BOX), (CAR, 0.5, BOX), (PERSON, 0.7, BOX)],
            [1, 2],
        ),
        ({"classes": ["car"], "min_score": 0.1}, [(PERSON, 0.9, BOX), (CAR, 0.2, BOX)], [1]),
        # area bounds as fractions of the frame: 1 % and 25 % boxes against [2 %, 20 %]
        (
            {"min_box_area": 0.02, "max_box_area": 0.2},
            [(CAR, 0.9, BOX), (CAR, 0.9, (0.0, 0.0, 20.0, 20.0)), (CAR, 0.9, (0.0, 0.0, 50.0, 50.0))],
            [1],
        ),
    ],
)
def test_filter_table(settings: dict[str, Any], rows: list[Any], kept: list[int]) -> None:
    cam = camera(**settings)
    d = dets(*rows)
    out = ClassFilter.from_camera(cam, COCO_NAMES, 100, 100).apply(d)
    np.testing.assert_array_equal(out.scores, d.scores[kept])
    np.testing.assert_array_equal(out.class_ids, d.class_ids[kept])
    assert len(filter_detections(d, COCO_NAMES, cam, 100, 100)) == len(kept)


def test_lookup_arrays_and_floor() -> None:
    f = ClassFilter.from_camera(camera(class_min_score={"bus": 0.2, "dog": 0.05}), COCO_NAMES, 640, 480)
    assert np.flatnonzero(f.keep).tolist() == sorted(
        [PERSON, BICYCLE, CAR, COCO_NAMES.index("motorcycle"), BUS, TRUCK]
    )
    assert f.min_scores[BUS] == pytest.approx(0.2) and f.min_scores[CAR] == pytest.approx(0.35)
    assert f.min_score == pytest.approx(0.2)  # the dog's 0.05 does not count: dogs are not kept
    assert (f.min_area_px, f.max_area_px) == (0.0, 640 * 480)


def test_model_with_other_classes(caplog: pytest.LogCaptureFixture) -> None:
    """Names the model lacks are ignored with a warning; ids beyond the names are dropped, not an error."""
    names = ("car", "person")
    with caplog.at_level(logging.WARNING, logger="edge.vision.filters"):
        f = ClassFilter.from_camera(camera(classes=["car", "bus"]), names, 100, 100)
    assert "camera gate" in caplog.text and "'bus'" in caplog.text
    out = f.apply(dets((0, 0.9, BOX), (1, 0.9, BOX), (7, 0.9, BOX), (-1, 0.9, BOX)))
    assert out.class_ids.tolist() == [0]


def test_empty_input_and_nothing_kept() -> None:
    f = ClassFilter.from_camera(camera(), COCO_NAMES, 100, 100)
    assert len(f.apply(Detections.empty())) == 0
    nothing = ClassFilter.from_camera(camera(classes=["car"]), ("person",), 100, 100)
    assert nothing.min_score == 1.0
    assert len(nothing.apply(dets((0, 0.9, BOX)))) == 0


def test_floor_keeps_weak_boxes_of_kept_classes_and_thresholds_tell_them_apart() -> None:
    cf = ClassFilter.from_camera(camera(class_min_score={"car": 0.6}), COCO_NAMES, 1000, 1000)
    d = dets(
        (2, 0.3, (0, 0, 50, 50)),
        (2, 0.7, (0, 0, 50, 50)),
        (0, 0.3, (0, 0, 50, 50)),
        (16, 0.9, (0, 0, 50, 50)),
    )
    assert len(cf.apply(d)) == 1  # only the confident car
    weak = cf.apply(d, floor=0.1)
    assert weak.class_ids.tolist() == [2, 2, 0]  # the dog stays out whatever its score
    np.testing.assert_allclose(cf.thresholds(weak), [0.6, 0.6, 0.35])
