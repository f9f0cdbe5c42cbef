"""Admin views: webhook dead letters (and requeueing them) and the audit log.

Both are station-wide, so they need an admin without a camera scope. The audit log is append-only from
the API: there is a route to read it and none to change or delete an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from central.api.context import Admin, Ctx, Remote, unscoped
from central.api.events import epoch
from central.api.models import AuditPage, DeadLetterPage, Done, Limit, Offset, RowId
from central.forwardstate import deadletters, requeue
from central.queries import AuditFilter

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/webhooks/deadletters", response_model=DeadLetterPage)
def list_deadletters(who: Admin, ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    unscoped(who)
    items, total = deadletters(ctx.store, limit, offset)
    return {"items": items, "total": total}


@router.post("/webhooks/deadletters/{item_id}/requeue", response_model=Done, responses={404: {}})
def requeue_deadletter(item_id: RowId, who: Admin, ctx: Ctx, remote: Remote) -> Done:
    """Give a dead letter a fresh set of attempts."""
    unscoped(who)
    if not requeue(ctx.store, item_id):
        raise HTTPException(404, "no such dead letter")
    ctx.store.audit(who.username, "webhook_requeue", str(item_id), None, remote)
    return Done(status="requeued")


@router.get("/audit", response_model=AuditPage)
def audit(
    who: Admin,
    ctx: Ctx,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Newest first; each text filter is exact and an empty one means any."""
    unscoped(who)
    flt = AuditFilter(actor or None, action or None, target or None, epoch(since), epoch(until))
    items, total = ctx.store.audit_log(limit, offset, flt)
    return {"items": items, "total": total}
