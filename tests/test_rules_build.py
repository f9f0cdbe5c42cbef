"""Building rules from YAML: every kind loads, config mistakes name their field, a failing rule is isolated,
and every event kind and class has Vietnamese and English texts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml
from rules_paths import Obj, build, path, run

from common.yamlconf import ConfigError
from contract.kinds import KIND_NAMES
from edge.camera_config import COCO_NAMES
from edge.config import validate_config
from edge.events import EventFactory
from edge.records import Event, Tracks
from edge.rules import CameraRules, ground_plane
from edge.rules.settings import DEFAULT_CLASSES
from edge.texts import CLASS_NAMES, describe

NODE = """\
node_id: n1
cameras:
  - id: gate
    source: clip.mp4
    reference_size: [1000, 1000]
    lines:
      l: {points: [[0, 500], [1000, 500]], in_name: towards town, out_name: towards the ferry}
    zones:
      lane: {points: [[0, 0], [1000, 0], [1000, 1000], [0, 1000]], direction: [0, 1], speed_limit_kmh: 50}
      yard: {points: [[0, 0], [500, 0], [500, 500]]}
    calibration:
      image_points: [[0, 0], [1000, 0], [1000, 1000], [0, 1000]]
      ground_points_m: [[0, 0], [20, 0], [20, 60], [0, 60]]
    rules:
      - {kind: line_crossing, name: count, line: l}
      - {kind: zone_occupancy, name: occupancy, zone: yard}
      - {kind: crowding, name: crowd, zone: yard, threshold: 5}
      - {kind: loitering, name: loiter, zone: yard}
      - {kind: intrusion, name: night, zone: yard, schedule: ["22:00-05:00"]}
      - {kind: stopped_vehicle, name: stopped, zone: lane}
      - {kind: wrong_way, name: wrong, zone: lane}
      - {kind: speeding, name: fast, zone: lane}
      - {kind: suspected_collision, name: crash}
      - {kind: line_crossing, name: unused, line: l, enabled: false}
