"""The edge benchmark script runs and reports every figure (a smoke test: timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def test_bench_edge_prints_json_and_table(shared_dir: Path, vtest_path: Path, yolo11_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_edge.py"),
            "--model",
            str(yolo11_path),
            "--video",
            str(vtest_path),
            "--frames",
            "25",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout
    data = json.loads(text[: text.index("\n}\n") + 2])
    assert data["frames"] == 25
    for key in (
        "decode_fps",
        "model_fps",
        "pipeline_fps_no_gating",
        "pipeline_fps_gating",
        "peak_rss_mb_pipeline",
    ):
        assert data[key] > 0, key
    assert data["detector_runs_no_gating"] == 25
    assert 0 < data["detector_runs_gating"] <= 25
    assert "pipeline_to_model_ratio" in text.split("\n}\n", 1)[1]  # the readable table follows
