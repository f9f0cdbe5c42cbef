"""Building a camera's rules from its config, and running them all on each frame.

`build_rules` is called by the pipeline once the frame size is known (zones become pixel masks then).
`CameraRules` runs every rule of one camera in order, measures each rule's time, and keeps one rule's
unexpected error from stopping the others.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from edge.events import EventFactory
from edge.geometry import GroundPlane, Segment
from edge.records import Event, Tracks
from edge.rules.base import Rule, RuleContext
from edge.rules.collision import SuspectedCollision
from edge.rules.lane import StoppedVehicle, WrongWay
from edge.rules.line import LineCrossing
from edge.rules.settings import (
    CrowdingRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    SpeedingRule,
    StoppedVehicleRule,
    SuspectedCollisionRule,
    WrongWayRule,
    ZoneOccupancyRule,
)
from edge.rules.speed import Speeding
from edge.rules.zone import Intrusion, Loitering, ZoneCount

if TYPE_CHECKING:
    from edge.camera_config import CameraConfig

log = logging.getLogger(__name__)


def ground_plane(camera: CameraConfig, frame_w: int, frame_h: int) -> GroundPlane | None:
    """The camera's calibration as a pixel -> metre mapping for frames of this size, if it has one."""
    cal = camera.calibration
    if cal is None:
        return None
    sx, sy = camera.scale(frame_w, frame_h)
    image_px = [(x * sx, y * sy) for x, y in cal.image_points]
    return GroundPlane(image_px, cal.ground_points_m)


def build_rules(
    camera: CameraConfig,
    frame_w: int,
    frame_h: int,
    names: tuple[str, ...],
    events: EventFactory,
    tz: str,
) -> list[Rule]:
    """One rule object per enabled rule of the camera; `names` are the detector's class names by id."""
    ctx = RuleContext(camera, frame_w, frame_h, names, events, tz, ground_plane(camera, frame_w, frame_h))
    rules: list[Rule] = []
    for cfg in camera.rules:
        if not cfg.enabled:
            continue
        rule: Rule
        if isinstance(cfg, LineCrossingRule):
            rule = LineCrossing(cfg, ctx)
        elif isinstance(cfg, (ZoneOccupancyRule, CrowdingRule)):
            rule = ZoneCount(cfg, ctx)
        elif isinstance(cfg, LoiteringRule):
            rule = Loitering(cfg, ctx)
        elif isinstance(cfg, IntrusionRule):
            rule = Intrusion(cfg, ctx)
        elif isinstance(cfg, StoppedVehicleRule):
            rule = StoppedVehicle(cfg, ctx)
        elif isinstance(cfg, WrongWayRule):
            rule = WrongWay(cfg, ctx)
        elif isinstance(cfg, SpeedingRule):
            rule = Speeding(cfg, ctx)
        elif isinstance(cfg, SuspectedCollisionRule):
            rule = SuspectedCollision(cfg, ctx)
        else:  # pragma: no cover - the discriminated union has no other member
            raise TypeError(f"unknown rule kind {cfg.kind!r}")
        rules.append(rule)
    return rules


class CameraRules:
    """All rules of one camera; `seconds` holds each rule's cumulative run time, `errors` its failures."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.seconds: dict[str, float] = {r.name: 0.0 for r in rules}
        self.errors: dict[str, int] = {r.name: 0 for r in rules}

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        events: list[Event] = []
        for rule in self.rules:
            start = time.perf_counter()
            try:
                events.extend(rule.update(tracks, t, ts, frame_seq))
            except Exception:  # one faulty rule must not stop the camera's other rules
                self.errors[rule.name] += 1
                log.exception("rule %s (%s) failed on frame %d", rule.name, rule.kind, frame_seq)
            self.seconds[rule.name] += time.perf_counter() - start
        return events

    def state_size(self) -> int:
        return sum(r.state_size() for r in self.rules)

    def count_segments(self) -> list[Segment]:
        """The segments of the camera's line-crossing rules: where a missed detector run costs a count."""
        return [r.segment for r in self.rules if isinstance(r, LineCrossing)]

    def line_counts(self) -> dict[str, dict[tuple[str, str], int]]:
        """Counts of every line-crossing rule by rule name: {(direction, class): count}."""
        out: dict[str, dict[tuple[str, str], int]] = {}
        for rule in self.rules:
            if isinstance(rule, LineCrossing):
                out[rule.name] = rule.counts()
        return out
