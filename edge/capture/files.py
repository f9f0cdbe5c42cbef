"""Reading a video file frame by frame on the caller's thread, and grabbing one frame for a check.

`iter_file_frames` yields every frame, in order, so `--max-frames`, benchmarks and the counting
evaluation are deterministic; live streams go through `edge.capture.sources.CameraReader` instead.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from edge.camera_config import CameraConfig
from edge.capture.opening import SourceError, camera_source, open_capture, source_kind
from edge.capture.privacy import FrameMasker
from edge.capture.sourceurl import expand_path
from edge.records import Frame

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def iter_file_frames(
    camera: CameraConfig,
    max_frames: int | None = None,
    wallclock: Clock = time.time,
    clock: Clock = time.monotonic,
    stop: threading.Event | None = None,
    keep: Callable[[float], bool] | None = None,
) -> Iterator[Frame]:
    """Every frame of a video file, in order, on the caller's thread.

    `t` is the frame's position in the clip (the container timestamp, or index / fps where the file has
    none), plus the clip length for each loop so `t` keeps increasing. `ts` is the wall time at the start
    plus `t`. With `camera.loop` the file restarts at its end; with `camera.realtime` frames are paced at
    the file's rate. Raises SourceError if the file cannot be opened or yields no frame at all.

    With `keep` (a predicate on `t`: "opens a detection slot") a refused frame is only grabbed (decoded,
    never converted to BGR or copied) and not yielded, though `seq` counts it: 5 conversions a second,
    not 25, for a camera analysed at 5 fps.
    """
    path = expand_path(camera_source(camera))
    masker = FrameMasker(camera)
    start_wall, start_mono = wallclock(), clock()
    seq, offset = 0, 0.0
    while True:
        cap = open_capture(path, decode_threads=camera.decode_threads)
        if not cap.isOpened():
            raise SourceError(f"camera {camera.id}: cannot open video file {path}")
        try:
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            period = 1.0 / fps if math.isfinite(fps) and 0.1 < fps < 1000 else 0.04
            announced = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            index = 0
            last_t = -math.inf
            while stop is None or not stop.is_set():
                ok, wanted, image = cap.grab(), False, None
                if ok:
                    last_t = _position(cap, index, period, last_t)
                    t = round(offset + last_t, 6)
                    wanted = keep is None or keep(t)
                    image = cap.retrieve()[1] if wanted else None
                if not ok or (wanted and image is None):
                    if offset == 0.0:  # once, not at every loop of a looped file
                        _warn_if_cut(camera.id, path, index, max(last_t, 0.0), announced)
                    break
                if camera.realtime:  # every frame, as a live camera delivers them
                    _pace(start_mono + t - clock(), stop)
                if wanted:
                    yield Frame(camera.id, seq, t, start_wall + t, masker(np.asarray(image, np.uint8)))
                seq += 1
                index += 1
                if max_frames is not None and seq >= max_frames:
                    return
        finally:
            cap.release()
        if index == 0:
            raise SourceError(f"camera {camera.id}: no frame could be decoded from {path}")
        if not camera.loop or (stop is not None and stop.is_set()):
            return
        offset += last_t + period
        log.debug("camera %s: file ended, looping (offset %.3f s)", camera.id, offset)


def _position(cap: cv2.VideoCapture, index: int, period: float, last_t: float) -> float:
    """Seconds from the clip's start of the frame just grabbed: its container timestamp, or `index`
    periods where the file has none (or one that does not increase)."""
    pos = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
    return pos if math.isfinite(pos) and pos > last_t else index * period


def _pace(delay: float, stop: threading.Event | None) -> None:
    """Wait `delay` seconds (a paced file's next frame), at once if `stop` is set meanwhile."""
    if delay <= 0:
        return
    if stop is not None:
        stop.wait(delay)
    else:
        time.sleep(delay)


def _warn_if_cut(camera_id: str, path: str, frames: int, t: float, announced: float) -> None:
    """A file that ends well before the frame count in its header was cut off (a copy interrupted, a
    recorder losing power): say where, so nobody takes its few events for the whole clip."""
    if frames and math.isfinite(announced) and frames < announced - max(2.0, 0.02 * announced):
        log.warning(
            "camera %s: video file %s ended at frame %d (%.1f s) of the %d its header announces: "
            "the file is truncated or damaged",
            camera_id,
            path,
            frames,
            t,
            int(announced),
        )


def grab_frame(camera: CameraConfig, index: int = 0, timeout_s: float = 15.0) -> Frame | None:
    """One frame for a set-up check: frame `index` of a file, or the first frame a live source gives."""
    if source_kind(camera_source(camera)) == "file":
        try:
            for frame in iter_file_frames(camera.model_copy(update={"realtime": False, "loop": False})):
                if frame.seq >= index:
                    return frame
        except SourceError as exc:
            log.error("%s", exc)
        return None
    try:
        cap = open_capture(
            camera_source(camera),
            camera.rtsp_transport,
            timeout_s,
            timeout_s,
            decode_threads=camera.decode_threads,
        )
    except SourceError as exc:
        log.error("camera %s: %s", camera.id, exc)
        return None
    try:
        deadline = time.monotonic() + timeout_s
        while cap.isOpened() and time.monotonic() < deadline:
            ok, image = cap.read()
            if ok and image is not None:
                return Frame(camera.id, 0, 0.0, time.time(), FrameMasker(camera)(np.asarray(image, np.uint8)))
        log.error("camera %s: no frame from %s within %.0f s", camera.id, camera_source(camera), timeout_s)
        return None
    finally:
        cap.release()
