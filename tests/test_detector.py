"""The ONNX detector: layout detection and failures on tiny hand-built models, then the real models.

The tiny models are built with `onnx.helper` and output a fixed tensor, so every number that comes out
of `Detector.detect` can be worked out by hand (letterbox inverse included). The integration tests run
the three shipped models on the first frame of vtest.avi against boxes annotated by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.camera_config import COCO_NAMES
from edge.config import ModelSettings
from edge.records import Detections
from edge.vision.decode import yolox_anchor_count
from edge.vision.detector import Detector, ModelError

# --- tiny models ---------------------------------------------------------------------------------------


def constant_model(
    path: Path,
    output: np.ndarray,
    input_hw: tuple[Any, Any] = (64, 64),
    metadata: dict[str, str] | None = None,
) -> Path:
    """An ONNX model whose output is `output` whatever the image (the input still feeds the graph)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *input_hw])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    nodes = [
        helper.make_node("Constant", [], ["table"], value=numpy_helper.from_array(output.astype(np.float32))),
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0.0, np.float32))),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "constant", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


NAMES_META = {"names": "{0: 'person', 1: 'car'}", "imgsz": "[64, 64]", "stride": "32"}


def ultralytics_table() -> np.ndarray:
    """[1, 4 + 2, 84]: a car, a weaker duplicate of it, and a person on the same spot."""
    out = np.zeros((1, 6, 84), np.float32)
    out[0, :, 0] = [32, 32, 16, 32, 0.0, 0.8]  # car: input box (24, 16, 40, 48)
    out[0, :, 1] = [33, 32, 16, 32, 0.0, 0.7]  # same car, suppressed by NMS
    out[0, :, 2] = [32, 32, 16, 32, 0.6, 0.0]  # person on the same spot: another class, kept
    return out


def yolox_table(classes: int = 80) -> np.ndarray:
    """[1, 84, 5 + classes] for a 64x64 input: one object at stride 16, cell (2, 1)."""
    out = np.zeros((1, yolox_anchor_count(64, 64), 5 + classes), np.float32)
    out[0, 8 * 8 + 1 * 4 + 2, :7] = [0.5, 0.25, np.log(2.0), 0.0, 0.9, 0.1, 0.8]  # input box (24, 12, 56, 28)
    return out


def settings(path: Path, **kw: Any) -> ModelSettings:
    return ModelSettings(path=str(path), **kw)


def test_ultralytics_layout_names_and_letterbox_inverse(tmp_path: Path) -> None:
    model = constant_model(tmp_path / "u.onnx", ultralytics_table(), metadata=NAMES_META)
    det = Detector(settings(model))
    assert (det.layout, det.names, det.input_size) == ("ultralytics", ("person", "car"), (64, 64))
    # A 128x64 frame is halved to 64x32 and centred: 16 px bands above and below.
    dets = det.detect(np.zeros((64, 128, 3), np.uint8), min_score=0.25)
    np.testing.assert_allclose(dets.xyxy, [[48, 0, 80, 64], [48, 0, 80, 64]])
    np.testing.assert_allclose(dets.scores, [0.8, 0.6])
    assert [det.names[c] for c in dets.class_ids] == ["car", "person"]
    assert det.detect(np.zeros((64, 128, 3), np.uint8), min_score=0.7).class_ids.tolist() == [1]
    timing = det.last_timing
    assert min(timing.preprocess_ms, timing.infer_ms, timing.postprocess_ms) >= 0.0
    assert det.last_timing_ms["total"] == pytest.approx(timing.total_ms)


@pytest.mark.parametrize(("classes", "names"), [(80, COCO_NAMES), (2, ("class_0", "class_1"))])
def test_yolox_layout_grid_decode_and_top_left_letterbox(
    tmp_path: Path, classes: int, names: tuple[str, ...]
) -> None:
    det = Detector(settings(constant_model(tmp_path / "x.onnx", yolox_table(classes))))
    assert (det.layout, det.names, det.input_size) == ("yolox", names, (64, 64))
    # A 128x64 frame is halved to 64x32 at the top-left corner: no offset to undo, only the scale.
    dets = det.detect(np.zeros((64, 128, 3), np.uint8))
    np.testing.assert_allclose(dets.xyxy, [[48, 24, 112, 56]], atol=1e-3)
    np.testing.assert_allclose(dets.scores, [0.72], atol=1e-6)
    assert dets.class_ids.tolist() == [1]


