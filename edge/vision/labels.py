"""Which classes compete for a box's label, and which model classes a camera reads as another class.

A COCO model asked about a box answers with 80 class scores; the decode keeps the best one. A camera
that counts vehicles does not care whether the box is more "cell phone" than "car": with
`objects.class_scope: camera` only the camera's own classes (its `classes`, the rider classes the object
merger needs, alias sources) compete, so the box is read as it would be by a detector trained on those
classes alone (a car at its car score, still under the per-class thresholds). `objects.aliases` goes
further for views the model was never trained on (Frigate's per-model `labelmap` is the precedent): a top
-down camera whose cars every COCO model calls "cell phone" can say `{cell phone: car}`.

`ClassLabels` holds both as arrays indexed by model class id, built once per camera and model, so the
frame path is one fancy-index per frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.records import Detections, IntArray
from edge.vision.decode import class_rows
from edge.vision.settings import ObjectsConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClassLabels:
    """Per model class id: the class it is read as (`alias`); the class ids the decode lets compete."""

    alias: IntArray
    compete: IntArray | None  # None: every class of the model competes (the model's own argmax)
    aliased: bool = False  # whether any class is read as another one (decided once, not per frame)

    @classmethod
    def build(
        cls, settings: ObjectsConfig, names: tuple[str, ...], wanted: npt.NDArray[np.bool_]
    ) -> ClassLabels:
        """`wanted`: per class id, whether the camera uses the class (its filter's keep-mask and merger needs)."""
        index = {name: i for i, name in enumerate(names)}
        alias = np.arange(len(names), dtype=np.int64)
        for source, target in settings.aliases.items():
            if source in index and target in index:
                alias[index[source]] = index[target]
            else:
                log.warning("alias %r -> %r: a class unknown to the model; ignored", source, target)
        compete = None
        if settings.class_scope == "camera":
            compete = class_rows(wanted[alias])  # an alias source competes when its target is wanted
        return cls(alias, compete, bool((alias != np.arange(alias.shape[0])).any()))

    def apply(self, dets: Detections) -> Detections:
        """The detections with aliased class ids replaced; ids beyond the model's names are left alone.
        Without aliases (every camera but an unusual view) the detections pass through untouched."""
        if not self.aliased:
            return dets
        ids = dets.class_ids
        known = (ids >= 0) & (ids < self.alias.shape[0])
        mapped = np.where(known, self.alias[np.clip(ids, 0, self.alias.shape[0] - 1)], ids)
        return Detections(dets.xyxy, dets.scores, mapped.astype(np.int64))
