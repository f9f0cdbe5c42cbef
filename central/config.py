"""Aggregator configuration: pydantic models for the station's YAML file and `load_config`.

Like the edge, every model forbids unknown keys and `load_config` reports each problem as
`file: forwarding.rules[0].webhooks: reason` (the CLI exits 2 on it). Secrets never live in the YAML:
broker passwords and webhook secrets name an environment variable or a file; accounts carry a password
*hash* (`roadwatch-central hash-password`), which is not a secret. The one exception is the demo account,
whose password may come from an environment variable with a `default`, logged loudly at start-up.

YAML reading, error lines and the secret/TLS/MQTT settings are shared with the node through `common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from central.retention import RetentionSettings
from central.scope import ScopeSettings
from common.settings import MqttSettings, SecretRef, TimeZoneName, no_inline_secret
from common.yamlconf import ConfigError, Strict, read_yaml, validate_mapping
from contract.states import Phase

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
EXAMPLE = "configs/central.example.yaml"


class StationMqttSettings(MqttSettings):
    """The aggregator's broker connection: the shared settings plus its persistent session."""

    client_id: str = Field(
        default="roadwatch-central",
        min_length=1,
        max_length=128,
        description="Fixed client id: the broker keeps this session's queue while the aggregator is down. "
        "With a username the client id is the username (the shipped broker enforces it)",
    )
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        le=2**32 - 1,
        description="MQTT 5 session expiry: how long the broker queues for us",
    )
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="MQTT 5 shared subscription group: aggregators split the load ($share/<group>/...)",
    )
    max_clock_skew_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="Events dated later than receive time + this are rejected (counted as clock_skew)",
    )

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> StationMqttSettings:
        if self.shared_group is not None and self.protocol != "5":
            raise ValueError("shared_group: shared subscriptions need protocol '5'")
        return self


class StoreSettings(Strict):
    url: str = Field(
        default="sqlite:///var/central.sqlite",
        description="sqlite:///relative/path, sqlite:////absolute/path, or"
        " postgresql://user@host:port/dbname (the password goes in `password`, never in the URL)",
    )
    password: SecretRef | None = Field(
        default=None,
        description="PostgreSQL only: where the database password comes from; without it libpq's"
        " PGPASSWORD / ~/.pgpass apply",
    )
    snapshots_dir: str = Field(
        default="var/snapshots", description="Content-addressed JPEG store (<dir>/ab/cdef...jpg)"
    )
    clips_dir: str | None = Field(
        default=None,
        description="Content-addressed event clips (<dir>/ab/cdef...mp4); default: `clips` beside snapshots_dir",
    )
    max_partial_clip_mb: float = Field(
        default=256.0, gt=0, le=65536, description="Per node: clip uploads being received at once, in MB"
    )
    queue_max: int = Field(
        default=20000, ge=100, le=10_000_000, description="Messages buffered between MQTT and the writer"
    )
    batch_max: int = Field(default=500, ge=1, le=10000, description="Largest write transaction, in messages")

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any) -> Any:
        return no_inline_secret(data, "password")

    @property
    def clips_path(self) -> Path:
        return Path(self.clips_dir) if self.clips_dir else Path(self.snapshots_dir).parent / "clips"

    @field_validator("url")
    @classmethod
    def _known_url(cls, value: str) -> str:
        if value.startswith(("postgres://", "postgresql://")):
            parts = urlsplit(value)
            if parts.password is not None:
                raise ValueError("no password in the URL; use store.password: {env: NAME} or {file: PATH}")
            if not parts.hostname or not parts.path.strip("/"):
                raise ValueError("expected postgresql://user@host:port/dbname")
            return value
        if not value.startswith("sqlite:///") or len(value) <= len("sqlite:///"):
            raise ValueError("expected sqlite:///path/to/file.sqlite or postgresql://user@host:port/dbname")
        return value

    @model_validator(mode="after")
    def _password_needs_postgres(self) -> StoreSettings:
        if self.password is not None and not self.is_postgres:
            raise ValueError("password: only a postgresql:// store takes a password")
        return self

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))

    @property
    def target(self) -> Path | str:
        """What `Store` opens: the SQLite file or the PostgreSQL URL."""
        return self.url if self.is_postgres else self.sqlite_path


