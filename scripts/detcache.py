#!/usr/bin/env python3
"""Detection cache for the counting evaluation: run a model ONCE per clip, replay the rest many times.

The detector is by far the slowest stage (15-130 ms a frame on a laptop CPU); tracker, suppression and
rules together take well under a millisecond. So the tuning harness decodes each clip once per model,
runs the detector on every frame at a low score floor (`FLOOR`, below any threshold worth trying) and
stores the raw detections (after the detector's own NMS) in one `.npz` per clip and model under
`var/detcache/` (ignored by git). Replaying tracker + rules over the cache takes seconds per clip, which
makes it possible to measure hundreds of settings over all labelled clips and all models at once.
`replay` runs the node's own `CameraAnalyzer` over a cache; `cached_detections` picks the cache of a
config (with its detection regions, if any).

    python scripts/detcache.py --model '{data}/models/yolox_nano.onnx' '{data}/eval/cdnet_highway.avi'

A cache entry is keyed by the clip and model file names, sizes and modification times and the floor; a
changed file is detected again. Detection regions (`detect_regions`) run the detector differently, so
their clips are cached under a key that includes the regions; so does `objects.class_scope: camera` (only
the camera's classes compete for a box's label), keyed by the settings that decide those classes. Class
aliases are not in the key: the cache keeps the model's class ids and the replay applies the aliases.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.capture.sourceurl import expand_path
from edge.config import NodeConfig
from edge.records import Detections, Event, Frame, ImageArray

log = logging.getLogger("detcache")

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / "var" / "detcache"
FLOOR = 0.05


@dataclass(frozen=True)
class CachedClip:
    """Raw detections of every frame of one clip by one model: frame `i` owns rows `offsets[i]:offsets[i+1]`."""

    times: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]
    xyxy: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int64]
    width: int
    height: int
    names: tuple[str, ...]
    detect_ms: float

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def frame(self, i: int, min_score: float = 0.0) -> Detections:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        keep = self.scores[a:b] >= min_score
        return Detections(self.xyxy[a:b][keep], self.scores[a:b][keep], self.class_ids[a:b][keep])


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{path.name}:{st.st_size}:{int(st.st_mtime)}"


def cache_path(clip: Path, model: Path, extra: str = "") -> Path:
    key = hashlib.sha256(f"{_stamp(clip)}|{_stamp(model)}|{FLOOR}|{extra}".encode()).hexdigest()[:12]
    return CACHE_DIR / f"{clip.stem}__{model.stem}__{key}.npz"


def _detect_all(clip: Path, model: Path, detect: Any, int8_ops: Any) -> CachedClip:
    """Decode the clip with the project's own file source (same frame times) and detect every frame."""
    from edge.camera_config import CameraConfig
    from edge.capture.files import iter_file_frames
    from edge.config import ModelSettings
    from edge.vision.detector import Detector

    # offline: every core
    detector = Detector(ModelSettings(path=str(model), intra_op_threads=0, int8_ops=int8_ops))
    camera = CameraConfig(id="cache", source=str(clip))
    times: list[float] = []
    counts: list[int] = []
    parts: list[Detections] = []
    size = (0, 0)
    spent = 0.0
    for frame in iter_file_frames(camera):
        size = (frame.width, frame.height)
        t0 = time.perf_counter()
        dets = detect(detector, frame.image)
        spent += time.perf_counter() - t0
        times.append(frame.t)
        counts.append(len(dets))
        parts.append(dets)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return CachedClip(
        np.asarray(times, np.float64),
        offsets,
        np.concatenate([d.xyxy for d in parts]).reshape(-1, 4) if parts else np.zeros((0, 4), np.float32),
        np.concatenate([d.scores for d in parts]) if parts else np.zeros(0, np.float32),
        np.concatenate([d.class_ids for d in parts]) if parts else np.zeros(0, np.int64),
        size[0],
        size[1],
        tuple(detector.names),
        1000.0 * spent / max(len(times), 1),
    )


def _whole_frame(detector: Any, image: Any) -> Detections:
    dets: Detections = detector.detect(image, FLOOR)
    return dets


def _int8_ops_key(model: Path, int8_ops: Any) -> str:
    """`|float-convs` when the detector runs the model's integer convolutions as float here
    (`model.int8_ops`): other boxes than the int8 kernels, so cached apart from them."""
    from edge.vision.dequant import has_int8_convs, resolve_int8_ops

    if resolve_int8_ops(int8_ops, ["CPUExecutionProvider"]) == "float" and has_int8_convs(model):
        return "|float-convs"
    return ""


def load_or_detect(
    clip: str | Path, model: str | Path, detect: Any = None, extra: str = "", int8_ops: Any = None
) -> CachedClip:
    """The cached detections of `clip` by `model`, detecting (and storing) them on the first call.

    `detect(detector, image) -> Detections` replaces the whole-frame detector call (detection regions);
    `extra` must then name what differs, so the two are cached apart. `int8_ops` is the config's
    `model.int8_ops` (None: the default).
    """
    if int8_ops is None:
        from edge.config import ModelSettings

        int8_ops = ModelSettings.model_fields["int8_ops"].default
    clip_p, model_p = Path(expand_path(str(clip))), Path(expand_path(str(model)))
    path = cache_path(clip_p, model_p, extra + _int8_ops_key(model_p, int8_ops))
    if path.is_file():
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            return CachedClip(
                z["times"], z["offsets"], z["xyxy"], z["scores"], z["class_ids"],
                int(meta["width"]), int(meta["height"]), tuple(meta["names"]), float(meta["detect_ms"]),
            )  # fmt: skip
    log.warning("detecting %s with %s (once; cached in %s)", clip_p.name, model_p.name, path.name)
    got = _detect_all(clip_p, model_p, detect or _whole_frame, int8_ops)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"width": got.width, "height": got.height, "names": list(got.names), "detect_ms": got.detect_ms}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, times=got.times, offsets=got.offsets, xyxy=got.xyxy, scores=got.scores,
        class_ids=got.class_ids, meta=np.asarray(json.dumps(meta)),
    )  # fmt: skip
    tmp.replace(path)
    return got


