"""Make PyPI's torchvision importable beside the CPU build of torch.

The peers' virtualenv gets torch's CPU build (`EXPORT_TORCH` in the Makefile: no 6 GB of CUDA packages), but
the only torchvision wheel on PyPI is built against CUDA torch: its C++ ops (`_C.so`) need
`libc10_cuda.so` and do not load, and `import torchvision` then fails outright, because it registers a fake
kernel for `torchvision::nms` whether or not the op exists. Ultralytics imports torchvision before every
prediction, so without this nothing runs. The CPU torchvision lives only on PyTorch's own index, which this
project's machines cannot reach.

`install()` runs before Ultralytics is imported. When torchvision's own ops load, it does nothing. Otherwise
it declares the two ops that torchvision registers unconditionally (so the import succeeds) and points
`torchvision.ops.nms` at Ultralytics' own torch NMS (`TorchNMS.nms`, written to match torchvision exactly).
Detection and tracking need no other torchvision op.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def _own_ops_load(torch: Any) -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    libs = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"))
    try:
        torch.ops.load_library(str(libs[0]))
    except (IndexError, OSError):
        return False
    return True


def _nms(dets: Any, scores: Any, iou_threshold: float) -> Any:
    from ultralytics.utils.nms import TorchNMS

    return TorchNMS.nms(dets, scores, iou_threshold)


def install() -> Any:
    """None when torchvision's ops load; else the library object that holds the stand-in ops (keep it)."""
    import torch

    if _own_ops_load(torch):
        return None
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms" + _SCHEMA)
    lib.define("qnms" + _SCHEMA)
    import torchvision.ops.boxes

    torchvision.ops.nms = torchvision.ops.boxes.nms = _nms  # batched_nms looks it up in boxes too
    return lib
