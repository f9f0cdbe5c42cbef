"""Detection bands around counting lines (`detect_line_band`): where regions go without drawing them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from edge.camera_config import CameraConfig
from edge.vision.regions import line_bands, plan_regions

FRAME = (1024.0, 576.0)
Seg = tuple[tuple[float, float], tuple[float, float]]
S2 = math.sqrt(2.0)


@pytest.mark.parametrize(
    ("line", "across", "along", "expected"),
    [
        pytest.param(((345, 420), (835, 420)), 120, 25, (320, 300, 860, 540), id="far-line-gives-the-drawn-band"),
        pytest.param(((300, 495), (900, 495)), 120, 25, (275, 375, 925, 576), id="near-line-clipped-at-bottom"),
        pytest.param(((900, 495), (300, 495)), 120, 25, (275, 375, 925, 576), id="direction-does-not-matter"),
        pytest.param(((500, 100), (500, 300)), 50, 10, (450, 90, 550, 310), id="vertical-line-across-is-x"),
        pytest.param(
            ((100, 100), (200, 200)), 10 * S2, 0, (90, 90, 210, 210), id="diagonal-box-of-the-tilted-band"
        ),
        pytest.param(((0, 0), (1024, 0)), 40, 30, (0, 0, 1024, 40), id="edge-line-clipped-to-frame"),
    ],
)  # fmt: skip
def test_band_around_one_line(line: Seg, across: float, along: float, expected: tuple[float, ...]) -> None:
    (got,) = line_bands([line], across, along, FRAME)
    assert got == pytest.approx(expected, abs=1e-6)


def test_one_band_per_line_and_none_without_lines() -> None:
    lines = [((345, 420), (835, 420)), ((300, 495), (900, 495))]
    assert len(line_bands(lines, 120, 25, FRAME)) == 2
    assert line_bands([], 120, 25, FRAME) == []


def test_band_tiles_follow_the_model_input() -> None:
    """The near band (650x201 px) is two tiles for both a 320 and a 416 px model at scale 0.75."""
    (band,) = line_bands([((300, 495), (900, 495))], 120, 25, FRAME)
    for model in ((320, 320), (416, 416)):
        tiles = plan_regions([band], (1.0, 1.0), (1024, 576), model, 0.75)
        assert len(tiles) == 2
        assert all(min(model[0] / (t[2] - t[0]), model[1] / (t[3] - t[1])) >= 0.74 for t in tiles)


BASE: dict[str, Any] = {"id": "c", "source": "x.mp4", "reference_size": [1024, 576]}
LINES = {"count": {"points": [[345, 420], [835, 420]]}}


@pytest.mark.parametrize(
    ("extra", "regions", "error"),
    [
        pytest.param({}, [], None, id="off-by-default"),
        pytest.param({"lines": LINES, "detect_line_band": [120, 25]}, [(320, 300, 860, 540)], None, id="derived"),
        pytest.param(
            {"lines": LINES, "detect_line_band": [120, 25], "detect_regions": [[320, 300, 860, 540]]},
            [(320, 300, 860, 540)], None, id="same-regions-written-out-is-accepted",
        ),
        pytest.param(
            {"lines": LINES, "detect_line_band": [120, 25], "detect_regions": [[0, 0, 100, 100]]},
            None, "set it or detect_regions", id="both-differ-is-an-error",
        ),
        pytest.param({"detect_line_band": [120, 25]}, None, "no lines", id="no-lines-is-an-error"),
        pytest.param({"lines": LINES, "detect_line_band": [0, 25]}, None, "detect_line_band", id="zero-across"),
        pytest.param({"lines": LINES, "detect_line_band": [120, -1]}, None, "detect_line_band", id="negative"),
    ],
)  # fmt: skip
def test_detect_line_band_config(extra: dict[str, Any], regions: list[Any] | None, error: str | None) -> None:
    if error:
        with pytest.raises(ValueError, match=error):
            CameraConfig.model_validate({**BASE, **extra})
        return
    cam = CameraConfig.model_validate({**BASE, **extra})
    assert cam.detect_regions == regions
    # A dumped config validates to the same regions (the derived list is idempotent).
    assert CameraConfig.model_validate(cam.model_dump()).detect_regions == regions