class CachedDetector:
    """A `DetectorLike` that hands out the cached detections of the frame being replayed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.current = Detections.empty()

    def detect(self, image: ImageArray, min_score: float = 0.0, classes: Any = None) -> Detections:
        """The cached frame; `classes` was applied when the cache was made (`cached_detections`)."""
        return self.current[self.current.scores >= min_score]


def replay(
    cfg: NodeConfig, cached: CachedClip, keep: list[Any] | None = None, video: str | Path | None = None
) -> list[Event]:
    """Tracker and rules of the config's first camera over cached detections, at its `detect_fps`.

    Without `video` the detector runs on every due frame (no motion gate: nothing is decoded). With the
    clip's `video` its frames are decoded alongside and the camera's motion gate decides, as on a node,
    whether the (cached) detector runs: the node's own skips, measured for what they cost in counts.
    Health checks are off; everything after the detector is the node's own `CameraAnalyzer` (appended to
    `keep` when given, for harnesses that read its stages' state afterwards).
    """
    import cv2

    from edge.analyzer import CameraAnalyzer
    from edge.events import EventFactory
    from edge.scheduler import slot_filter

    # Detection regions were applied when the cache was made (`cached_detections`).
    cam = cfg.cameras[0].model_copy(update={"detect_regions": []})
    detector = CachedDetector(cached.names)
    analyzer = CameraAnalyzer(
        cam, detector, EventFactory(cfg.node_id, cam.id, cfg.timezone), cfg.timezone,
        motion_enabled=video is not None and cam.motion.enabled, health_enabled=False,
    )  # fmt: skip
    if keep is not None:
        keep.append(analyzer)
    image = np.zeros((cached.height, cached.width, 3), np.uint8)
    capture = cv2.VideoCapture(str(expand_path(str(video)))) if video is not None else None
    if capture is not None and not capture.isOpened():
        raise RuntimeError(f"cannot open {video} for the gated replay")
    due = slot_filter(cam.detect_fps)  # the pipeline's own rule: analyse at detect_fps on the frame clock
    events: list[Event] = []
    try:
        for i in range(len(cached)):
            if capture is not None and not capture.grab():
                raise RuntimeError(f"{video}: {i} frames decoded, the cache has {len(cached)}")
            t = float(cached.times[i])
            if not due(t):
                continue
            if capture is not None:
                ok, decoded = capture.retrieve()
                if not ok:
                    raise RuntimeError(f"{video}: frame {i} could not be decoded")
                image = decoded
            detector.current = cached.frame(i)
            events.extend(analyzer.process(Frame(cam.id, i, t, 1.8e9 + t, image)).events)
    finally:
        if capture is not None:
            capture.release()
    return events


def cached_detections(cfg: NodeConfig) -> CachedClip:
    """The detection cache of the config's first camera, made with its detection regions if it has any,
    and with only its own classes competing for each box's label under `objects.class_scope: camera`."""
    cam = cfg.cameras[0]
    scoped = cam.objects.class_scope == "camera"
    if not cam.detect_regions and not scoped:
        return load_or_detect(cam.source, cfg.model.path, int8_ops=cfg.model.int8_ops)
    competing: dict[str, Any] = {}

    def detect(detector: Any, image: ImageArray) -> Detections:
        from edge.vision.regions import RegionDetector, plan_regions

        if "classes" not in competing:
            competing["classes"] = compete_classes(cam, detector.names) if scoped else None
        if not cam.detect_regions:
            got: Detections = detector.detect(image, FLOOR, competing["classes"])
            return got
        h, w = image.shape[:2]
        rects = plan_regions(
            cam.detect_regions, cam.scale(w, h), (w, h), detector.input_size, cam.detect_min_scale
        )
        return RegionDetector(detector, rects, (w, h), 0.5).detect(image, FLOOR, competing["classes"])

    extra = cache_extra(cam) if cam.detect_regions else ""
    if scoped:  # the competing classes follow from these settings (and the model's names)
        extra += (
            f"|scope=camera|{sorted(cam.classes)}|{sorted(cam.objects.aliases.items())}|{cam.objects.riders}"
        )
    return load_or_detect(cam.source, cfg.model.path, detect, extra=extra, int8_ops=cfg.model.int8_ops)


def compete_classes(cam: Any, names: tuple[str, ...]) -> Any:
    """The model class ids that compete for a box's label on this camera, as its analyzer computes them."""
    from edge.vision.filters import ClassFilter
    from edge.vision.labels import ClassLabels
    from edge.vision.objects import ObjectMerger

    wanted = ClassFilter.from_camera(cam, names, 1, 1).keep | ObjectMerger.build(cam.objects, names).needs
    return ClassLabels.build(cam.objects, names, wanted).compete


def cache_extra(cam: Any) -> str:
    """What a camera's detection regions add to its cache key (compare_peers passes it to supervision)."""
    extra = f"regions={cam.detect_regions}"
    return f"{extra}|min_scale={cam.detect_min_scale}" if cam.detect_min_scale else extra


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="ONNX model (repeatable)")
    p.add_argument("clips", nargs="+", help="video files; {data} is the data directory")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for model in args.model:
        for clip in args.clips:
            got = load_or_detect(clip, model)
            print(f"{Path(clip).name} {Path(model).name}: {len(got)} frames, {got.detect_ms:.1f} ms/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
