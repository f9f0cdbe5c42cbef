"""Typed records that flow one way through the edge pipeline: Frame -> Detections -> Tracks -> Event.

Every record is immutable; a stage returns new records and never changes its inputs, so a frame can be
handed to the snapshot encoder while the next stage runs. Arrays are validated once, on construction,
and the boolean-mask indexing of `Detections` / `Tracks` keeps the hot paths free of per-object loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.states import Phase

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture of one camera.

    `t` is a monotonic time in seconds (for a file: its position in the clip), used for durations and
    speeds so tests are deterministic; `ts` is the wall-clock UTC epoch used for event timestamps.
    """

    camera: str
    seq: int
    t: float
    ts: float
    image: ImageArray

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _as_boxes(xyxy: Any) -> FloatArray:
    arr = np.asarray(xyxy, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (n, 4), got {arr.shape}")
    return arr


@dataclass(frozen=True, slots=True)
class Detections:
    """Detector output for one frame: parallel arrays, one row per object, boxes in frame pixels."""

    xyxy: FloatArray
    scores: FloatArray
    class_ids: IntArray

    def __post_init__(self) -> None:
        xyxy = _as_boxes(self.xyxy)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        n = xyxy.shape[0]
        if scores.shape[0] != n or class_ids.shape[0] != n:
            raise ValueError(
                f"Detections arrays disagree: {n} boxes, {scores.shape[0]} scores, {class_ids.shape[0]} classes"
            )
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> Detections:
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index])

    @property
    def areas(self) -> FloatArray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0.0, None)
        areas: FloatArray = (wh[:, 0] * wh[:, 1]).astype(np.float32)
        return areas


@dataclass(frozen=True, slots=True)
class Tracks:
    """Confirmed tracks seen in one frame, plus the ids of tracks that ended at this frame.

    `velocities` is the filtered velocity of the box centre in pixels per second. Rules forget every
    id listed in `ended`, which keeps their state bounded on a 24/7 run.
    """

    track_ids: IntArray
    xyxy: FloatArray
    scores: FloatArray
    class_ids: IntArray
    velocities: FloatArray
    ended: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        xyxy = _as_boxes(self.xyxy)
        n = xyxy.shape[0]
        ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        vel = (
            np.asarray(self.velocities, dtype=np.float32).reshape(-1, 2)
            if n
            else np.zeros((0, 2), np.float32)
        )
        ended = np.asarray(self.ended, dtype=np.int64).reshape(-1)
        if not (ids.shape[0] == scores.shape[0] == class_ids.shape[0] == vel.shape[0] == n):
            raise ValueError("Tracks arrays disagree in length")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "track_ids", ids)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)
        object.__setattr__(self, "velocities", vel)
        object.__setattr__(self, "ended", ended)

    @classmethod
    def empty(cls, ended: Any = ()) -> Tracks:
        return cls(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, 2), np.float32),
            np.asarray(ended, dtype=np.int64),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> Tracks:
        """Select rows; `ended` is kept whole because it is not per-row."""
        return Tracks(
            self.track_ids[index],
            self.xyxy[index],
            self.scores[index],
            self.class_ids[index],
            self.velocities[index],
            self.ended,
        )

    def anchors(self, anchor: str = "bottom_center") -> FloatArray:
        """Anchor points (n, 2): `bottom_center` for ground-plane rules, `center` for the box centre."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5
        if anchor == "center":
            y = (self.xyxy[:, 1] + self.xyxy[:, 3]) * 0.5
        elif anchor == "bottom_center":
            y = self.xyxy[:, 3]
        elif anchor == "top_center":
            y = self.xyxy[:, 1]
        else:
            raise ValueError(f"unknown anchor {anchor!r}")
        return np.stack([x, y], axis=1).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing worth telling the station about; `kind` equals the kind of the rule that made it.

    The wire payload (see docs/mqtt-api.md) is built from this record by `edge.events.to_payload`.
    `measurements` holds the numbers that matter for the kind (direction, count, dwell_s, speed_kmh...).
    `texts` holds the display texts by language code ("vi", "en").
    """

    event_id: str
    kind: str
    phase: Phase
    node: str
    camera: str
    rule: str
    ts: float
    local_time: str
    classes: tuple[str, ...] = ()
    track_ids: tuple[int, ...] = ()
    confidence: float | None = None
    box: tuple[float, float, float, float] | None = None
    measurements: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    frame_seq: int | None = None
