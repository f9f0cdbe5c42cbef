"""Line crossing: count tracks whose anchor crosses a segment, per direction and class, plus count summaries.

A crossing is a change of the *confirmed* side of a track, and is robust by construction:
- positions within a dead band of `margin` box heights either side of the line are ignored, so jitter
  on the line never changes anything;
- the new side is confirmed only after `min_observations` consecutive observations on it (a one-frame
  flicker back across the line is forgotten when the next observation is on the old side again), or at
  once when the anchor is `confirm_distance` box heights past the line (an object leaving the frame right
  after a line drawn near the edge still counts), or at once when the box is cut by a border of the
  picture that lies beyond the line on the new side (`edge_exit`: a car leaving through the edge right
  after the line is seen there once or twice, its box shrinking, then never again); a track's first
  side is confirmed the same way, so a box that grows over the line on a crawling rider in its first
  frames is no crossing back;
- the move from the last position on the old side to the confirming position must pass through the
  segment itself (within `end_tolerance`), not beside it: the line is a segment, not an infinite line;
- a track counts again in a direction only after it has counted the other way in between (a person
  walking back and forth counts every crossing, flicker never does), and a crossing back against the
  direction it counted last needs twice `min_observations` (a box whose edge jumps for a frame or two
  on a vehicle crawling over the line is no reversal); a track that ends mid-crossing is
  dropped with its pending state and never counts; ids below 0 (unconfirmed) are ignored.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from edge.geometry import Segment
from edge.localname import name_forms
from edge.rate import RunPeriod, observations_for
from edge.records import Event, Tracks
from edge.rules.base import RuleContext, TrackTable, box_of, select
from edge.rules.settings import LineCrossingRule
from edge.rules.speed import SpeedEstimator

log = logging.getLogger(__name__)

DIRECTIONS = ("in", "out")
# A box side this close to the picture's border is cut by it (decoders clip boxes to the frame).
EDGE_PX = 2.0


def cut_beyond(xyxy: npt.NDArray[np.float64], sides: npt.NDArray[np.int8], segment: Segment,
               width: int, height: int) -> npt.NDArray[np.bool_]:  # fmt: skip
    """Boxes cut by a picture border that lies on their `sides` (+1/-1) of the line.

    A border counts when its outward direction is within 60 degrees of the line's normal towards that
    side: a car leaving through the right edge past a vertical line, not one cut by the top edge while
    it drives along the line.
    """
    (ax, ay), (bx, by) = segment.a, segment.b
    length = max(segment.length, 1e-12)
    nx, ny = -(by - ay) / length, (bx - ax) / length  # unit normal towards the positive side
    borders = (
        (xyxy[:, 0] <= EDGE_PX, -nx),
        (xyxy[:, 2] >= width - EDGE_PX, nx),
        (xyxy[:, 1] <= EDGE_PX, -ny),
        (xyxy[:, 3] >= height - EDGE_PX, ny),
    )
    out = np.zeros(xyxy.shape[0], dtype=bool)
    for touches, along in borders:
        out |= touches & (sides * along > 0.5)
    return out


class LineCrossing:
    """Counts crossings of one line; emits `line_crossing` per crossing and periodic `count_summary`."""

    def __init__(self, cfg: LineCrossingRule, ctx: RuleContext) -> None:
        self.name = cfg.name
        self.kind = cfg.kind
        self.cfg = cfg
        self.ctx = ctx
        self.segment: Segment = ctx.segment(cfg.line)
        line = ctx.camera.lines[cfg.line]
        # `direction_name` as before (the plain form); `direction_name_vi` / `_en` when named per language
        self.direction_names = {
            d: {f"direction_name_{k}" if k else "direction_name": v for k, v in name_forms(n).items()}
            for d, n in (("in", line.in_name), ("out", line.out_name))
        }
        self.lookup = ctx.class_lookup(cfg.classes)
        self.table = TrackTable(
            side=(np.int8, 0),
            pending=(np.int8, 0),
            pending_n=(np.int64, 0),
            last_x=(np.float64, np.nan),
            last_y=(np.float64, np.nan),
            counted_in=(np.bool_, False),
            counted_out=(np.bool_, False),
        )
        self.speeds = SpeedEstimator(ctx.ground) if ctx.ground is not None else None
        self._counts: dict[tuple[str, str], int] = {}
        self._window_counts: dict[tuple[str, str], int] = {}
        self._window: int | None = None
        self._period = RunPeriod()  # time between analysed frames, for `confirm_s`

    def counts(self) -> dict[tuple[str, str], int]:
        """Crossings counted since start, by (direction, class): direction is "in" or "out"."""
        return dict(self._counts)

    def state_size(self) -> int:
        return len(self.table) + (len(self.speeds) if self.speeds is not None else 0)

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        events = self._summaries(ts, frame_seq) if self.cfg.summaries else []
        self._period.observe(t)
        if tracks.ended.shape[0]:
            self.table.drop(tracks.ended)
            if self.speeds is not None:
                self.speeds.drop(tracks.ended)
        self.table.prune(t)
        if self.speeds is not None:
            self.speeds.prune(t)
        sel = select(tracks, self.lookup)
        if not sel.any():
            return events
        idx = np.nonzero(sel)[0]
        ids = tracks.track_ids[idx]
        pts = tracks.anchors(self.cfg.anchor)[idx].astype(np.float64)
        heights = (tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]).astype(np.float64)
        if self.speeds is not None:
            self.speeds.observe(ids, pts, t)
        d = self.segment.signed_distance(pts)
        band = np.maximum(1.0, self.cfg.margin * heights)
        obs = np.where(d > band, 1, np.where(d < -band, -1, 0)).astype(np.int8)

        tab = self.table
        rows = tab.rows(ids, t)
        side = tab["side"][rows]
        same = (obs != 0) & (obs == side)
        # A track's first side is confirmed like a change of side: a box growing on a crawling rider
        # must not set a side for one frame and then "cross" back to where it really is.
        other = (obs != 0) & (obs != side)
        pending_n = np.where(other & (tab["pending"][rows] == obs), tab["pending_n"][rows] + 1, 1)
        pending_n = np.where(other, pending_n, 0)
        # Crossing back against the direction a track has counted needs twice the observations: a box
        # whose bottom flickers on a stop-and-go motorcycle crawling over the line is no reversal.
        back = np.where(obs > 0, tab["counted_out"][rows], tab["counted_in"][rows])
        n_obs = observations_for(self.cfg.confirm_s, self._period.value, self.cfg.min_observations)
        needed = np.where(back, 2 * n_obs, n_obs)
        far = (pending_n >= needed) | (np.abs(d) >= self.cfg.confirm_distance * heights)
        if self.cfg.edge_exit:
            boxes = tracks.xyxy[idx].astype(np.float64)
            far |= cut_beyond(boxes, obs, self.segment, self.ctx.width, self.ctx.height)
        settled = other & far
        first = settled & (side == 0)
        confirm = settled & (side != 0)
        # The crossing point of (last position on the old side -> now) must lie on the segment.
        last = np.stack([tab["last_x"][rows], tab["last_y"][rows]], axis=1)
        through = np.zeros(ids.shape[0], dtype=bool)
        if confirm.any():
            u = self.segment.crossing_param(last[confirm], pts[confirm])
            tol = self.cfg.end_tolerance
            through[confirm] = (u >= -tol) & (u <= 1.0 + tol)

        keep_pos = first | same | confirm
        tab["side"][rows] = np.where(first | confirm, obs, side)
        # In-band observations neither confirm nor cancel a pending change of side.
        waiting = other & ~settled
        tab["pending"][rows] = np.where(waiting, obs, np.where(obs == 0, tab["pending"][rows], 0))
        tab["pending_n"][rows] = np.where(waiting, pending_n, np.where(obs == 0, tab["pending_n"][rows], 0))
        tab["last_x"][rows] = np.where(keep_pos, pts[:, 0], last[:, 0])
        tab["last_y"][rows] = np.where(keep_pos, pts[:, 1], last[:, 1])

        going_in = through & (obs > 0) & ~tab["counted_in"][rows]
        going_out = through & (obs < 0) & ~tab["counted_out"][rows]
        # A track counts again in one direction only after it has counted the other way in between.
        tab["counted_in"][rows] = (tab["counted_in"][rows] | going_in) & ~going_out
        tab["counted_out"][rows] = (tab["counted_out"][rows] | going_out) & ~going_in
        counted = np.nonzero(going_in | going_out)[0]
        speeds = np.full(ids.shape[0], np.nan)
        if counted.size and self.speeds is not None:
            speeds[counted] = self.speeds.speeds_kmh(ids[counted], t)
        for k in counted:
            events.append(
                self._crossing(
                    tracks,
                    int(idx[k]),
                    "in" if going_in[k] else "out",
                    float(speeds[k]),
                    ts=ts,
                    frame_seq=frame_seq,
                )
            )
        return events

    def _crossing(
        self, tracks: Tracks, r: int, direction: str, speed_kmh: float, *, ts: float, frame_seq: int
    ) -> Event:
        cls = self.ctx.class_name(int(tracks.class_ids[r]))
        key = (direction, cls)
        self._counts[key] = self._counts.get(key, 0) + 1
        self._window_counts[key] = self._window_counts.get(key, 0) + 1
        total = sum(v for (dr, _), v in self._counts.items() if dr == direction)
        m: dict[str, str | int | float] = {
            "line": self.cfg.line,
            "direction": direction,
            **self.direction_names[direction],
            "count": total,
        }
        track_id = int(tracks.track_ids[r])
        if np.isfinite(speed_kmh):
            m["speed_kmh"] = round(speed_kmh, 1)
        return self.ctx.events.make(
            self.kind,
            self.name,
            ts,
            "instant",
            classes=(cls,),
            track_ids=(track_id,),
            confidence=float(tracks.scores[r]),
            box=box_of(tracks, r),
            measurements=m,
            frame_seq=frame_seq,
        )

    def _summaries(self, ts: float, frame_seq: int) -> list[Event]:
        """At each wall-clock interval boundary: one count_summary per direction for the interval ended."""
        interval = self.cfg.summary_interval_s
        window = int(ts // interval)
        if self._window is None:
            self._window = window
            return []
        if window == self._window:
            return []
        start = self._window * interval
        self._window = window
        counts, self._window_counts = self._window_counts, {}
        out: list[Event] = []
        for direction in DIRECTIONS:
            m: dict[str, str | int | float] = {
                "line": self.cfg.line,
                "direction": direction,
                **self.direction_names[direction],
                "count": sum(v for (dr, _), v in counts.items() if dr == direction),
                "interval_s": interval,
                "period_start_ts": start,
                "period_end_ts": start + interval,
            }
            seen = []
            for cls in self.cfg.classes:
                n = counts.get((direction, cls), 0)
                m[f"count_{cls.replace(' ', '_')}"] = n
                if n:
                    seen.append(cls)
            out.append(
                self.ctx.events.make(
                    "count_summary",
                    self.name,
                    ts,
                    "instant",
                    classes=tuple(seen),
                    measurements=m,
                    frame_seq=frame_seq,
                )
            )
        return out
