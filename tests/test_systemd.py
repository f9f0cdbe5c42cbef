"""The systemd units: their keys (always), `systemd-analyze verify` (where it exists: always under CI, which
installs it with scripts/install_system_deps.sh), and the notifications a real edge node sends to a
notification socket, as systemd would receive them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import Broker, require

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
EDGE_UNIT = UNITS / "roadwatch-edge@.service"
CENTRAL_UNIT = UNITS / "roadwatch-central.service"
INSTALLED_BIN = "/opt/roadwatch/venv/bin/"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections of `key=value` lists (a key may repeat), the way systemd reads a unit file."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"line {number}: key outside a section: {line}"
        assert "=" in line, f"line {number}: not key=value: {line}"
        assert not line.endswith("\\"), f"line {number}: continuation lines are not used here"
        key, value = line.split("=", 1)
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, found {values}"
    return values[0]


@pytest.fixture(params=[EDGE_UNIT, CENTRAL_UNIT], ids=["edge", "central"])
def unit(request: pytest.FixtureRequest) -> Unit:
    path: Path = request.param
    return parse_unit(path.read_text(encoding="utf-8"))


# Hardening every unit carries, with its value.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "UMask": "0027",
}


def test_service_supervision(unit: Unit) -> None:
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "WatchdogSec") == "30"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert "2" in one(unit, "Service", "RestartPreventExitStatus").split()  # bad config: no restart loop
    assert int(one(unit, "Unit", "StartLimitBurst")) >= 1
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_runs_unprivileged_with_hardening(unit: Unit) -> None:
    assert one(unit, "Service", "User") == "roadwatch"
    assert one(unit, "Service", "Group") == "roadwatch"
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    assert "DynamicUser" not in unit["Service"]
    families = set(one(unit, "Service", "RestrictAddressFamilies").split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families
    assert "AF_PACKET" not in families


def test_writes_only_its_own_data_directory(unit: Unit) -> None:
    writable = " ".join(unit["Service"]["ReadWritePaths"]).split()
    workdir = one(unit, "Service", "WorkingDirectory")
    state = one(unit, "Service", "StateDirectory")
    assert writable == [workdir]
    assert workdir == f"/var/lib/{state}"
    assert workdir.startswith("/var/lib/roadwatch/")
    for key in ("ReadWriteDirectories", "InaccessibleDirectories", "BindPaths"):
        assert key not in unit["Service"]


def test_secrets_and_logs(unit: Unit) -> None:
    env_file = one(unit, "Service", "EnvironmentFile")
    assert env_file.startswith("-/etc/roadwatch/") and env_file.endswith(".env")  # optional, outside the YAML
    inline = [v.upper() for v in unit["Service"].get("Environment", [])]
    assert not any("PASSWORD" in v or "SECRET" in v for v in inline)
    assert one(unit, "Service", "StandardOutput") == "journal"
    assert one(unit, "Service", "StandardError") == "journal"


def test_edge_unit_is_one_instance_per_node_config() -> None:
    unit = parse_unit(EDGE_UNIT.read_text(encoding="utf-8"))
    exec_start = one(unit, "Service", "ExecStart").split()
    assert exec_start == [f"{INSTALLED_BIN}roadwatch-edge", "run", "/etc/roadwatch/edge/%i.yaml"]
    assert one(unit, "Service", "StateDirectory") == "roadwatch/edge/%i"
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/roadwatch/%i.env"
    assert "ROADWATCH_DATA_DIR=/var/lib/roadwatch" in unit["Service"]["Environment"]
    assert "network-online.target" in one(unit, "Unit", "After").split()


def test_central_unit_runs_the_station_config() -> None:
    unit = parse_unit(CENTRAL_UNIT.read_text(encoding="utf-8"))
    exec_start = one(unit, "Service", "ExecStart").split()
    assert exec_start == [f"{INSTALLED_BIN}roadwatch-central", "run", "/etc/roadwatch/central.yaml"]
    assert one(unit, "Service", "PrivateDevices") == "yes"  # unlike the edge, it needs no camera or GPU
    assert "mosquitto.service" in one(unit, "Unit", "After").split()


# --- systemd-analyze verify ------------------------------------------------------------------------------


def _verify_tool() -> str:
    tool = shutil.which("systemd-analyze")
    require(tool is not None, "systemd-analyze is not installed (apt-get install systemd)")
    assert tool is not None
    return tool


def _verify(tool: str, unit_file: Path) -> tuple[int, list[str]]:
    """Run verify; return its code and every message line about our file (other units' noise is dropped)."""
    run = subprocess.run(
        [tool, "verify", "--man=no", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if unit_file.stem.split("@")[0] in ln]
    return run.returncode, lines


def _local_copy(unit_file: Path, tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart at this virtualenv's console script: verify checks that it is executable."""
    bindir = Path(sys.executable).parent
    text = unit_file.read_text(encoding="utf-8").replace(INSTALLED_BIN, f"{bindir}/")
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize(
    ("unit_file", "names"),
    [
        (EDGE_UNIT, ["roadwatch-edge@.service", "roadwatch-edge@gate1.service"]),
        (CENTRAL_UNIT, ["roadwatch-central.service"]),
    ],
    ids=["edge", "central"],
)
def test_systemd_analyze_verify(tmp_path: Path, unit_file: Path, names: list[str]) -> None:
    tool = _verify_tool()
    for name in names:
        program = Path(sys.executable).parent / unit_file.stem.split("@")[0]
        require(program.exists(), f"{program} is missing: install the project into this virtualenv")
        code, messages = _verify(tool, _local_copy(unit_file, tmp_path, name))
        assert code == 0, messages
        assert messages == [], messages  # also no "Unknown key" warnings, which verify reports with code 0


def test_verify_catches_a_misspelt_key(tmp_path: Path) -> None:
    """Control: the check above would notice a typo in a hardening key."""
    tool = _verify_tool()
    copy = _local_copy(EDGE_UNIT, tmp_path, "roadwatch-edge@typo.service")
    text = copy.read_text(encoding="utf-8").replace("NoNewPrivileges=", "NoNewPrivilege=")
    copy.write_text(text, encoding="utf-8")
    _, messages = _verify(tool, copy)
    assert any("Unknown key" in m and "NoNewPrivilege" in m for m in messages), messages


# --- notifications of a real edge node --------------------------------------------------------------------


@dataclass
class NotifyReceiver:
    """systemd's side of the notification socket: a thread reads datagrams as PID 1 would."""

    path: Path
    messages: list[str] = field(default_factory=list)


@pytest.fixture
def notify_receiver(tmp_path: Path) -> Iterator[NotifyReceiver]:
    receiver = NotifyReceiver(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(receiver.path))
    sock.settimeout(0.1)
    done = threading.Event()

    def _read() -> None:
        while not done.is_set():
            try:
                receiver.messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=_read, daemon=True)
    reader.start()
    try:
        yield receiver
    finally:
        done.set()
        reader.join(timeout=5)
        sock.close()


@pytest.mark.integration
def test_edge_node_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, shared_dir: Path, vtest_path: Path, notify_receiver: NotifyReceiver
) -> None:
    model = shared_dir / "models" / "yolox_nano.onnx"
    require(model.is_file(), f"{model} is missing")
    config = tmp_path / "node.yaml"
    config.write_text(
        f"""\
node_id: notify-test
model: {{path: "{model}", intra_op_threads: 1}}
metrics: {{enabled: false}}
outbox: {{path: "{tmp_path}/outbox.sqlite"}}
cameras:
  - id: campus
    name: vtest
    source: "{vtest_path}"
    detect_fps: 10
""",
        encoding="utf-8",
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_receiver.path), "WATCHDOG_USEC": "30000000"}
    env.pop("WATCHDOG_PID", None)
    run = subprocess.run(
        [sys.executable, "-m", "edge", "run", str(config), "--no-mqtt", "--max-frames", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    time.sleep(0.3)  # let the reader take the last datagrams
    messages = list(notify_receiver.messages)
    kinds = [m.splitlines()[0] for m in messages]
    assert "READY=1" in kinds, messages
    assert kinds[-1] == "STOPPING=1", messages
    ready_at = kinds.index("READY=1")
    # The detection loop feeds the watchdog once it is running, and nothing is sent after STOPPING=1.
    assert "WATCHDOG=1" in kinds[ready_at:], messages
    assert kinds.count("READY=1") == 1 and kinds.count("STOPPING=1") == 1


@pytest.mark.integration
def test_edge_bad_config_exits_2_so_systemd_does_not_restart(tmp_path: Path) -> None:
    """RestartPreventExitStatus=2 only helps if a bad config really exits 2, before READY=1."""
    config = tmp_path / "bad.yaml"
    config.write_text("node_id: x\ncameras: []\nunknown_key: 1\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "edge", "run", str(config), "--no-mqtt"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert f"{config}:" in run.stderr


@pytest.mark.integration
def test_central_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, broker: Broker, notify_receiver: NotifyReceiver
) -> None:
    """The aggregator says READY=1 once HTTP listens, feeds a 2 s watchdog while idle, STOPPING=1 on SIGTERM."""
    config = tmp_path / "central.yaml"
    config.write_text(
        f"""\
mqtt: {{host: {broker.host}, port: {broker.port}, client_id: notify-test}}
store: {{url: "sqlite:///{tmp_path}/central.sqlite", snapshots_dir: "{tmp_path}/snapshots"}}
http: {{host: 127.0.0.1, port: 0}}
""",
        encoding="utf-8",
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_receiver.path), "WATCHDOG_USEC": "2000000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "run", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            kinds = [m.splitlines()[0] for m in notify_receiver.messages]
            if "READY=1" in kinds and kinds[kinds.index("READY=1") :].count("WATCHDOG=1") >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    time.sleep(0.3)
    kinds = [m.splitlines()[0] for m in notify_receiver.messages]
    assert kinds.count("READY=1") == 1, kinds
    assert kinds[kinds.index("READY=1") :].count("WATCHDOG=1") >= 2, kinds  # pings keep coming while idle
    assert kinds[-1] == "STOPPING=1", kinds
