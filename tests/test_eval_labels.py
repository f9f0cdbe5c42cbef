"""The project's hand-made ground truths (configs/eval/*.truth.json) are self-consistent and match their configs.

A label file is data typed by hand; a total that disagrees with its crossings, or a config whose line
differs from the labelled one, silently moves every error rate. Checked without the clips themselves.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edge.camera_config import COCO_NAMES
from edge.config import load_config

EVAL = Path(__file__).resolve().parents[1] / "configs" / "eval"
TRUTHS = sorted(EVAL.glob("*.truth.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_the_pedestrian_labels_are_there() -> None:
    assert {"vtest", "one-by-one-person-detection"} <= {p.name.removesuffix(".truth.json") for p in TRUTHS}


@pytest.mark.parametrize("path", TRUTHS, ids=lambda p: p.name)
def test_totals_are_the_sum_of_the_crossings(path: Path) -> None:
    truth = _load(path)
    crossings = truth["crossings"]
    per = Counter((c["direction"], c["class"]) for c in crossings)
    totals = truth["totals"]
    assert totals["all"] == len(crossings)
    for direction in ("in", "out"):
        labelled = {cls: n for (d, cls), n in per.items() if d == direction}
        assert {cls: n for cls, n in totals.get(direction, {}).items() if n} == labelled, direction
    assert {c["direction"] for c in crossings} <= {"in", "out"}
    assert {c["class"] for c in crossings} <= set(COCO_NAMES)


@pytest.mark.parametrize("path", TRUTHS, ids=lambda p: p.name)
def test_frames_are_inside_the_clip_and_in_order(path: Path) -> None:
    truth = _load(path)
    frames = [c["frame"] for c in truth["crossings"]]
    assert frames == sorted(frames)
    assert all(0 <= f < truth["frames"] for f in frames)
    for item in truth.get("not_counted", []):
        lo, hi = item["frame_range"]
        assert 0 <= lo <= hi < truth["frames"], item


@pytest.mark.parametrize("path", TRUTHS, ids=lambda p: p.name)
def test_the_config_counts_on_the_labelled_line(path: Path) -> None:
    truth = _load(path)
    cfg = load_config(EVAL / path.name.replace(".truth.json", ".yaml"))
    camera = cfg.cameras[0]
    assert camera.source.endswith("/" + truth["clip"])
    assert tuple(camera.reference_size or ()) == tuple(truth["resolution"])
    (rule,) = [r for r in camera.rules if r.kind == "line_crossing"]
    x1, y1, x2, y2 = truth["line"]
    assert [list(p) for p in camera.lines[rule.line].points] == [[x1, y1], [x2, y2]]
    assert rule.anchor == "center"  # the labels time the box centre crossing
    assert {c["class"] for c in truth["crossings"]} <= set(camera.classes)
