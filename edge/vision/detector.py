"""The object detector: one onnxruntime session per node, shared by all of its cameras.

Two output layouts are supported, told apart by the model's own outputs and metadata:

- `ultralytics`: YOLOv8 / YOLO11 exports, output `[1, 4 + nc, N]`, input RGB 0..1, centred letterbox;
  class names and input size come from the metadata Ultralytics writes into the file.
- `yolox`: YOLOX raw head `[1, N, 5 + nc]` (grid decode for strides 8, 16, 32), input BGR 0..255,
  letterbox at the top-left; no metadata, so COCO names.

A model that matches neither fails at start with a `ModelError` naming the file and the shape found,
never with garbage boxes at run time. The edge runtime needs no torch and no ultralytics.
"""

from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edge.camera_config import COCO_NAMES
from edge.capture.sourceurl import expand_path
from edge.config import ModelSettings
from edge.records import Detections, ImageArray, IntArray
from edge.vision.decode import (
    decode_ultralytics,
    decode_yolox,
    letterbox,
    nms,
    yolox_anchor_count,
    yolox_grid,
)
from edge.vision.dequant import float_convs, release_freed_memory, resolve_int8_ops

log = logging.getLogger(__name__)

Layout = Literal["ultralytics", "yolox"]
LAYOUTS: tuple[Layout, ...] = ("ultralytics", "yolox")
_SUPPORTED = "ultralytics [1, 4+classes, N] (YOLOv8/YOLO11) or yolox [1, N, 5+classes] (raw YOLOX head)"
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class ModelError(Exception):
    """A model file that cannot be used: missing, unreadable, or with outputs of no known layout."""


@dataclass(frozen=True, slots=True)
class DetectTiming:
    """Milliseconds spent in each stage of the last `detect` call, for the node's stats."""

    preprocess_ms: float = 0.0
    infer_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.postprocess_ms


def _literal(meta: dict[str, str], key: str) -> Any:
    text = meta.get(key)
    if text is None:
        return None
    try:
        return ast.literal_eval(text)  # metadata holds Python literals, never code to run
    except (ValueError, SyntaxError):
        return None


def _metadata_names(meta: dict[str, str]) -> tuple[str, ...] | None:
    """Class names from Ultralytics' `names` metadata, a dict literal `{0: 'person', ...}`."""
    value = _literal(meta, "names")
    if isinstance(value, dict) and value and set(value) == set(range(len(value))):
        return tuple(str(value[i]) for i in range(len(value)))
    if isinstance(value, (list, tuple)) and value:
        return tuple(str(v) for v in value)
    return None


def _select_providers(wanted: list[str], available: list[str]) -> list[str]:
    chosen = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        log.warning("onnxruntime providers not available here: %s (available: %s)", missing, available)
    if not chosen:
        chosen = ["CPUExecutionProvider"]
    elif "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # operators an accelerator lacks fall back to the CPU
    return chosen


def _session_options(settings: ModelSettings) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if settings.intra_op_threads > 0:
        options.intra_op_num_threads = settings.intra_op_threads
    # A live node runs the model a few times per second: idle worker threads must sleep, not spin
    # (measured: spinning tripled the CPU-seconds per video-minute of one camera; docs/benchmarks.md).
    spin = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return options


