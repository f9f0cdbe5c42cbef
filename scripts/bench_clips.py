#!/usr/bin/env python3
"""Cost of event clips on a node: the ring buffer per camera, the clip write, and `mask_clips`.

    python scripts/bench_clips.py --seconds 40

Makes a 1080p/25 fps H.264 "camera" (a clip of the data directory scaled up, a keyframe every 2 s, about
4 Mbit/s like a common IP camera's main stream) under --work, then in one run:

- **ring**: the node's own recorder (`ClipRecorder`: ffmpeg stream copy into 1 s segments, read in real
  time as from a camera) for --seconds; the recorder's ffmpeg CPU time over wall time (share of one core),
  its peak resident memory, and the ring's bytes on disk. For scale, the CPU of *decoding* the same
  seconds once (what any decode-and-re-encode ring would pay at least) is measured on the same machine.
- **write**: `write_clip` of a pre_s + post_s clip from that ring, --repeats times: wall seconds each.
- **mask**: `mask_clip` (`mask_clips: true`) on the written clip: CPU seconds (ffmpeg's, all threads)
  per clip second, and wall seconds.

Prints JSON, then a table. Nothing is kept in the repository; --work is a scratch folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.camera_config import CameraConfig
from edge.capture.clipmask import mask_clip
from edge.capture.clips import probe_duration, write_clip
from edge.capture.recorder import ClipRecorder, RecorderSettings
from edge.capture.sourceurl import expand_path

TICK = os.sysconf("SC_CLK_TCK")


def make_camera(source: Path, out: Path, seconds: float) -> Path:
    """The source scaled to 1920x1080 at 25 fps, H.264, GOP 50, ~4 Mbit/s (kept between runs)."""
    if not out.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-t", f"{seconds:g}",
             "-vf", "scale=1920:1080,fps=25", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M",
             "-maxrate", "4M", "-bufsize", "8M", "-g", "50", "-an", str(out)],
            check=True, timeout=1800,
        )  # fmt: skip
    return out


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def proc_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_ring(camera: Path, folder: Path, seconds: float) -> tuple[ClipRecorder, dict[str, Any]]:
    rec = ClipRecorder("bench", RecorderSettings(str(camera), live=False, keep_s=seconds + 60), folder)
    rec.start()
    deadline = time.monotonic() + 20
    while rec._proc is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc = rec._proc
    assert proc is not None, "the recorder did not start"
    time.sleep(2.0)  # past ffmpeg's start-up
    cpu0, t0 = proc_cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = proc_cpu_s(proc.pid), time.monotonic()
    hwm = proc_hwm_mb(proc.pid)
    ring_bytes = sum(p.stat().st_size for p in folder.glob("*.ts"))
    wall = t1 - t0
    return rec, {
        "seconds": round(wall, 1),
        "cpu_core_share": round((cpu1 - cpu0) / wall, 4),
        "ffmpeg_peak_rss_mb": round(hwm, 1),
        "disk_mb_per_min": round(ring_bytes / 1e6 / (wall + 2.0) * 60, 1),
        "state": rec.state,
    }


def bench_decode(camera: Path, seconds: float) -> float:
    """CPU seconds per video second to decode the camera (one thread, as a ring decoder would)."""
    before = children_cpu_s()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-threads", "1", "-t", f"{seconds:g}", "-i", str(camera), "-f", "null", "-"],
        check=True, timeout=1800,
    )  # fmt: skip
    return (children_cpu_s() - before) / seconds


def table(result: dict[str, Any], repeats: int) -> str:
    ring, write, mask = result["ring"], result["write"], result["mask"]
    rows = [
        ("ring: recorder CPU, share of one core", ring["cpu_core_share"]),
        ("ring: decoding the same stream, CPU s per video s (1 thread)", result["decode_cpu_per_video_s"]),
        ("ring / decode", result["ring_vs_decode"]),
        ("ring: recorder peak memory, MB", ring["ffmpeg_peak_rss_mb"]),
        ("ring: disk written, MB per minute", ring["disk_mb_per_min"]),
        (f"write a {write['clip_s']} s clip: wall s, median of {repeats}", write["wall_s_median"]),
        ("mask_clips: CPU s per clip second", mask["cpu_s_per_clip_s"]),
        ("mask_clips: wall s per clip second", mask["wall_vs_clip"]),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="{data}/videos/intersection_cctv.mp4")
    p.add_argument("--seconds", type=float, default=40.0, help="How long the ring records")
    p.add_argument("--pre", type=float, default=5.0)
    p.add_argument("--post", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "roadwatch-bench-clips"))
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    source = Path(expand_path(args.source))
    camera = make_camera(source, work / "camera-1080p25.mp4", args.seconds + 10)
    rec, ring = bench_ring(camera, work / "ring", args.seconds)
    try:
        now = time.time()
        t1 = now - 1.5
        segs = rec.ring.covering(t1 - args.pre - args.post, t1)
        writes = []
        for i in range(args.repeats):
            w0 = time.perf_counter()
            clip = write_clip(segs, t1 - args.pre - args.post, t1, work / f"clip{i}.mp4")
            writes.append(time.perf_counter() - w0)
    finally:
        rec.stop()
    mask_cam = CameraConfig.model_validate(
        {"id": "bench", "source": str(camera), "reference_size": [1920, 1080],
         "privacy_masks": {"yard": {"points": [[0, 0], [640, 0], [640, 360], [0, 360]]}}}
    )  # fmt: skip
    cpu0, m0 = children_cpu_s(), time.perf_counter()
    masked = mask_clip(clip.path, work / "masked.mp4", mask_cam)
    mask_wall, mask_cpu = time.perf_counter() - m0, children_cpu_s() - cpu0
    decode = bench_decode(camera, min(args.seconds, 30.0))
    result = {
        "camera": {"size": "1920x1080", "fps": 25, "codec": "h264", "gop": 50, "bitrate_mbit": 4},
        "cpu_count": os.cpu_count(),
        "ring": ring,
        "decode_cpu_per_video_s": round(decode, 4),
        "ring_vs_decode": round(ring["cpu_core_share"] / decode, 4) if decode else None,
        "write": {
            "clip_s": round(clip.duration_s, 2), "clip_mb": round(clip.bytes / 1e6, 2),
            "wall_s_median": round(statistics.median(writes), 3), "wall_s_max": round(max(writes), 3),
        },
        "mask": {
            "clip_s": round(probe_duration(masked), 2), "wall_s": round(mask_wall, 2),
            "cpu_s": round(mask_cpu, 2), "cpu_s_per_clip_s": round(mask_cpu / clip.duration_s, 3),
            "wall_vs_clip": round(mask_wall / clip.duration_s, 3),
        },
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    print()
    print(table(result, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
