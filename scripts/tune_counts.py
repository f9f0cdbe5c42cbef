#!/usr/bin/env python3
"""Tuning harness: measure many tracker / object settings over every labelled clip and model at once.

The detector ran once per clip and model (scripts/detcache.py); here only tracker, object merging and
rules are replayed, a few seconds per clip and setting. Every combination of the grid is measured on
every clip with every model; settings are ranked by the total error rate over all of them (sum of
|counted - true| per direction / sum of true crossings, all clips and models pooled), and, to prefer a
plateau over a lucky spike, by the worst total among the setting and its grid neighbours (one step away
on one axis). Never fit on one clip: the defaults of `edge.vision.settings` come from this ranking.

    python scripts/tune_counts.py --model "{data}/models/yolox_nano.onnx" --save var/tune-yolox.json
    python scripts/tune_counts.py --model "{data}/models/yolo11n_int8.onnx" --save var/tune-yolo11n.json
    python scripts/tune_counts.py --merge var/tune-yolox.json var/tune-yolo11n.json

(or both `--model`s in one run); `--grid axis=v1,v2` replaces or adds an axis, `--clip` limits the clips.
Prints JSON (every setting's per-clip wrong counts) and a table of the best settings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detcache import cached_detections, replay
from eval_counts import Clip, compare, discover_clips, with_model

from edge.config import NodeConfig, load_config

# Axes: camera field or section.field -> values. `min_score`, detection regions and narrow_car_aspect
# belong to a camera (its view), so the clips' configs keep theirs unless an axis is given.
GRID: dict[str, list[Any]] = {
    "tracker.high_score": [0.0, 0.3, 0.5],
    "tracker.new_track_margin": [0.0, 0.1, 0.2],
    "tracker.min_hits": [2, 3],
}


def apply(cfg: NodeConfig, setting: dict[str, Any]) -> NodeConfig:
    """The config with one setting applied to its first camera (validated like a YAML file); keys
    `model.<field>` go to the node's model settings instead (e.g. `model.int8_ops`), `rules.<field>` to
    every rule of the camera that has that field (e.g. `rules.min_observations`)."""
    cam = cfg.cameras[0].model_dump()
    model = cfg.model.model_dump()
    for key, value in setting.items():
        section, _, field = key.rpartition(".")
        if section == "model":
            model[field] = value
            continue
        if section == "rules":  # every rule of the camera that has the field (e.g. the line rule's)
            for rule in cam["rules"]:
                if field in rule:
                    rule[field] = value
            continue
        (cam[section] if section else cam)[field] = value
    return cfg.model_copy(
        update={
            "cameras": [type(cfg.cameras[0]).model_validate(cam)],
            "model": type(cfg.model).model_validate(model),
        }
    )


def _parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    grid = dict(GRID)
    for item in items:
        key, _, values = item.partition("=")
        grid[key] = [json.loads(v) for v in values.split(",")]
    return grid


def neighbours(index: tuple[int, ...], shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    out = []
    for axis, size in enumerate(shape):
        for step in (-1, 1):
            j = index[axis] + step
            if 0 <= j < size:
                out.append((*index[:axis], j, *index[axis + 1 :]))
    return out


def measure(
    models: Sequence[str], clips: list[Clip], grid: dict[str, list[Any]], motion: bool = False
) -> dict[str, Any]:
    """Wrong counts of every setting of the grid on every clip and model (keyed `model/clip`); with
    `motion` the clips are decoded and each camera's motion gate skips detector runs as on a node, and
    each setting also reports the share of analysed frames the detector ran on (`runs`)."""
    keys = list(grid)
    base = {c.name: load_config(c.config) for c in clips}
    truths = {c.name: json.loads(c.truth.read_text(encoding="utf-8")) for c in clips}
    # a setting of the model itself (`model.int8_ops`) changes the detections: one cache per value
    model_keys = [k for k in keys if k.startswith("model.")]
    cached: dict[tuple[Any, ...], Any] = {}
    settings = []
    for index in itertools.product(*(range(len(grid[k])) for k in keys)):
        setting = {k: grid[k][i] for k, i in zip(keys, index, strict=True)}
        per: dict[str, int] = {}
        analysed = runs = 0
        for m in models:
            for c in clips:
                kept: list[Any] = []
                cfg = apply(with_model(base[c.name], m), setting)
                key = (m, c.name, *(setting[k] for k in model_keys))
                if key not in cached:
                    cached[key] = cached_detections(cfg)
                video = c.video if motion else None
                res = compare(replay(cfg, cached[key], kept, video=video), truths[c.name])
                per[f"{Path(m).stem}/{c.name}"] = res["wrong"]
                analysed += kept[0].times.frames
                runs += kept[0].times.detector_runs
        settings.append(
            {
                "index": list(index),
                "setting": setting,
                "wrong": per,
                "runs": round(runs / max(analysed, 1), 4),
            }
        )
    true_per = {
        f"{Path(m).stem}/{c.name}": sum(
            int(n) for d in ("in", "out") for n in truths[c.name]["totals"].get(d, {}).values()
        )
        for m in models
        for c in clips
    }
    return {"grid": grid, "true": true_per, "settings": settings}


def rank(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool the runs (same grid; different models or clips) and rank by plateau, then error."""
    grid = runs[0]["grid"]
    shape = tuple(len(v) for v in grid.values())
    true_per: dict[str, int] = {}
    pooled: dict[tuple[int, ...], dict[str, Any]] = {}
    for run in runs:
        true_per.update(run["true"])
        for s in run["settings"]:
            entry = pooled.setdefault(tuple(s["index"]), {"setting": s["setting"], "wrong": {}, "runs": []})
            entry["wrong"].update(s["wrong"])
            entry["runs"].append(s.get("runs", 1.0))
    models = sorted({k.split("/")[0] for k in true_per})
    total_true = sum(true_per.values())
    for r in pooled.values():
        r["error"] = round(sum(r["wrong"].values()) / total_true, 4)
        r["per_model"] = {
            m: round(
                sum(v for k, v in r["wrong"].items() if k.startswith(f"{m}/"))
                / sum(v for k, v in true_per.items() if k.startswith(f"{m}/")),
                4,
            )
            for m in models
        }
    for index, r in pooled.items():
        r["plateau"] = max(
            [r["error"], *(pooled[j]["error"] for j in neighbours(index, shape) if j in pooled)]
        )
    ranked = sorted(pooled.values(), key=lambda r: (r["plateau"], r["error"]))
    return {"grid": grid, "true": true_per, "models": models, "ranked": ranked}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--merge", nargs="+", default=[], help="pool earlier --save files instead of measuring")
    p.add_argument("--save", help="write the measurements (JSON) here, for --merge")
    p.add_argument("--grid", action="append", default=[], help="axis=v1,v2 (JSON values); replaces an axis")
    p.add_argument("--clip", action="append", help="only these clips (default: every labelled clip)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument(
        "--motion",
        action="store_true",
        help="decode the clips: each camera's motion gate skips runs as on a node",
    )
    p.add_argument(
        "--only", action="store_true", help="only the --grid axes given (without the default tracker axes)"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    if args.merge:
        runs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.merge]
    else:
        clips = [c for c in discover_clips() if not args.clip or c.name in args.clip]
        grid = _parse_grid(args.grid)
        if args.only:
            grid = {k: v for k, v in grid.items() if any(g.partition("=")[0] == k for g in args.grid)}
        runs = [measure(args.model, clips, grid, args.motion)]
        if args.save:
            Path(args.save).write_text(json.dumps(runs[0]), encoding="utf-8")
    out = rank(runs)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))
    models = out["models"]
    print(f"\n{len(out['ranked'])} settings, {len(out['true'])} clip x model pairs, {out['seconds']} s")
    print(
        f"{'plateau':>8}{'error':>8}  " + "".join(f"{m[:14]:>15}" for m in models) + f"{'runs':>7}  setting"
    )
    for r in out["ranked"][: args.top]:
        cols = "".join(f"{100 * r['per_model'][m]:>14.1f}%" for m in models)
        runs = sum(r["runs"]) / max(len(r["runs"]), 1)
        print(
            f"{100 * r['plateau']:>7.1f}%{100 * r['error']:>7.1f}%  {cols}{100 * runs:>6.1f}%  {r['setting']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
