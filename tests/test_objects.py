"""One object, one detection: rider fusion and cross-class group suppression on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest

from common.yamlconf import ConfigError
from edge.camera_config import COCO_NAMES, CameraConfig
from edge.records import Detections
from edge.vision.objects import ObjectMerger, rider_pairs
from edge.vision.settings import ObjectsConfig

PERSON, BICYCLE, CAR, MOTO, BUS, TRUCK = 0, 1, 2, 3, 5, 7
Box = tuple[float, float, float, float]


def dets(*objs: tuple[Box, float, int]) -> Detections:
    return Detections(
        np.array([o[0] for o in objs], np.float32).reshape(-1, 4),
        np.array([o[1] for o in objs], np.float32),
        np.array([o[2] for o in objs], np.int64),
    )


def merged(*objs: tuple[Box, float, int], **settings: object) -> list[tuple[Box, float, int]]:
    out = ObjectMerger.build(ObjectsConfig.model_validate(settings), COCO_NAMES).apply(dets(*objs))
    return [
        (tuple(round(float(v), 1) for v in b), round(float(s), 2), int(c))  # type: ignore[misc]
        for b, s, c in zip(out.xyxy, out.scores, out.class_ids, strict=True)
    ]


BIKE: Box = (100, 140, 140, 200)  # a motorcycle seen from behind: 40 x 60
RIDER: Box = (102, 100, 138, 180)  # its rider: centre over the bike, legs over the bike's upper part

RIDER_CASES = [
    pytest.param([(RIDER, 0.8, PERSON), (BIKE, 0.3, MOTO)], [((100, 100, 140, 200), 0.8, MOTO)], id="rider-on-weak-moto"),
    pytest.param([(BIKE, 0.7, MOTO), (RIDER, 0.6, PERSON)], [((100, 100, 140, 200), 0.7, MOTO)], id="rider-on-strong-moto"),
    pytest.param([(RIDER, 0.8, PERSON), (BIKE, 0.5, BICYCLE)], [((100, 100, 140, 200), 0.8, BICYCLE)], id="cyclist"),
    pytest.param(
        [(RIDER, 0.8, PERSON), ((101, 110, 137, 185), 0.6, PERSON), (BIKE, 0.5, MOTO)],
        [((100, 100, 140, 200), 0.8, MOTO)],
        id="pillion-joins-the-same-bike",
    ),
    pytest.param([(RIDER, 0.8, PERSON)], [(RIDER, 0.8, PERSON)], id="walker-alone-stays-person"),
    pytest.param(
        [((200, 100, 236, 180), 0.8, PERSON), (BIKE, 0.5, MOTO)],
        [((200, 100, 236, 180), 0.8, PERSON), (BIKE, 0.5, MOTO)],
        id="person-beside-a-bike",
    ),
    pytest.param(
        [((102, 190, 138, 270), 0.8, PERSON), (BIKE, 0.5, MOTO)],
        [((102, 190, 138, 270), 0.8, PERSON), (BIKE, 0.5, MOTO)],
        id="person-walking-below-a-bike",
    ),
    pytest.param(
        [((102, 40, 138, 135), 0.8, PERSON), (BIKE, 0.5, MOTO)],
        [((102, 40, 138, 135), 0.8, PERSON), (BIKE, 0.5, MOTO)],
        id="person-far-above-a-bike",
    ),
    pytest.param([(RIDER, 0.8, PERSON), (BIKE, 0.3, CAR)], [(RIDER, 0.8, PERSON), (BIKE, 0.3, CAR)], id="person-on-car-box-no-fusion"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "expected"), RIDER_CASES)
def test_rider_fusion(given: list[tuple[Box, float, int]], expected: list[tuple[Box, float, int]]) -> None:
    assert sorted(merged(*given)) == sorted(expected)


def test_rider_fusion_off_keeps_both() -> None:
    got = merged((RIDER, 0.8, PERSON), (BIKE, 0.3, MOTO), riders=False)
    assert sorted(c for _, _, c in got) == [PERSON, MOTO]


def test_two_riders_each_join_the_bike_under_them() -> None:
    left, right = (0.0, 0.0), (300.0, 0.0)
    objs = []
    for dx, _ in (left, right):
        objs += [
            ((RIDER[0] + dx, RIDER[1], RIDER[2] + dx, RIDER[3]), 0.8, PERSON),
            ((BIKE[0] + dx, BIKE[1], BIKE[2] + dx, BIKE[3]), 0.4, MOTO),
        ]
    got = merged(*objs)
    assert sorted(b[0] for b, _, _ in got) == [100.0, 400.0] and {c for _, _, c in got} == {MOTO}


def test_rider_pairs_matrix() -> None:
    persons = np.array([RIDER, (300, 100, 336, 180)], np.float32)
    bikes = np.array([BIKE, (298, 140, 338, 200), (500, 140, 540, 200)], np.float32)
    np.testing.assert_array_equal(
        rider_pairs(persons, bikes, 0.3), [[True, False, False], [False, True, False]]
    )


VAN: Box = (50, 50, 150, 120)
GROUP_CASES = [
    pytest.param([(VAN, 0.7, CAR), ((52, 48, 151, 121), 0.4, TRUCK)], [(VAN, 0.7, CAR)], id="van-as-car-and-truck"),
    pytest.param([(VAN, 0.35, CAR), ((52, 48, 151, 121), 0.6, TRUCK)], [((52, 48, 151, 121), 0.6, TRUCK)], id="best-class-wins"),
    pytest.param([(VAN, 0.7, BUS), ((52, 48, 151, 121), 0.5, TRUCK)], [(VAN, 0.7, BUS)], id="bus-truck"),
    pytest.param(
        [(VAN, 0.7, CAR), ((150, 50, 250, 120), 0.6, TRUCK)],
        [(VAN, 0.7, CAR), ((150, 50, 250, 120), 0.6, TRUCK)],
        id="neighbours-stay-two",
    ),
    pytest.param(
        [(BIKE, 0.6, MOTO), ((101, 141, 141, 201), 0.4, BICYCLE)], [(BIKE, 0.6, MOTO)], id="moto-as-bicycle",
    ),
    pytest.param(
        [(VAN, 0.7, CAR), ((52, 48, 151, 121), 0.5, MOTO)],
        [(VAN, 0.7, CAR), ((52, 48, 151, 121), 0.5, MOTO)],
        id="other-groups-untouched",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("given", "expected"), GROUP_CASES)
def test_group_suppression(
    given: list[tuple[Box, float, int]], expected: list[tuple[Box, float, int]]
) -> None:
    assert sorted(merged(*given)) == sorted(expected)


def test_groups_are_configurable() -> None:
    pair = [(VAN, 0.7, CAR), ((52, 48, 151, 121), 0.4, TRUCK)]
    assert len(merged(*pair, groups=[])) == 2
    assert len(merged(*pair, groups=[["car", "truck"]], group_iou=0.95)) == 2
    assert len(merged(*pair, groups=[["car", "truck"]], group_iou=0.5)) == 1


def test_empty_and_unknown_classes_pass() -> None:
    merger = ObjectMerger.build(ObjectsConfig(), ("person", "car"))  # a model without two-wheelers
    assert len(merger.apply(Detections.empty())) == 0
    got = merger.apply(dets((VAN, 0.5, 1), ((52, 48, 151, 121), 0.4, 9)))
    assert sorted(got.class_ids.tolist()) == [1, 9]


@pytest.mark.parametrize(
    ("objects", "path"),
    [
        ({"groups": [["car", "truck"], ["truck", "bus"]]}, "cameras.c.objects.groups"),
        ({"groups": [["car", "lorry"]]}, "cameras.c"),
        ({"group_iou": 1.5}, "cameras.c.objects.group_iou"),
        ({"rider": True}, "cameras.c.objects.rider"),
    ],
)
def test_objects_config_errors_name_the_field(objects: dict[str, object], path: str) -> None:
    from edge.config import validate_config

    doc = {"node_id": "n", "cameras": [{"id": "c", "source": "x.mp4", "objects": objects}]}
    with pytest.raises(ConfigError) as err:
        validate_config(doc, "node.yaml")
    assert path in str(err.value)
    CameraConfig.model_validate({"id": "c", "source": "x.mp4"})  # the defaults are valid


@pytest.mark.parametrize(
    ("box", "aspect", "expected"),
    [
        ((100, 100, 125, 150), 0.8, MOTO),  # 25 x 50: a motorcycle head-on called car
        ((100, 100, 160, 150), 0.8, CAR),  # 60 x 50: a car
        ((100, 100, 139, 150), 0.8, CAR),  # 39 x 50 = 0.78 < 0.8 would flip; 0.7 keeps it a car
        ((100, 100, 125, 150), 0.0, CAR),  # off
    ],
)
def test_narrow_car_boxes_become_motorcycles(box: Box, aspect: float, expected: int) -> None:
    limit = 0.7 if box == (100, 100, 139, 150) else aspect
    got = merged((box, 0.6, CAR), narrow_car_aspect=limit)
    assert [c for _, _, c in got] == [expected]
    assert [c for _, _, c in merged((box, 0.6, TRUCK), narrow_car_aspect=limit)] == [TRUCK]


def test_group_suppression_is_greedy_along_a_chain() -> None:
    """A beats B, B would beat C, but B is gone, so C (not overlapping A enough) stays, as in NMS."""
    a, b, c = (0, 0, 100, 50), (20, 0, 120, 50), (40, 0, 140, 50)  # IoU a-b 0.67, b-c 0.67, a-c 0.43
    got = merged((a, 0.9, CAR), (b, 0.8, TRUCK), (c, 0.7, BUS))
    assert sorted(cls for _, _, cls in got) == [CAR, BUS]
