#!/usr/bin/env python3
"""Counting accuracy: run node configs on labelled clips and compare line crossings with the ground truth.

Every labelled clip, every model given, one table (the detector runs once per clip and model; its raw
detections are cached under var/detcache/ and tracker + rules are replayed over them):

    python scripts/eval_counts.py --all --model '{data}/models/yolox_nano.onnx' \
        --model '{data}/models/yolo11n_int8.onnx'

The same with each camera's motion gate deciding which detector runs happen, as on a node (the clip is
decoded beside the cache; detections still come from it): add `--motion`.

One config on its clip, the whole pipeline (motion gate included), as before:

    python scripts/eval_counts.py --config configs/eval/cdnet_highway.yaml \
        --truth '{data}/eval/cdnet_highway.truth.json'

Labelled clips are the data directory's `eval/<clip>.truth.json` (video beside it) and the project's own
`configs/eval/<clip>.truth.json` (video in the data directory's `videos/` or `eval/`); each needs its
config `configs/eval/<clip>.yaml`. More lines on one clip are `configs/eval/<clip>.<line>.truth.json`
with their config `configs/eval/<clip>.<line>.yaml`; each line is a row of its own. The error rate of a
clip is sum over directions of |counted - true| divided by the number of true crossings; the total
divides the sums over all clips. The JSON also has a per-class breakdown and two diagnostics: `doubled`
(two tracks of different classes counted on the same object at the same moment) and `person_counted`
(crossings counted as `person` beyond the labelled pedestrian crossings). Counted crossings are also
matched one by one to the labelled ones (`crossmatch.py`: same direction, frames within 0.5 s) to report
`riders_as_pedestrians` (a two-wheeler counted as `person`) and `pedestrians_as_vehicles` per clip and in
total. Exit code 0 when every direction total (single mode) or every clip error (--all) is within
--tolerance (10 % by default), else 3.
Other scripts (compare_peers.py, tune_counts.py) call `count_clip` and `compare`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crossmatch import Crossing, confusions, tolerance_frames, truth_crossings
from detcache import cached_detections, replay

from edge.capture.sourceurl import data_dir, expand_path
from edge.config import NodeConfig, load_config
from edge.records import Event

ROOT = Path(__file__).resolve().parents[1]
EVAL_CONFIGS = ROOT / "configs" / "eval"
DEFAULT_MODELS = ("{data}/models/yolox_nano.onnx",)
CONFUSIONS = ("person_counted", "riders_as_pedestrians", "pedestrians_as_vehicles")


@dataclass(frozen=True)
class Clip:
    """A labelled clip: its name, video, truth file and the node config that counts it."""

    name: str
    video: Path
    truth: Path
    config: Path


def discover_clips(data: Path | None = None) -> list[Clip]:
    """Every labelled line with a config: the data directory's eval/ first, then the project's labels.

    A clip may carry several labelled lines: `<clip>.truth.json` is its first line and
    `<clip>.<line>.truth.json` (config `<clip>.<line>.yaml`) any other, so a name is `<clip>` or
    `<clip>.<line>`; the video is the data directory's eval/ or videos/ file named `<clip>.*`.
    """
    data = data or Path(data_dir())
    found: dict[str, Clip] = {}
    for labels, folders in ((data / "eval", ("eval",)), (EVAL_CONFIGS, ("videos", "eval"))):
        for truth in sorted(labels.glob("*.truth.json")):
            name = truth.name.removesuffix(".truth.json")
            video = _video(data, folders, name.split(".", 1)[0])
            if name not in found and video is not None and (EVAL_CONFIGS / f"{name}.yaml").is_file():
                found[name] = Clip(name, video, truth, EVAL_CONFIGS / f"{name}.yaml")
    return list(found.values())


def _video(data: Path, folders: Sequence[str], clip: str) -> Path | None:
    """The clip's video: the first file `<clip>.*` (not a label) in the data directory's folders."""
    for folder in folders:
        for path in sorted((data / folder).glob(f"{clip}.*")):
            if not path.name.endswith(".json"):
                return path
    return None


class _Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def put(self, event: Event, jpeg: bytes | None) -> None:
        self.events.append(event)


def _rel(err: int, truth: int) -> float | None:
    return None if truth == 0 else round(abs(err) / truth, 4)


def _crossings(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "line_crossing"]


def doubled(events: list[Event], max_frames: int = 6, min_iou: float = 0.3) -> int:
    """Crossings that are a second count of one object under another class (same direction, same moment,
    overlapping boxes, different track and class)."""
    from edge.geometry import iou_matrix

    evs = [e for e in _crossings(events) if e.box is not None and e.frame_seq is not None]
    n = 0
    for i, a in enumerate(evs):
        for b in evs[i + 1 :]:
            assert a.frame_seq is not None and b.frame_seq is not None
            if (
                abs(a.frame_seq - b.frame_seq) <= max_frames
                and a.measurements.get("direction") == b.measurements.get("direction")
                and a.classes != b.classes
                and a.track_ids != b.track_ids
                and float(iou_matrix([a.box], [b.box])[0, 0]) >= min_iou
            ):
                n += 1
    return n


def compare(events: list[Event], truth: dict[str, Any]) -> dict[str, Any]:
    """Counted crossings vs truth, per direction and class, per direction in total, and the error rate."""
    counted: Counter[tuple[str, str]] = Counter()
    for ev in _crossings(events):
        for cls in ev.classes or ("unknown",):
            counted[(str(ev.measurements.get("direction")), cls)] += 1
    want: Counter[tuple[str, str]] = Counter()
    for direction, per_class in truth.get("totals", {}).items():
        if direction in ("in", "out") and isinstance(per_class, dict):
            for cls, n in per_class.items():
                want[(direction, cls)] += int(n)
    rows = []
    for key in sorted(set(counted) | set(want)):
        c, t = counted.get(key, 0), want.get(key, 0)
        rows.append(
            {"direction": key[0], "class": key[1], "counted": c, "truth": t, "abs_error": c - t,
             "rel_error": _rel(c - t, t)}
        )  # fmt: skip
    totals = []
    for direction in ("in", "out"):
        c = sum(n for (d, _), n in counted.items() if d == direction)
        t = sum(n for (d, _), n in want.items() if d == direction)
        totals.append(
            {
                "direction": direction,
                "counted": c,
                "truth": t,
                "abs_error": c - t,
                "rel_error": _rel(c - t, t),
            }
        )
    wrong = sum(abs(r["abs_error"]) for r in totals)
    want_person = sum(n for (_, cls), n in want.items() if cls == "person")  # labelled pedestrians
    true = sum(r["truth"] for r in totals)
    return {
        "per_class": rows,
        "totals": totals,
        "wrong": wrong,
        "true": true,
        "error_rate": round(wrong / true, 4) if true else None,
        "doubled": doubled(events),
        "person_counted": max(0, sum(1 for e in _crossings(events) if "person" in e.classes) - want_person),
        **class_check(events, truth),
    }


def class_check(events: list[Event], truth: dict[str, Any]) -> dict[str, Any]:
    """Counted crossings (those with a frame) matched to the labelled ones: class confusions."""
    counted = [
        Crossing(e.frame_seq, str(e.measurements.get("direction")), e.classes[0] if e.classes else "unknown")
        for e in _crossings(events)
        if e.frame_seq is not None
    ]
    fps = truth.get("fps")
    return confusions(counted, truth_crossings(truth), tolerance_frames(float(fps) if fps else None))


def with_model(cfg: NodeConfig, model: str | None) -> NodeConfig:
    if not model:
        return cfg
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": model})})


def count_clip(
    config: NodeConfig | str | Path, truth: dict[str, Any] | str | Path, model: str | None = None,
    *, cached: bool = True, motion: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Count one clip with one model and compare with its truth; the function peers' scripts call.

    `cached=True` replays over the detection cache (fast; with `motion` the clip is decoded alongside
    and the camera's motion gate skips detector runs as on a node); `False` runs the whole node.
    """
    cfg = with_model(config if isinstance(config, NodeConfig) else load_config(config), model)
    if not isinstance(truth, dict):
        truth = json.loads(Path(expand_path(str(truth))).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    if cached:
        clip = cached_detections(cfg)
        kept: list[Any] = []
        events = replay(cfg, clip, kept, video=cfg.cameras[0].source if motion else None)
        frames = len(clip)
        runs = {"analysed": kept[0].times.frames, "detector_runs": kept[0].times.detector_runs}
    else:
        events, frames = _run_node(cfg)
        runs = {}
    result = compare(events, truth)
    return {
        "model": Path(expand_path(cfg.model.path)).name,
        "frames": frames,
        "seconds": round(time.perf_counter() - t0, 2),
        **runs,
        **result,
        "events": [
            {"frame": e.frame_seq, "class": e.classes[0] if e.classes else None,
             "direction": e.measurements.get("direction"), "track": e.track_ids[0] if e.track_ids else None}
            for e in _crossings(events)
        ],
    }  # fmt: skip


def _run_node(cfg: NodeConfig, no_motion: bool = False) -> tuple[list[Event], int]:
    from edge.pipeline import Node
    from edge.vision.detector import Detector

    sink = _Collect()
    node = Node(cfg, Detector(cfg.model), [sink])
    if no_motion:
        for an in node.analyzers.values():
            an.motion = type(an.motion)(an.camera.motion.model_copy(update={"enabled": False}))
    node.run()
    return sink.events, sum(a.times.frames for a in node.analyzers.values())


def run_all(
    models: Sequence[str], clips: list[Clip], int8_ops: str | None = None, motion: bool = False
) -> dict[str, Any]:
    """Every clip with every model: per clip results and per model totals (`int8_ops`: each config's
    `model.int8_ops` replaced; `motion`: each camera's motion gate on, as on a node)."""
    out: dict[str, Any] = {"models": {}}
    for model in models:
        per_clip = {}
        for clip in clips:
            cfg = load_config(clip.config)
            if int8_ops:
                cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"int8_ops": int8_ops})})
            cfg = with_model(cfg, model).model_copy(
                update={"cameras": [cfg.cameras[0].model_copy(update={"source": str(clip.video)})]}
            )
            res = count_clip(cfg, clip.truth, motion=motion)
            res.pop("events")
            per_clip[clip.name] = res
        wrong = sum(r["wrong"] for r in per_clip.values())
        true = sum(r["true"] for r in per_clip.values())
        out["models"][Path(model).name] = {
            "clips": per_clip,
            "wrong": wrong,
            "true": true,
            "error_rate": round(wrong / true, 4) if true else None,
            "doubled": sum(r["doubled"] for r in per_clip.values()),
            **{k: sum(r[k] for r in per_clip.values()) for k in CONFUSIONS},
            **{k: sum(r.get(k, 0) for r in per_clip.values()) for k in ("analysed", "detector_runs")},
        }
    return out


