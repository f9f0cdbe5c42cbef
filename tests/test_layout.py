"""The shape of `edge/`, `contract/` and `common/`: small modules and small functions (issue 12).

`central/` has the same rule in test_central_layout.py, next to its store-layer rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60
# Over the limit for now, each for a stated reason; the test fails once one of them is back under it.
# Keys are a module ("path") or one function ("path:name").
EXEMPT = {
    # the pydantic models of one camera's YAML section; parallel branches are editing it (regions, error
    # names), so its split (geometry defs vs settings sections) waits until they have landed
    "edge/camera_config.py": "357 lines",
    # the durable outbox: the trust branch is editing it (corruption recovery); split after it lands
    "edge/transport/outbox.py": "374 lines",
    # the run command's error handling is being reworked on the firsthour branch
    "edge/cli.py:cmd_run": "108 lines",
    # one exposition-format table; splitting it per metric family is its own change
    "edge/metrics.py:render_metrics": "81 lines",
    # per-frame rule and tracker steps, under change on the accuracy branch; each reads top to bottom
    "edge/analyzer.py:process": "66 lines",
    "edge/rules/collision.py:update": "76 lines",
    "edge/rules/lane.py:update": "70 lines",
    "edge/rules/line.py:update": "70 lines",
    "edge/vision/tracker.py:update": "77 lines",
}


def _too_long(path: Path) -> dict[str, str]:
    """`{"path": "N lines", "path:function": "N lines"}` for what is over the limits."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    found = {}
    if text.count("\n") > MAX_MODULE_LINES:
        found[rel] = f"{text.count(chr(10))} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found[f"{rel}:{node.name}"] = f"{length} lines"
    return found


@pytest.mark.parametrize("package", ["edge", "contract", "common"])
def test_modules_and_functions_stay_small(package: str) -> None:
    found: dict[str, str] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        found.update(_too_long(path))
    assert {k: v for k, v in found.items() if k not in EXEMPT} == {}


@pytest.mark.parametrize("key", sorted(EXEMPT))
def test_exemptions_are_still_needed(key: str) -> None:
    assert key in _too_long(ROOT / key.partition(":")[0]), (
        f"{key} is within the limits again: take it off EXEMPT"
    )
