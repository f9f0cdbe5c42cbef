"""The per-camera analysis loop with a scripted detector: motion gating, detector skipping, stable ids."""

from __future__ import annotations

import numpy as np

from edge.analyzer import CameraAnalyzer
from edge.camera_config import CameraConfig
from edge.events import EventFactory
from edge.records import Detections, Frame, ImageArray

W, H = 320, 240


class SquareDetector:
    """Finds the bright squares drawn by `scene` (a seam instead of a model)."""

    names: tuple[str, ...] = ("person", "bicycle", "car")

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: ImageArray, min_score: float = 0.25, classes: object = None) -> Detections:
        self.calls += 1
        mask = image[:, :, 0] > 200
        boxes = []
        cols = np.flatnonzero(mask.any(axis=0))
        if cols.size:
            # split columns into runs: one square per run
            splits = np.flatnonzero(np.diff(cols) > 1) + 1
            for run in np.split(cols, splits):
                rows = np.flatnonzero(mask[:, run].any(axis=1))
                boxes.append([run[0], rows[0], run[-1] + 1, rows[-1] + 1])
        n = len(boxes)
        return Detections(
            np.array(boxes, np.float32).reshape(-1, 4), np.full(n, 0.9, np.float32), np.full(n, 2, np.int64)
        )


def scene(squares: list[tuple[int, int]]) -> ImageArray:
    img = np.full((H, W, 3), 40, np.uint8)
    for x, y in squares:
        img[y : y + 30, x : x + 30] = 255
    return img


def analyzer(
    max_skip: int, enabled: bool = True, line_x: int | None = None, skip_near_lines: bool = False
) -> tuple[CameraAnalyzer, SquareDetector]:
    """An analyzer at 10 frames a second; with `line_x` a vertical counting line there (reference 320x240)."""
    lines: dict[str, object] = {}
    if line_x is not None:
        lines = {
            "reference_size": [W, H],
            "lines": {"l": {"points": [[line_x, 0], [line_x, H]]}},
            "rules": [{"kind": "line_crossing", "name": "l", "line": "l", "summaries": False}],
        }
    cam = CameraConfig.model_validate(
        {
            "id": "c",
            "source": "x.mp4",
            "detect_fps": 10,
            "motion": {"enabled": enabled, "max_skip_frames": max_skip, "skip_near_lines": skip_near_lines},
            "health": {"enabled": False},
            **lines,
        }
    )
    det = SquareDetector()
    return CameraAnalyzer(cam, det, EventFactory("n", "c"), "UTC", health_enabled=False), det


def run(an: CameraAnalyzer, frames: list[ImageArray]) -> list[set[int]]:
    ids = []
    for i, img in enumerate(frames):
        res = an.process(Frame("c", i, i * 0.1, 1.7e9 + i * 0.1, img))
        ids.append({int(t) for t in res.tracks.track_ids})
    return ids


def test_skipping_halves_detector_runs_for_a_tracked_mover_and_keeps_its_id() -> None:
    frames = [scene([(10 + 4 * i, 100)]) for i in range(40)]
    an, det = analyzer(max_skip=1)
    ids = run(an, frames)
    assert 20 <= det.calls <= 24  # first frames to confirm the track, then every other frame
    assert set().union(*ids) == {1}  # one object, one id, throughout

    full, det_full = analyzer(max_skip=0)
    run(full, frames)
    assert det_full.calls == 40


def runs_per_frame(an: CameraAnalyzer, det: SquareDetector, frames: list[ImageArray]) -> list[bool]:
    out = []
    for i, img in enumerate(frames):
        before = det.calls
        an.process(Frame("c", i, i * 0.1, 1.7e9 + i * 0.1, img))
        out.append(det.calls > before)
    return out


def test_no_skip_while_a_track_is_near_a_counting_line() -> None:
    """A 30 px square moving 4 px a frame (40 px/s) towards a line at x = 200: skips far from the line,
    none from where its centre is within its size plus its motion over the skip (30 + 40 x 0.2 = 38 px)
    until it is as far past it; with `skip_near_lines` it skips there as well."""
    frames = [scene([(10 + 4 * i, 100)]) for i in range(80)]
    centres = [10 + 4 * i + 15 for i in range(80)]
    an, det = analyzer(max_skip=1, line_x=200)
    ran = runs_per_frame(an, det, frames)
    near = [i for i, c in enumerate(centres) if abs(c - 200) < 36]  # a margin for the Kalman velocity
    far = [i for i, c in enumerate(centres) if i >= 5 and abs(c - 200) > 60]
    assert all(ran[i] for i in near)
    assert sum(ran[i] for i in far) <= len(far) // 2 + 2  # every other frame away from the line
    an2, det2 = analyzer(max_skip=1, line_x=200, skip_near_lines=True)
    ran2 = runs_per_frame(an2, det2, frames)
    assert sum(ran2[i] for i in near) <= len(near) // 2 + 1


def test_a_newcomer_runs_the_detector_at_once() -> None:
    an, det = analyzer(max_skip=3)
    frames = [scene([(10 + 4 * i, 100)]) for i in range(20)]
    run(an, frames)
    before = det.calls
    an.process(Frame("c", 20, 2.0, 1.7e9 + 2.0, scene([(90, 100), (250, 20)])))
    assert det.calls == before + 1


def test_static_scene_runs_only_keepalive_detections() -> None:
    an, det = analyzer(max_skip=1)
    frames = [scene([(100, 100)]) for _ in range(60)]  # 6 s of a parked object
    run(an, frames)
    assert det.calls <= 1 + 3 + 1  # first frame, a keep-alive every 2 s


class SizedDetector(SquareDetector):
    """A detector seam with a model input size, recording the crops it is given."""

    input_size = (100, 100)

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: ImageArray, min_score: float = 0.25, classes: object = None) -> Detections:
        self.shapes.append(image.shape)
        return super().detect(image, min_score)


def test_detect_min_scale_tiles_the_region_for_the_model_input() -> None:
    """A 200x100 region and a 100 px model: at 0.75 two tiles (one inference each), at 0 one crop."""
    shapes = {}
    for min_scale in (0.0, 0.75):
        cam = CameraConfig.model_validate(
            {
                "id": "c", "source": "x.mp4", "reference_size": [W, H], "motion": {"enabled": False},
                "health": {"enabled": False},
                "detect_regions": [[60, 70, 260, 170]], "detect_min_scale": min_scale,
            }
        )  # fmt: skip
        det = SizedDetector()
        an = CameraAnalyzer(cam, det, EventFactory("n", "c"), "UTC", health_enabled=False)
        res = an.process(Frame("c", 0, 0.0, 1.7e9, scene([(140, 100)])))  # on the seam of the two tiles
        shapes[min_scale] = det.shapes
        assert res.tracks.track_ids.size == 0  # a new track is not confirmed on its first frame
    assert shapes[0.0] == [(100, 200, 3)]
    assert shapes[0.75] == [(100, 105, 3), (100, 105, 3)]
