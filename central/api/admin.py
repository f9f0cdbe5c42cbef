"""Admin views: webhook dead letters (and requeueing them) and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from central.api.context import Admin, Ctx, Remote
from central.api.models import AuditPage, DeadLetterPage, Done, Limit, Offset, RowId
from central.forwardstate import deadletters, requeue

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/webhooks/deadletters", response_model=DeadLetterPage)
def list_deadletters(who: Admin, ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    items, total = deadletters(ctx.store, limit, offset)
    return {"items": items, "total": total}


@router.post("/webhooks/deadletters/{item_id}/requeue", response_model=Done, responses={404: {}})
def requeue_deadletter(item_id: RowId, who: Admin, ctx: Ctx, remote: Remote) -> Done:
    """Give a dead letter a fresh set of attempts."""
    if not requeue(ctx.store, item_id):
        raise HTTPException(404, "no such dead letter")
    ctx.store.audit(who.username, "webhook_requeue", str(item_id), None, remote)
    return Done(status="requeued")


@router.get("/audit", response_model=AuditPage)
def audit(who: Admin, ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    items, total = ctx.store.audit_log(limit, offset)
    return {"items": items, "total": total}
