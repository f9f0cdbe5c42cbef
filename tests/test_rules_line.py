"""Line crossing on synthetic box paths: one table row per situation, the exact counts expected."""

from __future__ import annotations

import pytest
from rules_paths import TS0, Obj, anchors, box, build, gap, path, run

from edge.records import Event
from edge.rules import CameraRules, LineCrossing

LINE = {"kind": "line_crossing", "name": "north", "line": "l", "summaries": False}
# The tables count observations (`min_observations`), as at a full frame rate; `confirm_s` (fewer at a
# low detection rate) has its own table below.
BY_COUNT = {**LINE, "confirm_s": 0}
Y = 500.0  # the line runs from (200, 500) to (800, 500); "in" (town) is down the picture


def crossings(events: list[Event]) -> list[tuple[int, str, str]]:
    return [
        (e.track_ids[0], str(e.measurements["direction"]), e.classes[0])
        for e in events
        if e.kind == "line_crossing"
    ]


def ys(*values: float, x: float = 500.0) -> list[tuple[float, float]]:
    return [(x, v) for v in values]


CASES = [
    ("down crosses in", [Obj(1, "car", path((500, 300), (500, 700), 9))], [(1, "in", "car")]),
    ("up crosses out", [Obj(1, "car", path((500, 700), (500, 300), 9))], [(1, "out", "car")]),
    ("diagonal crossing", [Obj(1, "truck", path((300, 300), (700, 700), 9))], [(1, "in", "truck")]),
    (
        "jitter inside dead band",
        [Obj(1, "car", anchors(ys(450, 480, 499, 501, 498, 502, 499, 501, 500)))],
        [],
    ),
    (
        "jitter across the line, never two frames on one side",
        [Obj(1, "car", anchors(ys(450, 495, 505, 495, 505, 495, 505, 495)))],
        [],
    ),
    ("one-frame flicker back and stays", [Obj(1, "car", anchors(ys(400, 450, 490, 510, 490, 470, 450)))], []),
    (
        "flicker, then a real crossing counts once",
        [Obj(1, "car", anchors(ys(400, 490, 510, 490, 480, 510, 530, 560, 600)))],
        [(1, "in", "car")],
    ),
    (
        "crossed, then a one-frame flicker back never counts out",
        [Obj(1, "car", anchors(ys(400, 450, 540, 560, 490, 560, 600)))],
        [(1, "in", "car")],
    ),
    ("passes beside the segment", [Obj(1, "car", path((900, 300), (900, 700), 9))], []),
    ("crosses near the segment end", [Obj(1, "car", path((795, 300), (795, 700), 9))], [(1, "in", "car")]),
    (
        "in then out then in again counts every crossing",
        [
            Obj(
                1,
                "car",
                path((500, 300), (500, 700), 5)
                + path((500, 700), (500, 300), 5)
                + path((500, 300), (500, 700), 5),
            )
        ],
        [(1, "in", "car"), (1, "out", "car"), (1, "in", "car")],
    ),
    (
        "in, a flicker back, in again counts once",
        [Obj(1, "car", anchors(ys(400, 450, 540, 560, 490, 560, 600, 490, 560, 600)))],
        [(1, "in", "car")],
    ),
    (
        "crawling over the line, the box edge jumps back for two frames: counts once",
        [Obj(1, "car", anchors(ys(440, 470, 505, 510, 494, 492, 506, 512, 530)))],
        [(1, "in", "car")],
    ),
    (
        "back across for four observations (twice min_observations) counts the reversal",
        [Obj(1, "car", anchors(ys(440, 470, 510, 520, 495, 494, 493, 492)))],
        [(1, "in", "car"), (1, "out", "car")],
    ),
    (
        "back across by half a box height counts the reversal",
        [Obj(1, "car", anchors(ys(440, 470, 510, 520, 490, 470, 460)))],
        [(1, "in", "car"), (1, "out", "car")],
    ),
    (
        "two tracks cross in the same frame both ways",
        [
            Obj(1, "car", path((400, 300), (400, 700), 9)),
            Obj(2, "motorcycle", path((600, 700), (600, 300), 9)),
        ],
        [(1, "in", "car"), (2, "out", "motorcycle")],
    ),
    (
        "ends mid-crossing (one small step past) never counts",
        [Obj(1, "car", anchors(ys(420, 460, 490, 508)))],
        [],
    ),
    (
        "occlusion gap across the line",
        [Obj(1, "car", [*anchors(ys(400, 450)), *gap(6), *anchors(ys(560, 600, 640))])],
        [(1, "in", "car")],
    ),
    (
        "fast object: one observation far past the line confirms",
        [Obj(1, "car", anchors(ys(300, 420, 600)))],
        [(1, "in", "car")],
    ),
    (
        "first seen just below, box grows over the line, then drives down: one crossing in, no out",
        [Obj(1, "motorcycle", anchors(ys(504, 496, 495, 495, 510, 530, 560)))],
        [(1, "in", "motorcycle")],
    ),
    (
        "first side needs min_observations like a change of side: one frame below is no side",
        [Obj(1, "car", anchors(ys(504, 496, 494, 492, 490)))],
        [],
    ),
    (
        "first seen once near the line, then far past it: the side starts past it (not counted)",
        [Obj(1, "car", anchors(ys(490, 530, 570)))],
        [],
    ),
    ("born on the line is not a crossing", [Obj(1, "car", anchors(ys(500, 499, 540, 580, 620)))], []),
    ("unconfirmed id -1 is ignored", [Obj(-1, "car", path((500, 300), (500, 700), 9))], []),
    ("class not watched", [Obj(1, "dog", path((500, 300), (500, 700), 9))], []),
]


