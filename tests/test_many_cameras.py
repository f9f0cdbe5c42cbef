"""A node with 20 dead cameras and 2 live RTSP streams, as a real process.

The dead cameras point at a loopback port that accepts connections and never answers (a camera that
hangs mid-handshake), so every open blocks until its timeout. The live cameras use another RTSP
transport (udp) than the dead ones (tcp), so opens wanting different FFmpeg options overlap too. Opens run in parallel: the live cameras
still deliver frames within 10 s, every dead camera is reported `stream_lost` within its open timeout,
and SIGTERM ends the node within 5 s whatever the opens are doing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require, shared_file
from test_rtsp import RtspCamera, h264_encoder

from edge.capture.opening import open_capture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEAD = 20
OPEN_TIMEOUT_S = 10.0  # the reader's default open timeout


class SilentServer:
    """Accepts every connection and never sends a byte (held until close)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def two_streams(shared_dir: Path, tmp_path: Path) -> Iterator[list[str]]:
    """Two live streams from one rtsp-server-perl (two servers would both bind its fixed RTP port)."""
    for tool in ("rtsp-server-perl", "ffmpeg"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (scripts/install_system_deps.sh)")
    clip = shared_file(shared_dir, "videos/vtest.avi")
    server = RtspCamera(clip, tmp_path)
    urls = [server.url, server.url + "2"]
    try:
        server.start()
        publish = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
            "-an", *h264_encoder(), "-f", "rtsp", f"rtsp://127.0.0.1:{server.source_port}/cam2",
        ]  # fmt: skip
        with (tmp_path / "ffmpeg2.log").open("ab") as log:
            server.procs.append(subprocess.Popen(publish, stdout=log, stderr=subprocess.STDOUT))
        for url in urls:  # a publisher announces its stream a moment after the server listens
            deadline = time.monotonic() + 30
            while True:
                cap = open_capture(url, "udp", 5.0, 5.0)
                ok = cap.isOpened() and cap.read()[0]
                cap.release()
                if ok:
                    break
                assert time.monotonic() < deadline, f"{url} never served a frame"
                time.sleep(0.5)
        yield urls
    finally:
        server.stop()


class LogWatch:
    """Reads a process's log lines on a thread, each with the monotonic time it arrived."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """After the process ended: the pipe is at its end, the thread finishes; close the pipe."""
        self._thread.join(10)
        self._stream.close()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append((time.monotonic(), line.rstrip()))

    def first(self, text: str, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, line in list(self.lines):
                if text in line:
                    return t
            time.sleep(0.05)
        tail = "\n".join(line for _, line in self.lines[-30:])
        raise AssertionError(f"no log line with {text!r} within {timeout_s} s; last lines:\n{tail}")


def test_dead_cameras_block_neither_live_ones_nor_shutdown(
    shared_dir: Path, tmp_path: Path, silent_server: SilentServer, two_streams: list[str]
) -> None:
    cams = [
        f"  - {{id: live{i}, source: '{url}', rtsp_transport: udp, detect_fps: 2}}\n"
        for i, url in enumerate(two_streams)
    ] + [
        f"  - {{id: dead{i:02d}, source: 'rtsp://127.0.0.1:{silent_server.port}/cam{i}', detect_fps: 2}}\n"
        for i in range(DEAD)
    ]
    config = tmp_path / "node.yaml"
    config.write_text(
        "node_id: many\n"
        f"model: {{path: '{shared_dir}/models/yolox_nano.onnx', intra_op_threads: 1}}\n"
        "metrics: {enabled: false}\n"
        "cameras:\n" + "".join(cams),
        encoding="utf-8",
    )
    events = tmp_path / "events.jsonl"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", str(config), "--no-mqtt", "--events-jsonl", str(events)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = LogWatch(proc)
    try:
        started = logs.first("running 22 camera(s)", 60)
        for i in range(2):  # a camera's first analysed frame logs its size
            assert logs.first(f"camera live{i}: 768x576", 10) - started < 10.0
        lost_by = started + OPEN_TIMEOUT_S + 3.0  # open timeout, plus a margin for a loaded machine
        while time.monotonic() < lost_by:
            lost = _lost_cameras(events)
            if len(lost) == DEAD:
                break
            time.sleep(0.2)
        assert lost == {f"dead{i:02d}" for i in range(DEAD)}
        assert silent_server.conns, "the dead cameras' opens should reach the silent port"

        time.sleep(1.0)  # the dead cameras are back in their (blocking) reopen attempts
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        took = time.monotonic() - t0
        last = "\n".join(line for _, line in logs.lines[-8:])
        assert took < 5.0, f"SIGTERM must end the node within 5 s, took {took:.1f} s; last lines:\n{last}"
        assert rc == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        logs.close()
    assert not _lost_cameras(events) & {"live0", "live1"}


def _lost_cameras(events: Path) -> set[str]:
    if not events.exists():
        return set()
    lines = events.read_text(encoding="utf-8").splitlines()
    return {
        ev["camera"]
        for ev in (json.loads(line) for line in lines if line.strip())
        if ev["kind"] == "stream_lost"
    }
