#!/usr/bin/env python3
"""Many cameras on one node: CPU, frame age, drops and RSS per camera count, as one run's ratios.

    python scripts/bench_cameras.py --cameras 1 --seconds 60 --quiet-scene --peer
    python scripts/bench_cameras.py --search --seconds 20 --threads 1 --workers 2

Each camera count runs in a child process (clean CPU and RSS figures): a real `Node` with N cameras,
each a looping clip paced in real time (a file camera behaves as a live one), for `--seconds` after a
warm-up. Reported per run: analysed fps per camera, frame age p50/p99 (arrival to end of analysis),
policy drops, CPU-seconds per minute (and per camera-video-minute), RSS and RSS growth per added camera.
`--search` finds the largest N that holds the configured detect fps on every camera with frame age
p99 below 2 detect periods, next to the bound model-only inferences/s / detect fps.
`--quiet-scene` runs one camera on a still picture (the motion gate idles). `--peer` runs Ultralytics
`model.track()` on the same clip and model with `vid_stride` matching the detect fps, from the peer
virtualenv (`.venv-peers`, built by `make peers-venv`; never imported here): CPU-seconds per video-minute
side by side. Prints JSON, then a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.camera_config import CameraConfig  # noqa: E402
from edge.capture.sourceurl import expand_path  # noqa: E402
from edge.config import ModelSettings  # noqa: E402
from edge.records import ImageArray  # noqa: E402

PEER_CODE = """
import json, os, resource, sys
os.environ.setdefault("YOLO_OFFLINE", "1")
clip, model, stride, imgsz, peers_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, peers_dir)
import cpu_torchvision  # PyPI's torchvision beside CPU torch (scripts/peers/cpu_torchvision.py)
_ops = cpu_torchvision.install()
from ultralytics import YOLO
m = YOLO(model, task="detect")
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0 = cpu()
n = sum(1 for _ in m.track(source=clip, vid_stride=stride, stream=True, verbose=False, imgsz=imgsz))
print(json.dumps({"cpu_s": cpu() - c0, "results": n}))
"""


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """In the child: run a node with `args.n` cameras and measure it."""
    from edge.config import NodeConfig
    from edge.pipeline import Node
    from edge.vision.detector import Detector

    model = ModelSettings(
        path=args.model,
        intra_op_threads=args.threads,
        workers=args.workers,
        allow_spinning=args.spinning,
        int8_ops=args.int8_ops,
    )
    cams = [
        CameraConfig(
            id=f"c{i}",
            source=args.clip,
            loop=True,
            realtime=True,
            detect_fps=args.detect_fps,
            decode_threads=args.decode_threads,
        )
        for i in range(args.n)
    ]
    cfg = NodeConfig(node_id="bench", model=model, cameras=cams, stats_log_interval_s=3600)
    detector = Detector(model)
    node = Node(cfg, detector, sinks=[])
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    time.sleep(args.warmup)
    an0 = {c: a.times.frames for c, a in node.analyzers.items()}
    det0 = sum(a.times.detector_runs for a in node.analyzers.values())
    drop0 = {c: node.camera_stats()[c]["dropped_frames"] for c in an0}
    for ages in node.ages.values():
        ages.clear()
    c0, t0 = _cpu_s(), time.monotonic()
    time.sleep(args.seconds)
    cpu, wall = _cpu_s() - c0, time.monotonic() - t0
    stats = node.camera_stats()
    fps = {c: (a.times.frames - an0[c]) / wall for c, a in node.analyzers.items()}
    ages_all = [x for ages in node.ages.values() for x in ages]
    runs = sum(a.times.detector_runs for a in node.analyzers.values()) - det0
    node.stop()
    runner.join(5)
    return {
        "cameras": args.n,
        "seconds": round(wall, 1),
        "fps_min": round(min(fps.values()), 2),
        "fps_mean": round(sum(fps.values()) / len(fps), 2),
        "fps_per_camera": {c: round(v, 2) for c, v in fps.items()},
        "age_p50_ms": round(1000 * _pct(ages_all, 50), 1),
        "age_p99_ms": round(1000 * _pct(ages_all, 99), 1),
        "dropped": sum(stats[c]["dropped_frames"] - drop0[c] for c in fps),
        "detector_runs_per_s": round(runs / wall, 1),
        "cpu_s_per_min": round(60 * cpu / wall, 2),
        "cpu_s_per_camera_video_min": round(60 * cpu / wall / args.n, 2),
        "rss_mb": round(_rss_mb(), 1),
    }


def child(
    args: argparse.Namespace, n: int, clip: str, spinning: bool = False, int8_ops: str | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--child", str(n), "--clip", clip, "--model", args.model,
        "--threads", str(args.threads), "--workers", str(args.workers), "--seconds", str(args.seconds),
        "--warmup", str(args.warmup), "--detect-fps", str(args.detect_fps), "--int8-ops", int8_ops or args.int8_ops,
        "--decode-threads", str(args.decode_threads),
    ]  # fmt: skip
    if spinning:
        cmd.append("--spinning")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=args.seconds * 4 + 120)
    if out.returncode != 0:
        raise SystemExit(f"child with {n} camera(s) failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def model_bound(args: argparse.Namespace, clip: str, frames: int = 60) -> float:
    """Model-only inferences/s (preprocess + run + decode) on frames in memory: the node's bound."""
    import cv2

    from edge.vision.detector import Detector

    det = Detector(
        ModelSettings(
            path=args.model, intra_op_threads=args.threads, allow_spinning=True, int8_ops=args.int8_ops
        )
    )
    cap = cv2.VideoCapture(clip)
    images: list[ImageArray] = []
    while len(images) < frames:
        ok, img = cap.read()
        if not ok:
            break
        images.append(np.asarray(img, np.uint8))
    cap.release()
    for img in images[:5]:
        det.detect(img, 0.1)
    t0 = time.perf_counter()
    for img in images:
        det.detect(img, 0.1)
    return len(images) / (time.perf_counter() - t0)


