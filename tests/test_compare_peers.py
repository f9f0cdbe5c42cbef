"""scripts/compare_peers.py: Roadwatch beside Ultralytics and supervision on the same model, clip and line.

The direction mappings and the error arithmetic are checked here on synthetic tables (no peer needed). The
whole comparison runs on cdnet_highway when the peers' virtualenv exists (`make peers-venv`); it is not part
of `make test`, so without it the test skips, in CI too, unless ROADWATCH_PEERS_PYTHON names an interpreter,
which must then work.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "scripts" / "peers"))

import compare_peers  # noqa: E402
import directions  # noqa: E402
import resultcache  # noqa: E402

PEERS_PYTHON_ENV = "ROADWATCH_PEERS_PYTHON"

# (line A->B, centroid before, centroid after, the truth's direction)
MOVES = [
    ((60, 130, 270, 130), (150, 120), (150, 140), "in"),  # flat, drawn left to right: down is in
    ((60, 130, 270, 130), (150, 140), (150, 120), "out"),
    ((270, 130, 60, 130), (150, 120), (150, 140), "out"),  # the same line drawn right to left
    ((270, 130, 60, 130), (150, 140), (150, 120), "in"),
    ((100, 20, 100, 200), (90, 100), (110, 100), "out"),  # steep, drawn downwards: right is out
    ((100, 20, 100, 200), (110, 100), (90, 100), "in"),
    ((100, 200, 100, 20), (90, 100), (110, 100), "in"),  # steep, drawn upwards: right is in
    ((100, 200, 100, 20), (110, 100), (90, 100), "out"),
    ((40, 60, 305, 172), (200, 100), (160, 140), "in"),  # eu_highway_cctv: towards the camera, lower left
    ((40, 60, 305, 172), (160, 140), (200, 100), "out"),
    ((40, 60, 305, 172), (175, 110), (170, 130), "in"),  # nearly along the normal
]


def _truth_direction(line: directions.Line, before: tuple[float, float], after: tuple[float, float]) -> str:
    assert directions.side(line, *before) * directions.side(line, *after) < 0, "the move must cross the line"
    return "in" if directions.side(line, *after) > 0 else "out"


def _ultralytics_in(line: directions.Line, before: tuple[float, float], after: tuple[float, float]) -> bool:
    """ObjectCounter.count_objects: a steep line counts `in` on a move right, a flat one on a move down."""
    x1, y1, x2, y2 = line
    return after[0] > before[0] if abs(x1 - x2) < abs(y1 - y2) else after[1] > before[1]


def _supervision_in(line: directions.Line, after: tuple[float, float]) -> bool:
    """LineZone: `in` when the anchor arrives where (end - start) x (anchor - start) < 0."""
    return bool(directions.side(line, *after) < 0)


@pytest.mark.parametrize(("line", "before", "after", "want"), MOVES)
def test_peer_directions_map_onto_the_truth(
    line: directions.Line, before: tuple[float, float], after: tuple[float, float], want: str
) -> None:
    assert _truth_direction(line, before, after) == want
    u_in = _ultralytics_in(line, before, after)
    assert directions.to_truth(int(u_in), int(not u_in), directions.ultralytics_swaps(line))[want] == 1
    s_in = _supervision_in(line, after)
    assert directions.to_truth(int(s_in), int(not s_in), directions.supervision_swaps(line))[want] == 1


@pytest.mark.parametrize(
    ("counts", "truth", "want"),
    [
        ({"in": 27, "out": 0}, {"in": 27, "out": 0}, (0, 27, 0.0)),
        ({"in": 25, "out": 1}, {"in": 27, "out": 0}, (3, 27, 0.1111)),  # a miss each way is not a wash
        ({"in": 21, "out": 23}, {"in": 21, "out": 23}, (0, 44, 0.0)),
        ({"in": 30, "out": 20}, {"in": 21, "out": 23}, (12, 44, 0.2727)),
        ({"in": 1, "out": 0}, {"in": 0, "out": 0}, (1, 0, None)),
    ],
)
def test_error_rate_sums_directions(
    counts: dict[str, int], truth: dict[str, int], want: tuple[object, ...]
) -> None:
    assert compare_peers.error_rate(counts, truth) == want


def _row(
    clip: str, model: str, truth: tuple[int, int], **counted: tuple[int, int] | None
) -> dict[str, object]:
    want = {"in": truth[0], "out": truth[1]}
    row: dict[str, object] = {"clip": clip, "model": model, "truth": want}
    for tool in compare_peers.TOOLS:
        c = counted.get(tool)
        if c is None:
            row[tool] = None
            continue
        counts = {"in": c[0], "out": c[1]}
        counts["abs_error"], _, err = compare_peers.error_rate(counts, want)
        row[tool] = {**counts, "error": err}
    return row


def test_totals_and_table_over_clips_and_models() -> None:
    rows = [
        _row("a", "m1", (27, 0), roadwatch=(27, 0), ultralytics=(25, 0), supervision=(29, 1)),
        _row("b", "m1", (21, 23), roadwatch=(20, 23), ultralytics=(21, 22), supervision=(21, 23)),
        _row("a", "m2", (27, 0), roadwatch=(26, 0), ultralytics=None, supervision=(27, 0)),
    ]
    total = compare_peers.totals(rows)
    assert total["m1"]["roadwatch"] == {"abs_error": 1, "truth": 71, "error": 0.0141}
    assert total["m1"]["ultralytics"] == {"abs_error": 3, "truth": 71, "error": 0.0423}
    assert total["m1"]["supervision"] == {"abs_error": 3, "truth": 71, "error": 0.0423}
    assert total["m2"]["ultralytics"] is None
    lines = compare_peers.table(rows, total).splitlines()
    assert lines[0].split() == ["clip", "model", "truth", "in/out", *compare_peers.TOOLS]
    assert len(lines) == 2 + len(rows) + len(total)
    assert lines[2].split() == ["a", "m1", "27/0", "27/0", "0.0%", "25/0", "7.4%", "29/1", "11.1%"]
    assert lines[4].split()[3:] == ["26/0", "3.7%", "n/a", "27/0", "0.0%"]
    assert lines[5].split()[:3] == ["ALL", "(wrong/true)", "m1"] and "1/71" in lines[5]


def test_one_clip_needs_a_config(tmp_path: Path) -> None:
    truth = tmp_path / "nowhere.truth.json"
    with pytest.raises(SystemExit, match="nowhere"):
        compare_peers.one_clip(truth, None)
    with pytest.raises(SystemExit, match=r"no eval config .*nowhere\.yaml"):
        compare_peers.one_clip(truth, tmp_path / "nowhere.mp4")


@pytest.mark.integration
def test_one_clip_finds_the_eval_setup(shared_dir: Path) -> None:
    clip = compare_peers.one_clip(shared_dir / "eval" / "cdnet_highway.truth.json", None)
    assert clip.video.is_file() and clip.config.name == "cdnet_highway.yaml"


def _peers_python() -> Path | None:
    value = os.environ.get(PEERS_PYTHON_ENV)
    if value:
        require(Path(value).exists(), f"{PEERS_PYTHON_ENV}={value} does not exist")
        return Path(value)
    default = ROOT / ".venv-peers" / "bin" / "python"
    return default if default.exists() else None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_peers_count_cdnet_highway_plausibly(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    python = _peers_python()
    if python is None:
        pytest.skip(f"no peers' virtualenv: run `make peers-venv` (or set {PEERS_PYTHON_ENV})")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics-settings"))  # never the user's settings
    truth = shared_dir / "eval" / "cdnet_highway.truth.json"
    model = shared_dir / "models" / "yolo11n_int8.onnx"
    argv = ["--truth", str(truth), "--model", str(model), "--peers-python", str(python), "--fresh"]
    code = compare_peers.main(argv)
    out = capsys.readouterr().out
    assert code == 0
    document, _, table = out.partition("\n\n")
    result = json.loads(document)
    (row,) = result["rows"]
    assert (row["clip"], row["model"], row["truth"]) == (
        "cdnet_highway",
        "yolo11n_int8",
        {"in": 27, "out": 0},
    )
    assert row["supervision"]["detections"] == "roadwatch"  # the boxes Roadwatch counted, from the cache
    for tool in compare_peers.TOOLS:
        counted = row[tool]
        assert set(counted) >= {"in", "out", "abs_error", "error"} and not counted.get("cached")
        assert 13 <= counted["in"] <= 41, f"{tool} counted {counted['in']} of 27 crossings in"
        assert counted["out"] <= 3, f"{tool} counted {counted['out']} crossings out on a one-way road"
        assert result["totals"]["yolo11n_int8"][tool]["truth"] == 27
    head, rule, line, total = table.strip().splitlines()
    assert head.split()[-3:] == list(compare_peers.TOOLS) and set(rule) == {"-"}
    assert line.split()[:3] == ["cdnet_highway", "yolo11n_int8", "27/0"]
    assert total.startswith("ALL")


def test_peer_results_kept_per_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resultcache, "CACHE_DIR", tmp_path / "cache")
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"frames")
    argv = ["--clip", str(clip), "--line", "0", "1", "2", "3"]
    assert resultcache.load("ultralytics", argv) is None
    resultcache.store("ultralytics", argv, {"in": 3, "out": 1})
    assert resultcache.load("ultralytics", argv) == {"in": 3, "out": 1}
    assert resultcache.load("supervision", argv) is None  # another peer
    assert resultcache.load("ultralytics", [*argv[:-1], "4"]) is None  # another line
    clip.write_bytes(b"other frames")  # the clip changed: measure again
    assert resultcache.load("ultralytics", argv) is None


def test_the_table_keeps_long_line_names_apart_from_the_model() -> None:
    """A second line's row is named `<clip>.<line>`: the longest name still leaves a space before the model."""
    rows = [_row("one-by-one-person-detection", "m1", (6, 0), roadwatch=(6, 0), ultralytics=None, supervision=(6, 0))]
    line = compare_peers.table(rows, compare_peers.totals(rows)).splitlines()[2]
    assert line.split()[:3] == ["one-by-one-person-detection", "m1", "6/0"]
