"""Per-camera detection filter: which classes a camera keeps, at which score, and at which box size.

The config speaks in class names and fractions of the frame; the frame path wants array lookups. So
`ClassFilter.from_camera` turns the camera's settings into a keep-mask and a threshold array indexed
by class id, once per camera (and again only if the stream's resolution changes), and `apply` is
then a handful of vectorised comparisons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.camera_config import CameraConfig
from edge.capture.privacy import PrivacyMask
from edge.records import Detections, FloatArray

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClassFilter:
    """Lookup arrays built from one camera's config for one frame size.

    `keep[c]` says whether class id `c` is wanted, `min_scores[c]` is its score threshold; areas are
    in frame pixels; `privacy` drops detections whose ground point lies in a privacy mask. Class ids beyond the arrays (a model with more classes than names) are dropped.
    """

    keep: npt.NDArray[np.bool_]
    min_scores: FloatArray
    min_area_px: float
    max_area_px: float
    privacy: PrivacyMask | None = None

    @classmethod
    def from_camera(
        cls, camera: CameraConfig, names: tuple[str, ...], frame_w: int, frame_h: int
    ) -> ClassFilter:
        index = {name: i for i, name in enumerate(names)}
        unknown = [c for c in (*camera.classes, *camera.class_min_score) if c not in index]
        if unknown:
            log.warning("camera %s: classes %s are unknown to the model; ignored", camera.id, unknown)
        keep = np.zeros(len(names), np.bool_)
        keep[[index[c] for c in camera.classes if c in index]] = True
        min_scores = np.full(len(names), camera.min_score, np.float32)
        for name, score in camera.class_min_score.items():
            if name in index:
                min_scores[index[name]] = score
        frame_area = float(frame_w * frame_h)
        privacy = PrivacyMask(camera, frame_w, frame_h) if camera.privacy_masks else None
        return cls(
            keep, min_scores, camera.min_box_area * frame_area, camera.max_box_area * frame_area, privacy
        )

    @property
    def min_score(self) -> float:
        """The lowest threshold of any kept class: the detector need not report anything below it."""
        kept = self.min_scores[self.keep]
        return float(kept.min()) if kept.size else 1.0

    def apply(self, dets: Detections, floor: float | None = None) -> Detections:
        """The detections this camera keeps, in their original order.

        With `floor`, boxes of kept classes and sizes down to that score are kept too (the tracker's
        second association stage uses them); `thresholds` then tells which ones are confident.
        """
        n_classes = self.keep.shape[0]
        known = (dets.class_ids >= 0) & (dets.class_ids < n_classes)
        ids = np.where(known, dets.class_ids, 0)
        areas = dets.areas
        min_scores = self.min_scores[ids] if floor is None else np.minimum(self.min_scores[ids], floor)
        mask = (
            known
            & self.keep[ids]
            & (dets.scores >= min_scores)
            & (areas >= self.min_area_px)
            & (areas <= self.max_area_px)
        )
        if self.privacy is not None and len(dets):
            # an object standing in a masked area (its ground point, the bottom centre) is not seen at all
            xyxy = dets.xyxy
            ground = np.stack([(xyxy[:, 0] + xyxy[:, 2]) * 0.5, xyxy[:, 3]], axis=1)
            mask &= ~self.privacy.covers(ground)
        return dets[mask]

    def thresholds(self, dets: Detections) -> FloatArray:
        """Each detection's class threshold (for detections that passed `apply`)."""
        ids = np.clip(dets.class_ids, 0, self.keep.shape[0] - 1)
        out: FloatArray = self.min_scores[ids]
        return out


def filter_detections(
    dets: Detections, names: tuple[str, ...], camera: CameraConfig, frame_w: int, frame_h: int
) -> Detections:
    """One-off filtering; in the frame loop build a `ClassFilter` once and call `apply`."""
    return ClassFilter.from_camera(camera, names, frame_w, frame_h).apply(dets)
