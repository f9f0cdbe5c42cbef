"""Lone riders told by their pace (`edge.vision.pace`): synthetic person tracks, frame by frame."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from common.yamlconf import ConfigError
from edge.records import Detections, ImageArray, IntArray, Tracks
from edge.vision.pace import RiderPace, window_pace
from edge.vision.settings import RiderPaceConfig

NAMES = ("person", "bicycle", "car", "motorcycle")
PERSON, BICYCLE, CAR, MOTO = 0, 1, 2, 3
FPS = 25.0

# A path: frame index -> (cx, cy, height) of one box; width is 0.4 x height.
Path = Callable[[int], tuple[float, float, float]]


def lateral(heights_per_s: float, h: float = 40.0) -> Path:
    return lambda i: (20.0 + heights_per_s * h * i / FPS, 120.0, h)


def swap_jump(i: int) -> tuple[float, float, float]:
    """A walker (0.8 heights/s) whose id jumps once, at frame 30, onto a neighbour 3 heights away."""
    cx, cy, h = lateral(0.8)(i)
    return (cx + (120.0 if i >= 30 else 0.0), cy, h)


def jitter(i: int) -> tuple[float, float, float]:
    """A person standing still, a small far box that jumps +/-4 px every frame."""
    rng = np.random.default_rng(i)
    return (100.0 + rng.uniform(-4, 4), 60.0 + rng.uniform(-4, 4), 12.0 + rng.uniform(-2, 2))


def approaching(i: int) -> tuple[float, float, float]:
    """A walker coming towards a high camera: the box grows from 40 to 120 px and slides down."""
    h = 40.0 + 80.0 * i / 100.0
    return (160.0 + 0.1 * i, 60.0 + 1.2 * i + h / 2, h)


def stop_and_go(i: int) -> tuple[float, float, float]:
    """A cyclist (3.5 heights/s) who stops at a light after frame 50 and waits."""
    return lateral(3.5)(min(i, 50))


def tracks_at(path: Path, i: int, cls: int = PERSON, track_id: int = 7) -> Tracks:
    cx, cy, h = path(i)
    box = [[cx - 0.2 * h, cy - h / 2, cx + 0.2 * h, cy + h / 2]]
    return make_tracks([track_id], np.array(box, np.float32), [cls])


def make_tracks(ids: list[int], xyxy: npt.NDArray[np.float32], classes: list[int]) -> Tracks:
    n = len(ids)
    return Tracks(
        np.array(ids, np.int64), xyxy, np.full(n, 0.8, np.float32), np.array(classes, np.int64),
        np.zeros((n, 2), np.float32),
    )  # fmt: skip


def run(path: Path, frames: int, cfg: RiderPaceConfig | None = None, cls: int = PERSON) -> list[int]:
    pace = RiderPace(cfg or RiderPaceConfig(), NAMES)
    return [int(pace.apply(tracks_at(path, i, cls), i / FPS).class_ids[0]) for i in range(frames)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (lateral(0.8), PERSON),  # walker
        (lateral(2.0), PERSON),  # runner
        (lateral(2.8), PERSON),  # a fast runner, under the 3 heights/s default
        (lateral(3.5), BICYCLE),  # cyclist
        (lateral(8.0), MOTO),  # motorcyclist
        (swap_jump, PERSON),  # one jump of 3 heights is an id swap, not a ride
        (jitter, PERSON),  # jitter goes back and forth: no net displacement
        (approaching, PERSON),  # growing box: still a walker
        (stop_and_go, BICYCLE),  # a cyclist waiting at a light stays a cyclist
    ],
    ids=[
        "walker", "runner", "fast-runner", "cyclist", "motorcyclist", "id-swap", "jitter", "approaching",
        "stop-and-go",
    ],
)  # fmt: skip
def test_class_at_the_end_of_three_seconds(path: Path, expected: int) -> None:
    assert run(path, 75)[-1] == expected


def test_a_rider_is_a_person_until_the_pace_held_for_most_of_a_window() -> None:
    classes = run(lateral(3.5), 40)
    first = classes.index(BICYCLE)
    assert set(classes[:first]) == {PERSON}
    assert set(classes[first:]) == {BICYCLE}
    assert 0.7 * FPS <= first <= 1.1 * FPS  # decided after about `window_s` of track


@pytest.mark.parametrize(
    ("cfg", "path", "expected"),
    [
        (RiderPaceConfig(enabled=False), lateral(8.0), PERSON),
        (RiderPaceConfig(min_heights_per_s=2.5), lateral(2.8), BICYCLE),
        (RiderPaceConfig(motorcycle_heights_per_s=3.0), lateral(3.5), MOTO),
        (RiderPaceConfig(max_step_share=1.0), swap_jump, BICYCLE),  # the jump guard off: the swap flips
        (RiderPaceConfig(window_s=5.0), lateral(3.5), PERSON),  # 3 s of track: too short for a 5 s window
    ],
)
def test_settings(cfg: RiderPaceConfig, path: Path, expected: int) -> None:
    assert run(path, 75, cfg)[-1] == expected


def test_other_classes_are_never_touched() -> None:
    assert set(run(lateral(8.0), 75, cls=CAR)) == {CAR}


def test_without_two_wheeler_classes_nothing_changes() -> None:
    pace = RiderPace(RiderPaceConfig(), ("person", "car"))
    got = [int(pace.apply(tracks_at(lateral(8.0), i), i / FPS).class_ids[0]) for i in range(75)]
    assert set(got) == {0}


def test_ended_tracks_are_forgotten_and_a_looping_clock_resets() -> None:
    pace = RiderPace(RiderPaceConfig(), NAMES)
    for i in range(50):
        assert len(pace.apply(tracks_at(lateral(3.5), i), i / FPS)) == 1
    assert len(pace) == 1
    gone = Tracks.empty(ended=[7])
    pace.apply(gone, 50 / FPS)
    assert len(pace) == 0
    for i in range(50):
        pace.apply(tracks_at(lateral(3.5), i, track_id=8), i / FPS)
    pace.apply(tracks_at(lateral(0.5), 0, track_id=9), 0.0)  # the file looped
    assert pace.ids.tolist() == [9]


def test_many_tracks_at_once_keep_their_own_state() -> None:
    pace = RiderPace(RiderPaceConfig(), NAMES)
    paths = [lateral(0.8), lateral(3.5), swap_jump, lateral(8.0)]
    for i in range(75):
        boxes = [tracks_at(p, i).xyxy[0] for p in paths]
        tracks = make_tracks([4, 3, 2, 1], np.array(boxes, np.float32), [PERSON] * 4)
        out = pace.apply(tracks, i / FPS)
    assert out.class_ids.tolist() == [PERSON, BICYCLE, PERSON, MOTO]
    assert out.track_ids.tolist() == [4, 3, 2, 1]


def test_window_pace_in_heights_per_second() -> None:
    t = np.arange(17) / 16.0
    samples = np.full((2, 4, 24), np.nan)
    samples[:, 0, :17] = t
    samples[0, 1, :17], samples[0, 2, :17], samples[0, 3, :17] = 10 + 60 * t, 50.0, 20.0  # 3 heights/s
    samples[1, 1, :17], samples[1, 2, :17], samples[1, 3, :17] = 10.0, 50.0, 20.0  # still
    pace, steady = window_pace(samples, 1.0, 1.0, 0.5)
    assert pace.round(3).tolist() == [3.0, 0.0]
    assert steady.tolist() == [True, True]


@pytest.mark.parametrize(
    ("pace", "path"),
    [
        ({"min_heights_per_s": 0}, "cameras.c.objects.rider_pace.min_heights_per_s"),
        ({"min_heights_per_s": 5, "motorcycle_heights_per_s": 4}, "cameras.c.objects.rider_pace"),
        ({"window": 1}, "cameras.c.objects.rider_pace.window"),
        ({"max_step_share": 1.5}, "cameras.c.objects.rider_pace.max_step_share"),
    ],
)
def test_config_errors_name_the_field(pace: dict[str, object], path: str) -> None:
    from edge.config import validate_config

    doc = {"node_id": "n", "cameras": [{"id": "c", "source": "x.mp4", "objects": {"rider_pace": pace}}]}
    with pytest.raises(ConfigError) as err:
        validate_config(doc, "node.yaml")
    assert path in str(err.value)


class ScriptedDetector:
    """Hands out one `person` box per frame from a path (a seam instead of a model)."""

    names: tuple[str, ...] = NAMES

    def __init__(self, path: Path) -> None:
        self.path, self.i = path, 0

    def detect(
        self, image: ImageArray, min_score: float = 0.0, classes: IntArray | None = None
    ) -> Detections:
        box = tracks_at(self.path, self.i).xyxy
        self.i += 1
        return Detections(box, np.array([0.9], np.float32), np.array([PERSON], np.int64))


@pytest.mark.parametrize(
    ("path", "cls", "vi"),
    [(lateral(3.5, h=30.0), "bicycle", "xe đạp"), (lateral(0.8, h=30.0), "person", "người đi bộ")],
)
def test_a_lone_cyclist_crossing_a_line_counts_as_a_bicycle(path: Path, cls: str, vi: str) -> None:
    from edge.analyzer import CameraAnalyzer
    from edge.camera_config import CameraConfig
    from edge.events import EventFactory
    from edge.records import Frame

    # The line stands where a cyclist arrives after 2.5 s of track, a walker after 4 s.
    x = 20 + 0.8 * 30 * 4.0 if cls == "person" else 20 + 3.5 * 30 * 2.5
    cam = CameraConfig.model_validate(
        {
            "id": "c", "source": "x.mp4", "detect_fps": FPS, "reference_size": [640, 240],
            "motion": {"enabled": False},
            "health": {"enabled": False}, "lines": {"l": {"points": [[x, 0], [x, 240]]}},
            "rules": [{"kind": "line_crossing", "name": "count", "line": "l", "anchor": "center"}],
        }
    )  # fmt: skip
    an = CameraAnalyzer(cam, ScriptedDetector(path), EventFactory("n", "c"), "UTC", health_enabled=False)
    image = np.zeros((240, 640, 3), np.uint8)
    events = [
        e for i in range(140) for e in an.process(Frame("c", i, i / FPS, 1.7e9 + i / FPS, image)).events
    ]
    crossings = [e for e in events if e.kind == "line_crossing"]
    assert [e.classes for e in crossings] == [(cls,)]
    assert vi in crossings[0].texts["vi"]


@pytest.mark.parametrize(("fps", "decided"), [(3.0, True), (2.0, False)])
def test_low_detect_rates(fps: float, decided: bool) -> None:
    """Four samples in a window: 3 analysed frames a second are enough for the 1 s window, 2 are not."""
    pace = RiderPace(RiderPaceConfig(), NAMES)
    got = []
    for i in range(int(4 * fps)):
        t = i / fps
        cx = 20.0 + 3.5 * 40.0 * t
        box = np.array([[cx - 8, 100, cx + 8, 140]], np.float32)
        got.append(int(pace.apply(make_tracks([1], box, [PERSON]), t).class_ids[0]))
    assert (got[-1] == BICYCLE) is decided