"""


def node(text: str = NODE) -> Any:
    return yaml.safe_load(text)


def test_every_kind_builds_and_disabled_rules_are_skipped() -> None:
    cam = validate_config(node()).cameras[0]
    from edge.rules import build_rules

    rules = build_rules(cam, 500, 500, COCO_NAMES, EventFactory("n1", "gate"), "Asia/Ho_Chi_Minh")
    assert [r.name for r in rules] == [
        "count",
        "occupancy",
        "crowd",
        "loiter",
        "night",
        "stopped",
        "wrong",
        "fast",
        "crash",
    ]
    assert [r.kind for r in rules][:3] == ["line_crossing", "zone_occupancy", "crowding"]
    assert all(r.state_size() == 0 for r in rules)


def test_ground_plane_follows_the_frame_size() -> None:
    cam = validate_config(node()).cameras[0]
    plane = ground_plane(cam, 500, 500)  # reference 1000 px -> frame 500 px
    assert plane is not None
    assert np.allclose(plane.to_ground([[500, 500]]), [[20, 60]])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("calibration:", "calibration_off:"), "cameras.gate.calibration_off: unknown key"),
        (
            ('schedule: ["22:00-05:00"]', 'shedule: ["22:00-05:00"]'),
            "cameras.gate.rules[night].shedule: unknown key (did you mean 'schedule'?",
        ),
        (
            (
                "{kind: stopped_vehicle, name: stopped, zone: lane}",
                "{kind: stopped_vehicle, name: stopped, zone: lane, min_stoped_s: 9}",
            ),
            "cameras.gate.rules[stopped].min_stoped_s: unknown key (did you mean 'min_stopped_s'?",
        ),
        (
            ("calibration:", "calibraton:"),
            "cameras.gate.calibraton: unknown key (did you mean 'calibration'?",
        ),
        (
            ("image_points:", "image_point:"),
            "cameras.gate.calibration.image_point: unknown key (did you mean 'image_points'?",
        ),
        (
            ("{kind: wrong_way, name: wrong, zone: lane}", "{kind: wrong_way, name: wrong, zone: yard}"),
            "cameras.gate.rules[wrong].zone: zone 'yard' needs a `direction` for wrong_way",
        ),
        (
            ("{kind: speeding, name: fast, zone: lane}", "{kind: speeding, name: fast, zone: yard}"),
            "cameras.gate.rules[fast].limit_kmh: set it or the zone's speed_limit_kmh",
        ),
        (
            (
                "{kind: loitering, name: loiter, zone: yard}",
                "{kind: loitering, name: loiter, zone: yard, classes: [cars]}",
            ),
            "cameras.gate.rules[loiter].classes: unknown class name(s) ['cars']",
        ),
        (
            (
                "{kind: crowding, name: crowd, zone: yard, threshold: 5}",
                "{kind: crowding, name: crowd, zone: yard, threshold: 2, hysteresis: 2}",
            ),
            "cameras.gate.rules[crowd]: hysteresis must be below threshold",
        ),
        (
            ('schedule: ["22:00-05:00"]', 'schedule: ["22h-5h"]'),
            "cameras.gate.rules[night].schedule: schedule '22h-5h' must look like '22:00-05:00'",
        ),
        (
            (
                "{kind: stopped_vehicle, name: stopped, zone: lane}",
                "{kind: stopped_vehicle, name: stopped, zone: road}",
            ),
            "cameras.gate.rules[stopped].zone: no zone named 'road'",
        ),
    ],
)
def test_rule_config_errors_name_the_field(change: tuple[str, str], expected: str) -> None:
    text = NODE.replace(*change)
    assert text != NODE
    with pytest.raises(ConfigError) as err:
        validate_config(node(text), "node.yaml")
    assert any(line.startswith(f"node.yaml: {expected}") for line in err.value.lines), err.value.lines


def test_speeding_needs_calibration_in_config() -> None:
    text = "\n".join(
        line for line in NODE.splitlines() if "image_points" not in line and "ground_points" not in line
    )
    text = text.replace("    calibration:\n", "")
    with pytest.raises(ConfigError) as err:
        validate_config(node(text), "node.yaml")
    assert "node.yaml: cameras.gate.rules[fast]: speeding needs the camera's `calibration`" in err.value.lines


class Broken:
    name = "broken"
    kind = "line_crossing"

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        raise RuntimeError("boom")

    def state_size(self) -> int:
        return 0


def test_a_failing_rule_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    good = build([{"kind": "line_crossing", "name": "count", "line": "l", "summaries": False}])
    rules = CameraRules([Broken(), *good])
    events = run(rules, [Obj(1, "car", path((500, 300), (500, 700), 9))])
    assert [e.kind for e in events] == ["line_crossing"]
    assert rules.errors == {"broken": 10, "count": 0}  # 9 frames of path + the end frame
    assert set(rules.seconds) == {"broken", "count"} and rules.seconds["count"] > 0
    assert "rule broken (line_crossing) failed" in caplog.text


BRIEF_KINDS = [
    "line_crossing",
    "count_summary",
    "zone_occupancy",
    "crowding",
    "loitering",
    "intrusion",
    "stopped_vehicle",
    "wrong_way",
    "speeding",
    "suspected_collision",
    "stream_lost",
    "stream_restored",
    "frozen_picture",
    "camera_blocked",
    "camera_defocused",
    "camera_moved",
]


def test_every_kind_and_class_has_both_languages() -> None:
    assert set(BRIEF_KINDS) <= set(KIND_NAMES)
    assert set(DEFAULT_CLASSES) <= set(CLASS_NAMES)
    for table in (KIND_NAMES, CLASS_NAMES):
        for names in table.values():
            assert names["vi"] and names["en"] and set(names) == {"vi", "en"}
    assert CLASS_NAMES["motorcycle"]["vi"] == "xe máy"


@pytest.mark.parametrize(
    ("kind", "phase", "classes", "m", "vi", "en"),
    [
        (
            "line_crossing",
            "instant",
            ("motorcycle",),
            {"direction_name": "chợ", "speed_kmh": 41.26},
            "Qua vạch đếm: xe máy, hướng chợ, tốc độ ước tính 41.3 km/h (r)",
            "Line crossing: motorcycle, towards chợ, estimated speed 41.3 km/h (r)",
        ),
        (
            "speeding",
            "instant",
            ("car",),
            {"speed_kmh": 72.0, "limit_kmh": 50, "zone": "lane"},
            "Chạy quá tốc độ: ô tô, tốc độ ước tính 72 km/h, giới hạn 50 km/h, khu vực lane (r)",
            "Speeding: car, estimated speed 72 km/h, limit 50 km/h, zone lane (r)",
        ),
        (
            "loitering",
            "end",
            ("person",),
            {"dwell_s": 130.0, "zone": "yard"},
            "Lảng vảng (kết thúc): người đi bộ, ở lại 130 giây, khu vực yard (r)",
            "Loitering ended: pedestrian, stayed 130 s, zone yard (r)",
        ),
        (
            "stream_lost",
            "start",
            (),
            {},
            "Mất tín hiệu camera (bắt đầu) (r)",
            "Camera stream lost started (r)",
        ),
    ],
)
def test_texts(kind: str, phase: Any, classes: tuple[str, ...], m: dict[str, Any], vi: str, en: str) -> None:
    assert describe(kind, phase, classes, m, "r") == {"vi": vi, "en": en}
