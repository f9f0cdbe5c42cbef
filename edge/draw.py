"""Drawing boxes, lines, zones and direction arrows on frames: for `snapshot` and for event JPEGs.

Only called off the detection loop's critical path (the snapshot worker) or by the CLI.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import cv2
import numpy as np

from edge.camera_config import CameraConfig
from edge.localname import name_label
from edge.records import Detections, FloatArray, ImageArray

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72)]


def _color(i: int) -> tuple[int, int, int]:
    return _PALETTE[i % len(_PALETTE)]


def ascii_text(text: str) -> str:
    """OpenCV's Hershey fonts have no accents: 'về phía tây' is drawn as 've phia tay', never as '?'."""
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return (
        "".join(c for c in folded if not unicodedata.combining(c)).encode("ascii", "replace").decode("ascii")
    )


def _label(
    img: ImageArray, text: str, x: int, y: int, color: tuple[int, int, int], align_right: bool = False
) -> None:
    text = ascii_text(text)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    if align_right:
        x -= tw + 4
    x = min(max(x, 0), max(img.shape[1] - tw - 4, 0))
    y = max(y, th + 4)
    cv2.rectangle(img, (x, y - th - 4), (x + tw + 4, y), color, -1)
    cv2.putText(img, text, (x + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def draw_geometry(img: ImageArray, camera: CameraConfig) -> ImageArray:
    """Draw the camera's zones (filled, translucent) and lines with their `in`/`out` arrows."""
    out: ImageArray = img.copy()
    h, w = out.shape[:2]
    sx, sy = camera.scale(w, h)
    overlay = out.copy()
    for i, (name, zone) in enumerate(camera.zones.items()):
        pts = np.array([[x * sx, y * sy] for x, y in zone.points], dtype=np.int32)
        cv2.fillPoly(overlay, [pts], _color(i + 3))
        cv2.polylines(out, [pts], True, _color(i + 3), 2, cv2.LINE_AA)
        _label(out, f"zone {name}", int(pts[:, 0].min()), int(pts[:, 1].min()) + 14, _color(i + 3))
        if zone.direction is not None:
            c = pts.mean(axis=0)
            d = np.array(zone.direction, dtype=np.float64)
            d = d / (np.linalg.norm(d) or 1.0) * 40
            cv2.arrowedLine(
                out,
                (int(c[0]), int(c[1])),
                (int(c[0] + d[0]), int(c[1] + d[1])),
                (255, 255, 255),
                2,
                tipLength=0.3,
            )
    out = np.asarray(cv2.addWeighted(overlay, 0.25, out, 0.75, 0), dtype=np.uint8)
    for name, mask in camera.privacy_masks.items():  # already black in the frame: outline and name only
        pts = np.array([[x * sx, y * sy] for x, y in mask.points], dtype=np.int32)
        cv2.polylines(out, [pts], True, (128, 128, 128), 1, cv2.LINE_AA)
        _label(out, f"privacy {name}", int(pts[:, 0].min()), int(pts[:, 1].min()) + 14, (90, 90, 90))
    for name, line in camera.lines.items():
        (x1, y1), (x2, y2) = line.points
        a = np.array([x1 * sx, y1 * sy])
        b = np.array([x2 * sx, y2 * sy])
        cv2.line(out, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (0, 255, 255), 2, cv2.LINE_AA)
        d = b - a
        n = np.array([-d[1], d[0]]) / (math.hypot(d[0], d[1]) or 1.0)  # right-hand normal: the `in` side
        mid = (a + b) / 2
        for sign, label in ((1, name_label(line.in_name)), (-1, name_label(line.out_name))):
            tip = mid + sign * n * 45
            cv2.arrowedLine(
                out, (int(mid[0]), int(mid[1])), (int(tip[0]), int(tip[1])), (0, 255, 255), 2, tipLength=0.3
            )
            # The label stands beyond the arrow's tip on the arrow's own side, so the two never overlap.
            _label(
                out,
                f"{'in' if sign > 0 else 'out'}: {label}",
                int(tip[0] + 6 * sign * n[0]),
                int(tip[1] + 14 * sign * n[1]) + 5,
                (0, 140, 140),
                align_right=bool(sign * n[0] < -0.3),
            )
        _label(out, f"line {name}", int(a[0]), int(a[1]) - 4, (0, 140, 140))
    return out


def _draw_boxes(
    img: ImageArray, boxes: FloatArray, labels: list[str], colors: list[tuple[int, int, int]]
) -> ImageArray:
    out: ImageArray = img.copy()
    for box, label, color in zip(boxes, labels, colors, strict=True):
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        _label(out, label, x1, y1, color)
    return out


def _name(names: Sequence[str], cls: int) -> str:
    return names[cls] if 0 <= cls < len(names) else str(cls)


def draw_detections(img: ImageArray, dets: Detections, names: Sequence[str]) -> ImageArray:
    """Boxes coloured by class, labelled with class name and score."""
    labels = [f"{_name(names, int(c))} {s:.2f}" for c, s in zip(dets.class_ids, dets.scores, strict=True)]
    return _draw_boxes(img, dets.xyxy, labels, [_color(int(c)) for c in dets.class_ids])


def event_jpeg(
    img: ImageArray,
    box: tuple[float, float, float, float] | None,
    caption: str,
    max_width: int,
    quality: int,
) -> bytes:
    """JPEG of the frame with the event's object boxed, scaled down to `max_width`."""
    out = img.copy()
    if box is not None:
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 3)
    if caption:
        _label(out, caption, 4, 20, (0, 0, 160))
    h, w = out.shape[:2]
    if w > max_width:
        out = cv2.resize(out, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())
