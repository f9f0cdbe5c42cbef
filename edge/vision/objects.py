"""One object, one detection: rider fusion and cross-class suppression, between detector and tracker.

The detector's NMS is class-aware, so one pickup may come out as a `car` box and a `truck` box; the
tracker would follow both and the line would count the vehicle twice. And a motorcyclist comes out as a
`person` box on a (often weaker) `motorcycle` box; with `person` among the classes the rider would be
counted as a pedestrian, without it a faint motorcycle is lost. `ObjectMerger` fixes both per frame:

0. Optionally (`narrow_car_aspect`), a `car` box taller than wide beyond that ratio becomes a
   motorcycle: small detectors call a motorcycle seen head-on `car`, and no car is that narrow.
1. Rider fusion: a person whose box sits on a two-wheeler's box (its centre over the two-wheeler
   horizontally, above the two-wheeler's centre, its lower part covering at least `rider_min_overlap` of
   the two-wheeler's height, its bottom not far below) is merged into that two-wheeler: one box (the
   union), the two-wheeler's class, the better of the two scores. A person with no two-wheeler under
   it stays a person. Persons are never turned into motorcycles from their motion alone.
2. Group suppression: within a class group (car/truck/bus, motorcycle/bicycle) boxes overlapping above
   `group_iou` are one object and only the best-scored box stays. The tracker's class vote over frames
   then decides the class (a van seen five times as car and once as truck stays a car).

Both work on all boxes at once with numpy; the class lookups are built once per camera and model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.geometry import iou_matrix
from edge.records import Detections, IntArray
from edge.vision.settings import TWO_WHEELERS, ObjectsConfig

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ObjectMerger:
    """Lookup arrays for one camera and one model's class names (see the module docstring)."""

    group_keys: IntArray  # per class id: its group's key (classes outside every group: a key of their own)
    group_iou: float
    person: int  # class id of `person`, -1 when rider fusion is off
    two_wheeler: BoolArray  # per class id
    rider_min_overlap: float
    car: int = -1  # class id of `car` when narrow car boxes become motorcycles, else -1
    motorcycle: int = -1
    narrow_aspect: float = 0.0

    @property
    def needs(self) -> BoolArray:
        """Classes this merger looks at besides the camera's own: persons and two-wheelers for riders."""
        out = np.zeros(self.two_wheeler.shape[0], np.bool_)
        if self.person >= 0:
            out[self.person] = True
            out |= self.two_wheeler
        return out

    @classmethod
    def build(cls, settings: ObjectsConfig, names: tuple[str, ...]) -> ObjectMerger:
        index = {name: i for i, name in enumerate(names)}
        n = len(names)
        keys = np.arange(n, dtype=np.int64) + n  # one key per class by default, above the group keys
        for g, group in enumerate(settings.groups):
            for name in group:
                if name in index:
                    keys[index[name]] = g
        two = np.zeros(n, np.bool_)
        two[[index[c] for c in TWO_WHEELERS if c in index]] = True
        person = index.get("person", -1) if settings.riders and two.any() else -1
        narrow = settings.narrow_car_aspect > 0 and "car" in index and "motorcycle" in index
        return cls(
            keys,
            settings.group_iou,
            person,
            two,
            settings.rider_min_overlap,
            index["car"] if narrow else -1,
            index.get("motorcycle", -1),
            settings.narrow_car_aspect,
        )

    def apply(self, dets: Detections) -> Detections:
        """Riders merged into their two-wheelers, then one box per object within each class group."""
        if len(dets) == 0:
            return dets
        dets = self.fuse_riders(self.narrow_cars(dets))
        known = (dets.class_ids >= 0) & (dets.class_ids < self.group_keys.shape[0])
        keys = np.where(known, self.group_keys[np.clip(dets.class_ids, 0, self.group_keys.shape[0] - 1)], -1)
        keys = np.where(known, keys, 10_000 + dets.class_ids)  # unknown ids: never merged with anything
        return dets[~suppressed_in_groups(dets, keys, self.group_iou)]

    def narrow_cars(self, dets: Detections) -> Detections:
        """`car` boxes narrower than `narrow_aspect` (width / height) become motorcycles."""
        if self.car < 0:
            return dets
        wh = dets.xyxy[:, 2:] - dets.xyxy[:, :2]
        narrow = (dets.class_ids == self.car) & (wh[:, 0] < self.narrow_aspect * wh[:, 1])
        if not narrow.any():
            return dets
        return Detections(dets.xyxy, dets.scores, np.where(narrow, self.motorcycle, dets.class_ids))

    def fuse_riders(self, dets: Detections) -> Detections:
        if self.person < 0:
            return dets
        ids = dets.class_ids
        known = (ids >= 0) & (ids < self.two_wheeler.shape[0])
        riders = np.flatnonzero(ids == self.person)
        bikes = np.flatnonzero(known & self.two_wheeler[np.clip(ids, 0, self.two_wheeler.shape[0] - 1)])
        if riders.size == 0 or bikes.size == 0:
            return dets
        pairs = rider_pairs(dets.xyxy[riders], dets.xyxy[bikes], self.rider_min_overlap)
        if not pairs.any():
            return dets
        # Each rider joins the one two-wheeler it covers best (two on one bike both join it).
        cover = _vertical_cover(dets.xyxy[riders], dets.xyxy[bikes])
        best = np.argmax(np.where(pairs, cover, -1.0), axis=1)
        joined = pairs.any(axis=1)
        r_sel, b_sel = riders[joined], bikes[best[joined]]
        xyxy = dets.xyxy.copy()
        scores = dets.scores.copy()
        np.minimum.at(xyxy[:, 0], b_sel, xyxy[r_sel, 0])
        np.minimum.at(xyxy[:, 1], b_sel, xyxy[r_sel, 1])
        np.maximum.at(xyxy[:, 2], b_sel, xyxy[r_sel, 2])
        np.maximum.at(xyxy[:, 3], b_sel, xyxy[r_sel, 3])
        np.maximum.at(scores, b_sel, scores[r_sel])
        keep = np.ones(len(dets), np.bool_)
        keep[r_sel] = False
        return Detections(xyxy[keep], scores[keep], ids[keep])


