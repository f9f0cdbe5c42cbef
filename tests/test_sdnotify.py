"""The sd_notify client that edge and central share: real AF_UNIX datagram sockets stand in for
systemd's socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from common import sdnotify as common_sdnotify


@pytest.fixture(params=[common_sdnotify], ids=["common"])
def sdnotify(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound datagram socket in tmp, announced through $NOTIFY_SOCKET as systemd does."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield sock
    finally:
        sock.close()


def _receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


@pytest.mark.parametrize(
    ("function", "expected"), [("ready", "READY=1"), ("watchdog", "WATCHDOG=1"), ("stopping", "STOPPING=1")]
)
def test_messages_arrive(
    notify_socket: socket.socket, sdnotify: ModuleType, function: str, expected: str
) -> None:
    send: Callable[[], bool] = getattr(sdnotify, function)
    assert send() is True
    assert _receive(notify_socket) == expected


def test_sequence_of_a_service_life(notify_socket: socket.socket, sdnotify: ModuleType) -> None:
    assert sdnotify.ready("warm-up done")
    for _ in range(3):
        assert sdnotify.watchdog()
    assert sdnotify.status("2 cameras\nok")
    assert sdnotify.stopping()
    got = [_receive(notify_socket) for _ in range(6)]
    assert got == [
        "READY=1\nSTATUS=warm-up done",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STATUS=2 cameras ok",
        "STOPPING=1",
    ]


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch, sdnotify: ModuleType) -> None:
    name = f"roadwatch-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.watchdog() is True
        assert _receive(sock) == "WATCHDOG=1"


def test_without_systemd_every_call_is_a_noop(monkeypatch: pytest.MonkeyPatch, sdnotify: ModuleType) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    assert sdnotify.watchdog() is False
    assert sdnotify.stopping() is False
    assert sdnotify.status("x") is False


@pytest.mark.parametrize("value", ["relative/path.sock", "vsock:2:1234"])
def test_unsupported_socket_names_are_ignored(
    monkeypatch: pytest.MonkeyPatch, sdnotify: ModuleType, value: str
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert sdnotify.notify("READY=1") is False


def test_vanished_socket_does_not_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sdnotify: ModuleType
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.watchdog() is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        (None, None, None),
        ("30000000", None, 30.0),
        ("15000000", "self", 15.0),
        ("15000000", "other", None),
        ("0", None, None),
        ("-5", None, None),
        ("abc", None, None),
        ("1000000", "junk", None),
    ],
)
def test_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch,
    sdnotify: ModuleType,
    usec: str | None,
    pid: str | None,
    expected: float | None,
) -> None:
    if usec is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        pids = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}
        monkeypatch.setenv("WATCHDOG_PID", pids.get(pid, pid))
    assert sdnotify.watchdog_interval_s() == expected


def test_one_copy_serves_edge_and_central() -> None:
    """The copies that used to drift (edge/sdnotify.py, central/sdnotify.py) are gone for good."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert not (root / "edge" / "sdnotify.py").exists() and not (root / "central" / "sdnotify.py").exists()


def test_rate_limited_watchdog_pings_every_quarter_period(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch, sdnotify: ModuleType
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")  # 20 s: at most one ping per 5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    now = [100.0]
    ping = sdnotify.Watchdog(clock=lambda: now[0])
    sent = []
    for t in (100.0, 101.0, 104.9, 105.0, 105.1, 112.0):
        now[0] = t
        sent.append(ping())
    assert sent == [True, False, False, True, False, True]
    notify_socket.settimeout(0.2)
    got = [_receive(notify_socket) for _ in range(3)]
    assert got == ["WATCHDOG=1"] * 3
    with pytest.raises(TimeoutError):
        notify_socket.recv(4096)


def test_rate_limited_watchdog_is_silent_without_a_watchdog(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch, sdnotify: ModuleType
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    ping = sdnotify.Watchdog()
    assert ping.min_gap_s is None
    assert ping() is False
    notify_socket.settimeout(0.1)
    with pytest.raises(TimeoutError):
        notify_socket.recv(4096)


def test_full_socket_drops_the_message_instead_of_blocking(
    notify_socket: socket.socket, sdnotify: ModuleType
) -> None:
    """Nobody reads the socket: the sender's queue fills and further pings return False at once."""
    results = [sdnotify.watchdog() for _ in range(5000)]
    assert results[0] is True
    assert results[-1] is False
