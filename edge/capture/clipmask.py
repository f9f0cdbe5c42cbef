"""`mask_clips: true`: re-encode a clip with the camera's privacy masks painted, before it is stored.

By default a clip is the camera's own packets, copied (edge.capture.clips): cheap, but the masks, which
paint decoded frames, are not in it. A camera whose view includes a private place can instead have each
clip decoded, painted and encoded again. The masks are rasterised by the same `PrivacyMask` that paints
live frames and snapshots, at the clip's own size, into a PNG whose masked pixels are opaque black and
the rest transparent; ffmpeg's `overlay` lays it on every frame. Re-encoding costs CPU once per clip
written (measured in scripts/bench_clips.py, recorded in docs/benchmarks.md), never per frame of the ring.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np

from edge.camera_config import CameraConfig
from edge.capture.clips import ClipError
from edge.capture.privacy import PrivacyMask

# libx264 settings of a re-encoded clip: `veryfast` is the usual speed/size balance on a Pi 5's four
# cores; CRF 23 is libx264's default quality; a keyframe every 2 s lets the browser seek.
ENCODE = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p")


def probe_size(path: Path, timeout_s: float = 10.0) -> tuple[int, int]:
    """Width and height of the first video stream; ClipError when there is none."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    try:
        width, height = (int(v) for v in out.stdout.strip().split(",")[:2])
    except ValueError as exc:
        raise ClipError(f"cannot read the clip's frame size: {out.stderr.strip()[-200:]}") from exc
    return width, height


def mask_overlay(camera: CameraConfig, width: int, height: int, out: Path) -> Path:
    """A `width` x `height` RGBA PNG: the camera's masks opaque black, everything else transparent."""
    mask = PrivacyMask(camera, width, height).mask
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 3] = np.where(mask, 255, 0).astype(np.uint8)
    if not cv2.imwrite(str(out), rgba):
        raise ClipError(f"cannot write the mask picture {out.name}")
    return out


def mask_clip(src: Path, out: Path, camera: CameraConfig, timeout_s: float = 300.0) -> Path:
    """Re-encode `src` into `out` (MP4, H.264, +faststart) with `camera`'s privacy masks painted.

    The result appears under `out` only when complete and keeps `src`'s modification time (the clip's
    first frame, see edge.capture.clips.write_clip); `src` is left in place. Raises ClipError.
    """
    width, height = probe_size(src)
    overlay = mask_overlay(camera, width, height, out.with_name(out.stem + ".mask.png"))
    partial = out.with_name(out.name + ".part")
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-i", str(overlay),
        "-filter_complex", "[0:v][1:v]overlay=0:0:format=auto[v]", "-map", "[v]", "-an", *ENCODE,
        "-force_key_frames", "expr:gte(t,n_forced*2)", "-movflags", "+faststart", "-f", "mp4", str(partial),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        partial.unlink(missing_ok=True)
        raise ClipError(f"ffmpeg took longer than {timeout_s:.0f} s to mask the clip") from exc
    finally:
        overlay.unlink(missing_ok=True)
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise ClipError(f"ffmpeg could not mask the clip: {done.stderr.strip()[-300:]}")
    mtime = src.stat().st_mtime
    os.utime(partial, (mtime, mtime))
    partial.replace(out)
    return out
