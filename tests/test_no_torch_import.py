"""The edge runtime never imports torch or ultralytics: they are export-time tools, far too big for a Pi.

A fresh interpreter imports every module of `edge` and runs a real detection with an import hook that
refuses and records any attempt to import either package. Recording attempts (not only what ended up
in `sys.modules`) keeps the test meaningful on a machine where torch is installed and on one where it
is not: an optional `try: import torch` would be caught either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, json, pkgutil, sys

BANNED = ("torch", "ultralytics", "supervision")
attempts = []

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BANNED:
            attempts.append(name)
            raise ImportError(f"{name} is banned from the edge runtime")
        return None

sys.meta_path.insert(0, Refuse())

import edge
import numpy as np

failed = {}
imported = []
for info in pkgutil.walk_packages(edge.__path__, "edge."):
    if info.name.endswith(".__main__"):
        continue  # runs the CLI on import
    try:
        importlib.import_module(info.name)
        imported.append(info.name)
    except Exception as exc:  # a module under construction must not hide the others
        failed[info.name] = repr(exc)

from edge.config import ModelSettings
from edge.vision.detector import Detector

frame = np.full((576, 768, 3), 90, np.uint8)
for path in sys.argv[1:]:
    Detector(ModelSettings(path=path)).detect(frame, 0.25)

print(json.dumps({
    "attempts": attempts,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BANNED),
    "imported": imported,
    "failed": failed,
}))
"""


@pytest.mark.integration
def test_edge_runtime_never_imports_torch_or_ultralytics(shared_dir: Path) -> None:
    from conftest import shared_file

    models = [shared_file(shared_dir, f"models/{name}.onnx") for name in ("yolo11n_int8", "yolox_nano")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, models)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], f"edge tried to import {report['attempts']}"
    assert report["loaded"] == []
    assert {
        "edge.vision.detector",
        "edge.vision.decode",
        "edge.vision.filters",
        "edge.config",
        "edge.records",
    } <= set(report["imported"])
    assert "edge.vision.detector" not in report["failed"] and "edge.vision.filters" not in report["failed"]
