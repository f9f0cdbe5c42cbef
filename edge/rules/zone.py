"""Zone rules: occupancy and crowding (a count with hysteresis), loitering (dwell) and intrusion (schedule).

Zones are drawn once into a mask (`edge.geometry.ZoneMask`) and every anchor of a frame is looked up at
once. Occupancy and crowding keep no per-track state at all; loitering and intrusion keep one row per
track in a `TrackTable` and forget it when the track ends.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from contract.states import Phase
from edge.records import Event, IntArray, Tracks
from edge.rules.base import TIME_EPS, RuleContext, TrackTable, box_of, select
from edge.rules.settings import CrowdingRule, IntrusionRule, LoiteringRule, ZoneOccupancyRule, parse_schedule

MAX_IDS = 64  # the wire contract caps arrays at 64 items


class ZoneCount:
    """Occupancy / crowding: start when the count stays >= threshold for `min_duration_s`, update
    every `update_interval_s`, end when it stays below `threshold - hysteresis` for `clear_s`.

    Two thresholds and two timers keep a count that hovers around the threshold from flapping.
    """

    def __init__(self, cfg: ZoneOccupancyRule | CrowdingRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        self.zone = ctx.zone_mask(cfg.zone)
        self.lookup = ctx.class_lookup(cfg.classes)
        self.active = False
        self._above_since: float | None = None
        self._below_since: float | None = None
        self._start_t = 0.0
        self._last_update_t = 0.0
        self._max_count = 0

    def state_size(self) -> int:
        return 0  # a fixed handful of scalars, nothing per track

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        sel = select(tracks, self.lookup)
        idx = np.nonzero(sel)[0]
        inside = idx[self.zone.contains(tracks.anchors(self.cfg.anchor)[idx])] if idx.size else idx
        count = int(inside.size)
        cfg = self.cfg
        if not self.active:
            if count < cfg.threshold:
                self._above_since = None
                return []
            if self._above_since is None:
                self._above_since = t
            if t - self._above_since < cfg.min_duration_s - TIME_EPS:
                return []
            self.active = True
            self._start_t = self._last_update_t = t
            self._max_count = count
            self._below_since = None
            return [self._event("start", tracks, inside, count, t=t, ts=ts, frame_seq=frame_seq)]
        self._max_count = max(self._max_count, count)
        if count < cfg.threshold - cfg.hysteresis:
            if self._below_since is None:
                self._below_since = t
            if t - self._below_since >= cfg.clear_s - TIME_EPS:
                self.active = False
                self._above_since = None
                return [self._event("end", tracks, inside, count, t=t, ts=ts, frame_seq=frame_seq)]
        else:
            self._below_since = None
        if cfg.update_interval_s > 0 and t - self._last_update_t >= cfg.update_interval_s - TIME_EPS:
            self._last_update_t = t
            return [self._event("update", tracks, inside, count, t=t, ts=ts, frame_seq=frame_seq)]
        return []

    def _event(
        self,
        phase: Phase,
        tracks: Tracks,
        inside: IntArray,
        count: int,
        *,
        t: float,
        ts: float,
        frame_seq: int,
    ) -> Event:
        rows = inside[:MAX_IDS]
        classes = sorted({self.ctx.class_name(int(c)) for c in tracks.class_ids[rows]})
        box = None
        if rows.size:
            b = tracks.xyxy[rows]
            box = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))
        return self.ctx.events.make(
            self.kind,
            self.name,
            ts,
            phase,
            classes=tuple(classes),
            track_ids=tuple(int(i) for i in tracks.track_ids[rows]),
            box=box,
            measurements={
                "zone": self.cfg.zone,
                "count": count,
                "max_count": self._max_count,
                "threshold": self.cfg.threshold,
                "duration_s": round(t - self._start_t, 1),
            },
            frame_seq=frame_seq,
        )


class Loitering:
    """A track inside the zone for more than `max_dwell_s` (start); its stay ends (end) when it has been
    outside for `exit_grace_s` or the track ends. Occlusion gaps do not reset the dwell time."""

    def __init__(self, cfg: LoiteringRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        self.zone = ctx.zone_mask(cfg.zone)
        self.lookup = ctx.class_lookup(cfg.classes)
        self.table = TrackTable(
            enter_t=(np.float64, np.nan),
            last_in_t=(np.float64, np.nan),
            fired=(np.bool_, False),
            cls=(np.int64, -1),
        )

    def state_size(self) -> int:
        return len(self.table)

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        tab = self.table
        events: list[Event] = []
        if tracks.ended.shape[0]:
            gone = tab.find(tracks.ended)
            for row in gone[gone >= 0][tab["fired"][gone[gone >= 0]]]:
                events.append(self._end(int(tab.ids[row]), int(row), ts, frame_seq))
            tab.drop(tracks.ended)
        tab.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any():
            return events
        idx = np.nonzero(sel)[0]
        inside = self.zone.contains(tracks.anchors(self.cfg.anchor)[idx])
        rows = tab.rows(tracks.track_ids[idx], t)
        tab["cls"][rows] = tracks.class_ids[idx]
        enter = tab["enter_t"][rows]
        enter = np.where(inside & np.isnan(enter), t, enter)
        last_in = np.where(inside, t, tab["last_in_t"][rows])
        tab["enter_t"][rows] = enter
        tab["last_in_t"][rows] = last_in
        left = ~inside & np.isfinite(last_in) & (t - last_in > self.cfg.exit_grace_s)
        for k in np.nonzero(left & tab["fired"][rows])[0]:
            events.append(self._end(int(tracks.track_ids[idx[k]]), int(rows[k]), ts, frame_seq))
        if left.any():
            tab["enter_t"][rows[left]] = np.nan
            tab["last_in_t"][rows[left]] = np.nan
            tab["fired"][rows[left]] = False
        fire = inside & ~tab["fired"][rows] & (t - enter >= self.cfg.max_dwell_s - TIME_EPS)
        for k in np.nonzero(fire)[0]:
            r = int(idx[k])
            tab["fired"][rows[k]] = True
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
                    measurements={
                        "zone": self.cfg.zone,
                        "dwell_s": round(t - float(enter[k]), 1),
                        "max_dwell_s": self.cfg.max_dwell_s,
                    },
                    frame_seq=frame_seq,
                )
            )
        return events

    def _end(self, track_id: int, row: int, ts: float, frame_seq: int) -> Event:
        tab = self.table
        dwell = float(tab["last_in_t"][row] - tab["enter_t"][row])
        return self.ctx.events.make(
            self.kind,
            self.name,
            ts,
            "end",
            classes=(self.ctx.class_name(int(tab["cls"][row])),),
            track_ids=(track_id,),
            measurements={
                "zone": self.cfg.zone,
                "dwell_s": round(dwell, 1),
                "max_dwell_s": self.cfg.max_dwell_s,
            },
            frame_seq=frame_seq,
        )


class Schedule:
    """Active periods in local time; a period whose end is before its start runs across midnight."""

    def __init__(self, periods: tuple[str, ...], tz: str) -> None:
        self.periods = [parse_schedule(p) for p in periods]
        self.tz = ZoneInfo(tz)

    def active(self, ts: float) -> bool:
        if not self.periods:
            return True
        local = datetime.fromtimestamp(ts, self.tz)
        minute = local.hour * 60 + local.minute
        for start, end in self.periods:
            if start == end:
                return True
            if (start < end and start <= minute < end) or (start > end and (minute >= start or minute < end)):
                return True
        return False


class Intrusion:
    """An object of a watched class inside the zone while the schedule is active: one event per track."""

    def __init__(self, cfg: IntrusionRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        self.zone = ctx.zone_mask(cfg.zone)
        self.lookup = ctx.class_lookup(cfg.classes)
        self.schedule = Schedule(cfg.schedule, ctx.tz)
        self.table = TrackTable(inside_n=(np.int64, 0), fired=(np.bool_, False))

    def state_size(self) -> int:
        return len(self.table)

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        tab = self.table
        if tracks.ended.shape[0]:
            tab.drop(tracks.ended)
        tab.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any() or not self.schedule.active(ts):
            return []
        idx = np.nonzero(sel)[0]
        inside = self.zone.contains(tracks.anchors(self.cfg.anchor)[idx])
        rows = tab.rows(tracks.track_ids[idx], t)
        inside_n = np.where(inside, tab["inside_n"][rows] + 1, 0)
        tab["inside_n"][rows] = inside_n
        fire = (inside_n >= self.cfg.min_observations) & ~tab["fired"][rows]
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
                        "schedule": ", ".join(self.cfg.schedule) or "always",
                    },
                    frame_seq=frame_seq,
                )
            )
        return events
