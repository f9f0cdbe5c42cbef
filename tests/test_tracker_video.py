"""The tracker on real footage: id switches of hand-annotated people in vtest.avi, with the real detector.

`tests/data/vtest_people.json` holds, for four people, their approximate body centre every 10 frames over
frames 0-220 (annotated by eye on frames with a pixel grid drawn on them; see its `comment`). The test runs
the detector on every frame of that stretch (10 fps, as recorded) and the tracker on its output, then, for
each annotated point, takes the person track whose box contains the point (the nearest box centre if
several do). Along a person's points:

- an id switch is a change of the matched id (a swap with another person, or a new id after the track was
  lost, both count);
- coverage is the share of points matched to some track at all.

Model choice: `yolox_nano` (416 px input) is the main case because it scores the small, distant people at
the top right reliably; the default `yolo11n_int8` (320 px) scores them lower (0.2-0.5 after an
occlusion), so its coverage bound is lower. Both run the stretch in a few seconds on two CPU cores.
Known hard spot: around frames 158-166 the jeans walker passes right in front of the red-jacket man and
hides him; both detections become tall, overlapping boxes, and with boxes alone (no appearance model) the
two ids may swap there, which costs one switch for each of them.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import require, shared_file

from edge.config import ModelSettings
from edge.records import Tracks
from edge.vision.detector import Detector
from edge.vision.tracker import Tracker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANNOTATION = Path(__file__).parent / "data" / "vtest_people.json"
PERSON = 0
FPS = 10.0
DETECTOR_FLOOR = 0.1  # as the analyzer: the tracker's second stage needs the low-score boxes
MAX_SWITCHES_PER_PERSON = 1


@dataclass(frozen=True)
class Bounds:
    max_switches_total: int
    min_coverage: float
    min_mean_coverage: float


BOUNDS = {
    # Measured: 2 switches (the swap at frames 158-166), coverage 0.94-1.0.
    "yolox_nano": Bounds(max_switches_total=2, min_coverage=0.8, min_mean_coverage=0.9),
    # At 320 px the blonde woman scores below the new-track threshold after the occlusion at frame 160,
    # so she is not picked up again (measured: 0 switches, coverage 0.65; the others 0.89-1.0).
    "yolo11n_int8": Bounds(max_switches_total=2, min_coverage=0.6, min_mean_coverage=0.8),
}


def load_annotation() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ANNOTATION.read_text(encoding="utf-8"))
    return data


def matched_id(tracks: Tracks, x: float, y: float) -> int | None:
    """Id of the person track whose box contains (x, y), the nearest centre first; None if no box does."""
    b = tracks.xyxy
    inside = (tracks.class_ids == PERSON) & (b[:, 0] <= x) & (b[:, 2] >= x) & (b[:, 1] <= y) & (b[:, 3] >= y)
    if not inside.any():
        return None
    centres = tracks.anchors("center")[inside]
    nearest = int(np.argmin(((centres - np.array([x, y], np.float32)) ** 2).sum(axis=1)))
    return int(tracks.track_ids[inside][nearest])


def id_switches(ids: list[int | None]) -> int:
    seen = [i for i in ids if i is not None]
    return sum(1 for a, b in itertools.pairwise(seen) if a != b)


def test_annotation_is_well_formed() -> None:
    data = load_annotation()
    assert len(data["people"]) >= 3
    for person in data["people"]:
        frames = [p[0] for p in person["points"]]
        assert frames == sorted(frames) and len(set(frames)) == len(frames), person["name"]
        assert all(data["first_frame"] <= f <= data["last_frame"] for f in frames)
        assert all(0 <= x < 768 and 0 <= y < 576 for _, x, y in person["points"])
        assert len(frames) >= 10


@pytest.mark.parametrize("model", sorted(BOUNDS))
def test_tracker_keeps_ids_of_annotated_people(model: str, shared_dir: Path, vtest_path: Path) -> None:
    model_path = shared_file(shared_dir, f"models/{model}.onnx")
    data = load_annotation()
    wanted: dict[int, list[tuple[str, int, int]]] = {}
    for person in data["people"]:
        for frame, x, y in person["points"]:
            wanted.setdefault(frame, []).append((person["name"], x, y))

    detector = Detector(ModelSettings(path=str(model_path)))
    tracker = Tracker()
    ids: dict[str, list[int | None]] = {person["name"]: [] for person in data["people"]}
    capture = cv2.VideoCapture(str(vtest_path))
    track_s = 0.0
    try:
        for index in range(data["last_frame"] + 1):
            ok, image = capture.read()
            require(ok, f"{vtest_path}: cannot decode frame {index}")
            detections = detector.detect(np.asarray(image, dtype=np.uint8), min_score=DETECTOR_FLOOR)
            t0 = time.perf_counter()
            tracks = tracker.update(detections, index / FPS)
            track_s += time.perf_counter() - t0
            for name, x, y in wanted.get(index, []):
                ids[name].append(matched_id(tracks, x, y))
    finally:
        capture.release()

    bounds = BOUNDS[model]
    switches = {name: id_switches(seq) for name, seq in ids.items()}
    coverage = {name: sum(i is not None for i in seq) / len(seq) for name, seq in ids.items()}
    print(
        f"\n{model}: id switches {switches} (total {sum(switches.values())}), "
        f"coverage { {k: round(v, 2) for k, v in coverage.items()} }, "
        f"tracker {1000 * track_s / (data['last_frame'] + 1):.2f} ms/frame"
    )
    for name, seq in ids.items():
        print(f"  {name}: {seq}")
    assert all(n <= MAX_SWITCHES_PER_PERSON for n in switches.values()), switches
    assert sum(switches.values()) <= bounds.max_switches_total, switches
    assert all(c >= bounds.min_coverage for c in coverage.values()), coverage
    assert np.mean(list(coverage.values())) >= bounds.min_mean_coverage, coverage
    # Someone standing still for ten seconds while others walk past keeps exactly one id.
    assert switches["standing_man"] == 0 and coverage["standing_man"] >= 0.9
