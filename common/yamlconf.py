"""Reading a technician's YAML file and turning validation errors into `file: field.path: reason` lines.

Used by the node's and the station's `load_config`. PyYAML silently keeps the last of two equal keys; this
loader refuses them. Pydantic locations become dotted paths that name cameras by id
(`cameras.gate.rules[1].line`), the way a technician reads the file.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(Exception):
    """A configuration file that cannot be used; `lines` holds one `file: path: reason` per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _mapping_no_duplicates(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def format_loc(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn a pydantic location into `cameras.gate.rules[no_entry].line`, naming cameras by id and list
    items that have a `name` (rules) by it; items without one keep their index."""
    parts: list[str] = []
    node = data
    prev: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            cam_id = None
            if (
                prev == "cameras"
                and isinstance(node, list)
                and 0 <= item < len(node)
                and isinstance(node[item], dict)
            ):
                cam_id = node[item].get("id")
            name = (
                node[item].get("name")
                if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict)
                else None
            )
            if isinstance(cam_id, str) and cam_id:
                parts.append("." + cam_id)
            elif isinstance(name, str) and name:
                parts.append(f"[{name}]")  # rules by their name, as the technician reads the file
            else:
                parts.append(f"[{item}]")
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            if isinstance(prev, int) and isinstance(node, dict) and node.get("kind") == item:
                prev = item
                continue  # the discriminated-union tag adds nothing for the reader
            if item in ("function-after", "function-before") or "[" in item:
                continue
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
        prev = item
    text = "".join(parts).lstrip(".")
    return text or "(top level)"


_INNER_PATH = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.DOTALL)


def read_yaml(path: Path) -> Any:
    """The parsed content of a UTF-8 YAML file; ConfigError with the line and column of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: file is not UTF-8 text"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}: {where}YAML error: {problem}"]) from None


def _unwrap(tp: Any, tag: int | str | None = None) -> Any:
    """The model or container behind `Annotated[...]`, `X | None`, or the union member tagged `tag`."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        for member in members:
            kind = getattr(member, "model_fields", {}).get("kind")
            if kind is not None and kind.default == tag:
                return member
        return _unwrap(members[0]) if len(members) == 1 else None
    return tp


def known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at a pydantic location (the mapping that holds an unknown key)."""
    tp: Any = model
    for item in loc:
        tp = _unwrap(tp, item)
        if tp is None:
            return []
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if item == getattr(tp.model_fields.get("kind"), "default", None):
                continue  # the discriminated-union tag
            field = tp.model_fields.get(str(item))
            if field is None:
                return []
            tp = field.annotation
        elif get_origin(tp) in (list, tuple, dict):
            tp = get_args(tp)[-1]
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _unknown_key(loc: tuple[int | str, ...], model: type[BaseModel] | None, see: str) -> str:
    """'unknown key' with the closest known key at that place, when one is close (a typo)."""
    close = difflib.get_close_matches(str(loc[-1]), known_keys(model, loc[:-1]), 1, 0.6) if model else []
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key ({hint}check the spelling; see {see})"


def error_lines(
    exc: ValidationError, data: Any, source: str, see: str, model: type[BaseModel] | None = None
) -> list[str]:
    """One `source: field.path: reason` line per pydantic error; `see` is where valid keys are listed.
    With the `model`, a misspelled key gets the closest known one."""
    lines = []
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_key(tuple(err["loc"]), model, see)
        where = format_loc(tuple(err["loc"]), data)
        inner = _INNER_PATH.match(msg)
        if inner:  # a model validator names the field inside its model: join the two paths
            where = inner.group(1) if where == "(top level)" else f"{where}.{inner.group(1)}"
            msg = inner.group(2)
        lines.append(f"{source}: {where}: {msg}")
    return lines


ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_mapping(model: type[ModelT], data: Any, source: str, see: str) -> ModelT:
    """Validate a parsed YAML document against `model`; ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}: (top level): expected a mapping of settings, got {type(data).__name__}"]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc, data, source, see, model)) from None
