"""Event video clips: a ring of encoded segments per camera and MP4 clips cut from it around an event.

A snapshot shows one instant; for an accident the officer wants the seconds before and after. Decoding
and re-encoding video costs more CPU than the detector on a Raspberry Pi, so the ring keeps the camera's
own encoded packets: one `ffmpeg -c copy -f segment` process per camera writes short MPEG-TS segments
(each starts on a keyframe, because a stream copy can only cut there) and this module deletes the old
ones. A clip is the concatenation of the segments that overlap `[ts - pre_s, ts + post_s]`, copied again
into an MP4 (`+faststart`, so a browser plays it while it downloads) and trimmed at the end; it starts on
the keyframe nearest `ts - pre_s` (never after the event), so with a keyframe every 2 s or less its
length is within 1 s of `pre_s + post_s`.

Copied packets are NOT privacy-masked (`privacy_masks` paint decoded frames only): a camera whose view
includes private places either masks in the camera itself or sets `mask_clips: true`, which re-encodes
each clip with the masks painted (edge.capture.clipmask; CPU per clip, see docs/benchmarks.md).

Only H.264 and H.265 are kept (what MP4 carries and browsers play); another codec stops that camera's
recorder with a clear log line, never the node.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from contract.clips import ClipState

log = logging.getLogger(__name__)

SUPPORTED_CODECS = ("h264", "hevc")


@dataclass(frozen=True, slots=True)
class ClipLookup:
    """Where the node stands with one event's clip: a file to send, or a state and why."""

    state: ClipState
    path: Path | None = None
    reason: str = ""
    duration_s: float = 0.0
    start_ts: float = 0.0


class ClipError(RuntimeError):
    """A clip that cannot be made (no segment covers the time, unsupported codec, ffmpeg failed)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One finished segment file and the wall-clock span it covers."""

    path: Path
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    start: float  # wall clock of the first frame (a keyframe)
    duration_s: float
    bytes: int
    sha256: str


def ffmpeg_binary() -> str | None:
    return shutil.which("ffmpeg")


def probe_codec(path: Path | str, timeout_s: float = 10.0) -> str:
    """The codec name of the first video stream of a file or stream URL ('' when there is none)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def _probe_format(path: Path, entry: str, timeout_s: float) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", f"format={entry}", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    try:
        return float(out.stdout.strip())
    except ValueError:
        return 0.0


def probe_duration(path: Path, timeout_s: float = 10.0) -> float:
    return _probe_format(path, "duration", timeout_s)


def probe_start(path: Path, timeout_s: float = 10.0) -> float:
    """The first timestamp of a file: MPEG-TS segments start near 1.4 s even with `-reset_timestamps`."""
    return _probe_format(path, "start_time", timeout_s)


class SegmentRing:
    """The finished segments of one recorder, oldest first, read from ffmpeg's segment list.

    ffmpeg appends `name,start,end` (stream seconds) to a CSV list when a segment is complete. Stream
    seconds become wall-clock time through the smallest observed lag between a segment's end and the
    moment its line appeared: observing late never makes a segment look later than it was.
    """

    def __init__(self, folder: Path, keep_s: float, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.keep_s = keep_s
        self._clock = clock
        self._lines_read = 0
        self._offset: float | None = None
        self._raw: deque[tuple[Path, float, float]] = deque()
        self._pins = 0
        self.lock = threading.Lock()

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """While held, `poll` deletes no segment (a clip is being cut from them)."""
        with self.lock:
            self._pins += 1
        try:
            yield
        finally:
            with self.lock:
                self._pins -= 1

    @property
    def list_path(self) -> Path:
        return self.folder / "segments.csv"

    def poll(self) -> None:
        """Read new list lines, then delete segments older than `keep_s`."""
        now = self._clock()
        try:
            with self.list_path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except FileNotFoundError:
            return
        with self.lock:
            for row in rows[self._lines_read :]:
                if len(row) < 3:
                    break  # a line being written: read it next time
                try:
                    start, end = float(row[1]), float(row[2])
                except ValueError:
                    break
                self._lines_read += 1
                lag = now - end
                self._offset = lag if self._offset is None else min(self._offset, lag)
                self._raw.append((self.folder / row[0], start, end))
            while not self._pins and self._raw and self._wall(self._raw[0][2]) < now - self.keep_s:
                path = self._raw.popleft()[0]
                path.unlink(missing_ok=True)

    def _wall(self, stream_s: float) -> float:
        return stream_s + (self._offset or 0.0)

    def segments(self) -> list[Segment]:
        with self.lock:
            return [Segment(p, self._wall(s), self._wall(e)) for p, s, e in self._raw if p.exists()]

    def covering(self, t0: float, t1: float, latest_start: float | None = None) -> list[Segment]:
        """The consecutive segments up to t1, from the one whose start (a keyframe) is nearest t0 but not
        after `latest_start` (the event: a clip always holds it). Starting at the nearest keyframe, not
        the last one before t0, keeps a clip within half a keyframe interval of `pre_s + post_s`."""
        segs = self.segments()
        limit = t1 if latest_start is None else max(t0, latest_start)
        allowed = [i for i, seg in enumerate(segs) if seg.start <= limit]
        first = min(allowed, key=lambda i: abs(segs[i].start - t0)) if allowed else 0
        return [seg for seg in segs[first:] if seg.start < t1]


def recorder_command(
    source: str, folder: Path, segment_s: float, *, live: bool, rtsp_transport: str
) -> list[str]:
    """The ffmpeg command that keeps copying the camera's video into segments (audio is dropped)."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    if source.startswith("rtsp://"):
        cmd += ["-rtsp_transport", rtsp_transport, "-timeout", "10000000"]
    if not live:  # a file played as a camera: paced at its own rate, looped (demos, tests)
        cmd += ["-re", "-stream_loop", "-1"]
    cmd += [
        "-i", source, "-map", "0:v:0", "-c", "copy",
        "-f", "segment", "-segment_time", f"{segment_s:g}", "-segment_format", "mpegts",
        "-reset_timestamps", "1", "-segment_list", str(folder / "segments.csv"),
        "-segment_list_type", "csv", str(folder / "seg%08d.ts"),
    ]  # fmt: skip
    return cmd


