"""A camera's configuration: its stream, detection filters, motion gate, health checks, snapshots, lines,
zones, ground calibration and rules.

Coordinates of lines and zones are fractions of the frame (0..1), or pixels of a declared
`reference_size`, so they survive a change of stream resolution. Validation checks every reference a
rule makes (a line or zone that exists on this camera) so a typo fails `check`, not a rule at night.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from common.yamlconf import Strict
from contract.kinds import ALL_KINDS, EVENT_KINDS
from edge.capture.sourceurl import has_inline_password
from edge.localname import Name
from edge.rules.settings import DEFAULT_CLASSES, RuleConfig
from edge.vision.regions import band_regions
from edge.vision.settings import ObjectsConfig, TrackerConfig

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

Point = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]


class LineDef(Strict):
    """A counting segment from `points[0]` (A) to `points[1]` (B).

    Direction `in` is a crossing towards the right-hand side of A->B as drawn on the image (y down):
    for a horizontal line drawn left to right, `in` means moving down the picture. `snapshot` draws
    the arrows so the set-up can be checked by eye.
    """

    points: tuple[Point, Point] = Field(description="Two points [x, y]: the segment A -> B")
    in_name: Name = Field(
        default="in", description="Name of the 'in' direction: text, or {vi: ..., en: ...} per language"
    )
    out_name: Name = Field(
        default="out", description="Name of the 'out' direction: text, or {vi: ..., en: ...} per language"
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
        _check_area(self.points, "zone")
        if self.direction is not None and self.direction[0] == 0 and self.direction[1] == 0:
            raise ValueError("direction must not be [0, 0]")
        return self


def _check_area(pts: list[Point], what: str) -> None:
    area2 = sum(
        pts[i][0] * pts[(i + 1) % len(pts)][1] - pts[(i + 1) % len(pts)][0] * pts[i][1]
        for i in range(len(pts))
    )
    if abs(area2) < 1e-9:
        raise ValueError(f"{what} polygon has no area")


class MaskDef(Strict):
    """A privacy mask: a polygon painted black in every frame as it leaves the capture stage.

    Masked pixels never reach the detector, the health checks, snapshots or drawn pictures, and a
    detection whose ground point (bottom centre) lies in a mask is dropped, so a private yard or a
    neighbour's window never raises an event. Written under the commune's usage rules: cameras watch
    roads and public places, not homes.
    """

    points: list[Point] = Field(min_length=3, max_length=64, description="Polygon vertices [x, y]")

    @model_validator(mode="after")
    def _valid_polygon(self) -> MaskDef:
        _check_area(self.points, "privacy mask")
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
        default=2,
        ge=0,
        le=10,
        description="When every moving region lies on a known track, skip up to this many detector runs in a row "
        "(the tracker coasts); new motion elsewhere, or a track near a counting line, always runs the detector. "
        "0 disables",
    )
    skip_near_lines: bool = Field(
        default=False,
        description="Skip runs also while a track is near a counting line (within its box size plus the way it "
        "moves in the skipped time); off by default: a run missed at the line costs crossings",
    )


class HealthSettings(Strict):
    """Camera-health checks (edge.capture.health): frozen picture and tampering, evaluated on a small grey image.

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


def _alert_kinds() -> tuple[str, ...]:
    return tuple(k for k in EVENT_KINDS if ALL_KINDS[k].severity == "high")