class Detector:
    """Detects objects in BGR frames with one onnxruntime session.

    One instance serves every camera of a node. `detect` keeps no per-call buffers, but it writes
    `last_timing`, so call it from one thread: the pipeline's inference thread (onnxruntime releases
    the GIL while it runs, so capture threads keep going meanwhile).
    """

    def __init__(self, settings: ModelSettings) -> None:
        import onnxruntime as ort

        self.settings = settings
        self.path = Path(expand_path(settings.path))
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        options = _session_options(settings)
        providers = _select_providers(list(settings.providers), list(ort.get_available_providers()))
        self.int8_ops = resolve_int8_ops(settings.int8_ops, providers)
        try:
            model = self._model_source()
            self.session = ort.InferenceSession(model, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"{self.path}: cannot load model: {exc}") from exc
        if isinstance(model, bytes):
            del model
            release_freed_memory()  # the rewrite's protobuf copies (about 15 MB of RSS here)

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: expected one input, found {len(inputs)}; supported: {_SUPPORTED}")
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_name: str = inputs[0].name
        self.input_dtype = _INPUT_TYPES.get(inputs[0].type)
        if self.input_dtype is None:
            raise ModelError(f"{self.path}: input type {inputs[0].type} is not a float tensor")
        self.input_size: tuple[int, int] = self._input_size(list(inputs[0].shape), meta)  # (width, height)
        self.output_name: str = self.session.get_outputs()[0].name

        width, height = self.input_size
        # The first run is the warm-up (allocations, kernel choice) and tells the real output shape,
        # which dynamic exports do not declare.
        blank = np.full((1, 3, height, width), 114.0 / 255.0, self.input_dtype)
        t0 = time.perf_counter()
        first = self._run(blank)
        warmup_ms = (time.perf_counter() - t0) * 1000.0
        self.layout: Layout
        self.names: tuple[str, ...]
        self.layout, self.names = self._identify(tuple(int(d) for d in first.shape), meta)
        if self.layout == "yolox":
            self._check_raw_yolox(first)
        self._grid, self._strides = yolox_grid(width, height)
        self.last_timing = DetectTiming()
        log.info(
            "model %s: layout %s, input %dx%d, %d classes, providers %s, warm-up %.0f ms",
            self.path.name,
            self.layout,
            width,
            height,
            len(self.names),
            self.session.get_providers(),
            warmup_ms,
        )

    def _model_source(self) -> str | bytes:
        """The file's path, or its bytes with float convolutions when `int8_ops` resolved to float."""
        if self.int8_ops != "float":
            return str(self.path)
        try:
            rewritten = float_convs(self.path)
        except ImportError:  # `onnx` is part of the edge extra; a node without it runs the file as it is
            log.warning("model %s: onnx is not installed; integer convolutions stay int8", self.path.name)
            rewritten = None
        if rewritten is None:  # nothing to rewrite (a float model), or no onnx
            return str(self.path)
        data, count = rewritten
        log.info("model %s: %d integer convolutions run as float (model.int8_ops)", self.path.name, count)
        return data

    def _input_size(self, shape: list[Any], meta: dict[str, str]) -> tuple[int, int]:
        """Input (width, height) from the input shape, or from `imgsz` metadata for dynamic exports."""
        if len(shape) != 4:
            raise ModelError(f"{self.path}: input shape {shape} is not [1, 3, H, W]; supported: {_SUPPORTED}")
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            return int(shape[3]), int(shape[2])
        imgsz = _literal(meta, "imgsz")
        if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2 and all(isinstance(v, int) for v in imgsz):
            return int(imgsz[1]), int(imgsz[0])
        if isinstance(imgsz, int):
            return imgsz, imgsz
        raise ModelError(f"{self.path}: dynamic input size {shape} and no `imgsz` metadata")

    def _identify(self, shape: tuple[int, ...], meta: dict[str, str]) -> tuple[Layout, tuple[str, ...]]:
        """Pick the layout that explains the output shape; the configured `kind` may only confirm it."""
        width, height = self.input_size
        anchors = yolox_anchor_count(width, height)
        names = _metadata_names(meta)
        fits: dict[Layout, int] = {}  # layout -> number of classes it implies
        if len(shape) == 3 and shape[0] == 1:
            channels_first = shape[1] >= 5 and shape[2] > shape[1]
            if channels_first and (names is None or shape[1] == 4 + len(names)):
                fits["ultralytics"] = shape[1] - 4
            if shape[1] == anchors and shape[2] >= 6 and (names is None or shape[2] == 5 + len(names)):
                fits["yolox"] = shape[2] - 5
        kind = self.settings.kind
        # On a tiny input both shapes can fit; the layout whose anchor axis has exactly the P3-P5 anchor
        # count of this input size wins (Ultralytics P2/P6 variants still fit, only ranked second).
        anchor_axis: dict[Layout, int] = {"ultralytics": 2, "yolox": 1}
        candidates = sorted(
            (k for k in LAYOUTS if k in fits and kind in ("auto", k)),
            key=lambda k: shape[anchor_axis[k]] != anchors,
        )
        if not candidates:
            wanted = _SUPPORTED if kind == "auto" else f"{kind} (configured)"
            extra = f" with {len(names)} class names in its metadata" if names else ""
            raise ModelError(
                f"{self.path}: output shape {list(shape)}{extra} matches no supported layout; "
                f"expected {wanted}"
            )
        layout = candidates[0]
        classes = fits[layout]
        if names is None:
            if classes == len(COCO_NAMES):
                names = COCO_NAMES
            else:
                log.warning("model %s: no class names for %d classes; using class_N", self.path.name, classes)
                names = tuple(f"class_{i}" for i in range(classes))
        return layout, names

    def _check_raw_yolox(self, out: npt.NDArray[np.float32]) -> None:
        """Refuse YOLOX exports whose head is already decoded or not sigmoid-ed: same shape, other maths.

        Raw offsets lie within a few cells of zero, decoded centres run over the whole input; scores of
        the raw head export are probabilities.
        """
        if float(np.abs(out[0, :, :2]).max()) > 32.0:
            raise ModelError(
                f"{self.path}: YOLOX output looks already decoded to pixels; "
                "export it with decode_in_inference=False"
            )
        scores = out[0, :, 4:]
        if float(scores.min()) < 0.0 or float(scores.max()) > 1.0:
            raise ModelError(
                f"{self.path}: YOLOX objectness/class outputs are not in 0..1 (no sigmoid in the export)"
            )

    def _run(self, blob: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        out = self.session.run([self.output_name], {self.input_name: blob})[0]
        return np.asarray(out, dtype=np.float32)

    def detect(
        self, image_bgr: ImageArray, min_score: float = 0.25, classes: IntArray | None = None
    ) -> Detections:
        """Detect objects in one BGR frame; boxes are in the frame's own pixels, after class-aware NMS.

        `classes` (model class ids, from the camera) restricts which classes compete for each box's label.
        """
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"expected a BGR image (h, w, 3), got shape {image_bgr.shape}")
        t0 = time.perf_counter()
        width, height = self.input_size
        ultralytics = self.layout == "ultralytics"
        canvas, box = letterbox(image_bgr, width, height, centered=ultralytics)
        if ultralytics:  # RGB, 0..1
            chw = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
            blob = (chw * np.float32(1.0 / 255.0)).astype(self.input_dtype, copy=False)
        else:  # YOLOX: BGR, 0..255, no normalisation
            blob = canvas.transpose(2, 0, 1)[None].astype(self.input_dtype)
        t1 = time.perf_counter()
        out = self._run(blob)
        t2 = time.perf_counter()
        if ultralytics:
            xyxy, scores, class_ids = decode_ultralytics(out, min_score, classes)
        else:
            xyxy, scores, class_ids = decode_yolox(out, self._grid, self._strides, min_score, classes)
        keep = nms(xyxy, scores, class_ids, self.settings.nms_iou)
        dets = Detections(box.to_frame(xyxy[keep]), scores[keep], class_ids[keep])
        t3 = time.perf_counter()
        self.last_timing = DetectTiming((t1 - t0) * 1000.0, (t2 - t1) * 1000.0, (t3 - t2) * 1000.0)
        return dets

    @property
    def last_timing_ms(self) -> dict[str, float]:
        """`last_timing` as a plain dict (`preprocess`, `infer`, `postprocess`, `total`) for stats JSON."""
        t = self.last_timing
        return {
            "preprocess": t.preprocess_ms,
            "infer": t.infer_ms,
            "postprocess": t.postprocess_ms,
            "total": t.total_ms,
        }
