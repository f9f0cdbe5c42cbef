"""`model.int8_ops`: the load-time rewrite of integer convolutions to float, and what `auto` picks.

The rewrite is checked on tiny convolution models quantised by onnxruntime's own `quantize_dynamic`
(the tool that made the shipped int8 models, so the same node pattern), then on the real yolo11n_int8:
both ways find the hand-annotated people of vtest.avi and agree box for box.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.config import ModelSettings
from edge.vision.dequant import float_convs, has_int8_convs, resolve_int8_ops
from edge.vision.detector import Detector

RNG = np.random.default_rng(7)


def conv_model(path: Path) -> Path:
    """Two float convolutions, the first with a bias, the second without (like YOLO's DFL head)."""
    w1 = RNG.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    b1 = RNG.normal(0, 0.1, 8).astype(np.float32)
    w2 = RNG.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Sigmoid", ["c1"], ["s1"]),
        helper.make_node("Mul", ["c1", "s1"], ["a1"]),
        helper.make_node("Conv", ["a1", "w2"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    graph = helper.make_graph(nodes, "convs", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return path


def quantised(tmp_path: Path, per_channel: bool) -> tuple[Path, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = conv_model(tmp_path / "float.onnx")
    dst = tmp_path / f"int8_{per_channel}.onnx"
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8, per_channel=per_channel)
    return src, dst


def run(model: Path | bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    src = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def dequantised_weights(path: Path, name: str) -> np.ndarray:
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    w = inits[f"{name}_quantized"].astype(np.float32) - inits[f"{name}_zero_point"].astype(np.float32)
    scale = inits[f"{name}_scale"].astype(np.float32)
    return np.asarray(w * (scale.reshape(-1, 1, 1, 1) if scale.ndim else scale))


@pytest.mark.parametrize("per_channel", [False, True])
def test_rewrite_is_a_float_conv_with_the_files_own_8bit_weights(tmp_path: Path, per_channel: bool) -> None:
    src, int8 = quantised(tmp_path, per_channel)
    assert has_int8_convs(int8) and not has_int8_convs(src)
    got = float_convs(int8)
    assert got is not None
    data, count = got
    assert count == 2
    graph = onnx.load_from_string(data).graph
    assert {n.op_type for n in graph.node} == {"Conv", "Sigmoid", "Mul"}  # no integer op left
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    np.testing.assert_array_equal(weights["w1_quantized_float"], dequantised_weights(int8, "w1"))
    np.testing.assert_array_equal(weights["w2_quantized_float"], dequantised_weights(int8, "w2"))
    # The same as the float model run with those weights (only the activations are no longer rounded).
    x = RNG.random((1, 3, 16, 16), dtype=np.float32)
    reference = onnx.load(str(src))
    for init in reference.graph.initializer:
        if init.name in ("w1", "w2"):
            init.CopyFrom(numpy_helper.from_array(weights[f"{init.name}_quantized_float"], init.name))
    np.testing.assert_allclose(run(data, x), run(reference.SerializeToString(), x), rtol=1e-5, atol=1e-5)
    # ... and close to the int8 kernels: they differ by the activations' 8-bit rounding.
    assert float(np.abs(run(data, x) - run(int8, x)).max()) < 0.1 * float(np.abs(run(int8, x)).max())


def test_a_float_model_is_left_alone(tmp_path: Path) -> None:
    assert float_convs(conv_model(tmp_path / "float.onnx")) is None


def test_an_unknown_pattern_keeps_its_integer_convolution(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A ConvInteger fed by something other than DynamicQuantizeLinear is kept: correct, only slower."""
    _src, int8 = quantised(tmp_path, False)
    model = onnx.load(str(int8))
    second = [n for n in model.graph.node if n.op_type == "ConvInteger"][1]
    model.graph.node.append(helper.make_node("Identity", [second.input[0]], ["detour"]))
    second.input[0] = "detour"
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    with caplog.at_level(logging.WARNING, "edge.vision.dequant"):
        got = float_convs(path)
    assert got is not None and got[1] == 1
    assert [n.op_type for n in onnx.load_from_string(got[0]).graph.node].count("ConvInteger") == 1
    assert "1 of 2 integer convolutions kept" in caplog.text


@pytest.mark.parametrize(
    ("wanted", "providers", "machine", "flags", "expected"),
    [
        ("auto", ["CPUExecutionProvider"], "x86_64", {"avx2", "fma"}, "float"),  # this VM: no VNNI
        ("auto", ["CPUExecutionProvider"], "x86_64", {"avx2", "avx512_vnni"}, "int8"),
        ("auto", ["CPUExecutionProvider"], "x86_64", {"avx_vnni"}, "int8"),
        ("auto", ["CPUExecutionProvider"], "aarch64", {"asimddp"}, "int8"),  # Raspberry Pi 5, Jetson
        ("auto", ["TensorrtExecutionProvider", "CPUExecutionProvider"], "aarch64", set(), "float"),
        ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], "x86_64", {"avx512_vnni"}, "float"),
        ("int8", ["CPUExecutionProvider"], "x86_64", set(), "int8"),
        ("float", ["CPUExecutionProvider"], "aarch64", set(), "float"),
    ],
)
def test_auto_picks_float_only_where_int8_kernels_are_slow(
    wanted: str, providers: list[str], machine: str, flags: set[str], expected: str
) -> None:
    assert resolve_int8_ops(wanted, providers, machine, flags) == expected  # type: ignore[arg-type]


@pytest.mark.integration
def test_real_model_float_and_int8_agree_on_the_annotated_frame(yolo11_path: Path, vtest_path: Path) -> None:
    import cv2
    from test_detector import PEOPLE, PERSON_IOU, best_iou, iou_matrix

    cap = cv2.VideoCapture(str(vtest_path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    dets = {}
    for ops in ("int8", "float"):
        det = Detector(ModelSettings(path=str(yolo11_path), int8_ops=ops))
        assert det.int8_ops == ops
        dets[ops] = det.detect(np.asarray(frame), min_score=0.25)
        assert (best_iou(PEOPLE, dets[ops], det.names, {"person"}) >= PERSON_IOU).all(), ops
    a, b = dets["int8"], dets["float"]
    strong = a.scores >= 0.4  # clear detections: the same object, class and box either way
    ious = iou_matrix(a.xyxy[strong], b.xyxy)
    best = ious.argmax(axis=1)
    assert (ious.max(axis=1) >= 0.9).all()
    assert (b.class_ids[best] == a.class_ids[strong]).all()
    assert np.abs(b.scores[best] - a.scores[strong]).max() < 0.1


@pytest.mark.parametrize("ops", ["int8", "float", "auto"])
def test_a_broken_file_is_a_model_error_whatever_the_setting(tmp_path: Path, ops: str) -> None:
    from edge.vision.detector import ModelError

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"broken\.onnx: cannot load model"):
        Detector(ModelSettings(path=str(broken), int8_ops=ops))


def test_a_float_model_loads_from_its_file_under_float(tmp_path: Path) -> None:
    """Nothing to rewrite: the session gets the file itself (yolox_nano is such a model)."""
    from test_detector import NAMES_META, constant_model, ultralytics_table

    model = constant_model(tmp_path / "u.onnx", ultralytics_table(), metadata=NAMES_META)
    det = Detector(ModelSettings(path=str(model), int8_ops="float"))
    assert det.int8_ops == "float" and det.layout == "ultralytics"
    assert len(det.detect(np.zeros((64, 64, 3), np.uint8), 0.25)) == 2


@pytest.mark.parametrize(("ops", "key"), [("int8", ""), ("float", "|float-convs")])
def test_detection_cache_keeps_float_detections_apart(tmp_path: Path, ops: str, key: str) -> None:
    """The counting evaluation's cache: float boxes never overwrite or stand in for the int8 ones."""
    import importlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    detcache = importlib.import_module("detcache")  # a script, not a package

    src, int8 = quantised(tmp_path, False)
    assert detcache._int8_ops_key(int8, ops) == key
    assert detcache._int8_ops_key(src, ops) == ""  # a float model is the same either way
