"""Fail the peers virtualenv build when torch came as a CUDA build, or the peers cannot run.

The CUDA wheel brings ~6 GB of nvidia-* packages that an edge box and CI never use; the Makefile installs the
CPU build (`EXPORT_TORCH`, resolved from a local CPU wheel or a CPU-only index). This check makes a silent
switch to the CUDA build a build error instead of a slow, huge virtualenv.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


# nvidia-ml-py is NVML's pure-Python binding (Ultralytics asks for it to read GPU stats): 300 kB, no CUDA.
NOT_CUDA = {"nvidia-ml-py"}


def main() -> int:
    names = {d.metadata["Name"].lower().replace("_", "-") for d in metadata.distributions()}
    cuda = sorted(n for n in names if n.startswith("nvidia-") and n not in NOT_CUDA)
    import torch

    if cuda or torch.version.cuda is not None:
        print(f"torch {torch.__version__} is a CUDA build (cuda={torch.version.cuda}, packages: {', '.join(cuda)}); "
              "install the CPU build: see EXPORT_TORCH in the Makefile", file=sys.stderr)
        return 1
    import cpu_torchvision

    _ops = cpu_torchvision.install()
    import supervision
    import torchvision
    import ultralytics

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    kept = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
    if kept != [0, 2]:
        print(f"torchvision.ops.nms kept {kept}, expected [0, 2]", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__}: CPU build, no nvidia-* packages; torchvision {torchvision.__version__} "
          f"nms works; ultralytics {ultralytics.__version__}, supervision {supervision.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
