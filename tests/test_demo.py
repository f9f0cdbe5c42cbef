"""`make demo`'s script end to end: broker, aggregator and edge node come up and events reach the API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def test_demo_shows_events_on_the_dashboard_within_a_minute(tmp_path: Path, shared_dir: Path) -> None:
    env = {**os.environ, "ROADWATCH_DATA_DIR": str(shared_dir), "ROADWATCH_ADMIN_PASSWORD": "demo-test-pass"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--var", str(tmp_path), "--duration", "120"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        started = time.monotonic()
        for line in proc.stdout:
            found = re.search(r"dashboard\s+(http://127\.0\.0\.1:\d+)/", line)
            if found:
                url = found.group(1)
                break
        assert url, "the demo printed no dashboard address"
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            assert b"Roadwatch" in resp.read()
        req = urllib.request.Request(
            url + "/api/login",
            data=json.dumps({"username": "admin", "password": "demo-test-pass"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            token = json.loads(resp.read())["token"]
        total = 0
        while time.monotonic() - started < 60 and not total:
            req = urllib.request.Request(
                url + "/api/events?limit=5", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                total = json.loads(resp.read())["total"]
            time.sleep(1)
        assert total > 0, (tmp_path / "edge.log").read_text(errors="replace")[-2000:]
        req = urllib.request.Request(url + "/api/nodes", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            nodes = json.loads(resp.read())["items"]
        assert [n["node"] for n in nodes] == ["demo-node"] and nodes[0]["state"] == "online"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
