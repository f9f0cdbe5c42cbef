"""scripts/install_edge.sh and scripts/install_station.sh in dry-run mode against a scratch root.

ROADWATCH_ROOT points every path of the installers at a temporary directory, so a test can lay out the
state of a machine (a fresh one, or one installed before) and read what the installer would do about it;
ROADWATCH_ASSUME_SYSTEMD=1 shows the systemd steps on a machine without systemd. A dry run must leave
the root untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker, free_port, mosquitto_binary

pytestmark = pytest.mark.slow  # runs the real installer scripts in subprocesses: about 80 s in all

REPO = Path(__file__).resolve().parents[1]
EDGE = REPO / "scripts" / "install_edge.sh"
STATION = REPO / "scripts" / "install_station.sh"


def run(script: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROADWATCH_ROOT": str(root), "ROADWATCH_ASSUME_SYSTEMD": "1"}
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in root.rglob("*")}


def lay_out(root: Path, files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> None:
    for rel, content in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        if rel in executable:
            path.chmod(0o755)


def installed_edge(root: Path) -> None:
    """The state an earlier install of node gate1 left behind, with a technician's edits."""
    lay_out(
        root,
        {
            "/opt/roadwatch/venv/bin/python": "#!/bin/sh\n",
            "/etc/roadwatch/edge/gate1.yaml": "node_id: gate1\n# edited by the technician\n",
            "/etc/roadwatch/gate1.env": "ROADWATCH_MQTT_PASSWORD=secret\n",
            "/etc/systemd/system/roadwatch-edge@.service": (
                REPO / "systemd/roadwatch-edge@.service"
            ).read_bytes(),
            "/var/lib/roadwatch/edge/gate1/var/outbox.sqlite": b"events",
            "/var/lib/roadwatch/models/yolo11n_int8.onnx": b"model",
        },
        executable=("/opt/roadwatch/venv/bin/python",),
    )
    for rel in (
        "/opt/roadwatch",
        "/etc/roadwatch/edge",
        "/var/lib/roadwatch/models",
        "/var/lib/roadwatch/edge",
    ):
        (root / rel.lstrip("/")).mkdir(parents=True, exist_ok=True)


# --- edge --------------------------------------------------------------------------------------------------


