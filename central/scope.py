"""Scoped accounts: which nodes and cameras an account or API token may see (issue 14).

The commune's rules say a village's group sees its own residential cameras and the police see
everything, so an account may carry `scope: {nodes: [n1], cameras: ["n2/cong-cho", "n3/*"]}`; no scope
means everything, as before. `ScopeSettings` is the YAML, `Scope` the compiled, immutable form that the
principal carries. One home for the decision: the API asks `allows`/`allows_node`, the store turns the
same sets into a WHERE clause (central/queries.py `scope_sql`), and the live feed asks `view`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from common.yamlconf import Strict

_NAME = r"[A-Za-z0-9_.-]+"
WHOLE = "*"


class ScopeSettings(Strict):
    """`nodes`: whole nodes; `cameras`: `node/camera` pairs, or `node/*` for every camera of a node."""

    nodes: list[str] = Field(default_factory=list, description="Whole nodes this account sees")
    cameras: list[str] = Field(
        default_factory=list, description='node/camera pairs ("n1/cong-cho", or "n2/*" for a whole node)'
    )

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"{name!r} is not a node name")
        return value

    @field_validator("cameras")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for pair in value:
            if not re.fullmatch(rf"{_NAME}/({_NAME}|\*)", pair):
                raise ValueError(f"{pair!r} is not node/camera or node/*")
        return value

    def compile(self) -> Scope:
        nodes = set(self.nodes)
        pairs: set[tuple[str, str]] = set()
        for pair in self.cameras:
            node, camera = pair.split("/", 1)
            if camera == WHOLE:
                nodes.add(node)
            else:
                pairs.add((node, camera))
        return Scope(frozenset(nodes), frozenset(p for p in pairs if p[0] not in nodes))


@dataclass(frozen=True, slots=True)
class Scope:
    """Whole nodes plus single (node, camera) pairs; an empty scope sees nothing."""

    nodes: frozenset[str]
    pairs: frozenset[tuple[str, str]]

    def allows(self, node: str, camera: str) -> bool:
        return node in self.nodes or (node, camera) in self.pairs

    def allows_node(self, node: str) -> bool:
        """Whether any part of the node is visible (its row in the node list, its cameras in scope)."""
        return node in self.nodes or any(n == node for n, _ in self.pairs)

    def trim_node(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """A node-list entry with only the cameras in scope; None when none of it is visible."""
        node = str(item.get("node"))
        if not self.allows_node(node):
            return None
        if node in self.nodes:
            return item
        cameras = [c for c in item.get("cameras") or [] if self.allows(node, str(c.get("camera")))]
        return {**item, "cameras": cameras}

    def view(self, name: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """What a live-feed message looks like to this scope (None: not sent). Events and acks carry
        node and camera; node updates are trimmed; anything else is not sent to a scoped client."""
        if name == "node":
            return self.trim_node(data)
        if name in ("event", "ack"):
            return data if self.allows(str(data.get("node")), str(data.get("camera"))) else None
        return None


def allows(scope: Scope | None, node: str, camera: str) -> bool:
    """No scope sees everything."""
    return scope is None or scope.allows(node, camera)
