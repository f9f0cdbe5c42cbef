"""Line crossing near the picture's edge: a box cut by the border beyond the line confirms at once."""

from __future__ import annotations

import numpy as np
import pytest
from rules_paths import Box, Obj, build, run

from edge.geometry import Segment
from edge.rules.line import cut_beyond

# A vertical line 55 px from the right edge of a 640x480 picture (the positive side of A -> B is the left)
VERTICAL = Segment((585.0, 100.0), (585.0, 300.0))
# A horizontal line 81 px above the bottom of a 1024x576 picture (the positive side is down)
HORIZONTAL = Segment((300.0, 495.0), (900.0, 495.0))

CUT_CASES = [
    ("right edge, east of the line", VERTICAL, (548, 201, 640, 276), -1, True),
    ("right edge within 2 px", VERTICAL, (548, 201, 638.5, 276), -1, True),
    ("right edge, but the west side is asked", VERTICAL, (548, 201, 640, 276), 1, False),
    ("3 px short of the edge", VERTICAL, (548, 201, 637, 276), -1, False),
    ("top edge, along a vertical line", VERTICAL, (560, 0, 620, 60), -1, False),
    ("left edge, west of the line", VERTICAL, (0, 200, 80, 260), 1, True),
    ("bottom edge, below a horizontal line", HORIZONTAL, (500, 480, 560, 576), 1, True),
    ("bottom edge, above is asked", HORIZONTAL, (500, 480, 560, 576), -1, False),
    ("no side (in the dead band)", HORIZONTAL, (500, 480, 560, 576), 0, False),
]


@pytest.mark.parametrize(
    ("segment", "xyxy", "side", "expected"), [c[1:] for c in CUT_CASES], ids=[c[0] for c in CUT_CASES]
)
def test_cut_beyond(segment: Segment, xyxy: tuple[float, ...], side: int, expected: bool) -> None:
    w, h = (640, 480) if segment is VERTICAL else (1024, 576)
    got = cut_beyond(np.array([xyxy], np.float64), np.array([side], np.int8), segment, w, h)
    assert got.tolist() == [expected]


# In the 1000x1000 test picture: a vertical line 55 px from the right edge, counted on box centres.
LINES = {"l": {"points": [[945, 300], [945, 700]], "in_name": "junction", "out_name": "east arm"}}
RIGHT = [(700.0, 460.0, 800.0, 540.0), (760.0, 460.0, 860.0, 540.0), (820.0, 460.0, 920.0, 540.0)]

EDGE_CASES = [
    (
        "leaves through the right edge one frame after the line: counts out",
        True,
        [*RIGHT, (900.0, 460.0, 1000.0, 540.0)],
        [(1, "out", "car")],
    ),
    (
        "the same without edge_exit: ends mid-crossing, not counted (before)",
        False,
        [*RIGHT, (900.0, 460.0, 1000.0, 540.0)],
        [],
    ),
    (
        "one frame past the line, box not cut: ends mid-crossing as before",
        True,
        [*RIGHT, (905.0, 460.0, 997.0, 540.0)],
        [],
    ),
    (
        "enters through the right edge: the cut is behind it, a crossing needs min_observations",
        True,
        [(960.0, 460.0, 1000.0, 540.0), (930.0, 460.0, 1000.0, 540.0), (870.0, 460.0, 1000.0, 540.0)],
        [],
    ),
    (
        "enters through the right edge and drives on west: counts in",
        True,
        [
            (960.0, 460.0, 1000.0, 540.0),
            (930.0, 460.0, 1000.0, 540.0),
            (870.0, 460.0, 1000.0, 540.0),
            (840.0, 460.0, 980.0, 540.0),
            (800.0, 460.0, 940.0, 540.0),
        ],
        [(1, "in", "car")],
    ),
]


@pytest.mark.parametrize(
    ("edge_exit", "boxes", "expected"), [c[1:] for c in EDGE_CASES], ids=[c[0] for c in EDGE_CASES]
)
def test_edge_exit(edge_exit: bool, boxes: list[Box], expected: list[tuple[int, str, str]]) -> None:
    rule = {"kind": "line_crossing", "name": "east", "line": "l", "summaries": False, "anchor": "center",
            "edge_exit": edge_exit, "confirm_s": 0}  # fmt: skip
    rules = build([rule], lines=LINES)
    events = run(rules, [Obj(1, "car", boxes)])
    got = [
        (e.track_ids[0], e.measurements["direction"], e.classes[0])
        for e in events
        if e.kind == "line_crossing"
    ]
    assert got == expected
    assert rules[0].state_size() == 0
