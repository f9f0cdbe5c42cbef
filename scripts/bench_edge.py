#!/usr/bin/env python3
"""Edge throughput benchmark: decode-only, model-only and full-pipeline fps, as ratios from one run.

    python scripts/bench_edge.py --model '{data}/models/yolo11n_int8.onnx' \
        --video '{data}/videos/vtest.avi' --threads 1 --frames 300

Measures, on the same frames:
- decode: reading and decoding the clip only;
- model: detector only (letterbox preprocessing + inference + decoding/NMS) on frames held in memory,
  timed before and after the pipeline runs (the mean is used; the two show the load's drift);
- pipeline: decode (on its own thread, as in the node) + motion gate + detect + filter + track + rules,
  gating off, then gating on;
and prints JSON plus a table, with the pipeline/model ratio, the detector runs saved by gating, how many
tracks of the no-gating run the gating run keeps, the share of time spent in the rules, and peak RSS.
Ratios from one run are what count on a noisy machine; absolute fps vary with the load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.camera_config import CameraConfig
from edge.capture.sourceurl import expand_path
from edge.config import ModelSettings, NodeConfig, load_config
from edge.events import EventFactory
from edge.geometry import iou_matrix


def _frames(video: str, n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(expand_path(video))
    out: list[np.ndarray] = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def _decode_count(video: str, n: int) -> int:
    import cv2

    cap = cv2.VideoCapture(expand_path(video))
    count = 0
    while count < n and cap.read()[0]:
        count += 1
    cap.release()
    return count


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux); harmless where unsupported."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    """Peak RSS since the last reset (VmHWM), or since the start where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model_seconds(detector: Any, frames: list[np.ndarray]) -> float:
    """Seconds for the detector alone (letterbox, inference, decoding, NMS) on frames in memory."""
    t0 = time.perf_counter()
    for img in frames:
        detector.detect(img, 0.1)
    return time.perf_counter() - t0


def _decode_into(video: str, n: int, out: queue.Queue[np.ndarray | None]) -> None:
    """Decode up to `n` frames into `out`, then None (the end)."""
    import cv2

    cap = cv2.VideoCapture(expand_path(video))
    for _ in range(n):
        ok, img = cap.read()
        if not ok:
            break
        out.put(img)
    cap.release()
    out.put(None)


def _camera(args: argparse.Namespace) -> tuple[CameraConfig, str]:
    if args.config:
        cfg: NodeConfig = load_config(args.config)
        cam = cfg.camera(args.camera) if args.camera else cfg.cameras[0]
        return cam, cfg.timezone
    return CameraConfig(id="bench", source=args.video), "Asia/Ho_Chi_Minh"


def run_pipeline(
    cam: CameraConfig, tz: str, detector: Any, video: str, n: int, gating: bool, fps: float
) -> dict[str, Any]:
    """Decode + analyse `n` frames; returns timings and per-frame track boxes for the comparison.

    Frames are decoded on their own thread into a small queue, as the node's camera readers do, so
    decoding overlaps inference instead of adding to it (OpenCV and onnxruntime release the GIL).
    """
    from edge.analyzer import CameraAnalyzer
    from edge.records import Frame

    analyzer = CameraAnalyzer(
        cam, detector, EventFactory("bench", cam.id, tz), tz, motion_enabled=gating, health_enabled=True
    )
    frames: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=4)
    boxes: list[dict[int, np.ndarray]] = []
    t0 = time.perf_counter()
    reader = threading.Thread(target=_decode_into, args=(video, n, frames), daemon=True)
    reader.start()
    for i in range(n):
        img = frames.get()
        if img is None:
            break
        res = analyzer.process(Frame(cam.id, i, i / fps, 1.7e9 + i / fps, img))
        boxes.append(
            {int(t): b for t, b in zip(res.tracks.track_ids, res.tracks.xyxy, strict=True)}
            if res.detected
            else {}
        )
    elapsed = time.perf_counter() - t0
    reader.join()
    times = analyzer.times
    return {
        "frames": times.frames,
        "seconds": elapsed,
        "fps": times.frames / elapsed,
        "detector_runs": times.detector_runs,
        "rules_s": times.rules_s,
        "track_s": times.track_s,
        "motion_s": times.motion_s,
        "health_s": times.health_s,
        "detect_s": times.detect_s,
        "events": times.events,
        "boxes": boxes,
    }


