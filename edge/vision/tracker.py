"""ByteTrack-style multi-object tracker: stable ids per camera from per-frame detections.

Why our own and not a library: the well-known implementations either pull dependencies that do not belong
on a Raspberry Pi edge node (ByteTrack's reference code imports `torch`, `lap`, `cython_bbox` and `scipy`;
SORT and motpy need `filterpy` and `scipy`) or keep an id counter at class level (ByteTrack's
`BaseTrack._count`, older supervision releases, norfair's global ids), so the cameras of a node share one
id sequence and one test run changes the ids of the next. This module is a compact re-implementation
with numpy only:

- Two-stage association as in ByteTrack (Zhang et al., 2022): high-score detections are matched to all
  confirmed tracks (also those lost for a moment), then the low-score detections to the tracks still
  unmatched, so a partly occluded object whose score drops keeps its track; finally tentative tracks
  take what is left of the high-score detections. Unmatched high-score detections start tentative tracks.
- Matching is greedy by IoU, highest first, on a vectorised IoU matrix against the Kalman-predicted boxes;
  with a handful of objects per camera this equals the optimal assignment almost always and needs no
  `scipy`.
- One constant-velocity Kalman filter (`edge.vision.kalman`) holds the states of all tracks in arrays; `dt`
  comes from frame times, so the detector may run at any, varying, rate.
- A track gets its public id only when confirmed (`min_hits` matches in a row), from a counter owned by the
  `Tracker` instance: ids are unique per camera, start at 1, are never reused, and tentative tracks (false
  positives of one or two frames) never show up downstream.
- The class of a track is the majority of its detections weighted by score (a van seen five times as car
  and once as truck stays a car); the vote is bounded so a long-lived track can still change its mind.
- A confirmed track that finds no detection for longer than `max_age_s` ends; its id is reported once in
  `Tracks.ended` so rules can forget it. Ages are frame time, not update counts: when the motion gate
  skips the detector for a while, a track that is not found at the next run after more than `max_age_s`
  ends at that run. A clock that goes back (a looping file) ends every track.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.geometry import iou_matrix
from edge.rate import RunPeriod, observations_for
from edge.records import Detections, Tracks
from edge.vision.assign import match_greedy, match_near, match_optimal
from edge.vision.kalman import BoxKalman, cxcywh_to_xyxy
from edge.vision.settings import TrackerConfig

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """Thresholds of the tracker; scores are detector confidences, times are seconds of frame time.

    `high_score`: detections at or above it take part in the first association stage; those between
    `low_score` and `high_score` only keep existing tracks alive (second stage). `new_track_score`: an
    unmatched detection starts a tentative track only at or above it (a bit above `high_score`, so
    borderline boxes do not spawn tracks). `match_iou` / `low_match_iou` / `tentative_match_iou`: minimum
    IoU between a predicted track box and a detection in the three stages. `min_hits`: matches in a row
    that confirm a track; with `confirm_s` > 0 only as many as span that time at the measured detector
    period (at least 1): 3 runs take 0.1 s at 30/s, 0.6 s at 5/s. `max_age_s`: how long a confirmed track survives without a detection.
    `vote_cap`: bound on the score sum of the class vote (older votes are scaled down beyond it).
    `assignment`: greedy by IoU, or optimal (`edge.vision.assign`). `match_distance`: gate of the last stage
    (`match_near`), box sizes per second (0: off). The camera's `tracker:` section
    (`edge.vision.settings.TrackerConfig`) sets them through `from_config`.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.4
    tentative_match_iou: float = 0.3
    min_hits: int = 3
    confirm_s: float = 0.0
    max_age_s: float = 1.5
    vote_cap: float = 50.0
    assignment: Literal["greedy", "optimal"] = "greedy"
    match_distance: float = 0.0
    kalman: BoxKalman = field(default_factory=BoxKalman)

    @classmethod
    def from_config(cls, cfg: TrackerConfig) -> TrackerSettings:
        """The camera's `tracker:` section; with class thresholds the first stage starts at
        max(class threshold, high_score) and new tracks at that plus `new_track_margin`."""
        high = max(cfg.high_score, cfg.low_score)
        return cls(
            high_score=high,
            low_score=cfg.low_score,
            new_track_score=min(1.0, high + cfg.new_track_margin),
            match_iou=cfg.match_iou,
            low_match_iou=cfg.low_match_iou,
            tentative_match_iou=cfg.tentative_match_iou,
            min_hits=cfg.min_hits,
            confirm_s=cfg.confirm_s,
            max_age_s=cfg.max_age_s,
            assignment=cfg.assignment,
            match_distance=cfg.match_distance,
        )

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= self.new_track_score <= 1.0:
            raise ValueError("need 0 <= low_score <= high_score <= new_track_score <= 1")
        if self.min_hits < 1 or self.max_age_s < 0.0 or self.vote_cap <= 0.0:
            raise ValueError("need min_hits >= 1, max_age_s >= 0 and vote_cap > 0")


