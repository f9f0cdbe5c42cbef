"""The JSON Schemas of contract v1, generated from the payload models and checked in under
contract/schemas/ for readers in other languages (and for docs/mqtt-api.md).

    python -m contract.schemas --write   # regenerate after changing a model
    python -m contract.schemas --check   # exit 1 when the checked-in files differ (CI does this via tests)
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from contract.clips import ClipMeta
from contract.commands import CommandPayload
from contract.models import AckPayload, EventPayload, StatsPayload, StatusPayload, schema_of

SchemaName = Literal["event", "status", "stats", "command", "ack", "clip_meta"]
MODELS: dict[SchemaName, type[BaseModel]] = {
    "event": EventPayload,
    "status": StatusPayload,
    "stats": StatsPayload,
    "command": CommandPayload,
    "ack": AckPayload,
    "clip_meta": ClipMeta,
}
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def generated(name: SchemaName) -> str:
    """The schema text of one payload as `--write` writes it (stable key order, trailing newline)."""
    schema = {**schema_of(MODELS[name]), "$id": f"urn:roadwatch:mqtt:v1:{name}"}
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def path_of(name: SchemaName) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


@cache
def load_schema(name: SchemaName) -> dict[str, Any]:
    """The checked-in JSON Schema of one payload."""
    data: dict[str, Any] = json.loads(path_of(name).read_text(encoding="utf-8"))
    return data


def stale() -> list[SchemaName]:
    """Names whose checked-in file differs from the generated text."""
    return [n for n in MODELS if not path_of(n).is_file() or path_of(n).read_text("utf-8") != generated(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contract.schemas", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the generated schemas")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_DIR.mkdir(exist_ok=True)
        for name in MODELS:
            path_of(name).write_text(generated(name), encoding="utf-8")
        return 0
    for old in stale():
        print(f"{path_of(old)} is out of date: run python -m contract.schemas --write", file=sys.stderr)
    return 1 if stale() else 0


if __name__ == "__main__":
    sys.exit(main())