class ClipSettings(Strict):
    """Event video clips (edge.capture.clips): the camera's encoded stream kept in a short ring, and an
    MP4 from `pre_s` before to `post_s` after each alert of the chosen kinds. Packets are copied, not
    re-encoded, so privacy masks do not apply to clips unless `mask_clips` (see docs/configs.md)."""

    enabled: bool = Field(default=False, description="Keep a ring of encoded video and cut clips for alerts")
    pre_s: float = Field(default=5.0, ge=0, le=60, description="Seconds of video before the event")
    post_s: float = Field(default=10.0, gt=0, le=120, description="Seconds of video after the event")
    kinds: tuple[str, ...] = Field(
        default_factory=_alert_kinds, description="Event kinds that get a clip (default: every alert kind)"
    )
    segment_s: float = Field(
        default=1.0, ge=0.5, le=10, description="Ring segment length; segments start on keyframes"
    )
    mask_clips: bool = Field(
        default=False, description="Re-encode each clip with the privacy masks painted (CPU per clip)"
    )

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in EVENT_KINDS]
        if unknown:
            raise ValueError(f"unknown event kind(s) {unknown}")
        return value


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
    decode_threads: int = Field(
        default=1,
        ge=0,
        le=16,
        description=(
            "FFmpeg decoding threads for this camera's stream; 0 lets FFmpeg choose (one per core). "
            "1 by default: a node decodes every frame of every camera, and one thread per stream costs "
            "less CPU than several (about 1.0 against 1.3 CPU-ms a frame for a 720p H.264 stream on the "
            "2-core bench machine, docs/benchmarks.md); more only for a main stream too large for one core"
        ),
    )
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
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Tracker thresholds")
    objects: ObjectsConfig = Field(
        default_factory=ObjectsConfig, description="Rider fusion and cross-class suppression before tracking"
    )
    detect_regions: list[tuple[float, float, float, float]] = Field(
        default_factory=list,
        max_length=8,
        description="Rectangles [x1, y1, x2, y2] (same units as lines) the detector runs on, each at the "
        "model's input size, instead of the whole frame: small far objects near a line are seen at full "
        "resolution; one inference per rectangle. Let neighbours overlap by an object's size",
    )
    detect_min_scale: float = Field(
        default=0.0, ge=0, le=4,
        description="Split each detect region into overlapping tiles until the model sees it at this scale "
        "or more (model input px per frame px): one config for models of any input size; 0 = whole regions",
    )  # fmt: skip
    detect_line_band: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(ge=0)]] | None = Field(
        default=None,
        description="[across, along] (same units as lines): with no detect_regions, the detector runs on a "
        "band around each line instead, the line's box widened by `across` on both sides and lengthened "
        "by `along` at both ends, tiled by detect_min_scale (docs/configs.md, where regions go)",
    )
    motion: MotionSettings = Field(default_factory=MotionSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    clips: ClipSettings = Field(default_factory=ClipSettings)
    lines: dict[str, LineDef] = Field(default_factory=dict, description="Named counting lines")
    zones: dict[str, ZoneDef] = Field(default_factory=dict, description="Named polygon zones")
    privacy_masks: dict[str, MaskDef] = Field(
        default_factory=dict,
        description="Named polygons painted black at capture and excluded from detection (private yards, windows)",
    )
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
        for kind, items in (
            ("lines", self.lines),
            ("zones", self.zones),
            ("privacy_masks", self.privacy_masks),
        ):
            for name, item in items.items():
                for x, y in item.points:
                    if x > limit[0] or y > limit[1]:
                        raise ValueError(
                            f"{kind}.{name}: point [{x}, {y}] is outside the frame; coordinates are {unit}"
                        )
        for name in self.class_min_score:
            if name not in COCO_NAMES:
                raise ValueError(f"class_min_score: unknown class {name!r}")
        for i, group in enumerate(self.objects.groups):
            unknown = [c for c in group if c not in COCO_NAMES]
            if unknown:
                raise ValueError(f"objects.groups[{i}]: unknown class name(s) {unknown}")
        unknown = [c for pair in self.objects.aliases.items() for c in pair if c not in COCO_NAMES]
        if unknown:
            raise ValueError(f"objects.aliases: unknown class name(s) {unknown}")
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rules[{rule.name}].name: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
            for ref_kind, names in (("line", self.lines), ("zone", self.zones)):
                ref = getattr(rule, ref_kind, None)
                if isinstance(ref, str) and ref not in names:
                    raise ValueError(
                        f"rules[{rule.name}].{ref_kind}: no {ref_kind} named {ref!r} on this camera (have {sorted(names)})"
                    )
            self._check_rule(rule)
        if self.detect_line_band is not None:  # derived once, here: every consumer reads one list
            lines = [ln.points for ln in self.lines.values()]
            bands = band_regions(self.detect_regions, lines, self.detect_line_band, limit)
            object.__setattr__(self, "detect_regions", bands)  # the model is frozen after validation
        for i, (x1, y1, x2, y2) in enumerate(self.detect_regions):
            if not (0 <= x1 < x2 <= limit[0] and 0 <= y1 < y2 <= limit[1]):
                raise ValueError(
                    f"detect_regions[{i}]: [{x1}, {y1}, {x2}, {y2}] must have x1 < x2, y1 < y2 inside the frame ({unit})"
                )
        if self.min_box_area >= self.max_box_area:
            raise ValueError("min_box_area must be below max_box_area")
        return self

    def _check_rule(self, rule: RuleConfig) -> None:
        """Per-kind needs a rule has of its camera (classes, a zone direction, a calibration, a limit)."""
        unknown = [c for c in getattr(rule, "classes", ()) if c not in COCO_NAMES]
        if unknown:
            raise ValueError(f"rules[{rule.name}].classes: unknown class name(s) {unknown}")
        zone = self.zones.get(getattr(rule, "zone", None) or "")
        if rule.kind == "wrong_way" and zone is not None and zone.direction is None:
            raise ValueError(f"rules[{rule.name}].zone: zone {rule.zone!r} needs a `direction` for wrong_way")
        if rule.kind == "speeding":
            if self.calibration is None:
                raise ValueError(f"rules[{rule.name}]: speeding needs the camera's `calibration`")
            if rule.limit_kmh is None and (zone is None or zone.speed_limit_kmh is None):
                raise ValueError(f"rules[{rule.name}].limit_kmh: set it or the zone's speed_limit_kmh")

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors that turn configured coordinates into pixels of a frame of this size."""
        if self.reference_size:
            return width / self.reference_size[0], height / self.reference_size[1]
        return float(width), float(height)
