"""Letterbox, decoding and NMS on hand-made tensors: the maths of the detector without any model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.geometry import iou_one_to_many as box_iou
from edge.vision.decode import (
    PAD_VALUE,
    Letterbox,
    decode_ultralytics,
    decode_yolox,
    letterbox,
    letterbox_geometry,
    nms,
    yolox_anchor_count,
    yolox_grid,
)


@pytest.mark.parametrize(
    ("frame", "size", "centered", "scale", "pad"),
    [
        ((768, 576), (320, 320), True, 320 / 768, (0.0, 40.0)),  # wide frame: bands top and bottom
        ((576, 768), (320, 320), True, 320 / 768, (40.0, 0.0)),  # tall frame: bands left and right
        ((768, 576), (416, 416), False, 416 / 768, (0.0, 0.0)),  # YOLOX: image at the top-left
        ((320, 320), (320, 320), True, 1.0, (0.0, 0.0)),  # already the input size
        ((1920, 1080), (640, 640), True, 1 / 3, (0.0, 140.0)),
    ],
)
def test_letterbox_geometry(
    frame: tuple[int, int], size: tuple[int, int], centered: bool, scale: float, pad: tuple[float, float]
) -> None:
    box = letterbox_geometry(*frame, *size, centered=centered)
    assert box.scale_x == pytest.approx(scale, abs=2 / frame[0])
    assert box.scale_y == pytest.approx(scale, abs=2 / frame[1])
    assert (box.pad_x, box.pad_y) == pad


@pytest.mark.parametrize("centered", [True, False])
@pytest.mark.parametrize(("frame_w", "frame_h"), [(768, 576), (400, 700), (1280, 720)])
def test_letterbox_inverse_maps_canvas_boxes_back_to_the_frame(
    centered: bool, frame_w: int, frame_h: int
) -> None:
    """Paint a white box in a frame, find it on the canvas, map it back: within a resize pixel."""
    frame = np.zeros((frame_h, frame_w, 3), np.uint8)
    x1, y1, x2, y2 = frame_w // 5, frame_h // 3, frame_w // 2, frame_h * 3 // 4
    frame[y1:y2, x1:x2] = 255
    canvas, box = letterbox(frame, 320, 256, centered=centered)
    assert canvas.shape == (256, 320, 3)
    ys, xs = np.nonzero(canvas[:, :, 0] > 200)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = box.to_frame(found)
    tolerance = 1.5 / min(box.scale_x, box.scale_y)  # one canvas pixel of blur on each side
    np.testing.assert_allclose(back[0], [x1, y1, x2, y2], atol=tolerance)
    # The padding is grey 114 and lies where each family puts it: around (Ultralytics) or after (YOLOX).
    x0, y0 = int(box.pad_x), int(box.pad_y)
    image_area = np.zeros(canvas.shape[:2], np.bool_)
    image_area[y0 : y0 + round(frame_h * box.scale_y), x0 : x0 + round(frame_w * box.scale_x)] = True
    assert np.all(canvas[~image_area] == PAD_VALUE)
    assert (~image_area).any()
    if not centered:
        assert x0 == y0 == 0


def test_to_frame_clips_to_the_frame_and_keeps_empty_shape() -> None:
    box = Letterbox(scale_x=0.5, scale_y=0.5, pad_x=0.0, pad_y=10.0, frame_w=100, frame_h=80)
    out = box.to_frame(np.array([[-4.0, 0.0, 60.0, 60.0]], np.float32))
    np.testing.assert_allclose(out, [[0.0, 0.0, 100.0, 80.0]])
    assert box.to_frame(np.zeros((0, 4), np.float32)).shape == (0, 4)


def ultralytics_output(rows: list[tuple[float, float, float, float, list[float]]], n: int = 12) -> np.ndarray:
    """A `[1, 4 + nc, n]` head: given candidates first, the rest all-zero."""
    nc = len(rows[0][4])
    out = np.zeros((1, 4 + nc, n), np.float32)
    for j, (cx, cy, w, h, scores) in enumerate(rows):
        out[0, :4, j] = (cx, cy, w, h)
        out[0, 4:, j] = scores
    return out


def test_decode_ultralytics_picks_best_class_and_converts_boxes() -> None:
    out = ultralytics_output(
        [
            (100.0, 50.0, 20.0, 40.0, [0.9, 0.1, 0.0]),
            (10.0, 10.0, 4.0, 4.0, [0.0, 0.2, 0.6]),
            (200.0, 200.0, 10.0, 10.0, [0.1, 0.2, 0.2]),  # below the threshold
        ]
    )
    xyxy, scores, class_ids = decode_ultralytics(out, min_score=0.25)
    np.testing.assert_allclose(xyxy, [[90, 30, 110, 70], [8, 8, 12, 12]])
    np.testing.assert_allclose(scores, [0.9, 0.6])
    assert class_ids.tolist() == [0, 2]
    assert xyxy.dtype == np.float32 and class_ids.dtype == np.int64


def test_decode_ultralytics_nothing_above_threshold() -> None:
    out = ultralytics_output([(1.0, 1.0, 1.0, 1.0, [0.1, 0.1])])
    xyxy, scores, class_ids = decode_ultralytics(out, min_score=0.5)
    assert xyxy.shape == (0, 4) and scores.shape == (0,) and class_ids.shape == (0,)


def test_yolox_grid_order_matches_the_head() -> None:
    """Levels from stride 8 up, each row-major (x fastest), as YOLOX concatenates them."""
    grid, strides = yolox_grid(64, 32)
    assert grid.shape[0] == yolox_anchor_count(64, 32) == 8 * 4 + 4 * 2 + 2 * 1
    assert grid[:3].tolist() == [[0, 0], [1, 0], [2, 0]]
    assert grid[8].tolist() == [0, 1]  # second row of the stride-8 level
    assert grid[32].tolist() == [0, 0] and strides[32, 0] == 16  # first cell of the stride-16 level
    assert strides[-1, 0] == 32
    assert yolox_anchor_count(416, 416) == 3549


def test_decode_yolox_applies_grid_and_stride() -> None:
    grid, strides = yolox_grid(64, 64)
    out = np.zeros((1, grid.shape[0], 5 + 2), np.float32)
    row = 8 * 8 + 1 * 4 + 2  # stride 16, cell x=2, y=1
    out[0, row] = [0.5, 0.25, math.log(2.0), 0.0, 0.9, 0.1, 0.8]
    out[0, 0] = [0.0, 0.0, 0.0, 0.0, 0.3, 0.5, 0.5]  # objectness x class = 0.15: below the threshold
    xyxy, scores, class_ids = decode_yolox(out, grid, strides, min_score=0.25)
    # centre ((2 + 0.5) * 16, (1 + 0.25) * 16) = (40, 20); size (2 * 16, 1 * 16) = (32, 16)
    np.testing.assert_allclose(xyxy, [[24, 12, 56, 28]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.72], atol=1e-6)
    assert class_ids.tolist() == [1]


def test_box_iou_values() -> None:
    box = np.array([0, 0, 10, 10], np.float32)
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(box_iou(box, others), [1.0, 50 / 150, 0.0, 0.0], atol=1e-6)


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32)


def test_nms_suppresses_overlaps_of_the_same_class_only() -> None:
    xyxy = boxes((0, 0, 10, 10), (1, 0, 11, 10), (1, 1, 10, 10), (50, 50, 60, 60))
    scores = np.array([0.6, 0.9, 0.8, 0.5], np.float32)
    class_ids = np.array([0, 0, 2, 0], np.int64)  # box 2 overlaps 0 and 1 but is another class
    keep = nms(xyxy, scores, class_ids, iou_threshold=0.5)
    assert keep.tolist() == [1, 2, 3]  # best first; box 0 is suppressed by box 1 (IoU 0.82)


@pytest.mark.parametrize(("threshold", "kept"), [(0.3, [0]), (0.34, [0, 1])])
def test_nms_suppresses_only_above_the_iou_threshold(threshold: float, kept: list[int]) -> None:
    xyxy = boxes((0, 0, 10, 10), (5, 0, 15, 10))  # IoU 1/3
    keep = nms(xyxy, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64), threshold)
    assert keep.tolist() == kept


def test_nms_limits_and_empty_input() -> None:
    xyxy = boxes(*[(i * 20.0, 0, i * 20.0 + 10, 10) for i in range(10)])
    scores = np.linspace(0.9, 0.5, 10).astype(np.float32)
    assert nms(xyxy, scores, np.zeros(10, np.int64), 0.5, max_det=3).tolist() == [0, 1, 2]
    assert nms(xyxy, scores, np.zeros(10, np.int64), 0.5, max_candidates=4).tolist() == [0, 1, 2, 3]
    empty = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5)
    assert empty.shape == (0,) and empty.dtype == np.int64


def test_nms_class_offset_survives_negative_coordinates() -> None:
    """Decoded boxes may stick out of the canvas before clipping; classes must still stay apart."""
    xyxy = boxes((-30, -30, 5, 5), (-29, -30, 5, 5), (-30, -30, 5, 5))
    keep = nms(xyxy, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 0, 1], np.int64), 0.5)
    assert keep.tolist() == [0, 2]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("max_det", "threshold"), [(300, 0.5), (300, 0.7), (5, 0.5)])
def test_nms_matrix_and_row_paths_keep_the_same_boxes(seed: int, max_det: int, threshold: float) -> None:
    """Clusters of overlapping boxes of three classes: the all-pairs path (up to `matrix_limit`
    candidates) and the one-row-per-kept-box path keep exactly the same boxes in the same order."""
    rng = np.random.default_rng(seed)
    n = 200
    centres = rng.uniform(0, 300, (8, 2))[rng.integers(0, 8, n)] + rng.normal(0, 6, (n, 2))
    wh = rng.uniform(10, 60, (n, 2))
    xyxy = np.concatenate([centres - wh / 2, centres + wh / 2], axis=1).astype(np.float32)
    scores = rng.uniform(0.1, 1.0, n).astype(np.float32)
    class_ids = rng.integers(0, 3, n).astype(np.int64)
    matrix = nms(xyxy, scores, class_ids, threshold, max_det=max_det)
    rows = nms(xyxy, scores, class_ids, threshold, max_det=max_det, matrix_limit=0)
    assert matrix.tolist() == rows.tolist()
    assert 1 < len(matrix) <= min(max_det, n - 1)  # overlaps suppressed, the limit honoured
