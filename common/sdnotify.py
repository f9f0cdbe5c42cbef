"""A dependency-free client of systemd's notification protocol (`sd_notify(3)`).

The node and the aggregator both run with `Type=notify` and `WatchdogSec=`: systemd considers a service
started only when it sends `READY=1` (node: model warmed up; aggregator: store open, HTTP bound), and kills
and restarts it when no `WATCHDOG=1` arrives within the watchdog period. Each pings from the loop whose
progress shows it works (the node's detection loop, the aggregator's ingest writer), so a stuck thread, not
merely a live process, is what keeps the watchdog fed.

The protocol is one datagram of `KEY=value` lines to the AF_UNIX socket named in `$NOTIFY_SOCKET`; a name
starting with `@` lives in the abstract namespace. Outside systemd the variable is unset and every call is
a cheap no-op returning False, so the same code runs in tests, in a terminal and under systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


def _address(name: str) -> str | bytes | None:
    """The address named by `$NOTIFY_SOCKET`: a path, or NUL-prefixed bytes for the abstract namespace."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    if name.startswith("/"):
        return name
    return None  # vsock and other forms are not used on our targets


def notify(message: str) -> bool:
    """Send one notification (e.g. `"READY=1\\nSTATUS=running"`); True when it was delivered to systemd.

    Never raises and never blocks: a missing, broken or full socket must not take the pipeline down; it is
    logged at debug level.
    """
    name = os.environ.get(NOTIFY_SOCKET_ENV)
    if not name:
        return False
    address = _address(name)
    if address is None:
        log.debug("unsupported NOTIFY_SOCKET %r", name)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Non-blocking: a receiver that lags (full queue) costs one lost ping, never a stalled pipeline.
            sock.setblocking(False)
            sock.connect(address)
            sock.send(message.encode())
    except OSError as exc:
        log.debug("sd_notify to %r failed: %s", name, exc)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """Tell systemd the service is up; optionally with a status line."""
    return notify("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")


def watchdog() -> bool:
    """Feed the watchdog; call it from the loop whose progress proves the service is alive."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """Tell systemd a clean shutdown has begun, so a slow flush is not mistaken for a hang."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """Set the free-form status line that `systemctl status` shows."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog_interval_s() -> float | None:
    """The watchdog period systemd expects for this process, in seconds, or None when there is none.

    Follows `sd_watchdog_enabled(3)`: `$WATCHDOG_USEC` must be a positive integer, and `$WATCHDOG_PID`, when
    set, must be this process (a child that inherited the environment must not ping for its parent).
    Ping at least twice per period.
    """
    usec = os.environ.get(WATCHDOG_USEC_ENV)
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    pid = os.environ.get(WATCHDOG_PID_ENV)
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return value / 1_000_000.0


class Watchdog:
    """A rate-limited `watchdog()` for hot loops: pings at most every quarter of the watchdog period.

    A detection loop runs tens of times a second; every datagram wakes PID 1, so calling `watchdog()` per
    frame costs the whole machine. Call an instance as often as convenient instead. Without a watchdog
    (`$WATCHDOG_USEC` unset, or for another PID) it sends nothing at all.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        interval = watchdog_interval_s()
        self.min_gap_s: float | None = None if interval is None else interval / 4.0
        self._clock = clock
        self._last: float | None = None

    def __call__(self) -> bool:
        """Ping if due; True when a notification was sent now."""
        if self.min_gap_s is None:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.min_gap_s:
            return False
        self._last = now
        return watchdog()


def _one_line(text: str) -> str:
    """A status value ends at the newline; keep what follows from becoming a separate key."""
    return text.replace("\n", " ")
