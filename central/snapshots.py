"""Snapshots on disk, content-addressed by sha256 (`<dir>/ab/cdef...jpg`, git style).

Content addressing makes a re-delivered snapshot free (same bytes, same file) and lets the API serve a
file by a name that is checked against `^[0-9a-f]{64}$` before it ever touches the file system, so no
request can reach outside the directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class SnapshotFiles:
    """Writes and finds JPEGs by their sha256; safe to use from several threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        """The file of a digest; ValueError for anything that is not 64 lowercase hex digits."""
        if not SHA256_RE.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / f"{sha256[2:]}.jpg"

    def put(self, data: bytes) -> str:
        """Store `data` (atomically: temp file then rename) and return its digest."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha)
        if path.exists():
            return sha
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def delete(self, sha256: str) -> int:
        """Remove a file; returns the bytes freed (0 when it was already gone)."""
        path = self.path_for(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size
