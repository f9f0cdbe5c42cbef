"""Settings both the node and the station read from YAML: secret references, TLS and the MQTT connection.

Secrets never live in the YAML: a file names an environment variable or a file (e.g. a systemd
credential) instead, and an inline password is refused with a message that says how to write it. The
node and the station extend `MqttSettings` with what only they need (the node's stats period, the
station's persistent session and shared subscription).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, model_validator

from common.yamlconf import Strict


def known_timezone(value: str) -> str:
    """An IANA zone name that this machine's zone database knows (schedules and local times need it)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(known_timezone)]


class SecretRef(Strict):
    """Where a secret comes from: an environment variable or a file (e.g. a systemd credential)."""

    env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable name"
    )
    file: str | None = Field(default=None, description="File whose content (stripped) is the secret")
    default: str | None = Field(
        default=None,
        description="Demo configs only: value used when the variable is unset (logged as a warning)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def resolve(self) -> str:
        """Read the secret; raises ValueError naming the variable or file when it is missing."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                if self.default is not None:
                    return self.default
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            return Path(os.path.expandvars(self.file)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror}") from exc

    def uses_default(self) -> bool:
        return self.env is not None and self.default is not None and self.env not in os.environ


class TlsSettings(Strict):
    ca_file: str | None = Field(default=None, description="CA certificate (PEM); system CAs when omitted")
    cert_file: str | None = Field(default=None, description="Client certificate (PEM)")
    key_file: str | None = Field(default=None, description="Client key (PEM)")
    insecure: bool = Field(default=False, description="Skip host name checks (testing only)")


def no_inline_secret(data: Any, *keys: str) -> Any:
    """Refuse `key: "text"` for secret keys, before field validation, with the way to write it."""
    if isinstance(data, dict):
        for key in keys:
            if isinstance(data.get(key), str):
                raise ValueError(
                    f"{key}: secrets are not read from the YAML; use {key}: {{env: NAME}} or {{file: PATH}}"
                )
    return data


class MqttSettings(Strict):
    """The broker connection; the reconnect delay doubles from `reconnect_min_s` up to `reconnect_max_s`."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT protocol version")
    topic_prefix: str = Field(
        default="roadwatch/v1", pattern=r"^[^#+]+$", description="Prefix of every topic (no wildcards)"
    )
    username: str | None = None
    password: SecretRef | None = Field(
        default=None, description="Password source: {env: NAME} or {file: PATH}"
    )
    tls: TlsSettings | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any) -> Any:
        return no_inline_secret(data, "password")
