"""Scoped accounts (issue 14): every API route, for a scoped viewer and a scoped operator.

The routes are enumerated from the app, so a new route without a scope decision in ROUTES fails
`test_every_route_has_a_scope_decision`. The scope is n1/gate plus all of n2; n1/market is outside.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Postgres
from fastapi.routing import APIRoute
from test_central_support import make_event, serve_app

from central.api import ApiContext, make_app
from central.auth import Authenticator
from central.config import Account, HttpSettings
from central.ingest import PublishResult, event_row
from central.live import LiveHub
from central.scope import ScopeSettings
from central.store import Store

T0 = 1_795_000_000.0
SCOPE = ScopeSettings(cameras=["n1/gate", "n2/*"])
IN_SCOPE = (("n1", "gate"), ("n2", "school"), ("n2", "well"))
OUT_OF_SCOPE = (("n1", "market"), ("n3", "gate"))


def _hash(password: str) -> str:
    """A cheap pbkdf2 hash: these tests are about scopes, not password hashing."""
    salt = b"scope-test-salt!"
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    return f"pbkdf2_sha256$1000${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass
class World:
    client: httpx.Client
    store: Store
    hub: LiveHub
    events: dict[tuple[str, str], str]  # (node, camera) -> event id
    snaps: dict[tuple[str, str], str]  # (node, camera) -> snapshot sha


ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=ENGINES)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    yield from serve_world(request, tmp_path)


def serve_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A served app over a seeded store (SQLite or PostgreSQL) with an unscoped admin and a scoped
    viewer and operator, each with the password of its name."""
    if request.param == "sqlite":
        store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    else:
        pg: Postgres = request.getfixturevalue("postgres_server")
        store = Store(pg.create_database(), tmp_path / "snaps", pg.password)
    store.migrate()
    events, snaps = {}, {}
    for seq, (node, camera) in enumerate(IN_SCOPE + OUT_OF_SCOPE, start=1):
        payload = make_event(seq, node=node, camera=camera, ts=T0 + seq * 60)
        store.insert_events([event_row(payload, T0 + seq * 60, T0 + seq * 60 + 0.1)])
        events[(node, camera)] = payload["event_id"]
        jpeg = f"\xff\xd8 {node}/{camera} \xff\xd9".encode("latin-1")
        snaps[(node, camera)] = store.snapshots.put(jpeg)
        store.link_snapshots([(payload["event_id"], snaps[(node, camera)], len(jpeg), T0)])
    for node, cams in (("n1", ["gate", "market"]), ("n2", ["school", "well"]), ("n3", ["gate"])):
        store.upsert_node(
            node, "online", T0, {"cameras": {c: {"fps": 5.0, "stream_state": "ok"} for c in cams}}
        )
        store.track_sequences([(node, 1, T0), (node, 5, T0 + 5)], T0)  # a gap on every node
    accounts = [
        Account(username="admin", role="admin", password_hash=_hash("admin")),
        Account(username="viewer", role="viewer", password_hash=_hash("viewer"), scope=SCOPE),
        Account(username="operator", role="operator", password_hash=_hash("operator"), scope=SCOPE),
    ]
    auth = Authenticator(accounts, [], 3600)
    hub = LiveHub()

    def command(node: str, camera: str, name: str, by: str) -> tuple[str, PublishResult]:
        return "cmd-1", "sent"

    app = make_app(ApiContext(store, auth, hub, HttpSettings(), command=command, heartbeat_s=0.3))
    with serve_app(app) as client:
        yield World(client, store, hub, events, snaps)
    store.close()


def _login(w: World, user: str) -> dict[str, str]:
    r = w.client.post("/api/login", json={"username": user, "password": user})
    assert r.status_code == 200, r.text
    w.client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _visible(pairs: list[tuple[str, str]]) -> None:
    assert pairs and all(p in IN_SCOPE for p in pairs), pairs


Check = Callable[[World, str, dict[str, str]], None]


def public(w: World, role: str, h: dict[str, str]) -> None:
    """Routes that hold no camera data: the same for everyone."""


def check_events(w: World, role: str, h: dict[str, str]) -> None:
    body = w.client.get("/api/events", headers=h).json()
    _visible([(e["node"], e["camera"]) for e in body["items"]])
    assert body["total"] == len(IN_SCOPE)
    assert w.client.get("/api/events?camera=market", headers=h).json()["total"] == 0
    assert w.client.get("/api/events?node=n3", headers=h).json()["total"] == 0


def check_event(w: World, role: str, h: dict[str, str]) -> None:
    for pair, event_id in w.events.items():
        r = w.client.get(f"/api/events/{event_id}", headers=h)
        assert r.status_code == (200 if pair in IN_SCOPE else 404), (pair, r.status_code)