class HealthSettings(Strict):
    offline_alert_after_s: float = Field(
        default=60.0, ge=0, description="Alert when a node is offline this long"
    )
    stream_lost_alert_after_s: float = Field(
        default=120.0, ge=0, description="Alert when a stream is lost this long"
    )
    check_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="How often node health is checked"
    )


class HttpSettings(Strict):
    host: str = Field(default="127.0.0.1", min_length=1, description="Bind address of the API and dashboard")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port; 0 picks a free one (tests)")
    session_ttl_h: float = Field(default=12.0, gt=0, le=24 * 30, description="Lifetime of a login session")
    cookie_secure: bool = Field(default=False, description="Mark the session cookie Secure (behind HTTPS)")
    login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed logins per (account, address) per window"
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, le=10000, description="Failed logins per address over all accounts per window"
    )
    login_window_s: float = Field(default=300.0, gt=0, description="Window of the failed-login limit")
    max_body_kb: int = Field(
        default=64, ge=1, le=65536, description="Largest request body; larger ones get 413 before auth"
    )
    api_docs: bool = Field(
        default=False,
        description="Serve Swagger UI at /docs; it loads from a CDN, so only where browsers reach the internet",
    )


class MetricsSettings(Strict):
    """Prometheus endpoint; on localhost by default, like the edge node's (which uses 9108)."""

    enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics")
    host: str = Field(default="127.0.0.1", min_length=1, description="Bind address; localhost by default")
    port: int = Field(default=9109, ge=0, le=65535, description="TCP port; 0 picks a free one (tests)")


Role = Literal["viewer", "operator", "admin"]


class Account(Strict):
    """An operator account. `password_hash` comes from `roadwatch-central hash-password`."""

    username: str = Field(min_length=1, max_length=64, pattern=NAME_PATTERN)
    role: Role = "viewer"
    password_hash: str | None = Field(default=None, description="scrypt$... or pbkdf2_sha256$... hash string")
    password: SecretRef | None = Field(default=None, description="Demo accounts: {env: NAME, default: ...}")
    scope: ScopeSettings | None = Field(default=None, description="Nodes/cameras it sees (none: all)")

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any) -> Any:
        return no_inline_secret(data, "password")

    @model_validator(mode="after")
    def _one_source(self) -> Account:
        if (self.password_hash is None) == (self.password is None):
            raise ValueError("give exactly one of 'password_hash' or 'password'")
        if self.password_hash is not None and not self.password_hash.startswith(
            ("scrypt$", "pbkdf2_sha256$")
        ):
            raise ValueError("password_hash: not a hash from `roadwatch-central hash-password`")
        return self


class ApiToken(Strict):
    """A static API token for machines; only its sha256 is configured (`hash-password --token`)."""

    name: str = Field(min_length=1, max_length=64, pattern=NAME_PATTERN)
    role: Role = "viewer"
    token_hash: str = Field(pattern=r"^sha256\$[0-9a-f]{64}$", description="sha256$<hex> of the token")
    scope: ScopeSettings | None = Field(default=None, description="Nodes/cameras it sees (none: all)")


class Webhook(Strict):
    url: str = Field(pattern=r"^https?://", description="Receiver URL; the JSON body is POSTed")
    secret: SecretRef | None = Field(default=None, description="HMAC-SHA256 key for X-Roadwatch-Signature")
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    max_attempts: int = Field(
        default=8, ge=1, le=100, description="Dead-letter after this many failed attempts"
    )
    backoff_s: float = Field(
        default=2.0, gt=0, le=3600, description="First retry delay; doubles each attempt"
    )
    backoff_max_s: float = Field(default=900.0, gt=0, le=86400)

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any) -> Any:
        return no_inline_secret(data, "secret")


