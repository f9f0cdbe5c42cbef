"""Pure-numpy pre- and post-processing of YOLO-family detectors: letterbox, decode, class-aware NMS.

Kept apart from `edge.vision.detector` so that the maths can be tested on hand-made tensors without a model
and without onnxruntime. The per-frame path works on whole arrays: its only Python loop is the greedy
NMS loop, which runs once per *kept* box (a few dozen per frame), never once per candidate.

Boxes are `xyxy` in pixels throughout. Two letterbox conventions exist and must not be mixed up:
Ultralytics centres the resized image on the canvas, YOLOX puts it at the top-left corner and pads
to the bottom-right. Both pad with grey 114.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.geometry import iou_f32, iou_one_to_many
from edge.records import FloatArray, ImageArray, IntArray

PAD_VALUE = 114
YOLOX_STRIDES: tuple[int, ...] = (8, 16, 32)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was placed on the model's input canvas, so boxes can be mapped back.

    `scale_x` / `scale_y` are the resized size over the frame size (equal up to rounding), `pad_x` /
    `pad_y` the offset of the resized image on the canvas, in input pixels.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int

    def to_frame(self, xyxy: FloatArray) -> FloatArray:
        """Map boxes from input-canvas pixels back to frame pixels, clipped to the frame."""
        if xyxy.shape[0] == 0:
            return np.zeros((0, 4), np.float32)
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        out: FloatArray = (xyxy - offset) / scale
        limits = np.array([self.frame_w, self.frame_h, self.frame_w, self.frame_h], np.float32)
        return np.clip(out, 0.0, limits).astype(np.float32)


def letterbox_geometry(frame_w: int, frame_h: int, input_w: int, input_h: int, centered: bool) -> Letterbox:
    """Where a frame lands on the canvas, following each family's own preprocessing exactly.

    Ultralytics rounds the resized size and splits the padding in two (`round(d - 0.1)` on the top/left
    side, as its `LetterBox` does); YOLOX truncates the resized size and pads only right and bottom.
    Matching the training-time convention matters: a one-pixel shift costs recall on small objects.
    """
    ratio = min(input_w / frame_w, input_h / frame_h)
    if centered:
        new_w, new_h = round(frame_w * ratio), round(frame_h * ratio)
        pad_x = float(round((input_w - new_w) / 2 - 0.1))
        pad_y = float(round((input_h - new_h) / 2 - 0.1))
    else:
        new_w, new_h = int(frame_w * ratio), int(frame_h * ratio)
        pad_x = pad_y = 0.0
    new_w, new_h = max(1, new_w), max(1, new_h)
    return Letterbox(new_w / frame_w, new_h / frame_h, pad_x, pad_y, frame_w, frame_h)


def letterbox(image: ImageArray, input_w: int, input_h: int, centered: bool) -> tuple[ImageArray, Letterbox]:
    """Resize `image` (h, w, 3) into a new grey canvas of the model's input size, keeping its aspect.

    A fresh canvas per call (a 0.5 MB fill) keeps the detector free of shared buffers.
    """
    import cv2

    frame_h, frame_w = int(image.shape[0]), int(image.shape[1])
    box = letterbox_geometry(frame_w, frame_h, input_w, input_h, centered)
    new_w = round(frame_w * box.scale_x)
    new_h = round(frame_h * box.scale_y)
    resized: ImageArray = image
    if (new_w, new_h) != (frame_w, frame_h):
        resized = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR), np.uint8)
    canvas = np.full((input_h, input_w, 3), PAD_VALUE, np.uint8)
    x0, y0 = int(box.pad_x), int(box.pad_y)
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return canvas, box


def cxcywh_to_xyxy(boxes: npt.NDArray[np.float32]) -> FloatArray:
    half = boxes[:, 2:4] * 0.5
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1).astype(np.float32)


Decoded = tuple[FloatArray, FloatArray, IntArray]


def class_rows(wanted: npt.NDArray[np.bool_]) -> IntArray | None:
    """The class ids that compete for a box's label, from a camera's keep-mask over the model's classes.

    A camera that counts vehicles should read a box scored "cell phone 0.5, car 0.3" as a car at 0.3,
    as a detector trained on its classes alone would, instead of dropping it as a cell phone. None (every
    class competes) when the mask is empty or wants everything.
    """
    if not wanted.any() or wanted.all():
        return None
    return np.flatnonzero(wanted).astype(np.int64)


def decode_ultralytics(
    output: npt.NDArray[np.float32], min_score: float, classes: IntArray | None = None
) -> Decoded:
    """Decode an Ultralytics YOLOv8/YOLO11 head `[1, 4 + nc, N]` into boxes in input pixels.

    Rows 0..3 are cx, cy, w, h in input pixels, the others per-class scores (already sigmoid; no
    objectness). Each candidate keeps its best class, as Ultralytics does without `multi_label`; with
    `classes` (model class ids) only those compete (see `class_rows`).
    """
    pred = output[0]
    class_scores = pred[4:] if classes is None else pred[4:][classes]
    scores = class_scores.max(axis=0)
    keep = np.flatnonzero(scores >= min_score)
    class_ids = _model_ids(np.argmax(class_scores[:, keep], axis=0), classes)  # only the few survivors
    xyxy = cxcywh_to_xyxy(pred[:4, keep].T)
    return xyxy, scores[keep].astype(np.float32), class_ids


def _model_ids(best: npt.NDArray[np.intp], classes: IntArray | None) -> IntArray:
    """Turn argmax positions among the competing classes back into the model's class ids."""
    return (best if classes is None else classes[best]).astype(np.int64)


