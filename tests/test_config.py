"""Broken configuration files: each gives its `file: field.path: reason` line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.yamlconf import ConfigError
from edge.capture.sourceurl import has_inline_password
from edge.cli import main
from edge.config import load_config

GOOD = """\
node_id: road-1
cameras:
  - id: gate
    name: Cổng chợ
    source: "{data}/videos/vtest.avi"
    reference_size: [768, 576]
    lines:
      north: {points: [[100, 400], [700, 400]], in_name: towards town, out_name: towards the ferry}
    zones:
      market: {points: [[0, 300], [768, 300], [768, 576], [0, 576]]}
    rules:
      - {kind: line_crossing, name: north-count, line: north}
"""

# (name, yaml text, environment, expected error line after "<file>: ")
BROKEN: list[tuple[str, str, dict[str, str], str]] = [
    (
        "unknown key",
        GOOD.replace("    name: Cổng chợ", "    nmae: Cổng chợ"),
        {},
        "cameras.gate.nmae: unknown key (did you mean 'name'?",
    ),
    (
        "misspelled top-level section",
        GOOD + "mqtt:\n  prot: 1884\n",
        {},
        "mqtt.prot: unknown key (did you mean 'port'?",
    ),
    (
        "misspelled key in a named line",
        GOOD.replace("in_name: towards town", "in_nmae: towards town"),
        {},
        "cameras.gate.lines.north.in_nmae: unknown key (did you mean 'in_name'?",
    ),
    (
        "misspelled key in a named rule",
        GOOD.replace("line: north}", "line: north, summary_intervals_s: 5}"),
        {},
        "cameras.gate.rules[north-count].summary_intervals_s: unknown key (did you mean 'summary_interval_s'?",
    ),
    (
        "unknown key with nothing close",
        GOOD.replace("    name: Cổng chợ", "    xyzzy: 1"),
        {},
        "cameras.gate.xyzzy: unknown key (check the spelling",
    ),
    (
        "wrong type",
        GOOD.replace(
            "    reference_size: [768, 576]", "    reference_size: [768, 576]\n    detect_fps: fast"
        ),
        {},
        "cameras.gate.detect_fps: Input should be a valid number",
    ),
    (
        "missing source",
        GOOD.replace('    source: "{data}/videos/vtest.avi"\n', ""),
        {},
        "cameras.gate.source: Field required",
    ),
    (
        "password written in the stream URL",
        GOOD.replace('"{data}/videos/vtest.avi"', "rtsp://admin:12345@10.0.0.21:554/Streaming/Channels/102"),
        {},
        "cameras.gate.source: a password is written in the URL",
    ),
    (
        "password as a URL parameter of the substream",
        GOOD.replace(
            '    source: "{data}/videos/vtest.avi"\n',
            '    source: "{data}/videos/vtest.avi"\n    substream: "http://10.0.0.22/mjpg?user=admin&pwd=12345"\n',
        ),
        {},
        "cameras.gate.substream: a password is written in the URL",
    ),
    (
        "point outside frame",
        GOOD.replace("[[100, 400], [700, 400]]", "[[100, 400], [900, 400]]"),
        {},
        "cameras.gate.lines.north: point [900.0, 400.0] is outside the frame",
    ),
    (
        "degenerate line",
        GOOD.replace("[[100, 400], [700, 400]]", "[[100, 400], [100, 400]]"),
        {},
        "cameras.gate.lines.north: line points must differ",
    ),
    (
        "negative coordinate",
        GOOD.replace("[[100, 400], [700, 400]]", "[[-5, 400], [700, 400]]"),
        {},
        "cameras.gate.lines.north.points[0][0]: Input should be greater than or equal to 0",
    ),
    (
        "duplicate camera id",
        GOOD + "  - {id: gate, source: rtsp://10.0.0.2/stream}\n",
        {},
        "cameras.gate.id: duplicate camera id 'gate'",
    ),
    (
        "secret variable unset",
        GOOD + "mqtt:\n  username: road-1\n  password: {env: RW_TEST_UNSET_PASSWORD}\n",
        {},
        "mqtt.password: environment variable RW_TEST_UNSET_PASSWORD is not set",
    ),
    (
        "secret inline",
        GOOD + "mqtt:\n  password: hunter2\n",
        {},
        "mqtt.password: secrets are not read from the YAML",
    ),
    (
        "unknown rule line",
        GOOD.replace("line: north}", "line: south}"),
        {},
        "cameras.gate.rules[north-count].line: no line named 'south' on this camera",
    ),
    (
        "unknown rule kind",
        GOOD.replace("kind: line_crossing", "kind: teleport"),
        {},
        "cameras.gate.rules[north-count]: Input tag 'teleport' found using 'kind' does not match",
    ),
    (
        "unknown class",
        GOOD.replace(
            "    reference_size: [768, 576]", "    reference_size: [768, 576]\n    classes: [car, tank]"
        ),
        {},
        "cameras.gate.classes: unknown class name(s) ['tank']",
    ),
    ("bad time zone", "timezone: Asia/Atlantis\n" + GOOD, {}, "timezone: unknown time zone 'Asia/Atlantis'"),
    ("no cameras", "node_id: road-1\ncameras: []\n", {}, "cameras: List should have at least 1 item"),
    (
        "bad node id",
        GOOD.replace("node_id: road-1", "node_id: road/1"),
        {},
        "node_id: String should match pattern",
    ),
    (
        "duplicate yaml key",
        GOOD.replace("node_id: road-1\n", "node_id: road-1\nnode_id: road-2\n"),
        {},
        "line 2, column 1: YAML error: duplicate key 'node_id'",
    ),
    ("yaml syntax", GOOD + "  - id: [unclosed\n", {}, "line 14, column 1: YAML error: expected ',' or ']'"),
    ("not a mapping", "- just\n- a list\n", {}, "(top level): expected a mapping of settings, got list"),
    (
        "zone without area",
        GOOD.replace("[[0, 300], [768, 300], [768, 576], [0, 576]]", "[[0, 300], [100, 300], [200, 300]]"),
        {},
        "cameras.gate.zones.market: zone polygon has no area",
    ),
    (
        "camera password unset",
        GOOD.replace(
            '"{data}/videos/vtest.avi"',
            '"rtsp://viewer:${RW_TEST_CAM_PW}@10.0.0.2:554/Streaming/Channels/102"',
        ),
        {},
        "cameras.gate.source: environment variable RW_TEST_CAM_PW is not set",
    ),
    (
        "secret file missing",
        GOOD + "mqtt:\n  password: {file: /nonexistent/roadwatch-secret}\n",
        {},
        "mqtt.password: cannot read secret file /nonexistent/roadwatch-secret",
    ),
]


@pytest.mark.parametrize(("name", "text", "env", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_reports_field_and_exits_2(
    name: str,
    text: str,
    env: dict[str, str],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RW_TEST_UNSET_PASSWORD", raising=False)
    monkeypatch.delenv("RW_TEST_CAM_PW", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "node.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err, err


def test_good_config_checks_and_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "node road-1, 1 camera(s)" in out
    assert "rule north-count: line_crossing" in out


def test_secret_from_environment_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RW_TEST_PASSWORD", "s3cret")
    path = tmp_path / "node.yaml"
    path.write_text(
        GOOD + "mqtt:\n  username: road-1\n  password: {env: RW_TEST_PASSWORD}\n", encoding="utf-8"
    )
    cfg = load_config(path)
    assert cfg.mqtt.password is not None and cfg.mqtt.password.resolve() == "s3cret"


def test_secret_from_file_resolves(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n", encoding="utf-8")
    path = tmp_path / "node.yaml"
    path.write_text(GOOD + f"mqtt:\n  password: {{file: {secret}}}\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.mqtt.password is not None and cfg.mqtt.password.resolve() == "from-file"


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    text = GOOD.replace("    name: Cổng chợ", "    nmae: x\n    detect_fps: -1")
    path = tmp_path / "node.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len(err.value.lines) == 2
    assert any("cameras.gate.detect_fps: Input should be greater than 0" in line for line in err.value.lines)


def test_missing_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_coordinates_scale_with_resolution() -> None:
    import yaml

    from edge.config import validate_config

    cfg = validate_config(yaml.safe_load(GOOD))
    cam = cfg.cameras[0]
    assert cam.scale(768, 576) == (1.0, 1.0)
    assert cam.scale(384, 288) == (0.5, 0.5)  # a substream at half resolution keeps the same geometry


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Roadwatch edge node configuration"
    assert "cameras" in schema["properties"]
    cam = schema["$defs"]["CameraConfig"]
    assert cam["additionalProperties"] is False
    assert "description" in cam["properties"]["detect_fps"]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("rtsp://viewer:${CAM_PW}@10.0.0.2:554/Streaming/Channels/102", False),
        ("rtsp://viewer@10.0.0.2/stream", False),  # a user name alone is no secret
        ("http://10.0.0.3/mjpg?user=admin&pwd=${CAM_PW}", False),
        ("usb:0", False),
        ("{data}/videos/vtest.avi", False),
        ("rtsp://admin:admin@10.0.0.2/stream", True),
        ("rtsp://admin:pre${CAM_PW}@10.0.0.2/stream", True),  # half a secret is still a secret in the file
        ("http://10.0.0.3/video.cgi?Password=12345", True),
    ],
)
def test_literal_passwords_in_stream_urls_are_refused(url: str, refused: bool) -> None:
    assert has_inline_password(url) is refused


def test_camera_secret_is_expanded_only_when_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.capture.sourceurl import expand_source

    url = "rtsp://viewer:${RW_TEST_CAM_PW}@10.0.0.2:554/Streaming/Channels/102"
    monkeypatch.delenv("RW_TEST_CAM_PW", raising=False)
    with pytest.raises(ValueError, match="RW_TEST_CAM_PW is not set"):
        expand_source(url)
    monkeypatch.setenv("RW_TEST_CAM_PW", "s3cret")
    assert expand_source(url) == "rtsp://viewer:s3cret@10.0.0.2:554/Streaming/Channels/102"
    monkeypatch.setenv("ROADWATCH_DATA_DIR", "/srv/data")
    assert expand_source("{data}/videos/a.mp4") == "/srv/data/videos/a.mp4"