_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class TimeWindow(Strict):
    """Local time of day; `from` after `to` wraps midnight (22:00 -> 05:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: str = Field(alias="from", pattern=_HHMM)
    end: str = Field(alias="to", pattern=_HHMM)


class ForwardRule(Strict):
    """Select events and send them on; empty selectors match everything."""

    name: str = Field(min_length=1, max_length=64, pattern=NAME_PATTERN)
    kinds: list[str] = Field(default_factory=list, max_length=64)
    cameras: list[str] = Field(default_factory=list, max_length=256, description="Camera ids, or node/camera")
    classes: list[str] = Field(default_factory=list, max_length=80)
    phases: list[Phase] = Field(default_factory=lambda: list[Phase](["instant", "start"]))
    time_of_day: TimeWindow | None = None
    throttle_s: float = Field(
        default=0.0, ge=0, le=86400, description="At most one per (camera, event rule) per window"
    )
    mqtt: bool = Field(default=True, description="Publish to <prefix>/alerts/<node>/<camera>/<kind>")
    webhooks: list[str] = Field(default_factory=list, description="Names of webhooks to call")


class ForwardingSettings(Strict):
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    rules: list[ForwardRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refs(self) -> ForwardingSettings:
        seen: set[str] = set()
        for rule in self.rules:  # named by their name, as the technician reads the file
            if rule.name in seen:
                raise ValueError(f"rules[{rule.name}].name: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
            for hook in rule.webhooks:
                if hook not in self.webhooks:
                    raise ValueError(
                        f"rules[{rule.name}].webhooks: no webhook named {hook!r} (have {sorted(self.webhooks)})"
                    )
        return self


class SignatureSettings(Strict):
    policy: Literal["reject", "flag", "off"] = Field(
        default="flag",
        description="Unsigned or badly signed events: reject them, store them flagged, or do not check",
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        description="Node id -> its Ed25519 public key, base64 of the 32 raw bytes (printed by scripts/install_edge.sh)",
    )
    workers: int | None = Field(
        default=None,
        ge=0,
        le=32,
        description="Processes verifying signatures beside the aggregator; unset: one per CPU beyond the "
        "first (none on one CPU), at most 4; 0: verify in the aggregator itself (central/verifier.py)",
    )

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        from central.signatures import load_public_key

        for node, b64 in value.items():
            try:
                load_public_key(b64)
            except ValueError as exc:
                raise ValueError(f"{node}: {exc}") from exc
        return value


class CentralConfig(Strict):
    timezone: TimeZoneName = Field(
        default="Asia/Ho_Chi_Minh", description="IANA zone for time-of-day rules and alert texts"
    )
    mqtt: StationMqttSettings = Field(default_factory=StationMqttSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    accounts: list[Account] = Field(default_factory=list)
    api_tokens: list[ApiToken] = Field(default_factory=list)
    forwarding: ForwardingSettings = Field(default_factory=ForwardingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    signatures: SignatureSettings = Field(default_factory=SignatureSettings)

    @model_validator(mode="after")
    def _unique_names(self) -> CentralConfig:
        for label, names in (
            ("accounts", [a.username for a in self.accounts]),
            ("api_tokens", [t.name for t in self.api_tokens]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{label}: duplicate name(s) {sorted(dup)}")
        return self


def validate_config(data: Any, source: str = "<config>") -> CentralConfig:
    """Validate parsed YAML; raise ConfigError with one line per problem."""
    cfg = validate_mapping(CentralConfig, {} if data is None else data, source, EXAMPLE)
    problems = [f"{source}: {path}: {msg}" for path, msg in check_secrets(cfg)]
    if problems:
        raise ConfigError(problems)
    return cfg


def check_secrets(cfg: CentralConfig) -> list[tuple[str, str]]:
    """Secrets the file names must exist now, not at the first webhook at 3 a.m."""
    refs: list[tuple[str, SecretRef | None]] = [("mqtt.password", cfg.mqtt.password)]
    refs.append(("store.password", cfg.store.password))
    refs += [(f"accounts[{i}].password", a.password) for i, a in enumerate(cfg.accounts)]
    refs += [(f"forwarding.webhooks.{name}.secret", w.secret) for name, w in cfg.forwarding.webhooks.items()]
    out: list[tuple[str, str]] = []
    for path, ref in refs:
        if ref is None:
            continue
        try:
            ref.resolve()
        except ValueError as exc:
            out.append((path, str(exc)))
    return out


def load_config(path: str | Path) -> CentralConfig:
    """Read and validate the aggregator's YAML file; raise ConfigError with `file: field: reason` lines."""
    path = Path(path)
    return validate_config(read_yaml(path), str(path))
