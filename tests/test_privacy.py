"""Privacy masks: masked pixels never leave the capture stage, and nothing in a mask raises an event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from common.yamlconf import ConfigError
from edge.analyzer import CameraAnalyzer
from edge.camera_config import COCO_NAMES, CameraConfig
from edge.capture.files import grab_frame, iter_file_frames
from edge.capture.privacy import FrameMasker, PrivacyMask
from edge.config import ModelSettings
from edge.draw import draw_geometry, event_jpeg
from edge.events import EventFactory
from edge.records import Detections
from edge.vision.detector import Detector
from edge.vision.filters import ClassFilter

PERSON, CAR = COCO_NAMES.index("person"), COCO_NAMES.index("car")


def camera(**kw: Any) -> CameraConfig:
    return CameraConfig.model_validate({"id": "yard", "source": "clip.mp4", **kw})


SQUARE = {"points": [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]}


@pytest.mark.parametrize(
    ("settings", "size", "inside", "outside"),
    [
        # fractions of the frame: the centre is masked, the corners are not
        ({"privacy_masks": {"yard": SQUARE}}, (100, 80), [(50, 40), (30, 25)], [(5, 5), (90, 70), (10, 40)]),
        # pixels of a reference size scale with the stream: 200x160 reference on a 100x80 frame
        (
            {
                "reference_size": [200, 160],
                "privacy_masks": {"win": {"points": [[0, 0], [100, 0], [100, 80], [0, 80]]}},
            },
            (100, 80),
            [(10, 10), (45, 35)],
            [(60, 10), (10, 50), (99, 79)],
        ),
        # two masks, a triangle and a square
        (
            {
                "privacy_masks": {
                    "a": SQUARE,
                    "b": {"points": [[0.0, 0.9], [0.1, 0.9], [0.0, 1.0]]},
                }
            },
            (200, 100),
            [(100, 50), (2, 95)],
            [(190, 5), (20, 5)],
        ),
    ],
)
def test_paint_and_cover_agree(
    settings: dict[str, Any], size: tuple[int, int], inside: list[Any], outside: list[Any]
) -> None:
    cam = camera(**settings)
    w, h = size
    image = np.full((h, w, 3), 200, np.uint8)
    mask = PrivacyMask(cam, w, h)
    painted = mask.paint(image)
    covered = mask.covers(np.array(inside + outside, np.float64))
    assert covered.tolist() == [True] * len(inside) + [False] * len(outside)
    for x, y in inside:
        assert painted[y, x].tolist() == [0, 0, 0]
    for x, y in outside:
        assert painted[y, x].tolist() == [200, 200, 200]
    # every pixel the lookup calls covered is black: nothing covered leaks
    assert not painted[mask.mask].any()


def test_masker_without_masks_is_identity_and_rebuilds_on_resize() -> None:
    plain = FrameMasker(camera())
    image = np.full((10, 10, 3), 7, np.uint8)
    assert plain(image) is image and int(image.sum()) == 7 * 300
    masker = FrameMasker(camera(privacy_masks={"yard": SQUARE}))
    small = masker(np.full((40, 40, 3), 255, np.uint8))
    big = masker(np.full((400, 400, 3), 255, np.uint8))
    assert small[20, 20].tolist() == [0, 0, 0] and big[200, 200].tolist() == [0, 0, 0]
    assert big[20, 20].tolist() == [255, 255, 255]


def _dets(*rows: tuple[int, tuple[float, float, float, float]]) -> Detections:
    return Detections(
        np.array([r[1] for r in rows], np.float32).reshape(-1, 4),
        np.full(len(rows), 0.9, np.float32),
        np.array([r[0] for r in rows], np.int64),
    )


def test_filter_drops_objects_standing_in_a_mask() -> None:
    cam = camera(privacy_masks={"yard": SQUARE})
    flt = ClassFilter.from_camera(cam, COCO_NAMES, 100, 100)
    d = _dets(
        (PERSON, (40, 30, 50, 60)),  # feet at (45, 60): in the yard
        (PERSON, (40, 60, 50, 90)),  # head in the yard, feet at (45, 90) outside: a passer-by in front
        (CAR, (0, 0, 20, 20)),  # nowhere near
    )
    kept = flt.apply(d)
    assert kept.xyxy[:, 3].tolist() == [90.0, 20.0]


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ({"yard": {"points": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]}}, "privacy mask polygon has no area"),
        ({"yard": {"points": [[0.1, 0.1], [1.5, 0.2], [0.3, 0.9]]}}, "privacy_masks.yard: point [1.5, 0.2]"),
        ({"yard": {"points": [[0.1, 0.1], [0.2, 0.2]]}}, "at least 3 items"),
    ],
)
def test_bad_masks_are_refused(masks: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        camera(privacy_masks=masks)


def test_bad_mask_in_a_node_file_names_the_field(tmp_path: Path) -> None:
    from edge.config import load_config

    path = tmp_path / "node.yaml"
    path.write_text(
        "node_id: n1\nmodel: {path: m.onnx}\nmqtt: {enabled: false}\ncameras:\n"
        "  - id: yard\n    source: clip.mp4\n    privacy_masks: {house: {points: [[0, 0], [1, 0]]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "cameras.yard.privacy_masks.house.points" in str(err.value)


@pytest.mark.integration
def test_masked_pixels_never_leave_and_raise_nothing(shared_dir: Path, yolo11_path: Path) -> None:
    """vtest.avi: people walk across the lower half. An always-armed intrusion zone over that half raises
    events; the same zone under a privacy mask raises none, and every frame, snapshot and drawn picture
    is black there."""
    clip = shared_dir / "videos" / "vtest.avi"
    lower = {"points": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]}
    base: dict[str, Any] = {
        "id": "lawn",
        "source": str(clip),
        "zones": {"lower": lower},
        "rules": [{"kind": "intrusion", "name": "no-entry", "zone": "lower", "classes": ["person"]}],
        "motion": {"enabled": False},
        "health": {"enabled": False},
    }
    detector = Detector(ModelSettings(path=str(yolo11_path), intra_op_threads=1))

    def run(cam: CameraConfig) -> tuple[int, list[Any]]:
        analyzer = CameraAnalyzer(cam, detector, EventFactory("n1", cam.id, "UTC"), "UTC")
        events, frames = [], []
        for frame in iter_file_frames(cam, max_frames=120):
            events.extend(analyzer.process(frame).events)
            frames.append(frame)
        return sum(e.kind == "intrusion" for e in events), frames

    open_count, _ = run(CameraConfig.model_validate(base))
    assert open_count >= 1, "the unmasked zone must see people, or the masked run proves nothing"

    masked_cam = CameraConfig.model_validate({**base, "privacy_masks": {"houses": lower}})
    masked_count, frames = run(masked_cam)
    assert masked_count == 0
    mask = PrivacyMask(masked_cam, frames[0].width, frames[0].height)
    for frame in frames:
        assert not frame.image[mask.mask].any()
    # snapshots are encoded from the frame: decode one and look at the masked half (JPEG noise aside)
    jpeg = event_jpeg(frames[60].image, (300.0, 300.0, 340.0, 400.0), "intrusion", 640, 90)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    lower_half = np.asarray(decoded, np.uint8)[decoded.shape[0] // 2 + 8 :, :, :]
    assert float(lower_half.mean()) < 6.0
    grabbed = grab_frame(masked_cam, index=10)
    assert grabbed is not None and not grabbed.image[mask.mask].any()
    # the drawn set-up picture depends on no masked pixel: noise under the mask draws the same picture
    noisy = grabbed.image.copy()
    noisy[mask.mask] = np.random.default_rng(1).integers(0, 255, (int(mask.mask.sum()), 3), dtype=np.uint8)
    drawn = draw_geometry(grabbed.image, masked_cam)
    assert np.array_equal(drawn, draw_geometry(FrameMasker(masked_cam)(noisy), masked_cam))
