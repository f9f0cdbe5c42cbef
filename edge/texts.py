"""Vietnamese and English display texts of events: kind names (from `contract.kinds`), phases, classes.

Operators read alerts in their own language; the edge puts both texts in every event so the station,
phones and webhooks need no translation tables of their own. Texts are built from the event's
measurements; speeds are always called *estimated* ("tốc độ ước tính"): they come from a camera
calibration, not from a certified speed meter.
"""

from __future__ import annotations

from typing import Any

from contract.kinds import kind_label
from contract.states import Phase

LANGS = ("vi", "en")

CLASS_NAMES: dict[str, dict[str, str]] = {
    "person": {"vi": "người đi bộ", "en": "pedestrian"},
    "bicycle": {"vi": "xe đạp", "en": "bicycle"},
    "car": {"vi": "ô tô", "en": "car"},
    "motorcycle": {"vi": "xe máy", "en": "motorcycle"},
    "bus": {"vi": "xe buýt", "en": "bus"},
    "truck": {"vi": "xe tải", "en": "truck"},
    "train": {"vi": "tàu hỏa", "en": "train"},
    "boat": {"vi": "thuyền", "en": "boat"},
    "dog": {"vi": "chó", "en": "dog"},
    "cat": {"vi": "mèo", "en": "cat"},
    "horse": {"vi": "ngựa", "en": "horse"},
    "cow": {"vi": "bò", "en": "cow"},
    "backpack": {"vi": "ba lô", "en": "backpack"},
    "handbag": {"vi": "túi xách", "en": "handbag"},
    "suitcase": {"vi": "va li", "en": "suitcase"},
    "umbrella": {"vi": "ô (dù)", "en": "umbrella"},
}

PHASE_NAMES: dict[str, dict[str, str]] = {
    "instant": {"vi": "", "en": ""},
    "start": {"vi": "bắt đầu", "en": "started"},
    "update": {"vi": "đang diễn ra", "en": "ongoing"},
    "end": {"vi": "kết thúc", "en": "ended"},
}

DIRECTION_WORDS = {"vi": "hướng", "en": "towards"}


def class_name(cls: str, lang: str) -> str:
    return CLASS_NAMES.get(cls, {}).get(lang, cls)


def _num(value: Any) -> str:
    """12 -> '12', 12.34 -> '12.3'."""
    if isinstance(value, (int, float)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return f"{value:.1f}"
    return str(value)


def _speed(m: dict[str, Any], lang: str, key: str = "speed_kmh") -> str:
    if key not in m:
        return ""
    word = "tốc độ ước tính" if lang == "vi" else "estimated speed"
    return f"{word} {_num(m[key])} km/h"


def _zone(m: dict[str, Any], lang: str) -> str:
    if "zone" not in m:
        return ""
    return f"{'khu vực' if lang == 'vi' else 'zone'} {m['zone']}"


def _seconds(value: Any, lang: str) -> str:
    return f"{_num(value)} {'giây' if lang == 'vi' else 's'}"


def _details(phase: Phase, m: dict[str, Any], lang: str) -> list[str]:
    """The measured facts worth reading, in order of importance, for one language.

    Chosen by the measurements an event carries, never by its kind, so a new kind needs no edit here:
    a rule that measures a speed, a zone or a dwell time gets those read out. Where one measurement name
    means different things, its companions tell them apart: `count` is a traffic count with `interval_s`,
    a line's running total (not shown) with `line`, and objects in a zone otherwise; `stopped_s`
    after a contact (`since_contact_s`) is part of a collision, not a stop worth its own words.
    """
    vi = lang == "vi"
    parts: list[str] = []
    if "direction_name" in m:
        name = m.get(f"direction_name_{lang}", m["direction_name"])  # a line named per language
        parts.append(f"{DIRECTION_WORDS[lang]} {name}")
    if "count" in m and "interval_s" in m:
        span = _seconds(m["interval_s"], lang)
        parts.append(f"{_num(m['count'])} {'lượt trong' if vi else 'in'} {span}")
    elif "count" in m and "line" not in m:
        parts.append(
            f"{_num(m['count'])} {'đối tượng' if vi else 'object' if m['count'] == 1 else 'objects'}"
        )
        if phase != "start" and "duration_s" in m:
            parts.append(f"{'thời gian' if vi else 'for'} {_seconds(m['duration_s'], lang)}")
    if "dwell_s" in m:
        parts.append(f"{'ở lại' if vi else 'stayed'} {_seconds(m['dwell_s'], lang)}")
    if "stopped_s" in m and "since_contact_s" not in m:
        parts.append(f"{'đứng yên' if vi else 'still for'} {_seconds(m['stopped_s'], lang)}")
    if "distance_m" in m:
        parts.append(f"{'ngược chiều' if vi else 'against the lane for'} {_num(m['distance_m'])} m")
    if "speed_kmh" in m:
        parts.append(_speed(m, lang))
    if "limit_kmh" in m:
        parts.append(f"{'giới hạn' if vi else 'limit'} {_num(m['limit_kmh'])} km/h")
    if "speed_before_kmh" in m:
        word = "tốc độ ước tính trước đó" if vi else "estimated speed before"
        parts.append(f"{word} {_num(m['speed_before_kmh'])} km/h")
    if m.get("schedule") not in (None, "", "always"):
        parts.append(f"{'lịch' if vi else 'schedule'} {m['schedule']}")
    zone = _zone(m, lang)
    if zone:
        parts.append(zone)
    return parts


def describe(
    kind: str, phase: Phase, classes: tuple[str, ...], m: dict[str, Any], rule: str
) -> dict[str, str]:
    """Short display texts {"vi": ..., "en": ...} for an event, e.g.
    "Chạy quá tốc độ: ô tô, tốc độ ước tính 72 km/h, giới hạn 50 km/h, khu vực lane1 (speed_lane1)"."""
    out: dict[str, str] = {}
    for lang in LANGS:
        title = kind_label(kind, lang)
        phase_word = PHASE_NAMES.get(phase, {}).get(lang, "")
        if phase_word:
            title = f"{title} {phase_word}" if lang == "en" else f"{title} ({phase_word})"
        what = ", ".join(class_name(c, lang) for c in classes)
        parts = ([what] if what else []) + _details(phase, m, lang)
        text = f"{title}: {', '.join(parts)} ({rule})" if parts else f"{title} ({rule})"
        out[lang] = text[:1024]
    return out
