"""What every rule shares: the `Rule` protocol, the build context, and a per-track state table.

Rules keep their per-track state in `TrackTable`: parallel numpy columns with one row per track id,
sorted by id, so a frame's tracks are looked up with one `searchsorted` instead of a dict lookup per
object, and the rows of ended tracks are dropped with one mask. That keeps the frame path vectorised and
the state bounded: every rule forgets the ids the tracker reports in `Tracks.ended`, and, as a safety net
against a tracker that never reports an end, rows not seen for `MAX_IDLE_S` are pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.events import EventFactory
from edge.geometry import GroundPlane, Segment, ZoneMask
from edge.records import Event, IntArray, Tracks

if TYPE_CHECKING:  # edge.config imports edge.rules.settings: no runtime import back
    from edge.camera_config import CameraConfig

MAX_IDLE_S = 600.0
"""Rows of tracks unseen for this long are dropped even if the tracker never said they ended."""

TIME_EPS = 1e-6
"""Slack on time comparisons: frame times like 0.7 - 0.2 are 0.49999999999999994 in floating point."""

BoolArray = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]


class Rule(Protocol):
    """A pure analytics component: tracks of one frame in, events out; no I/O."""

    @property
    def name(self) -> str:
        """Rule name from the config, unique per camera."""
        ...

    @property
    def kind(self) -> str:
        """The config kind, equal to the kind of the events emitted."""
        ...

    def update(self, tracks: Tracks, t: float, ts: float, frame_seq: int) -> list[Event]:
        """Consume one frame's confirmed tracks; `t` monotonic seconds, `ts` wall-clock UTC epoch."""
        ...

    def state_size(self) -> int:
        """Number of per-track (or pending) state entries held; returns to its baseline when tracks end."""
        ...


@dataclass(frozen=True)
class RuleContext:
    """What a rule needs from its camera, resolved to pixels of the actual frame size."""

    camera: CameraConfig
    width: int
    height: int
    names: tuple[str, ...]
    events: EventFactory
    tz: str
    ground: GroundPlane | None

    def scale_points(self, points: Any) -> F64:
        sx, sy = self.camera.scale(self.width, self.height)
        return np.asarray(
            np.asarray(points, dtype=np.float64).reshape(-1, 2) * np.array([sx, sy]), dtype=np.float64
        )

    def segment(self, line: str) -> Segment:
        pts = self.scale_points(self.camera.lines[line].points)
        return Segment((float(pts[0, 0]), float(pts[0, 1])), (float(pts[1, 0]), float(pts[1, 1])))

    def zone_mask(self, zone: str) -> ZoneMask:
        return ZoneMask(self.scale_points(self.camera.zones[zone].points), self.width, self.height)

    def class_lookup(self, classes: tuple[str, ...]) -> BoolArray:
        """Boolean table indexed by class id: True for the classes a rule watches."""
        return np.array([n in classes for n in self.names] + [False], dtype=bool)

    def class_name(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)


def select(tracks: Tracks, lookup: BoolArray) -> BoolArray:
    """Rows of `tracks` whose class the rule watches; negative (unconfirmed) ids never qualify."""
    last = lookup.shape[0] - 1  # the trailing False entry, for class ids outside the detector's names
    ids = tracks.class_ids
    ids = np.where((ids >= 0) & (ids < last), ids, last)
    return np.asarray(lookup[ids] & (tracks.track_ids >= 0), dtype=bool)


def box_of(tracks: Tracks, row: int) -> tuple[float, float, float, float]:
    b = tracks.xyxy[row]
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


class TrackTable:
    """Per-track state as numpy columns, one row per track id, rows sorted by id.

    Column arrays are replaced when rows are added or dropped: read `table[col]` after `rows()`.
    """

    def __init__(
        self, shapes: dict[str, tuple[int, ...]] | None = None, **columns: tuple[npt.DTypeLike, Any]
    ) -> None:
        """`columns` maps a name to (dtype, fill value); `shapes` gives the per-row shape of array columns."""
        self._spec = {"seen_t": (np.float64, np.nan), **columns}
        self._shapes = {k: (shapes or {}).get(k, ()) for k in self._spec}
        self.ids: IntArray = np.zeros(0, dtype=np.int64)
        self._next_prune_t = -np.inf
        self._cols: dict[str, npt.NDArray[Any]] = {
            k: np.zeros((0, *self._shapes[k]), dtype=d) for k, (d, _) in self._spec.items()
        }

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __getitem__(self, column: str) -> npt.NDArray[Any]:
        return self._cols[column]

    def __setitem__(self, column: str, value: npt.NDArray[Any]) -> None:
        self._cols[column] = value

    def find(self, ids: npt.ArrayLike) -> IntArray:
        """Row of each id, -1 where the id has no row."""
        q = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self.ids.shape[0] == 0 or q.shape[0] == 0:
            return np.full(q.shape[0], -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, q)
        pos_c = np.minimum(pos, self.ids.shape[0] - 1)
        return np.where(self.ids[pos_c] == q, pos_c, -1).astype(np.int64)

    def rows(self, ids: npt.ArrayLike, t: float | None = None) -> IntArray:
        """Row of each id, adding fresh rows (fill values) for new ids; marks them seen at `t`."""
        q = np.asarray(ids, dtype=np.int64).reshape(-1)
        found = self.find(q)
        missing = found < 0
        if missing.any():
            new = np.unique(q[missing])
            all_ids = np.concatenate([self.ids, new])
            order = np.argsort(all_ids, kind="stable")
            self.ids = all_ids[order]
            for k, (dtype, fill) in self._spec.items():
                fresh = np.full((new.shape[0], *self._shapes[k]), fill, dtype=dtype)
                col = np.concatenate([self._cols[k], fresh])
                self._cols[k] = col[order]
            found = self.find(q)
        if t is not None and found.shape[0]:
            self._cols["seen_t"][found] = t
        return found

    def drop(self, ids: npt.ArrayLike) -> None:
        """Forget the given ids (unknown ids are ignored)."""
        q = np.asarray(ids, dtype=np.int64).reshape(-1)
        if q.shape[0] == 0 or self.ids.shape[0] == 0:
            return
        self._keep(~np.isin(self.ids, q))

    def prune(self, t: float, max_idle_s: float = MAX_IDLE_S) -> IntArray:
        """Drop rows unseen for `max_idle_s` (checked at most every `max_idle_s / 10`); returns the dropped ids."""
        if self.ids.shape[0] == 0 or t < self._next_prune_t:
            return np.zeros(0, dtype=np.int64)
        self._next_prune_t = t + max_idle_s / 10
        stale = (t - self._cols["seen_t"]) > max_idle_s
        if not stale.any():
            return np.zeros(0, dtype=np.int64)
        gone = self.ids[stale]
        self._keep(~stale)
        return gone

    def _keep(self, keep: BoolArray) -> None:
        self.ids = self.ids[keep]
        for k in self._cols:
            self._cols[k] = self._cols[k][keep]
