"""Ground speeds of tracks from the camera calibration, and the speeding rule.

The speed of a track is a Theil-Sen estimate over the last `window_s` seconds of its anchor's ground
positions: the median, over every pair of samples at least `min_span_s / 2` apart, of the displacement
divided by the time between them, separately for each ground axis. A median of pairwise slopes ignores
a few bad boxes (a detector jump, a half-occluded frame) that would skew a two-point or least-squares
estimate, and pairs far apart in time keep per-frame jitter small. Speeds are "estimated speeds": they
are only as good as the calibration (see docs/rules.md for how to check it).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.geometry import GroundPlane, ZoneMask
from edge.records import Event, Tracks
from edge.rules.base import F64, RuleContext, TrackTable, box_of, select
from edge.rules.settings import SpeedingRule

MPS_TO_KMH = 3.6
ROUGH_GATE = 0.5  # fraction of the speeding threshold above which a track gets the robust estimate


def nanmedian_rows(values: F64) -> F64:
    """Median of each row ignoring NaNs, vectorised (np.nanmedian loops over rows in Python).

    Every row must hold at least one finite value.
    """
    s = np.sort(values, axis=1)  # NaNs sort last
    n = np.isfinite(values).sum(axis=1)
    lo = np.take_along_axis(s, ((n - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, (n // 2)[:, None], axis=1)[:, 0]
    return np.asarray((lo + hi) * 0.5, dtype=np.float64)


class SpeedEstimator:
    """Ring buffers of recent ground positions per track and a robust speed on request."""

    def __init__(
        self, ground: GroundPlane, window_s: float = 1.0, min_span_s: float = 0.5, slots: int = 16
    ) -> None:
        self.ground = ground
        self.window_s = window_s
        self.min_span_s = min_span_s
        self.slots = slots
        self.table = TrackTable(
            shapes={"hist_t": (slots,), "hist_xy": (slots, 2)},
            head=(np.int64, 0),
            hist_t=(np.float64, np.nan),
            hist_xy=(np.float64, np.nan),
        )

    def __len__(self) -> int:
        return len(self.table)

    def observe(self, track_ids: npt.ArrayLike, anchors_px: npt.ArrayLike, t: float) -> None:
        """Record this frame's anchor positions (pixels) of the given tracks."""
        ids = np.asarray(track_ids, dtype=np.int64)
        if ids.shape[0] == 0:
            return
        rows = self.table.rows(ids, t)
        g = self.ground.to_ground(anchors_px)
        head = self.table["head"][rows]
        self.table["hist_t"][rows, head] = t
        self.table["hist_xy"][rows, head] = g
        self.table["head"][rows] = (head + 1) % self.slots

    def speeds_kmh(self, track_ids: npt.ArrayLike, t: float) -> F64:
        """Estimated ground speed (km/h) of each track; NaN while its history spans under `min_span_s`."""
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        out = np.full(ids.shape[0], np.nan)
        rows = self.table.find(ids)
        have = rows >= 0
        if not have.any():
            return out
        ts = self.table["hist_t"][rows[have]]  # (m, K)
        xy = self.table["hist_xy"][rows[have]]  # (m, K, 2)
        valid = (ts >= t - self.window_s - 1e-9) & (ts <= t + 1e-9) & np.isfinite(xy).all(axis=2)
        span = np.max(np.where(valid, ts, -np.inf), axis=1) - np.min(np.where(valid, ts, np.inf), axis=1)
        ts = np.where(valid, ts, np.nan)
        dt = ts[:, None, :] - ts[:, :, None]  # (m, K, K): later minus earlier where positive
        pair = np.isfinite(dt) & (dt >= self.min_span_s * 0.5)
        ok = pair.any(axis=(1, 2)) & (span >= self.min_span_s - 1e-9)
        if not ok.any():
            return out
        dt, pair, xy = dt[ok], pair[ok], xy[ok]
        with np.errstate(invalid="ignore", divide="ignore"):
            vx = np.where(pair, (xy[:, None, :, 0] - xy[:, :, None, 0]) / dt, np.nan)
            vy = np.where(pair, (xy[:, None, :, 1] - xy[:, :, None, 1]) / dt, np.nan)
        m = vx.shape[0]
        speed = np.hypot(nanmedian_rows(vx.reshape(m, -1)), nanmedian_rows(vy.reshape(m, -1)))
        idx = np.nonzero(have)[0][ok]
        out[idx] = speed * MPS_TO_KMH
        return out

    def drop(self, track_ids: npt.ArrayLike) -> None:
        self.table.drop(track_ids)

    def prune(self, t: float) -> None:
        self.table.prune(t)


