"""Load-time rewrite of a dynamically quantised model's integer convolutions to float convolutions.

`onnxruntime.quantization.quantize_dynamic` stores each convolution's weights as uint8 with a scale and
a zero point and quantises the activations at run time: `DynamicQuantizeLinear(x)` -> `ConvInteger` ->
`Cast` -> `Mul(x_scale * w_scale)` -> `Add(bias)`. Where the CPU has fast int8 dot products (ARMv8.2
`udot/sdot` on a Cortex-A76, x86 VNNI) that is the cheap path; on an x86 CPU without VNNI the integer
kernels plus the per-layer quantisation cost more than float convolutions (measured on the development
VM: yolo11n_int8 at 320 px ran in about 0.7x the CPU time as float, docs/benchmarks.md).

The rewrite keeps the file's 8-bit weights, dequantised once at load (`(w - zero_point) * scale`, the same
numbers the integer kernel multiplies), and replaces each chain by one `Conv(x, w, bias)` on the float
activation: the activations are no longer rounded to 8 bits, so scores and boxes move slightly (the
counting evaluation was re-run with it, docs/benchmarks.md). Nothing else in the graph changes.
`ModelSettings.int8_ops` chooses; `auto` picks by CPU and provider (`resolve_int8_ops`).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

Int8Ops = Literal["auto", "int8", "float"]
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def resolve_int8_ops(
    wanted: Int8Ops,
    providers: Sequence[str],
    machine: str | None = None,
    flags: set[str] | None = None,
) -> Literal["int8", "float"]:
    """What `auto` means here: float on x86 without VNNI or on an accelerator, int8 elsewhere.

    Accelerator providers (CUDA, TensorRT, ...) have fast float kernels and no or partial support for
    `ConvInteger`; ARM cores with dot-product instructions (every Raspberry Pi 5 and Jetson Orin) and
    x86 cores with VNNI run the integer kernels well, so the file is left as it is there.
    """
    if wanted != "auto":
        return wanted
    first = providers[0] if providers else "CPUExecutionProvider"
    if first != "CPUExecutionProvider":
        return "float"
    arch = (machine if machine is not None else platform.machine()).lower()
    if arch not in ("x86_64", "amd64", "i686", "x86"):
        return "int8"
    cpu = flags if flags is not None else _cpu_flags()
    return "int8" if any(f in cpu for f in _VNNI_FLAGS) else "float"


def release_freed_memory() -> None:
    """Hand the memory the rewrite freed back to the system (glibc keeps it in its heap otherwise).

    A one-off at load; a no-op where the C library has no `malloc_trim` (musl, macOS).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)


def has_int8_convs(path: Path) -> bool:
    """Whether the model file holds any `ConvInteger` (a cheap look at the graph, no session)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(n.op_type == "ConvInteger" for n in graph.node)


class _Graph:
    """Index of one ONNX graph: producer and consumers of every tensor, initialisers by name."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.inits = {i.name: i for i in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for n in graph.node:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)

    def only_consumer(self, tensor: str, op_type: str) -> Any | None:
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def array(self, name: str) -> np.ndarray[Any, Any]:
        from onnx import numpy_helper

        return np.asarray(numpy_helper.to_array(self.inits[name]))


def _float_conv(g: _Graph, conv: Any) -> tuple[list[Any], list[Any], set[int]] | None:
    """The `Conv` (and its new initialisers) replacing one quantised chain, and the nodes it replaces.

    None when the chain is not the exact pattern `quantize_dynamic` writes; that convolution then stays
    integer (correct, only slower).
    """
    from onnx import helper, numpy_helper

    if len(conv.input) != 4 or conv.input[1] not in g.inits or conv.input[3] not in g.inits:
        return None
    dql = g.producer.get(conv.input[0])
    cast = g.only_consumer(conv.output[0], "Cast")
    if dql is None or dql.op_type != "DynamicQuantizeLinear" or cast is None:
        return None
    mul = g.only_consumer(cast.output[0], "Mul")
    if mul is None:
        return None
    scales = g.producer.get(next((i for i in mul.input if i != cast.output[0]), ""))
    w_scale = next((i for i in scales.input if i in g.inits), None) if scales is not None else None
    if scales is None or scales.op_type != "Mul" or w_scale is None or dql.output[1] not in scales.input:
        return None
    weights = g.array(conv.input[1]).astype(np.float32) - g.array(conv.input[3]).astype(np.float32)
    scale = g.array(w_scale).astype(np.float32)
    if scale.ndim == 1:  # per output channel
        scale = scale.reshape(-1, *([1] * (weights.ndim - 1)))
    new_inits = [numpy_helper.from_array((weights * scale).astype(np.float32), conv.input[1] + "_float")]
    inputs, output, replaced = [dql.input[0], new_inits[0].name], mul.output[0], {id(cast), id(mul)}
    add = g.only_consumer(mul.output[0], "Add")
    bias = g.producer.get(next((i for i in add.input if i != mul.output[0]), "")) if add else None
    if add is not None and bias is not None and bias.op_type == "Reshape" and bias.input[0] in g.inits:
        new_inits.append(numpy_helper.from_array(g.array(bias.input[0]).astype(np.float32).ravel(),
                                                 bias.input[0] + "_float"))  # fmt: skip
        inputs.append(new_inits[1].name)
        output = add.output[0]
        replaced |= {id(add)}
    node = helper.make_node("Conv", inputs, [output], name=(conv.name or output) + "_float")
    node.attribute.extend(conv.attribute)
    return [node], new_inits, replaced


def _prune(graph: Any) -> None:
    """Drop nodes and initialisers nothing reads any more (the quantisers, scale products, int8 weights)."""
    while True:
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def float_convs(path: Path) -> tuple[bytes, int] | None:
    """The model with its `ConvInteger` chains as float `Conv`s, serialised, and how many were rewritten.

    None when the model has no integer convolution (a float model is loaded as it is).
    """
    import onnx

    model = onnx.load(str(path))
    g = _Graph(model.graph)
    convs = [n for n in model.graph.node if n.op_type == "ConvInteger"]
    if not convs:
        return None
    replaced: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for conv in convs:
        got = _float_conv(g, conv)
        if got is None:
            continue
        nodes, inits, gone = got
        model.graph.initializer.extend(inits)
        replaced[id(conv)] = nodes
        dropped |= gone
    nodes = [m for n in model.graph.node if id(n) not in dropped for m in replaced.get(id(n), [n])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _prune(model.graph)
    if len(replaced) < len(convs):
        log.warning("model %s: %d of %d integer convolutions kept (unknown pattern)",
                    path.name, len(convs) - len(replaced), len(convs))  # fmt: skip
    return model.SerializeToString(), len(replaced)