def write_clip(
    segments: Sequence[Segment],
    t0: float,
    t1: float,
    out: Path,
    timeout_s: float = 60.0,
    check_codec: bool = True,
) -> Clip:
    """Concatenate `segments` into an MP4 at `out`, trimmed to end at `t1`; raises ClipError.

    `check_codec=False` skips probing the codec when the recorder has already checked it (one process
    start less per clip on a busy node).

    The file appears under its final name only when complete (written beside it, then renamed), so a
    power cut never leaves half a clip that looks whole.
    """
    if not segments:
        raise ClipError(
            "no recorded video covers that time (the ring starts after it, or the stream was down)"
        )
    codec = probe_codec(segments[0].path) if check_codec else SUPPORTED_CODECS[0]
    if codec not in SUPPORTED_CODECS:
        raise ClipError(f"the camera's video codec {codec or 'unknown'!r} cannot be kept as an MP4 clip; "
                        f"set the camera to H.264 or H.265")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    listing = out.with_suffix(".txt")
    lines = ["ffconcat version 1.0"]
    for i, seg in enumerate(segments):
        lines.append(f"file '{seg.path.as_posix()}'")
        if i == len(segments) - 1 and t1 < seg.end:  # the concat demuxer reads the file's own clock
            lines.append(f"outpoint {probe_start(seg.path) + max(0.0, t1 - seg.start):.3f}")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial = out.with_name(out.name + ".part")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
           "-i", str(listing), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(partial)]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ClipError(f"ffmpeg took longer than {timeout_s:.0f} s to write the clip") from exc
    finally:
        listing.unlink(missing_ok=True)
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise ClipError(f"ffmpeg could not write the clip: {done.stderr.strip()[-300:]}")
    # The file's time is its first frame's (the upload's start_ts), set before the rename: an upload
    # request that finds the clip the moment it appears must not read the write time instead.
    os.utime(partial, (segments[0].start, segments[0].start))
    partial.replace(out)
    return describe_clip(out, segments[0].start)


def describe_clip(path: Path, start: float) -> Clip:
    """The record of a finished clip file whose first frame is at wall time `start`."""
    data = path.read_bytes()
    return Clip(path, start, probe_duration(path), len(data), hashlib.sha256(data).hexdigest())


class ClipStore:
    """Finished clips on the node's disk, bounded by total size and age; oldest removed first, counted."""

    def __init__(self, folder: Path, max_bytes: int, max_age_s: float) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.dropped = 0
        folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, event_id: str) -> Path:
        return self.folder / f"{event_id}.mp4"

    def work_path(self, event_id: str) -> Path:
        """Where a clip is cut before it is re-encoded (`mask_clips`); never served, never pruned."""
        return self.folder / "work" / f"{event_id}.mp4"

    def get(self, event_id: str) -> Path | None:
        path = self.path_for(event_id)
        return path if path.is_file() else None

    def prune(self, now: float | None = None) -> int:
        """Delete clips past their age, then the oldest until the store fits; returns how many went."""
        now = time.time() if now is None else now
        clips = sorted(self.folder.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
        sizes = {p: p.stat().st_size for p in clips}
        total = sum(sizes.values())
        removed = 0
        for path in clips:
            if now - path.stat().st_mtime <= self.max_age_s and total <= self.max_bytes:
                continue
            total -= sizes[path]
            path.unlink(missing_ok=True)
            removed += 1
        self.dropped += removed
        if removed:
            log.info("clip store %s: removed %d old clip(s) to stay within its bounds", self.folder, removed)
        return removed
