"""Signing in and out: /api/login, /api/logout, /api/me.

The session cookie is HttpOnly and SameSite=Strict, so other sites cannot ride on it; the token is also
returned for API clients that send it as a bearer token. Logins are limited per (account, address) and
per address (central/limiter.py); every outcome is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from central.api.context import COOKIE, SIGNED_IN_COOKIE, Ctx, Remote, Viewer, bearer
from central.api.models import Done, LoginBody, Me, Session
from central.auth import LoginLimitedError

router = APIRouter(prefix="/api", tags=["session"])


@router.post("/login", response_model=Session, responses={401: {}, 413: {}, 429: {}})
def login(body: LoginBody, response: Response, ctx: Ctx, remote: Remote) -> Session:
    try:
        result = ctx.auth.login(body.username, body.password, remote)
    except LoginLimitedError:
        ctx.store.audit(body.username, "login_limited", None, None, remote)
        raise HTTPException(429, "too many failed logins; try again later") from None
    if result is None:
        ctx.store.audit(body.username, "login_failed", None, None, remote)
        raise HTTPException(401, "wrong user name or password")
    token, who = result
    ctx.store.audit(who.username, "login", None, who.role, remote)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ctx.auth.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=ctx.http.cookie_secure,
        path="/",
    )
    response.set_cookie(
        SIGNED_IN_COOKIE,
        "1",
        max_age=int(ctx.auth.session_ttl_s),
        samesite="strict",
        secure=ctx.http.cookie_secure,
        path="/",
    )
    return Session(token=token, role=who.role, username=who.username)


@router.post("/logout", response_model=Done)
def logout(request: Request, response: Response, ctx: Ctx) -> Done:
    token = bearer(request)
    if token:
        ctx.auth.logout(token)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(SIGNED_IN_COOKIE, path="/", samesite="strict")
    return Done(status="ok")


@router.get("/me", response_model=Me)
def me(who: Viewer) -> Me:
    return Me(username=who.username, role=who.role)