def test_edge_fresh_machine(tmp_path: Path) -> None:
    result = run(EDGE, tmp_path, "--dry-run", "--node", "gate1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    r = str(tmp_path)
    expected = [
        "dry run: nothing will be changed",
        "would: useradd --system --user-group --home-dir /var/lib/roadwatch --no-create-home "
        "--shell /usr/sbin/nologin --comment Roadwatch\\ services roadwatch",
        f"would: install -d -m 0750 -o root -g roadwatch {r}/etc/roadwatch/edge",
        f"would: install -d -m 0750 -o roadwatch -g roadwatch {r}/var/lib/roadwatch",
        f"would: install -d -m 0750 -o roadwatch -g roadwatch {r}/var/lib/roadwatch/models",
        f"would: python3 -m venv {r}/opt/roadwatch/venv",
        f"would: {r}/opt/roadwatch/venv/bin/python -m pip install --quiet --disable-pip-version-check "
        f"--upgrade {REPO}\\[edge\\]",
        "would: write /etc/roadwatch/gate1.env (mode 0600, root) with 3 line(s)",
        f"would: install -m 0644 -o root -g root {REPO}/systemd/roadwatch-edge@.service "
        f"{r}/etc/systemd/system/roadwatch-edge@.service",
        "would: systemctl daemon-reload",
        "would: systemctl enable roadwatch-edge@gate1.service",
    ]
    for line in expected:
        assert line in lines, f"missing: {line}\n{result.stdout}"
    assert any(
        ln.startswith("would: install ")
        and ln.endswith(
            "with sed 's/^node_id:.*/node_id: gate1/;/^mqtt:/a\\  signing_key_file: /etc/roadwatch/edge/gate1.key'"
        )
        and "as /etc/roadwatch/edge/gate1.yaml (mode 0640, owner root:roadwatch)" in ln
        for ln in lines
    )
    # The order matters: user before directories owned by it, unit before enabling it.
    assert lines.index(expected[1]) < lines.index(expected[2])
    assert lines.index(expected[8]) < lines.index(expected[9]) < lines.index(expected[10])
    assert snapshot(tmp_path) == {}  # a dry run changes nothing


def test_edge_rerun_keeps_config_secrets_and_data(tmp_path: Path) -> None:
    installed_edge(tmp_path)
    before = snapshot(tmp_path)
    result = run(EDGE, tmp_path, "--dry-run", "--node", "gate1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ok: keeping existing /etc/roadwatch/edge/gate1.yaml" in out
    assert "ok: keeping existing /etc/roadwatch/gate1.env" in out
    assert "ok: /etc/systemd/system/roadwatch-edge@.service up to date" in out
    assert "ok: /opt/roadwatch/venv exists (use --upgrade to install this version into it)" in out
    changes = [ln for ln in out.splitlines() if ln.startswith("would:") and not ln.startswith("would: check")]
    assert not any("-m venv" in ln or "pip install" in ln for ln in changes)
    assert not any("gate1.yaml" in ln or "gate1.env" in ln for ln in changes)
    assert "outbox" not in out
    assert "no model in" not in result.stderr  # a model is there
    assert snapshot(tmp_path) == before


def test_edge_upgrade_reinstalls_the_package_only(tmp_path: Path) -> None:
    installed_edge(tmp_path)
    result = run(EDGE, tmp_path, "--dry-run", "--node", "gate1", "--upgrade")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    would = [ln for ln in lines if ln.startswith("would:") and not ln.startswith("would: check")]
    pip = (
        f"would: {tmp_path}/opt/roadwatch/venv/bin/python -m pip install --quiet --disable-pip-version-check "
    )
    assert f"{pip}--upgrade {REPO}\\[edge\\]" in would
    assert not any("-m venv" in ln for ln in would)
    assert not any("gate1.yaml" in ln or "gate1.env" in ln or "/var/lib/roadwatch/edge" in ln for ln in would)
    assert "(upgrade)" in result.stdout.splitlines()[1]


def test_edge_changed_unit_is_replaced_with_a_backup(tmp_path: Path) -> None:
    installed_edge(tmp_path)
    (tmp_path / "etc/systemd/system/roadwatch-edge@.service").write_text(
        "[Service]\nold=1\n", encoding="utf-8"
    )
    result = run(EDGE, tmp_path, "--dry-run", "--node", "gate1")
    unit = f"{tmp_path}/etc/systemd/system/roadwatch-edge@.service"
    would = [ln for ln in result.stdout.splitlines() if ln.startswith("would:")]
    assert any(ln.startswith(f"would: cp -p {unit} {unit}.bak-") for ln in would)
    assert f"would: install -m 0644 -o root -g root {REPO}/systemd/roadwatch-edge@.service {unit}" in would


def test_edge_copies_models_with_their_cards(tmp_path: Path) -> None:
    models = tmp_path / "usb"
    lay_out(models, {"m.onnx": b"x", "m.card.json": "{}", "notes.txt": "x"})
    root = tmp_path / "root"
    root.mkdir()
    result = run(EDGE, root, "--dry-run", "--node", "gate1", "--models-dir", str(models))
    would = [ln for ln in result.stdout.splitlines() if ln.startswith("would: install -m 0640")]
    assert sorted(Path(ln.split()[-1]).name for ln in would) == ["m.card.json", "m.onnx"]
    assert all(ln.split()[-1].startswith(f"{root}/var/lib/roadwatch/models/") for ln in would)


def test_edge_without_models_warns(tmp_path: Path) -> None:
    result = run(EDGE, tmp_path, "--dry-run", "--node", "gate1")
    assert "warning: no model in /var/lib/roadwatch/models yet" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node", "gate 1"], "node id 'gate 1'"),
        (["--node", "alerts"], "node id 'alerts'"),
        (["--node", "a/b"], "node id 'a/b'"),
        (["--frobnicate"], "unknown option --frobnicate"),
        (["--models-dir", "/nonexistent-dir"], "models folder /nonexistent-dir not found"),
        (["--template", "/nonexistent.yaml"], "config template /nonexistent.yaml not found"),
    ],
)
def test_edge_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(EDGE, tmp_path, "--dry-run", *args)
    assert result.returncode == 1
    assert f"error: {message}" in result.stderr
    assert snapshot(tmp_path) == {}


