"""Lane rules: a vehicle stopped in a lane zone, and a vehicle travelling the wrong way along it.

Both follow the box anchor (bottom centre by default: the point on the road). Distances use box heights
as the local scale of the picture, so one setting works near and far from the camera: a displacement
under `max_move` box heights is "still"; wrong-way distances are in ground metres through the camera's
calibration, or rough metres from the typical height of the object's class without one.
"""

from __future__ import annotations

import numpy as np

from edge.geometry import nominal_heights_m
from edge.records import Event, Tracks
from edge.rules.base import F64, TIME_EPS, RuleContext, TrackTable, box_of, select
from edge.rules.settings import StoppedVehicleRule, WrongWayRule


class StoppedVehicle:
    """Start when a vehicle in the lane zone has stayed within `max_move` box heights of where it stopped for
    `min_stopped_s`; end when it moves away again (which re-arms the rule) or its track ends."""

    def __init__(self, cfg: StoppedVehicleRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        self.zone = ctx.zone_mask(cfg.zone)
        self.lookup = ctx.class_lookup(cfg.classes)
        self.table = TrackTable(
            ref_x=(np.float64, np.nan),
            ref_y=(np.float64, np.nan),
            ref_t=(np.float64, np.nan),
            stopped=(np.bool_, False),
            cls=(np.int64, -1),
        )

    def state_size(self) -> int:
        return len(self.table)

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        tab = self.table
        events: list[Event] = []
        if tracks.ended.shape[0]:
            gone = tab.find(tracks.ended)
            gone = gone[gone >= 0]
            for row in gone[tab["stopped"][gone]]:
                events.append(
                    self._end(
                        int(tab.ids[row]),
                        int(row),
                        r=None,
                        t=t,
                        ts=ts,
                        frame_seq=frame_seq,
                        reason="track_ended",
                    )
                )
            tab.drop(tracks.ended)
        tab.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any():
            return events
        idx = np.nonzero(sel)[0]
        pts = tracks.anchors(self.cfg.anchor)[idx].astype(np.float64)
        heights = (tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]).astype(np.float64)
        inside = self.zone.contains(pts)
        rows = tab.rows(tracks.track_ids[idx], t)
        tab["cls"][rows] = tracks.class_ids[idx]
        ref = np.stack([tab["ref_x"][rows], tab["ref_y"][rows]], axis=1)
        fresh = np.isnan(ref[:, 0])
        moved = ~fresh & (np.hypot(*(pts - ref).T) > self.cfg.max_move * np.maximum(heights, 1.0))
        for k in np.nonzero(moved & tab["stopped"][rows])[0]:
            events.append(
                self._end(
                    int(tracks.track_ids[idx[k]]),
                    int(rows[k]),
                    r=int(idx[k]),
                    t=t,
                    ts=ts,
                    frame_seq=frame_seq,
                    reason="moved",
                    tracks=tracks,
                )
            )
        reset = fresh | moved
        tab["ref_x"][rows[reset]] = pts[reset, 0]
        tab["ref_y"][rows[reset]] = pts[reset, 1]
        tab["ref_t"][rows[reset]] = t
        tab["stopped"][rows[moved]] = False
        still_s = t - tab["ref_t"][rows]
        fire = inside & ~reset & ~tab["stopped"][rows] & (still_s >= self.cfg.min_stopped_s - TIME_EPS)
        for k in np.nonzero(fire)[0]:
            r = int(idx[k])
            tab["stopped"][rows[k]] = True
            events.append(
                self.ctx.events.make(
                    self.kind,
                    self.name,
                    ts,
                    "start",
                    classes=(self.ctx.class_name(int(tracks.class_ids[r])),),
                    track_ids=(int(tracks.track_ids[r]),),
                    confidence=float(tracks.scores[r]),
                    box=box_of(tracks, r),
                    measurements={"zone": self.cfg.zone, "stopped_s": round(float(still_s[k]), 1)},
                    frame_seq=frame_seq,
                )
            )
        return events

    def _end(
        self,
        track_id: int,
        row: int,
        *,
        r: int | None,
        t: float,
        ts: float,
        frame_seq: int,
        reason: str,
        tracks: Tracks | None = None,
    ) -> Event:
        tab = self.table
        return self.ctx.events.make(
            self.kind,
            self.name,
            ts,
            "end",
            classes=(self.ctx.class_name(int(tab["cls"][row])),),
            track_ids=(track_id,),
            box=box_of(tracks, r) if tracks is not None and r is not None else None,
            measurements={
                "zone": self.cfg.zone,
                "stopped_s": round(t - float(tab["ref_t"][row]), 1),
                "reason": reason,
            },
            frame_seq=frame_seq,
        )


