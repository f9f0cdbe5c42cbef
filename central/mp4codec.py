"""Which video codec a stored MP4 clip carries, read from its sample description (no ffprobe needed).

Nodes keep their cameras' own packets, so a clip is H.264 or H.265 as the camera sends it. Browsers play
H.264 in `<video>`; most cannot play H.265 (Safari and some hardware-accelerated browsers can), so the API
says which codec a clip has and the dashboard offers the file for download instead of pretending.
"""

from __future__ import annotations

import struct
from pathlib import Path

FOURCCS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc"}
BROWSER_CODECS = frozenset({"h264"})
MAX_MOOV_BYTES = 16 * 1024 * 1024  # a 15 s clip's index is tens of kilobytes


def _moov(path: Path) -> bytes:
    """The `moov` box of an MP4 (at the front of a `+faststart` clip, but found anywhere)."""
    with path.open("rb") as fh:
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return b""
            size, kind = struct.unpack(">I4s", head)
            skip = size - 8
            if size == 1:  # a 64-bit size follows
                big = fh.read(8)
                if len(big) < 8:
                    return b""
                skip = struct.unpack(">Q", big)[0] - 16
            if kind == b"moov":
                return fh.read(min(max(skip, 0), MAX_MOOV_BYTES))
            if size == 0 or skip < 0:  # "to the end of the file", or a broken size
                return b""
            fh.seek(skip, 1)


def mp4_codec(path: Path) -> str:
    """`h264`, `hevc`, another sample entry's four letters, or '' when the file is not a readable MP4."""
    try:
        moov = _moov(path)
    except OSError:
        return ""
    at = moov.find(b"stsd")
    if at < 0:
        return ""
    entry = moov[at + 16 : at + 20]  # after the tag: version/flags, entry count, first entry's size
    return FOURCCS.get(entry, entry.decode("ascii", errors="replace").strip())


def plays_in_browser(codec: str) -> bool:
    return codec in BROWSER_CODECS
