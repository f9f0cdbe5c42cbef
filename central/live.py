"""Fan-out of live updates from the writer thread to the SSE clients of the HTTP server.

The writer runs in a plain thread and the SSE handlers in uvicorn's asyncio loop, so `publish` hands each
message over with `call_soon_threadsafe`. Each client has a bounded queue: a phone on a bad link that
stops reading loses its oldest updates (it reloads the list on reconnect) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

CLIENT_QUEUE_MAX = 1000


class LiveHub:
    """Thread-safe publish; subscribe/unsubscribe from the event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[str]] = set()
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once the HTTP server's loop runs; publishes before that are dropped (no client yet)."""
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=CLIENT_QUEUE_MAX)
        with self._lock:
            self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            self._clients.discard(queue)

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """Send `event: <name>` with `data` as JSON to every client; never blocks the caller."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            if not self._clients:
                return
            clients = list(self._clients)
        frame = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"
        try:
            loop.call_soon_threadsafe(self._deliver, clients, frame)
        except RuntimeError:  # loop closed between the check and the call
            return

    @staticmethod
    def _deliver(clients: list[asyncio.Queue[str]], frame: str) -> None:
        for queue in clients:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(frame)
