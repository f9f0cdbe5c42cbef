"""HTTP API: authentication and roles, filters and pagination, snapshots, counts, audit, live feed."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Broker, Postgres, free_port
from test_central_support import (
    PASSWORDS,
    central_config,
    dumps,
    event_topic,
    login,
    make_event,
    password_hash,
    publish_all,
    publisher,
    running,
    serve_app,
)

from central.api import ApiContext, make_app
from central.auth import Authenticator, Principal, hash_token
from central.config import Account, ApiToken, HttpSettings
from central.ingest import PublishResult, event_row
from central.live import LiveHub
from central.sessions import SessionTable
from central.store import EventRow, Store
from contract.kinds import ALL_KINDS

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
TOKEN = "static-token-for-tests-0123456789"


def _row(payload: dict[str, Any]) -> EventRow:
    return event_row(payload, T0 + payload["seq"] * 60, T0 + payload["seq"] * 60 + 0.1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every API test runs on both engines: the API must not tell them apart."""
    if request.param == "sqlite":
        s = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    else:
        pg: Postgres = request.getfixturevalue("postgres_server")
        s = Store(pg.create_database(), tmp_path / "snaps", pg.password)
    yield s
    s.close()


@pytest.fixture
def sent_commands() -> list[tuple[str, str, str, str]]:
    """What the app published as camera commands (node, camera, command, by)."""
    return []


@pytest.fixture
def app_client(store: Store, sent_commands: list[tuple[str, str, str, str]]) -> Iterator[httpx.Client]:
    accounts = [
        Account(username=u, role=r, password_hash=password_hash(u))
        for u, r in (("admin", "admin"), ("op", "operator"), ("viewer", "viewer"))
    ]
    tokens = [ApiToken(name="reports", role="viewer", token_hash=hash_token(TOKEN))]
    auth = Authenticator(accounts, tokens, 3600, max_failures=3, window_s=60, sessions=SessionTable(store))

    def command(node: str, camera: str, name: str, by: str) -> tuple[str, PublishResult]:
        sent_commands.append((node, camera, name, by))
        return f"cmd-{len(sent_commands)}", "sent"

    app = make_app(ApiContext(store, auth, LiveHub(), HttpSettings(), command=command, heartbeat_s=0.3))
    with serve_app(app) as client:
        yield client


def _login(client: httpx.Client, user: str) -> dict[str, str]:
    r = client.post("/api/login", json={"username": user, "password": PASSWORDS[user]})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # each test chooses cookie or bearer explicitly
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _seed(store: Store) -> list[dict[str, Any]]:
    """24 events a minute apart: 3 cameras x 2 kinds, alternating classes and phases."""
    payloads = []
    for seq in range(1, 25):
        cam = ("gate", "market", "school")[seq % 3]
        kind = "line_crossing" if seq % 2 else "loitering"
        p = make_event(
            seq,
            camera=cam,
            kind=kind,
            ts=T0 + seq * 60,
            classes=["car" if seq % 4 else "person"],
            phase="instant" if seq % 2 else "start",
        )
        p["measurements"] = {"direction": "in" if seq % 3 else "out"}
        payloads.append(p)
    assert len(store.insert_events([_row(p) for p in payloads])) == 24
    return payloads