@dataclass(slots=True)
class _Table:
    """All tracks of one tracker as parallel arrays (one row per track), so steps are vectorised.

    `ids` is 0 for a tentative track. `active` means matched at the last update (ByteTrack's "tracked"
    state); a confirmed track that is not active is "lost" and waits up to `max_age_s`.
    """

    means: F64
    covs: F64
    ids: I64
    hits: I64
    last_seen: F64
    active: BoolArray
    boxes: F64
    scores: F64
    votes: F64

    @classmethod
    def empty(cls, n_classes: int = 1) -> _Table:
        return cls(
            np.zeros((0, 8)),
            np.zeros((0, 4, 2, 2)),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0, bool),
            np.zeros((0, 4)),
            np.zeros(0),
            np.zeros((0, n_classes)),
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, index: I64 | BoolArray) -> _Table:
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def extend(self, other: _Table) -> _Table:
        n_classes = max(self.votes.shape[1], other.votes.shape[1])
        parts = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "votes":
                a, b = _pad_columns(a, n_classes), _pad_columns(b, n_classes)
            parts[f.name] = np.concatenate([a, b], axis=0)
        return _Table(**parts)


def _pad_columns(votes: F64, n_classes: int) -> F64:
    if votes.shape[1] >= n_classes:
        return votes
    return np.concatenate([votes, np.zeros((votes.shape[0], n_classes - votes.shape[1]))], axis=1)


