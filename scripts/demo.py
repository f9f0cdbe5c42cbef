#!/usr/bin/env python3
"""The demo (`make demo`): a local Mosquitto, the aggregator and an edge node on a looped sample clip.

Starts the three processes with configs written under var/demo/ (ports taken from configs/demo.yaml and
configs/central.demo.yaml, or free ones when those are busy), prints the dashboard address and the demo
login, and runs until Ctrl-C (or `--duration` seconds). Everything stops together.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _pick_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not found:
        sys.exit("mosquitto is not installed: run `make system` (or apt-get install mosquitto)")
    return found


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--edge-config", default=str(ROOT / "configs" / "demo.yaml"))
    p.add_argument("--central-config", default=str(ROOT / "configs" / "central.demo.yaml"))
    p.add_argument(
        "--var", default=str(ROOT / "var" / "demo"), help="folder for generated configs, data and logs"
    )
    args = p.parse_args(argv)
    var = Path(args.var).resolve()

    data = Path(os.environ.get("ROADWATCH_DATA_DIR") or ROOT.parent / "shared")
    if not (data / "models").is_dir() or not (data / "videos").is_dir():
        sys.exit(
            f"data directory {data} has no models/ and videos/: set ROADWATCH_DATA_DIR "
            "(models come from scripts/export_model.py on a machine with internet)"
        )
    env = {**os.environ, "ROADWATCH_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}

    var.mkdir(parents=True, exist_ok=True)
    edge_cfg = yaml.safe_load(Path(args.edge_config).read_text(encoding="utf-8"))
    central_cfg = yaml.safe_load(Path(args.central_config).read_text(encoding="utf-8"))
    mqtt_port = _pick_port(int(edge_cfg.get("mqtt", {}).get("port", 1883)))
    http_port = _pick_port(int(central_cfg.get("http", {}).get("port", 8080)))
    edge_cfg.setdefault("mqtt", {})["port"] = mqtt_port
    edge_cfg.setdefault("outbox", {})["path"] = str(var / "outbox.sqlite")
    central_cfg.setdefault("mqtt", {})["port"] = mqtt_port
    central_cfg.setdefault("http", {})["port"] = http_port
    central_cfg.setdefault("store", {})["url"] = f"sqlite:///{var / 'central.sqlite'}"
    central_cfg["store"]["snapshots_dir"] = str(var / "snapshots")
    _write_yaml(var / "edge.yaml", edge_cfg)
    _write_yaml(var / "central.yaml", central_cfg)
    (var / "mosquitto.conf").write_text(
        f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
        "log_type error\nlog_type warning\n",
        encoding="utf-8",
    )

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    logs = {name: (var / f"{name}.log").open("wb") for name in ("mosquitto", "central", "edge")}

    def start(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        procs.append((name, proc))
        return proc

    def shutdown(*_: Any) -> None:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        start("mosquitto", [_mosquitto(), "-c", str(var / "mosquitto.conf")])
        if not _wait_port(mqtt_port, 10):
            sys.exit(f"mosquitto did not start; see {var / 'mosquitto.log'}")
        start("central", [sys.executable, "-m", "central", "run", str(var / "central.yaml")])
        if not _wait_port(http_port, 30):
            sys.exit(f"the aggregator did not start; see {var / 'central.log'}")
        urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5).read()
        start("edge", [sys.executable, "-m", "edge", "run", str(var / "edge.yaml")])
        password = os.environ.get("ROADWATCH_ADMIN_PASSWORD", "roadwatch-demo")
        print("\nRoadwatch demo is running:")
        print(f"  dashboard   http://127.0.0.1:{http_port}/   (login: admin / {password})")
        print(f"  broker      mqtt://127.0.0.1:{mqtt_port}  (topics roadwatch/v1/#)")
        print(f"  logs        {var}/{{edge,central,mosquitto}}.log")
        print("  Ctrl-C stops everything.\n", flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for name, proc in procs:
                if proc.poll() is not None:
                    print(
                        f"{name} exited with code {proc.returncode}; see {var / (name + '.log')}",
                        file=sys.stderr,
                    )
                    return 1
            stop.wait(0.5)
    except KeyboardInterrupt:
        print("stopping...")
    finally:
        shutdown()
        for f in logs.values():
            f.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
