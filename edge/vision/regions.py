"""Detection regions: run the detector on parts of the frame at the model's input size, merge at seams.

A 320 px model sees a 1280 px frame at a quarter of its resolution, so a far vehicle of 15x10 px becomes
4x3 px and vanishes. A camera's `detect_regions` (rectangles around its counting lines, a far lane) are
cut out and each is letterboxed to the model's input on its own, so the small objects there are seen
at up to full resolution; the cost is one inference per region. Boxes are mapped back to frame pixels.

`detect_min_scale` makes one camera config right for models of different input sizes: each region is
split into overlapping tiles (`tile_rects`) until the model sees it at no less than that scale (model
input pixels per frame pixel), so a 320 px model gets two tiles where a 416 px model needs one.

Objects on the border between two overlapping regions are seen twice (whole in one, cut in the other)
or cut in both. `merge_regions` handles the seams: boxes touching a region's inner border are "cut";
a cut box mostly inside another box of the same class is dropped; two cut boxes of the same class on
either side of a seam that overlap are joined into their union; then the usual class-aware NMS.

`line_bands` is where regions go when a camera does not draw them (`detect_line_band`): a band around
each counting line, so that riders side by side at a near line are seen at the scale of a tile, not
shrunk with the whole frame into one box or none; the same rule on every camera, no labels needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.records import Detections, ImageArray, IntArray
from edge.vision.decode import nms

BoolArray = npt.NDArray[np.bool_]
Rect = tuple[int, int, int, int]
EDGE_PX = 2.0  # a box within this of a region's inner border is cut
TILE_OVERLAP = 0.1  # neighbouring tiles of one region share this fraction of a tile's extent


def clip_rects(rects: Sequence[tuple[float, float, float, float]], width: int, height: int) -> list[Rect]:
    """Pixel rectangles inside the frame, at least 8x8 (degenerate ones are dropped)."""
    out = []
    for x1, y1, x2, y2 in rects:
        a, b = max(0, round(x1)), max(0, round(y1))
        c, d = min(width, round(x2)), min(height, round(y2))
        if c - a >= 8 and d - b >= 8:
            out.append((a, b, c, d))
    return out


def line_bands(
    lines: Sequence[Sequence[tuple[float, float]]], across: float, along: float, limit: tuple[float, float]
) -> list[tuple[float, float, float, float]]:
    """The axis-aligned box of each segment widened by `across` on both sides and lengthened by `along`
    at both ends (same units as the lines), clipped to `limit` (frame width, height in those units).

    A vehicle is tracked for a while before and after the line, so the band reaches `across` beyond it;
    a diagonal line gets the box around its tilted band. Two lines give two regions (the seams between
    overlapping regions are merged by `merge_regions`).
    """
    if not lines:
        return []
    ends = np.asarray(lines, np.float64).reshape(-1, 2, 2)  # (n, [A, B], xy)
    d = ends[:, 1] - ends[:, 0]
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    a, b = ends[:, 0] - along * d, ends[:, 1] + along * d
    corners = np.stack([a + across * n, a - across * n, b + across * n, b - across * n], axis=1)
    lo = np.clip(corners.min(axis=1), 0.0, limit)
    hi = np.clip(corners.max(axis=1), 0.0, limit)
    return [(float(x1), float(y1), float(x2), float(y2)) for (x1, y1), (x2, y2) in zip(lo, hi, strict=True)]


def band_regions(
    drawn: Sequence[tuple[float, float, float, float]], lines: Sequence[Sequence[tuple[float, float]]],
    band: tuple[float, float], limit: tuple[float, float],
) -> list[tuple[float, float, float, float]]:  # fmt: skip
    """A camera's `detect_regions` under `detect_line_band` [across, along]: the bands of its lines.

    Drawn regions equal to the bands are accepted (a dumped config validates again); others are an error.
    """
    bands = line_bands(lines, *band, limit)
    if drawn and [tuple(map(float, r)) for r in drawn] != bands:
        raise ValueError("detect_line_band: set it or detect_regions, not both")
    if not bands:
        raise ValueError("detect_line_band: the camera has no lines to put a band around")
    return bands


def _splits(extent: int, model_px: int, min_scale: float) -> int:
    """Fewest tiles along one axis whose extent (with the overlap) the model sees at `min_scale`."""
    need = extent * min_scale / model_px  # how many model inputs the whole extent needs
    return max(1, math.ceil((need - TILE_OVERLAP) / (1.0 - TILE_OVERLAP) - 1e-9))


def tile_rects(rects: Sequence[Rect], input_size: tuple[int, int], min_scale: float) -> list[Rect]:
    """Each region split into a grid of overlapping tiles seen at `min_scale` or more; 0 keeps them whole.

    The letterbox scale of a tile is min(model width / tile width, model height / tile height); tiles
    of one region have equal size and overlap by `TILE_OVERLAP` of it, so an object on a seam is whole
    in one of them when it is smaller than the overlap (`merge_regions` joins the larger ones).
    """
    if min_scale <= 0:
        return list(rects)
    out: list[Rect] = []
    for x1, y1, x2, y2 in rects:
        nx = _splits(x2 - x1, input_size[0], min_scale)
        ny = _splits(y2 - y1, input_size[1], min_scale)
        tw = (x2 - x1) / (nx - (nx - 1) * TILE_OVERLAP)
        th = (y2 - y1) / (ny - (ny - 1) * TILE_OVERLAP)
        for j in range(ny):
            for i in range(nx):
                a = x1 + i * tw * (1.0 - TILE_OVERLAP)
                b = y1 + j * th * (1.0 - TILE_OVERLAP)
                out.append((round(a), round(b), min(x2, round(a + tw)), min(y2, round(b + th))))
    return out


def plan_regions(
    regions: Sequence[tuple[float, float, float, float]], scale: tuple[float, float],
    frame_size: tuple[int, int], input_size: tuple[int, int] | None, min_scale: float,
) -> list[Rect]:  # fmt: skip
    """A camera's `detect_regions` (config units, `scale` to pixels) as the pixel tiles the detector runs on.

    `input_size` is the model's (width, height); unknown (None) keeps the regions whole.
    """
    sx, sy = scale
    rects = clip_rects([(a * sx, b * sy, c * sx, d * sy) for a, b, c, d in regions], *frame_size)
    return tile_rects(rects, input_size, min_scale) if input_size else rects


def cut_mask(xyxy: npt.NDArray[np.float32], rect: Rect, width: int, height: int) -> BoolArray:
    """Boxes (region pixels) that touch a border of `rect` lying inside the frame (not the frame's edge)."""
    x1, y1, x2, y2 = rect
    w, h = x2 - x1, y2 - y1
    out: BoolArray = (
        ((xyxy[:, 0] <= EDGE_PX) & (x1 > 0))
        | ((xyxy[:, 1] <= EDGE_PX) & (y1 > 0))
        | ((xyxy[:, 2] >= w - EDGE_PX) & (x2 < width))
        | ((xyxy[:, 3] >= h - EDGE_PX) & (y2 < height))
    )
    return out


def _ioa(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Intersection over the area of each box of `a` (rows) with each box of `b` (columns)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area = np.prod(np.clip(a[:, 2:] - a[:, :2], 1e-6, None), axis=1)
    return np.asarray(inter / area[:, None], np.float64)


def merge_regions(
    parts: Sequence[Detections], cut: Sequence[BoolArray], iou: float, min_ioa: float = 0.6
) -> Detections:
    """One detection per object from the detections of several regions (boxes already in frame pixels)."""
    if not parts:
        return Detections.empty()
    region = np.concatenate([np.full(len(d), i) for i, d in enumerate(parts)]).astype(np.int64)
    xyxy = np.concatenate([d.xyxy for d in parts]).reshape(-1, 4).astype(np.float32)
    scores = np.concatenate([d.scores for d in parts]).astype(np.float32)
    classes = np.concatenate([d.class_ids for d in parts]).astype(np.int64)
    is_cut = np.concatenate(list(cut)).astype(bool) if cut else np.zeros(len(xyxy), bool)
    if xyxy.shape[0] == 0:
        return Detections.empty()
    same = (classes[:, None] == classes[None, :]) & (region[:, None] != region[None, :])
    ioa = _ioa(xyxy, xyxy)
    # A cut box mostly inside a box of another region that is whole: the whole one has the object.
    inside_whole = (same & (ioa >= min_ioa) & ~is_cut[None, :]).any(axis=1) & is_cut
    keep = ~inside_whole
    # Two cut halves of one object across a seam: join them (the better score stays).
    halves = same & is_cut[:, None] & is_cut[None, :] & (ioa > 0.0) & keep[:, None] & keep[None, :]
    for i, j in zip(*np.nonzero(np.triu(halves)), strict=True):
        if keep[i] and keep[j]:
            xyxy[i, :2] = np.minimum(xyxy[i, :2], xyxy[j, :2])
            xyxy[i, 2:] = np.maximum(xyxy[i, 2:], xyxy[j, 2:])
            scores[i] = max(scores[i], scores[j])
            keep[j] = False
    idx = np.flatnonzero(keep)
    order = nms(xyxy[idx], scores[idx], classes[idx], iou, max_det=int(idx.size))
    sel = np.sort(idx[order])
    return Detections(xyxy[sel], scores[sel], classes[sel])


class _Detects(Protocol):
    names: tuple[str, ...]

    def detect(
        self, image: ImageArray, min_score: float = ..., classes: IntArray | None = None
    ) -> Detections: ...


class RegionDetector:
    """A detector seam that runs the wrapped detector on each region and merges the results."""

    def __init__(
        self, detector: _Detects, rects: Sequence[Rect], frame_size: tuple[int, int], iou: float
    ) -> None:
        self.detector = detector
        self.names = detector.names
        self.rects = list(rects)
        self.frame_size = frame_size
        self.iou = iou

    def detect(
        self, image: ImageArray, min_score: float = 0.25, classes: IntArray | None = None
    ) -> Detections:
        width, height = self.frame_size
        parts: list[Detections] = []
        cuts: list[BoolArray] = []
        for rect in self.rects:
            x1, y1, x2, y2 = rect
            crop = np.ascontiguousarray(image[y1:y2, x1:x2])
            dets = self.detector.detect(crop, min_score, classes)
            cuts.append(cut_mask(dets.xyxy, rect, width, height))
            parts.append(
                Detections(dets.xyxy + np.array([x1, y1, x1, y1], np.float32), dets.scores, dets.class_ids)
            )
        return merge_regions(parts, cuts, self.iou)