def overridden(clip: Clip, config_dir: str | None) -> Clip:
    """The clip with its config from `config_dir` when that folder has one (variants, e.g. class aliases)."""
    other = Path(config_dir or ".") / f"{clip.name}.yaml"
    return Clip(clip.name, clip.video, clip.truth, other) if config_dir and other.is_file() else clip


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def print_all(result: dict[str, Any]) -> None:
    """One row per clip and model; `rider>ped` / `ped>veh` are the class confusions of matched crossings."""
    head = (
        f"{'true':>6}{'counted':>9}{'wrong':>7}{'error':>8}{'doubled':>9}{'person':>8}{'rider>ped':>11}"
        f"{'ped>veh':>9}{'runs':>7}"
    )
    print(f"\n{'model':<20}{'clip':<29}{head}")
    for model, m in result["models"].items():
        for name, r in m["clips"].items():
            counted = sum(t["counted"] for t in r["totals"])
            print(f"{model:<20}{name:<29}{r['true']:>6}{counted:>9}{_row(r)}")
        print(f"{model:<20}{'TOTAL':<29}{m['true']:>6}{'':>9}{_row(m)}")


def _row(r: dict[str, Any]) -> str:
    """`runs`: detector runs per analysed frame (below 100 % where the motion gate skipped some)."""
    runs = r["detector_runs"] / r["analysed"] if r.get("analysed") else None
    return (
        f"{r['wrong']:>7}{_pct(r['error_rate']):>8}{r['doubled']:>9}{r['person_counted']:>8}"
        f"{r['riders_as_pedestrians']:>11}{r['pedestrians_as_vehicles']:>9}{_pct(runs):>7}"
    )


