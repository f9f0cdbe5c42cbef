#!/usr/bin/env python3
"""Cost of detection regions: whole-frame detection against `detect_regions`, on the same frames, one run.

    python scripts/bench_regions.py --config configs/eval/jakarta_sudirman.yaml \
        --model '{data}/models/yolo11n_int8.onnx' --frames 60

Takes the config's first camera and its `detect_regions` (or `--regions` as JSON), decodes `--frames`
frames, then times the detector on each frame whole and through the regions, alternating, so both see
the same load. Prints JSON and a table: milliseconds per frame each way and their ratio, and how many
boxes of the counted classes each finds inside the regions at the camera's `min_score` (the gain in reach).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.capture.files import iter_file_frames
from edge.config import load_config
from edge.vision.detector import Detector
from edge.vision.regions import RegionDetector, plan_regions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--model")
    p.add_argument("--regions", help="JSON list of [x1, y1, x2, y2] replacing the camera's detect_regions")
    p.add_argument("--min-scale", type=float, help="replaces the camera's detect_min_scale")
    p.add_argument("--frames", type=int, default=60)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.model:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": args.model})})
    cam = cfg.cameras[0]
    if args.min_scale is not None:
        cam = cam.model_copy(update={"detect_min_scale": args.min_scale})
    regions = json.loads(args.regions) if args.regions else cam.detect_regions
    frames = [f.image for f, _ in zip(iter_file_frames(cam), range(args.frames), strict=False)]
    h, w = frames[0].shape[:2]
    detector = Detector(cfg.model)
    rects = plan_regions(regions, cam.scale(w, h), (w, h), detector.input_size, cam.detect_min_scale)
    tiled = RegionDetector(detector, rects, (w, h), 0.5)
    wanted = np.isin(np.arange(len(detector.names)), [detector.names.index(c) for c in cam.classes])
    times = {"whole": 0.0, "regions": 0.0}
    boxes = {"whole": 0, "regions": 0}
    for image in frames:
        for name, det in (("whole", detector), ("regions", tiled)):
            t0 = time.perf_counter()
            dets = det.detect(image, cam.min_score)
            times[name] += time.perf_counter() - t0
            cx = (dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2
            cy = (dets.xyxy[:, 1] + dets.xyxy[:, 3]) / 2
            inside = np.zeros(len(dets), bool)
            for x1, y1, x2, y2 in rects:
                inside |= (cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)
            boxes[name] += int(np.count_nonzero(wanted[dets.class_ids] & inside))
    n = len(frames)
    out = {
        "config": args.config,
        "model": Path(cfg.model.path).name,
        "frames": n,
        "regions": [list(r) for r in rects],
        "ms_whole": round(1000 * times["whole"] / n, 2),
        "ms_regions": round(1000 * times["regions"] / n, 2),
        "cost_ratio": round(times["regions"] / times["whole"], 3),
        "boxes_per_frame_whole": round(boxes["whole"] / n, 2),
        "boxes_per_frame_regions": round(boxes["regions"] / n, 2),
    }
    print(json.dumps(out, indent=2))
    print(f"\n{'':<10}{'ms/frame':>10}{'boxes/frame':>13}")
    print(f"{'whole':<10}{out['ms_whole']:>10}{out['boxes_per_frame_whole']:>13}")
    print(f"{'regions':<10}{out['ms_regions']:>10}{out['boxes_per_frame_regions']:>13}")
    print(f"cost ratio regions / whole: {out['cost_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
