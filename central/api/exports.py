"""Exports: the events that match a search as CSV, for a report to the commune.

An export takes data off the station, so it is audited (who, which filter, how many rows, from where) and
honours the caller's scope like the list it mirrors. One page of at most EXPORT_MAX rows: a larger report
is several exports with narrower times, which also keeps the audit log specific.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from fastapi import APIRouter, Query
from fastapi.responses import Response

from central.api.context import Ctx, Remote, Viewer, audit_view
from central.api.events import epoch
from central.queries import EventFilter

router = APIRouter(prefix="/api/export", tags=["exports"])
EXPORT_MAX = 10000
COLUMNS = ("ts", "node", "camera", "kind", "phase", "rule", "classes", "text_vi", "ack_by", "event_id")


@router.get("/events.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_events(
    who: Viewer,
    ctx: Ctx,
    remote: Remote,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    camera: str | None = None,
    node: str | None = None,
    limit: int = Query(default=EXPORT_MAX, ge=1, le=EXPORT_MAX),
) -> Response:
    kind, camera, node = (v or None for v in (kind, camera, node))
    flt = EventFilter(epoch(since), epoch(until), kind, camera, node, scope=who.scope)
    items, total = ctx.store.list_events(flt, limit, 0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for e in items:
        ack = e.get("ack") or {}
        texts = e.get("texts") or {}
        writer.writerow(
            (e["ts"], e["node"], e["camera"], e["kind"], e["phase"], e["rule"], " ".join(e["classes"]),
             texts.get("vi", ""), ack.get("by", ""), e["event_id"])
        )  # fmt: skip
    detail = (
        f"rows={len(items)} of {total}; since={since} until={until} kind={kind} camera={camera} node={node}"
    )
    audit_view(ctx, who, "export", "events.csv", detail, remote)
    headers = {
        "Content-Disposition": 'attachment; filename="roadwatch-events.csv"',
        "Cache-Control": "no-store",
    }
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
