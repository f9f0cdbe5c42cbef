"""The station tells honestly which codec a stored clip has: read from real ffmpeg-made MP4s (H.264 and
H.265 as nodes cut them, the index at the front or the end), said by the clip API and its GET header, so
the dashboard offers H.265, which most browsers cannot play, for download; a broken file is 'unknown'."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import require
from test_central_scopes import T0, _hash
from test_central_support import make_event, serve_app

from central.api import ApiContext, make_app
from central.auth import Authenticator
from central.clipfetch import ClipFiles
from central.config import Account, HttpSettings
from central.ingest import event_row
from central.live import LiveHub
from central.mp4codec import mp4_codec, plays_in_browser
from central.store import Store

ENCODERS = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1"],
    "hev1": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hev1"],
}


def make_mp4(folder: Path, encoder: str, faststart: bool = True) -> Path:
    """One second of a test pattern, as `ffmpeg -c copy -movflags +faststart` leaves a node's clip."""
    require(shutil.which("ffmpeg") is not None, "ffmpeg is missing")
    out = folder / f"{encoder}-{faststart}.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1",
         *ENCODERS[encoder], *(["-movflags", "+faststart"] if faststart else []), str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("encoder", "faststart", "codec"),
    [("h264", True, "h264"), ("h264", False, "h264"), ("hevc", True, "hevc"), ("hev1", False, "hevc")],
)
def test_the_codec_is_read_from_the_clip_itself(
    tmp_path: Path, encoder: str, faststart: bool, codec: str
) -> None:
    path = make_mp4(tmp_path, encoder, faststart)
    assert mp4_codec(path) == codec
    assert plays_in_browser(codec) == (codec == "h264")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00\x00\x08moov", b"\x00\x00\x00\x01mdat\x00\x00", b"not an mp4 at all" * 10, b"\xff" * 64],
)
def test_a_broken_file_has_no_codec_and_raises_nothing(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(data)
    assert mp4_codec(path) == "" and not plays_in_browser("")
    assert mp4_codec(tmp_path / "absent.mp4") == ""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Store, ClipFiles]]:
    store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    store.migrate()
    files = ClipFiles(tmp_path / "clips")
    auth = Authenticator([Account(username="admin", role="admin", password_hash=_hash("admin"))], [], 3600)
    app = make_app(ApiContext(store, auth, LiveHub(), HttpSettings(), clips=files))
    with serve_app(app) as client:
        r = client.post("/api/login", json={"username": "admin", "password": "admin"})
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        client.cookies.clear()
        yield client, store, files
    store.close()


@pytest.mark.parametrize(("encoder", "codec"), [("h264", "h264"), ("hevc", "hevc")])
def test_the_clip_api_says_the_codec_and_whether_browsers_play_it(
    served: tuple[httpx.Client, Store, ClipFiles], tmp_path: Path, encoder: str, codec: str
) -> None:
    client, store, files = served
    payload = make_event(1, node="n1", camera="gate", ts=T0)
    store.insert_events([event_row(payload, T0, T0 + 0.1)])
    data = make_mp4(tmp_path, encoder).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    files.path_for(sha).parent.mkdir(parents=True, exist_ok=True)
    files.path_for(sha).write_bytes(data)
    store.clip_stored(payload["event_id"], "n1", sha, len(data), 1.0, T0, T0)
    state = client.post(f"/api/events/{payload['event_id']}/clip").json()  # stored: not asked again
    assert state["state"] == "ready" and state["codec"] == codec
    assert state["plays_in_browser"] == (codec == "h264")
    got = client.get(f"/api/events/{payload['event_id']}/clip", headers={"Range": "bytes=0-0"})
    assert got.status_code == 206 and got.headers["x-clip-codec"] == codec
