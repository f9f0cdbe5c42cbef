"""The RTSP probe that keeps dead cameras out of OpenCV's process-wide open lock: real loopback sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import free_port

from edge.capture.probe import ProbeError, probe_rtsp, rtsp_address


class OneShotServer:
    """Accepts connections; answers each first request with `reply` (None: never answers)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.requests.append(conn.recv(4096))
            if self.reply is not None:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[OneShotServer]:
    srv = OneShotServer(request.param)
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize(
    "server",
    [b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n", b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n"],
    indirect=True,
)
def test_a_camera_that_answers_passes_and_never_sees_the_password(server: OneShotServer) -> None:
    probe_rtsp(f"rtsp://admin:s3cret@127.0.0.1:{server.port}/Streaming/101", 5.0)
    assert server.requests[0].startswith(
        f"OPTIONS rtsp://127.0.0.1:{server.port}/Streaming/101 RTSP/1.0".encode()
    )
    assert b"s3cret" not in server.requests[0]


@pytest.mark.parametrize(
    ("server", "match"),
    [(None, "no RTSP answer within"), (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not RTSP")],
    indirect=["server"],
)
def test_a_camera_that_hangs_or_speaks_another_protocol_fails_in_time(
    server: OneShotServer, match: str
) -> None:
    t0 = time.monotonic()
    with pytest.raises(ProbeError, match=match):
        probe_rtsp(f"rtsp://127.0.0.1:{server.port}/cam", 0.5)
    assert time.monotonic() - t0 < 3.0


def test_a_closed_port_fails_at_once() -> None:
    with pytest.raises(ProbeError, match="cannot connect"):
        probe_rtsp(f"rtsp://127.0.0.1:{free_port()}/cam", 5.0)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("rtsp://10.0.0.5/s", ("10.0.0.5", 554)),
        ("rtsp://u:p@cam.local:8554/s", ("cam.local", 8554)),
        ("rtsps://10.0.0.5/s", ("10.0.0.5", 322)),
    ],
)
def test_rtsp_address(url: str, address: tuple[str, int]) -> None:
    assert rtsp_address(url) == address


@pytest.mark.parametrize("url", ["rtsp:///nohost", "rtsp://cam:notaport/s"])
def test_rtsp_address_errors(url: str) -> None:
    with pytest.raises(ProbeError):
        rtsp_address(url)
