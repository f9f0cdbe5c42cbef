"""The live feed: server-sent events of new events, acknowledgements and node changes.

Server-sent events because EventSource reconnects by itself and passes through proxies; it
authenticates by the session cookie since EventSource cannot set headers. A heartbeat comment every
`heartbeat_s` keeps proxies from closing an idle stream and notices clients that went away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from central.api.context import Ctx, Viewer

router = APIRouter(prefix="/api", tags=["live"])


@router.get(
    "/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}}
)
async def stream(request: Request, who: Viewer, ctx: Ctx) -> StreamingResponse:
    hub, heartbeat_s = ctx.hub, ctx.heartbeat_s

    async def frames() -> AsyncIterator[str]:
        queue = hub.subscribe()
        try:
            yield "retry: 2000\n: connected\n\n"
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": heartbeat\n\n"
        finally:
            hub.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
