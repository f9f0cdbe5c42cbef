"""The peers' results, kept per input under var/peers-cache/ (ignored by git).

A peer's count depends only on its runner, the model file, the clip, the line and the classes, and on a
2-core box Ultralytics takes minutes per clip: re-measuring Roadwatch after a change must not wait for
them. The key holds the runner's arguments, the size and modification time of every file they name, and
the source of the scripts in this folder, so a changed model, clip or runner measures again. `--fresh`
on a runner (and on compare_peers.py) ignores what is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE_DIR = HERE.parents[1] / "var" / "peers-cache"


def key(tool: str, argv: list[str]) -> str:
    parts: list[Any] = [tool, argv]
    for arg in argv:
        if os.path.isfile(arg):
            st = os.stat(arg)
            parts.append([Path(arg).name, st.st_size, st.st_mtime_ns])
    for source in sorted(HERE.glob("*.py")):
        parts.append(hashlib.sha256(source.read_bytes()).hexdigest())
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def load(tool: str, argv: list[str]) -> dict[str, Any] | None:
    path = CACHE_DIR / f"{tool}-{key(tool, argv)}.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def store(tool: str, argv: list[str], result: dict[str, Any]) -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"{tool}-{key(tool, argv)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(path)
