"""The whole chain on real parts: edge node (real model, real clip) -> Mosquitto -> aggregator -> HTTP API.

Every event the node made (its JSON-lines copy) must be stored once by the aggregator, with its
snapshot, and the node's clean exit must show as `stopped`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, free_port, make_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]

CENTRAL = """\
mqtt: {{host: 127.0.0.1, port: {port}, client_id: e2e-central}}
store: {{url: "sqlite:///{db}", snapshots_dir: "{snaps}"}}
http: {{host: 127.0.0.1, port: {http}}}
accounts:
  - {{username: admin, role: admin, password: {{env: E2E_ADMIN_PASSWORD}}}}
"""

EDGE = """\
node_id: e2e-node
model: {{path: "{data}/models/yolox_nano.onnx", intra_op_threads: 1}}
mqtt: {{host: 127.0.0.1, port: {port}, stats_interval_s: 1}}
outbox: {{path: "{outbox}"}}
metrics: {{enabled: false}}
cameras:
  - id: campus
    source: "{data}/videos/vtest.avi"
    detect_fps: 10
    reference_size: [768, 576]
    lines:
      walkway: {{points: [[50, 330], [740, 330]]}}
    zones:
      lawn: {{points: [[0, 250], [768, 250], [768, 576], [0, 576]]}}
    rules:
      - {{kind: line_crossing, name: walkway, line: walkway, classes: [person], summary_interval_s: 5}}
      - {{kind: loitering, name: lawn-loiter, zone: lawn, classes: [person], max_dwell_s: 3}}
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Broker, str, subprocess.Popen[bytes]]]:
    broker = make_broker(tmp_path)
    broker.start()
    http = free_port()
    cfg = tmp_path / "central.yaml"
    cfg.write_text(
        CENTRAL.format(port=broker.port, db=tmp_path / "c.sqlite", snaps=tmp_path / "snaps", http=http),
        encoding="utf-8",
    )
    env = {**os.environ, "E2E_ADMIN_PASSWORD": "e2e-pass"}
    log = (tmp_path / "central.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "run", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "central.log").read_text()
            assert time.monotonic() < deadline, "aggregator did not come up"
            time.sleep(0.1)
    try:
        yield broker, url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        broker.stop()


def _api(url: str, path: str, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_every_edge_event_reaches_the_aggregator(
    site: tuple[Broker, str, subprocess.Popen[bytes]], tmp_path: Path, shared_dir: Path, vtest_path: Path
) -> None:
    broker, url, _ = site
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(
        EDGE.format(data=shared_dir, port=broker.port, outbox=tmp_path / "outbox.sqlite"), encoding="utf-8"
    )
    jsonl = tmp_path / "events.jsonl"
    res = subprocess.run(
        [sys.executable, "-m", "edge", "run", str(cfg), "--max-frames", "250", "--events-jsonl", str(jsonl)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    made = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    kinds = {e["kind"] for e in made}
    assert "line_crossing" in kinds and "loitering" in kinds, kinds

    token = _api(url, "/api/login", body={"username": "admin", "password": "e2e-pass"})["token"]
    deadline = time.monotonic() + 10
    while True:
        stored = _api(url, "/api/events?limit=500", token)
        if stored["total"] >= len(made) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_id = {e["event_id"]: e for e in stored["items"]}
    assert stored["total"] == len(made)
    assert set(by_id) == {e["event_id"] for e in made}
    for e in made:
        got = by_id[e["event_id"]]
        assert (got["kind"], got["phase"], got["rule"], got["track_ids"]) == (
            e["kind"],
            e["phase"],
            e["rule"],
            e["track_ids"],
        )
        if e["snapshot_bytes"]:
            assert got["snapshot_url"], f"snapshot of {e['kind']} event not linked"
    # sequence numbers are per node and gap-free from 1
    assert sorted(e["seq"] for e in stored["items"]) == list(range(1, len(made) + 1))
    nodes = _api(url, "/api/nodes", token)["items"]
    node = next(n for n in nodes if n["node"] == "e2e-node")
    assert node["state"] == "stopped"


def test_an_admin_makes_a_live_camera_accept_its_present_view(
    site: tuple[Broker, str, subprocess.Popen[bytes]], tmp_path: Path, shared_dir: Path, vtest_path: Path
) -> None:
    """Dashboard button -> API -> MQTT command -> the running node's health checks take a new reference."""
    broker, url, _ = site
    cfg = tmp_path / "edge.yaml"
    live = EDGE.replace("    detect_fps: 10\n", "    detect_fps: 2\n    realtime: true\n    loop: true\n")
    cfg.write_text(
        live.format(data=shared_dir, port=broker.port, outbox=tmp_path / "outbox.sqlite"), encoding="utf-8"
    )
    log_path = tmp_path / "edge.log"
    with log_path.open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", str(cfg)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        token = _api(url, "/api/login", body={"username": "admin", "password": "e2e-pass"})["token"]
        deadline = time.monotonic() + 60
        while True:  # the node is known once its first stats name the camera
            nodes = {n["node"]: n for n in _api(url, "/api/nodes", token)["items"]}
            known = nodes.get("e2e-node")
            if known and known["state"] == "online" and known["cameras"]:
                break
            assert node.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, "the node never reported its camera"
            time.sleep(0.2)
        sent = _api(url, "/api/nodes/e2e-node/cameras/campus/take-reference", token, body={})
        assert sent["status"] == "sent" and sent["command_id"]
        deadline = time.monotonic() + 10
        wanted = f"new health reference requested by admin (command {sent['command_id']})"
        while wanted not in log_path.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, log_path.read_text(encoding="utf-8")[-3000:]
            time.sleep(0.1)
        audit = _api(url, "/api/audit", token)["items"]
        assert any(a["action"] == "take_reference" and a["target"] == "e2e-node/campus" for a in audit)
    finally:
        node.terminate()
        assert node.wait(timeout=30) == 0, log_path.read_text(encoding="utf-8")[-3000:]
