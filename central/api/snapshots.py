"""Snapshot JPEGs by their sha256; the name is checked against the digest pattern before any file
system access, so no request can reach outside the snapshot directory."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from central.api.context import Ctx, Viewer
from central.snapshots import SHA256_RE

router = APIRouter(prefix="/api/snapshots", tags=["snapshots"])


@router.get(
    "/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {}},
)
def snapshot(name: str, who: Viewer, ctx: Ctx) -> FileResponse:
    sha = name.removesuffix(".jpg")
    if not name.endswith(".jpg") or not SHA256_RE.match(sha):
        raise HTTPException(404, "no such snapshot")
    path = ctx.store.snapshots.path_for(sha)
    if not path.is_file():
        raise HTTPException(404, "no such snapshot")
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"}
    )
