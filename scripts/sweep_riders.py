#!/usr/bin/env python3
"""Sweep of the lone-rider pace threshold over every labelled clip and model (`objects.rider_pace`).

A `person` track faster than `min_heights_per_s` (its own box heights per second, `edge.vision.pace`)
is reported as a two-wheeler. The threshold must never turn pedestrians into vehicles, on the line or
anywhere else in the picture, so each setting reports per clip and model: the counting error, the two
class confusions of the counted crossings (`crossmatch.py`: riders counted as pedestrians, pedestrians
counted as vehicles) and how many person tracks it turned into two-wheelers anywhere in the clip. Pick
the default from the range where nothing changes on the pedestrian clips, not from one clip.

    python scripts/sweep_riders.py --model '{data}/models/yolox_nano.onnx' \
        --model '{data}/models/yolo11n_int8.onnx' --values 0.5,1,1.5,2,3,4

`off` (the stage disabled) is always measured first: the "before". Prints JSON and a table; the JSON
also has `track_ms`, the analyzer's tracking stage (tracker, then this stage) per analysed frame.
"""

from __future__ import annotations

import argparse
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


def with_pace(cfg: NodeConfig, value: float | None) -> NodeConfig:
    """The config with the first camera's rider pace threshold set (None: the stage off)."""
    cam = cfg.cameras[0].model_dump()
    pace = cam["objects"]["rider_pace"]
    if value is None:
        pace["enabled"] = False
    else:
        pace.update(enabled=True, min_heights_per_s=value)
        pace["motorcycle_heights_per_s"] = max(value, pace["motorcycle_heights_per_s"])
    return cfg.model_copy(update={"cameras": [type(cfg.cameras[0]).model_validate(cam)]})


def measure(models: Sequence[str], clips: list[Clip], values: Sequence[float | None]) -> list[dict[str, Any]]:
    """One row per (setting, model, clip)."""
    rows = []
    for model in models:
        for clip in clips:
            base = with_model(load_config(clip.config), model)
            cached = cached_detections(base)
            truth = json.loads(clip.truth.read_text(encoding="utf-8"))
            for value in values:
                kept: list[Any] = []
                res = compare(replay(with_pace(base, value), cached, kept), truth)
                pace = kept[0].pace
                rows.append(
                    {"threshold": value, "model": Path(model).stem, "clip": clip.name, "wrong": res["wrong"],
                     "true": res["true"], "riders_as_pedestrians": res["riders_as_pedestrians"],
                     "pedestrians_as_vehicles": res["pedestrians_as_vehicles"],
                     "persons_made_riders": pace.riders if pace is not None else 0,
                     "track_ms": round(1000 * kept[0].times.track_s / max(kept[0].times.detector_runs, 1), 3)}
                )  # fmt: skip
    return rows


def table(rows: list[dict[str, Any]]) -> None:
    """Per setting and model: totals, then the clips where person tracks were turned into riders."""
    print(
        f"\n{'threshold':>10}{'model':>14}{'wrong':>7}{'true':>6}{'rider>ped':>11}{'ped>veh':>9}  persons made riders"
    )
    keys = dict.fromkeys((r["threshold"], r["model"]) for r in rows)
    for thr, model in keys:
        sel = [r for r in rows if r["threshold"] == thr and r["model"] == model]
        made = ", ".join(f"{r['clip']} {r['persons_made_riders']}" for r in sel if r["persons_made_riders"])
        print(
            f"{'off' if thr is None else thr:>10}{model[:13]:>14}{sum(r['wrong'] for r in sel):>7}"
            f"{sum(r['true'] for r in sel):>6}{sum(r['riders_as_pedestrians'] for r in sel):>11}"
            f"{sum(r['pedestrians_as_vehicles'] for r in sel):>9}  {made or '-'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="ONNX model (repeatable)")
    p.add_argument("--values", default="0.5,1,1.5,2,3,4", help="thresholds, heights per second")
    p.add_argument("--clip", action="append", help="only these clips (default: every labelled clip)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    values: list[float | None] = [None, *(float(v) for v in args.values.split(","))]
    clips = [c for c in discover_clips() if not args.clip or c.name in args.clip]
    t0 = time.perf_counter()
    rows = measure(args.model, clips, values)
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "rows": rows}))
    table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
