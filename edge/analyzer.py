"""Per-camera analysis of one frame: motion gate -> detect -> filter -> track -> rules -> events.

`CameraAnalyzer` owns the per-camera state (tracker, rules, motion gate, health checks) and nothing that
does I/O, so the pipeline, the benchmark and the counting evaluation all run exactly the same code.
The detector is shared between the cameras of a node and passed in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.camera_config import CameraConfig
from edge.capture.health import CameraHealth
from edge.capture.motion import MotionGate, motion_explained
from edge.events import EventFactory
from edge.geometry import Segment, segment_distances
from edge.records import Detections, Event, Frame, ImageArray, IntArray, Tracks
from edge.rules import CameraRules, build_rules
from edge.vision.filters import ClassFilter
from edge.vision.labels import ClassLabels
from edge.vision.objects import ObjectMerger
from edge.vision.pace import RiderPace
from edge.vision.regions import RegionDetector, plan_regions
from edge.vision.tracker import Tracker, TrackerSettings

log = logging.getLogger(__name__)

REGION_NMS_IOU = 0.5  # the detector's own NMS default, for duplicates across detection regions


class DetectorLike(Protocol):
    """What the analyzer needs of a detector (a seam for tests)."""

    names: tuple[str, ...]

    def detect(
        self, image: ImageArray, min_score: float = ..., classes: IntArray | None = None
    ) -> Detections: ...


@dataclass
class StageTimes:
    """Cumulative seconds per stage and counters, for stats and the benchmark."""

    frames: int = 0
    detector_runs: int = 0
    motion_s: float = 0.0
    detect_s: float = 0.0
    track_s: float = 0.0
    rules_s: float = 0.0
    health_s: float = 0.0
    events: int = 0
    last_detect_ms: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one analysed frame produced."""

    frame: Frame
    detected: bool
    detections: Detections
    tracks: Tracks
    events: list[Event]


