"""Aggregator configuration and CLI: shipped configs pass, mistakes read as `file: field.path: reason`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from central.auth import verify_password
from central.config import load_config
from common.yamlconf import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_shipped_configs_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROADWATCH_CENTRAL_MQTT_PASSWORD", "x")
    monkeypatch.setenv("ROADWATCH_WEBHOOK_SECRET", "y")
    example = load_config(ROOT / "configs/central.example.yaml")
    assert (
        example.mqtt.client_id == "roadwatch-central" and example.forwarding.rules[0].time_of_day is not None
    )
    demo = load_config(ROOT / "configs/central.demo.yaml")
    assert demo.accounts[0].username == "admin" and demo.accounts[0].role == "admin"
    assert demo.store.sqlite_path == Path("var/central-demo.sqlite") and demo.http.port == 8080


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return [line.removeprefix(f"{path}: ") for line in exc.value.lines]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "mqtt: {hostt: x}\n",
            "mqtt.hostt: unknown key (did you mean 'host'? check the spelling; see configs/central.example.yaml)",
        ),
        (
            "mqtt: {password: hunter2}\n",
            "mqtt.password: secrets are not read from the YAML; use password: {env: NAME} or {file: PATH}",
        ),
        (
            "mqtt: {password: {env: RW_SURELY_UNSET_VAR}}\n",
            "mqtt.password: environment variable RW_SURELY_UNSET_VAR is not set",
        ),
        (
            "store: {url: 'postgresql://rw:hunter2@db/roadwatch'}\n",
            "store.url: no password in the URL; use store.password: {env: NAME} or {file: PATH}",
        ),
        ("http: {port: 70000}\n", "http.port: Input should be less than or equal to 65535"),
        (
            "forwarding: {rules: [{name: a, webhooks: [police]}]}\n",
            "forwarding.rules[a].webhooks: no webhook named 'police' (have [])",
        ),
        (
            "forwarding: {rules: [{name: a, time_of_day: {from: '25:00', to: '05:00'}}]}\n",
            "forwarding.rules[a].time_of_day.from: String should match pattern"
            " '^([01][0-9]|2[0-3]):[0-5][0-9]$'",
        ),
        (
            "accounts: [{username: a, password_hash: plain}]\n",
            "accounts[0].password_hash: not a hash from `roadwatch-central hash-password`",
        ),
        (
            "accounts: [{username: a, role: god, password_hash: 'scrypt$1'}]\n",
            "accounts[0].role: Input should be 'viewer', 'operator' or 'admin'",
        ),
        ("timezone: Mars/Olympus\n", "timezone: unknown time zone 'Mars/Olympus'"),
        (
            "mqtt: {shared_group: g, protocol: '3.1.1'}\n",
            "mqtt.shared_group: shared subscriptions need protocol '5'",
        ),
        ("- 1\n", "(top level): expected a mapping of settings, got list"),
        ("mqtt:\n  host: a\n  host: b\n", "line 3, column 3: YAML error: duplicate key 'host'"),
        ("mqtt: [\n", "line 2, column 1: YAML error: expected the node content, but found '<stream end>'"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _errors(tmp_path, text)


@pytest.mark.slow  # starts the CLI in subprocesses
def test_cli_check_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("http: {bind: 1}\n", encoding="utf-8")
    r = _cli("check", str(bad))
    assert (
        r.returncode == 2
        and r.stderr.strip()
        == f"{bad}: http.bind: unknown key (check the spelling; see configs/central.example.yaml)"
    )
    r = _cli("check", "configs/central.demo.yaml")
    assert r.returncode == 0 and "OK" in r.stdout
    r = _cli("run", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "cannot read file" in r.stderr


@pytest.mark.slow  # starts the CLI in subprocesses
def test_cli_hash_password_and_token() -> None:
    r = _cli("hash-password", "--stdin", stdin="a long password\n")
    assert r.returncode == 0 and verify_password("a long password", r.stdout.strip())
    assert not verify_password("another password", r.stdout.strip())
    assert _cli("hash-password", "--stdin", stdin="short\n").returncode == 2
    r = _cli("hash-password", "--token")
    token_line, hash_line = r.stdout.splitlines()
    assert token_line.startswith("token:") and hash_line.startswith("token_hash: sha256$")
