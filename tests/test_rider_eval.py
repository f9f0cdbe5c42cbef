"""Riders and pedestrians on the real labelled clips: the class check per crossing (docs/evaluation.md,
"Fourth round"), replayed over cached detections through the node's own analysis with the defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import eval_counts  # noqa: E402


@pytest.mark.parametrize("clip", ["vtest", "one-by-one-person-detection", "intersection_cctv"])
def test_no_pedestrian_is_made_a_vehicle(clip: str, shared_dir: Path) -> None:
    """Pedestrian clips and the junction with pedestrians on its zebras: every labelled person crossing
    matched by a `person` count, and the rider pace stage turns no person track into a two-wheeler."""
    found = {c.name: c for c in eval_counts.discover_clips(shared_dir)}
    assert clip in found, sorted(found)
    result = eval_counts.count_clip(found[clip].config, found[clip].truth)
    assert result["pedestrians_as_vehicles"] == 0, result["confused_frames"]
    assert result["wrong"] == 0, result["totals"]
    assert {e["class"] for e in result["events"]} <= {"person", "car"}


def test_the_eu_cyclist_is_found_by_the_class_check(shared_dir: Path) -> None:
    """Measured: both models see only the person of the lone cyclist riding away from the camera; its pace
    (0.6 heights/s) is a walker's, so it stays `person` and the class check names its labelled frame."""
    result = eval_counts.count_clip(
        ROOT / "configs" / "eval" / "eu_highway_cctv.yaml", shared_dir / "eval" / "eu_highway_cctv.truth.json"
    )
    assert result["wrong"] == 0, result["totals"]
    assert result["riders_as_pedestrians"] == 1
    assert result["confused_frames"]["riders_as_pedestrians"] == [186]
    assert result["pedestrians_as_vehicles"] == 0
