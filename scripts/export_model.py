#!/usr/bin/env python3
"""Export an Ultralytics detection model to ONNX for the edge node, with a model card beside it.

    python scripts/export_model.py yolo11n --imgsz 320 --int8 --out models/yolo11n_320_int8.onnx
    python scripts/export_model.py runs/detect/train/weights/best.pt --imgsz 416
    python scripts/export_model.py yolo11n.yaml --imgsz 320      # random weights: pipeline tests only

Why a script of our own rather than `yolo export`: the edge node expects one exact shape of model (raw
`[1, 4 + classes, N]` head, no NMS inside, static input, class names and `imgsz` in the metadata), and a
technician needs a record of what is deployed at a road point. The card (`<name>.card.json`) holds the
file's sha256, the classes, the input size and layout, the source and its sha256, the opset, the
quantisation and the tool versions; `models/README.md` describes it.

The export runs offline by default: Ultralytics' auto-install of missing packages is disabled, and it may
not reach the network. A model *name* (`yolo11n`) then needs its weights file (`yolo11n.pt`) in the current
directory or `--weights-dir`; `--download` lets Ultralytics fetch it. Ultralytics and torch are needed here
only (the optional `export` dependencies); the edge runtime never imports them.

Exit codes: 0 exported, 2 bad arguments or an unsupported model, 1 anything else.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger("export_model")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
CARD_VERSION = 1
CARD_SUFFIX = ".card.json"

# Names the edge node is tested with; other Ultralytics detection names work the same way.
KNOWN_MODELS: dict[str, str] = {
    "yolo11n": "Ultralytics YOLO11n, COCO 80 classes",
    "yolo11s": "Ultralytics YOLO11s, COCO 80 classes",
    "yolov8n": "Ultralytics YOLOv8n, COCO 80 classes",
    "yolov8s": "Ultralytics YOLOv8s, COCO 80 classes",
}


class ExportError(Exception):
    """A source or option the export cannot use; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Source:
    """What to export: `spec` is handed to Ultralytics; `path` is the local file when there is one."""

    given: str
    spec: str
    path: Path | None
    kind: str  # "weights" (trained .pt) or "yaml" (architecture only, random weights)

    @property
    def stem(self) -> str:
        return Path(self.spec).stem


def resolve_source(given: str, weights_dir: Path, download: bool) -> Source:
    """Turn a model name, a .pt file or a model YAML into a `Source`, refusing what cannot work offline."""
    candidate = Path(given).expanduser()
    suffix = candidate.suffix.lower()
    if suffix in (".yaml", ".yml"):
        # A file of the user's, or a name Ultralytics resolves from its own package (`yolo11n.yaml`).
        path = candidate.resolve() if candidate.is_file() else None
        return Source(given, str(path) if path else given, path, "yaml")
    if suffix == ".pt":
        for place in (candidate, weights_dir / candidate.name):
            if place.is_file():
                return Source(given, str(place.resolve()), place.resolve(), "weights")
        if download and candidate.name == given:
            return Source(given, given, None, "weights")
        raise ExportError(f"{given}: weights file not found" + ("" if download else " (or pass --download)"))
    if suffix == "" and candidate.name == given:
        return resolve_source(f"{given}.pt", weights_dir, download)
    raise ExportError(f"{given}: expected a model name (e.g. yolo11n), a .pt weights file or a model .yaml")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_output(source: Source, imgsz: int, int8: bool) -> Path:
    return Path(f"{source.stem}_{imgsz}{'_int8' if int8 else ''}.onnx")


def card_path(model_path: Path) -> Path:
    """`models/yolo11n_320.onnx` -> `models/yolo11n_320.card.json`."""
    return model_path.with_name(model_path.stem + CARD_SUFFIX)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    """Ultralytics writes its export beside the weights or into the working directory: keep that in tmp."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _offline_environment(download: bool) -> None:
    """Settings Ultralytics reads when imported: never pip-install at run time; offline unless asked."""
    os.environ["YOLO_AUTOINSTALL"] = "false"
    if not download:
        os.environ["YOLO_OFFLINE"] = "1"


def export_fp32(source: Source, imgsz: int, opset: int | None, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """Run Ultralytics' ONNX export in `workdir`; returns the file and facts about the model for the card."""
    from ultralytics import YOLO

    spec = source.spec
    if source.path is not None and source.kind == "weights":
        copy = workdir / source.path.name  # export lands beside the weights: never beside the user's file
        shutil.copyfile(source.path, copy)
        spec = str(copy)
    with _working_dir(workdir):
        model = YOLO(spec)
        if model.task != "detect":
            raise ExportError(f"{source.given}: task {model.task!r}; the edge node runs detection models")
        names = {int(k): str(v) for k, v in model.names.items()}
        written = model.export(
            format="onnx",
            imgsz=imgsz,
            opset=opset,
            dynamic=False,  # the detector reads the input size from a static shape
            simplify=False,  # onnxslim is not a dependency; Ultralytics would try to pip-install it
            nms=False,  # the edge decodes the raw head and runs its own class-aware NMS
            batch=1,
            device="cpu",
        )
    path = Path(written)
    if not path.is_absolute():
        path = workdir / path
    yaml_file = str(getattr(model.model, "yaml", {}).get("yaml_file", "") or source.spec)
    facts = {"names": [names[i] for i in sorted(names)], "architecture": Path(yaml_file).stem}
    return path, facts


def quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation (uint8 weights, activations quantised at run time); metadata is kept."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QUInt8)


def inspect_onnx(path: Path) -> dict[str, Any]:
    """Opset, input and output shapes, and metadata of the file, checked the way the edge will load it."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    meta = {p.key: p.value for p in model.metadata_props}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    input_shape = [int(d) for d in inputs[0].shape]
    output_shape = [int(d) if isinstance(d, int) else -1 for d in outputs[0].shape]
    return {"opset": opset, "input_shape": input_shape, "output_shape": output_shape, "metadata": meta}


def _description(source: Source, meta: dict[str, str]) -> str | None:
    if source.kind == "yaml":
        return f"{source.stem} architecture with random weights: for pipeline tests, detects nothing useful"
    return KNOWN_MODELS.get(source.stem) or meta.get("description", "").strip() or None


def build_card(
    source: Source, model_path: Path, *, imgsz: int, int8: bool, facts: dict[str, Any], info: dict[str, Any]
) -> dict[str, Any]:
    names: list[str] = facts["names"]
    output_shape: list[int] = info["output_shape"]
    if len(output_shape) != 3 or output_shape[1] != 4 + len(names):
        raise ExportError(f"{model_path.name}: output shape {output_shape} is not [1, 4 + {len(names)}, N]")
    meta: dict[str, str] = info["metadata"]
    return {
        "card_version": CARD_VERSION,
        "file": model_path.name,
        "sha256": sha256_file(model_path),
        "bytes": model_path.stat().st_size,
        "format": "onnx",
        "layout": "ultralytics",
        "task": "detect",
        "architecture": facts["architecture"],
        "description": _description(source, meta),
        "source": {
            "given": source.given,
            "kind": source.kind,
            "file": source.path.name if source.path else None,
            "sha256": sha256_file(source.path) if source.path else None,
            "trained": source.kind == "weights",
        },
        "input": {
            "name": "images",
            "shape": info["input_shape"],
            "imgsz": [imgsz, imgsz],
            "dtype": "float32",
            "color": "RGB",
            "range": "0..1",
            "letterbox": "centred, pad 114",
        },
        "output_shape": output_shape,
        "classes": names,
        "num_classes": len(names),
        "opset": info["opset"],
        "quantization": "int8 dynamic (onnxruntime quantize_dynamic, uint8 weights)" if int8 else None,
        "license": meta.get("license"),
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "tools": {p: _version(p) for p in ("ultralytics", "torch", "onnx", "onnxruntime")},
    }


def export(
    given: str,
    *,
    imgsz: int,
    out: Path | None = None,
    int8: bool = False,
    opset: int | None = None,
    weights_dir: Path = Path("."),
    download: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Export `given` and write the model and its card; returns the model path and the card."""
    if imgsz % 32 != 0 or not 64 <= imgsz <= 1920:
        raise ExportError(f"--imgsz {imgsz}: use a multiple of 32 between 64 and 1920")
    source = resolve_source(given, weights_dir, download)
    _offline_environment(download)
    target = (out or default_output(source, imgsz, int8)).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="roadwatch-export-") as tmp:
        workdir = Path(tmp)
        fp32, facts = export_fp32(source, imgsz, opset, workdir)
        staged = workdir / "staged.onnx"
        if int8:
            quantize_int8(fp32, staged)
        else:
            shutil.move(str(fp32), staged)
        info = inspect_onnx(staged)
        card = build_card(source, staged, imgsz=imgsz, int8=int8, facts=facts, info=info)
        card["file"] = target.name
        shutil.move(str(staged), target)
    card_path(target).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("wrote %s (%d bytes, sha256 %s) and its card", target, card["bytes"], card["sha256"])
    return target, card


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("source", help="model name (yolo11n, yolov8n, ...), a .pt weights file, or a model .yaml")
    p.add_argument("--imgsz", type=int, default=320, help="square input size, multiple of 32 (320)")
    p.add_argument("--out", type=Path, default=None, help="output file (<name>_<imgsz>[_int8].onnx)")
    p.add_argument("--int8", action="store_true", help="dynamic int8 quantisation with onnxruntime")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: Ultralytics' choice)")
    p.add_argument("--weights-dir", type=Path, default=Path("."), help="where named weights (yolo11n.pt) lie")
    p.add_argument("--download", action="store_true", help="let Ultralytics download named weights")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # onnxruntime's quantiser logs every tensor at INFO on the root logger: keep the root at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    try:
        path, card = export(
            args.source,
            imgsz=args.imgsz,
            out=args.out,
            int8=args.int8,
            opset=args.opset,
            weights_dir=args.weights_dir,
            download=args.download,
        )
    except ExportError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"export: {exc}; install the export extra: pip install 'roadwatch[export]'", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: {card['num_classes']} classes, input {card['input']['shape']}, sha256 {card['sha256']}")
    print(f"{card_path(path)}: model card")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