def paced_ab(
    args: argparse.Namespace,
    clip: str,
    variants: dict[str, dict[str, Any]],
    rounds: int = 6,
    per_round: int = 10,
) -> dict[str, float]:
    """CPU milliseconds per detection at the detect-fps pace for each variant of the model settings,
    interleaved A/B/A/B in one process so that load from elsewhere falls on all alike (a noisy machine
    moves them together)."""
    import cv2

    from edge.vision.detector import Detector

    cap = cv2.VideoCapture(clip)
    _ok, img = cap.read()
    cap.release()
    image = np.asarray(img, np.uint8)
    dets = {name: Detector(ModelSettings(path=args.model, **opts)) for name, opts in variants.items()}
    cpu = dict.fromkeys(dets, 0.0)
    period = 1.0 / args.detect_fps
    for _ in range(rounds):
        for name, det in dets.items():
            c0 = _cpu_s()
            for _ in range(per_round):
                t0 = time.monotonic()
                det.detect(image, 0.1)
                time.sleep(max(period - (time.monotonic() - t0), 0.0))
            cpu[name] += _cpu_s() - c0
    return {name: round(1000 * c / (rounds * per_round), 1) for name, c in cpu.items()}


def spin_ab(args: argparse.Namespace, clip: str) -> dict[str, Any]:
    """Spinning on vs off (paced_ab)."""
    ms = paced_ab(
        args,
        clip,
        {
            "spinning": {"intra_op_threads": args.threads, "allow_spinning": True},
            "no_spinning": {"intra_op_threads": args.threads, "allow_spinning": False},
        },
    )
    on, off = ms["spinning"], ms["no_spinning"]
    return {
        "cpu_ms_per_detection_spinning": on,
        "cpu_ms_per_detection_no_spinning": off,
        "no_spinning_to_spinning": round(off / on, 3),
    }