class Tracker:
    """Tracks the detections of ONE camera; create one instance per camera (ids are per instance).

    `update` must be called with non-decreasing frame times `t` (seconds); it is not thread-safe, which
    fits the pipeline where one inference thread owns the analysis of a camera.
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._table = _Table.empty()
        self._next_id = 1
        self._last_t: float | None = None
        self._period = RunPeriod()  # time between detector runs (`required_hits`)

    @property
    def active_count(self) -> int:
        """Confirmed tracks held now, including those lost for less than `max_age_s`."""
        return int(np.count_nonzero(self._table.ids > 0))

    def reset(self) -> Tracks:
        """Forget every track (e.g. after the camera moved); returns the ids that ended.

        The id counter is kept, so ids stay unique for the life of the tracker.
        """
        ended = self._table.ids[self._table.ids > 0].copy()
        self._table = _Table.empty()
        self._last_t = None
        self._period.reset()
        return Tracks.empty(ended)

    def update(self, dets: Detections, t: float, thresholds: npt.NDArray[np.float32] | None = None) -> Tracks:
        """Associate the detections of the frame at time `t` and return the confirmed tracks seen in it.

        `thresholds` (one per detection) replaces `high_score` by the camera's per-class score
        thresholds, so weaker boxes of the same classes still serve the second association stage.
        """
        cfg = self.settings
        kf = cfg.kalman
        dt = 0.0 if self._last_t is None else t - self._last_t
        restarted = np.zeros(0, np.int64)
        if dt < 0.0:
            # A looping file or a restarted source: ages measured against the old clock would never
            # expire, so every track ends here and tracking starts afresh (ids keep counting up).
            log.warning("tracker: frame time went back by %.3f s; ending all tracks", -dt)
            restarted = self.reset().ended
            dt = 0.0
        # A prediction further than the lost-track buffer only spreads boxes over the picture.
        dt = min(dt, max(cfg.max_age_s, 1e-3))
        self._last_t = t
        self._period.observe(t)

        tab = self._table
        # Lost tracks keep moving with their centre velocity but stop growing or shrinking (ByteTrack).
        tab.means[~tab.active, 6:] = 0.0
        tab.means, tab.covs = kf.predict(tab.means, tab.covs, dt)
        predicted = cxcywh_to_xyxy(tab.means[:, :4])

        det_boxes = dets.xyxy.astype(np.float64)
        scores = dets.scores.astype(np.float64)
        if thresholds is None:
            high = scores >= cfg.high_score
            seed = scores >= cfg.new_track_score
        else:  # a class threshold above high_score raises the bar; ByteTrack's margin for new tracks is kept
            strong = np.maximum(thresholds.astype(np.float64), cfg.high_score)
            high = scores >= strong
            seed = scores >= strong + (cfg.new_track_score - cfg.high_score)
        low = (scores >= cfg.low_score) & ~high
        n_tracks, n_dets = len(tab), len(dets)
        track_taken = np.zeros(n_tracks, bool)
        det_taken = np.zeros(n_dets, bool)
        pairs_t: list[I64] = []
        pairs_d: list[I64] = []
        match = match_optimal if cfg.assignment == "optimal" else match_greedy

        def associate(track_mask: BoolArray, det_mask: BoolArray, min_iou: float, near: bool = False) -> None:
            ti = np.flatnonzero(track_mask & ~track_taken)
            di = np.flatnonzero(det_mask & ~det_taken)
            if ti.size == 0 or di.size == 0:
                return
            if near:  # the gate grows with the time since the previous detector run
                gate = np.full(ti.size, cfg.match_distance * dt)
                rows, cols = match_near(predicted[ti], det_boxes[di], gate)
            else:
                rows, cols = match(iou_matrix(predicted[ti], det_boxes[di]), min_iou)
            track_taken[ti[rows]] = True
            det_taken[di[cols]] = True
            pairs_t.append(ti[rows])
            pairs_d.append(di[cols])

        confirmed = tab.ids > 0
        associate(confirmed, high, cfg.match_iou)
        associate(confirmed & tab.active, low, cfg.low_match_iou)
        associate(~confirmed, high, cfg.tentative_match_iou)
        if cfg.match_distance > 0.0:  # only tracks seen at the previous run: a lost one has no gate
            associate(tab.active, high, 0.0, near=True)

        mt = np.concatenate(pairs_t) if pairs_t else np.zeros(0, np.int64)
        md = np.concatenate(pairs_d) if pairs_d else np.zeros(0, np.int64)
        self._apply_matches(tab, mt, md, dets, t)

        # Tentative tracks must be matched in every frame; confirmed ones may wait max_age_s.
        expired = confirmed & ~track_taken & (t - tab.last_seen > cfg.max_age_s)
        ended = np.concatenate([restarted, tab.ids[expired]])
        keep = ~expired & (confirmed | track_taken)
        tab.active = track_taken
        tab = tab.take(keep)

        new = ~det_taken & seed
        if new.any():
            tab = tab.extend(self._start(dets[new], t))
        self._table = tab
        if ended.size:
            log.debug("tracker: tracks %s ended", ended.tolist())
        return self._report(ended)

    def required_hits(self) -> int:
        """Matches in a row that confirm a track now: `min_hits`, or with `confirm_s` as many as span that
        time at the measured detector period (`edge.rate.observations_for`)."""
        return observations_for(self.settings.confirm_s, self._period.value, self.settings.min_hits)

    def _apply_matches(self, tab: _Table, mt: I64, md: I64, dets: Detections, t: float) -> None:
        """Kalman-correct the matched tracks, count hits, vote classes and confirm tentative tracks."""
        if mt.size == 0:
            return
        cfg = self.settings
        boxes = dets.xyxy[md].astype(np.float64)
        tab.means[mt], tab.covs[mt] = cfg.kalman.update(tab.means[mt], tab.covs[mt], boxes)
        tab.hits[mt] += 1
        tab.last_seen[mt] = t
        tab.boxes[mt] = boxes
        tab.scores[mt] = dets.scores[md]
        classes = dets.class_ids[md]
        if classes.size and int(classes.max()) >= tab.votes.shape[1]:
            tab.votes = _pad_columns(tab.votes, int(classes.max()) + 1)
        np.add.at(tab.votes, (mt, classes), dets.scores[md].astype(np.float64))
        totals = tab.votes.sum(axis=1)
        over = totals > cfg.vote_cap
        if over.any():
            tab.votes[over] *= (cfg.vote_cap / totals[over])[:, None]
        promote = mt[(tab.ids[mt] == 0) & (tab.hits[mt] >= self.required_hits())]
        if promote.size:
            promote = np.sort(promote)
            tab.ids[promote] = np.arange(self._next_id, self._next_id + promote.size)
            self._next_id += int(promote.size)

    def _start(self, dets: Detections, t: float) -> _Table:
        """New tentative tracks (confirmed at once when `min_hits` is 1) for unmatched detections."""
        cfg = self.settings
        n = len(dets)
        means, covs = cfg.kalman.initiate(dets.xyxy)
        n_classes = max(int(dets.class_ids.max()) + 1, self._table.votes.shape[1])
        votes = np.zeros((n, n_classes))
        votes[np.arange(n), dets.class_ids] = dets.scores
        ids = np.zeros(n, np.int64)
        if self.required_hits() <= 1:
            ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
            self._next_id += n
        return _Table(
            means,
            covs,
            ids,
            np.ones(n, np.int64),
            np.full(n, t),
            np.ones(n, bool),
            dets.xyxy.astype(np.float64),
            dets.scores.astype(np.float64),
            votes,
        )

    def _report(self, ended: I64) -> Tracks:
        """Confirmed tracks matched in this frame, by id, with the detection box of this frame."""
        tab = self._table
        rows = np.flatnonzero((tab.ids > 0) & tab.active)
        rows = rows[np.argsort(tab.ids[rows])]
        return Tracks(
            track_ids=tab.ids[rows],
            xyxy=tab.boxes[rows].astype(np.float32),
            scores=tab.scores[rows].astype(np.float32),
            class_ids=np.argmax(tab.votes[rows], axis=1).astype(np.int64),
            velocities=tab.means[rows, 4:6].astype(np.float32),
            ended=np.sort(ended),
        )
