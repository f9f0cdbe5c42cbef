"""Geometry: line sides, segment crossings, polygon masks, homography."""

from __future__ import annotations

import numpy as np
import pytest

from edge.geometry import (
    GroundPlane,
    Segment,
    ZoneMask,
    apply_homography,
    box_iou,
    homography,
    polygon_mask,
    segment_distances,
)


def brute_force_mask(poly: list[tuple[float, float]], w: int, h: int) -> np.ndarray:
    """Even-odd ray test of every pixel centre, one pixel at a time (slow and obviously right)."""
    out = np.zeros((h, w), dtype=bool)
    n = len(poly)
    for y in range(h):
        for x in range(w):
            px, py = x + 0.5, y + 0.5
            inside = False
            for i in range(n):
                (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
                if (y0 <= py < y1) or (y1 <= py < y0):
                    xc = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
                    if px > xc:
                        inside = not inside
            out[y, x] = inside
    return out


@pytest.mark.parametrize(
    "poly",
    [
        [(2, 2), (30, 3), (25, 28)],  # triangle
        [(0, 0), (40, 0), (40, 30), (0, 30)],  # the whole frame
        [(5, 5), (35, 5), (35, 25), (20, 12), (5, 25)],  # concave
        [(10.5, 1.2), (38.7, 20.1), (3.3, 29.9), (30.2, 6.6)],  # self-intersecting bow-tie
        [(-10, -10), (60, 5), (20, 50)],  # partly outside the frame
    ],
)
def test_polygon_mask_matches_even_odd_rule(poly: list[tuple[float, float]]) -> None:
    assert np.array_equal(polygon_mask(poly, 40, 30), brute_force_mask(poly, 40, 30))


def test_zone_contains_clamps_points_at_and_beyond_the_edge() -> None:
    zone = ZoneMask([(0, 500), (1000, 500), (1000, 1000), (0, 1000)], 1000, 1000)
    pts = np.array([[500, 1000], [1000, 1000], [-5, 700], [500, 400], [500, 1200]])
    assert zone.contains(pts).tolist() == [True, True, True, False, True]
    assert zone.contains(np.zeros((0, 2))).shape == (0,)


def test_segment_sides_follow_the_right_hand_convention() -> None:
    seg = Segment((0.0, 10.0), (100.0, 10.0))  # drawn left to right: "in" (positive) is below
    assert seg.signed_distance([[50, 20], [50, 0], [50, 10]]).tolist() == [10.0, -10.0, 0.0]
    reverse = Segment((100.0, 10.0), (0.0, 10.0))
    assert reverse.signed_distance([[50, 20]])[0] == -10.0


def test_crossing_param_is_where_the_move_cuts_the_segment() -> None:
    seg = Segment((0.0, 0.0), (100.0, 0.0))
    u = seg.crossing_param([[25, -10], [150, -10], [50, -10]], [[25, 10], [150, 10], [60, -5]])
    assert u[0] == pytest.approx(0.25)
    assert u[1] == pytest.approx(1.5)  # beside the segment
    assert np.isnan(u[2])  # no change of side


def test_homography_recovers_a_known_projective_map() -> None:
    h_true = np.array([[0.05, 0.01, -3.0], [0.002, 0.09, -20.0], [0.0001, 0.0012, 1.0]])
    img = np.array([[100.0, 400.0], [900.0, 420.0], [700.0, 900.0], [200.0, 880.0]])
    ground = apply_homography(h_true, img)
    h = homography(img, ground)
    probe = np.array([[500.0, 600.0], [300.0, 450.0], [850.0, 850.0]])
    assert np.allclose(apply_homography(h, probe), apply_homography(h_true, probe), atol=1e-6)
    plane = GroundPlane(img, ground)
    assert plane.residual_m() < 1e-6
    expected = np.hypot(*(apply_homography(h_true, probe[:1]) - apply_homography(h_true, probe[1:2]))[0])
    assert plane.distance_m(probe[:1], probe[1:2])[0] == pytest.approx(expected)


def test_homography_rejects_collinear_points() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        homography([[0, 0], [1, 1], [2, 2], [3, 3]], [[0, 0], [1, 0], [0, 1], [1, 1]])


def test_box_iou_pairs() -> None:
    iou = box_iou([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]])
    assert iou[0, 1] == pytest.approx(50 / 150) and iou[1, 0] == iou[0, 1]
    assert iou[0, 2] == 0 and iou[0, 0] == 0


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((5.0, 3.0), 3.0),  # beside the first segment's middle
        ((-4.0, 3.0), 5.0),  # beyond its end A: distance to A, not to the infinite line
        ((21.0, 14.0), 1.0),  # nearest to the second segment
    ],
)
def test_segment_distances(point: tuple[float, float], expected: float) -> None:
    segments = [Segment((0.0, 0.0), (10.0, 0.0)), Segment((20.0, 5.0), (20.0, 15.0))]
    assert segment_distances([point], segments)[0] == pytest.approx(expected)
    assert segment_distances([point], []).tolist() == [float("inf")]