def suppressed_in_groups(dets: Detections, keys: IntArray, iou: float) -> BoolArray:
    """Boxes overlapping (IoU above `iou`) a better-scored kept box of the same group: greedy NMS.

    The overlaps are one matrix; only boxes that overlap a better one are visited, best first, and lose
    when one of those better boxes is itself kept (as in NMS: a box suppressed by a suppressed box stays).
    """
    n = len(dets)
    overlap = iou_matrix(dets.xyxy, dets.xyxy) > iou
    same = keys[:, None] == keys[None, :]
    order = np.argsort(-dets.scores, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    beaten = overlap & same & (rank[None, :] < rank[:, None])  # [i, j]: box j ranks above box i and covers it
    out: BoolArray = np.zeros(n, np.bool_)
    # Greedy NMS order, but the loop visits only the few boxes that overlap a better one.
    for i in sorted(np.flatnonzero(beaten.any(axis=1)).tolist(), key=lambda k: int(rank[k])):
        out[i] = bool((beaten[i] & ~out).any())
    return out


def _vertical_cover(
    persons: npt.NDArray[np.float32], bikes: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """Share of each bike's height (columns) that each person's box (rows) covers."""
    top = np.maximum(persons[:, None, 1], bikes[None, :, 1])
    bottom = np.minimum(persons[:, None, 3], bikes[None, :, 3])
    height = np.maximum(bikes[None, :, 3] - bikes[None, :, 1], 1e-6)
    return np.asarray(np.clip(bottom - top, 0.0, None) / height, np.float64)


def rider_pairs(
    persons: npt.NDArray[np.float32], bikes: npt.NDArray[np.float32], min_overlap: float
) -> BoolArray:
    """(persons, bikes) matrix: True where the person rides on the bike.

    Geometry of a rider seen from a road camera: the person's centre lies over the bike horizontally,
    the person's centre is above the bike's centre, the person's lower body covers part of the bike's
    height, and the person's feet are not far below the bike's bottom.
    """
    pcx = (persons[:, 0] + persons[:, 2]) * 0.5
    pcy = (persons[:, 1] + persons[:, 3]) * 0.5
    bh = bikes[:, 3] - bikes[:, 1]
    over = (pcx[:, None] >= bikes[None, :, 0]) & (pcx[:, None] <= bikes[None, :, 2])
    above = pcy[:, None] < (bikes[None, :, 1] + bikes[None, :, 3]) * 0.5
    feet = persons[:, None, 3] <= bikes[None, :, 3] + 0.25 * bh[None, :]
    cover = _vertical_cover(persons, bikes) >= min_overlap
    out: BoolArray = over & above & feet & cover
    return out