def tracks_kept(
    ref: list[dict[int, np.ndarray]], other: list[dict[int, np.ndarray]], min_len: int = 10
) -> tuple[int, int]:
    """How many tracks (>= min_len detected frames) of `ref` have a counterpart in `other` (IoU >= 0.3
    at a frame where `other` ran the detector, near the middle of the reference track)."""
    spans: dict[int, list[int]] = {}
    for i, frame in enumerate(ref):
        for tid in frame:
            spans.setdefault(tid, []).append(i)
    total = kept = 0
    for tid, idx in spans.items():
        if len(idx) < min_len:
            continue
        total += 1
        for i in sorted(idx, key=lambda j: abs(j - idx[len(idx) // 2])):
            if other[i]:
                theirs = np.stack(list(other[i].values()))
                if iou_matrix(ref[i][tid][None, :], theirs).max() >= 0.3:
                    kept += 1
                break
    return kept, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="{data}/models/yolo11n_int8.onnx")
    p.add_argument("--video", default="{data}/videos/vtest.avi")
    p.add_argument("--config", default=None, help="node config whose camera (lines, zones, rules) is used")
    p.add_argument("--camera", default=None)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--fps", type=float, default=10.0, help="frame rate used for the frame clock")
    args = p.parse_args(argv)

    from edge.vision.detector import Detector

    cam, tz = _camera(args)
    video = args.video if not args.config else cam.source
    detector = Detector(ModelSettings(path=args.model, intra_op_threads=args.threads))

    # Decode only, streaming (nothing held), then both pipeline runs; peak RSS is read before the
    # model-only phase, which holds its frames in memory to time the model alone.
    t0 = time.perf_counter()
    n = _decode_count(video, args.frames)
    decode_s = time.perf_counter() - t0

    frames = _frames(video, n)
    model_before_s = _model_seconds(detector, frames)
    del frames
    _reset_peak_rss()  # the pipeline's peak, not that of the frames held for the model-only timing
    nogate = run_pipeline(cam, tz, detector, video, n, gating=False, fps=args.fps)
    gate = run_pipeline(cam, tz, detector, video, n, gating=True, fps=args.fps)
    kept, total = tracks_kept(nogate["boxes"], gate["boxes"])
    del nogate["boxes"], gate["boxes"]
    rss_mb = _peak_rss_mb()

    frames = _frames(video, n)
    model_after_s = _model_seconds(detector, frames)
    del frames

    # The model is timed before and after the pipeline runs: on a shared machine the load drifts, and
    # the mean of both brackets the pipeline runs; their difference is the run's noise.
    model_fps = 2 * n / (model_before_s + model_after_s)
    result = {
        "model": args.model,
        "video": video,
        "config": args.config,
        "threads": args.threads,
        "frames": n,
        "decode_fps": round(n / decode_s, 1),
        "model_fps": round(model_fps, 2),
        "model_fps_before_after": [round(n / model_before_s, 2), round(n / model_after_s, 2)],
        "pipeline_fps_no_gating": round(nogate["fps"], 2),
        "pipeline_fps_gating": round(gate["fps"], 2),
        "pipeline_to_model_ratio": round(nogate["fps"] / model_fps, 3),
        "pipeline_to_model_ratio_gating": round(gate["fps"] / model_fps, 3),
        "detector_runs_no_gating": nogate["detector_runs"],
        "detector_runs_gating": gate["detector_runs"],
        "tracks_no_gating": total,
        "tracks_kept_with_gating": kept,
        "rules_share_of_pipeline": round(nogate["rules_s"] / nogate["seconds"], 4),
        "rules_ms_per_frame": round(1000 * nogate["rules_s"] / max(nogate["frames"], 1), 3),
        "tracker_share_of_pipeline": round(nogate["track_s"] / nogate["seconds"], 4),
        "motion_ms_per_frame": round(1000 * gate["motion_s"] / max(gate["frames"], 1), 3),
        "health_ms_per_frame": round(1000 * nogate["health_s"] / max(nogate["frames"], 1), 3),
        "events_no_gating": nogate["events"],
        "peak_rss_mb_pipeline": round(rss_mb, 1),
    }
    print(json.dumps(result, indent=2))
    print()
    print(f"{'measure':<34}{'value':>12}")
    for key, value in result.items():
        if key in ("model", "video", "config"):
            continue
        print(f"{key:<34}{value!s:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