def check_ack(w: World, role: str, h: dict[str, str]) -> None:
    for pair, event_id in w.events.items():
        r = w.client.post(f"/api/events/{event_id}/ack", json={"note": "seen"}, headers=h)
        if role == "viewer":
            assert r.status_code == 403
        else:
            assert r.status_code == (200 if pair in IN_SCOPE else 404), (pair, r.status_code)
        acked = (w.store.get_event(event_id) or {}).get("ack")
        assert (acked is not None) == (role == "operator" and pair in IN_SCOPE)


def check_snapshot(w: World, role: str, h: dict[str, str]) -> None:
    for pair, sha in w.snaps.items():
        r = w.client.get(f"/api/snapshots/{sha}.jpg", headers=h)
        assert r.status_code == (200 if pair in IN_SCOPE else 404), (pair, r.status_code)
        assert (f"{pair[0]}/{pair[1]}".encode() in r.content) == (pair in IN_SCOPE)


def check_clip(w: World, role: str, h: dict[str, str]) -> None:
    for pair, event_id in w.events.items():
        r = w.client.get(f"/api/events/{event_id}/clip", headers=h)
        assert r.status_code == 404, (pair, r.status_code)
        assert ("state" in r.json()) == (pair in IN_SCOPE), (pair, r.text)  # out of scope: "no such event"


def check_clip_request(w: World, role: str, h: dict[str, str]) -> None:
    for pair, event_id in w.events.items():
        r = w.client.post(f"/api/events/{event_id}/clip", headers=h)
        if role == "viewer":
            assert r.status_code == 403
        else:  # in scope it gets as far as sending (no MQTT in this app: 503)
            assert r.status_code == (503 if pair in IN_SCOPE else 404), (pair, r.status_code)