# --- station -----------------------------------------------------------------------------------------------


def test_station_fresh_machine(tmp_path: Path) -> None:
    result = run(STATION, tmp_path, "--dry-run", "--broker-name", "broker.test", "--add-node", "gate1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    r = str(tmp_path)
    expected = [
        f"would: {r}/opt/roadwatch/venv/bin/python -m pip install --quiet --disable-pip-version-check "
        f"--upgrade {REPO}\\[central\\]",
        "would: write /etc/roadwatch/central.env (mode 0600, root) with 4 line(s)",
        f"would: install -m 0644 -o root -g root {REPO}/configs/mosquitto/mosquitto.conf "
        f"{r}/etc/mosquitto/conf.d/roadwatch.conf",
        f"would: install -m 0644 -o root -g root {REPO}/configs/mosquitto/acl {r}/etc/mosquitto/roadwatch.acl",
        "would: add broker user aggregator to /etc/mosquitto/roadwatch.passwd (salted hash via mosquitto_passwd -U)",
        "would: add broker user gate1 to /etc/mosquitto/roadwatch.passwd (salted hash via mosquitto_passwd -U)",
        "would: write /etc/roadwatch/nodes/gate1.mqtt-password (mode 0600, root) with 1 line(s)",
        f"would: openssl req -newkey rsa:2048 -nodes -subj /CN=broker.test -keyout {r}/etc/roadwatch/ca/server.key "
        f"-out {r}/etc/roadwatch/ca/server.csr",
        "would: sign "
        + r
        + "/etc/roadwatch/ca/server.crt for DNS:broker.test with the Roadwatch CA (825 days)",
        "would: systemctl restart mosquitto",
        f"would: install -m 0644 -o root -g root {REPO}/systemd/roadwatch-central.service "
        f"{r}/etc/systemd/system/roadwatch-central.service",
        "would: systemctl enable roadwatch-central.service",
    ]
    for line in expected:
        assert line in lines, f"missing: {line}\n{result.stdout}"
    # Broker files and users before the broker restarts; the aggregator's unit after the broker.
    assert lines.index(expected[4]) < lines.index(expected[9]) < lines.index(expected[11])
    assert snapshot(tmp_path) == {}


def installed_station(root: Path) -> None:
    lay_out(
        root,
        {
            "/opt/roadwatch/venv/bin/python": "#!/bin/sh\n",
            "/etc/roadwatch/central.yaml": "# edited\n",
            "/etc/roadwatch/central.env": "ROADWATCH_CENTRAL_MQTT_PASSWORD=kept\n",
            "/etc/roadwatch/nodes/gate1.mqtt-password": "pw\n",
            "/etc/mosquitto/conf.d/roadwatch.conf": (REPO / "configs/mosquitto/mosquitto.conf").read_bytes(),
            "/etc/mosquitto/roadwatch.acl": (REPO / "configs/mosquitto/acl").read_bytes(),
            "/etc/mosquitto/roadwatch.passwd": "aggregator:$7$hash\ngate1:$7$hash\n",
            "/etc/mosquitto/certs/server.crt": "cert",
            "/etc/mosquitto/certs/server.key": "key",
            "/etc/systemd/system/roadwatch-central.service": (
                REPO / "systemd/roadwatch-central.service"
            ).read_bytes(),
            "/var/lib/roadwatch/central/var/central.sqlite": b"db",
        },
        executable=("/opt/roadwatch/venv/bin/python",),
    )


def test_station_rerun_keeps_accounts_certificates_and_data(tmp_path: Path) -> None:
    installed_station(tmp_path)
    before = snapshot(tmp_path)
    result = run(STATION, tmp_path, "--dry-run", "--add-node", "gate1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in (
        "ok: keeping existing /etc/roadwatch/central.yaml",
        "ok: keeping existing /etc/roadwatch/central.env",
        "ok: /etc/mosquitto/conf.d/roadwatch.conf up to date",
        "ok: /etc/mosquitto/roadwatch.acl up to date",
        "ok: broker user aggregator exists",
        "ok: broker user gate1 exists",
        "ok: broker certificate in /etc/mosquitto/certs",
        "ok: broker unchanged",
        "ok: /etc/systemd/system/roadwatch-central.service up to date",
    ):
        assert line in out.splitlines(), f"missing: {line}\n{out}"
    assert "openssl" not in out and "mosquitto_passwd" not in out and "restart mosquitto" not in out
    assert snapshot(tmp_path) == before


def test_station_adds_only_the_new_node(tmp_path: Path) -> None:
    installed_station(tmp_path)
    result = run(STATION, tmp_path, "--dry-run", "--add-node", "gate1", "--add-node", "market2")
    out = result.stdout.splitlines()
    assert "ok: broker user gate1 exists" in out
    assert (
        "would: add broker user market2 to /etc/mosquitto/roadwatch.passwd (salted hash via mosquitto_passwd -U)"
        in out
    )
    assert "would: systemctl restart mosquitto" in out


def test_station_without_broker(tmp_path: Path) -> None:
    result = run(STATION, tmp_path, "--dry-run", "--no-broker")
    assert result.returncode == 0, result.stderr
    assert "mosquitto" not in "".join(ln for ln in result.stdout.splitlines() if ln.startswith("would:"))
    assert "would: systemctl enable roadwatch-central.service" in result.stdout.splitlines()


@pytest.mark.parametrize("node", ["aggregator", "alerts", "bad name"])
def test_station_refuses_reserved_or_bad_node_names(tmp_path: Path, node: str) -> None:
    result = run(STATION, tmp_path, "--dry-run", "--add-node", node)
    assert result.returncode == 1
    assert f"error: node id '{node}'" in result.stderr


def test_station_config_from_the_example_logs_in_as_the_acl_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installer's sed turns the example's MQTT user into the ACL's `aggregator`; the result is valid."""
    from central.config import load_config

    out = tmp_path / "central.yaml"
    sed = subprocess.run(
        ["sed", r"s/^\(  username:\) central$/\1 aggregator/", str(REPO / "configs/central.example.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    out.write_text(sed.stdout, encoding="utf-8")
    monkeypatch.setenv("ROADWATCH_CENTRAL_MQTT_PASSWORD", "from-central.env")  # the secrets the example names
    monkeypatch.setenv("ROADWATCH_WEBHOOK_SECRET", "from-central.env")
    acl = (REPO / "configs/mosquitto/acl").read_text(encoding="utf-8")
    assert "user aggregator" in acl.splitlines()
    assert load_config(str(out)).mqtt.username == "aggregator"


@pytest.mark.parametrize("script", [EDGE, STATION], ids=["edge", "station"])
def test_help_and_syntax(tmp_path: Path, script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    result = run(script, tmp_path, "--help")
    assert result.returncode == 0
    assert "--dry-run" in result.stdout and "--upgrade" in result.stdout
    if shutil.which("shellcheck"):
        lint = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout


# --- real runs into a scratch root ----------------------------------------------------------------------------


SHIMS = {
    "apt-get": "exit 0",
    "useradd": "exit 0",
    "mosquitto_sub": "exit 0",  # stands for the mosquitto-clients package, which the tests do not need
    # Units are enabled and running when FAKE_ACTIVE=1; other systemctl calls succeed.
    "systemctl": 'case "$1" in is-enabled|is-active) [ "${FAKE_ACTIVE:-0}" = 1 ] && exit 0; exit 1;; esac; exit 0',
    # The config check: record which secret it saw instead of switching user and running it.
    "runuser": 'echo "  saw ROADWATCH_MQTT_PASSWORD=${ROADWATCH_MQTT_PASSWORD:-}" >> "$LOG"; exit 0',
}


def real_run(
    script: Path, root: Path, *args: str, systemd: bool = False, active: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run for real into `root` as the current user; apt-get, useradd, systemctl and runuser are logged stubs."""
    if os.geteuid() != 0:
        pytest.skip("a real install sets file owners: run as root")
    shims = root.parent / "shims"
    shims.mkdir(exist_ok=True)
    for name, body in SHIMS.items():
        shim = shims / name
        shim.write_text(
            f'#!/bin/sh\nLOG="{root.parent}/shims.log"\necho "{name} $*" >> "$LOG"\n{body}\n',
            encoding="utf-8",
        )
        shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shims}:{os.environ['PATH']}",
        "ROADWATCH_ROOT": str(root),
        "ROADWATCH_SERVICE_USER": "root",
        "ROADWATCH_SERVICE_GROUP": "root",
        "ROADWATCH_ASSUME_SYSTEMD": "1" if systemd else "0",
        "FAKE_ACTIVE": "1" if active else "0",
    }
    # An existing virtualenv: the Python package install itself is pip's business, not tested here.
    lay_out(
        root,
        {"/opt/roadwatch/venv/bin/python": "#!/bin/sh\n"},
        executable=("/opt/roadwatch/venv/bin/python",),
    )
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_edge_real_install_then_rerun_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    first = real_run(EDGE, root, "--node", "gate1")
    assert first.returncode == 0, first.stdout + first.stderr
    config = root / "etc/roadwatch/edge/gate1.yaml"
    assert config.read_text(encoding="utf-8").count("node_id: gate1\n") == 1
    assert mode(config) == 0o640
    env_file = root / "etc/roadwatch/gate1.env"
    assert mode(env_file) == 0o600 and "#ROADWATCH_MQTT_PASSWORD=" in env_file.read_text(encoding="utf-8")
    unit = root / "etc/systemd/system/roadwatch-edge@.service"
    assert unit.read_bytes() == (REPO / "systemd/roadwatch-edge@.service").read_bytes()
    assert mode(root / "var/lib/roadwatch") == 0o750
    assert not (tmp_path / "shims.log").exists()  # nothing to apt-get, the user exists, no systemd
    key = root / "etc/roadwatch/edge/gate1.key"  # the node's signing key, for the service user only
    assert mode(key) == 0o400 and b"BEGIN PRIVATE KEY" in key.read_bytes()
    from edge.transport.signing import Signer

    public = Signer.from_file(key).public_key_b64()
    assert f"note:   central.yaml signatures.keys.gate1: {public}" in first.stdout.splitlines()
    # the new node's config names the key, so it signs from its first start
    assert (
        "ok: /etc/roadwatch/edge/gate1.yaml signs events with /etc/roadwatch/edge/gate1.key" in first.stdout
    )
    from edge.config import load_config

    assert load_config(config).mqtt.signing_key_file == "/etc/roadwatch/edge/gate1.key"

    config.write_text("node_id: gate1\n# the technician's cameras\n", encoding="utf-8")
    before = snapshot(root)
    second = real_run(EDGE, root, "--node", "gate1")
    assert second.returncode == 0, second.stderr
    assert not any(ln.startswith("+ ") for ln in second.stdout.splitlines()), second.stdout
    assert snapshot(root) == before

    # With systemd and an outdated unit: replace it, reload, enable, check the config as the service would
    # see it (secrets from the env file), restart.
    env_file.write_text("ROADWATCH_MQTT_PASSWORD=from-env-file\n", encoding="utf-8")
    unit.write_text("[Service]\n# an older version\n", encoding="utf-8")
    third = real_run(EDGE, root, "--node", "gate1", systemd=True)
    assert third.returncode == 0, third.stderr
    assert unit.read_bytes() == (REPO / "systemd/roadwatch-edge@.service").read_bytes()
    assert [p.read_text(encoding="utf-8") for p in unit.parent.glob("roadwatch-edge@.service.bak-*")] == [
        "[Service]\n# an older version\n"
    ]
    assert (tmp_path / "shims.log").read_text(encoding="utf-8").splitlines() == [
        "systemctl daemon-reload",
        "systemctl is-enabled --quiet roadwatch-edge@gate1.service",
        "systemctl enable roadwatch-edge@gate1.service",  # a change: restart without asking is-active
        "runuser -u root -- /opt/roadwatch/venv/bin/roadwatch-edge check /etc/roadwatch/edge/gate1.yaml",
        "  saw ROADWATCH_MQTT_PASSWORD=from-env-file",
        "systemctl restart roadwatch-edge@gate1.service",
    ]

    # Enabled, running, nothing changed: a re-run leaves the node alone (no reload, no restart).
    (tmp_path / "shims.log").unlink()
    fourth = real_run(EDGE, root, "--node", "gate1", systemd=True, active=True)
    assert fourth.returncode == 0, fourth.stderr
    assert "ok: roadwatch-edge@gate1.service running, nothing changed" in fourth.stdout.splitlines()
    assert (tmp_path / "shims.log").read_text(encoding="utf-8").splitlines() == [
        "systemctl is-enabled --quiet roadwatch-edge@gate1.service",
        "systemctl is-active --quiet roadwatch-edge@gate1.service",
    ]


def _login(host: str, port: int, user: str, password: str, ca_file: Path | None = None) -> int:
    """The CONNACK reason code the broker gives this account (0: accepted), over TLS with `ca_file`."""
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    codes: list[int] = []
    done = threading.Event()

    def on_connect(_c: Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        codes.append(int(reason.value))
        done.set()

    client = Client(CallbackAPIVersion.VERSION2, client_id=f"install-test-{user}")
    client.username_pw_set(user, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file))
        client.tls_insecure_set(True)  # the certificate names broker.test; the chain is still verified
    client.on_connect = on_connect
    client.connect(host, port)
    client.loop_start()
    try:
        assert done.wait(10), f"no CONNACK for {user}"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


# /etc/mosquitto/mosquitto.conf as Debian's mosquitto package ships it.
DEBIAN_MOSQUITTO_CONF = """\
pid_file /run/mosquitto/mosquitto.pid
persistence true
persistence_location /var/lib/mosquitto/
log_dest file /var/log/mosquitto/mosquitto.log
include_dir /etc/mosquitto/conf.d
"""


def test_shipped_broker_ties_client_ids_to_users_on_every_listener() -> None:
    """use_username_as_clientid is a listener setting: every listener block the installer ships has it."""
    text = (REPO / "configs/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    blocks = text.split("\nlistener ")[1:]
    assert len(blocks) == 2
    assert all("\nuse_username_as_clientid true\n" in block for block in blocks)


def test_station_real_install_broker_accepts_the_generated_accounts(tmp_path: Path) -> None:
    for tool in ("mosquitto_passwd", "openssl"):
        if not (shutil.which(tool) or Path("/usr/bin", tool).exists()):
            pytest.fail(f"{tool} is missing (installed with mosquitto / openssl)")
    root = tmp_path / "root"
    root.mkdir()
    lay_out(root, {"/etc/mosquitto/mosquitto.conf": DEBIAN_MOSQUITTO_CONF})
    first = real_run(STATION, root, "--broker-name", "broker.test", "--add-node", "gate1")
    assert first.returncode == 0, first.stdout + first.stderr
    etc = root / "etc"
    passwd = etc / "mosquitto/roadwatch.passwd"
    env_file = etc / "roadwatch/central.env"
    node_secret = etc / "roadwatch/nodes/gate1.mqtt-password"
    env_lines = env_file.read_text(encoding="utf-8").splitlines()
    agg_password = next(
        ln.split("=", 1)[1] for ln in env_lines if ln.startswith("ROADWATCH_CENTRAL_MQTT_PASSWORD=")
    )
    node_password = node_secret.read_text(encoding="utf-8").strip()
    assert mode(env_file) == 0o600 and mode(node_secret) == 0o600 and mode(passwd) == 0o600
    users = dict(ln.split(":", 1) for ln in passwd.read_text(encoding="utf-8").splitlines())
    assert sorted(users) == ["aggregator", "gate1"]
    assert agg_password not in passwd.read_text(encoding="utf-8")  # hashed, never stored in clear
    assert (
        "  username: aggregator" in (etc / "roadwatch/central.yaml").read_text(encoding="utf-8").splitlines()
    )
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(etc / "roadwatch/ca/ca.crt"),
            str(etc / "mosquitto/certs/server.crt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert mode(etc / "mosquitto/certs/server.key") == 0o600

    # Debian's layout: its mosquitto.conf, then the installed conf.d file with the installed ACL, password
    # file and certificates. Both accounts get in over loopback, a node over TLS, a wrong password not.
    loopback, tls = free_port(), free_port()
    run_dir = tmp_path / "broker"
    (run_dir / "conf.d").mkdir(parents=True)
    (run_dir / "conf.d/roadwatch.conf").write_text(
        (etc / "mosquitto/conf.d/roadwatch.conf")
        .read_text(encoding="utf-8")
        .replace("/etc/mosquitto/", f"{etc}/mosquitto/")
        .replace("listener 1883 127.0.0.1", f"listener {loopback} 127.0.0.1")
        .replace("listener 8883", f"listener {tls} 127.0.0.1"),
        encoding="utf-8",
    )
    main_conf = run_dir / "mosquitto.conf"
    main_conf.write_text(
        DEBIAN_MOSQUITTO_CONF.replace("/var/lib/mosquitto/", f"{run_dir}/")
        .replace("log_dest file /var/log/mosquitto/mosquitto.log", "log_dest stderr")
        .replace("pid_file /run/mosquitto/mosquitto.pid", "user root")  # pytest's tmp is private to root
        .replace("/etc/mosquitto/conf.d", f"{run_dir}/conf.d"),
        encoding="utf-8",
    )
    binary = mosquitto_binary()
    assert binary is not None
    broker = Broker(binary=binary, conf=main_conf, port=loopback, log=run_dir / "mosquitto.log")
    try:
        broker.start()
    except TimeoutError:
        pytest.fail((run_dir / "mosquitto.log").read_text(encoding="utf-8"))
    try:
        assert _login(broker.host, loopback, "aggregator", agg_password) == 0
        assert _login(broker.host, loopback, "gate1", node_password) == 0
        assert _login(broker.host, loopback, "gate1", "wrong") != 0
        assert _login(broker.host, tls, "gate1", node_password, ca_file=etc / "roadwatch/ca/ca.crt") == 0
    finally:
        broker.stop()

    before = snapshot(root)
    second = real_run(STATION, root, "--broker-name", "broker.test", "--add-node", "gate1")
    assert second.returncode == 0, second.stderr
    assert "ok: broker unchanged" in second.stdout.splitlines()
    assert not any(ln.startswith("+ ") for ln in second.stdout.splitlines()), second.stdout
    assert snapshot(root) == before

    third = real_run(
        STATION, root, "--broker-name", "broker.test", "--add-node", "gate1", "--add-node", "market2"
    )
    assert third.returncode == 0, third.stderr
    after = dict(ln.split(":", 1) for ln in passwd.read_text(encoding="utf-8").splitlines())
    assert sorted(after) == ["aggregator", "gate1", "market2"]
    assert after["gate1"] == users["gate1"] and after["aggregator"] == users["aggregator"]