def print_single(name: str, result: dict[str, Any], ok: bool) -> None:
    print(
        f"\n{name}: {result['frames']} frames, {result['seconds']:.1f} s, error {_pct(result['error_rate'])}"
    )
    print(f"{'direction':<10}{'class':<12}{'counted':>8}{'truth':>7}{'abs err':>9}{'rel err':>9}")
    for r in [*result["per_class"], *({**t, "class": "TOTAL"} for t in result["totals"])]:
        print(
            f"{r['direction']:<10}{r['class']:<12}{r['counted']:>8}{r['truth']:>7}{r['abs_error']:>9}"
            f"{_pct(r['rel_error']):>9}"
        )
    print("within tolerance" if ok else "OUTSIDE tolerance")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--all", action="store_true", help="every labelled clip (replayed over cached detections)")
    p.add_argument("--config", help="one node config (single mode)")
    p.add_argument("--truth", help="its ground-truth JSON; {data} is the data directory")
    p.add_argument("--model", action="append", help="model path (repeatable with --all)")
    p.add_argument("--no-motion", action="store_true", help="single mode: detector on every due frame")
    p.add_argument("--tolerance", type=float, default=0.10, help="allowed relative error")
    p.add_argument("--json-only", action="store_true")
    p.add_argument(
        "--int8-ops", choices=["int8", "float", "auto"], help="--all: every config's model.int8_ops"
    )
    p.add_argument("--config-dir", help="--all: a clip's config here replaces configs/eval/<clip>.yaml")
    p.add_argument(
        "--motion",
        action="store_true",
        help="--all: decode each clip beside the cache and let its camera's motion gate skip detector "
        "runs, as a node does (default: the detector on every due frame)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.all:
        clips = [overridden(c, args.config_dir) for c in discover_clips()]
        result = run_all(args.model or list(DEFAULT_MODELS), clips, args.int8_ops, args.motion)
        ok = all(
            r["error_rate"] is None or r["error_rate"] <= args.tolerance
            for m in result["models"].values()
            for r in m["clips"].values()
        )
        print(json.dumps(result, indent=2))
        if not args.json_only:
            print_all(result)
        return 0 if ok else 3
    if not args.config or not args.truth:
        p.error("give --all, or --config and --truth")
    cfg = with_model(load_config(args.config), (args.model or [None])[-1])
    truth = json.loads(Path(expand_path(args.truth)).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    events, frames = _run_node(cfg, args.no_motion)
    res = {"frames": frames, "seconds": round(time.perf_counter() - t0, 2), **compare(events, truth)}
    ok = all(t["rel_error"] is None or t["rel_error"] <= args.tolerance for t in res["totals"] if t["truth"])
    out = {"config": args.config, "truth": args.truth, "model": cfg.model.path, **res,
           "within_tolerance": ok, "tolerance": args.tolerance}  # fmt: skip
    print(json.dumps(out, indent=2))
    if not args.json_only:
        print_single(Path(args.config).name, res, ok)
    return 0 if ok else 3


if __name__ == "__main__":
    raise SystemExit(main())
