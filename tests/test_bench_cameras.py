"""The many-cameras benchmark runs end to end and reports every figure (timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def test_bench_cameras_reports_per_camera_figures_and_the_peer_column(
    shared_dir: Path, yolo11_path: Path, tmp_path: Path
) -> None:
    cmd = [
        sys.executable, str(ROOT / "scripts" / "bench_cameras.py"), "--model", str(yolo11_path),
        "--clip", str(shared_dir / "videos" / "vtest.avi"), "--cameras", "1,2", "--seconds", "3",
        "--warmup", "2", "--threads", "1", "--peer", "--peer-python", str(tmp_path / "no-venv" / "python"), "--int8-ab",
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout
    data = json.loads(text[: text.index("\n}\n") + 2])
    assert [r["cameras"] for r in data["runs"]] == [1, 2]
    for run in data["runs"]:
        assert len(run["fps_per_camera"]) == run["cameras"]
        assert run["fps_min"] > 0 and run["cpu_s_per_min"] > 0 and run["rss_mb"] > 0
        assert run["age_p99_ms"] >= run["age_p50_ms"] > 0
        assert run["dropped"] >= 0
    assert "rss_mb_per_added_camera" in data and data["model_only_inferences_per_s"] > 0
    # --int8-ab: the node with the other int8_ops setting too, and the paced CPU per detection both ways
    assert data["one_camera_float"]["cameras"] == 1 and data["one_camera_float"]["cpu_s_per_min"] > 0
    ab = data["int8_ab"]
    assert ab["cpu_ms_per_detection_int8"] > 0 and ab["cpu_ms_per_detection_float"] > 0
    assert len(data["load_average_at_start"]) == 3 and len(data["load_average_at_end"]) == 3
    assert data["peer_ultralytics"].startswith("n/a") and "make peers-venv" in data["peer_ultralytics"]
    assert "Ultralytics model.track() CPU-s per video-minute: n/a" in text.split("\n}\n", 1)[1]
