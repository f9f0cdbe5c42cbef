#!/usr/bin/env python3
"""Counting accuracy: run a node config on its video and compare line crossings with a ground truth.

    python scripts/eval_counts.py --config configs/eval/cdnet_highway.yaml \
        --truth '{data}/eval/cdnet_highway.truth.json'

Prints JSON and a table: per line, direction and class, counted vs truth with absolute and relative
error, and the total per direction. The ground-truth format is documented in docs/evaluation.md.
Exit code 0 when every direction total is within --tolerance (10 % by default), else 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.capture.sourceurl import expand_path
from edge.config import load_config
from edge.records import Event


class _Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def put(self, event: Event, jpeg: bytes | None) -> None:
        self.events.append(event)


def _rel(err: int, truth: int) -> float | None:
    return None if truth == 0 else round(abs(err) / truth, 4)


def compare(events: list[Event], truth: dict[str, Any]) -> dict[str, Any]:
    """Counted crossings vs truth, per direction and class and per direction in total."""
    counted: Counter[tuple[str, str]] = Counter()
    for ev in events:
        if ev.kind == "line_crossing":
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
            {
                "direction": key[0],
                "class": key[1],
                "counted": c,
                "truth": t,
                "abs_error": c - t,
                "rel_error": _rel(c - t, t),
            }
        )
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
    return {"per_class": rows, "totals": totals}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--truth", required=True, help="ground-truth JSON; {data} is the data directory")
    p.add_argument("--model", default=None, help="override the config's model path")
    p.add_argument("--no-motion", action="store_true", help="run the detector on every due frame")
    p.add_argument("--tolerance", type=float, default=0.10, help="allowed relative error per direction total")
    p.add_argument("--json-only", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from edge.pipeline import Node
    from edge.vision.detector import Detector

    cfg = load_config(args.config)
    if args.model:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": args.model})})
    truth = json.loads(Path(expand_path(args.truth)).read_text(encoding="utf-8"))
    sink = _Collect()
    detector = Detector(cfg.model)
    node = Node(cfg, detector, [sink])
    if args.no_motion:
        for an in node.analyzers.values():
            an.motion = type(an.motion)(an.camera.motion.model_copy(update={"enabled": False}))
    t0 = time.perf_counter()
    node.run()
    elapsed = time.perf_counter() - t0
    result = compare(sink.events, truth)
    frames = sum(a.times.frames for a in node.analyzers.values())
    runs = sum(a.times.detector_runs for a in node.analyzers.values())
    ok = all(
        t["rel_error"] is None or t["rel_error"] <= args.tolerance for t in result["totals"] if t["truth"] > 0
    )
    out = {
        "config": args.config,
        "truth": args.truth,
        "model": cfg.model.path,
        "frames": frames,
        "detector_runs": runs,
        "seconds": round(elapsed, 2),
        **result,
        "within_tolerance": ok,
        "tolerance": args.tolerance,
    }
    print(json.dumps(out, indent=2))
    if not args.json_only:
        print(f"\n{Path(args.config).name}: {frames} frames, detector on {runs}, {elapsed:.1f} s")
        print(f"{'direction':<10}{'class':<12}{'counted':>8}{'truth':>7}{'abs err':>9}{'rel err':>9}")
        for r in result["per_class"]:
            rel = "-" if r["rel_error"] is None else f"{100 * r['rel_error']:.1f}%"
            print(
                f"{r['direction']:<10}{r['class']:<12}{r['counted']:>8}{r['truth']:>7}{r['abs_error']:>9}{rel:>9}"
            )
        for r in result["totals"]:
            rel = "-" if r["rel_error"] is None else f"{100 * r['rel_error']:.1f}%"
            print(
                f"{r['direction']:<10}{'TOTAL':<12}{r['counted']:>8}{r['truth']:>7}{r['abs_error']:>9}{rel:>9}"
            )
        print("within tolerance" if ok else "OUTSIDE tolerance")
    return 0 if ok else 3


if __name__ == "__main__":
    raise SystemExit(main())
