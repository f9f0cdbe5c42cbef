"""Nodes and their cameras, counts of line crossings, ingest status, and camera commands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from central.api.context import Admin, Ctx, Remote, Viewer
from central.api.events import epoch
from central.api.models import CommandSent, CountList, NodeId, NodeList, Status

router = APIRouter(prefix="/api", tags=["nodes"])


@router.get("/nodes", response_model=NodeList)
def nodes(who: Viewer, ctx: Ctx) -> dict[str, Any]:
    return {"items": ctx.store.nodes()}


@router.get("/counts", response_model=CountList)
def counts(
    who: Viewer,
    ctx: Ctx,
    since: datetime | None = None,
    until: datetime | None = None,
    camera: str | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """Line crossings per hour, node, camera, line rule, direction and class."""
    return {"items": ctx.store.counts(epoch(since), epoch(until), camera or None, rule or None)}


@router.get("/status", response_model=Status)
def ingest_status(who: Viewer, ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = dict(ctx.status()) if ctx.status is not None else {}
    out["events_stored"] = ctx.store.count_events()
    out["sequence_gaps"] = ctx.store.open_gaps()
    return out


@router.post(
    "/nodes/{node}/cameras/{camera}/take-reference",
    status_code=202,
    response_model=CommandSent,
    responses={404: {}, 409: {}, 503: {}},
)
def take_reference(node: NodeId, camera: NodeId, who: Admin, ctx: Ctx, remote: Remote) -> CommandSent:
    """Tell a camera to accept its present view as the health reference (after re-aiming it)."""
    if ctx.command is None:
        raise HTTPException(503, "commands are not available")
    known = ctx.store.node(node)
    if known is None or camera not in {c["camera"] for c in known["cameras"]}:
        raise HTTPException(404, "no such camera")
    if known["state"] != "online":
        raise HTTPException(409, f"node {node} is {known['state']}: the command would be lost")
    command_id, result = ctx.command(node, camera, "take_reference", who.username)
    if result == "failed":
        raise HTTPException(503, "the command could not be published")
    ctx.store.audit(who.username, "take_reference", f"{node}/{camera}", command_id, remote)
    return CommandSent(status=result, command_id=command_id)
