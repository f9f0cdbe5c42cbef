#!/usr/bin/env python3
"""Roadwatch beside Ultralytics and supervision: line counts on the same ONNX model, clip and truth line.

    .venv/bin/python scripts/compare_peers.py --all
    .venv/bin/python scripts/compare_peers.py --truth '{data}/eval/cdnet_highway.truth.json' \
        --model '{data}/models/yolo11n_int8.onnx'

For every clip x model, three counters run on the same frames:
- Roadwatch: scripts/eval_counts.py with the clip's eval config (configs/eval/<clip>.yaml, or one made from
  the truth file), in this interpreter's virtualenv;
- Ultralytics: `ObjectCounter` (model.track(persist=True) with ByteTrack), scripts/peers/run_ultralytics.py;
- supervision: ByteTrack + LineZone, scripts/peers/run_supervision.py, fed by Ultralytics' predictions or,
  for a model Ultralytics cannot load (YOLOX's raw head, no class names), by Roadwatch's detector.
The peers run in their own virtualenv (`make peers-venv`, or --peers-python), never in the runtime one.
Error rate = sum over directions of |counted - true| / sum of true crossings, per clip and in total.
Prints JSON, then one table (rows clip x model). `{data}` is the data directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.camera_config import COCO_NAMES
from edge.capture.sourceurl import data_dir, expand_path
from edge.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("{data}/models/yolo11n_int8.onnx", "{data}/models/yolox_nano.onnx")
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
TOOLS = ("roadwatch", "ultralytics", "supervision")
DIRECTIONS = ("in", "out")


def labelled_clips() -> list[tuple[Path, Path]]:
    """(truth, clip) for every labelled clip: the data directory's eval/ and the project's configs/eval/."""
    found = []
    for truth in sorted((data_dir() / "eval").glob("*.truth.json")):
        found.append((truth, truth.parent / json.loads(truth.read_text(encoding="utf-8"))["clip"]))
    for truth in sorted((ROOT / "configs" / "eval").glob("*.truth.json")):
        clip = data_dir() / "videos" / json.loads(truth.read_text(encoding="utf-8"))["clip"]
        if clip.is_file():
            found.append((truth, clip))
    return found


def clip_stem(truth: Path) -> str:
    return truth.name.removesuffix(".truth.json")


def eval_config(truth: Path, clip: Path, spec: dict[str, Any], workdir: Path) -> Path:
    """The clip's eval config, or one written from the truth: its line, every frame, the centre anchor."""
    own = ROOT / "configs" / "eval" / f"{clip_stem(truth)}.yaml"
    if own.is_file():
        return own
    x1, y1, x2, y2 = spec["line"]
    camera = {
        "id": "clip",
        "source": str(clip),
        "detect_fps": float(spec["fps"]),
        "reference_size": list(spec["resolution"]),
        "min_score": 0.2,
        "motion": {"max_skip_frames": 0},
        "lines": {"count": {"points": [[x1, y1], [x2, y2]]}},
        "rules": [{"kind": "line_crossing", "name": "count", "line": "count", "anchor": "center"}],
    }
    path = workdir / f"{clip_stem(truth)}.yaml"
    path.write_text(json.dumps({"node_id": "eval", "cameras": [camera]}), encoding="utf-8")  # JSON is YAML
    return path


def counted_classes(config: Path) -> list[int]:
    """COCO ids that Roadwatch counts with this config: the camera's classes the counting rule keeps."""
    camera = load_config(str(config)).cameras[0]
    rule = next(r for r in camera.rules if r.kind == "line_crossing")
    names = [c for c in camera.classes if c in getattr(rule, "classes", camera.classes)]
    return sorted(COCO_NAMES.index(c) for c in names)


