"""Node configuration: pydantic models for the technician's YAML file and `load_config`.

Every model forbids unknown keys (a typo is an error, never a silent default) and every field has a
description and bounds, so `roadwatch-edge schema` gives editors a useful JSON Schema. `load_config` turns
YAML and validation problems into one line per problem, `file: cameras.gate.source: reason`, and raises
`ConfigError`; the CLI exits with code 2 on it so systemd does not restart-loop on a bad file.

Secrets never live in the YAML: the file names an environment variable or a file that holds them.
This module holds the node-level sections (model, MQTT, outbox, metrics) and loading; a camera's sections
are in `edge/camera_config.py`, the YAML reading and error formatting in `common/yamlconf.py`, the secret
and MQTT settings shared with the station in `common/settings.py`, and the data directory and stream URL secrets in `edge/capture/sourceurl.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from common.settings import MqttSettings, TimeZoneName
from common.yamlconf import ConfigError, Strict, read_yaml, validate_mapping
from edge.camera_config import CameraConfig
from edge.capture.sourceurl import env_refs


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
        default=1,
        ge=0,
        le=64,
        description=(
            "onnxruntime threads per session run; 0 lets onnxruntime choose (one per core). 1 by default: "
            "at a live node's few detections per second a second thread costs more CPU than it saves "
            "(measured 0.92x the CPU per detection with 1 thread, docs/benchmarks.md), and `workers` "
            "keeps the cores busy when there are many cameras"
        ),
    )
    nms_iou: float = Field(default=0.5, gt=0, lt=1, description="IoU threshold of the class-aware NMS")
    workers: int = Field(
        default=2,
        ge=1,
        le=8,
        description=(
            "Inference threads, each analysing one camera at a time from the shared session; 2 overlaps "
            "one camera's pre/post-processing and tracking with another's inference (measured 1.2x the "
            "throughput of one worker on a 2-thread session); an idle worker sleeps"
        ),
    )
    max_frame_age_periods: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description="A frame not analysed within this many detect periods is dropped (and counted)",
    )
    allow_spinning: bool = Field(
        default=False,
        description=(
            "Let onnxruntime's worker threads busy-wait for work between runs. Off for a live node: "
            "at a few detections per second the spinning threads burn most of the CPU (heat and power "
            "in a roadside cabinet) for a gain of a fraction of a millisecond per run; turn it on only "
            "for back-to-back offline runs"
        ),
    )
    int8_ops: Literal["auto", "int8", "float"] = Field(
        default="int8",
        description=(
            "How a dynamically quantised model's convolutions run: `int8` as stored (ConvInteger); "
            "`float` with the same 8-bit weights dequantised once at load (activations no longer rounded "
            "to 8 bits, so boxes move slightly; 0.82x the CPU per detection on an x86 CPU without VNNI); "
            "`auto` float on x86 without VNNI and on accelerators, int8 on ARM (Raspberry Pi 5, Jetson) "
            "where int8 dot products are fast. int8 by default: float counted 10 wrong crossings of 157 on "
            "the labelled clips against 6 (docs/benchmarks.md)"
        ),
    )


class NodeMqttSettings(MqttSettings):
    """The node's broker connection: the shared settings plus its client id and stats period."""

    client_id: str | None = Field(
        default=None,
        description="Stable client id without a username; defaults to roadwatch-edge-<node_id>. With a "
        "username the client id is the username (the shipped broker enforces it)",
    )
    stats_interval_s: float = Field(default=30.0, gt=0, le=3600)
    delivery: Literal["broker", "aggregator"] = Field(
        default="aggregator",
        description="When an event leaves the outbox: at the broker's PUBACK, or when the aggregator's "
        "watermark on <prefix>/<node>/ack says it is stored (end to end; needs an aggregator that publishes it)",
    )
    signing_key_file: str | None = Field(
        default=None,
        description="PEM Ed25519 private key (made by the installer): every event payload is signed with it",
    )
    ack_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="delivery aggregator: resend what stays unconfirmed this long",
    )


class OutboxSettings(Strict):
    path: str = Field(default="var/outbox.sqlite", description="SQLite outbox file")
    max_mb: float = Field(
        default=512.0, gt=0, description="Size budget; old snapshots are dropped first, then events"
    )
    max_age_h: float = Field(default=168.0, gt=0, description="Events older than this are dropped")
    synchronous: Literal["NORMAL", "FULL"] = Field(
        default="FULL", description="SQLite synchronous mode: FULL survives power loss, NORMAL only a crash"
    )


class ClipStoreSettings(Strict):
    path: str = Field(default="var/clips", description="Folder of the ring segments and finished clips")
    max_mb: float = Field(default=2048.0, gt=0, description="Size budget of finished clips; oldest go first")
    max_age_h: float = Field(default=72.0, gt=0, description="Finished clips older than this are removed")


class MetricsSettings(Strict):
    enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics")
    host: str = Field(default="127.0.0.1", description="Bind address; localhost by default")
    port: int = Field(default=9108, ge=0, le=65535, description="TCP port (0 picks a free one)")


class NodeConfig(Strict):
    node_id: str = Field(
        min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_-]+$", description="Node id, used in MQTT topics"
    )
    model: ModelSettings = Field(default_factory=ModelSettings)
    mqtt: NodeMqttSettings = Field(default_factory=NodeMqttSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    clip_store: ClipStoreSettings = Field(default_factory=ClipStoreSettings)
    timezone: TimeZoneName = Field(
        default="Asia/Ho_Chi_Minh", description="IANA time zone for schedules and local times"
    )
    stats_log_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="Period of the per-camera log line"
    )
    cameras: list[CameraConfig] = Field(min_length=1, description="Cameras read by this node")

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


def validate_config(data: Any, source: str = "<config>") -> NodeConfig:
    """Validate parsed YAML; raise ConfigError with one line per problem."""
    cfg = validate_mapping(NodeConfig, data, source, "`roadwatch-edge schema`")
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
    return validate_config(read_yaml(path), str(path))
