"""Nodes and their cameras, counts of line crossings, ingest status, and camera commands.

A scoped account sees only its nodes and cameras, counts of its cameras, and no station-wide ingest
counters (they would tell it about cameras it may not see)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from central.api.context import Admin, Ctx, Remote, Viewer
from central.api.events import epoch
from central.api.models import CommandSent, CountList, NodeId, NodeList, Status
from central.scope import allows

router = APIRouter(prefix="/api", tags=["nodes"])


@router.get("/nodes", response_model=NodeList)
def nodes(who: Viewer, ctx: Ctx) -> dict[str, Any]:
    items = ctx.store.nodes()
    if who.scope is not None:
        items = [n for n in (who.scope.trim_node(i) for i in items) if n is not None]
    return {"items": items}


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
    return {"items": ctx.store.counts(epoch(since), epoch(until), camera or None, rule or None, who.scope)}


@router.get("/status", response_model=Status)
def ingest_status(who: Viewer, ctx: Ctx) -> dict[str, Any]:
    scope = who.scope
    out: dict[str, Any] = dict(ctx.status()) if ctx.status is not None and scope is None else {}
    out["events_stored"] = ctx.store.count_events(scope)
    gaps = ctx.store.open_gaps()
    out["sequence_gaps"] = gaps if scope is None else [g for g in gaps if g["node"] in scope.nodes]
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
    cameras = {c["camera"] for c in known["cameras"]} if known is not None else set()
    if known is None or camera not in cameras or not allows(who.scope, node, camera):
        raise HTTPException(404, "no such camera")
    if known["state"] != "online":
        raise HTTPException(409, f"node {node} is {known['state']}: the command would be lost")
    command_id, result = ctx.command(node, camera, "take_reference", who.username)
    if result == "failed":
        raise HTTPException(503, "the command could not be published")
    ctx.store.audit(who.username, "take_reference", f"{node}/{camera}", command_id, remote)
    return CommandSent(status=result, command_id=command_id)
