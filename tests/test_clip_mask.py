"""`mask_clips: true`: a clip re-encoded with the privacy masks painted, on real H.264 video.

Copied packets (the default) are the camera's own and carry no mask; these tests prove that with the
option on, the pixels of a masked yard are black in every decoded frame of the stored clip, the rest of
the picture is still there, and the unmasked intermediate never stays on the node's disk."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_h264_camera

from edge.camera_config import CameraConfig
from edge.capture.clipmask import mask_clip, mask_overlay, probe_size
from edge.capture.clips import Clip, ClipStore
from edge.capture.clipwriter import ClipRequest, ClipWorker
from edge.capture.recorder import ClipRecorder, RecorderSettings
from edge.config import NodeConfig

pytestmark = [pytest.mark.integration]

YARD = [[0, 0], [160, 0], [160, 120], [0, 120]]  # the top-left quarter of a 320x240 picture
INSIDE = (slice(8, 112), slice(8, 152))  # the yard less a margin for chroma subsampling and blocks
OUTSIDE = (slice(128, 240), slice(168, 320))


def _camera(mask_clips: bool = True, masks: bool = True) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "gate",
            "source": "cam.mp4",
            "realtime": True,
            "reference_size": [320, 240],
            "privacy_masks": {"yard": {"points": YARD}} if masks else {},
            "clips": {"enabled": True, "mask_clips": mask_clips},
        }
    )


@pytest.fixture(scope="module")
def small_camera(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("cam") / "cam.mp4"
    return make_h264_camera(
        shared_dir / "videos" / "intersection_cctv.mp4", out, "scale=320:240,fps=10,trim=duration=4"
    )


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _assert_masked(frames: list[np.ndarray]) -> None:
    assert frames
    for frame in frames:
        assert frame.shape == (240, 320, 3)
        assert int(frame[INSIDE].max()) <= 24  # black, give or take the encoder
        assert float(frame[OUTSIDE].mean()) > 30  # the road is still there


def test_the_overlay_is_opaque_exactly_on_the_mask(tmp_path: Path) -> None:
    png = mask_overlay(_camera(), 640, 480, tmp_path / "m.png")  # the mask scales to the clip's size
    rgba = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert rgba is not None
    assert rgba.shape == (480, 640, 4)
    assert (
        (rgba[:230, :310, 3] == 255).all() and (rgba[250:, :, 3] == 0).all() and (rgba[:, 330:, 3] == 0).all()
    )
    assert (rgba[..., :3] == 0).all()


def test_a_re_encoded_clip_has_the_masked_pixels_painted(small_camera: Path, tmp_path: Path) -> None:
    source = _frames(small_camera)
    assert float(source[0][INSIDE].mean()) > 30  # the yard is visible in the camera's own packets
    out = mask_clip(small_camera, tmp_path / "masked.mp4", _camera())
    assert probe_size(out) == (320, 240)
    masked = _frames(out)
    assert abs(len(masked) - len(source)) <= 1
    _assert_masked(masked)
    assert abs(out.stat().st_mtime - small_camera.stat().st_mtime) < 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masked.mp4"]  # no .part, no mask picture


def test_the_recorder_gets_the_masks_only_when_asked_and_there_are_masks(tmp_path: Path) -> None:
    def mask_of(camera: CameraConfig) -> CameraConfig | None:
        from edge.capture.eventclips import EventClips

        cfg = NodeConfig.model_validate(
            {
                "node_id": "n",
                "model": {"path": "m.onnx"},
                "clip_store": {"path": str(tmp_path)},
                "cameras": [camera.model_dump()],
            }
        )
        clips = EventClips.build(cfg)
        assert clips is not None
        return clips.recorders["gate"].settings.mask

    assert mask_of(_camera()) is not None
    assert mask_of(_camera(mask_clips=False)) is None
    assert mask_of(_camera(masks=False)) is None


@pytest.mark.slow
def test_the_worker_stores_only_the_masked_clip(small_camera: Path, tmp_path: Path) -> None:
    settings = RecorderSettings(str(small_camera), live=False, keep_s=40.0, mask=_camera())
    rec = ClipRecorder("gate", settings, tmp_path / "ring")
    store = ClipStore(tmp_path / "clips", 10**9, 3600.0)
    worker = ClipWorker({"gate": rec}, store)
    rec.start()
    try:
        time.sleep(3.5)
        event_ts = time.time()
        worker.request(ClipRequest("ev-1", "gate", event_ts, 2.0, 2.0))
        clips: list[Clip] = []
        deadline = time.time() + 40
        while not clips and time.time() < deadline:
            clips = worker.step()
            time.sleep(0.3)
    finally:
        rec.stop()
    assert len(clips) == 1, worker.failures
    clip = clips[0]
    assert clip.path == store.path_for("ev-1") and clip.bytes == clip.path.stat().st_size
    assert clip.start <= event_ts <= clip.start + clip.duration_s + 0.5
    _assert_masked(_frames(clip.path))
    assert not list((tmp_path / "clips" / "work").glob("*"))  # the unmasked cut is gone