def ultralytics_loads(model: Path) -> bool:
    """Ultralytics reads class names, stride and input size from its own export's metadata; without them
    (e.g. YOLOX's raw head) it cannot decode the output."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_modelmeta()
    return {"names", "stride"} <= set(meta.custom_metadata_map)


def error_rate(counts: dict[str, int], truth: dict[str, int]) -> tuple[int, int, float | None]:
    """(sum of |counted - true| over directions, true crossings, their ratio)."""
    wrong = sum(abs(int(counts[d]) - truth[d]) for d in DIRECTIONS)
    total = sum(truth[d] for d in DIRECTIONS)
    return wrong, total, (round(wrong / total, 4) if total else None)


def _run_json(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode not in (0, 3) or not lines:  # eval_counts exits 3 when outside its tolerance
        raise RuntimeError(f"{Path(cmd[1]).name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    text = proc.stdout if cmd[1].endswith("eval_counts.py") else lines[-1]
    return dict(json.loads(text))


def run_roadwatch(config: Path, truth: Path, model: Path, timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "scripts" / "eval_counts.py"), "--config", str(config)]
    out = _run_json([*cmd, "--truth", str(truth), "--model", str(model), "--json-only"], timeout_s)
    totals = {t["direction"]: int(t["counted"]) for t in out["totals"]}
    return {"in": totals.get("in", 0), "out": totals.get("out", 0), "seconds": out.get("seconds")}


def run_peer(tool: str, python: Path, args: list[str], timeout_s: float) -> dict[str, Any]:
    return _run_json([str(python), str(ROOT / "scripts" / "peers" / f"run_{tool}.py"), *args], timeout_s)


def compare_clip(
    truth: Path, clip: Path, model: Path, peers_python: Path, workdir: Path, timeout_s: float
) -> dict[str, Any]:
    """One row: the three counters on one clip with one model."""
    spec = json.loads(truth.read_text(encoding="utf-8"))
    want = {d: sum(int(n) for n in spec["totals"].get(d, {}).values()) for d in DIRECTIONS}
    config = eval_config(truth, clip, spec, workdir)
    classes = counted_classes(config)
    line = [str(v) for v in spec["line"]]
    common = ["--model", str(model), "--clip", str(clip), "--line", *line, "--classes", *map(str, classes)]
    loads = ultralytics_loads(model)
    results: dict[str, dict[str, Any] | None] = {
        "roadwatch": run_roadwatch(config, truth, model, timeout_s),
        "ultralytics": run_peer("ultralytics", peers_python, common, timeout_s) if loads else None,
        "supervision": run_peer(
            "supervision", peers_python, [*common, "--detections", "ultralytics" if loads else "roadwatch"],
            timeout_s,
        ),
    }  # fmt: skip
    for counts in results.values():
        if counts is not None:
            counts["abs_error"], _, counts["error"] = error_rate(counts, want)
    return {"clip": clip_stem(truth), "model": model.stem, "classes": classes, "truth": want, **results}


def totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model and counter, over every clip it ran on: summed errors over summed true crossings."""
    out: dict[str, dict[str, Any]] = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        out[model] = {}
        for tool in TOOLS:
            ran = [r for r in mine if r[tool] is not None]
            wrong = sum(r[tool]["abs_error"] for r in ran)
            true = sum(sum(r["truth"].values()) for r in ran)
            out[model][tool] = None if not ran else {
                "abs_error": wrong, "truth": true, "error": round(wrong / true, 4) if true else None,
            }  # fmt: skip
    return out


def _cell(counts: dict[str, Any] | None) -> str:
    if counts is None:
        return "n/a"
    rate = "-" if counts["error"] is None else f"{100 * counts['error']:.1f}%"
    return f"{counts['in']}/{counts['out']} {rate}"


def table(rows: list[dict[str, Any]], total: dict[str, dict[str, Any]]) -> str:
    """Rows clip x model; each counter as `in/out error`, then the totals per model."""
    head = f"{'clip':<20}{'model':<16}{'truth in/out':>13}" + "".join(f"{t:>18}" for t in TOOLS)
    lines = [head, "-" * len(head)]
    for r in rows:
        truth = f"{r['truth']['in']}/{r['truth']['out']}"
        lines.append(f"{r['clip']:<20}{r['model']:<16}{truth:>13}" + "".join(f"{_cell(r[t]):>18}" for t in TOOLS))
    for model, per_tool in total.items():
        cells = []
        for tool in TOOLS:
            t = per_tool[tool]
            cells.append("n/a" if t is None else f"{t['abs_error']}/{t['truth']} {100 * (t['error'] or 0):.1f}%")
        lines.append(f"{'ALL (wrong/true)':<20}{model:<16}{'':>13}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every labelled clip (data eval/ and configs/eval/)")
    which.add_argument("--truth", help="one truth file; {data} is the data directory")
    p.add_argument("--clip", help="the truth's clip (default: named in the truth, beside it or in videos/)")
    p.add_argument("--model", action="append", help=f"ONNX model, repeatable (default: {', '.join(DEFAULT_MODELS)})")
    p.add_argument("--peers-python", default=str(PEERS_PYTHON), help="python of the peers' virtualenv")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to one counter on one clip")
    p.add_argument("--json-only", action="store_true")
    args = p.parse_args(argv)

    if args.all:
        clips = labelled_clips()
    else:
        truth = Path(expand_path(args.truth))
        spec = json.loads(truth.read_text(encoding="utf-8"))
        beside, in_videos = truth.parent / spec["clip"], data_dir() / "videos" / spec["clip"]
        clip = Path(expand_path(args.clip)) if args.clip else (beside if beside.is_file() else in_videos)
        clips = [(truth, clip)]
    peers_python = Path(args.peers_python)
    if not peers_python.exists():
        print(f"{peers_python} is missing: run `make peers-venv` (or pass --peers-python)", file=sys.stderr)
        return 2
    models = [Path(expand_path(m)) for m in (args.model or DEFAULT_MODELS)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="compare-peers-") as tmp:
        for truth, clip in clips:
            for model in models:
                print(f"{clip_stem(truth)} x {model.stem} ...", file=sys.stderr, flush=True)
                rows.append(compare_clip(truth, clip, model, peers_python, Path(tmp), args.timeout))
    total = totals(rows)
    print(json.dumps({"rows": rows, "totals": total}, indent=2))
    if not args.json_only:
        print("\n" + table(rows, total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