@pytest.mark.parametrize(("objs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_line_crossing_table(objs: list[Obj], expected: list[tuple[int, str, str]]) -> None:
    rules = build([BY_COUNT])
    events = run(rules, objs)
    assert sorted(crossings(events)) == sorted(expected)
    assert rules[0].state_size() == 0  # every track ended: nothing remembered


def test_line_near_frame_edge_counts_clipped_boxes() -> None:
    """A line 2 % above the bottom edge: the box is clipped by the frame, its bottom stays at the edge."""
    rules = build([LINE], lines={"l": {"points": [[0, 980], [1000, 980]]}})
    boxes = [box(500, y, h=120) for y in (900, 940, 970)] + [(480.0, 890.0, 520.0, 1000.0)] * 2
    events = run(rules, [Obj(1, "car", boxes)])
    assert crossings(events) == [(1, "in", "car")]


def test_event_fields_and_counts() -> None:
    rules = build([LINE])
    events = run(
        rules,
        [
            Obj(7, "motorcycle", path((500, 300), (500, 700), 9), score=0.9),
            Obj(8, "motorcycle", path((450, 300), (450, 700), 9)),
        ],
    )
    assert [e.measurements["count"] for e in events] == [1, 2]
    ev = events[0]
    assert (ev.kind, ev.phase, ev.rule, ev.camera, ev.node) == (
        "line_crossing",
        "instant",
        "north",
        "cam",
        "n1",
    )
    assert ev.measurements["direction_name"] == "town" and ev.measurements["line"] == "l"
    assert ev.confidence == pytest.approx(0.9) and ev.box is not None and ev.box[3] > Y
    assert "speed_kmh" not in ev.measurements  # no calibration on this camera
    assert "xe máy" in ev.texts["vi"] and "towards town" in ev.texts["en"]
    line = rules[0]
    assert isinstance(line, LineCrossing)
    assert line.counts() == {("in", "motorcycle"): 2}
    assert CameraRules(rules).line_counts() == {"north": {("in", "motorcycle"): 2}}


def test_count_summaries_per_interval_and_direction() -> None:
    rules = build([{**LINE, "summaries": True, "summary_interval_s": 60}])
    ts0 = TS0 - TS0 % 60 + 55  # 5 s before a minute boundary
    objs = [
        Obj(1, "car", path((500, 300), (500, 700), 9)),
        Obj(2, "bus", path((600, 700), (600, 300), 9)),
        Obj(3, "car", path((400, 300), (400, 700), 9), start=60),
    ]
    events = run(rules, objs, n=80, ts0=ts0)
    summaries = [e for e in events if e.kind == "count_summary"]
    assert [(e.measurements["direction"], e.measurements["count"]) for e in summaries] == [
        ("in", 1),
        ("out", 1),
    ]
    first = summaries[0]
    assert first.measurements["count_car"] == 1 and first.measurements["count_bus"] == 0
    assert first.classes == ("car",) and summaries[1].classes == ("bus",)
    assert first.measurements["period_end_ts"] - first.measurements["period_start_ts"] == 60
    assert first.measurements["period_end_ts"] == ts0 + 5
    assert "Traffic count" in first.texts["en"] and "Thống kê lưu lượng" in first.texts["vi"]
    # the third car crossed after the boundary: it belongs to the next summary, but is in the totals
    assert isinstance(rules[0], LineCrossing) and rules[0].counts()[("in", "car")] == 2


@pytest.mark.parametrize(
    ("fps", "ys_", "expected"),
    [
        # one observation past the line, then the track ends: counts at 5 and 10 runs a second (0.1 s is
        # one run), not at 30 (two observations, as `min_observations` says)
        # (10 px past a 40 px box: under `confirm_distance`, which would confirm at once)
        (5.0, (470, 480, 490, 510), [(1, "in", "car")]),
        (10.0, (470, 480, 490, 510), [(1, "in", "car")]),
        (30.0, (470, 480, 490, 510), []),
        (30.0, (470, 480, 490, 510, 512), [(1, "in", "car")]),
        # a crossing back after counting still needs twice as many: one observation is no reversal
        (5.0, (470, 480, 510, 512, 495, 510, 512), [(1, "in", "car")]),
        (5.0, (470, 480, 510, 512, 495, 494), [(1, "in", "car"), (1, "out", "car")]),
    ],
    ids=[
        "5-per-s-one-past",
        "10-per-s-one-past",
        "30-per-s-one-past",
        "30-per-s-two-past",
        "5-per-s-one-back-no-reversal",
        "5-per-s-two-back-reversal",
    ],
)
def test_confirm_s_needs_fewer_observations_at_a_low_rate(
    fps: float, ys_: tuple[float, ...], expected: list[tuple[int, str, str]]
) -> None:
    """`confirm_s` 0.1 (the default): observations that span 0.1 s of detector runs confirm a side."""
    rules = build([LINE])
    events = run(rules, [Obj(1, "car", [box(500, y, h=40) for y in ys_])], fps=fps)
    assert crossings(events) == expected