PROTECTED = [
    ("GET", "/api/me"),
    ("GET", "/api/events"),
    ("GET", "/api/events/x"),
    ("POST", "/api/events/x/ack"),
    ("GET", f"/api/snapshots/{'a' * 64}.jpg"),
    ("GET", "/api/counts"),
    ("GET", "/api/nodes"),
    ("GET", "/api/status"),
    ("GET", "/api/webhooks/deadletters"),
    ("GET", "/api/audit"),
    ("GET", "/api/stream"),
    ("POST", "/api/nodes/n1/cameras/gate/take-reference"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_unauthenticated_requests_are_refused(app_client: httpx.Client, method: str, path: str) -> None:
    r = app_client.request(method, path, json={"note": ""})
    assert r.status_code == 401
    r = app_client.request(method, path, json={"note": ""}, headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


def test_liveness_and_openapi(app_client: httpx.Client) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    paths = app_client.get("/openapi.json").json()["paths"]
    assert {"/api/events", "/api/events/{event_id}/ack", "/api/counts", "/api/stream"} <= set(paths)


def test_login_sets_a_strict_httponly_cookie_and_is_audited(app_client: httpx.Client) -> None:
    r = app_client.post("/api/login", json={"username": "op", "password": PASSWORDS["op"]})
    assert r.status_code == 200 and r.json()["role"] == "operator" and r.json()["username"] == "op"
    cookie = r.headers["set-cookie"]
    assert (
        "rw_session=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie.replace("Strict", "strict")
    )
    assert app_client.get("/api/me").json() == {"username": "op", "role": "operator"}  # by cookie
    assert app_client.post("/api/logout").status_code == 200
    assert (
        app_client.get("/api/me", headers={"Authorization": f"Bearer {r.json()['token']}"}).status_code == 401
    )
    assert app_client.post("/api/login", json={"username": "op", "password": "wrong"}).status_code == 401
    admin = _login(app_client, "admin")
    actions = [(a["actor"], a["action"]) for a in app_client.get("/api/audit", headers=admin).json()["items"]]
    assert actions[:3] == [("admin", "login"), ("op", "login_failed"), ("op", "login")]


def test_login_sets_a_readable_signed_in_hint_that_logout_removes(app_client: httpx.Client) -> None:
    """The dashboard reads `rw_signed_in` to skip /api/me (and its 401) when nobody is signed in."""
    r = app_client.post("/api/login", json={"username": "op", "password": PASSWORDS["op"]})
    (hint,) = [c for c in r.headers.get_list("set-cookie") if c.startswith("rw_signed_in=")]
    assert hint.startswith("rw_signed_in=1;") and "HttpOnly" not in hint
    (gone,) = [
        c for c in app_client.post("/api/logout").headers.get_list("set-cookie") if "rw_signed_in" in c
    ]
    assert "Max-Age=0" in gone


def test_failed_logins_are_rate_limited(app_client: httpx.Client) -> None:
    for _ in range(3):
        assert (
            app_client.post("/api/login", json={"username": "viewer", "password": "bad"}).status_code == 401
        )
    r = app_client.post("/api/login", json={"username": "viewer", "password": PASSWORDS["viewer"]})
    assert r.status_code == 429


def test_sessions_survive_a_restart_and_follow_the_current_config(store: Store) -> None:
    """Only token hashes are stored; the role comes from the config at each start, not from the row."""

    def accounts(**roles: str) -> list[Account]:
        return [Account(username=u, role=r, password_hash=password_hash(u)) for u, r in roles.items()]  # type: ignore[arg-type]

    before = Authenticator(accounts(op="operator", admin="admin"), [], 3600, sessions=SessionTable(store))
    op_login, admin_login = (
        before.login("op", PASSWORDS["op"], "10.0.0.2", now=T0),
        before.login("admin", PASSWORDS["admin"], "10.0.0.3", now=T0),
    )
    assert op_login is not None and admin_login is not None
    op_token, admin_token = op_login[0], admin_login[0]
    rows = store.conn().execute("SELECT token_hash, username FROM sessions").fetchall()
    assert sorted(r[1] for r in rows) == ["admin", "op"]
    assert {r[0] for r in rows} == {hash_token(op_token), hash_token(admin_token)}

    after = Authenticator(accounts(op="operator", admin="admin"), [], 3600, sessions=SessionTable(store))
    assert after.resolve(op_token, now=T0 + 60) == Principal("op", "operator")
    assert after.resolve(op_token, now=T0 + 3601) is None  # expired
    assert after.resolve("not-a-session", now=T0 + 60) is None

    changed = Authenticator(accounts(op="viewer"), [], 3600, sessions=SessionTable(store))
    assert changed.resolve(op_token, now=T0 + 60) == Principal("op", "viewer")  # demoted in the config
    assert changed.resolve(admin_token, now=T0 + 60) is None  # account removed from the config

    after.logout(op_token)
    again = Authenticator(accounts(op="operator"), [], 3600, sessions=SessionTable(store))
    assert again.resolve(op_token, now=T0 + 60) is None
    # expired rows are cleared by the next login
    assert again.login("op", PASSWORDS["op"], "10.0.0.2", now=T0 + 7200) is not None
    assert store.conn().execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


def test_static_api_token_has_its_role(app_client: httpx.Client, store: Store) -> None:
    _seed(store)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert app_client.get("/api/me", headers=headers).json() == {
        "username": "token:reports",
        "role": "viewer",
    }
    assert app_client.get("/api/events", headers=headers).json()["total"] == 24
    assert app_client.get("/api/audit", headers=headers).status_code == 403


def test_viewer_cannot_acknowledge_but_operator_can(app_client: httpx.Client, store: Store) -> None:
    payloads = _seed(store)
    eid = payloads[0]["event_id"]
    viewer, op = _login(app_client, "viewer"), _login(app_client, "op")
    assert app_client.post(f"/api/events/{eid}/ack", json={"note": "x"}, headers=viewer).status_code == 403
    assert app_client.get(f"/api/events/{eid}", headers=viewer).json()["ack"] is None
    r = app_client.post(f"/api/events/{eid}/ack", json={"note": "đã xử lý"}, headers=op)
    assert r.status_code == 200
    ack = r.json()["ack"]
    assert ack["by"] == "op" and ack["note"] == "đã xử lý" and ack["at"].endswith("Z")
    assert app_client.post("/api/events/nope/ack", json={"note": ""}, headers=op).status_code == 404
    assert app_client.post(f"/api/events/{eid}/ack", json={"note": "x" * 501}, headers=op).status_code == 422
    acked = app_client.get("/api/events?acknowledged=true", headers=viewer).json()
    assert [e["event_id"] for e in acked["items"]] == [eid] and acked["total"] == 1
    assert app_client.get("/api/events?acknowledged=false", headers=viewer).json()["total"] == 23
    admin = _login(app_client, "admin")
    audit = app_client.get("/api/audit", headers=admin).json()["items"]
    assert any(a["action"] == "ack" and a["target"] == eid and a["actor"] == "op" for a in audit)
    assert app_client.get("/api/audit", headers=op).status_code == 403


def test_filters_and_pagination(app_client: httpx.Client, store: Store) -> None:
    payloads = _seed(store)
    h = _login(app_client, "viewer")

    def ids(query: str) -> tuple[list[int], int]:
        body = app_client.get(f"/api/events?{query}", headers=h).json()
        return [e["seq"] for e in body["items"]], body["total"]

    assert ids("limit=5") == ([24, 23, 22, 21, 20], 24)  # newest first
    pages = [ids(f"limit=5&offset={o}")[0] for o in range(0, 25, 5)]
    assert [seq for page in pages for seq in page] == list(range(24, 0, -1))
    assert ids("kind=loitering&limit=100") == (list(range(24, 0, -2)), 12)
    assert ids("camera=gate&limit=100") == ([24, 21, 18, 15, 12, 9, 6, 3], 8)
    assert ids("cls=person&limit=100")[0] == [24, 20, 16, 12, 8, 4]
    assert ids("phase=start&camera=gate&limit=100")[0] == [24, 18, 12, 6]
    assert ids("node=n1")[1] == 24 and ids("node=n2")[1] == 0
    since = payloads[9]["ts"]  # seq 10
    until = payloads[14]["ts"]  # seq 15, exclusive
    assert ids(f"since={since}&until={until}&limit=100")[0] == [14, 13, 12, 11, 10]
    assert app_client.get("/api/events?limit=501", headers=h).status_code == 422
    assert app_client.get("/api/events?offset=-1", headers=h).status_code == 422
    assert app_client.get("/api/events?since=yesterday", headers=h).status_code == 422
    one = app_client.get(f"/api/events/{payloads[0]['event_id']}", headers=h).json()
    assert {k: one[k] for k in payloads[0]} == payloads[0]
    assert app_client.get("/api/events/unknown", headers=h).status_code == 404


def test_snapshots_are_served_and_path_traversal_is_refused(
    app_client: httpx.Client, store: Store, tmp_path: Path
) -> None:
    jpeg = b"\xff\xd8 test jpeg \xff\xd9"
    sha = store.snapshots.put(jpeg)
    assert sha == hashlib.sha256(jpeg).hexdigest()
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    h = _login(app_client, "viewer")
    r = app_client.get(f"/api/snapshots/{sha}.jpg", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content == jpeg
    attempts = [
        "../secret.txt",
        "..%2Fsecret.txt",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2fsecret.txt",
        f"{sha.upper()}.jpg",
        f"{sha}.png",
        f"{sha[:63]}.jpg",
        f"{sha}.jpg%00",
        "....//secret.txt",
        f"../snaps/{sha[:2]}/{sha[2:]}.jpg",
    ]
    for name in attempts:
        r = app_client.get(f"/api/snapshots/{name}", headers=h)
        assert r.status_code in (400, 404), (name, r.status_code)
        assert b"do not serve" not in r.content
    assert app_client.get(f"/api/snapshots/{'0' * 64}.jpg", headers=h).status_code == 404


def test_event_links_its_snapshot(app_client: httpx.Client, store: Store) -> None:
    p = _seed(store)[3]
    jpeg = b"\xff\xd8 another \xff\xd9"
    sha = store.snapshots.put(jpeg)
    store.link_snapshots([(p["event_id"], sha, len(jpeg), T0)])
    h = _login(app_client, "viewer")
    assert (
        app_client.get(f"/api/events/{p['event_id']}", headers=h).json()["snapshot_url"]
        == f"/api/snapshots/{sha}.jpg"
    )


def test_counts_per_hour_line_direction_and_class(app_client: httpx.Client, store: Store) -> None:
    _seed(store)
    h = _login(app_client, "viewer")
    items = app_client.get("/api/counts", headers=h).json()["items"]
    # 12 line crossings (odd seq): T0+60 .. T0+1380 all fall in hour 11:00Z of 2026-11-18
    assert sum(i["count"] for i in items) == 12
    assert {i["hour"] for i in items} == {"2026-11-18T11:00:00Z"}
    gate = [i for i in items if i["camera"] == "gate"]  # seq 3, 9, 15, 21: direction out (seq % 3 == 0)
    assert gate == [
        {
            "hour": "2026-11-18T11:00:00Z",
            "node": "n1",
            "camera": "gate",
            "rule": "north_line",
            "direction": "out",
            "class": "car",
            "count": 4,
        }
    ]
    assert app_client.get("/api/counts?camera=market", headers=h).json()["items"][0]["camera"] == "market"
    assert app_client.get("/api/counts?rule=other", headers=h).json()["items"] == []


def test_nodes_report_state_and_camera_health(app_client: httpx.Client, store: Store) -> None:
    stats = {
        "cameras": {"gate": {"fps": 4.5, "inference_ms": 33.0, "dropped_frames": 1, "stream_state": "ok"}}
    }
    store.upsert_node("n1", "online", T0, None)
    store.upsert_node("n1", None, T0 + 5, stats)
    h = _login(app_client, "viewer")
    (node,) = app_client.get("/api/nodes", headers=h).json()["items"]
    assert (
        node["node"] == "n1" and node["state"] == "online" and node["last_seen"] == "2026-11-18T11:06:45.000Z"
    )
    assert node["cameras"] == [
        {"camera": "gate", "stream_state": "ok", "fps": 4.5, "inference_ms": 33.0, "dropped_frames": 1}
    ]


def test_dashboard_index_is_served_with_a_strict_content_policy(app_client: httpx.Client) -> None:
    r = app_client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "<" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"


def test_live_feed_sends_heartbeats_and_takes_the_cookie(app_client: httpx.Client) -> None:
    token = _login(app_client, "viewer")["Authorization"].removeprefix("Bearer ")
    app_client.cookies.set("rw_session", token)
    with app_client.stream("GET", "/api/stream") as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert [next(lines) for _ in range(2)] == ["retry: 2000", ": connected"]
        start = time.monotonic()
        assert next(line for line in lines if line) == ": heartbeat"
        assert 0.2 < time.monotonic() - start < 2.0


@pytest.mark.integration
def test_live_feed_streams_new_events_and_acks(broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(central_config(tmp_path, broker.port), http_port=port), login(base, "op") as api:
        token = api.headers["Authorization"].removeprefix("Bearer ")
        with (
            httpx.Client(base_url=base, cookies={"rw_session": token}, timeout=10) as sse,
            sse.stream("GET", "/api/stream") as stream,
            publisher(broker.port) as pub,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            payload = make_event(1)
            start = time.monotonic()
            publish_all(pub, [(event_topic(payload), dumps(payload))])
            name, data = _next_event(lines)
            assert (
                name == "event" and data["event_id"] == payload["event_id"] and time.monotonic() - start < 1.0
            )
            api.post(f"/api/events/{payload['event_id']}/ack", json={"note": "ok"}).raise_for_status()
            name, data = _next_event(lines)
            assert name == "ack" and data["ack"]["by"] == "op"


def _next_event(lines: Iterator[str]) -> tuple[str, dict[str, Any]]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            return name, json.loads(line[6:])
    raise AssertionError("stream ended")


def test_take_reference_is_for_admins_and_known_online_cameras(
    app_client: httpx.Client, store: Store, sent_commands: list[tuple[str, str, str, str]]
) -> None:
    stats = {"cameras": {"gate": {"fps": 5.0, "stream_state": "ok"}}}
    store.upsert_node("n1", "online", T0, stats)
    store.upsert_node("n2", "offline", T0, stats)
    path = "/api/nodes/{}/cameras/{}/take-reference"
    for user in ("viewer", "op"):
        assert app_client.post(path.format("n1", "gate"), headers=_login(app_client, user)).status_code == 403
    admin = _login(app_client, "admin")
    r = app_client.post(path.format("n1", "gate"), headers=admin)
    assert r.status_code == 202 and r.json() == {"status": "sent", "command_id": "cmd-1"}
    assert sent_commands == [("n1", "gate", "take_reference", "admin")]
    assert app_client.post(path.format("n1", "yard"), headers=admin).status_code == 404
    assert app_client.post(path.format("n9", "gate"), headers=admin).status_code == 404
    r = app_client.post(path.format("n2", "gate"), headers=admin)
    assert r.status_code == 409 and "offline" in r.json()["detail"]
    assert (
        app_client.post(path.format("n1", "ga+te"), headers=admin).status_code == 422
    )  # never a topic filter
    assert len(sent_commands) == 1
    audit = app_client.get("/api/audit", headers=admin).json()["items"]
    assert [(a["action"], a["target"], a["detail"]) for a in audit if a["action"] == "take_reference"] == [
        ("take_reference", "n1/gate", "cmd-1")
    ]


def test_contract_kinds_are_served_from_the_contract_table(app_client: httpx.Client) -> None:
    """The dashboard's kind labels come from `contract.kinds` (no session needed), not a copy."""
    response = app_client.get("/api/contract/kinds")
    assert response.status_code == 200
    data = response.json()
    assert [k["name"] for k in data["kinds"]] == list(ALL_KINDS)
    assert next(k for k in data["kinds"] if k["name"] == "suspected_collision") == {
        "name": "suspected_collision",
        "vi": "Nghi có va chạm giao thông",
        "en": "Suspected collision",
        "severity": "high",
        "source": "node",
    }
    assert data["stream_states"] == ["starting", "ok", "lost", "frozen", "ended"]
