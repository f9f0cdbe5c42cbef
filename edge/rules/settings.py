"""Configuration models of the analytics rules, one per rule kind.

A rule's `kind` equals the `Event.kind` it emits (line_crossing rules also emit `count_summary`). Rules
name the camera's lines and zones; `edge.config` checks that those names exist. Only pydantic here: no I/O,
no numpy. docs/rules.md explains every rule and its parameters.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_CLASSES: tuple[str, ...] = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
VEHICLE_CLASSES: tuple[str, ...] = ("bicycle", "car", "motorcycle", "bus", "truck")

Anchor = Literal["bottom_center", "center", "top_center"]

_SCHEDULE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_schedule(text: str) -> tuple[int, int]:
    """'22:00-05:00' -> (start, end) in minutes after local midnight; end may be before start."""
    m = _SCHEDULE.match(text.strip())
    if not m:
        raise ValueError(f"schedule {text!r} must look like '22:00-05:00' (24 h local time)")
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = int(m.group(3)) * 60 + int(m.group(4))
    if end > 24 * 60:
        raise ValueError(f"schedule {text!r}: end is after 24:00")
    return start, end


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Rule name, unique per camera"
    )
    enabled: bool = Field(default=True, description="Set false to keep the rule in the file but not run it")


class LineCrossingRule(RuleBase):
    """Counts tracks whose anchor crosses a line segment, once per track and direction."""

    kind: Literal["line_crossing"] = "line_crossing"
    line: str = Field(description="Name of a line of this camera")
    classes: tuple[str, ...] = Field(default=DEFAULT_CLASSES, description="Object classes counted")
    anchor: Anchor = Field(default="bottom_center", description="Box point that must cross the line")
    summary_interval_s: float = Field(
        default=60.0, gt=0, le=86400, description="Period of count_summary events"
    )
    summaries: bool = Field(default=True, description="Emit periodic count_summary events per direction")
    min_observations: int = Field(
        default=2, ge=1, le=10, description="Consecutive observations on the new side that confirm a crossing"
    )
    confirm_s: float = Field(
        default=0.1, ge=0, le=5,
        description="At a low detection rate fewer observations confirm a side: as many as span this many "
        "seconds of detector runs (at least one, at most min_observations); 0 always asks min_observations",
    )  # fmt: skip
    margin: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Dead band each side of the line in box heights; positions inside it are ignored",
    )
    confirm_distance: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="One observation this far past the line (box heights) confirms at once",
    )
    edge_exit: bool = Field(
        default=True,
        description="A box cut by the picture's border beyond the line confirms its new side at once",
    )
    end_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=0.5,
        description="The crossing point may fall this fraction of the segment beyond its ends",
    )


class _ZoneCountBase(RuleBase):
    zone: str = Field(description="Name of a zone of this camera")
    classes: tuple[str, ...] = Field(
        default=DEFAULT_CLASSES, description="Object classes counted in the zone"
    )
    anchor: Anchor = Field(default="bottom_center", description="Box point that must be inside the zone")
    min_duration_s: float = Field(
        default=2.0, ge=0, le=3600, description="Count must stay at/above threshold this long to start"
    )
    clear_s: float = Field(
        default=3.0,
        ge=0,
        le=3600,
        description="Count must stay below threshold - hysteresis this long to end",
    )
    update_interval_s: float = Field(
        default=30.0, ge=0, le=86400, description="Period of update events while active; 0 = none"
    )
    threshold: int
    hysteresis: int

    @model_validator(mode="after")
    def _hysteresis_below_threshold(self) -> _ZoneCountBase:
        if self.hysteresis >= self.threshold:
            raise ValueError("hysteresis must be below threshold")
        return self


class ZoneOccupancyRule(_ZoneCountBase):
    """A zone becomes occupied (start), stays occupied (update), becomes free (end)."""

    kind: Literal["zone_occupancy"] = "zone_occupancy"
    threshold: int = Field(default=1, ge=1, le=1000, description="Objects in the zone that make it occupied")
    hysteresis: int = Field(
        default=0, ge=0, le=999, description="Ends when the count falls below threshold - hysteresis"
    )


class CrowdingRule(_ZoneCountBase):
    """Many objects in a zone at once (a crowd, a traffic jam)."""

    kind: Literal["crowding"] = "crowding"
    classes: tuple[str, ...] = Field(default=("person",), description="Object classes counted in the zone")
    threshold: int = Field(default=10, ge=1, le=1000, description="Objects in the zone that make a crowd")
    hysteresis: int = Field(
        default=2, ge=0, le=999, description="Ends when the count falls below threshold - hysteresis"
    )
    min_duration_s: float = Field(
        default=10.0, ge=0, le=3600, description="Count must stay at/above threshold this long to start"
    )
    clear_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Count must stay below threshold - hysteresis this long to end",
    )


class LoiteringRule(RuleBase):
    """A track that stays in a zone longer than a limit (start), and when it leaves (end)."""

    kind: Literal["loitering"] = "loitering"
    zone: str = Field(description="Name of a zone of this camera")
    classes: tuple[str, ...] = Field(default=("person",), description="Object classes watched")
    anchor: Anchor = Field(default="bottom_center", description="Box point that must be inside the zone")
    max_dwell_s: float = Field(
        default=120.0, gt=0, le=86400, description="Time in the zone that counts as loitering"
    )
    exit_grace_s: float = Field(
        default=3.0, ge=0, le=600, description="Time outside the zone before the stay is over"
    )


class IntrusionRule(RuleBase):
    """An object of a watched class enters a zone while the schedule is active."""

    kind: Literal["intrusion"] = "intrusion"
    zone: str = Field(description="Name of a zone of this camera")
    classes: tuple[str, ...] = Field(default=("person",), description="Object classes that intrude")
    anchor: Anchor = Field(default="bottom_center", description="Box point that must be inside the zone")
    schedule: tuple[str, ...] = Field(
        default=(),
        max_length=16,
        description="Active periods in local time, e.g. ['22:00-05:00'] (across midnight); empty = always",
    )
    min_observations: int = Field(
        default=2, ge=1, le=50, description="Consecutive observations inside before it fires"
    )

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parse_schedule(item)
        return value


class StoppedVehicleRule(RuleBase):
    """A vehicle standing still in a lane zone (accident or dangerous parking suspicion): start and end."""

    kind: Literal["stopped_vehicle"] = "stopped_vehicle"
    zone: str = Field(description="Name of a lane zone; vehicles outside it never trigger the rule")
    classes: tuple[str, ...] = Field(default=VEHICLE_CLASSES, description="Object classes watched")
    anchor: Anchor = Field(default="bottom_center", description="Box point that must be inside the zone")
    min_stopped_s: float = Field(
        default=30.0, gt=0, le=86400, description="Time standing still before it fires"
    )
    max_move: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="Displacement, in box heights, under which the vehicle counts as still",
    )


class WrongWayRule(RuleBase):
    """A vehicle travelling against the zone's allowed `direction` for a minimum distance."""

    kind: Literal["wrong_way"] = "wrong_way"
    zone: str = Field(description="Name of a lane zone that has a `direction`")
    classes: tuple[str, ...] = Field(default=VEHICLE_CLASSES, description="Object classes watched")
    anchor: Anchor = Field(default="bottom_center", description="Box point followed")
    min_distance_m: float = Field(
        default=8.0,
        gt=0,
        le=1000,
        description="Distance against the direction before it fires (metres; rough without calibration)",
    )


