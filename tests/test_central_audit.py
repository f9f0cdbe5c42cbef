"""Audited viewing (issue 14): snapshot views, exports and acknowledgements are written to the audit log
with who, what, when and from where; admins list and filter it; the API cannot change or delete it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from test_central_scopes import (
    ENGINES,
    IN_SCOPE,
    OUT_OF_SCOPE,
    World,
    _app_routes,
    _login,
    _walk,
    serve_world,
)

from central.api import ApiContext, make_app
from central.auth import Authenticator
from central.config import HttpSettings
from central.live import LiveHub


@pytest.fixture(params=ENGINES)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    yield from serve_world(request, tmp_path)


def _audit(w: World, h: dict[str, str], **filters: str) -> list[dict[str, object]]:
    r = w.client.get("/api/audit", params=filters, headers=h)
    assert r.status_code == 200, r.text
    items: list[dict[str, object]] = r.json()["items"]
    assert r.json()["total"] == len(items)
    return items


def test_snapshot_views_exports_and_acks_are_audited(world: World) -> None:
    viewer, operator, admin = (_login(world, u) for u in ("viewer", "operator", "admin"))
    seen, hidden = world.snaps[IN_SCOPE[0]], world.snaps[OUT_OF_SCOPE[0]]
    assert world.client.get(f"/api/snapshots/{seen}.jpg", headers=viewer).status_code == 200
    assert world.client.get(f"/api/snapshots/{hidden}.jpg", headers=viewer).status_code == 404
    assert world.client.get("/api/export/events.csv?kind=line_crossing", headers=viewer).status_code == 200
    event_id = world.events[IN_SCOPE[1]]
    assert world.client.post(f"/api/events/{event_id}/ack", json={"note": "ok"}, headers=operator).is_success
    views = _audit(world, admin, action="view_snapshot")
    assert [(v["actor"], v["target"], v["detail"], v["remote"]) for v in views] == [
        ("viewer", seen, world.events[IN_SCOPE[0]], "127.0.0.1")
    ]
    (export,) = _audit(world, admin, action="export")
    assert export["actor"] == "viewer" and "rows=3 of 3" in str(export["detail"])
    assert "kind=line_crossing" in str(export["detail"])
    (ack,) = _audit(world, admin, action="ack")
    assert (ack["actor"], ack["target"], ack["detail"], ack["remote"]) == (
        "operator",
        event_id,
        "ok",
        "127.0.0.1",
    )
    assert {v["action"] for v in _audit(world, admin, actor="viewer")} == {"login", "view_snapshot", "export"}
    assert _audit(world, admin, target=seen) == views
    assert _audit(world, admin, since="2099-01-01T00:00:00Z") == []
    assert all(str(v["at"]).endswith("Z") for v in _audit(world, admin))


def test_the_audit_log_is_append_only_from_the_api(world: World) -> None:
    app = make_app(ApiContext(world.store, Authenticator([], [], 60), LiveHub(), HttpSettings()))
    audit_routes = [r for r in _walk(app.routes) if isinstance(r, APIRoute) and "audit" in r.path]
    assert [(sorted(r.methods or ()), r.path) for r in audit_routes] == [(["GET"], "/api/audit")]
    admin = _login(world, "admin")
    before = _audit(world, admin)
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        for path in ("/api/audit", f"/api/audit/{before[0]['id']}"):
            r = world.client.request(method, path, headers=admin, json={})
            assert r.status_code in (404, 405), (method, path, r.status_code)
    assert _audit(world, admin) == before


@pytest.mark.parametrize("user", ["viewer", "operator"])
def test_only_admins_read_the_audit_log(world: World, user: str) -> None:
    assert world.client.get("/api/audit", headers=_login(world, user)).status_code == 403
    assert ("GET", "/api/audit") in _app_routes(world)
