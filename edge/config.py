"""Node configuration: pydantic models for the technician's YAML file and `load_config`.

Every model forbids unknown keys (a typo is an error, never a silent default) and every field has a
description and bounds, so `roadwatch-edge schema` gives editors a useful JSON Schema. `load_config` turns
YAML and validation problems into one line per problem, `file: cameras.gate.source: reason`, and raises
`ConfigError`; the CLI exits with code 2 on it so systemd does not restart-loop on a bad file.

Secrets never live in the YAML: the file names an environment variable or a file that holds them.
Coordinates of lines and zones are fractions of the frame (0..1), or pixels of a declared
`reference_size`, so they survive a change of stream resolution.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.rules.settings import DEFAULT_CLASSES, RuleConfig

DATA_DIR_ENV = "ROADWATCH_DATA_DIR"
DEFAULT_DATA_DIR = "../shared"

COCO_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


class ConfigError(Exception):
    """A configuration file that cannot be used; `lines` holds one `file: path: reason` per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def data_dir() -> Path:
    """The directory of shared models and clips: $ROADWATCH_DATA_DIR, else ../shared."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def expand_path(value: str) -> str:
    """Replace `{data}` in a path or URL by the data directory, so configs name no machine path."""
    return value.replace("{data}", str(data_dir())) if "{data}" in value else value


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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Point = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]


class LineDef(Strict):
    """A counting segment from `points[0]` (A) to `points[1]` (B).

    Direction `in` is a crossing towards the right-hand side of A->B as drawn on the image (y down):
    for a horizontal line drawn left to right, `in` means moving down the picture. `snapshot` draws
    the arrows so the set-up can be checked by eye.
    """

    points: tuple[Point, Point] = Field(description="Two points [x, y]: the segment A -> B")
    in_name: str = Field(default="in", min_length=1, max_length=64, description="Name of the 'in' direction")
    out_name: str = Field(
        default="out", min_length=1, max_length=64, description="Name of the 'out' direction"
    )

    @model_validator(mode="after")
    def _not_degenerate(self) -> LineDef:
        (x1, y1), (x2, y2) = self.points
        if abs(x1 - x2) + abs(y1 - y2) <= 1e-6:
            raise ValueError("line points must differ")
        return self


class ZoneDef(Strict):
    """A polygon zone; `direction` [dx, dy] is the allowed travel direction for lane zones (wrong way)."""

    points: list[Point] = Field(min_length=3, max_length=64, description="Polygon vertices [x, y]")
    direction: tuple[float, float] | None = Field(
        default=None, description="Allowed travel direction in image coordinates"
    )
    speed_limit_kmh: float | None = Field(
        default=None, gt=0, le=300, description="Speed limit for speed rules"
    )

    @model_validator(mode="after")
    def _valid_polygon(self) -> ZoneDef:
        pts = self.points
        area2 = sum(
            pts[i][0] * pts[(i + 1) % len(pts)][1] - pts[(i + 1) % len(pts)][0] * pts[i][1]
            for i in range(len(pts))
        )
        if abs(area2) < 1e-9:
            raise ValueError("zone polygon has no area")
        if self.direction is not None and self.direction[0] == 0 and self.direction[1] == 0:
            raise ValueError("direction must not be [0, 0]")
        return self


class Calibration(Strict):
    """Ground calibration: four image points and their positions on the ground in metres (homography)."""

    image_points: tuple[Point, Point, Point, Point] = Field(
        description="Four image points, same units as zones"
    )
    ground_points_m: tuple[
        tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]
    ] = Field(description="The same four points on the ground, metres")


class MotionSettings(Strict):
    enabled: bool = Field(default=True, description="Run the detector only when something moves")
    width: int = Field(default=160, ge=32, le=640, description="Width of the low-resolution motion image")
    threshold: int = Field(default=25, ge=1, le=255, description="Per-pixel difference that counts as motion")
    min_area_fraction: float = Field(
        default=0.001, ge=0, le=1, description="Changed fraction that counts as motion"
    )
    keepalive_s: float = Field(default=2.0, gt=0, le=60, description="Run the detector at least this often")
    max_skip_frames: int = Field(
        default=1,
        ge=0,
        le=10,
        description="When every moving region lies on a known track, skip up to this many detector runs in a row "
        "(the tracker coasts); new motion elsewhere always runs the detector. 0 disables",
    )


class HealthSettings(Strict):
    """Camera-health checks (edge.health): frozen picture and tampering, evaluated on a small grey image.

    Each condition must hold for its `*_s` time before a `start` event, and be gone for `clear_s`
    before the `end` event, so a person walking past the lens or one dark frame does not flap.
    """

    enabled: bool = Field(default=True, description="Run the camera-health checks")
    interval_s: float = Field(
        default=1.0, gt=0, le=60, description="Evaluate once per this many seconds, not every frame"
    )
    width: int = Field(default=320, ge=64, le=1280, description="Width of the grey analysis image")
    clear_s: float = Field(
        default=3.0, ge=0, le=600, description="A condition must be gone this long before its end event"
    )
    frozen_s: float = Field(
        default=10.0, gt=0, le=3600, description="Picture unchanged this long: frozen_picture"
    )
    frozen_max_diff: float = Field(
        default=0.05, ge=0, le=10, description="Mean grey difference below which two pictures are the same"
    )
    blocked_s: float = Field(
        default=5.0, gt=0, le=3600, description="Dark or uniform view this long: camera_blocked"
    )
    dark_mean: float = Field(
        default=15.0, ge=0, le=255, description="Mean grey level below which the view is dark"
    )
    uniform_std: float = Field(
        default=8.0, ge=0, le=128, description="Grey-level deviation below which the view is uniform"
    )
    defocus_s: float = Field(
        default=5.0, gt=0, le=3600, description="Sharpness collapse this long: camera_defocused"
    )
    defocus_ratio: float = Field(
        default=0.3, gt=0, lt=1, description="Sharpness below this fraction of the reference is a collapse"
    )
    moved_s: float = Field(
        default=5.0, gt=0, le=3600, description="Scene off its reference this long: camera_moved"
    )
    moved_min_similarity: float = Field(
        default=0.5, ge=-1, le=1, description="Edge correlation with the reference below this: view changed"
    )
    moved_shift: float = Field(
        default=0.015,
        gt=0,
        le=1,
        description="Background shift against the reference (fraction of width): moved",
    )


class SnapshotSettings(Strict):
    enabled: bool = True
    max_width: int = Field(default=640, ge=64, le=3840, description="Snapshots are scaled down to this width")
    quality: int = Field(default=80, ge=10, le=100, description="JPEG quality")


class CameraConfig(Strict):
    id: str = Field(
        min_length=1,
        max_length=48,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Camera id, unique per node, used in MQTT topics",
    )
    name: str = Field(default="", max_length=128, description="Human name, e.g. 'Cổng chợ / market gate'")
    source: str = Field(
        min_length=1, description="rtsp://..., http(s)://... (MJPEG), a video file, or usb:N / /dev/videoN"
    )
    substream: str | None = Field(
        default=None, description="Optional low-resolution stream used for detection"
    )
    rtsp_transport: Literal["tcp", "udp"] = Field(default="tcp", description="RTSP transport")
    loop: bool = Field(default=False, description="Loop a video file (demos)")
    realtime: bool = Field(
        default=False, description="Pace a video file at its frame rate as a live camera would"
    )
    detect_fps: float = Field(
        default=5.0, gt=0, le=60, description="Detection rate; frames between are skipped"
    )
    reference_size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = Field(
        default=None,
        description="If set, line/zone points are pixels of a frame of this [width, height]; else fractions 0..1",
    )
    classes: tuple[str, ...] = Field(default=DEFAULT_CLASSES, description="Classes kept from the detector")
    min_score: float = Field(default=0.35, ge=0.01, le=1.0, description="Default score threshold")
    class_min_score: dict[str, Annotated[float, Field(ge=0.01, le=1.0)]] = Field(
        default_factory=dict, description="Per-class score thresholds"
    )
    min_box_area: float = Field(
        default=0.0, ge=0, description="Smallest box area kept, as a fraction of the frame"
    )
    max_box_area: float = Field(
        default=1.0, gt=0, le=1, description="Largest box area kept, as a fraction of the frame"
    )
    motion: MotionSettings = Field(default_factory=MotionSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    lines: dict[str, LineDef] = Field(default_factory=dict, description="Named counting lines")
    zones: dict[str, ZoneDef] = Field(default_factory=dict, description="Named polygon zones")
    calibration: Calibration | None = Field(default=None, description="Ground calibration for speeds")
    rules: list[RuleConfig] = Field(default_factory=list, description="Analytics rules")

    @field_validator("source", "substream")
    @classmethod
    def _nohas_inline_password(cls, value: str | None) -> str | None:
        if value is not None and has_inline_password(value):
            raise ValueError(
                "a password is written in the URL; put it in the node's environment and write"
                " rtsp://user:${CAM_GATE_PASSWORD}@host/... (secrets are not read from the YAML)"
            )
        return value

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in COCO_NAMES]
        if unknown:
            raise ValueError(f"unknown class name(s) {unknown}; use COCO names such as 'car', 'motorcycle'")
        return value

    @model_validator(mode="after")
    def _check_geometry_and_refs(self) -> CameraConfig:
        limit = (
            (float(self.reference_size[0]), float(self.reference_size[1]))
            if self.reference_size
            else (1.0, 1.0)
        )
        unit = "pixels of reference_size" if self.reference_size else "fractions of the frame (0..1)"
        for kind, items in (("lines", self.lines), ("zones", self.zones)):
            for name, item in items.items():
                for x, y in item.points:
                    if x > limit[0] or y > limit[1]:
                        raise ValueError(
                            f"{kind}.{name}: point [{x}, {y}] is outside the frame; coordinates are {unit}"
                        )
        for name in self.class_min_score:
            if name not in COCO_NAMES:
                raise ValueError(f"class_min_score: unknown class {name!r}")
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(f"rules[{i}].name: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
            for ref_kind, names in (("line", self.lines), ("zone", self.zones)):
                ref = getattr(rule, ref_kind, None)
                if isinstance(ref, str) and ref not in names:
                    raise ValueError(
                        f"rules[{i}].{ref_kind}: no {ref_kind} named {ref!r} on this camera (have {sorted(names)})"
                    )
            self._check_rule(i, rule)
        if self.min_box_area >= self.max_box_area:
            raise ValueError("min_box_area must be below max_box_area")
        return self

    def _check_rule(self, i: int, rule: RuleConfig) -> None:
        """Per-kind needs a rule has of its camera (classes, a zone direction, a calibration, a limit)."""
        unknown = [c for c in getattr(rule, "classes", ()) if c not in COCO_NAMES]
        if unknown:
            raise ValueError(f"rules[{i}].classes: unknown class name(s) {unknown}")
        zone = self.zones.get(getattr(rule, "zone", None) or "")
        if rule.kind == "wrong_way" and zone is not None and zone.direction is None:
            raise ValueError(f"rules[{i}].zone: zone {rule.zone!r} needs a `direction` for wrong_way")
        if rule.kind == "speeding":
            if self.calibration is None:
                raise ValueError(f"rules[{i}]: speeding needs the camera's `calibration`")
            if rule.limit_kmh is None and (zone is None or zone.speed_limit_kmh is None):
                raise ValueError(f"rules[{i}].limit_kmh: set it or the zone's speed_limit_kmh")

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors that turn configured coordinates into pixels of a frame of this size."""
        if self.reference_size:
            return width / self.reference_size[0], height / self.reference_size[1]
        return float(width), float(height)


