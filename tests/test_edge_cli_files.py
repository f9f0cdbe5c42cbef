"""`check` refuses what `run` would refuse, and `run` never shows a traceback for a bad file.

Each case is a real config naming real files (a shared clip and model, a truncated copy of a clip, a file
of random bytes, a directory, a path that does not exist), run as `python -m edge` in a subprocess so the
exit code and everything printed are what a technician sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # `{data}` stays for the node to expand; `{shared}` is the real data directory
    source: str  # `{tmp}`: the test's folder, where the bad files are made
    data_dir: str  # what ROADWATCH_DATA_DIR is set to: "shared" or "empty"
    code: int
    says: tuple[str, ...]


MODEL = "{shared}/models/yolox_nano.onnx"
CLIP = "{shared}/videos/vtest.avi"

CHECK_CASES = [
    Case("model under {data} missing", "{data}/models/yolox_nano.onnx", CLIP, "empty", 2,
         ("model.path: model file {tmp}/empty/models/yolox_nano.onnx does not exist", "ROADWATCH_DATA_DIR")),
    Case("clip under {data} missing", MODEL, "{data}/videos/vtest.avi", "empty", 2,
         ("cameras.cam.source: video file {tmp}/empty/videos/vtest.avi does not exist", "ROADWATCH_DATA_DIR")),
    Case("file source missing under ~", MODEL, "~/clips/gate.mp4", "shared", 2,
         ("cameras.cam.source: video file {tmp}/home/clips/gate.mp4 does not exist",)),
    Case("file source is a directory", MODEL, "{tmp}", "shared", 2,
         ("cameras.cam.source: video file {tmp} is a directory, not a file",)),
    Case("garbage video file", MODEL, "{tmp}/garbage.mp4", "shared", 2,
         ("cameras.cam.source: video file {tmp}/garbage.mp4 cannot be decoded",)),
    Case("mp4 cut before its index", MODEL, "{tmp}/cut.mp4", "shared", 2,
         ("cameras.cam.source: video file {tmp}/cut.mp4 cannot be decoded",)),
    Case("clip under ~ found and shown expanded", MODEL, "~/vtest.avi", "shared", 0,
         ("OK", "{tmp}/home/vtest.avi @")),
    Case("model under {data} shown expanded", "{data}/models/yolox_nano.onnx", CLIP, "shared", 0,
         ("model {shared}/models/yolox_nano.onnx",)),
    Case("network source not contacted", MODEL, "rtsp://192.0.2.1:554/stream", "shared", 0,
         ("OK", "not contacted by check (network or USB): cam.source")),
]  # fmt: skip

RUN_CASES = [
    Case("garbage video file", MODEL, "{tmp}/garbage.mp4", "shared", 2,
         ("cameras.cam.source: video file {tmp}/garbage.mp4 cannot be decoded",)),
    Case("model under {data} missing", "{data}/models/yolox_nano.onnx", CLIP, "empty", 2,
         ("model.path: model file", "ROADWATCH_DATA_DIR")),
    Case("file source missing", MODEL, "{tmp}/nothing.avi", "shared", 2,
         ("cameras.cam.source: video file {tmp}/nothing.avi does not exist",)),
    Case("truncated clip says where it ended", MODEL, "{tmp}/cut.avi", "shared", 0,
         ("video file {tmp}/cut.avi ended at frame ", "of the 795 its header announces", "truncated")),
]  # fmt: skip


@pytest.fixture
def files(tmp_path: Path, shared_dir: Path) -> Path:
    """The bad files: random bytes named .mp4, an mp4 and an avi cut short, a home folder with a clip."""
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(100_000))
    mp4 = (shared_dir / "videos" / "intersection_cctv.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(mp4[: len(mp4) // 4])  # its index (moov) is at the end
    avi = (shared_dir / "videos" / "vtest.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(avi[:500_000])  # AVI plays without its index: ~45 of 795 frames
    (tmp_path / "empty").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "vtest.avi").symlink_to((shared_dir / "videos" / "vtest.avi").resolve())
    return tmp_path


def _run(case: Case, command: list[str], tmp: Path, shared: Path) -> tuple[int, str, str]:
    def fill(text: str) -> str:
        return text.replace("{shared}", str(shared)).replace("{tmp}", str(tmp))

    cfg = tmp / "node.yaml"
    cfg.write_text(
        f"""\
node_id: files-test
model: {{path: "{fill(case.model)}", intra_op_threads: 1}}
metrics: {{enabled: false}}
outbox: {{path: "{tmp}/outbox.sqlite"}}
cameras:
  - id: cam
    source: "{fill(case.source)}"
    detect_fps: 1
""",
        encoding="utf-8",
    )
    data = shared if case.data_dir == "shared" else tmp / "empty"
    env = {**os.environ, "ROADWATCH_DATA_DIR": str(data), "HOME": str(tmp / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "edge", *command, str(cfg)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr, fill("\n".join(case.says))


@pytest.mark.parametrize("case", CHECK_CASES, ids=[c.name for c in CHECK_CASES])
def test_check(case: Case, files: Path, shared_dir: Path) -> None:
    code, out, says = _run(case, ["check"], files, shared_dir.resolve())
    assert code == case.code, out
    for text in says.splitlines():
        assert text in out, out
    assert "{data}" not in out.replace("{data} is the data directory", "")
    assert "Traceback" not in out


@pytest.mark.parametrize("case", RUN_CASES, ids=[c.name for c in RUN_CASES])
def test_run(case: Case, files: Path, shared_dir: Path) -> None:
    code, out, says = _run(case, ["run", "--no-mqtt"], files, shared_dir.resolve())
    assert code == case.code, out
    for text in says.splitlines():
        assert text in out, out
    assert "Traceback" not in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file; the permission check needs a user")
def test_check_unreadable_clip(files: Path, shared_dir: Path) -> None:
    clip = files / "secret.avi"
    clip.write_bytes((shared_dir / "videos" / "vtest.avi").read_bytes()[:100_000])
    clip.chmod(0)
    case = Case("unreadable", MODEL, "{tmp}/secret.avi", "shared", 2, ())
    code, out, _ = _run(case, ["check"], files, shared_dir.resolve())
    assert code == 2
    assert f"cameras.cam.source: video file {clip} cannot be read (permission denied)" in out
