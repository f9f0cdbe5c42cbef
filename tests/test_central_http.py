"""HTTP hardening on a real uvicorn server on loopback: body size limits before auth, an atomic login
limiter that cannot lock the admin out from another address, no CDN-loaded /docs, and bounds on every
numeric parameter (issue 11, item 5)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import free_port, wait_port
from test_central_support import PASSWORDS, password_hash

from central.api import ApiContext, make_app
from central.auth import Authenticator
from central.config import Account, HttpSettings
from central.live import LiveHub
from central.sessions import SessionTable
from central.store import Store

MAX_FAILURES = 5
PER_ADDRESS = 12
BIG = 100 * 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


@contextmanager
def serving(store: Store, http: HttpSettings) -> Iterator[str]:
    """The app on a real uvicorn server on a free loopback port; yields its base URL."""
    auth = Authenticator(
        [
            Account(username=u, role=r, password_hash=password_hash(u))
            for u, r in (("admin", "admin"), ("op", "operator"), ("viewer", "viewer"))
        ],
        [],
        3600,
        max_failures=MAX_FAILURES,
        window_s=300,
        sessions=SessionTable(store),
        max_failures_per_address=PER_ADDRESS,
    )
    app = make_app(ApiContext(store, auth, LiveHub(), http))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    with serving(store, HttpSettings()) as base:
        yield base, store
    store.close()


def _raw_post(base: str, head: str, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request by hand, stop sending as soon as the server answers, return what it answered."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("ascii"))
        sock.settimeout(0.0)
        answer = b""
        for chunk in body_chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
            if answer:
                break
            try:
                sock.sendall(chunk)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
        sock.settimeout(5.0)
        try:
            while b"\r\n\r\n" not in answer:
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        except OSError:
            pass
        return answer


def _chunks(total: int, size: int = 64 * 1024, chunked: bool = False) -> Iterator[bytes]:
    piece = b"x" * size
    for _ in range(total // size):
        yield (f"{size:x}\r\n".encode("ascii") + piece + b"\r\n") if chunked else piece


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mb_login_body_is_refused_with_413_before_it_is_read(
    server: tuple[str, Store], chunked: bool
) -> None:
    base, store = server
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}"
    head = f"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    before = _rss_bytes()
    answer = _raw_post(base, head, _chunks(BIG, chunked=chunked))
    grown = _rss_bytes() - before
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown / 1e6:.0f} MB"
    with httpx.Client(base_url=base, timeout=10) as client:  # the server is fine afterwards
        r = client.post("/api/login", json={"username": "admin", "password": PASSWORDS["admin"]})
        assert r.status_code == 200
        assert client.post("/api/logout", content=b"{" * (65 * 1024)).status_code == 413
    assert store.audit_log(10, 0)[1] == 1  # only the good login reached the handler


@pytest.mark.slow
def test_100_parallel_logins_from_one_address_try_at_most_the_limit(server: tuple[str, Store]) -> None:
    base, store = server
    with httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_connections=100)) as client:

        def attempt(i: int) -> int:
            body = {"username": "admin", "password": f"guess-{i}"}
            return client.post("/api/login", json=body).status_code

        with ThreadPoolExecutor(100) as pool:
            codes = list(pool.map(attempt, range(100)))
    assert codes.count(401) == MAX_FAILURES and codes.count(429) == 100 - MAX_FAILURES
    actions = [a["action"] for a in store.audit_log(500, 0)[0]]
    assert actions.count("login_failed") == MAX_FAILURES


def _client(base: str, source: str) -> httpx.Client:
    """A client whose requests come from `source` (another loopback address is another station PC)."""
    return httpx.Client(base_url=base, timeout=10, transport=httpx.HTTPTransport(local_address=source))


@pytest.mark.slow
def test_failed_logins_from_one_address_do_not_lock_the_admin_out_elsewhere(
    server: tuple[str, Store],
) -> None:
    base, _ = server
    with _client(base, "127.0.0.1") as attacker, _client(base, "127.0.0.2") as admin:
        for _ in range(MAX_FAILURES):
            assert attacker.post("/api/login", json={"username": "admin", "password": "x"}).status_code == 401
        assert attacker.post("/api/login", json={"username": "admin", "password": "x"}).status_code == 429
        good = {"username": "admin", "password": PASSWORDS["admin"]}
        assert attacker.post("/api/login", json=good).status_code == 429  # limited, password not checked
        assert admin.post("/api/login", json=good).status_code == 200
        # the address limit over all accounts: guessing other names from the attacker's address stops too
        codes = [
            attacker.post("/api/login", json={"username": f"u{i}", "password": "x"}).status_code
            for i in range(PER_ADDRESS)
        ]
        assert codes.count(401) == PER_ADDRESS - MAX_FAILURES and codes[-1] == 429
        assert admin.post("/api/login", json=good).status_code == 200


def test_docs_are_off_and_the_openapi_document_has_response_schemas(server: tuple[str, Store]) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/docs").status_code == 404
        spec = client.get("/openapi.json").json()
    json_ops = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "application/json" in op["responses"].get("200", op["responses"].get("202", {})).get("content", {})
    ]
    assert len(json_ops) >= 12
    for path, method, op in json_ops:
        ok = op["responses"].get("200", op["responses"].get("202"))
        schema = ok["content"]["application/json"]["schema"]
        assert schema.get("$ref") or schema.get("properties"), (method, path, schema)


def test_docs_can_be_switched_on_and_only_they_leave_the_content_policy(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.sqlite", tmp_path / "snaps")
    with (
        serving(store, HttpSettings(api_docs=True)) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert "content-security-policy" not in docs.headers
        assert "script-src 'self'" in client.get("/").headers["content-security-policy"]
    store.close()


def _numeric_parameters(spec: dict[str, object]) -> list[tuple[str, str, str]]:
    out = []
    for path, ops in spec["paths"].items():  # type: ignore[attr-defined]
        for method, op in ops.items():
            for p in op.get("parameters", []):
                if p["schema"].get("type") == "integer":
                    out.append((method.upper(), path, p["name"]))
    return out


BAD_NUMBERS = ["-1", str(2**63), str(2**64 + 5), "1e400", "9" * 400, "NaN"]
NUMERIC = [
    ("GET", "/api/events", "limit"),
    ("GET", "/api/events", "offset"),
    ("GET", "/api/export/events.csv", "limit"),
    ("GET", "/api/webhooks/deadletters", "limit"),
    ("GET", "/api/webhooks/deadletters", "offset"),
    ("POST", "/api/webhooks/deadletters/{item_id}/requeue", "item_id"),
    ("GET", "/api/audit", "limit"),
    ("GET", "/api/audit", "offset"),
]


def test_the_table_lists_every_numeric_parameter_and_each_is_bounded(server: tuple[str, Store]) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=10) as client:
        spec = client.get("/openapi.json").json()
    assert sorted(_numeric_parameters(spec)) == sorted(NUMERIC)
    for _, path, name in NUMERIC:
        ops = spec["paths"][path]
        param = next(p for op in ops.values() for p in op["parameters"] if p["name"] == name)
        assert "maximum" in param["schema"] and "minimum" in param["schema"], (path, name)


@pytest.mark.parametrize(("method", "path", "name"), NUMERIC)
def test_out_of_range_numbers_are_422_not_500(
    server: tuple[str, Store], method: str, path: str, name: str
) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=10) as client:
        r = client.post("/api/login", json={"username": "admin", "password": PASSWORDS["admin"]})
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        for bad in BAD_NUMBERS:
            url = path.replace("{item_id}", bad) if "{" in path else path
            params = {} if "{" in path else {name: bad}
            got = client.request(method, url, params=params, headers=headers)
            assert got.status_code == 422, (method, path, name, bad, got.status_code)
        url = path.replace("{item_id}", "1") if "{" in path else path
        ok = client.request(method, url, params={} if "{" in path else {name: "1"}, headers=headers)
        assert ok.status_code in (200, 404)  # in range: served (no such dead letter is 404)
