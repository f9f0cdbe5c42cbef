"""Suspected collision: contact between two vehicles followed by an abrupt stop.

The heuristic (docs/rules.md lists its parameters and known false positives):
1. Speed of each vehicle per frame from the tracker's filtered velocity, in km/h through the calibration
   (or rough km/h from the class's typical height without one). A vehicle is *fast* at a frame when its
   speed is >= `min_speed_kmh`; the last fast time is remembered.
2. *Contact*: two watched vehicles whose boxes overlap with IoU >= `contact_iou` (and, with a calibration,
   whose ground anchors are within `contact_m`), while at least one of them was fast within the last
   `pre_window_s`. Each vehicle remembers its latest contact time and partner.
3. *Abrupt stop*: a vehicle whose speed has stayed <= `stop_speed_kmh` for `hold_s`, whose stop began
   within `decel_s` of its last fast moment, and within `post_window_s` after a contact (inside `zone`
   when one is set).
4. It fires once per pair when `min_stopped_tracks` (1 or 2) vehicles of the pair stopped abruptly.
Vehicles queueing slowly never count: they are not fast before touching.
"""

from __future__ import annotations

import numpy as np

from edge.geometry import box_iou, nominal_heights_m
from edge.records import Event, Tracks
from edge.rules.base import F64, TIME_EPS, RuleContext, TrackTable, select
from edge.rules.settings import SuspectedCollisionRule

KMH_PER_MPS = 3.6
_DT = 0.2  # seconds of motion used to carry a velocity onto the ground plane


class SuspectedCollision:
    """See the module docstring for the heuristic."""

    def __init__(self, cfg: SuspectedCollisionRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        self.zone = ctx.zone_mask(cfg.zone) if cfg.zone else None
        self.lookup = ctx.class_lookup(cfg.classes)
        self.table = TrackTable(
            fast_t=(np.float64, np.nan),
            fast_kmh=(np.float64, np.nan),
            slow_since=(np.float64, np.nan),
            contact_t=(np.float64, np.nan),
            partner=(np.int64, -1),
            fired=(np.bool_, False),
        )

    def state_size(self) -> int:
        return len(self.table)

    def speeds_kmh(self, tracks: Tracks, idx: np.ndarray) -> F64:
        """Speed (km/h) of the selected rows from the tracker's velocities."""
        vel = tracks.velocities[idx].astype(np.float64)
        if self.ctx.ground is not None:
            p = tracks.anchors("bottom_center")[idx]
            return np.asarray(self.ctx.ground.speeds_mps(p, vel, _DT) * KMH_PER_MPS)
        heights = np.maximum((tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]).astype(np.float64), 1.0)
        scale = nominal_heights_m(tracks.class_ids[idx], self.ctx.names) / heights
        return np.asarray(np.hypot(vel[:, 0], vel[:, 1]) * scale * KMH_PER_MPS)

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        tab = self.table
        cfg = self.cfg
        if tracks.ended.shape[0]:
            tab.drop(tracks.ended)
        tab.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any():
            return []
        idx = np.nonzero(sel)[0]
        ids = tracks.track_ids[idx]
        rows = tab.rows(ids, t)
        speed = self.speeds_kmh(tracks, idx)
        fast = speed >= cfg.min_speed_kmh
        tab["fast_t"][rows[fast]] = t
        tab["fast_kmh"][rows[fast]] = speed[fast]
        slow = speed <= cfg.stop_speed_kmh
        slow_since = tab["slow_since"][rows]
        tab["slow_since"][rows] = np.where(slow, np.where(np.isnan(slow_since), t, slow_since), np.nan)

        fast_t = tab["fast_t"][rows]
        recent = np.isfinite(fast_t) & (t - fast_t <= cfg.pre_window_s)
        if idx.size >= 2 and recent.any():  # contacts matter only next to a recently fast vehicle
            iou = box_iou(tracks.xyxy[idx])
            touch = iou >= cfg.contact_iou
            if self.ctx.ground is not None:
                g = self.ctx.ground.to_ground(tracks.anchors("bottom_center")[idx])
                touch &= (
                    np.hypot(g[:, None, 0] - g[None, :, 0], g[:, None, 1] - g[None, :, 1]) <= cfg.contact_m
                )
            touch &= recent[:, None] | recent[None, :]
            has = touch.any(axis=1)
            if has.any():
                best = np.argmax(np.where(touch, iou, -1.0), axis=1)
                tab["contact_t"][rows[has]] = t
                tab["partner"][rows[has]] = ids[best[has]]

        # Abrupt stop after contact, for every watched vehicle of this frame.
        contact_t = tab["contact_t"][rows]
        if not np.isfinite(contact_t).any():
            return []
        slow_since = tab["slow_since"][rows]
        stopped = (
            np.isfinite(slow_since)
            & (t - slow_since >= cfg.hold_s - TIME_EPS)
            & np.isfinite(fast_t)
            & (slow_since - fast_t <= cfg.decel_s)
            & np.isfinite(contact_t)
            & (slow_since - contact_t <= cfg.post_window_s)
            & (slow_since >= contact_t - cfg.decel_s)
            & ~tab["fired"][rows]
        )
        if self.zone is not None:
            stopped &= self.zone.contains(tracks.anchors("bottom_center")[idx])
        if not stopped.any():
            return []
        events: list[Event] = []
        stopped_ids = set(int(i) for i in ids[stopped])
        for k in np.nonzero(stopped)[0]:
            row = int(rows[k])
            if tab["fired"][row]:
                continue  # fired with its partner earlier in this loop
            partner = int(tab["partner"][row])
            pair_stopped = 1 + int(partner in stopped_ids)
            if pair_stopped < cfg.min_stopped_tracks:
                continue
            prow = int(tab.find([partner])[0])
            tab["fired"][row] = True
            if prow >= 0:
                tab["fired"][prow] = True
            events.append(
                self._event(
                    tracks, idx, ids, int(k), partner=partner, prow=prow, t=t, ts=ts, frame_seq=frame_seq
                )
            )
        return events

    def _event(
        self,
        tracks: Tracks,
        idx: np.ndarray,
        ids: np.ndarray,
        k: int,
        *,
        partner: int,
        prow: int,
        t: float,
        ts: float,
        frame_seq: int,
    ) -> Event:
        tab = self.table
        r = int(idx[k])
        row = int(tab.find([int(ids[k])])[0])
        members = [r]
        where = np.nonzero(ids == partner)[0]
        if where.size:
            members.append(int(idx[where[0]]))
        b = tracks.xyxy[members]
        box = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
        classes = tuple(dict.fromkeys(self.ctx.class_name(int(tracks.class_ids[m])) for m in members))
        before = [float(tab["fast_kmh"][row])]
        if prow >= 0 and np.isfinite(tab["fast_kmh"][prow]):
            before.append(float(tab["fast_kmh"][prow]))
        return self.ctx.events.make(
            self.kind,
            self.name,
            ts,
            "instant",
            classes=classes,
            track_ids=(int(ids[k]), partner),
            confidence=float(tracks.scores[members].min()),
            box=box,
            measurements={
                "speed_before_kmh": round(max(before), 1),
                "stopped_s": round(t - float(tab["slow_since"][row]), 1),
                "since_contact_s": round(t - float(tab["contact_t"][row]), 1),
                "calibrated": int(self.ctx.ground is not None),
            },
            frame_seq=frame_seq,
        )
