#!/usr/bin/env python3
"""supervision as its docs show it: ByteTrack + `LineZone`, fed with detections of the same ONNX model.

supervision 0.27+ no longer ships a tracker: `sv.ByteTrack` moved to Roboflow's `trackers` package
(`ByteTrackTracker`), which supervision's LineZone docs point to; that is what runs here, with its defaults.

Runs in the peers' virtualenv (`make peers-venv`), launched by scripts/compare_peers.py. supervision has
no detector of its own; its examples feed it Ultralytics results (`Detections.from_ultralytics`), which is
what `--detections ultralytics` does (decoding the clip and running Ultralytics' predictor). With
`--detections roadwatch` it gets Roadwatch's own detector output on the same model, read from the
evaluation's detection cache (scripts/detcache.py, filled when Roadwatch counts the clip, with the eval
config's detection regions where it has them, `--cache-extra`): the very boxes Roadwatch tracks, so the
two trackers and line counters are compared on identical input. That is also the
only way for a model Ultralytics cannot load (YOLOX's raw head). Detections down to score 0.1 are passed,
as Ultralytics' `track()` does, so ByteTrack's low-score second association has its input. The line counts the box centre (the truth's
anchor); everything else is supervision's default. Prints one JSON object in the truth's convention.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/, for detcache

import cpu_torchvision
import resultcache
from directions import supervision_swaps, to_truth

MIN_SCORE = 0.1


def _roadwatch_frames(model: str, clip: str, classes: list[int], extra: str) -> Iterator[Any]:
    import numpy as np
    import supervision as sv
    from detcache import cache_path, load_or_detect

    if extra and not cache_path(Path(clip), Path(model), extra).is_file():
        raise SystemExit(f"no detection cache for {clip} with {extra}: count the clip with Roadwatch first")
    cached = load_or_detect(clip, model, extra=extra)
    wanted = np.asarray(classes, dtype=np.int64)
    for i in range(len(cached)):
        d = cached.frame(i, MIN_SCORE)
        keep = np.isin(d.class_ids, wanted)
        yield sv.Detections(xyxy=d.xyxy[keep], confidence=d.scores[keep], class_id=d.class_ids[keep])


def _ultralytics_frames(model: str, clip: str, classes: list[int], extra: str) -> Iterator[Any]:
    import cv2
    import supervision as sv

    torchvision_ops = cpu_torchvision.install()  # held while Ultralytics runs
    from ultralytics import YOLO

    yolo = YOLO(model, task="detect")
    cap = cv2.VideoCapture(clip)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {clip}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            result = yolo.predict(frame, conf=MIN_SCORE, classes=classes, verbose=False)[0]
            yield sv.Detections.from_ultralytics(result)
    finally:
        cap.release()
        del torchvision_ops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--clip", required=True)
    p.add_argument("--line", required=True, type=float, nargs=4, metavar=("X1", "Y1", "X2", "Y2"))
    p.add_argument("--classes", required=True, type=int, nargs="+", help="COCO class ids to track and count")
    p.add_argument("--fps", required=True, type=float, help="the clip's frame rate (ByteTrack's frame_rate)")
    p.add_argument("--detections", choices=("ultralytics", "roadwatch"), default="roadwatch")
    p.add_argument("--cache-extra", default="", help="the detection cache's key for detection regions")
    p.add_argument("--fresh", action="store_true", help="measure even when var/peers-cache/ has the result")
    args = p.parse_args(argv)
    key_args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--fresh"]
    kept = None if args.fresh else resultcache.load("supervision", key_args)
    if kept is not None:
        print(json.dumps({**kept, "cached": True}))
        return 0
    os.environ.setdefault("YOLO_OFFLINE", "1")

    import supervision as sv
    from trackers import ByteTrackTracker

    frames_of = _ultralytics_frames if args.detections == "ultralytics" else _roadwatch_frames
    tracker = ByteTrackTracker(frame_rate=args.fps)
    x1, y1, x2, y2 = args.line
    zone = sv.LineZone(
        start=sv.Point(x1, y1), end=sv.Point(x2, y2), triggering_anchors=[sv.Position.CENTER]
    )
    frames, t0 = 0, time.perf_counter()
    for detections in frames_of(args.model, args.clip, args.classes, args.cache_extra):
        zone.trigger(tracker.update(detections))
        frames += 1
    seconds = time.perf_counter() - t0
    counts = to_truth(int(zone.in_count), int(zone.out_count), supervision_swaps((x1, y1, x2, y2)))
    raw = {"in": int(zone.in_count), "out": int(zone.out_count)}
    out = {**counts, "raw": raw, "detections": args.detections, "frames": frames, "seconds": round(seconds, 2)}
    resultcache.store("supervision", key_args, out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