def yolox_grid(
    input_w: int, input_h: int, strides: tuple[int, ...] = YOLOX_STRIDES
) -> tuple[FloatArray, FloatArray]:
    """Grid cell origins (N, 2) and strides (N, 1) in the order of the YOLOX head's rows.

    The head concatenates its levels from the finest stride up, each level in row-major order.
    """
    cells: list[FloatArray] = []
    steps: list[FloatArray] = []
    for stride in strides:
        ys, xs = np.meshgrid(np.arange(input_h // stride), np.arange(input_w // stride), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32))
        steps.append(np.full((xs.size, 1), stride, np.float32))
    return np.concatenate(cells), np.concatenate(steps)


def yolox_anchor_count(input_w: int, input_h: int, strides: tuple[int, ...] = YOLOX_STRIDES) -> int:
    return sum((input_h // s) * (input_w // s) for s in strides)


def decode_yolox(
    output: npt.NDArray[np.float32],
    grid: FloatArray,
    strides: FloatArray,
    min_score: float,
    classes: IntArray | None = None,
) -> Decoded:
    """Decode a raw YOLOX head `[1, N, 5 + nc]` (exported with `decode_in_inference=False`).

    Columns 0..1 are cell offsets, 2..3 log sizes, 4 objectness and the rest class scores; the export
    already applies the sigmoid to objectness and classes (values lie in 0..1), only the box needs
    the grid. Score = objectness x best class score, as in YOLOX's own `postprocess`; with `classes`
    (model class ids) only those compete.
    """
    pred = output[0]
    class_scores = pred[:, 5:] if classes is None else pred[:, 5 + classes]
    scores = pred[:, 4] * class_scores.max(axis=1)
    keep = np.flatnonzero(scores >= min_score)
    rows = pred[keep]
    class_ids = _model_ids(np.argmax(class_scores[keep], axis=1), classes)
    step = strides[keep]
    centres = (rows[:, :2] + grid[keep]) * step
    sizes = np.exp(np.minimum(rows[:, 2:4], 20.0)) * step  # the cap keeps a corrupt output finite
    xyxy = cxcywh_to_xyxy(np.concatenate([centres, sizes], axis=1))
    return xyxy, scores[keep].astype(np.float32), class_ids


def nms(
    xyxy: FloatArray,
    scores: FloatArray,
    class_ids: IntArray,
    iou_threshold: float,
    *,
    max_det: int = 300,
    max_candidates: int = 3000,
    matrix_limit: int = 256,
) -> IntArray:
    """Class-aware greedy NMS; returns indices of kept boxes, best score first.

    Boxes of different classes never suppress each other: each class is shifted by its own offset
    larger than any coordinate (the trick torchvision's `batched_nms` uses), so one pass handles all
    classes. Only the `max_candidates` best boxes enter, which bounds the cost on a noisy frame. Up to
    `matrix_limit` candidates (a usual frame has 50-90 at the tracker's low score floor) all pair IoUs
    are computed at once and the greedy pass only reads them; beyond, one IoU row per kept box (bounded
    memory). Both keep the same boxes.
    """
    n = int(scores.shape[0])
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")[:max_candidates]
    span = float(np.max(xyxy)) - min(float(np.min(xyxy)), 0.0) + 1.0
    shifted = xyxy[order] + (class_ids[order].astype(np.float32) * span)[:, None]
    kept: list[int] = []
    if order.shape[0] <= matrix_limit:
        keeps = iou_f32(shifted, shifted) <= iou_threshold  # row i: the boxes box i lets live
        alive = np.ones(order.shape[0], np.bool_)
        for i in range(order.shape[0]):
            if alive[i]:
                kept.append(i)
                if len(kept) == max_det:
                    break
                alive &= keeps[i]
        return order[np.asarray(kept, np.int64)].astype(np.int64)
    remaining = np.arange(order.shape[0])
    while remaining.size and len(kept) < max_det:
        best = int(remaining[0])
        kept.append(best)
        rest = remaining[1:]
        remaining = rest[iou_one_to_many(shifted[best], shifted[rest]) <= iou_threshold]
    return order[np.asarray(kept, np.int64)].astype(np.int64)
