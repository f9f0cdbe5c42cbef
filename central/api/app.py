"""The app factory: one FastAPI app from the routers of each resource, the middleware and the dashboard.

Middleware order matters: the body limit is outermost after the security headers, so an oversized body
is refused before routing, authentication or parsing. Swagger UI (/docs) is off unless `http.api_docs`:
it loads from a public CDN, which an offline station cannot reach and the dashboard's policy forbids;
/openapi.json is always served, with the response schemas of every endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from central.api import admin, clips, events, exports, feed, nodes, session, snapshots
from central.api.context import ApiContext, Ctx
from central.api.middleware import BodyLimit, SecurityHeaders
from central.api.models import Done
from central.contract_api import contract_router

PLACEHOLDER = (
    "<!doctype html><html lang=vi><meta charset=utf-8><title>Roadwatch</title>"
    "<p>Roadwatch central is running. The dashboard files are not installed; the API is described at "
    "<a href=/openapi.json>/openapi.json</a>.</p></html>"
)

pages = APIRouter()


@pages.get("/healthz", response_model=Done, tags=["health"], responses={503: {}})
def healthz(ctx: Ctx) -> Done:
    failure = ctx.write_failure() if ctx.write_failure is not None else None
    if failure is not None:  # up but storing nothing is not healthy
        raise HTTPException(503, f"store writes failing: {failure[:200]}")
    return Done(status="ok")


@pages.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(ctx: Ctx) -> Response:
    page = ctx.web_dir / "index.html"
    if page.is_file():
        return FileResponse(
            page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )
    return HTMLResponse(PLACEHOLDER)


def make_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.hub.bind(asyncio.get_running_loop())
        yield

    docs = ctx.http.api_docs
    app = FastAPI(
        title="Roadwatch central",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/docs/oauth2-redirect" if docs else None,
    )
    app.state.ctx = ctx
    app.add_middleware(BodyLimit, max_bytes=ctx.http.max_body_kb * 1024)
    app.add_middleware(SecurityHeaders, docs=docs)  # added last: outermost, so a 413 carries it too
    routers = (
        pages,
        session.router,
        events.router,
        exports.router,
        snapshots.router,
        clips.router,
        nodes.router,
        admin.router,
        feed.router,
    )
    for router in (*routers, contract_router()):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=ctx.web_dir / "static", check_dir=False), name="static")
    return app
