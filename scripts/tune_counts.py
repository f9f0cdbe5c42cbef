#!/usr/bin/env python3
"""Tuning harness: measure many tracker / object settings over every labelled clip and model at once.

The detector ran once per clip and model (scripts/detcache.py); here only tracker, object merging and
rules are replayed, a few seconds per clip and setting. Every combination of the grid is measured on
every clip with every model; settings are ranked by the total error rate over all of them (sum of
|counted - true| per direction / sum of true crossings, all clips and models pooled), and, to prefer a
plateau over a lucky spike, by the worst total among the setting and its grid neighbours (one step away
on one axis). Never fit on one clip: the defaults of `edge.vision.settings` come from this ranking.

    python scripts/tune_counts.py --model '{data}/models/yolox_nano.onnx' \
        --model '{data}/models/yolo11n_int8.onnx' [--grid min_score=0.2,0.3 ...] [--top 15]

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

from eval_counts import Clip, cached_detections, compare, discover_clips, replay, with_model

from edge.config import NodeConfig, load_config

# Axes: camera field or section.field -> values. min_score is the camera's threshold for all classes.
GRID: dict[str, list[Any]] = {
    "min_score": [0.2, 0.25, 0.3, 0.35],
    "tracker.new_track_margin": [0.0, 0.05, 0.1, 0.2],
    "tracker.min_hits": [1, 2, 3],
    "tracker.high_score": [0.0, 0.4],
    "objects.group_iou": [0.5, 0.7],
}


def apply(cfg: NodeConfig, setting: dict[str, Any]) -> NodeConfig:
    """The config with one setting applied to its first camera (validated like a YAML file)."""
    cam = cfg.cameras[0].model_dump()
    for key, value in setting.items():
        section, _, field = key.rpartition(".")
        (cam[section] if section else cam)[field] = value
    return cfg.model_copy(update={"cameras": [type(cfg.cameras[0]).model_validate(cam)]})


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


def sweep(models: Sequence[str], clips: list[Clip], grid: dict[str, list[Any]]) -> dict[str, Any]:
    keys = list(grid)
    shape = tuple(len(grid[k]) for k in keys)
    base = {c.name: load_config(c.config) for c in clips}
    truths = {c.name: json.loads(c.truth.read_text(encoding="utf-8")) for c in clips}
    cached = {(m, c.name): cached_detections(with_model(base[c.name], m)) for m in models for c in clips}
    results: dict[tuple[int, ...], dict[str, Any]] = {}
    for index in itertools.product(*(range(n) for n in shape)):
        setting = {k: grid[k][i] for k, i in zip(keys, index, strict=True)}
        per: dict[str, int] = {}
        for m in models:
            for c in clips:
                cfg = apply(with_model(base[c.name], m), setting)
                res = compare(replay(cfg, cached[(m, c.name)]), truths[c.name])
                per[f"{Path(m).stem}/{c.name}"] = res["wrong"] + 0 * res["doubled"]
        results[index] = {"setting": setting, "wrong": per}
    true_per = {
        f"{Path(m).stem}/{c.name}": sum(
            int(n) for d in ("in", "out") for n in truths[c.name]["totals"].get(d, {}).values()
        )
        for m in models
        for c in clips
    }
    total_true = sum(true_per.values())
    for r in results.values():
        r["error"] = round(sum(r["wrong"].values()) / total_true, 4)
        r["per_model"] = {
            Path(m).stem: round(
                sum(v for k, v in r["wrong"].items() if k.startswith(f"{Path(m).stem}/"))
                / sum(v for k, v in true_per.items() if k.startswith(f"{Path(m).stem}/")),
                4,
            )
            for m in models
        }
    for index, r in results.items():
        r["plateau"] = max([r["error"], *(results[j]["error"] for j in neighbours(index, shape))])
    ranked = sorted(results.values(), key=lambda r: (r["plateau"], r["error"]))
    return {"grid": grid, "true": true_per, "ranked": ranked}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--grid", action="append", default=[], help="axis=v1,v2 (JSON values); replaces an axis")
    p.add_argument("--clip", action="append", help="only these clips (default: every labelled clip)")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    clips = [c for c in discover_clips() if not args.clip or c.name in args.clip]
    t0 = time.perf_counter()
    out = sweep(args.model, clips, _parse_grid(args.grid))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))
    models = [Path(m).stem for m in args.model]
    print(
        f"\n{len(out['ranked'])} settings x {len(clips)} clips x {len(models)} models in {out['seconds']} s"
    )
    print(f"{'plateau':>8}{'error':>8}  " + "".join(f"{m[:14]:>15}" for m in models) + "  setting")
    for r in out["ranked"][: args.top]:
        cols = "".join(f"{100 * r['per_model'][m]:>14.1f}%" for m in models)
        print(f"{100 * r['plateau']:>7.1f}%{100 * r['error']:>7.1f}%  {cols}  {r['setting']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