class ModelSettings(Strict):
    path: str = Field(
        default="{data}/models/yolo11n_int8.onnx", description="ONNX model; {data} is the data directory"
    )
    kind: Literal["auto", "ultralytics", "yolox"] = Field(
        default="auto", description="Output layout; auto reads the model"
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime providers in order of preference",
    )
    intra_op_threads: int = Field(
        default=0, ge=0, le=64, description="onnxruntime threads; 0 lets onnxruntime choose"
    )
    nms_iou: float = Field(default=0.5, gt=0, lt=1, description="IoU threshold of the class-aware NMS")


class SecretRef(Strict):
    """Where a secret comes from: an environment variable or a file (e.g. a systemd credential)."""

    env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Environment variable name"
    )
    file: str | None = Field(default=None, description="File whose content (stripped) is the secret")

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
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            return Path(os.path.expandvars(self.file)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror}") from exc


class TlsSettings(Strict):
    ca_file: str | None = Field(default=None, description="CA certificate (PEM); system CAs when omitted")
    cert_file: str | None = Field(default=None, description="Client certificate (PEM)")
    key_file: str | None = Field(default=None, description="Client key (PEM)")
    insecure: bool = Field(default=False, description="Skip host name checks (testing only)")


class MqttSettings(Strict):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(default="5", description="MQTT protocol version")
    topic_prefix: str = Field(
        default="roadwatch/v1", pattern=r"^[^#+]+$", description="Prefix of every topic (no wildcards)"
    )
    client_id: str | None = Field(
        default=None, description="Stable client id; defaults to roadwatch-edge-<node_id>"
    )
    username: str | None = None
    password: SecretRef | None = Field(
        default=None, description="Password source: {env: NAME} or {file: PATH}"
    )
    tls: TlsSettings | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)
    stats_interval_s: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("password"), str):
            raise ValueError(
                "password: secrets are not read from the YAML; use password: {env: NAME} or {file: PATH}"
            )
        return data


