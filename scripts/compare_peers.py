#!/usr/bin/env python3
"""Roadwatch beside Ultralytics and supervision: line counts on the same ONNX model, clip and truth line.

    .venv/bin/python scripts/compare_peers.py --all
    .venv/bin/python scripts/compare_peers.py --truth '{data}/eval/cdnet_highway.truth.json' \
        --model '{data}/models/yolo11n_int8.onnx'

For every clip x model, three counters run on the same frames:
- Roadwatch: `eval_counts.count_clip` with the clip's eval config (configs/eval/<clip>.yaml), in this
  interpreter's virtualenv: the node's tracker and rules over the model's detections (cached per clip);
- Ultralytics: `ObjectCounter` (model.track(persist=True) with ByteTrack), scripts/peers/run_ultralytics.py;
  "n/a" for a model Ultralytics cannot load (YOLOX's raw head: no class names in the file);
- supervision: ByteTrack + LineZone, scripts/peers/run_supervision.py, fed by default with the very
  detections Roadwatch counts from (the cache), or with Ultralytics' predictions
  (--supervision-detections ultralytics, for models Ultralytics loads).
The peers run in their own virtualenv (`make peers-venv`, or --peers-python), never in the runtime one.
Their results are kept per input in var/peers-cache/ (scripts/peers/resultcache.py), so re-measuring
Roadwatch after a change takes seconds; --fresh runs them again.
Error rate = sum over directions of |counted - true| / sum of true crossings, per clip and in total.
Prints JSON, then one table (rows clip x model). `{data}` is the data directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eval_counts
from detcache import cache_extra

from edge.camera_config import COCO_NAMES
from edge.capture.sourceurl import expand_path
from edge.config import NodeConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ("{data}/models/yolo11n_int8.onnx", "{data}/models/yolox_nano.onnx")
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
TOOLS = ("roadwatch", "ultralytics", "supervision")
DIRECTIONS = ("in", "out")


def one_clip(truth: Path, video: Path | None) -> eval_counts.Clip:
    """A clip named by its truth file; its config is configs/eval/<clip>.yaml, as for eval_counts.py."""
    name = truth.name.removesuffix(".truth.json")
    known = {c.name: c for c in eval_counts.discover_clips()}
    config = eval_counts.EVAL_CONFIGS / f"{name}.yaml"
    if video is None:
        if name not in known:
            raise SystemExit(f"{truth}: no clip {name} with a config {config} and its video in the data directory")
        video = known[name].video
    if not config.is_file():
        raise SystemExit(f"{truth}: no eval config {config}")
    return eval_counts.Clip(name, video, truth, config)


def counted_classes(cfg: NodeConfig) -> list[int]:
    """COCO ids that Roadwatch counts with this config: the camera's classes the counting rule keeps."""
    camera = cfg.cameras[0]
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


def run_roadwatch(cfg: NodeConfig, truth: Path) -> dict[str, Any]:
    result = eval_counts.count_clip(cfg, truth)
    counted = {t["direction"]: int(t["counted"]) for t in result["totals"]}
    return {"in": counted.get("in", 0), "out": counted.get("out", 0), "seconds": result["seconds"]}


