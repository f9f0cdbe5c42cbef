"""Fan-out of live updates from the writer thread to the SSE clients of the HTTP server.

The writer runs in a plain thread and the SSE handlers in uvicorn's asyncio loop, so `publish` hands each
message over with `call_soon_threadsafe`. Each client has a bounded queue: a phone on a bad link that
stops reading loses its oldest updates (it reloads the list on reconnect) instead of growing memory.
A client may subscribe with a `view` (a scoped account's, central/scope.py): each message is passed
through it and sent only when it returns something, so a scoped feed never carries an out-of-scope event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CLIENT_QUEUE_MAX = 1000
View = Callable[[str, dict[str, Any]], dict[str, Any] | None]


class LiveHub:
    """Thread-safe publish; subscribe/unsubscribe from the event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[asyncio.Queue[str], View | None] = {}
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once the HTTP server's loop runs; publishes before that are dropped (no client yet)."""
        self._loop = loop

    def subscribe(self, view: View | None = None) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=CLIENT_QUEUE_MAX)
        with self._lock:
            self._clients[queue] = view
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            self._clients.pop(queue, None)

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
            clients = list(self._clients.items())
        whole = _frame(name, data)
        out: list[tuple[asyncio.Queue[str], str]] = []
        for queue, view in clients:
            shown = data if view is None else view(name, data)
            if shown is not None:
                out.append((queue, whole if shown is data else _frame(name, shown)))
        if not out:
            return
        try:
            loop.call_soon_threadsafe(self._deliver, out)
        except RuntimeError:  # loop closed between the check and the call
            return

    @staticmethod
    def _deliver(out: list[tuple[asyncio.Queue[str], str]]) -> None:
        for queue, frame in out:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(frame)


def _frame(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"
