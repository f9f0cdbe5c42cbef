#!/usr/bin/env python3
"""False alerts: every alert rule of the example configs on normal-flow clips, as alerts per hour of video.

Nothing unusual happens in the shared clips (no crash, no wrong-way driver, no vehicle broken down in a
lane), so every stopped_vehicle, wrong_way or suspected_collision alert they raise is a false alarm, and
crowding / speeding alerts show how often a technician would be paged on normal traffic. The detector
runs once per clip and model (cached, scripts/detcache.py); tracker and rules are the node's own.

    python scripts/eval_alerts.py [configs/videos/*.yaml] [--model PATH] [--motion]

Prints JSON and a table: per config, alerts (start or instant events) per kind and per hour of video.
Exit code 0 when no config raises a stopped_vehicle, wrong_way or suspected_collision alert, else 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detcache import cached_detections, replay
from eval_counts import with_model

from edge.capture.sourceurl import expand_path
from edge.config import NodeConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ("stopped_vehicle", "wrong_way", "suspected_collision", "crowding", "speeding")
MUST_BE_ZERO = ("stopped_vehicle", "wrong_way", "suspected_collision")


def alerts_of(cfg: NodeConfig, model: str | None = None, motion: bool = False) -> dict[str, Any]:
    """Alerts per kind and per hour of video for every camera of the config that reads a file (`motion`:
    with each camera's motion gate skipping detector runs, as on a node)."""
    out: dict[str, Any] = {}
    cfg = with_model(cfg, model)
    for cam in cfg.cameras:
        source = Path(expand_path(cam.source))
        if not source.is_file():
            continue
        one = cfg.model_copy(update={"cameras": [cam.model_copy(update={"loop": False})]})
        cached = cached_detections(one)
        events = replay(one, cached, video=source if motion else None)
        hours = max(float(cached.times[-1] - cached.times[0]), 1e-6) / 3600.0 if len(cached) else 1.0
        counts = Counter(e.kind for e in events if e.kind in ALERTS and e.phase in ("start", "instant"))
        rules = sorted({r.kind for r in cam.rules if r.kind in ALERTS})
        out[cam.id] = {
            "model": Path(cfg.model.path).name,
            "video_s": round(hours * 3600.0, 1),
            "rules": rules,
            "alerts": {k: counts.get(k, 0) for k in rules},
            "per_hour": {k: round(counts.get(k, 0) / hours, 1) for k in rules},
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="*", help="node configs (default: configs/videos/*.yaml)")
    p.add_argument("--model", help="override the configs' model")
    p.add_argument(
        "--motion",
        action="store_true",
        help="decode the clips: the motion gate skips detector runs as on a node",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    paths = [Path(c) for c in args.configs] or sorted((ROOT / "configs" / "videos").glob("*.yaml"))
    result = {p.name: alerts_of(load_config(p), args.model, args.motion) for p in paths}
    print(json.dumps(result, indent=2))
    print(f"\n{'config':<36}{'camera':<16}{'video s':>8}  alerts (per hour)")
    bad = 0
    for name, cams in result.items():
        for cam, r in cams.items():
            text = ", ".join(f"{k} {r['alerts'][k]} ({r['per_hour'][k]}/h)" for k in r["rules"]) or "-"
            print(f"{name:<36}{cam:<16}{r['video_s']:>8}  {text}")
            bad += sum(r["alerts"].get(k, 0) for k in MUST_BE_ZERO)
    return 0 if bad == 0 else 3


if __name__ == "__main__":
    raise SystemExit(main())
