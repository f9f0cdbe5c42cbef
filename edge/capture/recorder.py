"""The per-camera ring recorder: one ffmpeg process copying the camera's encoded video into segments.

`ClipRecorder` owns that process (stream copy into segments, see `edge.capture.clips`) and restarts it
with a capped backoff when the camera drops, like the frame readers do; a codec that cannot go into an
MP4 stops that recorder with one clear log line. A camera that sends no keyframe (a clip can only start on
one: an I-frame interval of minutes, or a stream whose keyframes do not decode) is named too, once, and
recording goes on in case one comes. Clips are cut from its ring by `edge.capture.clipwriter`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.camera_config import CameraConfig
from edge.capture.clips import SUPPORTED_CODECS, SegmentRing, probe_codec, recorder_command

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    source: str
    live: bool
    rtsp_transport: str = "tcp"
    segment_s: float = 1.0
    keep_s: float = 60.0
    mask: CameraConfig | None = None  # `mask_clips`: each clip re-encoded with this camera's masks
    no_keyframe_s: float = 15.0  # recording this long without a finished segment: no keyframe came


NO_CLIP_STATES = ("unsupported", "no_keyframe")  # the camera's video cannot give clips; `message` says why


class ClipRecorder:
    """Keeps the last `keep_s` seconds of one camera's encoded video as segment files in `folder`."""

    def __init__(self, camera_id: str, settings: RecorderSettings, folder: Path) -> None:
        self.camera_id = camera_id
        self.settings = settings
        self.folder = folder
        self.ring = SegmentRing(folder, settings.keep_s)
        self.state = "starting"  # starting | recording | unsupported | no_keyframe | stopped
        self.message = ""
        self.restarts = 0
        self.codec = ""  # h264 | hevc once recording (browsers play H.264; most cannot play H.265)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # segments of an earlier run have no known times
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"clips-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        self._kill()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.state = "stopped"

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _spawn(self) -> subprocess.Popen[bytes]:
        s = self.settings
        cmd = recorder_command(
            s.source, self.folder, s.segment_s, live=s.live, rtsp_transport=s.rtsp_transport
        )
        with (self.folder / "ffmpeg.log").open("ab") as err:  # the child keeps its own descriptor
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def _last_error(self) -> str:
        try:
            return (self.folder / "ffmpeg.log").read_bytes()[-300:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _check_codec(self, running_s: float) -> bool:
        segs = self.ring.segments()
        if self.state not in ("starting", "no_keyframe"):
            return True
        if not segs:
            if self.state == "starting" and running_s > self.settings.no_keyframe_s:
                self._no_keyframe(running_s)
            return True
        codec = probe_codec(segs[0].path)
        if codec in SUPPORTED_CODECS:
            if self.state == "no_keyframe":
                log.warning("camera %s: a keyframe came at last; clips on", self.camera_id)
            self.state, self.message, self.codec = "recording", "", codec
            return True
        self.state = "unsupported"
        self.message = f"video codec {codec or 'unknown'!r} cannot be kept as MP4 clips; use H.264 or H.265"
        log.error("camera %s: clips off: %s", self.camera_id, self.message)
        return False

    def _no_keyframe(self, running_s: float) -> None:
        self.state = "no_keyframe"
        self.message = (
            f"no decodable keyframe from the camera in {running_s:.0f} s, and a clip can only start on one; "
            "set the camera's keyframe (I-frame) interval to 1-2 s"
        )
        log.error("camera %s: clips off: %s", self.camera_id, self.message)

    def _source_supported(self) -> bool:
        """Probe the camera's codec before the first recording (a codec MPEG-TS cannot carry would only
        make ffmpeg fail over and over); a source that does not answer is tried by recording anyway."""
        try:
            codec = probe_codec(
                Path(self.settings.source) if "://" not in self.settings.source else self.settings.source
            )
        except (OSError, subprocess.SubprocessError):
            return True
        if not codec or codec in SUPPORTED_CODECS:
            return True
        self.state = "unsupported"
        self.message = f"video codec {codec!r} cannot be kept as MP4 clips; use H.264 or H.265"
        log.error("camera %s: clips off: %s", self.camera_id, self.message)
        return False

    def _run(self) -> None:
        delay = 1.0
        if not self._source_supported():
            return
        while not self._stop.is_set():
            self._proc, spawned = self._spawn(), time.monotonic()
            while not self._stop.is_set() and self._proc.poll() is None:
                self.ring.poll()
                if not self._check_codec(time.monotonic() - spawned):
                    self._kill()
                    return
                self._stop.wait(0.25)
            if self._stop.is_set():
                return
            self.restarts += 1
            log.warning(
                "camera %s: clip recorder stopped (%s); again in %.0f s",
                self.camera_id,
                self._last_error(),
                delay,
            )
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)
