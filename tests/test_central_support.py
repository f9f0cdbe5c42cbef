"""Helpers for the central tests (no tests here): contract payloads, configs, a running aggregator.

Other test files import this module by name (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import uvicorn
import yaml
from conftest import free_port, wait_port
from paho.mqtt.enums import CallbackAPIVersion
from support import wait_for  # noqa: F401  (re-exported: tests import it from here too)

from central.auth import hash_password
from central.config import CentralConfig, validate_config
from central.service import Aggregator

PREFIX = "roadwatch/v1"
PASSWORDS = {"admin": "admin-pass-1", "op": "operator-pass-1", "viewer": "viewer-pass-1"}
_HASHES: dict[str, str] = {}


def password_hash(user: str) -> str:
    if user not in _HASHES:  # scrypt is deliberately slow: hash each test password once per session
        _HASHES[user] = hash_password(PASSWORDS[user])
    return _HASHES[user]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(
    seq: int,
    *,
    node: str = "n1",
    camera: str = "gate",
    kind: str = "line_crossing",
    ts: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A valid contract v1 event payload."""
    ts = time.time() if ts is None else ts
    payload: dict[str, Any] = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "seq": seq,
        "kind": kind,
        "phase": "instant",
        "node": node,
        "camera": camera,
        "rule": "north_line",
        "ts": iso(ts),
        "local_time": datetime.fromtimestamp(ts, timezone.utc)
        .astimezone()
        .isoformat(timespec="milliseconds"),
        "classes": ["car"],
        "track_ids": [seq],
        "confidence": 0.8,
        "box": [10.0, 20.0, 110.0, 80.0],
        "measurements": {"direction": "in", "direction_name": "vào chợ"},
        "texts": {"vi": "Xe ô tô đi vào", "en": "Car entering"},
        "snapshot": None,
    }
    payload.update(overrides)
    return payload


def event_topic(payload: dict[str, Any]) -> str:
    return f"{PREFIX}/{payload['node']}/{payload['camera']}/events/{payload['kind']}"


def central_config(tmp: Path, broker_port: int, http_port: int = 0, **sections: Any) -> CentralConfig:
    data: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": f"central-{uuid.uuid4().hex[:8]}"},
        "store": {"url": f"sqlite:///{tmp / 'central.sqlite'}", "snapshots_dir": str(tmp / "snapshots")},
        "http": {"host": "127.0.0.1", "port": http_port, "login_max_failures": 1000},
        "health": {"check_interval_s": 0.2},
        "metrics": {"host": "127.0.0.1", "port": 0},  # a free port: tests run side by side
        "accounts": [
            {"username": "admin", "role": "admin", "password_hash": password_hash("admin")},
            {"username": "op", "role": "operator", "password_hash": password_hash("op")},
            {"username": "viewer", "role": "viewer", "password_hash": password_hash("viewer")},
        ],
    }
    for key, value in sections.items():
        data[key] = (
            {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
        )
    return validate_config(data, "test.yaml")


def write_config(path: Path, cfg: CentralConfig) -> Path:
    path.write_text(
        yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True, exclude_none=True)), encoding="utf-8"
    )
    return path


@contextmanager
def running(cfg: CentralConfig, http_port: int | None = None) -> Iterator[Aggregator]:
    """An aggregator with its HTTP server (when `http_port` is given), stopped afterwards."""
    agg = Aggregator(cfg)
    agg.start()
    try:
        assert agg.ingest.connected.wait(10), "aggregator did not connect to the broker"
        if http_port is not None:
            agg.serve_in_thread(http_port)
        yield agg
    finally:
        if agg.server is not None:
            agg.server.should_exit = True
        agg.stop()


@contextmanager
def publisher(port: int, client_id: str = "") -> Iterator[mqtt.Client]:
    """A plain paho publisher (as an edge node would be), closed cleanly afterwards."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(timeout=30)
        assert info.is_published()


@contextmanager
def serve_app(app: Any) -> Iterator[httpx.Client]:
    """A real uvicorn server on a free loopback port running `app` in a thread, and a client for it."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def login(base: str, user: str) -> Iterator[httpx.Client]:
    """An HTTP client logged in as `user` (bearer token), closed afterwards."""
    with httpx.Client(base_url=base, timeout=10) as client:
        r = client.post("/api/login", json={"username": user, "password": PASSWORDS[user]})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        yield client


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")
