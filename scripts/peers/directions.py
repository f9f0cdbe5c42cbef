"""Map each peer's `in`/`out` onto the truth files' convention.

The truth (docs/evaluation.md) and Roadwatch call a crossing `in` when the object moves towards the
right-hand side of the line A->B as drawn on the image (y down): the side where the cross product
(B - A) x (P - A) is positive. The peers decide differently, and a comparison that silently swapped
directions would count every error twice, so each mapping lives here, pure Python, under unit tests:

- supervision's `LineZone(start=A, end=B)` counts `in` for a move to the side where that cross product
  is negative (its "left"), the opposite of the truth.
- Ultralytics' `ObjectCounter` ignores the line's orientation: for a line more horizontal than vertical
  it counts `in` when the centroid moved down (y grew), for a more vertical line when it moved right (x
  grew). Whether that is the truth's `in` depends on which way A->B points.

Imported by the peer runners in the peers' virtualenv and by the tests in the runtime one: no third-party
imports here.
"""

from __future__ import annotations

Line = tuple[float, float, float, float]


def side(line: Line, x: float, y: float) -> float:
    """(B - A) x (P - A): positive on the truth's `in` side of A->B (y down), negative on the `out` side."""
    ax, ay, bx, by = line
    return (bx - ax) * (y - ay) - (by - ay) * (x - ax)


def supervision_swaps(line: Line) -> bool:
    """True: supervision's `in_count` is the truth's `out` (always, for LineZone(start=A, end=B))."""
    del line  # the flip comes from LineZone's sign convention, whatever the line's orientation
    return True


def ultralytics_swaps(line: Line) -> bool:
    """True when ObjectCounter's `in` (moving down, or right for a steep line) is the truth's `out`.

    The truth's `in` moves along the normal (-(by - ay), bx - ax). For a flat line Ultralytics looks at
    the y motion, which agrees with that normal when bx > ax; for a steep line at the x motion, which
    agrees when by < ay.
    """
    ax, ay, bx, by = line
    if abs(bx - ax) < abs(by - ay):  # steep: the same test as ObjectCounter.count_objects
        return by > ay
    return bx < ax


def to_truth(counted_in: int, counted_out: int, swap: bool) -> dict[str, int]:
    """A peer's (in, out) as the truth's {"in", "out"}."""
    return {"in": counted_out, "out": counted_in} if swap else {"in": counted_in, "out": counted_out}
