"""Events: the filtered, paged list, one event, and acknowledging one (operators and admins)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, HTTPException

from central.api.context import Ctx, Operator, Remote, Viewer
from central.api.models import AckBody, Event, EventPage, Limit, Offset
from central.queries import EventFilter

router = APIRouter(prefix="/api/events", tags=["events"])


def epoch(value: datetime | None) -> float | None:
    """Seconds since the epoch; a time without a zone is UTC."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


@router.get("", response_model=EventPage)
def list_events(
    who: Viewer,
    ctx: Ctx,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    camera: str | None = None,
    node: str | None = None,
    cls: str | None = None,
    phase: str | None = None,
    acknowledged: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Newest first; an empty text filter means any."""
    kind, camera, node, cls, phase = (v or None for v in (kind, camera, node, cls, phase))
    flt = EventFilter(epoch(since), epoch(until), kind, camera, node, cls, phase, acknowledged)
    items, total = ctx.store.list_events(flt, limit, offset)
    return {"items": items, "total": total}


@router.get("/{event_id}", response_model=Event, responses={404: {}})
def get_event(event_id: str, who: Viewer, ctx: Ctx) -> dict[str, Any]:
    event = ctx.store.get_event(event_id)
    if event is None:
        raise HTTPException(404, "no such event")
    return event


@router.post("/{event_id}/ack", response_model=Event, responses={404: {}})
def ack_event(event_id: str, body: AckBody, who: Operator, ctx: Ctx, remote: Remote) -> dict[str, Any]:
    """Acknowledge an event (the latest acknowledgement wins); audited and shown live."""
    event = ctx.store.acknowledge(event_id, who.username, body.note, time.time(), remote)
    if event is None:
        raise HTTPException(404, "no such event")
    ctx.hub.publish("ack", event)
    return event
