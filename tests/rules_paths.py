"""Synthetic box paths for the rule tests: objects moving frame by frame, turned into `Tracks` records.

A frame is 1000 x 1000 pixels and the camera's `reference_size` is the same, so configured coordinates are
pixels. Velocities are finite differences of the box centres, as a tracker would report them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.camera_config import COCO_NAMES, CameraConfig
from edge.events import EventFactory
from edge.records import Event, Tracks
from edge.rules import CameraRules, Rule, build_rules

W = H = 1000
FPS = 10.0
TS0 = 1_800_000_000.0  # a wall-clock epoch for event timestamps
Box = tuple[float, float, float, float]


def box(x: float, bottom: float, w: float = 40.0, h: float = 50.0) -> Box:
    """A box whose bottom centre (the default anchor) is at (x, bottom)."""
    return (x - w / 2, bottom - h, x + w / 2, bottom)


def path(
    p0: tuple[float, float], p1: tuple[float, float], n: int, w: float = 40.0, h: float = 50.0
) -> list[Box]:
    """n boxes whose anchor moves in a straight line from p0 to p1 (both included)."""
    xs = np.linspace(p0[0], p1[0], n)
    ys = np.linspace(p0[1], p1[1], n)
    return [box(float(x), float(y), w, h) for x, y in zip(xs, ys, strict=True)]


def gap(frames: int) -> list[Box | None]:
    """Frames where the object is not seen (occluded) but its track goes on."""
    return [None] * frames


def anchors(points: Sequence[tuple[float, float]], w: float = 40.0, h: float = 50.0) -> list[Box]:
    return [box(x, y, w, h) for x, y in points]


@dataclass
class Obj:
    """One tracked object: its box at each frame index (None = not seen, e.g. occluded)."""

    track_id: int
    cls: str
    boxes: Sequence[Box | None]
    start: int = 0
    ends: bool = True  # the tracker reports the end on the frame after the last box
    score: float = 0.8
    end_at: int | None = field(default=None)

    def box_at(self, i: int) -> Box | None:
        k = i - self.start
        return self.boxes[k] if 0 <= k < len(self.boxes) else None

    @property
    def last(self) -> int:
        return self.start + max(k for k, b in enumerate(self.boxes) if b is not None)


def frames(
    objs: Sequence[Obj], n: int | None = None, fps: float = FPS, ts0: float = TS0
) -> Iterator[tuple[Tracks, float, float, int]]:
    """(tracks, t, ts, seq) per frame; `n` frames, default up to one after the last object ends."""
    if n is None:
        n = max(o.start + len(o.boxes) for o in objs) + 1 if objs else 1
    prev: dict[int, tuple[float, np.ndarray]] = {}
    for i in range(n):
        t = i / fps
        ids, boxes, scores, classes, vels, ended = [], [], [], [], [], []
        for o in objs:
            b = o.box_at(i)
            end_frame = o.end_at if o.end_at is not None else o.last + 1
            if o.ends and i == end_frame:
                ended.append(o.track_id)
            if b is None or (o.ends and i >= end_frame):
                continue
            c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
            if o.track_id in prev:
                pt, pc = prev[o.track_id]
                v = (c - pc) / (t - pt)
            else:
                v = np.zeros(2)
            prev[o.track_id] = (t, c)
            ids.append(o.track_id)
            boxes.append(b)
            scores.append(o.score)
            classes.append(COCO_NAMES.index(o.cls))
            vels.append(v)
        tracks = Tracks(
            np.array(ids, np.int64),
            np.array(boxes, np.float32).reshape(-1, 4),
            np.array(scores, np.float32),
            np.array(classes, np.int64),
            np.array(vels, np.float32).reshape(-1, 2),
            np.array(ended, np.int64),
        )
        yield tracks, t, ts0 + t, i


def camera(rules: list[dict[str, Any]], **extra: Any) -> CameraConfig:
    data: dict[str, Any] = {"id": "cam", "source": "clip.mp4", "reference_size": (W, H), "rules": rules}
    data.setdefault(
        "lines", {"l": {"points": [[200, 500], [800, 500]], "in_name": "town", "out_name": "ferry"}}
    )
    data.update(extra)
    return CameraConfig.model_validate(data)


def build(rules: list[dict[str, Any]], tz: str = "Asia/Ho_Chi_Minh", **extra: Any) -> list[Rule]:
    return build_rules(camera(rules, **extra), W, H, COCO_NAMES, EventFactory("n1", "cam", tz), tz)


def run(
    rules: list[Rule] | CameraRules,
    objs: Sequence[Obj],
    n: int | None = None,
    fps: float = FPS,
    ts0: float = TS0,
) -> list[Event]:
    runner = rules if isinstance(rules, CameraRules) else CameraRules(rules)
    out: list[Event] = []
    for tracks, t, ts, seq in frames(objs, n, fps, ts0):
        out.extend(runner.update(tracks, t, ts, seq))
    return out
