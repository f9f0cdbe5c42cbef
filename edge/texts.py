"""Vietnamese and English display texts for event kinds and object classes.

Operators read alerts in their own language; the edge puts both texts in every event so the station,
phones and webhooks need no translation tables of their own.
"""

from __future__ import annotations

from typing import Any

from edge.records import Phase

CLASS_NAMES: dict[str, dict[str, str]] = {
    "person": {"vi": "người đi bộ", "en": "pedestrian"},
    "bicycle": {"vi": "xe đạp", "en": "bicycle"},
    "car": {"vi": "ô tô", "en": "car"},
    "motorcycle": {"vi": "xe máy", "en": "motorcycle"},
    "bus": {"vi": "xe buýt", "en": "bus"},
    "truck": {"vi": "xe tải", "en": "truck"},
}

KIND_NAMES: dict[str, dict[str, str]] = {
    "line_crossing": {"vi": "Qua vạch đếm", "en": "Line crossing"},
}


def class_name(cls: str, lang: str) -> str:
    return CLASS_NAMES.get(cls, {}).get(lang, cls)


def describe(kind: str, phase: Phase, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    """Short display texts {"vi": ..., "en": ...} for an event."""
    out: dict[str, str] = {}
    for lang in ("vi", "en"):
        title = KIND_NAMES.get(kind, {}).get(lang, kind)
        what = ", ".join(class_name(c, lang) for c in classes)
        out[lang] = f"{title}: {what} ({rule})" if what else f"{title} ({rule})"
    return out
