"""What the routers share: the aggregator's parts (`ApiContext`) and the typed dependencies that resolve
the caller (`Viewer`, `Operator`, `Admin`) and the context.

Every endpoint except /healthz and /api/login needs a principal: `Authorization: Bearer <token>` (a login
session or a static API token) or the HttpOnly `rw_session` cookie that /api/login sets. A handler states
the role it needs in its signature (`who: Operator`), so the rule is visible where the endpoint is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from central.auth import Authenticator, Principal
from central.clipfetch import ClipFiles
from central.config import HttpSettings, Role
from central.ingest import PublishResult
from central.live import LiveHub
from central.scope import allows
from central.store import Store
from contract.commands import CommandName

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
COOKIE = "rw_session"
# Readable by the page, holds nothing: it tells the dashboard a session may exist, so a signed-out page
# shows the login without asking /api/me (whose 401 every browser logs as a console error).
SIGNED_IN_COOKIE = "rw_signed_in"

SendCommand = Callable[[str, str, CommandName, str], tuple[str, PublishResult]]  # node, camera, name, by
AskClip = Callable[[str, str, str, str], tuple[str, PublishResult]]  # node, camera, event id, by


@dataclass(frozen=True)
class ApiContext:
    """The parts of the aggregator the API uses; `status` supplies ingest counters for /api/status,
    `command` sends a command to a camera over MQTT, `write_failure` says why the store refuses writes
    (all three absent in tests of the API alone)."""

    store: Store
    auth: Authenticator
    hub: LiveHub
    http: HttpSettings
    status: Callable[[], dict[str, Any]] | None = None
    command: SendCommand | None = None
    web_dir: Path = WEB_DIR
    heartbeat_s: float = 15.0
    write_failure: Callable[[], str | None] | None = None
    ask_clip: AskClip | None = None  # upload_clip (central/api/clips.py)
    clips: ClipFiles | None = None


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


def remote(request: Request) -> str:
    return request.client.host if request.client else "?"


Remote = Annotated[str, Depends(remote)]


def bearer(request: Request) -> str | None:
    """The session or API token of a request: the Authorization header first, else the cookie."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get(COOKIE)


def principal(request: Request, ctx: Ctx) -> Principal:
    token = bearer(request)
    who = ctx.auth.resolve(token) if token else None
    if who is None:
        raise HTTPException(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    return who


def require(role: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets through principals with at least `role` (403 otherwise)."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.can(role):
            raise HTTPException(403, f"needs the {role} role")
        return who

    return check


def unscoped(who: Principal) -> None:
    """Station-wide views (audit log, dead letters) are for accounts without a scope."""
    if who.scope is not None:
        raise HTTPException(403, "needs an account without a camera scope")


def visible_event(ctx: ApiContext, who: Principal, event_id: str) -> dict[str, Any]:
    """The event if it exists and is in the caller's scope, else 404 (out of scope looks like absent,
    so a scoped account cannot probe other villages' event ids). The clip route uses this too."""
    event = ctx.store.get_event(event_id)
    if event is None or not allows(who.scope, str(event.get("node")), str(event.get("camera"))):
        raise HTTPException(404, "no such event")
    return event


def audit_view(
    ctx: ApiContext, who: Principal, action: str, target: str, detail: str | None, remote: str
) -> None:
    """Record that `who` viewed or exported something (snapshot, clip, export): the commune's rules say
    what is seen is used for security only, so every view is accountable."""
    ctx.store.audit(who.username, action, target, detail, remote)


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