def threads_ab(args: argparse.Namespace, clip: str) -> dict[str, Any]:
    """One onnxruntime thread vs two, spinning off, at the detect-fps pace (paced_ab): which costs less
    CPU per detection for one camera."""
    ms = paced_ab(args, clip, {"1": {"intra_op_threads": 1}, "2": {"intra_op_threads": 2}})
    return {
        "cpu_ms_per_detection_1_thread": ms["1"],
        "cpu_ms_per_detection_2_threads": ms["2"],
        "one_to_two": round(ms["1"] / ms["2"], 3),
    }


def int8_ab(args: argparse.Namespace, clip: str) -> dict[str, Any]:
    """The quantised model's convolutions as stored (int8) vs rewritten to float at load, at the
    detect-fps pace (paced_ab): CPU per detection of one camera."""
    variants = {ops: {"intra_op_threads": args.threads, "int8_ops": ops} for ops in ("int8", "float")}
    ms = paced_ab(args, clip, variants)
    return {
        "cpu_ms_per_detection_int8": ms["int8"],
        "cpu_ms_per_detection_float": ms["float"],
        "float_to_int8": round(ms["float"] / ms["int8"], 3),
    }


def workers_ab(args: argparse.Namespace, clip: str, rounds: int = 4, per_round: int = 20) -> dict[str, Any]:
    """Inferences/s back to back: one worker on a 2-thread session vs two workers on a 1-thread session
    (the `workers: 2, intra_op_threads: 1` setting), interleaved A/B in one process."""
    import cv2

    from edge.vision.detector import Detector

    cap = cv2.VideoCapture(clip)
    _ok, img = cap.read()
    cap.release()
    image = np.asarray(img, np.uint8)
    one = Detector(ModelSettings(path=args.model, intra_op_threads=2))
    two = Detector(ModelSettings(path=args.model, intra_op_threads=1))
    seconds = {1: 0.0, 2: 0.0}
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            one.detect(image, 0.1)
        seconds[1] += time.perf_counter() - t0
        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=lambda: [two.detect(image, 0.1) for _ in range(per_round // 2)])
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds[2] += time.perf_counter() - t0
    n = rounds * per_round
    return {
        "inferences_per_s_1_worker_2_threads": round(n / seconds[1], 1),
        "inferences_per_s_2_workers_1_thread": round(n / seconds[2], 1),
        "two_workers_to_one": round(seconds[1] / seconds[2], 3),
    }


def holds(r: dict[str, Any], detect_fps: float) -> bool:
    return bool(r["fps_min"] >= 0.95 * detect_fps and r["age_p99_ms"] < 2000.0 / detect_fps)


def still_clip(clip: str, tmp: Path) -> str:
    """The clip's first frame repeated for 10 s at its rate: a scene where nothing moves.

    Written inter-coded (MPEG-4 part 2, `mp4v`), as a camera's H.264 stream is: its frames after the
    first are "nothing changed" and cost 0.24 CPU-ms each to decode here. Motion JPEG (the earlier
    choice) makes every frame a full picture, 0.79 CPU-ms each, a cost no H.264 camera has in a still
    scene (OpenCV's pip wheels cannot write H.264 itself). Falls back to MJPG where `mp4v` is missing.
    """
    import cv2

    cap = cv2.VideoCapture(clip)
    ok, img = cap.read()
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    cap.release()
    if not ok:
        raise SystemExit(f"{clip}: no frame")
    size = (img.shape[1], img.shape[0])
    for fourcc, name in (("mp4v", "still.mp4"), ("MJPG", "still.avi")):
        path = tmp / name
        out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
        if not out.isOpened():
            continue
        for _ in range(int(10 * fps)):
            out.write(img)
        out.release()
        return str(path)
    raise SystemExit("no video writer for the still clip (mp4v or MJPG)")


def peer(args: argparse.Namespace, clip: str) -> dict[str, Any] | str:
    """Ultralytics model.track() CPU-seconds per video-minute, from the peer virtualenv; or why not."""
    import cv2

    python = Path(args.peer_python)
    if not python.is_file():
        return f"n/a: no {python} (build it with `make peers-venv`)"
    cap = cv2.VideoCapture(clip)
    fps, frames = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    cap.release()
    stride = max(1, round(fps / args.detect_fps))
    import onnxruntime as ort

    meta = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    peers_dir = str(ROOT / "scripts" / "peers")
    cmd = [str(python), "-c", PEER_CODE, clip, args.model, str(stride), str(meta[-1]), peers_dir]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900, env=env)
    if out.returncode != 0:
        return f"n/a: peer run failed: {out.stderr.strip().splitlines()[-1:]}"
    got = json.loads(out.stdout.strip().splitlines()[-1])
    video_min = frames / fps / 60.0
    return {"vid_stride": stride, "cpu_s_per_video_min": round(got["cpu_s"] / video_min, 2), **got}


def search(args: argparse.Namespace, clip: str, bound_n: float) -> tuple[int, list[dict[str, Any]]]:
    """Largest N holding the detect fps: up from 0.8 x bound while it holds, then down if needed."""
    runs: dict[int, dict[str, Any]] = {}

    def run(n: int) -> bool:
        if n not in runs:
            runs[n] = child(args, n, clip)
            print(f"# {n} cameras: {json.dumps(runs[n])}", file=sys.stderr)
        return holds(runs[n], args.detect_fps)

    n = max(1, math.floor(0.8 * bound_n))
    if run(n):
        while n < 4 * bound_n and run(n + max(1, n // 10)):
            n += max(1, n // 10)
    else:
        while n > 1 and not run(n - max(1, n // 10)):
            n -= max(1, n // 10)
        n = n - max(1, n // 10) if n > 1 else 0
    return n, [runs[k] for k in sorted(runs)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="{data}/models/yolo11n_int8.onnx")
    p.add_argument("--clip", default="{data}/videos/intersection_cctv.mp4")
    p.add_argument("--detect-fps", type=float, default=5.0)
    defaults = ModelSettings.model_fields
    p.add_argument(
        "--threads",
        type=int,
        default=defaults["intra_op_threads"].default,
        help="onnxruntime intra-op threads (0: its choice; default: the node's default)",
    )
    p.add_argument(
        "--workers", type=int, default=defaults["workers"].default, help="inference workers of the node"
    )
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--cameras", default="1", help="comma-separated camera counts to run")
    p.add_argument("--search", action="store_true", help="find the largest N that holds the detect fps")
    p.add_argument("--spinning", action="store_true", help="also run 1 camera with spinning on")
    p.add_argument("--workers-ab", action="store_true", help="1 worker x 2 threads vs 2 workers x 1 thread")
    p.add_argument("--threads-ab", action="store_true", help="CPU per paced detection, 1 vs 2 threads")
    p.add_argument("--int8-ops", default=defaults["int8_ops"].default, help="model.int8_ops of the node")
    p.add_argument(
        "--decode-threads",
        type=int,
        default=CameraConfig.model_fields["decode_threads"].default,
        help="cameras' decode_threads (0: FFmpeg's choice; default: the camera's default)",
    )
    p.add_argument("--int8-ab", action="store_true", help="CPU per paced detection, int8 vs float convs")
    p.add_argument("--quiet-scene", action="store_true", help="also run 1 camera on a still picture")
    p.add_argument("--peer", action="store_true", help="Ultralytics model.track() beside (peer venv)")
    p.add_argument("--peer-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    p.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.model = expand_path(args.model)
    clip = expand_path(args.clip)
    if args.child:
        args.n = args.child
        print(json.dumps(run_child(args)))
        return 0

    result: dict[str, Any] = {"model": Path(args.model).name, "clip": Path(clip).name, **vars(args)}
    for key in ("child", "peer_python", "model", "clip", "cameras", "search", "workers_ab", "threads_ab",
                "int8_ab"):  # fmt: skip
        result.pop(key, None)
    result["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    bound = model_bound(args, clip)
    result["model_only_inferences_per_s"] = round(bound, 1)
    result["bound_cameras"] = round(bound / args.detect_fps, 1)
    runs = [child(args, int(n), clip) for n in args.cameras.split(",") if n and not args.search]
    if args.search:
        best, runs = search(args, clip, bound / args.detect_fps)
        result["cameras_held"] = best
        result["cameras_held_to_bound"] = round(best / (bound / args.detect_fps), 3)
    result["runs"] = runs
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        result["rss_mb_per_added_camera"] = round(
            (b["rss_mb"] - a["rss_mb"]) / (b["cameras"] - a["cameras"]), 2
        )
    one = next((r for r in runs if r["cameras"] == 1), None)
    if args.spinning:
        result["one_camera_spinning"] = child(args, 1, clip, spinning=True)
        result["spin_ab"] = spin_ab(args, clip)
    if args.workers_ab:
        result["workers_ab"] = workers_ab(args, clip)
    if args.threads_ab:
        result["threads_ab"] = threads_ab(args, clip)
    if args.int8_ab:  # the node with the other setting too, beside the same peer run
        other = "float" if args.int8_ops == "int8" else "int8"
        result[f"one_camera_{other}"] = child(args, 1, clip, int8_ops=other)
        result["int8_ab"] = int8_ab(args, clip)
    if args.quiet_scene:
        with tempfile.TemporaryDirectory() as tmp:
            result["one_camera_quiet"] = child(args, 1, still_clip(clip, Path(tmp)))
    if args.peer:
        result["peer_ultralytics"] = peer(args, clip)
        theirs = result["peer_ultralytics"]
        if isinstance(theirs, dict) and one is not None:
            result["cpu_to_peer"] = round(
                one["cpu_s_per_camera_video_min"] / theirs["cpu_s_per_video_min"], 3
            )
            for other in ("int8", "float"):
                if f"one_camera_{other}" in result:
                    mine = result[f"one_camera_{other}"]["cpu_s_per_camera_video_min"]
                    result[f"{other}_cpu_to_peer"] = round(mine / theirs["cpu_s_per_video_min"], 3)
            if "one_camera_quiet" in result:
                quiet = result["one_camera_quiet"]["cpu_s_per_camera_video_min"]
                result["quiet_cpu_to_peer"] = round(quiet / theirs["cpu_s_per_video_min"], 3)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    cols = ("cameras", "fps_min", "fps_mean", "age_p50_ms", "age_p99_ms", "dropped", "cpu_s_per_min",
            "cpu_s_per_camera_video_min", "rss_mb")  # fmt: skip
    print()
    print("".join(f"{c:>14}" for c in ("run", *cols)))
    rows = [("", r) for r in result["runs"]]
    for key in ("one_camera_spinning", "one_camera_int8", "one_camera_float", "one_camera_quiet"):
        if key in result:
            rows.append((key.removeprefix("one_camera_"), result[key]))
    for name, r in rows:
        print(f"{name:>14}" + "".join(f"{r[c]!s:>14}" for c in cols))
    theirs = result.get("peer_ultralytics")
    peer_cpu = theirs["cpu_s_per_video_min"] if isinstance(theirs, dict) else theirs
    print(f"\nUltralytics model.track() CPU-s per video-minute: {peer_cpu}")
    if "workers_ab" in result:
        print(f"\nworkers A/B (interleaved, one process): {result['workers_ab']}")
    for key in ("spin_ab", "threads_ab", "int8_ab"):
        if key in result:
            print(f"\n{key} (interleaved, one process): {result[key]}")
    for key in ("model_only_inferences_per_s", "bound_cameras", "cameras_held", "cameras_held_to_bound",
                "rss_mb_per_added_camera", "cpu_to_peer", "int8_cpu_to_peer", "float_cpu_to_peer",
                "quiet_cpu_to_peer", "load_average_at_start",
                "load_average_at_end"):  # fmt: skip
        if key in result:
            print(f"{key:<34}{result[key]!s:>12}")


if __name__ == "__main__":
    raise SystemExit(main())
