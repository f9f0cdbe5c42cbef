"""The top-down parking clip with and without a class alias, and eval_counts' `--config-dir` variants.

Both COCO models call the top-down cars `cell phone`; the headline eval config counts none of them (a model
limit, docs/evaluation.md, fourth round); the variant config that reads `cell phone` as `car` on that camera
counts all four. The measured figures are asserted exactly: the detections are cached, the replay is
deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import eval_counts  # noqa: E402

TRUTH = ROOT / "configs" / "eval" / "car-detection.truth.json"


@pytest.mark.parametrize(
    ("config_dir", "present", "expected"),
    [
        ("aliases", True, "configs/eval/aliases/car-detection.yaml"),
        ("aliases", False, "configs/eval/vtest.yaml"),  # no variant there: the default config
        (None, True, "configs/eval/car-detection.yaml"),
    ],
)
def test_config_dir_replaces_only_the_clips_it_has(
    config_dir: str | None, present: bool, expected: str
) -> None:
    name = "car-detection" if present else "vtest"
    clip = eval_counts.Clip(name, Path(f"{name}.mp4"), TRUTH, ROOT / "configs" / "eval" / f"{name}.yaml")
    folder = str(ROOT / "configs" / "eval" / config_dir) if config_dir else None
    got = eval_counts.overridden(clip, folder)
    assert got.config.relative_to(ROOT).as_posix() == expected
    assert (got.name, got.video, got.truth) == (clip.name, clip.video, clip.truth)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("model", ["yolox_nano.onnx", "yolo11n_int8.onnx"])
@pytest.mark.parametrize(
    ("config", "counted"), [("aliases/car-detection.yaml", 4), ("car-detection.yaml", 0)]
)
def test_top_down_cars_counted_only_with_the_alias(
    shared_dir: Path, model: str, config: str, counted: int
) -> None:
    path = shared_dir / "models" / model
    assert path.is_file(), path
    result = eval_counts.count_clip(ROOT / "configs" / "eval" / config, TRUTH, str(path))
    assert sum(t["counted"] for t in result["totals"]) == counted, result["totals"]
    assert result["wrong"] == 4 - counted
    assert all(e["class"] == "car" for e in result["events"])