def run_peer(tool: str, python: Path, args: list[str], timeout_s: float) -> dict[str, Any]:
    """One peer in its own virtualenv; its last stdout line is its JSON result."""
    cmd = [str(python), str(ROOT / "scripts" / "peers" / f"run_{tool}.py"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"run_{tool}.py failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return dict(json.loads(lines[-1]))


def compare_clip(
    clip: eval_counts.Clip, model: Path, peers_python: Path, sv_source: str, timeout_s: float, fresh: bool
) -> dict[str, Any]:
    """One row: the three counters on one clip with one model."""
    spec = json.loads(clip.truth.read_text(encoding="utf-8"))
    want = {d: sum(int(n) for n in spec["totals"].get(d, {}).values()) for d in DIRECTIONS}
    cfg = eval_counts.with_model(load_config(str(clip.config)), str(model))
    cfg = cfg.model_copy(update={"cameras": [cfg.cameras[0].model_copy(update={"source": str(clip.video)})]})
    classes = counted_classes(cfg)
    line = [str(v) for v in spec["line"]]
    common = ["--model", str(model), "--clip", str(clip.video), "--line", *line, "--classes", *map(str, classes)]
    loads = ultralytics_loads(model)
    sv_detections = sv_source if loads else "roadwatch"
    sv_args = [*common, "--fps", str(spec["fps"]), "--detections", sv_detections]
    regions = cfg.cameras[0].detect_regions
    if regions and sv_detections == "roadwatch":
        sv_args += ["--cache-extra", cache_extra(cfg.cameras[0])]  # detcache.cached_detections' key
    if fresh:
        common, sv_args = [*common, "--fresh"], [*sv_args, "--fresh"]
    results: dict[str, dict[str, Any] | None] = {
        "roadwatch": run_roadwatch(cfg, clip.truth),  # first: fills the detection cache supervision reads
        "ultralytics": run_peer("ultralytics", peers_python, common, timeout_s) if loads else None,
        "supervision": run_peer("supervision", peers_python, sv_args, timeout_s),
    }
    for counts in results.values():
        if counts is not None:
            counts["abs_error"], _, counts["error"] = error_rate(counts, want)
    return {"clip": clip.name, "model": model.stem, "classes": classes, "truth": want, **results}


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
    head = f"{'clip':<29}{'model':<16}{'truth in/out':>13}" + "".join(f"{t:>18}" for t in TOOLS)
    lines = [head, "-" * len(head)]
    for r in rows:
        truth = f"{r['truth']['in']}/{r['truth']['out']}"
        lines.append(f"{r['clip']:<29}{r['model']:<16}{truth:>13}" + "".join(f"{_cell(r[t]):>18}" for t in TOOLS))
    for model, per_tool in total.items():
        cells = []
        for tool in TOOLS:
            t = per_tool[tool]
            cells.append("n/a" if t is None else f"{t['abs_error']}/{t['truth']} {100 * (t['error'] or 0):.1f}%")
        lines.append(f"{'ALL (wrong/true)':<29}{model:<16}{'':>13}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every labelled clip (data eval/ and configs/eval/)")
    which.add_argument("--truth", help="one truth file; {data} is the data directory")
    p.add_argument("--clip", help="the truth's video (default: found as eval_counts.py finds it)")
    p.add_argument("--model", action="append", help=f"ONNX model, repeatable (default: {', '.join(DEFAULT_MODELS)})")
    p.add_argument("--peers-python", default=str(PEERS_PYTHON), help="python of the peers' virtualenv")
    p.add_argument("--supervision-detections", choices=("roadwatch", "ultralytics"), default="roadwatch",
                   help="what feeds supervision's tracker (models Ultralytics cannot load: always roadwatch)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed to one counter on one clip")
    p.add_argument("--fresh", action="store_true",
                   help="run the peers even where var/peers-cache/ keeps their result for the same input")
    p.add_argument("--jobs", type=int, default=1, help="clip x model rows run at once (default 1)")
    p.add_argument("--json-only", action="store_true")
    args = p.parse_args(argv)

    if args.all:
        clips = eval_counts.discover_clips()
    else:
        clips = [one_clip(Path(expand_path(args.truth)), Path(expand_path(args.clip)) if args.clip else None)]
    peers_python = Path(args.peers_python)
    if not peers_python.exists():
        print(f"{peers_python} is missing: run `make peers-venv` (or pass --peers-python)", file=sys.stderr)
        return 2
    models = [Path(expand_path(m)) for m in (args.model or DEFAULT_MODELS)]
    def row(pair: tuple[eval_counts.Clip, Path]) -> dict[str, Any]:
        print(f"{pair[0].name} x {pair[1].stem} ...", file=sys.stderr, flush=True)
        return compare_clip(*pair, peers_python, args.supervision_detections, args.timeout, args.fresh)

    pairs = [(clip, model) for clip in clips for model in models]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # the peers are subprocesses; ONNX drops the GIL
        rows = list(pool.map(row, pairs))
    total = totals(rows)
    print(json.dumps({"rows": rows, "totals": total}, indent=2))
    if not args.json_only:
        print("\n" + table(rows, total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
