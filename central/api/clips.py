"""Event video clips: ask the node for one (`POST`), then play it (`GET`, `video/mp4`, Range requests).

The clip is fetched from the node only on request (a rural uplink carries no more); both routes go
through `visible_event`, so an event outside the caller's scope looks absent, and every view is audited.
Until the clip is stored the GET answers 404 with its state (requested, pending, receiving, missing,
unsupported, rejected, expired) and the reason, which the dashboard shows while it polls. A stored clip
says its codec (`codec`, `plays_in_browser`; the GET's `X-Clip-Codec` header): an H.265 camera gives H.265
clips, which most browsers cannot play, so the dashboard offers those for download.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, JSONResponse

from central.api.context import Ctx, Operator, Remote, Viewer, audit_view, visible_event
from central.api.models import ClipStatus
from central.mp4codec import mp4_codec, plays_in_browser

router = APIRouter(prefix="/api/events", tags=["clips"])


def _state(ctx: Ctx, event_id: str) -> dict[str, Any]:
    row = ctx.store.clip(event_id)
    if row is None:
        return {"state": "none", "reason": "no clip was requested"}
    path = ctx.clips.path_for(row.sha256) if ctx.clips is not None and row.sha256 else None
    codec = mp4_codec(path) if row.state == "ready" and path is not None else ""
    return {
        "state": row.state,
        "reason": row.reason,
        "bytes": row.bytes,
        "duration_s": row.duration_s,
        "start_epoch": row.start_epoch,
        "codec": codec,
        "plays_in_browser": plays_in_browser(codec),
    }


@router.post(
    "/{event_id}/clip", status_code=202, response_model=ClipStatus, responses={404: {}, 409: {}, 503: {}}
)
def request_clip(event_id: str, who: Operator, ctx: Ctx, remote: Remote) -> dict[str, Any]:
    """Ask the event's node to upload its clip; a clip already stored is not fetched again."""
    event = visible_event(ctx, who, event_id)
    node, camera = str(event["node"]), str(event["camera"])
    row = ctx.store.clip(event_id)
    if row is not None and row.state == "ready":
        return _state(ctx, event_id)
    if ctx.ask_clip is None:
        raise HTTPException(503, "commands are not available")
    known = ctx.store.node(node)
    if known is None or known["state"] != "online":
        state = known["state"] if known is not None else "unknown"
        raise HTTPException(409, f"node {node} is {state}: the request would be lost")
    ctx.store.clip_requested(event_id, node, time.time())
    command_id, result = ctx.ask_clip(node, camera, event_id, who.username)
    if result == "failed":
        raise HTTPException(503, "the request could not be published")
    ctx.store.audit(who.username, "request_clip", event_id, command_id, remote)
    return {**_state(ctx, event_id), "command_id": command_id}


@router.get(
    "/{event_id}/clip",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 404: {}},
)
def clip(event_id: str, who: Viewer, ctx: Ctx, remote: Remote) -> Any:
    visible_event(ctx, who, event_id)
    row = ctx.store.clip(event_id)
    path = (
        ctx.clips.path_for(row.sha256) if ctx.clips is not None and row is not None and row.sha256 else None
    )
    if row is None or row.state != "ready" or path is None or not path.is_file():
        return JSONResponse(_state(ctx, event_id), status_code=404)
    audit_view(ctx, who, "view_clip", event_id, row.sha256, remote)
    headers = {"Cache-Control": "private, no-store", "X-Clip-Codec": mp4_codec(path) or "unknown"}
    return FileResponse(path, media_type="video/mp4", headers=headers)
