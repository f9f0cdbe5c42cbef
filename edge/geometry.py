"""Plane geometry for the rules: line sides, segment crossings, polygon masks and the ground homography.

Everything works on all points of a frame at once (numpy arrays of shape (n, 2)); nothing here loops over
objects. Image coordinates have y pointing down, so "right-hand side" of a segment A -> B is where
`cross(B - A, P - A) > 0` (for a horizontal segment drawn left to right: below it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Typical image height of a whole object in metres, used to turn pixel distances into rough metres when a
# camera has no ground calibration (an object's box height is a local scale that follows perspective).
NOMINAL_HEIGHT_M: dict[str, float] = {
    "person": 1.7,
    "bicycle": 1.6,
    "motorcycle": 1.6,
    "car": 1.5,
    "bus": 3.2,
    "truck": 3.0,
}
DEFAULT_HEIGHT_M = 1.6


@dataclass(frozen=True, slots=True)
class Segment:
    """A segment A -> B in pixels; `signed_distance` is positive on the right-hand (`in`) side."""

    a: tuple[float, float]
    b: tuple[float, float]

    @property
    def length(self) -> float:
        return float(np.hypot(self.b[0] - self.a[0], self.b[1] - self.a[1]))

    def signed_distance(self, points: npt.ArrayLike) -> F64:
        """Signed pixel distance of each point (n, 2) to the infinite line through the segment."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        ax, ay = self.a
        dx, dy = self.b[0] - ax, self.b[1] - ay
        cross = dx * (p[:, 1] - ay) - dy * (p[:, 0] - ax)
        return np.asarray(cross / max(self.length, 1e-12), dtype=np.float64)

    def crossing_param(self, p0: npt.ArrayLike, p1: npt.ArrayLike) -> F64:
        """Where each move p0 -> p1 crosses the line, as a fraction of A -> B (0 at A, 1 at B).

        Moves that do not change side get NaN. A value outside [0, 1] means the object passed beside
        the segment, not through it.
        """
        q0 = np.asarray(p0, dtype=np.float64).reshape(-1, 2)
        q1 = np.asarray(p1, dtype=np.float64).reshape(-1, 2)
        d0 = self.signed_distance(q0)
        d1 = self.signed_distance(q1)
        denom = d0 - d1
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(np.abs(denom) > 1e-12, d0 / denom, np.nan)
        x = q0 + frac[:, None] * (q1 - q0)
        a = np.asarray(self.a, dtype=np.float64)
        ab = np.asarray(self.b, dtype=np.float64) - a
        u = ((x - a) @ ab) / max(float(ab @ ab), 1e-12)
        return np.asarray(np.where(np.sign(d0) * np.sign(d1) < 0, u, np.nan), dtype=np.float64)


def segment_distances(points: npt.ArrayLike, segments: list[Segment]) -> F64:
    """Distance of each point (n, 2) to the nearest of `segments` (the segments, not their lines); shape
    (n,), +inf without segments."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.full(p.shape[0], np.inf)
    for seg in segments:
        a = np.asarray(seg.a, dtype=np.float64)
        ab = np.asarray(seg.b, dtype=np.float64) - a
        u = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        out = np.minimum(out, np.linalg.norm(p - (a + u[:, None] * ab), axis=1))
    return out


def polygon_mask(points: npt.ArrayLike, width: int, height: int) -> BoolArray:
    """Rasterise a polygon (pixel vertices) into a (height, width) mask: True where a pixel centre is inside.

    Even-odd rule, fully vectorised: every edge toggles the parity of the pixels right of where it cuts each
    row, and a cumulative XOR along the row fills the inside. Built once per zone; rules then look points
    up with `mask[y, x]`, which costs the same for 1 object or 100.
    """
    poly = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    toggles = np.zeros((height, width + 1), dtype=np.uint8)
    ys = np.arange(height, dtype=np.float64) + 0.5
    for ex0, ey0, ex1, ey1 in zip(x0, y0, x1, y1, strict=True):  # one pass per vertex, at build time only
        if ey0 == ey1:
            continue
        lo, hi = min(ey0, ey1), max(ey0, ey1)
        rows = np.nonzero((ys >= lo) & (ys < hi))[0]
        if rows.size == 0:
            continue
        xs = ex0 + (ys[rows] - ey0) * (ex1 - ex0) / (ey1 - ey0)
        cols = np.clip(np.floor(xs - 0.5) + 1, 0, width).astype(np.int64)  # first centre right of xs
        np.bitwise_xor.at(toggles, (rows, cols), 1)
    return np.asarray(np.bitwise_xor.accumulate(toggles, axis=1)[:, :width].astype(bool))


class ZoneMask:
    """A polygon zone drawn once into a mask; `contains` looks all points up at once."""

    def __init__(self, points: npt.ArrayLike, width: int, height: int) -> None:
        self.width = int(width)
        self.height = int(height)
        self.points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self.mask = polygon_mask(self.points, self.width, self.height)

    def contains(self, points: npt.ArrayLike) -> BoolArray:
        """True for each point (n, 2) inside the zone; points on or beyond the frame edge are clamped."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if p.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        xs = np.minimum(np.maximum(p[:, 0], 0.0), self.width - 1).astype(np.int64)  # truncation = floor here
        ys = np.minimum(np.maximum(p[:, 1], 0.0), self.height - 1).astype(np.int64)
        return np.asarray(self.mask[ys, xs], dtype=bool)


