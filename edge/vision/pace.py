"""Lone riders told by their pace: a `person` track that moves like a two-wheeler is reported as one.

Rider fusion (`edge.vision.objects`) merges a person into the motorcycle or bicycle box under it, but
small detectors at a distance often see only the rider: no two-wheeler box at all, so the line would
count a cyclist as a pedestrian. What still tells them apart is speed, and the one speed a single camera
can measure without calibration is the track's pace in its own box heights per second: a box's height is
the person's height at the same depth, so the ratio is roughly free of perspective. People walk at about
0.5-1 heights/s, run at about 2; a cyclist rides at 3 and more, a motorcyclist at 6 and more (motion
towards or away from the camera reads slower, never faster, so pedestrians do not gain from it).

The pace of a track is the net displacement of its box centre over the last `window_s` seconds divided
by that time and by the median box height in the window. It counts only when no single step makes up
more than `max_step_share` of the path walked in the window: an id swap to a neighbour or a box that
jumps once is one big step, a rider is many even ones; box jitter goes back and forth and adds nothing
to the net displacement. Once a track has been fast it stays a two-wheeler for its life (a cyclist
waiting at a red light is still a cyclist), of the class of the fastest pace it showed: `motorcycle`
from `motorcycle_heights_per_s`, else `bicycle`.

The stage runs after the tracker and before the rules; its per-track state is a few numpy rows per
track (sorted by id), sampled at most 16 times a window, and forgotten when the tracker ends the track.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from edge.records import Tracks
from edge.vision.settings import RiderPaceConfig

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

SAMPLES_PER_WINDOW = 16  # samples are taken at least window_s / 16 apart
CAPACITY = 24  # ring of samples per track: a window plus margin
MIN_SAMPLES = 4
MIN_SPAN = 0.75  # share of window_s the samples must span before a pace is measured
IDLE_S = 10.0  # a row unseen this long is dropped even if the tracker never reported its end


class RiderPace:
    """Per-camera pace state; `apply` returns the tracks with lone riders reclassified."""

    def __init__(self, cfg: RiderPaceConfig, names: tuple[str, ...]) -> None:
        self.cfg = cfg
        index = {n: i for i, n in enumerate(names)}
        bicycle, motorcycle = index.get("bicycle", -1), index.get("motorcycle", -1)
        self.person = index.get("person", -1) if cfg.enabled else -1
        self.bicycle = bicycle if bicycle >= 0 else motorcycle
        self.motorcycle = motorcycle if motorcycle >= 0 else bicycle
        if self.bicycle < 0:
            self.person = -1  # nothing to turn a rider into
        self.spacing = cfg.window_s / SAMPLES_PER_WINDOW
        self.ids: I64 = np.zeros(0, np.int64)
        self.samples: F64 = np.zeros((0, 4, CAPACITY))  # per row: t, cx, cy, h; NaN where empty
        self.next: I64 = np.zeros(0, np.int64)  # ring write position
        self.best: F64 = np.zeros(0)  # fastest valid pace seen (0: never fast)
        self.newest: F64 = np.zeros(0)  # time of the newest sample
        self._next_prune = -np.inf
        self.riders = 0  # person tracks reported as two-wheelers so far (for stats and the evaluation)
        self.last_t = -np.inf

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def apply(self, tracks: Tracks, t: float) -> Tracks:
        """Observe this frame's person tracks; rows that have been fast get their two-wheeler class."""
        if self.person < 0:
            return tracks
        if t < self.last_t:  # a looping file: the tracker ends every track, so do we
            self._keep(np.zeros(len(self), np.bool_))
        self.last_t = t
        if tracks.ended.shape[0]:
            self._keep(~np.isin(self.ids, tracks.ended))
        if t >= self._next_prune:  # rows whose end the tracker never reported (checked now and then)
            self._next_prune = t + IDLE_S / 10
            self._keep(self.newest >= t - IDLE_S)
        people = np.flatnonzero(tracks.class_ids == self.person)
        if people.size == 0:
            return tracks
        rows = self._rows(tracks.track_ids[people])
        sampled = self._sample(rows, tracks.xyxy[people].astype(np.float64), t)
        if sampled.size:  # the pace changes only with a new sample
            pace, steady = window_pace(self.samples[sampled], t, self.cfg.window_s, self.cfg.max_step_share)
            fast = steady & (pace >= self.cfg.min_heights_per_s)
            self.riders += int(np.count_nonzero(fast & (self.best[sampled] == 0.0)))
            self.best[sampled] = np.where(fast, np.maximum(self.best[sampled], pace), self.best[sampled])
        best = self.best[rows]
        riders = best > 0.0
        if not riders.any():
            return tracks
        cls = np.where(best >= self.cfg.motorcycle_heights_per_s, self.motorcycle, self.bicycle)
        class_ids = tracks.class_ids.copy()
        class_ids[people[riders]] = cls[riders]
        return replace(tracks, class_ids=class_ids)

    def _rows(self, ids: I64) -> I64:
        """Row of each id, adding empty rows for new ids (rows stay sorted by id)."""
        pos = np.minimum(np.searchsorted(self.ids, ids), max(len(self) - 1, 0))
        known = (self.ids[pos] == ids) if len(self) else np.zeros(ids.shape[0], np.bool_)
        if not known.all():
            new = np.unique(ids[~known])
            n = new.shape[0]
            all_ids = np.concatenate([self.ids, new])
            order = np.argsort(all_ids, kind="stable")
            self.ids = all_ids[order]
            self.samples = np.concatenate([self.samples, np.full((n, 4, CAPACITY), np.nan)])[order]
            self.next = np.concatenate([self.next, np.zeros(n, np.int64)])[order]
            self.best = np.concatenate([self.best, np.zeros(n)])[order]
            self.newest = np.concatenate([self.newest, np.full(n, -np.inf)])[order]
            pos = np.searchsorted(self.ids, ids)
        return pos.astype(np.int64)

    def _sample(self, rows: I64, xyxy: F64, t: float) -> I64:
        """Store (t, centre, height) for rows whose last sample is at least `spacing` old; those rows."""
        due = t - self.newest[rows] >= self.spacing * 0.999
        r, b = rows[due], xyxy[due]
        self.newest[r] = t
        pos = self.next[r]
        self.samples[r, 0, pos] = t
        self.samples[r, 1, pos] = (b[:, 0] + b[:, 2]) * 0.5
        self.samples[r, 2, pos] = (b[:, 1] + b[:, 3]) * 0.5
        self.samples[r, 3, pos] = b[:, 3] - b[:, 1]
        self.next[r] = (pos + 1) % CAPACITY
        return r

    def _keep(self, keep: npt.NDArray[np.bool_]) -> None:
        self.ids, self.samples = self.ids[keep], self.samples[keep]
        self.next, self.best, self.newest = self.next[keep], self.best[keep], self.newest[keep]


