"""Direction names per language: config forms, what a crossing event carries, and the texts built from it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from rules_paths import Obj, build, path, run

from edge.localname import LocalName, Name, name_forms, name_label
from edge.texts import describe

WEST = {"vi": "đi về phía tây", "en": "westbound"}


@pytest.mark.parametrize(
    ("name", "forms", "label"),
    [
        ("towards town", {"": "towards town"}, "towards town"),
        (LocalName(**WEST), {"": "đi về phía tây", **WEST}, "đi về phía tây / westbound"),
        (LocalName(en="westbound"), {"": "westbound", "vi": "westbound", "en": "westbound"}, "westbound"),
        (LocalName(vi="về chợ"), {"": "về chợ", "vi": "về chợ", "en": "về chợ"}, "về chợ"),
    ],
)
def test_name_forms_and_label(name: Name, forms: dict[str, str], label: str) -> None:
    assert name_forms(name) == forms
    assert name_label(name) == label


def test_a_per_language_name_needs_one_language_and_no_other_key() -> None:
    with pytest.raises(ValidationError, match="at least one of 'vi' and 'en'"):
        LocalName()
    with pytest.raises(ValidationError, match="fr"):
        LocalName.model_validate({"vi": "x", "fr": "y"})


def _crossing(in_name: Any) -> dict[str, Any]:
    lines = {"l": {"points": [[200, 500], [800, 500]], "in_name": in_name, "out_name": "ferry"}}
    rules = build([{"kind": "line_crossing", "name": "north", "line": "l", "summaries": False}], lines=lines)
    events = run(rules, [Obj(1, "motorcycle", path((500, 300), (500, 700), 9))])
    (event,) = [e for e in events if e.kind == "line_crossing"]
    return {"m": dict(event.measurements), "texts": event.texts}


def test_a_crossing_of_a_line_named_per_language_reads_in_each_language() -> None:
    got = _crossing(WEST)
    assert got["m"]["direction_name"] == "đi về phía tây"  # readers of the plain name keep working
    assert got["m"]["direction_name_vi"] == "đi về phía tây"
    assert got["m"]["direction_name_en"] == "westbound"
    assert "towards westbound" in got["texts"]["en"] and "tây" not in got["texts"]["en"]
    assert "hướng đi về phía tây" in got["texts"]["vi"] and "westbound" not in got["texts"]["vi"]


def test_a_crossing_of_a_line_with_a_plain_name_is_unchanged() -> None:
    got = _crossing("towards town")
    assert got["m"]["direction_name"] == "towards town"
    assert not [k for k in got["m"] if k.startswith("direction_name_")]
    assert "towards town" in got["texts"]["en"] and "towards town" in got["texts"]["vi"]


@pytest.mark.parametrize(
    ("count", "en", "vi"),
    [(1, "1 object", "1 đối tượng"), (2, "2 objects", "2 đối tượng"), (0, "0 objects", "0 đối tượng")],
)
def test_zone_counts_are_singular_for_one(count: int, en: str, vi: str) -> None:
    texts = describe("zone_occupancy", "start", ("person",), {"count": count}, "crosswalk")
    assert f", {en} (crosswalk)" in texts["en"]
    assert f", {vi} (crosswalk)" in texts["vi"]
