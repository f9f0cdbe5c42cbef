"""A cheap, interruptible "does this RTSP camera answer at all?" check before OpenCV opens it.

OpenCV's FFmpeg backend holds one process-wide mutex for the whole of an open. An open of a camera that
accepts the connection and never answers holds it until the open timeout, so every other camera's open
waits in line: with 20 dead cameras a live one waited minutes, and so did shutdown. The probe asks the
camera for `OPTIONS` over a plain socket with its own timeout, in the reader's thread, holding nothing:
dead or hanging cameras fail here, in parallel, and only a camera that answers reaches OpenCV's mutex.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit


class ProbeError(Exception):
    """The camera did not answer an RTSP request in time (the reason is the message)."""


def rtsp_address(url: str) -> tuple[str, int]:
    """Host and port of an `rtsp://` or `rtsps://` URL (554 / 322 by default)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ProbeError(f"no host in {parts.scheme}:// URL")
    default = 322 if parts.scheme.lower() == "rtsps" else 554
    try:
        return parts.hostname, parts.port or default
    except ValueError as exc:  # a port that is not a number
        raise ProbeError(str(exc)) from None


def _public(url: str) -> str:
    """The URL without credentials: the request line must not carry the password in clear."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def probe_rtsp(url: str, timeout_s: float) -> None:
    """Connect and (plain RTSP) send `OPTIONS`; return once the camera answers with an RTSP status line.

    Any status counts, 401 included: the camera is alive and FFmpeg handles the authentication.
    For `rtsps://` only the TCP connection is checked. Raises ProbeError within about `timeout_s`.
    """
    host, port = rtsp_address(url)
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            if urlsplit(url).scheme.lower() == "rtsps":
                return
            sock.sendall(f"OPTIONS {_public(url)} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode("ascii", "replace"))
            reply = b""
            while b"\r\n" not in reply:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(256)
                if not chunk:
                    raise ProbeError("connection closed without an RTSP answer")
                reply += chunk
                if len(reply) > 4096:
                    break
    except TimeoutError:
        raise ProbeError(f"no RTSP answer within {timeout_s:.0f} s") from None
    except OSError as exc:
        raise ProbeError(f"cannot connect: {exc.strerror or exc}") from None
    if not reply.startswith(b"RTSP/"):
        raise ProbeError("the answer is not RTSP")
