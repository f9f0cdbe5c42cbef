"""The per-camera ring recorder: one ffmpeg process copying the camera's encoded video into segments.

`ClipRecorder` owns that process (stream copy into segments, see `edge.capture.clips`) and restarts it
with a capped backoff when the camera drops, like the frame readers do; a codec that cannot go into an
MP4 stops that recorder with one clear log line. Clips are cut from its ring by `edge.capture.clipwriter`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
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


class ClipRecorder:
    """Keeps the last `keep_s` seconds of one camera's encoded video as segment files in `folder`."""

    def __init__(self, camera_id: str, settings: RecorderSettings, folder: Path) -> None:
        self.camera_id = camera_id
        self.settings = settings
        self.folder = folder
        self.ring = SegmentRing(folder, settings.keep_s)
        self.state = "starting"  # starting | recording | unsupported | stopped
        self.message = ""
        self.restarts = 0
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

    def _check_codec(self) -> bool:
        segs = self.ring.segments()
        if not segs or self.state != "starting":
            return True
        codec = probe_codec(segs[0].path)
        if codec in SUPPORTED_CODECS:
            self.state = "recording"
            return True
        self.state = "unsupported"
        self.message = f"video codec {codec or 'unknown'!r} cannot be kept as MP4 clips; use H.264 or H.265"
        log.error("camera %s: clips off: %s", self.camera_id, self.message)
        return False

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
            self._proc = self._spawn()
            while not self._stop.is_set() and self._proc.poll() is None:
                self.ring.poll()
                if not self._check_codec():
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
