#!/usr/bin/env python3
"""Ultralytics as a new user runs it: `ObjectCounter` on the counting line, frame by frame.

Runs in the peers' virtualenv (`make peers-venv`), launched by scripts/compare_peers.py. The documented
solution (ultralytics.solutions.ObjectCounter) calls `model.track(persist=True, tracker="bytetrack.yaml")`
on every frame and counts a track when its box centre's path crosses the region's two-point line. Every
setting is the library's default except the line, the classes and the tracker, which the comparison fixes.
Prints one JSON object: counts in the truth's direction convention (scripts/peers/directions.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu_torchvision
import resultcache
from directions import to_truth, ultralytics_swaps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="ONNX model exported by Ultralytics (names in its metadata)")
    p.add_argument("--clip", required=True)
    p.add_argument("--line", required=True, type=float, nargs=4, metavar=("X1", "Y1", "X2", "Y2"))
    p.add_argument("--classes", required=True, type=int, nargs="+", help="COCO class ids to track and count")
    p.add_argument("--fresh", action="store_true", help="measure even when var/peers-cache/ has the result")
    args = p.parse_args(argv)
    key_args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--fresh"]
    kept = None if args.fresh else resultcache.load("ultralytics", key_args)
    if kept is not None:
        print(json.dumps({**kept, "cached": True}))
        return 0
    os.environ.setdefault("YOLO_OFFLINE", "1")  # never reach for a hub or a font on the network

    import cv2

    torchvision_ops = cpu_torchvision.install()  # held until the end
    from ultralytics import solutions

    x1, y1, x2, y2 = args.line
    counter = solutions.ObjectCounter(
        model=args.model,
        region=[(x1, y1), (x2, y2)],
        classes=args.classes,
        tracker="bytetrack.yaml",
        show=False,
        verbose=False,
    )
    cap = cv2.VideoCapture(args.clip)
    if not cap.isOpened():
        print(f"cannot open {args.clip}", file=sys.stderr)
        return 2
    frames, t0 = 0, time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        counter(frame)
        frames += 1
    cap.release()
    del torchvision_ops
    seconds = time.perf_counter() - t0
    counts = to_truth(int(counter.in_count), int(counter.out_count), ultralytics_swaps((x1, y1, x2, y2)))
    raw = {"in": int(counter.in_count), "out": int(counter.out_count)}
    out = {**counts, "raw": raw, "frames": frames, "seconds": round(seconds, 2)}
    resultcache.store("ultralytics", key_args, out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
