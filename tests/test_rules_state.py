"""Rule state stays bounded on a 24/7 run: 100,000 short tracks through every rule kind, state back to baseline."""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import pytest
from rules_paths import TS0, build

from edge.camera_config import COCO_NAMES
from edge.records import Tracks
from edge.rules import CameraRules
from edge.rules.settings import RuleConfig

ZONES = {
    "lane": {
        "points": [[0, 0], [1000, 0], [1000, 1000], [0, 1000]],
        "direction": [0, 1],
        "speed_limit_kmh": 80,
    },
    "yard": {"points": [[0, 300], [1000, 300], [1000, 700], [0, 700]]},
}
CALIBRATION = {
    "image_points": [[0, 0], [1000, 0], [1000, 1000], [0, 1000]],
    "ground_points_m": [[0, 0], [50, 0], [50, 50], [0, 50]],
}
ALL_RULES = [
    {"kind": "line_crossing", "name": "line", "line": "l", "min_observations": 1, "summary_interval_s": 10},
    {
        "kind": "zone_occupancy",
        "name": "occupancy",
        "zone": "yard",
        "min_duration_s": 0,
        "update_interval_s": 1,
    },
    {"kind": "crowding", "name": "crowd", "zone": "yard", "threshold": 20, "min_duration_s": 0},
    {"kind": "loitering", "name": "loiter", "zone": "yard", "max_dwell_s": 0.2, "classes": ["person", "car"]},
    {"kind": "intrusion", "name": "intrusion", "zone": "yard", "min_observations": 1},
    {"kind": "stopped_vehicle", "name": "stopped", "zone": "lane", "min_stopped_s": 0.2},
    {"kind": "wrong_way", "name": "wrong", "zone": "lane", "min_distance_m": 1.0},
    {"kind": "speeding", "name": "speeding", "zone": "lane", "min_observations": 1, "min_span_s": 0.2},
    {
        "kind": "suspected_collision",
        "name": "collision",
        "min_speed_kmh": 5,
        "stop_speed_kmh": 1,
        "hold_s": 0.1,
    },
]
PER_FRAME = 50
LIFE = 4  # frames each track lives
TOTAL = 100_000
CLASSES = np.array([COCO_NAMES.index(c) for c in ("car", "person", "motorcycle", "truck", "bus")])


def frame_tracks(f: int) -> Tracks:
    """Tracks born at frames f-LIFE+1..f; those born at f-LIFE end now. Some move (crossing the line,
    against the lane, fast), some stand still (stopped, loitering); neighbours overlap (contacts)."""
    births = np.arange(max(0, f - LIFE + 1), f + 1)
    births = births[births < TOTAL // PER_FRAME]
    j = np.tile(np.arange(PER_FRAME), births.shape[0])
    birth = np.repeat(births, PER_FRAME)
    age = (f - birth).astype(np.float64)
    ids = birth * PER_FRAME + j
    still = j % 5 == 0
    direction = np.where(j % 2 == 0, 1.0, -1.0)
    x = 20.0 + (j * 19) % 960
    step = np.where(still, 0.0, np.where(j % 10 == 3, 120.0, 30.0))  # px per frame; 1 px = 0.05 m
    y = np.where(still, 450.0, 500.0 + direction * step * (age - 1.5))
    boxes = np.stack([x - 20, y - 50, x + 20, y], axis=1)
    vel = np.stack([np.zeros_like(y), direction * step * 10.0], axis=1)
    ended_birth = f - LIFE
    ended: Any = (
        ended_birth * PER_FRAME + np.arange(PER_FRAME) if 0 <= ended_birth < TOTAL // PER_FRAME else []
    )
    return Tracks(
        ids, boxes, np.full(ids.shape[0], 0.6), CLASSES[j % CLASSES.shape[0]], vel, np.asarray(ended)
    )


@pytest.mark.slow
def test_state_returns_to_baseline_after_100k_tracks() -> None:
    kinds = {r["kind"] for r in ALL_RULES}
    assert kinds == {m.model_fields["kind"].default for m in get_args(get_args(RuleConfig)[0])}
    line = {"l": {"points": [[200, 500], [400, 500]]}}  # a short segment: most tracks pass beside it
    rules = CameraRules(build(ALL_RULES, zones=ZONES, calibration=CALIBRATION, lines=line))
    assert len(rules.rules) == len(ALL_RULES)
    baseline = rules.state_size()
    peak = 0
    events = 0
    kinds_seen: set[str] = set()
    n_frames = TOTAL // PER_FRAME + LIFE + 1
    for f in range(n_frames):
        out = rules.update(frame_tracks(f), f / 10.0, TS0 + f / 10.0, f)
        events += len(out)
        kinds_seen.update(e.kind for e in out)
        peak = max(peak, rules.state_size())
    assert rules.state_size() == baseline
    assert all(r.state_size() == 0 for r in rules.rules)
    # while running, state holds only the ~200 live tracks per rule (two tables for speed-aware rules)
    assert 0 < peak <= 11 * LIFE * PER_FRAME
    assert not any(rules.errors.values())
    # every rule did real work on these tracks (none was trivially idle)
    assert {
        "line_crossing",
        "count_summary",
        "zone_occupancy",
        "crowding",
        "loitering",
        "intrusion",
        "stopped_vehicle",
        "wrong_way",
        "speeding",
    } <= kinds_seen
    assert events > TOTAL
