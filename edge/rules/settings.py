"""Configuration models of the analytics rules, one per rule kind.

A rule's `kind` equals the `Event.kind` it emits. Rules name the camera's lines and zones; `edge.config`
checks that those names exist. Only pydantic here: no I/O, no numpy.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CLASSES: tuple[str, ...] = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
VEHICLE_CLASSES: tuple[str, ...] = ("bicycle", "car", "motorcycle", "bus", "truck")

Anchor = Literal["bottom_center", "center", "top_center"]


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Rule name, unique per camera")
    enabled: bool = Field(default=True, description="Set false to keep the rule in the file but not run it")


class LineCrossingRule(RuleBase):
    kind: Literal["line_crossing"] = "line_crossing"
    line: str = Field(description="Name of a line of this camera")
    classes: tuple[str, ...] = Field(default=DEFAULT_CLASSES, description="Object classes counted")
    anchor: Anchor = Field(default="bottom_center", description="Box point that must cross the line")
    summary_interval_s: float = Field(default=60.0, gt=0, le=86400, description="Period of count summaries")


RuleConfig = Annotated[LineCrossingRule, Field(discriminator="kind")]