def test_dynamic_input_takes_its_size_from_metadata(tmp_path: Path) -> None:
    model = constant_model(tmp_path / "d.onnx", ultralytics_table(), ("height", "width"), NAMES_META)
    assert Detector(settings(model)).input_size == (64, 64)


@pytest.mark.parametrize(
    ("output", "metadata", "shape_text"),
    [
        (np.zeros((1, 300, 6)), None, "[1, 300, 6]"),  # an end-to-end export with NMS inside
        (np.zeros((1, 10)), None, "[1, 10]"),
        (np.zeros((1, 116, 84)), {"names": str(dict(enumerate(COCO_NAMES)))}, "[1, 116, 84]"),  # segmentation
    ],
)
def test_unknown_layout_fails_at_start_naming_file_shape_and_layouts(
    tmp_path: Path, output: np.ndarray, metadata: dict[str, str] | None, shape_text: str
) -> None:
    model = constant_model(tmp_path / "odd_model.onnx", output, metadata=metadata)
    with pytest.raises(ModelError) as err:
        Detector(settings(model))
    text = str(err.value)
    assert "odd_model.onnx" in text and shape_text in text
    assert "ultralytics [1, 4+classes, N]" in text and "yolox [1, N, 5+classes]" in text


def test_configured_kind_must_match_the_model(tmp_path: Path) -> None:
    model = constant_model(tmp_path / "u.onnx", ultralytics_table(), metadata=NAMES_META)
    with pytest.raises(
        ModelError, match=r"u\.onnx: output shape \[1, 6, 84\].*expected yolox \(configured\)"
    ):
        Detector(settings(model, kind="yolox"))
    assert Detector(settings(model, kind="ultralytics")).layout == "ultralytics"


def test_yolox_exports_with_other_maths_are_refused(tmp_path: Path) -> None:
    decoded = yolox_table()
    decoded[0, :, :2] = 200.0  # centres already in pixels (decode_in_inference=True)
    with pytest.raises(ModelError, match="already decoded"):
        Detector(settings(constant_model(tmp_path / "decoded.onnx", decoded)))
    logits = yolox_table()
    logits[0, 0, 5] = -3.0  # scores without the sigmoid
    with pytest.raises(ModelError, match=r"not in 0\.\.1"):
        Detector(settings(constant_model(tmp_path / "logits.onnx", logits)))


def test_missing_or_broken_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nothing\.onnx: model file not found"):
        Detector(settings(tmp_path / "nothing.onnx"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"broken\.onnx: cannot load model"):
        Detector(settings(broken))


def test_unavailable_providers_fall_back_to_cpu(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = constant_model(tmp_path / "u.onnx", ultralytics_table(), metadata=NAMES_META)
    with caplog.at_level(logging.INFO, logger="edge.vision.detector"):
        det = Detector(settings(model, providers=["NoSuchExecutionProvider"], intra_op_threads=1))
    assert det.session.get_providers() == ["CPUExecutionProvider"]
    assert "NoSuchExecutionProvider" in caplog.text
    assert "providers ['CPUExecutionProvider']" in caplog.text


def test_detect_rejects_images_that_are_not_bgr(tmp_path: Path) -> None:
    det = Detector(settings(constant_model(tmp_path / "u.onnx", ultralytics_table(), metadata=NAMES_META)))
    with pytest.raises(ValueError, match="BGR"):
        det.detect(np.zeros((64, 64), np.uint8))


# --- real models on real video -------------------------------------------------------------------------

# First frame of vtest.avi (768x576), annotated by hand from an enlarged view of the frame.
PEOPLE = np.array(
    [
        [254, 220, 282, 308],  # on the grass, left of the lamp post
        [500, 157, 530, 233],  # on the road, walking towards the camera
        [640, 240, 685, 321],  # on the road, right, walking left
    ],
    np.float32,
)
VEHICLES = np.array(
    [
        [652, 45, 724, 100],  # parked white van (a detector may call it car or truck)
        [735, 50, 768, 93],  # parked car cut by the right edge
    ],
    np.float32,
)
# Tolerance: each person is matched by a `person` box with IoU >= 0.6 and each vehicle by a `car`, `truck`
# or `bus` box with IoU >= 0.5. The three models reach IoU 0.74..0.98 on these references, so the bound
# leaves room for a model update while a shifted letterbox (tens of pixels) still fails.
PERSON_IOU = 0.6
VEHICLE_IOU = 0.5
MODELS = ["yolo11n_int8", "yolov8n_int8", "yolox_nano"]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter))


