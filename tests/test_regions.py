"""Detection regions: boxes mapped back from regions and merged at the seams, on hand-made boxes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.camera_config import CameraConfig
from edge.records import Detections, ImageArray
from edge.vision.regions import RegionDetector, clip_rects, cut_mask, merge_regions, plan_regions, tile_rects

CAR, TRUCK = 2, 7
W, H = 400, 200
LEFT, RIGHT = (0, 0, 220, 200), (180, 0, 400, 200)  # overlap 180..220
Box = tuple[float, float, float, float]


def part(*objs: tuple[Box, float, int]) -> Detections:
    return Detections(
        np.array([o[0] for o in objs], np.float32).reshape(-1, 4),
        np.array([o[1] for o in objs], np.float32),
        np.array([o[2] for o in objs], np.int64),
    )


def cut_of(d: Detections, rect: tuple[int, int, int, int]) -> np.ndarray:
    local = d.xyxy - np.array([rect[0], rect[1], rect[0], rect[1]], np.float32)
    return cut_mask(local, rect, W, H)


SEAM_CASES = [
    pytest.param(
        [((170, 50, 210, 80), 0.8, CAR)], [((180, 50, 220, 80), 0.6, CAR)], [((170, 50, 210, 80), 0.8, CAR)],
        id="whole-left-cut-right",
    ),
    pytest.param(
        [((190, 50, 220, 80), 0.5, CAR)], [((180, 50, 235, 80), 0.7, CAR)], [((180, 50, 235, 80), 0.7, CAR)],
        id="cut-left-whole-right",
    ),
    pytest.param(
        [((195, 50, 220, 80), 0.5, CAR)], [((180, 52, 210, 81), 0.6, CAR)], [((180, 50, 220, 81), 0.6, CAR)],
        id="cut-in-both-joined",
    ),
    pytest.param(
        [((190, 50, 210, 80), 0.8, CAR)], [((191, 51, 211, 81), 0.7, CAR)], [((190, 50, 210, 80), 0.8, CAR)],
        id="whole-in-both-nms",
    ),
    pytest.param(
        [((20, 50, 60, 80), 0.8, CAR)], [((300, 50, 340, 80), 0.7, TRUCK)],
        [((20, 50, 60, 80), 0.8, CAR), ((300, 50, 340, 80), 0.7, TRUCK)],
        id="two-objects-apart",
    ),
    pytest.param(
        [((0, 50, 30, 80), 0.8, CAR)], [((370, 50, 400, 80), 0.7, CAR)],
        [((0, 50, 30, 80), 0.8, CAR), ((370, 50, 400, 80), 0.7, CAR)],
        id="frame-edges-are-not-seams",
    ),
    pytest.param(
        [((195, 50, 220, 80), 0.5, CAR)], [((180, 52, 210, 81), 0.6, TRUCK)],
        [((195, 50, 220, 80), 0.5, CAR), ((180, 52, 210, 81), 0.6, TRUCK)],
        id="different-classes-not-joined",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("left", "right", "expected"), SEAM_CASES)
def test_merge_at_seams(
    left: list[tuple[Box, float, int]],
    right: list[tuple[Box, float, int]],
    expected: list[tuple[Box, float, int]],
) -> None:
    a, b = part(*left), part(*right)
    got = merge_regions([a, b], [cut_of(a, LEFT), cut_of(b, RIGHT)], iou=0.5)
    rows = sorted(
        (tuple(float(v) for v in box), round(float(s), 2), int(c))
        for box, s, c in zip(got.xyxy, got.scores, got.class_ids, strict=True)
    )
    assert rows == sorted(expected)


def test_cut_mask_only_inner_borders() -> None:
    rect = (100, 0, 300, 200)  # inner borders left and right; top and bottom are the frame's edges
    boxes = np.array([[0, 10, 20, 30], [180, 10, 200, 30], [50, 0, 80, 20], [50, 180, 80, 200]], np.float32)
    assert cut_mask(boxes, rect, W, H).tolist() == [True, True, False, False]


def test_clip_rects_to_frame_and_drop_degenerate() -> None:
    assert clip_rects([(-10, -5, 100.4, 50), (390, 0, 420, 5), (10, 10, 60, 60)], W, H) == [
        (0, 0, 100, 50),
        (10, 10, 60, 60),
    ]


class Squares:
    """Finds bright squares in whatever image it is given (crop or frame): a detector seam."""

    names: tuple[str, ...] = ("person", "bicycle", "car")

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: ImageArray, min_score: float = 0.25, classes: object = None) -> Detections:
        self.shapes.append(image.shape)
        ys, xs = np.nonzero(image[:, :, 0] > 200)
        if xs.size == 0:
            return Detections.empty()
        return part(((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)), 0.9, CAR))


def test_region_detector_maps_boxes_back_to_the_frame() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    image[60:80, 300:330] = 255
    det = Squares()
    got = RegionDetector(det, [LEFT, RIGHT], (W, H), 0.5).detect(image)
    assert det.shapes == [(200, 220, 3), (200, 220, 3)]
    assert got.xyxy.tolist() == [[300.0, 60.0, 330.0, 80.0]]


def test_detect_regions_config_is_checked() -> None:
    base = {"id": "c", "source": "x.mp4", "reference_size": [400, 200]}
    assert CameraConfig.model_validate({**base, "detect_regions": [[0, 0, 220, 200]]}).detect_regions
    for bad in ([[0, 0, 500, 200]], [[100, 0, 50, 200]]):
        with pytest.raises(ValueError, match=r"detect_regions\[0\]"):
            CameraConfig.model_validate({**base, "detect_regions": bad})


BAND = (320, 300, 860, 540)  # a 540x240 band around a counting line


@pytest.mark.parametrize(
    ("rect", "model", "min_scale", "expected"),
    [
        pytest.param(BAND, (320, 320), 0.0, [BAND], id="off-keeps-the-region"),
        pytest.param(BAND, (416, 416), 0.75, [BAND], id="416px-model-sees-it-whole-at-0.77"),
        pytest.param(
            BAND, (320, 320), 0.75, [(320, 300, 604, 540), (576, 300, 860, 540)], id="320px-model-two-tiles"
        ),
        pytest.param(
            (0, 0, 300, 300), (320, 320), 2.0,
            [(0, 0, 158, 158), (142, 0, 300, 158), (0, 142, 158, 300), (142, 142, 300, 300)],
            id="grid-in-both-axes",
        ),
        pytest.param((0, 0, 100, 50), (320, 320), 3.0, [(0, 0, 100, 50)], id="small-region-stays-whole"),
    ],
)  # fmt: skip
def test_tiles_reach_the_scale_and_overlap(
    rect: tuple[int, int, int, int], model: tuple[int, int], min_scale: float, expected: list[tuple[int, ...]]
) -> None:
    tiles = tile_rects([rect], model, min_scale)
    assert tiles == expected
    for x1, y1, x2, y2 in tiles:
        assert min(model[0] / (x2 - x1), model[1] / (y2 - y1)) >= min_scale - 0.01
    # The tiles cover the region exactly, neighbours overlap.
    assert min(t[0] for t in tiles) == rect[0] and max(t[2] for t in tiles) == rect[2]
    assert min(t[1] for t in tiles) == rect[1] and max(t[3] for t in tiles) == rect[3]
    xs = sorted({(t[0], t[2]) for t in tiles})
    assert all(a[1] > b[0] for a, b in itertools.pairwise(xs))


def test_plan_regions_scales_clips_and_tiles() -> None:
    # Config units at half the frame's resolution; an unknown model input size keeps the region whole.
    assert plan_regions([(160, 150, 430, 270)], (2.0, 2.0), (1024, 576), None, 0.75) == [BAND]
    assert plan_regions([(160, 150, 430, 270)], (2.0, 2.0), (1024, 576), (320, 320), 0.75) == [
        (320, 300, 604, 540),
        (576, 300, 860, 540),
    ]
    assert plan_regions([(-10, 0, 600, 100)], (1.0, 1.0), (400, 200), (320, 320), 0.0) == [(0, 0, 400, 100)]


def test_region_detector_sees_an_object_on_a_seam_whole() -> None:
    """A square inside the overlap of two tiles is one detection, with the frame's coordinates."""
    image = np.zeros((H, W, 3), np.uint8)
    image[60:80, 190:210] = 255  # inside the overlap 180..220 of LEFT and RIGHT
    got = RegionDetector(Squares(), [LEFT, RIGHT], (W, H), 0.5).detect(image)
    assert got.xyxy.tolist() == [[190.0, 60.0, 210.0, 80.0]]


def test_detect_min_scale_config_is_bounded() -> None:
    base = {"id": "c", "source": "x.mp4", "reference_size": [400, 200]}
    assert CameraConfig.model_validate({**base, "detect_min_scale": 0.75}).detect_min_scale == 0.75
    with pytest.raises(ValueError, match="detect_min_scale"):
        CameraConfig.model_validate({**base, "detect_min_scale": -1})
