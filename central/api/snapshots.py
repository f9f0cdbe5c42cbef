"""Snapshot JPEGs by their sha256; the name is checked against the digest pattern before any file
system access, so no request can reach outside the snapshot directory. A scoped account sees a snapshot
only when an event in its scope links it; every view is audited (who, which, from where)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from central.api.context import Ctx, Remote, Viewer, audit_view
from central.scope import allows
from central.snapshots import SHA256_RE

router = APIRouter(prefix="/api/snapshots", tags=["snapshots"])


@router.get(
    "/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {}},
)
def snapshot(name: str, who: Viewer, ctx: Ctx, remote: Remote) -> FileResponse:
    sha = name.removesuffix(".jpg")
    if not name.endswith(".jpg") or not SHA256_RE.match(sha):
        raise HTTPException(404, "no such snapshot")
    owners = [o for o in ctx.store.snapshot_owners(sha) if allows(who.scope, o[1], o[2])]
    if who.scope is not None and not owners:
        raise HTTPException(404, "no such snapshot")
    path = ctx.store.snapshots.path_for(sha)
    if not path.is_file():
        raise HTTPException(404, "no such snapshot")
    audit_view(ctx, who, "view_snapshot", sha, ",".join(o[0] for o in owners[:5]) or None, remote)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
