"""scripts/export_model.py: argument handling here, and the whole export path in its own virtualenv.

The end-to-end tests build randomly initialised YOLO11n / YOLOv8n models from their YAML definitions (no
download), export them with the script under a guard that refuses and records any network access, and load
the result with the edge's own `Detector`. Torch and Ultralytics live in `.venv-export` (`make export-venv`,
about 1.5 GB), never in the runtime virtualenv; ROADWATCH_EXPORT_PYTHON overrides its path. The tests that
need it are marked `export`: `make test` runs them only where `.venv-export` exists, `make test-export`
builds it and runs them, and CI (`.ci/run`) does both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import require

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "export_model.py"
EXPORT_PYTHON_ENV = "ROADWATCH_EXPORT_PYTHON"

# Loaded by sitecustomize into the exporting interpreter: every attempt to resolve or reach a non-loopback
# host is written to a log and refused, so a test sees attempts that Ultralytics would swallow.
NETWORK_GUARD = """
import os, socket

_LOG = os.environ["ROADWATCH_NET_LOG"]
_LOCAL = {None, "localhost", "127.0.0.1", "::1", b"localhost", b"127.0.0.1"}


def _refuse(what):
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(what + "\\n")
    raise OSError("network access refused by the export test: " + what)


_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    if host not in _LOCAL:
        _refuse("resolve %r" % (host,))
    return _getaddrinfo(host, *args, **kwargs)


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _check(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
        _refuse("connect %r" % (address,))


def connect(self, address):
    _check(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
"""


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("export_model", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["export_model"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


export_model = _load_script()


# --- argument handling (no torch needed) -------------------------------------------------------------


def test_name_resolves_to_local_weights(tmp_path: Path) -> None:
    (tmp_path / "yolo11n.pt").write_bytes(b"weights")
    source = export_model.resolve_source("yolo11n", tmp_path, download=False)
    assert source.kind == "weights"
    assert source.path == (tmp_path / "yolo11n.pt").resolve()
    assert source.stem == "yolo11n"


def test_name_without_weights_needs_download(tmp_path: Path) -> None:
    missing = r"yolov8n\.pt: weights file not found \(or pass --download\)"
    with pytest.raises(export_model.ExportError, match=missing):
        export_model.resolve_source("yolov8n", tmp_path, download=False)
    source = export_model.resolve_source("yolov8n", tmp_path, download=True)
    assert (source.spec, source.path, source.kind) == ("yolov8n.pt", None, "weights")


def test_missing_weights_path_is_refused_even_with_download(tmp_path: Path) -> None:
    with pytest.raises(export_model.ExportError, match="weights file not found"):
        export_model.resolve_source(str(tmp_path / "best.pt"), tmp_path, download=True)


def test_yaml_name_is_left_to_ultralytics_and_yaml_file_is_resolved(tmp_path: Path) -> None:
    assert export_model.resolve_source("yolo11n.yaml", tmp_path, False).spec == "yolo11n.yaml"
    custom = tmp_path / "mine.yaml"
    custom.write_text("nc: 2\n", encoding="utf-8")
    source = export_model.resolve_source(str(custom), tmp_path, False)
    assert (source.kind, source.path) == ("yaml", custom.resolve())


@pytest.mark.parametrize("given", ["model.onnx", "weights.tflite", "dir/yolo11n"])
def test_unsupported_sources(tmp_path: Path, given: str) -> None:
    with pytest.raises(export_model.ExportError, match="expected a model name"):
        export_model.resolve_source(given, tmp_path, False)


@pytest.mark.parametrize(
    ("stem", "imgsz", "int8", "expected"),
    [("yolo11n", 320, False, "yolo11n_320.onnx"), ("yolov8n", 640, True, "yolov8n_640_int8.onnx")],
)
def test_default_output_and_card_names(stem: str, imgsz: int, int8: bool, expected: str) -> None:
    source = export_model.Source(stem, f"{stem}.pt", None, "weights")
    out = export_model.default_output(source, imgsz, int8)
    assert out == Path(expected)
    card = export_model.card_path(Path("models") / out)
    assert card == Path("models") / expected.replace(".onnx", ".card.json")


@pytest.mark.parametrize("imgsz", [100, 32, 4096])
def test_bad_input_size_exits_2(imgsz: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert export_model.main(["yolo11n.yaml", "--imgsz", str(imgsz)]) == 2
    assert f"--imgsz {imgsz}: use a multiple of 32" in capsys.readouterr().err


def test_card_refuses_a_head_that_does_not_match_the_classes(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    source = export_model.Source("m.yaml", "m.yaml", None, "yaml")
    facts = {"names": ["car", "bus"], "architecture": "yolo11n"}
    info = {"opset": 17, "input_shape": [1, 3, 320, 320], "output_shape": [1, 84, 2100], "metadata": {}}
    wrong = r"output shape \[1, 84, 2100\] is not \[1, 4 \+ 2, N\]"
    with pytest.raises(export_model.ExportError, match=wrong):
        export_model.build_card(source, model, imgsz=320, int8=False, facts=facts, info=info)


# --- the whole export path -----------------------------------------------------------------------------


def _export_python() -> Path:
    value = os.environ.get(EXPORT_PYTHON_ENV)
    return Path(value) if value else REPO / ".venv-export" / "bin" / "python"


@pytest.fixture(scope="module")
def export_python() -> Path:
    python = _export_python()
    require(python.exists(), f"{python} is missing: run `make export-venv` (or set {EXPORT_PYTHON_ENV})")
    probe = subprocess.run(
        [str(python), "-c", "import ultralytics, onnx, onnxruntime.quantization"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    require(probe.returncode == 0, f"{python} cannot import the export dependencies: {probe.stderr[-500:]}")
    return python


def _guarded_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(NETWORK_GUARD, encoding="utf-8")
    net_log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(guard_dir),
        ROADWATCH_NET_LOG=str(net_log),
        YOLO_CONFIG_DIR=str(tmp_path / "ultralytics-settings"),  # never the user's settings
        HOME=str(tmp_path / "home"),
    )
    return env, net_log


def test_network_guard_records_and_refuses(tmp_path: Path) -> None:
    """The guard itself works, so an empty log in the export tests means no attempt was made."""
    env, net_log = _guarded_env(tmp_path)
    code = (
        "import urllib.request\n"
        "try:\n    urllib.request.urlopen('http://example.invalid/x', timeout=2)\n"
        "except OSError:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert net_log.read_text(encoding="utf-8").strip() == "resolve 'example.invalid'"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.export
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize(
    ("source", "imgsz", "int8"), [("yolo11n.yaml", 320, False), ("yolov8n.yaml", 256, True)]
)
def test_export_yaml_model_loads_in_the_edge_detector(
    export_python: Path, tmp_path: Path, source: str, imgsz: int, int8: bool
) -> None:
    from edge.config import ModelSettings
    from edge.records import Detections
    from edge.vision.detector import Detector

    env, net_log = _guarded_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "models" / f"test_{imgsz}.onnx"
    args = [str(export_python), str(SCRIPT), source, "--imgsz", str(imgsz), "--out", str(out)]
    if int8:
        args.append("--int8")
    run = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert not net_log.exists(), net_log.read_text(encoding="utf-8")
    # Ultralytics worked in a temporary directory: only the model and its card land in the tree.
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*")) == [
        "models",
        f"models/test_{imgsz}.card.json",
        f"models/test_{imgsz}.onnx",
    ]

    card = json.loads((work / "models" / f"test_{imgsz}.card.json").read_text(encoding="utf-8"))
    assert card["card_version"] == 1
    assert card["file"] == out.name
    assert card["sha256"] == _sha256(out)
    assert card["bytes"] == out.stat().st_size
    assert card["architecture"] == Path(source).stem
    assert card["source"] == {"given": source, "kind": "yaml", "file": None, "sha256": None, "trained": False}
    assert card["input"]["shape"] == [1, 3, imgsz, imgsz]
    cells = sum((imgsz // s) ** 2 for s in (8, 16, 32))
    assert card["output_shape"] == [1, 84, cells]
    # A YAML model has placeholder names "0".."79": seeing them in the detector proves the metadata was read.
    assert card["classes"] == [str(i) for i in range(80)]
    assert card["opset"] >= 11
    assert (card["quantization"] is not None) == int8
    assert card["tools"]["ultralytics"] and card["tools"]["torch"]

    detector = Detector(ModelSettings(path=str(out)))
    assert detector.layout == "ultralytics"
    assert detector.input_size == (imgsz, imgsz)
    assert list(detector.names) == card["classes"]
    meta = dict(detector.session.get_modelmeta().custom_metadata_map)
    assert (meta.get("onnx.infer") == "onnxruntime.quant") == int8  # quantize_dynamic's mark, names kept
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    dets = detector.detect(frame, min_score=0.0)
    assert isinstance(dets, Detections)
    if len(dets):
        assert float(dets.xyxy[:, [0, 2]].min()) >= 0 and float(dets.xyxy[:, [0, 2]].max()) <= 640
        assert float(dets.xyxy[:, [1, 3]].min()) >= 0 and float(dets.xyxy[:, [1, 3]].max()) <= 360
        assert int(dets.class_ids.max()) < 80


@pytest.mark.export
@pytest.mark.slow
@pytest.mark.integration
def test_export_user_weights_records_their_hash(export_python: Path, tmp_path: Path) -> None:
    """A user's .pt: the export copies it away first, so nothing is written beside the user's file."""
    env, net_log = _guarded_env(tmp_path)
    weights_dir = tmp_path / "runs"
    weights_dir.mkdir()
    make = "from ultralytics import YOLO\nYOLO('yolo11n.yaml').save('runs/best.pt')\n"
    subprocess.run(
        [str(export_python), "-c", make],
        cwd=tmp_path,
        env={**env, "YOLO_OFFLINE": "1"},
        check=True,
        capture_output=True,
        timeout=240,
    )
    weights = weights_dir / "best.pt"
    out = tmp_path / "best_224.onnx"
    args = [str(export_python), str(SCRIPT), str(weights), "--imgsz", "224", "--out", str(out)]
    run = subprocess.run(
        args,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert not net_log.exists(), net_log.read_text(encoding="utf-8")
    assert sorted(p.name for p in weights_dir.iterdir()) == ["best.pt"]
    card = json.loads((tmp_path / "best_224.card.json").read_text(encoding="utf-8"))
    expected = {"given": str(weights), "kind": "weights", "file": "best.pt", "sha256": _sha256(weights)}
    assert card["source"] == {**expected, "trained": True}
    assert card["architecture"] == "yolo11n"
    assert card["input"]["shape"] == [1, 3, 224, 224]
    assert card["sha256"] == _sha256(tmp_path / "best_224.onnx")


@pytest.mark.export
def test_missing_named_weights_exit_2_offline(export_python: Path, tmp_path: Path) -> None:
    env, net_log = _guarded_env(tmp_path)
    run = subprocess.run(
        [str(export_python), str(SCRIPT), "yolo11n"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert "export: yolo11n.pt: weights file not found (or pass --download)" in run.stderr
    assert not net_log.exists()
