"""`roadwatch-edge` command line: check, run, snapshot, schema.

Exit codes: 0 ok, 2 bad configuration (systemd's RestartPreventExitStatus=2 stops a restart loop on a
bad file), 1 anything else. Only the CLI prints; everything else logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from common.yamlconf import ConfigError
from contract.commands import Command
from edge.config import NodeConfig, load_config

log = logging.getLogger("edge.cli")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2


class _KeyValueFormatter(logging.Formatter):
    """`ts level logger: message` for people, or one JSON object per line for log collectors."""

    def __init__(self, as_json: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        if not self.as_json:
            return super().format(record)
        out = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KeyValueFormatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _load(path: str) -> NodeConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _load_usable(path: str) -> NodeConfig:
    """A valid config whose model and video files exist, can be read and decode; else exit 2 with one
    `file: field.path: reason` line per problem, the way `check` and `run` both refuse it."""
    from edge.preflight import file_problems

    cfg = _load(path)
    problems = file_problems(cfg)
    for problem in problems:
        print(f"{path}: {problem.where}: {problem.message}", file=sys.stderr)
    if problems:
        raise SystemExit(EXIT_CONFIG)
    return cfg


def cmd_check(args: argparse.Namespace) -> int:
    from edge.capture.sourceurl import expand_path
    from edge.preflight import network_sources

    cfg = _load_usable(args.config)
    print(f"{args.config}: OK — node {cfg.node_id}, {len(cfg.cameras)} camera(s), time zone {cfg.timezone}")
    print(
        f"  model {expand_path(cfg.model.path)} ({cfg.model.kind}), MQTT {cfg.mqtt.host}:{cfg.mqtt.port} "
        f"prefix {cfg.mqtt.topic_prefix}"
    )
    for cam in cfg.cameras:
        print(
            f"  camera {cam.id} '{cam.name}': {expand_path(cam.source)} @ {cam.detect_fps:g} fps detection, "
            f"classes {', '.join(cam.classes)}"
        )
        for name in cam.lines:
            print(f"    line {name}")
        for name in cam.zones:
            print(f"    zone {name}")
        for rule in cam.rules:
            state = "" if rule.enabled else " (disabled)"
            print(f"    rule {rule.name}: {rule.kind}{state}")
    unopened = network_sources(cfg)
    if unopened:
        print(
            f"  not contacted by check (network or USB): {', '.join(unopened)}; "
            "`snapshot` opens a camera and draws what it sees"
        )
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    schema = NodeConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Roadwatch edge node configuration"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return EXIT_OK


def _make_detector(cfg: NodeConfig) -> Any:
    from edge.vision.detector import Detector, ModelError

    try:
        return Detector(cfg.model)
    except ModelError as exc:
        print(f"model: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_snapshot(args: argparse.Namespace) -> int:
    import cv2

    from edge.capture.files import grab_frame
    from edge.draw import draw_detections, draw_geometry
    from edge.vision.filters import ClassFilter

    cfg = _load_usable(args.config)
    try:
        cam = cfg.camera(args.camera)
    except KeyError:
        print(f"{args.config}: cameras: no camera with id {args.camera!r}", file=sys.stderr)
        return EXIT_CONFIG
    detector = _make_detector(cfg)
    frame = grab_frame(cam, index=args.frame, timeout_s=args.timeout)
    if frame is None:
        print(f"camera {cam.id}: no frame from {cam.source}", file=sys.stderr)
        return EXIT_ERROR
    dets = ClassFilter.from_camera(cam, detector.names, frame.width, frame.height).apply(
        detector.detect(frame.image, 0.1)
    )
    img = draw_detections(draw_geometry(frame.image, cam), dets, detector.names)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), img):
        print(f"cannot write {out}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"{out}: {frame.width}x{frame.height}, {len(dets)} detection(s), "
        f"{len(cam.lines)} line(s), {len(cam.zones)} zone(s)"
    )
    return EXIT_OK


def _metric_counters(publisher: Any, node: Any) -> dict[str, float]:
    """Counters the stats payload does not carry: the outbox's recoveries, the event clips'."""
    out: dict[str, float] = {}
    if publisher is not None:
        out["outbox_recovered_total"] = publisher.stats().outbox.recovered
    if node.clips is not None:
        out.update(node.clips.counters())
    if node.clip_uploader is not None:
        out.update(node.clip_uploader.counters())
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from common import sdnotify
    from edge.pipeline import Node
    from edge.sinks import EventSink, JsonlSink

    cfg = _load_usable(args.config)
    detector = _make_detector(cfg)
    sinks: list[EventSink] = []
    jsonl = JsonlSink(args.events_jsonl) if args.events_jsonl else None
    if jsonl is not None:
        sinks.append(jsonl)
    publisher = None
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()  # from the station, applied by the node
    if not args.no_mqtt:
        from edge.transport.outbox import Outbox
        from edge.transport.publisher import OutboxSink, Publisher

        sign = None
        if cfg.mqtt.signing_key_file is not None:
            from edge.transport.signing import Signer

            try:
                sign = Signer.from_file(cfg.mqtt.signing_key_file).sign
            except ValueError as exc:  # a missing or wrong key file is a configuration error
                print(f"{args.config}: mqtt.signing_key_file: {exc}", file=sys.stderr)
                return 2
        outbox = Outbox(cfg.outbox.path, cfg.outbox, topic_prefix=cfg.mqtt.topic_prefix, sign=sign)
        publisher = Publisher(
            cfg.node_id,
            cfg.mqtt,
            outbox,
            on_command=commands.put,
            cameras=frozenset(c.id for c in cfg.cameras),
        )
        sinks.append(OutboxSink(outbox, publisher))
        publisher.start()

    node = Node(
        cfg, detector, sinks, max_frames=args.max_frames, watchdog=sdnotify.Watchdog(), commands=commands
    )

    if publisher is not None and node.clips is not None:
        from edge.transport.clipupload import ClipUploader

        node.clip_uploader = ClipUploader(
            cfg.mqtt.topic_prefix, cfg.node_id, node.clips.lookup, publisher.publish_wait
        )
        node.clip_uploader.start()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        node.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    stats_stop = threading.Event()
    if publisher is not None:
        from edge.transport.stats import node_stats

        def _stats_loop() -> None:
            while not stats_stop.wait(cfg.mqtt.stats_interval_s):
                try:
                    publisher.publish_stats(node_stats(cfg, node, publisher.stats().outbox))
                except Exception:
                    log.exception("node %s: stats publishing failed", cfg.node_id)

        threading.Thread(target=_stats_loop, name="stats", daemon=True).start()

    metrics = None
    if cfg.metrics.enabled:
        from common.metrics import MetricsServer
        from edge.metrics import render_metrics
        from edge.transport.stats import node_stats

        try:
            metrics = MetricsServer(
                cfg.metrics.host,
                cfg.metrics.port,
                lambda: render_metrics(
                    node_stats(cfg, node, publisher.stats().outbox if publisher else None),
                    _metric_counters(publisher, node),
                ),
            )
            metrics.start()
            log.info("node %s: metrics on http://%s:%d/metrics", cfg.node_id, cfg.metrics.host, metrics.port)
        except OSError as exc:  # a busy port must not stop the cameras
            log.error(
                "node %s: cannot serve metrics on %s:%d: %s",
                cfg.node_id,
                cfg.metrics.host,
                cfg.metrics.port,
                exc,
            )

    sdnotify.ready()
    log.info("node %s: running %d camera(s)", cfg.node_id, len(cfg.cameras))
    from edge.capture.opening import SourceError

    try:
        node.run()
    except SourceError as exc:  # a file that opened at the check but yields no frame: no traceback
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        sdnotify.stopping()
        stats_stop.set()
        if metrics is not None:
            metrics.stop()
        if node.clip_uploader is not None:
            node.clip_uploader.stop()
        if publisher is not None:
            publisher.stop(timeout=args.flush_timeout)
        if jsonl is not None:
            jsonl.close()
    total = sum(a.times.events for a in node.analyzers.values())
    log.info("node %s: stopped, %d event(s)", cfg.node_id, total)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roadwatch-edge", description="Roadwatch edge node")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate a node config and print a summary")
    c.add_argument("config")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", help="run the node")
    r.add_argument("config")
    r.add_argument("--max-frames", type=int, default=None, help="stop after N frames per camera")
    r.add_argument("--events-jsonl", default=None, help="also write every event as a JSON line to this file")
    r.add_argument("--no-mqtt", action="store_true", help="do not publish (no outbox, no broker)")
    r.add_argument("--flush-timeout", type=float, default=10.0, help="seconds to flush the outbox at exit")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("snapshot", help="grab a frame, detect once, draw lines/zones/arrows into a PNG")
    s.add_argument("config")
    s.add_argument("--camera", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--frame", type=int, default=0, help="frame index for video files")
    s.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a live frame")
    s.set_defaults(func=cmd_snapshot)

    sc = sub.add_parser("schema", help="print the JSON Schema of the node config")
    sc.set_defaults(func=cmd_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_json)
    try:
        return int(args.func(args))
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `roadwatch-edge check x.yaml | head`
        return EXIT_OK
    except Exception:
        log.exception("edge node crashed")
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
