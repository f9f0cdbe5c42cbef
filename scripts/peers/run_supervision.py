#!/usr/bin/env python3
"""supervision as its docs show it: `ByteTrack` + `LineZone`, fed with detections of the same ONNX model.

Runs in the peers' virtualenv (`make peers-venv`), launched by scripts/compare_peers.py. supervision has
no detector of its own; its examples feed it Ultralytics results (`Detections.from_ultralytics`), which is
what `--detections ultralytics` does. A model Ultralytics cannot load (YOLOX's raw head) is fed from
Roadwatch's own detector instead (`--detections roadwatch`), so supervision's tracking and counting are
still measured on the same model. Detections down to score 0.1 are passed, as Ultralytics' `track()` does,
so ByteTrack's low-score second association has its input. The line counts the box centre (the truth's
anchor); everything else is supervision's default. Prints one JSON object in the truth's convention.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project root, for edge.vision.detector

import cpu_torchvision
from directions import supervision_swaps, to_truth

MIN_SCORE = 0.1


def _ultralytics_source(model: str, classes: list[int]) -> Callable[[Any], Any]:
    import supervision as sv
    from ultralytics import YOLO

    yolo = YOLO(model, task="detect")

    def detect(frame: Any) -> Any:
        result = yolo.predict(frame, conf=MIN_SCORE, classes=classes, verbose=False)[0]
        return sv.Detections.from_ultralytics(result)

    return detect


def _roadwatch_source(model: str, classes: list[int]) -> Callable[[Any], Any]:
    import numpy as np
    import supervision as sv

    from edge.config import ModelSettings
    from edge.vision.detector import Detector

    detector = Detector(ModelSettings(path=model))
    wanted = np.asarray(classes, dtype=np.int64)

    def detect(frame: Any) -> Any:
        d = detector.detect(frame, MIN_SCORE)
        keep = np.isin(d.class_ids, wanted)
        return sv.Detections(xyxy=d.xyxy[keep], confidence=d.scores[keep], class_id=d.class_ids[keep])

    return detect


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--clip", required=True)
    p.add_argument("--line", required=True, type=float, nargs=4, metavar=("X1", "Y1", "X2", "Y2"))
    p.add_argument("--classes", required=True, type=int, nargs="+", help="COCO class ids to track and count")
    p.add_argument("--detections", choices=("ultralytics", "roadwatch"), default="ultralytics")
    args = p.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")

    import cv2
    import supervision as sv

    cap = cv2.VideoCapture(args.clip)
    if not cap.isOpened():
        print(f"cannot open {args.clip}", file=sys.stderr)
        return 2
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    use_ultralytics = args.detections == "ultralytics"
    torchvision_ops = cpu_torchvision.install() if use_ultralytics else None  # held until the end
    source = _ultralytics_source if use_ultralytics else _roadwatch_source
    detect = source(args.model, args.classes)
    tracker = sv.ByteTrack(frame_rate=round(fps))
    x1, y1, x2, y2 = args.line
    zone = sv.LineZone(
        start=sv.Point(x1, y1), end=sv.Point(x2, y2), triggering_anchors=[sv.Position.CENTER]
    )
    frames, t0 = 0, time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        zone.trigger(tracker.update_with_detections(detect(frame)))
        frames += 1
    cap.release()
    del torchvision_ops
    seconds = time.perf_counter() - t0
    counts = to_truth(int(zone.in_count), int(zone.out_count), supervision_swaps((x1, y1, x2, y2)))
    raw = {"in": int(zone.in_count), "out": int(zone.out_count)}
    out = {**counts, "raw": raw, "detections": args.detections, "frames": frames, "seconds": round(seconds, 2)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
