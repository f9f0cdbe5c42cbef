"""Opening a camera source: classify the configured string and open it with the right OpenCV backend.

One home for the capture options (backend, RTSP transport, open/read timeouts, the RTSP OPTIONS probe)
so the file iterator, the live reader and the set-up checks open sources the same way.
"""

from __future__ import annotations

from typing import Literal

import cv2

from edge.camera_config import CameraConfig
from edge.capture.probe import ProbeError, probe_rtsp
from edge.capture.sharedenv import SharedEnv
from edge.capture.sourceurl import expand_source

SourceKind = Literal["file", "rtsp", "http", "usb"]

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# One per process because the environment it guards is one per process (edge.capture.sharedenv).
_FFMPEG_OPTIONS = SharedEnv(FFMPEG_OPTIONS_ENV)


class SourceError(Exception):
    """A source that cannot be opened or read."""


def source_kind(source: str) -> SourceKind:
    """Classify a configured source string."""
    low = source.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if low.startswith(("http://", "https://")):
        return "http"
    if low.startswith("usb:") or low.startswith("/dev/video"):
        return "usb"
    return "file"


def open_capture(
    source: str,
    rtsp_transport: str = "tcp",
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 10.0,
    *,
    decode_threads: int = 1,
) -> cv2.VideoCapture:
    """Open any configured source with the right OpenCV backend; the caller checks `isOpened()`.

    Files may contain `{data}` (the data directory). RTSP uses the FFmpeg backend with the requested
    transport; HTTP(S) is read as MJPEG (or anything FFmpeg understands); `usb:N` and `/dev/videoN`
    use V4L2. `decode_threads` goes to FFmpeg (0: its own choice, one per core; the camera's
    `decode_threads`). The timeouts bound how long a dead network camera can block the reader thread. An RTSP
    camera is first asked for OPTIONS (edge.capture.probe); one that does not answer within the open
    timeout raises SourceError without ever taking OpenCV's open lock.
    """
    kind = source_kind(source)
    source = expand_source(source)  # {data} and ${NAME} secrets, only at the moment of opening
    timeouts = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000),
    ]  # fmt: skip
    threads = [cv2.CAP_PROP_N_THREADS, decode_threads] if decode_threads > 0 else []
    if kind == "usb":
        dev: int | str = int(source[4:]) if source.lower().startswith("usb:") else source
        return cv2.VideoCapture(dev, cv2.CAP_V4L2)
    if kind == "http":
        return cv2.VideoCapture(source, cv2.CAP_FFMPEG, timeouts + threads)
    if kind == "rtsp":
        if rtsp_transport not in ("tcp", "udp"):
            raise ValueError(f"rtsp_transport must be 'tcp' or 'udp', not {rtsp_transport!r}")
        try:  # a dead camera fails here, in parallel, not in OpenCV's process-wide open lock
            probe_rtsp(source, open_timeout_s)
        except ProbeError as exc:
            raise SourceError(str(exc)) from None
        with _FFMPEG_OPTIONS.holding(f"rtsp_transport;{rtsp_transport}"):
            return cv2.VideoCapture(source, cv2.CAP_FFMPEG, timeouts + threads)
    return cv2.VideoCapture(source, cv2.CAP_ANY, threads)


def camera_source(camera: CameraConfig) -> str:
    """The stream the node analyses: the low-resolution substream when one is configured."""
    return camera.substream or camera.source