class WrongWay:
    """Fires once per track that has travelled `min_distance_m` against the lane zone's `direction`.

    Progress along the allowed direction is summed while the anchor is in the zone; the distance travelled
    the wrong way is how far the track has come back from the furthest progress it reached. Jitter cancels
    in the sum, and a vehicle that turns around after driving the right way is caught too.
    """

    def __init__(self, cfg: WrongWayRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        zone = ctx.camera.zones[cfg.zone]
        if zone.direction is None:
            raise ValueError(f"rule {cfg.name}: zone {cfg.zone!r} has no direction")
        sx, sy = ctx.camera.scale(ctx.width, ctx.height)
        d = np.array([zone.direction[0] * sx, zone.direction[1] * sy], dtype=np.float64)
        self.direction_px: F64 = d / np.linalg.norm(d)
        self.zone = ctx.zone_mask(cfg.zone)
        self.lookup = ctx.class_lookup(cfg.classes)
        self.table = TrackTable(
            prev_x=(np.float64, np.nan),
            prev_y=(np.float64, np.nan),
            progress=(np.float64, 0.0),
            best=(np.float64, 0.0),
            fired=(np.bool_, False),
        )

    def state_size(self) -> int:
        return len(self.table)

    def _progress_m(self, prev: F64, pts: F64, heights: F64, class_ids: np.ndarray) -> F64:
        """Metres moved along the allowed direction from prev to pts (negative: against it)."""
        ground = self.ctx.ground
        if ground is None:
            px = (pts - prev) @ self.direction_px
            return np.asarray(px / np.maximum(heights, 1.0) * nominal_heights_m(class_ids, self.ctx.names))
        g0 = ground.to_ground(prev)
        g1 = ground.to_ground(pts)
        ahead = ground.to_ground(prev + self.direction_px * 5.0) - g0  # the allowed direction, on the ground
        unit = ahead / np.maximum(np.linalg.norm(ahead, axis=1, keepdims=True), 1e-9)
        return np.asarray(np.sum((g1 - g0) * unit, axis=1))

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        tab = self.table
        if tracks.ended.shape[0]:
            tab.drop(tracks.ended)
        tab.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any():
            return []
        idx = np.nonzero(sel)[0]
        pts = tracks.anchors(self.cfg.anchor)[idx].astype(np.float64)
        heights = (tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]).astype(np.float64)
        inside = self.zone.contains(pts)
        rows = tab.rows(tracks.track_ids[idx], t)
        prev = np.stack([tab["prev_x"][rows], tab["prev_y"][rows]], axis=1)
        step = inside & np.isfinite(prev[:, 0])
        progress = tab["progress"][rows].copy()
        if step.any():
            progress[step] += self._progress_m(
                prev[step], pts[step], heights[step], tracks.class_ids[idx][step]
            )
        best = np.maximum(tab["best"][rows], progress)
        tab["progress"][rows] = progress
        tab["best"][rows] = best
        tab["prev_x"][rows] = pts[:, 0]
        tab["prev_y"][rows] = pts[:, 1]
        against = best - progress
        fire = inside & ~tab["fired"][rows] & (against >= self.cfg.min_distance_m)
        events: list[Event] = []
        for k in np.nonzero(fire)[0]:
            r = int(idx[k])
            tab["fired"][rows[k]] = True
            events.append(
                self.ctx.events.make(
                    self.kind,
                    self.name,
                    ts,
                    "instant",
                    classes=(self.ctx.class_name(int(tracks.class_ids[r])),),
                    track_ids=(int(tracks.track_ids[r]),),
                    confidence=float(tracks.scores[r]),
                    box=box_of(tracks, r),
                    measurements={
                        "zone": self.cfg.zone,
                        "distance_m": round(float(against[k]), 1),
                        "calibrated": int(self.ctx.ground is not None),
                    },
                    frame_seq=frame_seq,
                )
            )
        return events
