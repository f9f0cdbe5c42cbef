"""Every shipped node config loads, and its rules build for the real frame size of its clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from edge.camera_config import COCO_NAMES
from edge.capture.sourceurl import expand_path
from edge.config import load_config
from edge.events import EventFactory
from edge.rules import build_rules

ROOT = Path(__file__).resolve().parents[1]
NODE_CONFIGS = sorted(
    p
    for p in (ROOT / "configs").rglob("*.yaml")
    if not p.name.startswith("central") and "mosquitto" not in p.parts
)


def test_the_examples_are_all_there() -> None:
    names = {p.relative_to(ROOT / "configs").as_posix() for p in NODE_CONFIGS}
    assert {
        "demo.yaml",
        "road-point.example.yaml",
        "eval/cdnet_highway.yaml",
        "eval/eu_highway_cctv.yaml",
    } <= names
    clips = {"vtest", "car-detection", "one-by-one-person-detection", "intersection_cctv", "jakarta_sudirman"}
    assert {f"videos/{c}.yaml" for c in clips} <= names


@pytest.mark.parametrize("path", NODE_CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_node_config_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ROADWATCH_MQTT_PASSWORD", "CAM_TL_BEN_PHA_PASSWORD", "CAM_CONG_CHO_PASSWORD"):
        monkeypatch.setenv(name, "example")
    cfg = load_config(path)
    assert cfg.cameras


CLIP_CONFIGS = [
    p for p in NODE_CONFIGS if p.parent.name in ("videos", "eval", "bench") or p.name == "demo.yaml"
]


@pytest.mark.integration
@pytest.mark.parametrize("path", CLIP_CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_rules_build_for_the_clip_frame_size(path: Path, shared_dir: Path) -> None:
    cfg = load_config(path)
    for cam in cfg.cameras:
        cap = cv2.VideoCapture(expand_path(cam.source))
        ok, frame = cap.read()
        cap.release()
        assert ok, f"{cam.source} gives no frame"
        h, w = frame.shape[:2]
        if cam.reference_size is not None:
            assert tuple(cam.reference_size) == (w, h), "reference_size should be the clip's own size"
        rules = build_rules(
            cam, w, h, COCO_NAMES, EventFactory(cfg.node_id, cam.id, cfg.timezone), cfg.timezone
        )
        assert len(rules) == sum(r.enabled for r in cam.rules)
