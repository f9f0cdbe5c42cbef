"""The project's hand-made ground truths (configs/eval/*.truth.json) are self-consistent and match their configs.

A label file is data typed by hand; a total that disagrees with its crossings, or a config whose line
differs from the labelled one, silently moves every error rate. Checked without the clips themselves.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import require

from edge.camera_config import COCO_NAMES
from edge.capture.sourceurl import data_dir
from edge.config import load_config

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "configs" / "eval"
TRUTHS = sorted(EVAL.glob("*.truth.json"))
sys.path.insert(0, str(ROOT / "scripts"))

import eval_counts  # noqa: E402


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_the_pedestrian_labels_are_there() -> None:
    assert {"vtest", "one-by-one-person-detection"} <= {p.name.removesuffix(".truth.json") for p in TRUTHS}


def test_the_second_lines_are_there() -> None:
    """More lines on clips already labelled (issue 10, fourth round): another part of the same picture."""
    assert {"jakarta_sudirman.near", "intersection_cctv.east", "cdnet_highway.far"} <= {
        p.name.removesuffix(".truth.json") for p in TRUTHS
    }


@pytest.mark.parametrize("path", [p for p in TRUTHS if p.name.count(".") > 2], ids=lambda p: p.name)
def test_a_second_line_names_its_clip_and_differs_from_the_first(path: Path) -> None:
    """`<clip>.<line>.truth.json` labels another line of `<clip>`: same video, same size, another line.

    The first line is the project's `<clip>.truth.json` or, for the data directory's clips, its eval/ one.
    """
    clip = path.name.split(".", 1)[0]
    first_path = EVAL / f"{clip}.truth.json"
    if not first_path.is_file():
        first_path = data_dir() / "eval" / f"{clip}.truth.json"
        require(first_path.is_file(), f"{first_path} is missing")
    truth, first = _load(path), _load(first_path)
    assert truth["clip"].rsplit(".", 1)[0] == clip
    same = ("clip", "resolution", "frames")
    assert [truth[k] for k in same] == [first[k] for k in same]
    assert truth["line"] != first["line"]


@pytest.mark.parametrize(
    ("labels", "videos", "found"),
    [
        # the first line of a clip, a second one, a third: each a row of its own, on the same video
        (["road.truth.json", "road.near.truth.json", "road.far.truth.json"], ["videos/road.mp4"],
         {"road": "videos/road.mp4", "road.near": "videos/road.mp4", "road.far": "videos/road.mp4"}),
        # a second line on a clip of the data directory's eval/ (its video is there, not in videos/)
        (["hwy.far.truth.json"], ["eval/hwy.avi"], {"hwy.far": "eval/hwy.avi"}),
        # no video: not a row (the label stays for when the clip is there)
        (["gone.near.truth.json"], [], {}),
        # a clip whose name shares a prefix with another is not taken for it
        (["road.near.truth.json"], ["videos/roadside.mp4"], {}),
    ],
)  # fmt: skip
def test_discover_clips_finds_every_line_of_a_clip(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    labels: list[str],
    videos: list[str],
    found: dict[str, str],
) -> None:
    configs, data = tmp_path / "configs", tmp_path / "data"
    for folder in (configs, data / "videos", data / "eval"):
        folder.mkdir(parents=True)
    for name in labels:
        (configs / name).write_text("{}", encoding="utf-8")
        (configs / name.replace(".truth.json", ".yaml")).write_text("", encoding="utf-8")
    for rel in videos:
        (data / rel).write_bytes(b"")
    monkeypatch.setattr(eval_counts, "EVAL_CONFIGS", configs)
    clips = {c.name: c for c in eval_counts.discover_clips(data)}
    assert {n: str(c.video.relative_to(data)) for n, c in clips.items()} == found
    for name, clip in clips.items():
        assert (clip.truth.name, clip.config.name) == (f"{name}.truth.json", f"{name}.yaml")


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