def window_pace(
    samples: F64, t: float, window_s: float, max_step_share: float
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Pace (heights/s) over the last `window_s` of each row of `samples` (rows, [t, cx, cy, h], k) and
    whether it is steady (enough samples spanning most of the window, no step above the share)."""
    ts = samples[:, 0]
    inside = np.isfinite(ts) & (ts >= t - window_s - 1e-9)
    order = np.argsort(np.where(inside, ts, np.inf), axis=1, kind="stable")
    s = np.take_along_axis(samples, order[:, None, :], axis=2)
    ok = np.take_along_axis(inside, order, axis=1)  # the window's samples first, oldest first
    n = ok.sum(axis=1)
    newest = np.take_along_axis(s, np.maximum(n - 1, 0)[:, None, None], axis=2)[:, :, 0]  # (rows, 4)
    span = newest[:, 0] - s[:, 0, 0]
    net = np.hypot(newest[:, 1] - s[:, 1, 0], newest[:, 2] - s[:, 2, 0])
    steps = np.hypot(np.diff(s[:, 1], axis=1), np.diff(s[:, 2], axis=1))
    steps = np.where(ok[:, 1:], steps, 0.0)
    path = steps.sum(axis=1)
    # Median height of the window's samples: sorted, the invalid ones (inf) last.
    heights = np.sort(np.where(ok, s[:, 3], np.inf), axis=1)
    mid = np.stack([np.maximum(n - 1, 0) // 2, np.maximum(n, 1) // 2], axis=1)
    height = np.take_along_axis(heights, mid, axis=1).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pace = np.where((span > 0) & (height > 0), net / np.maximum(span, 1e-9) / height, 0.0)
    steady = (
        (n >= MIN_SAMPLES)
        & (span >= MIN_SPAN * window_s)
        & (steps.max(axis=1, initial=0.0) <= max_step_share * np.maximum(path, 1e-9))
    )
    return np.nan_to_num(pace), steady