def best_iou(
    reference: np.ndarray, dets: Detections, names: tuple[str, ...], classes: set[str]
) -> np.ndarray:
    """For each reference box, the best IoU of a detection of one of `classes`."""
    mask = np.array([names[c] in classes for c in dets.class_ids], np.bool_)
    if not mask.any():
        return np.zeros(len(reference))
    return np.asarray(iou_matrix(reference, dets.xyxy[mask]).max(axis=1))


@pytest.fixture(scope="module")
def first_frame(vtest_path: Path) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(vtest_path))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (576, 768, 3)
    return np.asarray(frame)


@pytest.fixture(scope="module", params=MODELS)
def real_detector(request: pytest.FixtureRequest, shared_dir: Path) -> Detector:
    from conftest import shared_file

    shared_file(shared_dir, f"models/{request.param}.onnx")
    return Detector(ModelSettings(path=f"{{data}}/models/{request.param}.onnx"))


@pytest.mark.integration
def test_real_models_find_the_people_and_parked_vehicles(
    real_detector: Detector, first_frame: np.ndarray
) -> None:
    dets = real_detector.detect(first_frame, min_score=0.25)
    names = real_detector.names
    person_iou = best_iou(PEOPLE, dets, names, {"person"})
    vehicle_iou = best_iou(VEHICLES, dets, names, {"car", "truck", "bus"})
    assert (person_iou >= PERSON_IOU).all(), f"{real_detector.path.name}: person IoU {person_iou}"
    assert (vehicle_iou >= VEHICLE_IOU).all(), f"{real_detector.path.name}: vehicle IoU {vehicle_iou}"
    assert (
        np.all(dets.xyxy >= 0) and np.all(dets.xyxy[:, [0, 2]] <= 768) and np.all(dets.xyxy[:, [1, 3]] <= 576)
    )


@pytest.mark.integration
def test_real_model_boxes_follow_the_frame_size(real_detector: Detector, first_frame: np.ndarray) -> None:
    """The same picture at half size gives the same boxes at half size: the letterbox is undone."""
    import cv2

    half = np.asarray(cv2.resize(first_frame, (384, 288), interpolation=cv2.INTER_AREA), np.uint8)
    dets = real_detector.detect(half, min_score=0.25)
    person_iou = best_iou(PEOPLE * 0.5, dets, real_detector.names, {"person"})
    assert (person_iou >= 0.5).all(), f"{real_detector.path.name}: person IoU {person_iou}"


@pytest.mark.parametrize(("allow", "expected"), [(None, "0"), (False, "0"), (True, "1")])
def test_worker_threads_sleep_between_runs_unless_spinning_is_asked_for(
    tmp_path: Path, allow: bool | None, expected: str
) -> None:
    """A live node runs the model a few times a second: spinning worker threads would burn the CPU."""
    model = constant_model(tmp_path / "u.onnx", ultralytics_table(), metadata=NAMES_META)
    kw = {} if allow is None else {"allow_spinning": allow}
    options = Detector(settings(model, **kw)).session.get_session_options()
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(key) == expected
