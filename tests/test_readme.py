"""The README's command lines work as printed after the two set-up commands (`make demo`, `make test`).

Every line of the README's `bash` blocks that calls a make target or a program of `.venv/bin/` is
checked: the make target exists (`make -n`), and the program's subcommand answers `--help`. The
programs are taken from the virtualenv running the tests, which is `.venv` under `make test`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    """Lines of the README's bash blocks that start with `make` or `.venv/bin/`, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for raw in block.splitlines():
            line = re.sub(r"\s+#.*$", "", raw).strip()
            if line.startswith(("make ", ".venv/bin/")):
                out.append(line)
    return out


COMMANDS = readme_commands()


def test_the_readme_shows_commands_runnable_from_the_checkout() -> None:
    assert any(c.startswith(".venv/bin/roadwatch-edge check") for c in COMMANDS), COMMANDS
    assert {"make demo", "make test", "make test-export"} <= set(COMMANDS)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for bare in re.findall(r"^(roadwatch-(?:edge|central)|python -m) ", text, re.MULTILINE):
        pytest.fail(f"a README command starts with `{bare}`, which is not on PATH after set-up")
    for package in ("mosquitto", "ffmpeg", "rtsp-server-perl", "chromium", "postgresql"):
        assert f"`{package}`" in text, package
    assert "/api/login" in text and "Authorization: Bearer" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_answers_help(command: str) -> None:
    words = shlex.split(command.split(">", maxsplit=1)[0])
    if words[0] == "make":
        done = subprocess.run(["make", "-n", words[1]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return
    program = VENV_BIN / Path(words[0]).name
    assert program.exists(), f"{words[0]}: not installed in the virtualenv ({program})"
    if Path(words[0]).name == "python":
        args = [str(program), *words[1:3], "--help"]  # `python -m edge` or `python scripts/x.py`
    elif Path(words[0]).name == "pytest":
        args = [str(program), "--version"]
    else:
        args = [str(program), words[1], "--help"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage" in done.stdout.lower() or "pytest" in (done.stdout + done.stderr).lower()