def check_export(w: World, role: str, h: dict[str, str]) -> None:
    r = w.client.get("/api/export/events.csv", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    _visible([(row["node"], row["camera"]) for row in rows])
    assert len(rows) == len(IN_SCOPE)


def check_counts(w: World, role: str, h: dict[str, str]) -> None:
    items = w.client.get("/api/counts", headers=h).json()["items"]
    _visible([(c["node"], c["camera"]) for c in items])
    assert sum(c["count"] for c in items) == len(IN_SCOPE)


def check_nodes(w: World, role: str, h: dict[str, str]) -> None:
    items = w.client.get("/api/nodes", headers=h).json()["items"]
    assert {n["node"]: [c["camera"] for c in n["cameras"]] for n in items} == {
        "n1": ["gate"],
        "n2": ["school", "well"],
    }


def check_status(w: World, role: str, h: dict[str, str]) -> None:
    body = w.client.get("/api/status", headers=h).json()
    assert body["events_stored"] == len(IN_SCOPE)
    assert {g["node"] for g in body["sequence_gaps"]} == {"n2"}  # n1 is only partly visible


def check_me(w: World, role: str, h: dict[str, str]) -> None:
    assert w.client.get("/api/me", headers=h).json() == {
        "username": role,
        "role": role,
        "scope": ["n2/*", "n1/gate"],
    }


def admin_only(w: World, role: str, h: dict[str, str]) -> None:
    """Admin routes; scoped admins are refused the station-wide ones too (test below)."""


def check_stream(w: World, role: str, h: dict[str, str]) -> None:
    w.client.cookies.set("rw_session", h["Authorization"].removeprefix("Bearer "))
    with w.client.stream("GET", "/api/stream") as stream:
        lines = stream.iter_lines()
        assert [next(lines) for _ in range(2)] == ["retry: 2000", ": connected"]
        node = {"node": "n1", "cameras": [{"camera": "gate"}, {"camera": "market"}]}
        for name, data in (
            ("event", {"node": "n1", "camera": "market", "id": "out"}),
            ("ack", {"node": "n3", "camera": "gate", "id": "out"}),
            ("node", {"node": "n3", "cameras": [{"camera": "gate"}]}),
            ("other", {"node": "n2"}),
            ("node", node),
            ("event", {"node": "n2", "camera": "well", "id": "in"}),
        ):
            w.hub.publish(name, data)
        got: list[dict[str, Any]] = []
        for line in lines:
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                if len(got) == 2:
                    break
    w.client.cookies.clear()
    assert got == [
        {"node": "n1", "cameras": [{"camera": "gate"}]},
        {"node": "n2", "camera": "well", "id": "in"},
    ]


ROUTES: dict[tuple[str, str], tuple[Check, ...]] = {
    ("GET", "/healthz"): (public,),
    ("GET", "/"): (public,),
    ("GET", "/api/contract/kinds"): (public,),
    ("POST", "/api/login"): (public,),
    ("POST", "/api/logout"): (public,),
    ("GET", "/api/me"): (check_me,),
    ("GET", "/api/events"): (check_events,),
    ("GET", "/api/events/{event_id}"): (check_event,),
    ("POST", "/api/events/{event_id}/ack"): (check_ack,),
    ("GET", "/api/snapshots/{name}"): (check_snapshot,),
    ("GET", "/api/events/{event_id}/clip"): (check_clip,),
    ("POST", "/api/events/{event_id}/clip"): (check_clip_request,),
    ("GET", "/api/counts"): (check_counts,),
    ("GET", "/api/export/events.csv"): (check_export,),
    ("GET", "/api/nodes"): (check_nodes,),
    ("GET", "/api/status"): (check_status,),
    ("GET", "/api/stream"): (check_stream,),
    ("POST", "/api/nodes/{node}/cameras/{camera}/take-reference"): (admin_only,),
    ("GET", "/api/webhooks/deadletters"): (admin_only,),
    ("POST", "/api/webhooks/deadletters/{item_id}/requeue"): (admin_only,),
    ("GET", "/api/audit"): (admin_only,),
}
ADMIN_PATHS = {
    "/api/nodes/n1/cameras/gate/take-reference": "POST",
    "/api/webhooks/deadletters": "GET",
    "/api/webhooks/deadletters/1/requeue": "POST",
    "/api/audit": "GET",
}


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            yield from _walk(route.original_router.routes)


def _app_routes(w: World) -> set[tuple[str, str]]:
    app = make_app(ApiContext(w.store, Authenticator([], [], 60), LiveHub(), HttpSettings()))
    return {(m, r.path) for r in _walk(app.routes) for m in r.methods or () if m != "HEAD"}


def test_every_route_has_a_scope_decision(world: World) -> None:
    assert _app_routes(world) == set(ROUTES)


@pytest.mark.parametrize("role", ["viewer", "operator"])
@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_honours_the_scope(world: World, role: str, route: tuple[str, str]) -> None:
    h = _login(world, role)
    for check in ROUTES[route]:
        check(world, role, h)
    if ROUTES[route] == (admin_only,):
        for path, method in ADMIN_PATHS.items():
            assert world.client.request(method, path, headers=h).status_code == 403, path


def test_scoped_admin_is_kept_to_its_cameras_and_off_station_wide_views(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    store.migrate()
    store.upsert_node("n1", "online", time.time(), {"cameras": {"gate": {}, "market": {}}})
    admin = Account(username="boss", role="admin", password_hash=_hash("boss"), scope=SCOPE)
    sent: list[str] = []

    def command(node: str, camera: str, name: str, by: str) -> tuple[str, PublishResult]:
        sent.append(f"{node}/{camera}")
        return "cmd", "sent"

    app = make_app(
        ApiContext(store, Authenticator([admin], [], 60), LiveHub(), HttpSettings(), command=command)
    )
    with serve_app(app) as client:
        token = client.post("/api/login", json={"username": "boss", "password": "boss"}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/nodes/n1/cameras/market/take-reference", headers=h).status_code == 404
        assert client.post("/api/nodes/n1/cameras/gate/take-reference", headers=h).status_code == 202
        assert client.get("/api/audit", headers=h).status_code == 403
        assert client.get("/api/webhooks/deadletters", headers=h).status_code == 403
    assert sent == ["n1/gate"]
    store.close()


@pytest.mark.parametrize(
    ("cameras", "error"),
    [
        (["n1"], "node/camera"),
        (["n1/gate/x"], "node/camera"),
        (["n 1/*"], "node/camera"),
        ([""], "node/camera"),
    ],
)
def test_bad_scope_names_the_pair(cameras: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ScopeSettings(cameras=cameras)


def test_scope_compiles_whole_nodes_and_pairs() -> None:
    scope = ScopeSettings(nodes=["n5"], cameras=["n1/gate", "n2/*", "n2/well"]).compile()
    assert scope.nodes == {"n5", "n2"} and scope.pairs == {("n1", "gate")}
    table = [("n5", "x", True), ("n2", "well", True), ("n1", "gate", True), ("n1", "market", False)]
    assert [scope.allows(n, c) for n, c, _ in table] == [ok for _, _, ok in table]
    assert ScopeSettings().compile().allows("n1", "gate") is False  # an empty scope sees nothing


def test_a_scoped_api_token_carries_its_scope() -> None:
    from central.auth import hash_token
    from central.config import ApiToken

    token = ApiToken(name="thon", role="viewer", token_hash=hash_token("t" * 40), scope=SCOPE)
    who = Authenticator([], [token, ApiToken(name="all", token_hash=hash_token("a" * 40))], 60).resolve(
        "t" * 40
    )
    assert who is not None and who.scope == SCOPE.compile() and who.username == "token:thon"
    everyone = Authenticator([], [ApiToken(name="all", token_hash=hash_token("a" * 40))], 60).resolve(
        "a" * 40
    )
    assert everyone is not None and everyone.scope is None
