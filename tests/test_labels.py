"""Which classes compete for a box's label (`objects.class_scope`) and class aliases (`objects.aliases`).

Hand-made heads for both model layouts: a box scored "cell phone 0.5, car 0.3" is a cell phone to the
model's own argmax and a car at 0.3 to a camera that only wants vehicles.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.yamlconf import ConfigError
from edge.camera_config import COCO_NAMES
from edge.records import Detections
from edge.vision.decode import class_rows, decode_ultralytics, decode_yolox, yolox_grid
from edge.vision.labels import ClassLabels
from edge.vision.settings import ObjectsConfig

PERSON, BICYCLE, CAR, MOTO, BUS, TRUCK, PHONE = 0, 1, 2, 3, 5, 7, COCO_NAMES.index("cell phone")
NC = len(COCO_NAMES)
VEHICLES = [BICYCLE, CAR, MOTO, BUS, TRUCK]


def class_scores(**scores: float) -> list[float]:
    out = [0.0] * NC
    for name, s in scores.items():
        out[COCO_NAMES.index(name.replace("_", " "))] = s
    return out


def ultralytics_head(rows: list[list[float]]) -> np.ndarray:
    out = np.zeros((1, 4 + NC, 8), np.float32)
    for j, scores in enumerate(rows):
        out[0, :4, j] = (100.0 + 50 * j, 100.0, 40.0, 20.0)
        out[0, 4:, j] = scores
    return out


def yolox_head(rows: list[list[float]], objectness: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid, strides = yolox_grid(64, 64)
    out = np.zeros((1, grid.shape[0], 5 + NC), np.float32)
    for j, scores in enumerate(rows):
        out[0, j, 4] = objectness
        out[0, j, 5:] = scores
    return out, grid, strides


DECODE_CASES = [
    # (class scores of one box, competing classes, threshold, expected (class, score) or None)
    pytest.param(class_scores(cell_phone=0.5, car=0.3), None, 0.2, (PHONE, 0.5), id="all-classes-phone-wins"),
    pytest.param(
        class_scores(cell_phone=0.5, car=0.3), VEHICLES, 0.2, (CAR, 0.3), id="vehicles-car-at-its-score"
    ),
    pytest.param(class_scores(cell_phone=0.5, car=0.3), VEHICLES, 0.35, None, id="vehicles-below-threshold"),
    pytest.param(class_scores(cell_phone=0.9), VEHICLES, 0.05, None, id="no-vehicle-score"),
    pytest.param(class_scores(car=0.4, truck=0.6), VEHICLES, 0.2, (TRUCK, 0.6), id="best-of-the-wanted"),
    pytest.param(
        class_scores(person=0.7, motorcycle=0.2), [PERSON, MOTO], 0.1, (PERSON, 0.7), id="person-wanted"
    ),
]


@pytest.mark.parametrize(("scores", "classes", "threshold", "expected"), DECODE_CASES)
@pytest.mark.parametrize("layout", ["ultralytics", "yolox"])
def test_decode_lets_only_the_given_classes_compete(
    layout: str,
    scores: list[float],
    classes: list[int] | None,
    threshold: float,
    expected: tuple[int, float] | None,
) -> None:
    wanted = None if classes is None else np.asarray(classes, np.int64)
    if layout == "ultralytics":
        _, got, ids = decode_ultralytics(ultralytics_head([scores]), threshold, wanted)
    else:
        out, grid, strides = yolox_head([scores])
        _, got, ids = decode_yolox(out, grid, strides, threshold, wanted)
    if expected is None:
        assert len(got) == 0
    else:
        assert ids.tolist() == [expected[0]] and ids.dtype == np.int64
        np.testing.assert_allclose(got, [expected[1]], atol=1e-6)


def test_yolox_restricted_score_keeps_the_objectness() -> None:
    out, grid, strides = yolox_head([class_scores(cell_phone=0.9, car=0.5)], objectness=0.6)
    _, scores, ids = decode_yolox(out, grid, strides, 0.1, np.asarray(VEHICLES, np.int64))
    assert ids.tolist() == [CAR]
    np.testing.assert_allclose(scores, [0.3], atol=1e-6)


def test_restricted_decode_keeps_boxes_in_order() -> None:
    rows = [class_scores(cell_phone=0.9, car=0.3), class_scores(cat=0.8), class_scores(bus=0.4)]
    xyxy, _, ids = decode_ultralytics(ultralytics_head(rows), 0.2, np.asarray(VEHICLES, np.int64))
    assert ids.tolist() == [CAR, BUS]
    np.testing.assert_allclose(xyxy[:, 0], [80.0, 180.0])  # candidates 0 and 2


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [([True, False, True], [0, 2]), ([True, True, True], None), ([False, False, False], None)],
)
def test_class_rows(wanted: list[bool], expected: list[int] | None) -> None:
    got = class_rows(np.asarray(wanted))
    assert (got.tolist() if got is not None else None) == expected


def keep(*ids: int) -> np.ndarray:
    out = np.zeros(NC, np.bool_)
    out[list(ids)] = True
    return out


LABEL_CASES = [
    # (objects settings, wanted class ids, expected competing ids, detections' ids -> ids after aliasing)
    pytest.param({}, [CAR, TRUCK], None, ([PHONE, CAR], [PHONE, CAR]), id="defaults-change-nothing"),
    pytest.param({"class_scope": "camera"}, [CAR, TRUCK], [CAR, TRUCK], ([CAR], [CAR]), id="scope-camera"),
    pytest.param(
        {"class_scope": "camera", "aliases": {"cell phone": "car"}}, [CAR, TRUCK], [CAR, TRUCK, PHONE],
        ([PHONE, TRUCK], [CAR, TRUCK]), id="alias-source-competes",
    ),
    pytest.param(
        {"aliases": {"cell phone": "car"}}, [CAR], None, ([PHONE, PERSON, 500], [CAR, PERSON, 500]),
        id="alias-all-classes-unknown-id-kept",
    ),
    pytest.param(
        {"class_scope": "camera", "aliases": {"cell phone": "bus"}}, [CAR], [CAR], ([CAR], [CAR]),
        id="alias-to-unwanted-class-does-not-compete",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "wanted", "compete", "ids"), LABEL_CASES)
def test_class_labels(
    settings: dict[str, object],
    wanted: list[int],
    compete: list[int] | None,
    ids: tuple[list[int], list[int]],
) -> None:
    labels = ClassLabels.build(ObjectsConfig.model_validate(settings), COCO_NAMES, keep(*wanted))
    got = labels.compete
    assert (sorted(got.tolist()) if got is not None else None) == (sorted(compete) if compete else None)
    given = Detections(
        np.zeros((len(ids[0]), 4), np.float32), np.ones(len(ids[0]), np.float32), np.asarray(ids[0])
    )
    out = labels.apply(given)
    assert out.class_ids.tolist() == ids[1] and out.class_ids.dtype == np.int64
    assert given.class_ids.tolist() == ids[0]  # the input is not changed


@pytest.mark.parametrize(
    ("objects", "path", "reason"),
    [
        ({"class_scope": "wanted"}, "cameras.c.objects.class_scope", "'camera' or 'all'"),
        (
            {"aliases": {"cell phone": "lorry"}},
            "cameras.c",
            "objects.aliases: unknown class name(s) ['lorry']",
        ),
        ({"aliases": {"phone": "car"}}, "cameras.c", "unknown class name(s) ['phone']"),
        ({"aliases": {"car": "car"}}, "cameras.c.objects.aliases", "must name a class that is not aliased"),
        ({"aliases": {"cell phone": "car", "car": "truck"}}, "cameras.c.objects.aliases", "not aliased"),
        ({"aliases": ["cell phone", "car"]}, "cameras.c.objects.aliases", "dictionary"),
    ],
)
def test_label_settings_errors_name_the_field(objects: dict[str, object], path: str, reason: str) -> None:
    from edge.config import validate_config

    doc = {"node_id": "n", "cameras": [{"id": "c", "source": "x.mp4", "objects": objects}]}
    with pytest.raises(ConfigError) as err:
        validate_config(doc, "node.yaml")
    assert path in str(err.value) and reason in str(err.value)


class PhoneDetector:
    """One `cell phone` box at a fixed place (a seam instead of a model); records the classes asked for."""

    names = COCO_NAMES

    def __init__(self) -> None:
        self.asked: list[list[int] | None] = []

    def detect(self, image: object, min_score: float = 0.25, classes: np.ndarray | None = None) -> Detections:
        self.asked.append(None if classes is None else sorted(classes.tolist()))
        return Detections(
            np.array([[100, 100, 160, 140]], np.float32), np.array([0.8], np.float32), np.array([PHONE])
        )


@pytest.mark.parametrize(
    ("objects", "asked", "tracked"),
    [
        ({}, None, []),  # the model's own argmax: a phone, not wanted
        ({"class_scope": "camera"}, [CAR, BUS, TRUCK], []),  # riders off: no person, no two-wheelers
        ({"aliases": {"cell phone": "car"}}, None, [CAR]),
        ({"class_scope": "camera", "aliases": {"cell phone": "car"}}, [CAR, BUS, TRUCK, PHONE], [CAR]),
    ],
)
def test_analyzer_asks_for_the_camera_classes_and_applies_aliases(
    objects: dict[str, object], asked: list[int] | None, tracked: list[int]
) -> None:
    from edge.analyzer import CameraAnalyzer
    from edge.camera_config import CameraConfig
    from edge.events import EventFactory
    from edge.records import Frame

    cam = CameraConfig.model_validate(
        {
            "id": "c",
            "source": "x.mp4",
            "classes": ["car", "truck", "bus"],
            "objects": {"riders": False, **objects},
            "motion": {"enabled": False},
        }
    )
    det = PhoneDetector()
    an = CameraAnalyzer(cam, det, EventFactory("n", "c"), "UTC", health_enabled=False)
    image = np.zeros((240, 320, 3), np.uint8)
    for i in range(4):
        tracks = an.process(Frame("c", i, i * 0.2, 1.8e9 + i * 0.2, image)).tracks
    assert det.asked[-1] == (sorted(asked) if asked else None)
    assert tracks.class_ids.tolist() == tracked


def test_region_detector_forwards_the_competing_classes() -> None:
    from edge.vision.regions import RegionDetector

    det = PhoneDetector()
    regions = RegionDetector(det, [(0, 0, 200, 200), (150, 0, 320, 200)], (320, 240), 0.5)
    regions.detect(np.zeros((240, 320, 3), np.uint8), 0.1, np.array([CAR, TRUCK]))
    assert det.asked == [[CAR, TRUCK], [CAR, TRUCK]]
