"""`make demo`'s script end to end: broker, aggregator and edge node come up, events and forwarded alerts
reach the API within a minute, and a second demo in the same folder refuses and names the running one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "demo-test-pass"


@dataclass(frozen=True)
class Demo:
    url: str
    var: Path
    pid: int
    started: float
    token: str

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())


def _env(shared_dir: Path) -> dict[str, str]:
    return {**os.environ, "ROADWATCH_DATA_DIR": str(shared_dir), "ROADWATCH_ADMIN_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[Demo]:
    """The demo started as the README says (`make demo` runs `scripts/demo.py`), in its own folder."""
    var = tmp_path_factory.mktemp("demo")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--var", str(var), "--duration", "150"],
        cwd=ROOT,
        env=_env(shared_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            found = re.search(r"dashboard\s+(http://127\.0\.0\.1:\d+)/", line)
            if found:
                url = found.group(1)
                break
        assert url, "the demo printed no dashboard address"
        req = urllib.request.Request(
            url + "/api/login",
            data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            token = json.loads(resp.read())["token"]
        yield Demo(url, var, proc.pid, started, token)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def test_demo_forwards_an_alert_within_a_minute(demo: Demo) -> None:
    with urllib.request.urlopen(demo.url + "/", timeout=5) as resp:
        assert b"Roadwatch" in resp.read()
    published = alerts = 0
    while time.monotonic() - demo.started < 60 and not (published and alerts):
        published = demo.get("/api/status")["alerts_published"]
        alerts = demo.get("/api/events?kind=intrusion&limit=5")["total"]
        time.sleep(1)
    log = (demo.var / "edge.log").read_text(errors="replace")[-2000:]
    assert alerts > 0, log
    assert published > 0, log
    nodes = demo.get("/api/nodes")["items"]
    assert [n["node"] for n in nodes] == ["demo-node"] and nodes[0]["state"] == "online"


def test_a_second_demo_in_the_same_folder_refuses_and_names_the_first(demo: Demo, shared_dir: Path) -> None:
    before = (demo.var / "edge.log").stat().st_size
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--var", str(demo.var), "--duration", "5"],
        cwd=ROOT,
        env=_env(shared_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "another demo is already running" in done.stderr
    assert f"pid {demo.pid}" in done.stderr
    assert demo.url + "/" in done.stderr
    assert str(demo.var) in done.stderr and "--var" in done.stderr
    assert (demo.var / "edge.log").stat().st_size >= before  # the first demo's log was not truncated


def test_the_demo_refuses_a_data_directory_without_the_clip(tmp_path: Path, shared_dir: Path) -> None:
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "videos").mkdir()
    (data / "models" / "yolo11n_int8.onnx").symlink_to(shared_dir / "models" / "yolo11n_int8.onnx")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--var", str(tmp_path / "var")],
        cwd=ROOT,
        env={**_env(shared_dir), "ROADWATCH_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "cameras.junction.source" in done.stderr and "intersection_cctv.mp4" in done.stderr
    assert "running" not in done.stdout