class SpeedingRule(RuleBase):
    """A vehicle whose estimated ground speed in a zone is above the zone's (or this rule's) limit."""

    kind: Literal["speeding"] = "speeding"
    zone: str = Field(description="Name of a zone; its speed_limit_kmh applies unless limit_kmh is set")
    classes: tuple[str, ...] = Field(default=VEHICLE_CLASSES, description="Object classes watched")
    anchor: Anchor = Field(default="bottom_center", description="Box point projected to the ground")
    limit_kmh: float | None = Field(
        default=None, gt=0, le=300, description="Overrides the zone's speed_limit_kmh"
    )
    tolerance_kmh: float = Field(default=5.0, ge=0, le=100, description="Fires above limit + tolerance")
    window_s: float = Field(
        default=1.0, ge=0.2, le=10, description="Time window of the robust speed estimate"
    )
    min_span_s: float = Field(
        default=0.5, ge=0.1, le=10, description="Track history needed before a speed is estimated"
    )
    min_observations: int = Field(
        default=3, ge=1, le=50, description="Consecutive estimates over the limit before it fires"
    )

    @model_validator(mode="after")
    def _span_in_window(self) -> SpeedingRule:
        if self.min_span_s > self.window_s:
            raise ValueError("min_span_s must not exceed window_s")
        return self


class SuspectedCollisionRule(RuleBase):
    """Two vehicles touch and one of them stops abruptly right after (see docs/rules.md)."""

    kind: Literal["suspected_collision"] = "suspected_collision"
    classes: tuple[str, ...] = Field(default=VEHICLE_CLASSES, description="Object classes watched")
    zone: str | None = Field(
        default=None, description="Optional lane zone: the stopping vehicle must be inside it"
    )
    contact_iou: float = Field(
        default=0.05, gt=0, le=1, description="Box overlap (IoU) that counts as contact"
    )
    contact_m: float = Field(
        default=4.0,
        gt=0,
        le=50,
        description="With calibration: ground distance of anchors that counts as contact",
    )
    min_speed_kmh: float = Field(
        default=15.0, gt=0, le=300, description="Speed a vehicle had shortly before contact"
    )
    stop_speed_kmh: float = Field(
        default=3.0, ge=0, le=50, description="Speed under which a vehicle counts as stopped"
    )
    decel_s: float = Field(
        default=2.0, gt=0, le=30, description="Longest time from min_speed_kmh to stopped ('abrupt')"
    )
    pre_window_s: float = Field(
        default=2.0, gt=0, le=30, description="How recent the fast motion must be at contact"
    )
    post_window_s: float = Field(
        default=3.0, gt=0, le=60, description="How soon after contact the stop must come"
    )
    hold_s: float = Field(default=1.0, ge=0, le=60, description="How long the vehicle must stay stopped")
    min_stopped_tracks: Literal[1, 2] = Field(
        default=1, description="1: one vehicle stopping abruptly suffices; 2: both"
    )

    @model_validator(mode="after")
    def _stop_below_speed(self) -> SuspectedCollisionRule:
        if self.stop_speed_kmh >= self.min_speed_kmh:
            raise ValueError("stop_speed_kmh must be below min_speed_kmh")
        return self


RuleConfig = Annotated[
    LineCrossingRule
    | ZoneOccupancyRule
    | CrowdingRule
    | LoiteringRule
    | IntrusionRule
    | StoppedVehicleRule
    | WrongWayRule
    | SpeedingRule
    | SuspectedCollisionRule,
    Field(discriminator="kind"),
]
