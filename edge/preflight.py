"""What a node needs of this machine before it starts: the model file and every video-file source exist
and can be read, and each video file decodes.

Validation (`edge.config`) checks a file's shape; this checks the files it names, so `check` refuses what
`run` would refuse, with the same `field.path: reason` lines and exit code 2. Paths are shown expanded
(`{data}`, `~`), and a path through `{data}` names the data-directory setting, because that is what a
technician must fix. Network and USB sources are not contacted here (a camera may be asleep or on
another network during set-up); `check` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edge.capture.sourceurl import DATA_DIR_ENV, data_dir, expand_path
from edge.config import NodeConfig


@dataclass(frozen=True, slots=True)
class Problem:
    """A file the config names that this machine cannot give: `where` is the field path."""

    where: str
    message: str


def _file_problem(where: str, configured: str, what: str) -> Problem | None:
    path = Path(expand_path(configured))
    hint = ""
    if "{data}" in configured:
        hint = f" ({{data}} is the data directory {data_dir()}; set {DATA_DIR_ENV} to change it)"
    if not path.exists():
        return Problem(where, f"{what} {path} does not exist{hint}")
    if path.is_dir():
        return Problem(where, f"{what} {path} is a directory, not a file")
    if not os.access(path, os.R_OK):
        return Problem(where, f"{what} {path} cannot be read (permission denied)")
    if what == "video file" and not _decodes(path):
        return Problem(
            where, f"{what} {path} cannot be decoded: not a video, or incomplete (cut off before its index)"
        )
    return None


def _decodes(path: Path) -> bool:
    """Whether OpenCV opens the file and decodes its first frame (milliseconds for a local file)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        ok, image = cap.read() if cap.isOpened() else (False, None)
        return bool(ok) and image is not None
    finally:
        cap.release()


def file_problems(cfg: NodeConfig) -> list[Problem]:
    """The model and every file source, checked on disk; network sources are left alone."""
    from edge.capture.opening import source_kind  # cv2 only when a node is checked or run

    found = [_file_problem("model.path", cfg.model.path, "model file")]
    for cam in cfg.cameras:
        for field in ("source", "substream"):
            value = getattr(cam, field)
            if value is not None and source_kind(value) == "file":
                found.append(_file_problem(f"cameras.{cam.id}.{field}", value, "video file"))
    return [p for p in found if p is not None]


def network_sources(cfg: NodeConfig) -> list[str]:
    """`camera.field` of every source `check` does not open (RTSP, HTTP, USB)."""
    from edge.capture.opening import source_kind

    return [
        f"{cam.id}.{field}"
        for cam in cfg.cameras
        for field in ("source", "substream")
        if getattr(cam, field) is not None and source_kind(getattr(cam, field)) != "file"
    ]
