"""The edge CLI end to end on a real clip and a real model: run, snapshot, and `python -m edge`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.cli import main

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, shared_dir: Path, extra_rules: str = "") -> Path:
    text = f"""\
node_id: test-node
model: {{path: "{shared_dir}/models/yolox_nano.onnx", intra_op_threads: 1}}
metrics: {{enabled: false}}
outbox: {{path: "{tmp_path}/outbox.sqlite"}}
cameras:
  - id: campus
    name: vtest
    source: "{shared_dir}/videos/vtest.avi"
    detect_fps: 10
    reference_size: [768, 576]
    lines:
      walkway: {{points: [[50, 330], [740, 330]], in_name: towards camera, out_name: away}}
    zones:
      lawn: {{points: [[0, 300], [768, 300], [768, 576], [0, 576]]}}
    rules:
      - {{kind: line_crossing, name: walkway, line: walkway, classes: [person], summary_interval_s: 5}}
{extra_rules}"""
    path = tmp_path / "node.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_run_writes_events_as_json_lines(tmp_path: Path, shared_dir: Path, vtest_path: Path) -> None:
    cfg = _config(tmp_path, shared_dir)
    out = tmp_path / "events.jsonl"
    assert main(["run", str(cfg), "--no-mqtt", "--max-frames", "200", "--events-jsonl", str(out)]) == 0
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    crossings = [e for e in events if e["kind"] == "line_crossing"]
    assert crossings, f"no line crossing in 200 frames of vtest; events: {[e['kind'] for e in events]}"
    for e in crossings:
        assert e["node"] == "test-node" and e["camera"] == "campus" and e["rule"] == "walkway"
        assert e["classes"] == ["person"]
        assert e["measurements"]["direction"] in ("in", "out")
        assert e["texts"]["vi"] and e["texts"]["en"]
        assert e["snapshot_bytes"] > 1000  # the object's JPEG was made
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_snapshot_draws_detections_and_geometry(
    tmp_path: Path, shared_dir: Path, vtest_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, shared_dir)
    png = tmp_path / "snap.png"
    assert main(["snapshot", str(cfg), "--camera", "campus", "--out", str(png)]) == 0
    img = cv2.imread(str(png))
    assert img is not None and img.shape == (576, 768, 3)
    raw = cv2.VideoCapture(str(vtest_path)).read()[1]
    assert float(cv2.absdiff(img, raw).mean()) > 1.0  # something was drawn
    assert "detection(s), 1 line(s), 1 zone(s)" in capsys.readouterr().out


def test_snapshot_unknown_camera_exits_2(tmp_path: Path, shared_dir: Path) -> None:
    cfg = _config(tmp_path, shared_dir)
    assert main(["snapshot", str(cfg), "--camera", "nope", "--out", str(tmp_path / "x.png")]) == 2


def test_model_with_unknown_layout_exits_2(
    tmp_path: Path, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx model")
    cfg = _config(tmp_path, shared_dir)
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(f"{shared_dir}/models/yolox_nano.onnx", str(bogus)),
        encoding="utf-8",
    )
    assert main(["run", str(cfg), "--no-mqtt", "--max-frames", "1"]) == 2
    assert "bogus.onnx" in capsys.readouterr().err


def test_python_dash_m_edge_matches_console_script(tmp_path: Path, shared_dir: Path) -> None:
    cfg = _config(tmp_path, shared_dir)
    env = {**os.environ, "ROADWATCH_DATA_DIR": str(shared_dir)}
    via_module = subprocess.run(
        [sys.executable, "-m", "edge", "check", str(cfg)], capture_output=True, text=True, env=env, timeout=60
    )
    script = Path(sys.executable).parent / "roadwatch-edge"
    via_script = subprocess.run(
        [str(script), "check", str(cfg)], capture_output=True, text=True, env=env, timeout=60
    )
    assert via_module.returncode == via_script.returncode == 0
    assert via_module.stdout == via_script.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("node_id: x\n", encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "edge", "check", str(bad)], capture_output=True, text=True, env=env, timeout=60
    )
    assert res.returncode == 2
    assert f"{bad}: cameras: Field required" in res.stderr