def homography(src: npt.ArrayLike, dst: npt.ArrayLike) -> F64:
    """The 3x3 homography mapping four (or more) src points onto dst points (normalised DLT, SVD).

    Points are normalised (centroid at 0, mean distance sqrt 2) before the SVD, as Hartley and Zisserman
    advise, so pixel and metre coordinates of very different magnitudes stay well conditioned.
    """
    s = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if s.shape[0] < 4 or s.shape != d.shape:
        raise ValueError("homography needs at least four point pairs of equal count")

    def normaliser(p: F64) -> F64:
        c = p.mean(axis=0)
        mean_dist = float(np.mean(np.hypot(*(p - c).T))) or 1.0
        k = np.sqrt(2.0) / mean_dist
        return np.array([[k, 0, -k * c[0]], [0, k, -k * c[1]], [0, 0, 1]], dtype=np.float64)

    ts, td = normaliser(s), normaliser(d)
    sn = apply_homography(ts, s)
    dn = apply_homography(td, d)
    rows = []
    for (x, y), (u, v) in zip(sn, dn, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    a = np.asarray(rows, dtype=np.float64)
    _, sv, vt = np.linalg.svd(a)
    if sv[-2] < 1e-9 * sv[0]:
        raise ValueError("calibration points are degenerate (three of them on one line?)")
    hn = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ hn @ ts
    return np.asarray(h / h[2, 2], dtype=np.float64)


def apply_homography(h: npt.ArrayLike, points: npt.ArrayLike) -> F64:
    """Map points (n, 2) through a 3x3 homography."""
    hm = np.asarray(h, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    q = p @ hm[:, :2].T + hm[:, 2]
    w = q[:, 2:3]
    return np.asarray(
        q[:, :2] / np.where(np.abs(w) > 1e-12, w, np.nan), dtype=np.float64
    )  # NaN: at the horizon


class GroundPlane:
    """Image pixels -> ground metres through the camera's calibration homography."""

    def __init__(self, image_points_px: npt.ArrayLike, ground_points_m: npt.ArrayLike) -> None:
        self.h = homography(image_points_px, ground_points_m)
        self.image_points = np.asarray(image_points_px, dtype=np.float64).reshape(-1, 2)
        self.ground_points = np.asarray(ground_points_m, dtype=np.float64).reshape(-1, 2)

    def to_ground(self, points: npt.ArrayLike) -> F64:
        return apply_homography(self.h, points)

    def speeds_mps(self, points: npt.ArrayLike, velocities: npt.ArrayLike, dt: float = 0.2) -> F64:
        """Ground speed (m/s) of image points moving at pixel velocities: the move over `dt` seconds, mapped."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        v = np.asarray(velocities, dtype=np.float64).reshape(-1, 2)
        return np.asarray(
            np.hypot(*(self.to_ground(p + v * dt) - self.to_ground(p)).T) / dt, dtype=np.float64
        )

    def distance_m(self, a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
        """Ground distance (m) between image points a[i] and b[i]: the calibration check of docs/rules.md."""
        return np.asarray(np.hypot(*(self.to_ground(a) - self.to_ground(b)).T), dtype=np.float64)

    def residual_m(self) -> float:
        """Largest error (m) of the calibration points themselves: ~0 for four points, a check for more."""
        return float(np.max(np.hypot(*(self.to_ground(self.image_points) - self.ground_points).T)))


def iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), xyxy; shape (n, m).

    The one IoU of the node: NMS, the tracker's association and the collision rule all use it. A box
    with no area has IoU 0 with everything.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, 0.0)  # np.clip's values without its Python overhead (a hot path)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.maximum(a[:, 2:] - a[:, :2], 0.0), axis=1)
    area_b = np.prod(np.maximum(b[:, 2:] - b[:, :2], 0.0), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0.0, inter / np.where(union > 0.0, union, 1.0), 0.0)


def iou_one_to_many(box: npt.NDArray[np.float32], boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """IoU of one box (4,) against many (n, 4), in float32: the inner step of NMS, where it runs once per
    kept box and the (1, n) form of `iou_matrix` costs about 3x more for the usual 20 candidates."""
    return np.asarray(iou_f32(box[None, :], boxes)[0], np.float32)


def iou_f32(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """IoU (n, m) of boxes `a` (n, 4) with `b` (m, 4) in float32, the arithmetic of `iou_one_to_many`
    pair by pair (so NMS keeps the same boxes whichever it uses). `np.maximum(x, 0)`, not `np.clip`:
    the same values without clip's Python overhead, which NMS paid a dozen times per frame."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    area = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    areas = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def box_iou(xyxy: npt.ArrayLike) -> F64:
    """Pairwise IoU (n, n) of boxes in one frame; the diagonal is zero."""
    iou = iou_matrix(xyxy, xyxy)
    np.fill_diagonal(iou, 0.0)
    return iou


def nominal_heights_m(class_ids: npt.ArrayLike, names: tuple[str, ...]) -> F64:
    """Typical real height (m) of each object by class, for rough metres without a calibration."""
    table = np.array([NOMINAL_HEIGHT_M.get(n, DEFAULT_HEIGHT_M) for n in names] or [DEFAULT_HEIGHT_M])
    ids = np.clip(np.asarray(class_ids, dtype=np.int64), 0, table.shape[0] - 1)
    return np.asarray(table[ids], dtype=np.float64)