class CameraAnalyzer:
    """Runs the analysis of one camera, frame by frame, in the inference thread."""

    def __init__(
        self,
        camera: CameraConfig,
        detector: DetectorLike,
        events: EventFactory,
        tz: str,
        motion_enabled: bool | None = None,
        health_enabled: bool = True,
    ) -> None:
        self.camera = camera
        self.detector = detector
        self.events = events
        self.tz = tz
        settings = (
            camera.motion
            if motion_enabled is None
            else camera.motion.model_copy(update={"enabled": motion_enabled})
        )
        self.motion = MotionGate(settings)
        self.tracker = Tracker(TrackerSettings.from_config(camera.tracker))
        self.health = CameraHealth(camera.health, events) if health_enabled else None
        self.rules: CameraRules | None = None
        self.class_filter: ClassFilter | None = None
        self.merger: ObjectMerger | None = None
        self.pace: RiderPace | None = None  # lone riders seen only as `person`, told by their pace
        self.labels = ClassLabels(np.zeros(0, np.int64), None)
        self._wanted = np.zeros(0, np.bool_)
        self._detect: DetectorLike = detector
        self.times = StageTimes()
        self.tracks = Tracks.empty()
        self._skipped = 0
        # Boxes of the tracks of the last detector run: what moving regions may be explained by.
        self._last_boxes = np.zeros((0, 4), np.float32)
        self._segments: list[Segment] = []  # counting lines, where the motion gate does not skip runs
        # A detector floor below every threshold: the tracker's second stage uses low-score boxes.
        self.min_score = camera.tracker.low_score

    def _setup(self, frame: Frame) -> None:
        names = self.detector.names
        self.class_filter = ClassFilter.from_camera(self.camera, names, frame.width, frame.height)
        self.merger = ObjectMerger.build(self.camera.objects, names)
        self.pace = RiderPace(self.camera.objects.rider_pace, names)
        self._detect = self.detector
        if self.camera.detect_regions:
            rects = plan_regions(
                self.camera.detect_regions, self.camera.scale(frame.width, frame.height),
                (frame.width, frame.height), getattr(self.detector, "input_size", None),
                self.camera.detect_min_scale,
            )  # fmt: skip
            self._detect = RegionDetector(self.detector, rects, (frame.width, frame.height), REGION_NMS_IOU)
        # Classes that matter before the class filter: the camera's own, plus riders and their bikes.
        self._wanted = self.class_filter.keep | self.merger.needs
        self.labels = ClassLabels.build(self.camera.objects, names, self._wanted)
        self.rules = CameraRules(
            build_rules(self.camera, frame.width, frame.height, names, self.events, self.tz)
        )
        self._segments = self.rules.count_segments()
        log.info(
            "camera %s: %dx%d, %d rule(s) active",
            self.camera.id,
            frame.width,
            frame.height,
            len(self.rules.rules),
        )

    def _gate(self, frame: Frame) -> bool:
        """Motion gate, then skip a few runs while the only motion is that of known tracks."""
        if not self.motion.update(frame.image, frame.t):
            return False
        settings = self.motion.settings
        if (
            settings.enabled
            and self._skipped < settings.max_skip_frames
            and len(self._last_boxes)
            and motion_explained(self.motion.recent_boxes(4), self._last_boxes)
            and (settings.skip_near_lines or not self._near_lines())
        ):
            self._skipped += 1
            return False
        self._skipped = 0
        return True

    def _near_lines(self) -> bool:
        """True while a track is near a counting line: within its box size plus the way it moves over
        the runs a skip may leave out. There a missed run costs the crossing (measured, docs/evaluation.md
        "Skips near the lines"); elsewhere the tracker coasts safely."""
        tracks = self.tracks
        if not len(tracks) or not self._segments:
            return False
        xyxy = tracks.xyxy.astype(np.float64)
        size = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        horizon = (self.motion.settings.max_skip_frames + 1) / self.camera.detect_fps
        reach = size + np.linalg.norm(tracks.velocities.astype(np.float64), axis=1) * horizon
        centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2.0
        return bool(np.any(segment_distances(centres, self._segments) <= reach))

    def process(self, frame: Frame, force_detect: bool = False) -> FrameResult:
        """Analyse one frame; the detector runs only when the motion gate (or `force_detect`) says so."""
        if self.rules is None or self.class_filter is None or self.merger is None or self.pace is None:
            self._setup(frame)
        assert self.rules is not None and self.class_filter is not None and self.merger is not None
        assert self.pace is not None
        times = self.times
        times.frames += 1
        events: list[Event] = []

        c0 = time.perf_counter()
        run = self._gate(frame) or force_detect
        c1 = time.perf_counter()
        times.motion_s += c1 - c0
        if self.health is not None:
            events.extend(self.health.update(frame))
        c2 = time.perf_counter()
        times.health_s += c2 - c1

        dets = Detections.empty()
        if run:
            # Riders join their two-wheelers and one object keeps one box before classes are filtered,
            # so a rider never reaches the rules as a pedestrian.
            raw = self.labels.apply(self._detect.detect(frame.image, self.min_score, self.labels.compete))
            ids = raw.class_ids
            raw = self.merger.apply(
                raw[
                    (ids >= 0) & (ids < self._wanted.shape[0]) & self._wanted[ids % max(len(self._wanted), 1)]
                ]
            )
            candidates = self.class_filter.apply(raw, floor=self.min_score)
            thresholds = self.class_filter.thresholds(candidates)
            dets = candidates[candidates.scores >= thresholds]
            c3 = time.perf_counter()
            times.detect_s += c3 - c2
            times.last_detect_ms = (c3 - c2) * 1000.0
            times.detector_runs += 1
            self.tracks = self.pace.apply(self.tracker.update(candidates, frame.t, thresholds), frame.t)
            # Skipping is only safe while every confident detection already has a confirmed track.
            self._last_boxes = (
                self.tracks.xyxy if len(self.tracks) >= len(dets) else np.zeros((0, 4), np.float32)
            )
            c4 = time.perf_counter()
            times.track_s += c4 - c3
            events.extend(self.rules.update(self.tracks, frame.t, frame.ts, frame.seq))
            times.rules_s += time.perf_counter() - c4
        else:
            # No motion: nothing moved, so tracks keep their state; rules still see time pass
            # (dwell and stopped-vehicle timers need it) with the last known tracks.
            c3 = time.perf_counter()
            events.extend(
                self.rules.update(
                    self.tracks.__class__(
                        self.tracks.track_ids,
                        self.tracks.xyxy,
                        self.tracks.scores,
                        self.tracks.class_ids,
                        self.tracks.velocities * 0.0,
                    ),
                    frame.t,
                    frame.ts,
                    frame.seq,
                )
            )
            times.rules_s += time.perf_counter() - c3
        times.events += len(events)
        return FrameResult(frame, run, dets, self.tracks, events)
