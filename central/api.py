"""The HTTP API and dashboard server (FastAPI; the OpenAPI document is at /openapi.json).

Every endpoint except /healthz needs a principal: `Authorization: Bearer <token>` (a login session or a
static API token) or the HttpOnly `rw_session` cookie that /api/login sets (SameSite=Strict, so other
sites cannot ride on it). The live feed is server-sent events because EventSource reconnects by itself
and passes through proxies; it authenticates by the cookie since EventSource cannot set headers.
Handlers that touch SQLite are plain `def`s: FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.auth import Authenticator, Principal
from central.config import HttpSettings, Role
from central.contract_api import contract_router
from central.forward import deadletters, requeue
from central.ingest import PublishResult
from central.live import LiveHub
from central.queries import EventFilter
from central.snapshots import SHA256_RE
from central.store import Store
from contract.commands import CommandName

WEB_DIR = Path(__file__).resolve().parent / "web"
COOKIE = "rw_session"
# Readable by the page, holds nothing: it tells the dashboard a session may exist, so a signed-out page
# shows the login without asking /api/me (whose 401 every browser logs as a console error).
SIGNED_IN_COOKIE = "rw_signed_in"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"  # node and camera ids of the contract; nothing that could be a topic
# the dashboard is served from here only (no CDN: the station may be offline), so nothing else may run
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PLACEHOLDER = (
    "<!doctype html><html lang=vi><meta charset=utf-8><title>Roadwatch</title>"
    "<p>Roadwatch central is running. The dashboard files are not installed; the API is at "
    "<a href=/docs>/docs</a>.</p></html>"
)


class SecurityHeaders:
    """Pure ASGI middleware (streams SSE untouched) adding the browser hardening headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(("/docs", "/redoc"))  # they load their own assets

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                if not docs:
                    headers.setdefault("Content-Security-Policy", CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AckBody(BaseModel):
    note: str = Field(default="", max_length=500)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _remote(request: Request) -> str:
    return request.client.host if request.client else "?"


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get(COOKIE)


def create_app(
    store: Store,
    auth: Authenticator,
    hub: LiveHub,
    *,
    http: HttpSettings,
    status: Callable[[], dict[str, Any]] | None = None,
    command: Callable[[str, str, CommandName, str], tuple[str, PublishResult]] | None = None,
    web_dir: Path = WEB_DIR,
    heartbeat_s: float = 15.0,
    write_failure: Callable[[], str | None] | None = None,
) -> FastAPI:
    """Build the app; `status` supplies ingest counters for /api/status, `command` sends a command to a
    camera (node, camera, command, by) over MQTT, `write_failure` says why the store refuses writes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.bind(asyncio.get_running_loop())
        yield

    app = FastAPI(title="Roadwatch central", version="1", lifespan=lifespan)

    app.add_middleware(SecurityHeaders)
    app.include_router(contract_router())

    def principal(request: Request) -> Principal:
        token = _token(request)
        who = auth.resolve(token) if token else None
        if who is None:
            raise HTTPException(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
        return who

    authenticated = Depends(principal)

    def role(required: Role) -> Callable[[Principal], Principal]:
        def check(who: Principal = authenticated) -> Principal:
            if not who.can(required):
                raise HTTPException(403, f"needs the {required} role")
            return who

        return check

    as_viewer, as_operator, as_admin = (
        Depends(role("viewer")),
        Depends(role("operator")),
        Depends(role("admin")),
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        failure = write_failure() if write_failure is not None else None
        if failure is not None:  # up but storing nothing is not healthy
            raise HTTPException(503, f"store writes failing: {failure[:200]}")
        return {"status": "ok"}

    @app.post("/api/login")
    def login(body: LoginBody, request: Request, response: Response) -> dict[str, str]:
        remote = _remote(request)
        if auth.limited([f"user:{body.username}", f"addr:{remote}"], time.time()):
            store.audit(body.username, "login_limited", None, None, remote)
            raise HTTPException(429, "too many failed logins; try again later")
        result = auth.login(body.username, body.password, remote)
        if result is None:
            store.audit(body.username, "login_failed", None, None, remote)
            raise HTTPException(401, "wrong user name or password")
        token, who = result
        store.audit(who.username, "login", None, who.role, remote)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(auth.session_ttl_s),
            httponly=True,
            samesite="strict",
            secure=http.cookie_secure,
            path="/",
        )
        response.set_cookie(
            SIGNED_IN_COOKIE,
            "1",
            max_age=int(auth.session_ttl_s),
            samesite="strict",
            secure=http.cookie_secure,
            path="/",
        )
        return {"token": token, "role": who.role, "username": who.username}

    @app.post("/api/logout")
    def logout(request: Request, response: Response) -> dict[str, str]:
        token = _token(request)
        if token:
            auth.logout(token)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        response.delete_cookie(SIGNED_IN_COOKIE, path="/", samesite="strict")
        return {"status": "ok"}

    @app.get("/api/me")
    def me(who: Principal = as_viewer) -> dict[str, str]:
        return {"username": who.username, "role": who.role}

    @app.get("/api/events")
    def list_events(
        who: Principal = as_viewer,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        camera: str | None = None,
        node: str | None = None,
        cls: str | None = None,
        phase: str | None = None,
        acknowledged: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        kind, camera, node, cls, phase = (v or None for v in (kind, camera, node, cls, phase))  # "" = any
        flt = EventFilter(_epoch(since), _epoch(until), kind, camera, node, cls, phase, acknowledged)
        items, total = store.list_events(flt, limit, offset)
        return {"items": items, "total": total}

    @app.get("/api/events/{event_id}")
    def get_event(event_id: str, who: Principal = as_viewer) -> dict[str, Any]:
        event = store.get_event(event_id)
        if event is None:
            raise HTTPException(404, "no such event")
        return event

    @app.post("/api/events/{event_id}/ack")
    def ack_event(
        event_id: str, body: AckBody, request: Request, who: Principal = as_operator
    ) -> dict[str, Any]:
        event = store.acknowledge(event_id, who.username, body.note, time.time(), _remote(request))
        if event is None:
            raise HTTPException(404, "no such event")
        hub.publish("ack", event)
        return event

    @app.get("/api/snapshots/{name}", response_class=FileResponse)
    def snapshot(name: str, who: Principal = as_viewer) -> FileResponse:
        sha = name.removesuffix(".jpg")
        if not name.endswith(".jpg") or not SHA256_RE.match(sha):
            raise HTTPException(404, "no such snapshot")
        path = store.snapshots.path_for(sha)
        if not path.is_file():
            raise HTTPException(404, "no such snapshot")
        return FileResponse(
            path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"}
        )

    @app.get("/api/counts")
    def counts(
        who: Principal = as_viewer,
        since: datetime | None = None,
        until: datetime | None = None,
        camera: str | None = None,
        rule: str | None = None,
    ) -> dict[str, Any]:
        return {"items": store.counts(_epoch(since), _epoch(until), camera or None, rule or None)}

    @app.get("/api/nodes")
    def nodes(who: Principal = as_viewer) -> dict[str, Any]:
        return {"items": store.nodes()}

    @app.post("/api/nodes/{node}/cameras/{camera}/take-reference", status_code=202)
    def take_reference(
        node: Annotated[str, FastApiPath(pattern=ID_PATTERN)],
        camera: Annotated[str, FastApiPath(pattern=ID_PATTERN)],
        request: Request,
        who: Principal = as_admin,
    ) -> dict[str, str]:
        """Tell a camera to accept its present view as the health reference (after re-aiming it)."""
        if command is None:
            raise HTTPException(503, "commands are not available")
        known = store.node(node)
        if known is None or camera not in {c["camera"] for c in known["cameras"]}:
            raise HTTPException(404, "no such camera")
        if known["state"] != "online":
            raise HTTPException(409, f"node {node} is {known['state']}: the command would be lost")
        command_id, result = command(node, camera, "take_reference", who.username)
        if result == "failed":
            raise HTTPException(503, "the command could not be published")
        store.audit(who.username, "take_reference", f"{node}/{camera}", command_id, _remote(request))
        return {"status": result, "command_id": command_id}

    @app.get("/api/status")
    def ingest_status(who: Principal = as_viewer) -> dict[str, Any]:
        out: dict[str, Any] = dict(status()) if status is not None else {}
        out["events_stored"] = store.count_events()
        out["sequence_gaps"] = store.open_gaps()
        return out

    @app.get("/api/webhooks/deadletters")
    def list_deadletters(
        who: Principal = as_admin,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        items, total = deadletters(store, limit, offset)
        return {"items": items, "total": total}

    @app.post("/api/webhooks/deadletters/{item_id}/requeue")
    def requeue_deadletter(item_id: int, request: Request, who: Principal = as_admin) -> dict[str, str]:
        if not requeue(store, item_id):
            raise HTTPException(404, "no such dead letter")
        store.audit(who.username, "webhook_requeue", str(item_id), None, _remote(request))
        return {"status": "requeued"}

    @app.get("/api/audit")
    def audit(
        who: Principal = as_admin,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        items, total = store.audit_log(limit, offset)
        return {"items": items, "total": total}

    @app.get("/api/stream")
    async def stream(request: Request, who: Principal = as_viewer) -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            queue = hub.subscribe()
            try:
                yield "retry: 2000\n: connected\n\n"
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": heartbeat\n\n"
            finally:
                hub.unsubscribe(queue)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> Response:
        page = web_dir / "index.html"
        if page.is_file():
            return FileResponse(
                page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
            )
        return HTMLResponse(PLACEHOLDER)

    app.mount("/static", StaticFiles(directory=web_dir / "static", check_dir=False), name="static")
    return app
