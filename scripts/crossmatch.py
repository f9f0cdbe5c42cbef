"""Counted crossings matched to labelled ones, one by one, to check the class of each count.

Totals per direction hide a wrong class when the count is right: a lone cyclist counted as `person` on
a road clip leaves the total exact and is still a pedestrian that never was. Each labelled crossing has
a frame (decode order, about +/-5 frames, see the data directory's README) and each counted event has
its frame index, so they can be paired: same direction, frames within the tolerance (at least 0.5 s),
as many pairs as possible, then as many whose classes agree, then the nearest frames (an optimal
assignment). Two confusions are reported:

- riders as pedestrians: the truth is a two-wheeler (its class or its `alt_class`), the count `person`;
- pedestrians as vehicles: the truth is a `person` (and no vehicle `alt_class`), the count a vehicle.

`eval_counts.compare` adds them to every clip's result; unmatched crossings on either side are missed
or extra counts, which the totals already show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.vision.assign import match_optimal

TWO_WHEELERS = frozenset({"bicycle", "motorcycle"})
VEHICLES = frozenset({"bicycle", "car", "motorcycle", "bus", "truck", "train", "boat"})
MIN_TOLERANCE_S = 0.5
MIN_TOLERANCE_FRAMES = 5  # the labels' own accuracy


@dataclass(frozen=True)
class Crossing:
    """One crossing, counted or labelled: frame index, direction ("in"/"out"), class, other classes."""

    frame: int
    direction: str
    cls: str
    alt: tuple[str, ...] = ()

    @property
    def classes(self) -> frozenset[str]:
        return frozenset((self.cls, *self.alt))


def tolerance_frames(fps: float | None, tolerance_s: float = MIN_TOLERANCE_S) -> int:
    """Frames of matching tolerance: `tolerance_s` (at least 0.5 s) at the clip's rate, at least 5."""
    if not fps or fps <= 0:
        return MIN_TOLERANCE_FRAMES
    return max(MIN_TOLERANCE_FRAMES, math.ceil(max(tolerance_s, MIN_TOLERANCE_S) * fps))


def match(counted: Sequence[Crossing], truth: Sequence[Crossing], tol: int) -> list[tuple[int, int]]:
    """Pairs (counted index, truth index): same direction, frames at most `tol` apart, each used once.

    The optimal assignment (`edge.vision.assign`): as many pairs as possible, then as many whose classes
    agree, then the nearest frames; greedy nearest-first can pair a car with the truck beside it.
    """
    if not counted or not truth:
        return []
    score = np.zeros((len(counted), len(truth)))
    for i, c in enumerate(counted):
        for j, t in enumerate(truth):
            gap = abs(c.frame - t.frame)
            if c.direction == t.direction and gap <= tol:
                score[i, j] = 0.01 + 0.9 * (c.cls in t.classes) + 0.09 * (1.0 - gap / (tol + 1))
    rows, cols = match_optimal(score, 0.005)
    return sorted(zip(rows.tolist(), cols.tolist(), strict=True))


def confusions(counted: Sequence[Crossing], truth: Sequence[Crossing], tol: int) -> dict[str, Any]:
    """Riders counted as pedestrians and pedestrians counted as vehicles, with the frames of each."""
    riders, pedestrians = [], []
    pairs = match(counted, truth, tol)
    for i, j in pairs:
        c, t = counted[i], truth[j]
        if c.cls == "person" and t.classes & TWO_WHEELERS and t.cls != "person":
            riders.append(t.frame)
        elif t.cls == "person" and not t.classes & VEHICLES and c.cls in VEHICLES:
            pedestrians.append(t.frame)
    return {
        "riders_as_pedestrians": len(riders),
        "pedestrians_as_vehicles": len(pedestrians),
        "confused_frames": {"riders_as_pedestrians": riders, "pedestrians_as_vehicles": pedestrians},
        "matched": len(pairs),
        "tolerance_frames": tol,
    }


def truth_crossings(truth: dict[str, Any]) -> list[Crossing]:
    """The labelled crossings of a truth file (those with a frame and a direction)."""
    out = []
    for c in truth.get("crossings", []):
        if isinstance(c, dict) and "frame" in c and c.get("direction") in ("in", "out"):
            alt = c.get("alt_class")
            alts = tuple(alt) if isinstance(alt, list) else ((str(alt),) if alt else ())
            out.append(Crossing(int(c["frame"]), str(c["direction"]), str(c.get("class")), alts))
    return out
