#!/usr/bin/env python3
"""The demo (`make demo`): a local Mosquitto, the aggregator and an edge node on a looped sample clip.

Starts the three processes with configs written under var/demo/ (ports taken from configs/demo.yaml and
configs/central.demo.yaml, or free ones when those are busy), prints the dashboard address and the demo
login, and runs until Ctrl-C (or `--duration` seconds). Everything stops together.

One demo per folder: a lock in the folder (`demo.lock`, held with flock, so a killed demo leaves no stale
lock) makes a second `make demo` refuse with the running one's pid, ports and folder, instead of sharing
its store, outbox and logs. `--var OTHER` runs a fully separate demo. The edge config is checked
(`roadwatch-edge check`) before anything starts, so a missing model or clip is named at once.
"""

from __future__ import annotations

import argparse
import fcntl
import json
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


LOCK_NAME = "demo.lock"


def take_lock(var: Path) -> Any:
    """Hold `var/demo.lock` for this process's life; exit with the running demo's details when taken."""
    var.mkdir(parents=True, exist_ok=True)
    handle = (var / LOCK_NAME).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            other = json.loads(handle.read() or "{}")
        except ValueError:
            other = {}
        handle.close()
        sys.exit(
            f"another demo is already running in {var}: pid {other.get('pid', '?')}, dashboard "
            f"http://127.0.0.1:{other.get('http_port', '?')}/, broker port {other.get('mqtt_port', '?')}.\n"
            "Open that dashboard, stop that demo (Ctrl-C in its terminal, or kill "
            f"{other.get('pid', 'its pid')}), or start a separate one with its own folder: "
            ".venv/bin/python scripts/demo.py --var var/demo2"
        )
    return handle


def _record_lock(handle: Any, **info: Any) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), **info}))
    handle.flush()


def _check_edge(var: Path, env: dict[str, str]) -> None:
    """`roadwatch-edge check` the generated config: a missing model or clip stops the demo, named."""
    cmd = [sys.executable, "-m", "edge", "check", str(var / "edge.yaml")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr or done.stdout)
        sys.exit(done.returncode)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def write_configs(var: Path, edge_path: str, central_path: str) -> tuple[int, int]:
    """The demo's edge, aggregator and broker configs under `var`; returns (mqtt_port, http_port)."""
    edge_cfg = yaml.safe_load(Path(edge_path).read_text(encoding="utf-8"))
    central_cfg = yaml.safe_load(Path(central_path).read_text(encoding="utf-8"))
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
    return mqtt_port, http_port


def serve(var: Path, env: dict[str, str], ports: tuple[int, int], duration: float | None) -> int:
    """Start broker, aggregator and node; watch them until Ctrl-C, SIGTERM or `duration`."""
    mqtt_port, http_port = ports
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    logs = {name: (var / f"{name}.log").open("wb") for name in ("mosquitto", "central", "edge")}

    def start(name: str, cmd: list[str]) -> None:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        procs.append((name, proc))

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
        print(f"  folder      {var}   (store, outbox, logs {{edge,central,mosquitto}}.log)")
        print("  Ctrl-C stops everything.\n", flush=True)
        deadline = None if duration is None else time.monotonic() + duration
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
        _shutdown([proc for _name, proc in procs])
        for f in logs.values():
            f.close()
    return 0


def _shutdown(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


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

    lock = take_lock(var)  # held until this process ends
    ports = write_configs(var, args.edge_config, args.central_config)
    _record_lock(lock, mqtt_port=ports[0], http_port=ports[1], var=str(var))
    _check_edge(var, env)
    return serve(var, env, ports, args.duration)


if __name__ == "__main__":
    raise SystemExit(main())