class OutboxSettings(Strict):
    path: str = Field(default="var/outbox.sqlite", description="SQLite outbox file")
    max_mb: float = Field(
        default=512.0, gt=0, description="Size budget; old snapshots are dropped first, then events"
    )
    max_age_h: float = Field(default=168.0, gt=0, description="Events older than this are dropped")
    synchronous: Literal["NORMAL", "FULL"] = Field(
        default="FULL", description="SQLite synchronous mode: FULL survives power loss, NORMAL only a crash"
    )


class MetricsSettings(Strict):
    enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics")
    host: str = Field(default="127.0.0.1", description="Bind address; localhost by default")
    port: int = Field(default=9108, ge=0, le=65535, description="TCP port (0 picks a free one)")


class NodeConfig(Strict):
    node_id: str = Field(
        min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_-]+$", description="Node id, used in MQTT topics"
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", description="IANA time zone for schedules and local times"
    )
    model: ModelSettings = Field(default_factory=ModelSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    stats_log_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="Period of the per-camera log line"
    )
    cameras: list[CameraConfig] = Field(min_length=1, description="Cameras read by this node")

    @field_validator("timezone")
    @classmethod
    def _known_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _unique_cameras(self) -> NodeConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"cameras.{cam.id}.id: duplicate camera id {cam.id!r}")
            seen.add(cam.id)
        return self

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(camera_id)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _mapping_no_duplicates(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def format_loc(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn a pydantic location into `cameras.gate.rules[1].line`, naming cameras by id."""
    parts: list[str] = []
    node = data
    prev: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            cam_id = None
            if (
                prev == "cameras"
                and isinstance(node, list)
                and 0 <= item < len(node)
                and isinstance(node[item], dict)
            ):
                cam_id = node[item].get("id")
            if isinstance(cam_id, str) and cam_id:
                parts.append("." + cam_id)
            else:
                parts.append(f"[{item}]")
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            if isinstance(prev, int) and isinstance(node, dict) and node.get("kind") == item:
                prev = item
                continue  # the discriminated-union tag adds nothing for the reader
            if item in ("function-after", "function-before") or "[" in item:
                continue
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
        prev = item
    text = "".join(parts).lstrip(".")
    return text or "(top level)"


_INNER_PATH = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.DOTALL)


def validate_config(data: Any, source: str = "<config>") -> NodeConfig:
    """Validate parsed YAML; raise ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}: (top level): expected a mapping of settings, got {type(data).__name__}"]
        )
    try:
        cfg = NodeConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see `roadwatch-edge schema`)"
            where = format_loc(tuple(err["loc"]), data)
            inner = _INNER_PATH.match(msg)
            if inner:  # a model validator names the field inside its model: join the two paths
                where = inner.group(1) if where == "(top level)" else f"{where}.{inner.group(1)}"
                msg = inner.group(2)
            lines.append(f"{source}: {where}: {msg}")
        raise ConfigError(lines) from None
    problems = [f"{source}: {path}: {msg}" for path, msg in check_secrets(cfg)]
    if problems:
        raise ConfigError(problems)
    return cfg


def check_secrets(cfg: NodeConfig) -> list[tuple[str, str]]:
    """Secrets the file names must exist now, not at the first reconnect at 3 a.m."""
    out: list[tuple[str, str]] = []
    if cfg.mqtt.password is not None:
        try:
            cfg.mqtt.password.resolve()
        except ValueError as exc:
            out.append(("mqtt.password", str(exc)))
    for cam in cfg.cameras:
        for field in ("source", "substream"):
            value = getattr(cam, field)
            missing = [n for n in env_refs(value or "") if n not in os.environ]
            if missing:
                out.append((f"cameras.{cam.id}.{field}", f"environment variable {missing[0]} is not set"))
    return out


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node's YAML file; raise ConfigError with `file: field: reason` lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: file is not UTF-8 text"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}: {where}YAML error: {problem}"]) from None
    return validate_config(data, str(path))
