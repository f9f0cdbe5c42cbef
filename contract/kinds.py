"""Event kinds: the one table of what a kind is called (Vietnamese and English) and how urgent it is.

The node's display texts (`edge.texts`) and the dashboard's labels (served by `GET /api/contract/kinds`)
both read this table, so an operator sees the same words on a phone alert and on the dashboard. Adding a
kind means one row here plus the rule that emits it; the payload model, the JSON Schema and the dashboard
follow from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Severity = Literal["high", "health", "ok", "info"]
Source = Literal["node", "station"]


@dataclass(frozen=True, slots=True)
class Kind:
    """One event kind: `source` says who raises it (a node's rule or the station from node health)."""

    name: str
    vi: str
    en: str
    severity: Severity
    source: Source = "node"

    def label(self, lang: str) -> str:
        return self.vi if lang == "vi" else self.en


_TABLE: tuple[Kind, ...] = (
    Kind("line_crossing", "Qua vạch đếm", "Line crossing", "info"),
    Kind("count_summary", "Thống kê lưu lượng", "Traffic count", "info"),
    Kind("zone_occupancy", "Có đối tượng trong khu vực", "Zone occupancy", "info"),
    Kind("crowding", "Tập trung đông", "Crowding", "high"),
    Kind("loitering", "Lảng vảng", "Loitering", "high"),
    Kind("intrusion", "Xâm nhập", "Intrusion", "high"),
    Kind("stopped_vehicle", "Xe dừng bất thường", "Stopped vehicle", "high"),
    Kind("wrong_way", "Đi ngược chiều", "Wrong-way driving", "high"),
    Kind("speeding", "Chạy quá tốc độ", "Speeding", "high"),
    Kind("suspected_collision", "Nghi có va chạm giao thông", "Suspected collision", "high"),
    Kind("stream_lost", "Mất tín hiệu camera", "Camera stream lost", "health"),
    Kind("stream_restored", "Có lại tín hiệu camera", "Camera stream restored", "ok"),
    Kind("frozen_picture", "Hình ảnh camera bị đứng", "Frozen picture", "health"),
    Kind("camera_blocked", "Camera bị che khuất", "Camera view blocked", "health"),
    Kind("camera_defocused", "Camera bị mất nét", "Camera out of focus", "health"),
    Kind("camera_moved", "Camera bị xoay lệch", "Camera moved", "health"),
    Kind("node_offline", "Thiết bị mất kết nối", "Node offline", "health", "station"),
    Kind("camera_stream_lost", "Camera mất tín hiệu kéo dài", "Camera stream lost for long", "health", "station"),
)  # fmt: skip

ALL_KINDS: dict[str, Kind] = {k.name: k for k in _TABLE}
KIND_NAMES: dict[str, dict[str, str]] = {k.name: {"vi": k.vi, "en": k.en} for k in _TABLE}

# The kinds a node may publish (the payload model's enum); mypy and pydantic need them spelled out as a
# Literal, and tests/test_contract_kinds.py checks that this Literal and the table agree.
EventKind = Literal[
    "line_crossing", "count_summary", "zone_occupancy", "crowding", "loitering", "intrusion",
    "stopped_vehicle", "wrong_way", "speeding", "suspected_collision", "stream_lost", "stream_restored",
    "frozen_picture", "camera_blocked", "camera_defocused", "camera_moved",
]  # fmt: skip
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
STATION_KINDS: tuple[str, ...] = tuple(k.name for k in _TABLE if k.source == "station")


def kind_label(kind: str, lang: str) -> str:
    """The display name of a kind, or the kind itself when it is unknown (a newer node)."""
    row = ALL_KINDS.get(kind)
    return row.label(lang) if row is not None else kind


def kinds_document() -> list[dict[str, str]]:
    """The table as JSON for the dashboard: name, vi, en, severity, source, in table order."""
    return [
        {"name": k.name, "vi": k.vi, "en": k.en, "severity": k.severity, "source": k.source} for k in _TABLE
    ]
