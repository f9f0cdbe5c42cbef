"""A real RTSP camera on loopback: Debian's rtsp-server-perl fed by ffmpeg re-streaming vtest.avi.

The reader pulls it over UDP transport, the server is killed and started again, and the reader
reconnects by itself, reporting lost then restored (turned into stream_lost / stream_restored events).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import free_port, require, wait_port
from support import wait_for

from edge.camera_config import CameraConfig
from edge.capture.health import CameraHealth
from edge.capture.sources import CameraReader
from edge.events import EventFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def h264_encoder() -> list[str]:
    """libx264 where ffmpeg has it, else MPEG-4 part 2 (both stream over RTP)."""
    cmd = ["ffmpeg", "-hide_banner", "-encoders"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    if " libx264 " in out:
        return ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10"]
    return ["-c:v", "mpeg4", "-g", "10", "-q:v", "5"]


@dataclass
class RtspCamera:
    """rtsp-server-perl on two free loopback ports plus an ffmpeg publisher pushing a looped clip."""

    clip: Path
    log_dir: Path
    client_port: int = field(default_factory=free_port)
    source_port: int = field(default_factory=free_port)
    rtp_port: int = field(default_factory=free_udp_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    encoder: list[str] = field(default_factory=h264_encoder)  # ["-c:v", "copy"] sends the file's own codec

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.client_port}/cam"

    def start(self) -> None:
        server = [
            "rtsp-server-perl", "--clientport", str(self.client_port), "--serverport", str(self.source_port),
            "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
            "--rtp_start_port", str(self.rtp_port), "--loglevel", "2",
        ]  # fmt: skip
        publish = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.clip),
            "-an", *self.encoder, "-f", "rtsp", f"rtsp://127.0.0.1:{self.source_port}/cam",
        ]  # fmt: skip
        with (self.log_dir / "rtsp-server.log").open("ab") as log:
            self.procs.append(subprocess.Popen(server, stdout=log, stderr=subprocess.STDOUT))
        wait_port(self.source_port)
        wait_port(self.client_port)
        with (self.log_dir / "ffmpeg.log").open("ab") as log:
            self.procs.append(subprocess.Popen(publish, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        """Kill the server and the publisher, as a power cut at the camera would."""
        for proc in reversed(self.procs):
            proc.kill()
            proc.wait(timeout=10)
        self.procs.clear()


@pytest.fixture
def rtsp_camera(vtest_path: Path, tmp_path: Path) -> Iterator[RtspCamera]:
    for tool in ("rtsp-server-perl", "ffmpeg"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (scripts/install_system_deps.sh)")
    cam = RtspCamera(vtest_path, tmp_path)
    cam.start()
    try:
        yield cam
    finally:
        cam.stop()


def udp_sockets_of_this_process() -> set[str]:
    """Inodes of the UDP sockets this process holds: proof that RTP comes over UDP, not TCP."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    udp = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        if os.path.exists(table):
            with open(table, encoding="ascii") as fh:
                udp |= {line.split()[9] for line in fh.readlines()[1:]}
    return inodes & udp


def test_reader_survives_server_restart_over_udp(rtsp_camera: RtspCamera) -> None:
    cam = CameraConfig(id="gate", source=rtsp_camera.url, rtsp_transport="udp")
    reader = CameraReader(cam, backoff_min_s=0.25, backoff_max_s=1.0, open_timeout_s=5.0, read_timeout_s=2.0)
    health = CameraHealth(cam.health, EventFactory("n1", "gate"))
    reader.start()
    try:
        wait_for(lambda: reader.frames_read >= 10, 30, "the first frames")
        frame = reader.latest(timeout=2.0)
        assert frame is not None and frame.image.shape == (576, 768, 3)
        assert udp_sockets_of_this_process(), "RTP should arrive over UDP sockets"
        assert reader.state == "ok"
        # The publisher may announce the stream a moment after the server listens: a first open can
        # meet a 404 (starting -> lost -> ok). Only the restart below is under test.
        startup = reader.status_changes()
        assert startup[-1].state == "ok"

        rtsp_camera.stop()
        wait_for(lambda: reader.state == "lost", 15, "the reader to notice the lost stream")
        frames_when_lost = reader.frames_read
        wait_for(lambda: reader.reconnects >= 2, 10, "reconnect attempts")

        rtsp_camera.start()
        back = frames_when_lost + 5
        wait_for(lambda: reader.state == "ok" and reader.frames_read > back, 30, "the stream back")
        frame = reader.latest(timeout=2.0)
        assert frame is not None and frame.image.shape == (576, 768, 3)
    finally:
        reader.stop()

    changes = reader.status_changes()
    assert [(c.previous, c.state) for c in changes] == [("ok", "lost"), ("lost", "ok")]
    assert changes[1].down_s is not None and changes[1].down_s > 0
    assert max(reader.delays) <= 1.0
    events = [ev for change in changes for ev in health.stream_events(change)]
    assert [(e.kind, e.phase, e.camera, e.rule) for e in events] == [
        ("stream_lost", "instant", "gate", "camera_health"),
        ("stream_restored", "instant", "gate", "camera_health"),
    ]
    assert events[1].measurements["down_s"] == pytest.approx(changes[1].down_s, abs=1e-3)
    assert events[0].ts < events[1].ts
