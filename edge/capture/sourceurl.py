"""Where a camera stream or model file is: the data directory and secrets in stream URLs.

`{data}` in a path or URL names the shared data directory, so configs name no machine path. Camera
passwords never live in the YAML: a URL says `${CAM_GATE_PASSWORD}` and the value is read from the
environment only at the moment the stream is opened, so it never appears in a log line or a summary.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

DATA_DIR_ENV = "ROADWATCH_DATA_DIR"
DEFAULT_DATA_DIR = "../shared"


def data_dir() -> Path:
    """The directory of shared models and clips: $ROADWATCH_DATA_DIR, else ../shared."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def expand_path(value: str) -> str:
    """Replace `{data}` in a path or URL by the data directory, so configs name no machine path, and a
    leading `~` by the home directory, as a shell would (a technician writes `~/clips/gate.mp4`)."""
    if "{data}" in value:
        value = value.replace("{data}", str(data_dir()))
    return os.path.expanduser(value) if value.startswith("~") else value


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def env_refs(value: str) -> list[str]:
    """Names of the `${NAME}` environment references in a source URL."""
    return _ENV_REF.findall(value)


def expand_source(value: str) -> str:
    """`{data}` and `${NAME}` (environment) expanded: camera passwords stay out of the YAML, e.g.
    `rtsp://viewer:${CAM_GATE_PASSWORD}@10.0.0.21/...`. Raises ValueError for an unset variable."""

    def _env(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REF.sub(_env, expand_path(value))


_PASSWORD_PARAMS = {"password", "passwd", "pwd", "pass"}


def has_inline_password(url: str) -> bool:
    """Whether a stream URL carries a literal password (in `user:pw@` or a `password=` parameter) rather
    than a `${NAME}` reference."""
    parts = urlsplit(url)
    if not parts.scheme or ("@" not in parts.netloc and not parts.query):
        return False
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        secret = userinfo.split(":", 1)[1]
        if secret and not _ENV_REF.fullmatch(secret):
            return True
    for key, secret in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _PASSWORD_PARAMS and secret and not _ENV_REF.fullmatch(secret):
            return True
    return False