class Speeding:
    """Fires once per track whose estimated speed inside the zone stays above the limit for a few frames."""

    def __init__(self, cfg: SpeedingRule, ctx: RuleContext) -> None:
        if ctx.ground is None:
            raise ValueError(f"rule {cfg.name}: speeding needs the camera's calibration")
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        zone_limit = ctx.camera.zones[cfg.zone].speed_limit_kmh
        limit = cfg.limit_kmh if cfg.limit_kmh is not None else zone_limit
        if limit is None:
            raise ValueError(f"rule {cfg.name}: no speed limit (set limit_kmh or the zone's speed_limit_kmh)")
        self.limit_kmh = float(limit)
        self.zone: ZoneMask = ctx.zone_mask(cfg.zone)
        self.lookup = ctx.class_lookup(cfg.classes)
        self.estimator = SpeedEstimator(ctx.ground, cfg.window_s, cfg.min_span_s)
        self.table = TrackTable(over_n=(np.int64, 0), fired=(np.bool_, False))

    def state_size(self) -> int:
        return len(self.table) + len(self.estimator)

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        if tracks.ended.shape[0]:
            self.table.drop(tracks.ended)
            self.estimator.drop(tracks.ended)
        self.table.prune(t)
        self.estimator.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any():
            return []
        rows_idx = np.nonzero(sel)[0]
        anchors = tracks.anchors(self.cfg.anchor)[rows_idx]
        ids = tracks.track_ids[rows_idx]
        self.estimator.observe(ids, anchors, t)
        inside = self.zone.contains(anchors)
        rows = self.table.rows(ids, t)
        fired = self.table["fired"][rows]
        check = inside & ~fired
        if check.any():
            # The robust estimate costs a sort per track: only vehicles whose tracker velocity, carried onto
            # the ground, is at least half the threshold get one (stationary and slow traffic skip it).
            rough = self.estimator.ground.speeds_mps(anchors, tracks.velocities[rows_idx]) * MPS_TO_KMH
            check &= rough >= ROUGH_GATE * (self.limit_kmh + self.cfg.tolerance_kmh)
        speeds = np.full(ids.shape[0], np.nan)
        if check.any():
            speeds[check] = self.estimator.speeds_kmh(ids[check], t)
        over = check & (speeds > self.limit_kmh + self.cfg.tolerance_kmh)
        over_n = np.where(over, self.table["over_n"][rows] + 1, 0)
        self.table["over_n"][rows] = over_n
        fire = over & (over_n >= self.cfg.min_observations)
        events: list[Event] = []
        for k in np.nonzero(fire)[0]:
            r = int(rows_idx[k])
            self.table["fired"][rows[k]] = True
            events.append(
                self.ctx.events.make(
                    self.kind,
                    self.name,
                    ts,
                    "instant",
                    classes=(self.ctx.class_name(int(tracks.class_ids[r])),),
                    track_ids=(int(ids[k]),),
                    confidence=float(tracks.scores[r]),
                    box=box_of(tracks, r),
                    measurements={
                        "speed_kmh": round(float(speeds[k]), 1),
                        "limit_kmh": self.limit_kmh,
                        "zone": self.cfg.zone,
                        "window_s": self.cfg.window_s,
                    },
                    frame_seq=frame_seq,
                )
            )
        return events
