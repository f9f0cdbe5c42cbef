"""The wire contract's own home: generated schemas are checked in, the kind table is consistent, the
package depends on neither side, and a kind is named only where adding one must touch."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from contract import schemas
from contract.kinds import ALL_KINDS, EVENT_KINDS, STATION_KINDS, kind_label, kinds_document
from contract.models import StatsPayload
from contract.states import STREAM_STATES
from contract.topics import parse_topic
from contract.validate import Rejection, validate_stats

ROOT = Path(__file__).resolve().parents[1]


def test_checked_in_schemas_are_the_generated_ones() -> None:
    assert schemas.stale() == [], "run: python -m contract.schemas --write"
    assert schemas.main([]) == 0


def test_schema_kind_enum_is_the_node_kinds_of_the_table() -> None:
    node_kinds = [k for k, row in ALL_KINDS.items() if row.source == "node"]
    assert list(EVENT_KINDS) == node_kinds
    assert schemas.load_schema("event")["properties"]["kind"]["enum"] == node_kinds
    assert STATION_KINDS == ("node_offline", "camera_stream_lost")


@pytest.mark.parametrize(
    ("kind", "lang", "label"),
    [
        ("suspected_collision", "vi", "Nghi có va chạm giao thông"),
        ("suspected_collision", "en", "Suspected collision"),
        ("node_offline", "vi", "Thiết bị mất kết nối"),
        ("alien_landing", "en", "alien_landing"),  # a newer node's kind shows as itself
    ],
)
def test_kind_labels(kind: str, lang: str, label: str) -> None:
    assert kind_label(kind, lang) == label


def test_kinds_document_has_both_languages_and_a_severity() -> None:
    doc = kinds_document()
    assert [d["name"] for d in doc] == list(ALL_KINDS)
    assert all(d["vi"] and d["en"] and d["severity"] in ("high", "health", "ok", "info") for d in doc)


def test_a_finished_file_source_reports_ended_and_the_station_accepts_it() -> None:
    assert "ended" in STREAM_STATES
    topic = parse_topic("roadwatch/v1/n1/stats", "roadwatch/v1")
    assert topic is not None
    body = b'{"v":1,"node":"n1","ts":"2026-11-28T15:00:00.000Z","cameras":{"clip":{"stream_state":"ended"}}}'
    stats = validate_stats(topic, body)
    assert isinstance(stats, StatsPayload) and stats.cameras["clip"].stream_state == "ended"
    bad = validate_stats(topic, body.replace(b"ended", b"exploded"))
    assert isinstance(bad, Rejection) and bad.reason == "invalid"


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"), [("contract", ("edge", "central")), ("common", ("edge", "central"))]
)
def test_shared_packages_import_neither_side(package: str, forbidden: tuple[str, ...]) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            assert name.split(".")[0] not in forbidden, f"{path} imports {name}"


# Where a kind may be named: its contract row (and generated schema), the rule that emits it (the rule's
# module and its settings), example configs that switch the rule on, docs and tests. Nothing else: no
# label table in the dashboard, no enum in the station, no copy in the node's texts. The false-alert
# evaluation names the kinds that must stay at zero on normal traffic: a measurement, not a copy of the
# contract (a new kind needs no edit there).
ALLOWED = ("contract/", "edge/rules/", "configs/", "docs/", "tests/", "README.md", "scripts/eval_alerts.py")


TEXT_SUFFIXES = {".py", ".js", ".json", ".yaml", ".yml", ".md", ".html", ".toml", ".css", ".sql", ".txt"}
SKIP_DIRS = {"__pycache__", "node_modules", "build", "dist"}


def _source_files() -> list[Path]:
    """The project's text files, leaving out hidden folders (.git, virtualenvs, caches) and build output."""
    out: list[Path] = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part.startswith(".") or part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if (
            path.is_file()
            and not path.is_symlink()
            and (path.suffix in TEXT_SUFFIXES or path.name == "Makefile")
        ):
            out.append(path)
    return out


def _rule_kinds() -> list[str]:
    """Every node kind a rule names (stream and tamper kinds come from edge/capture/health, not a rule)."""
    rules = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "edge" / "rules").glob("*.py"))
    return [k for k in EVENT_KINDS if re.search(rf"\b{k}\b", rules)]


RULE_KINDS = _rule_kinds()
# Places that still name a kind, to be moved to data from the contract; the test fails as soon as one is
# gone (take it off here) or a new one appears. The station's and dashboard's are on the central branch;
# the scripts measure line crossings (counting is what they evaluate); camera_config's cross-checks
# (wrong_way needs a zone direction, speeding a calibration) belong in the rule's settings; the snapshot
# worker skips the picture for a count summary.
KNOWN: dict[str, list[str]] = {
    "line_crossing": [
        "central/queries.py",
        "central/retention.py",
        "central/web/static/feed.js",
        "scripts/bench_central.py",
        "scripts/bench_mqtt.py",
        "scripts/compare_peers.py",
        "scripts/eval_counts.py",
    ],
    "count_summary": ["central/web/static/feed.js", "edge/sinks.py"],
    "crowding": ["central/forward.py"],
    "intrusion": ["central/web/static/feed.js"],
    "wrong_way": ["edge/camera_config.py"],
    "speeding": ["edge/camera_config.py"],
}


def test_every_rule_kind_is_scanned() -> None:
    assert len(RULE_KINDS) >= 10 and "suspected_collision" in RULE_KINDS and "stream_lost" not in RULE_KINDS


@pytest.mark.parametrize("kind", RULE_KINDS)
def test_adding_a_kind_touches_contract_and_its_rule_only(kind: str) -> None:
    word = re.compile(rf"\b{kind}\b")
    places = sorted(
        p.relative_to(ROOT).as_posix()
        for p in _source_files()
        if word.search(p.read_text(encoding="utf-8", errors="replace"))
    )
    assert any(p.startswith("contract/") for p in places) and any(p.startswith("edge/rules/") for p in places)
    assert [p for p in places if not p.startswith(ALLOWED)] == KNOWN.get(kind, [])
