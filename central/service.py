"""Wires the aggregator together: store, MQTT ingest, writer, forwarding, webhooks, the housekeeping
scheduler and the HTTP server.

This is the only module that decides which threads run and their order of start and stop: the store
first, then the writer (so nothing queued is lost) and the scheduler, then MQTT; on stop MQTT goes first (no new messages), the writer
drains the queue and acknowledges, and the store closes last.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from central.acks import AckPublisher
from central.announce import Announcer
from central.api import WEB_DIR, ApiContext, make_app
from central.auth import Authenticator
from central.binding import SnapshotBinder
from central.clipfetch import ClipAssembler, ClipFiles, ClipReceiver, expire_clips
from central.commands import send_command
from central.config import CentralConfig
from central.forward import Forwarder, WebhookWorker
from central.forwardstate import queue_counts
from central.health import HealthMonitor
from central.ingest import Ack, IngestCounters, Item, MqttIngest, PublishResult
from central.live import LiveHub
from central.metrics import render_metrics
from central.scheduler import Scheduler, Task
from central.sessions import SessionTable
from central.signatures import SignatureChecker
from central.store import Store
from central.verifier import Verifier, auto_workers
from central.writer import Writer
from common import sdnotify
from common.metrics import MetricsServer
from contract.commands import CommandName

log = logging.getLogger(__name__)

SUMMARY_INTERVAL_S = 60.0
WRITER_STALL_S = 30.0  # a writer loop silent this long is hung: the watchdog stops being fed


class Aggregator:
    """One running aggregator; `start()` the background parts, `serve()` the HTTP API (blocking)."""

    def __init__(self, cfg: CentralConfig, web_dir: Path = WEB_DIR) -> None:
        self.cfg = cfg
        password = cfg.store.password.resolve() if cfg.store.password is not None else None
        self.store = Store(cfg.store.target, Path(cfg.store.snapshots_dir), password)
        self.counters = IngestCounters()
        self.inbox: queue.Queue[Item] = queue.Queue(maxsize=cfg.store.queue_max)
        self.hub = LiveHub()
        checker = SignatureChecker(cfg.signatures.keys, cfg.signatures.policy)
        self.verifier = self._verifier(checker)
        clip_files = ClipFiles(cfg.store.clips_path)
        quota = int(cfg.store.max_partial_clip_mb * 1e6)
        self.clips = ClipReceiver(ClipAssembler(clip_files, self.store, quota), cfg.mqtt.topic_prefix)
        verify = self.verifier.offer if self.verifier is not None else None
        self.ingest = MqttIngest(cfg.mqtt, self.inbox, self.counters, checker, self.clips.offer, verify)
        self.forwarder = Forwarder(
            cfg.forwarding, self.store, cfg.mqtt.topic_prefix, cfg.timezone, self._publish
        )
        self.webhooks = WebhookWorker(self.store, cfg.forwarding.webhooks)
        self.health = HealthMonitor(cfg.health, cfg.timezone)
        self.announcer = Announcer(self.store, self.hub, self.forwarder)
        self.writer = Writer(
            self.store,
            self.inbox,
            self.ingest.ack,
            self.announcer,
            self.health,
            batch_max=cfg.store.batch_max,
            binder=self._binder(),
            acks=AckPublisher(
                self.store, self._publish_ack, cfg.mqtt.topic_prefix, lambda: self.ingest.generation
            ),
        )
        self.auth = Authenticator(
            cfg.accounts,
            cfg.api_tokens,
            cfg.http.session_ttl_h * 3600,
            cfg.http.login_max_failures,
            cfg.http.login_window_s,
            sessions=SessionTable(self.store),
            max_failures_per_address=cfg.http.login_max_failures_per_address,
        )
        api = ApiContext(
            self.store,
            self.auth,
            self.hub,
            cfg.http,
            self.status,
            self._command,
            web_dir,
            write_failure=lambda: self.writer.write_failure,
            ask_clip=self._ask_clip,
            clips=clip_files,
        )
        self.app: FastAPI = make_app(api)
        self.server: uvicorn.Server | None = None
        self.watchdog = sdnotify.Watchdog()
        self.scheduler = Scheduler(self._tasks())
        self.started_at = time.time()
        self.metrics: MetricsServer | None = None
        self._stored_at_summary = 0

    def _verifier(self, checker: SignatureChecker) -> Verifier | None:
        """The ordered verification stage, where there is Ed25519 work (a key registered, policy on)."""
        if not checker.verifies:
            return None
        workers = self.cfg.signatures.workers
        n = auto_workers() if workers is None else workers
        return Verifier(checker, self.inbox, self.counters, self._ack, n, self.cfg.store.queue_max)

    def _ack(self, acks: list[Ack]) -> None:
        self.ingest.ack(acks)  # made after the verifier, which hands it this

    def _binder(self) -> SnapshotBinder:
        r = self.cfg.retention
        quota = int(r.max_orphan_snapshot_mb * 1024 * 1024)
        return SnapshotBinder(self.store, self.counters, quota, r.orphan_snapshot_ttl_s)

    def _publish_ack(self, topic: str, body: bytes, retain: bool) -> PublishResult:
        return self.ingest.publish(topic, body, retain=retain)

    def _tasks(self) -> list[Task]:
        """The housekeeping; what writes ingested data is handed to the writer thread."""
        cfg = self.cfg
        return [
            Task("checkpoint", 1.0, lambda now: self.store.checkpoint()),
            Task("watchdog", 1.0, self._feed_watchdog),
            Task("summary", SUMMARY_INTERVAL_S, self._log_summary, first_s=SUMMARY_INTERVAL_S),
            Task(
                "health",
                cfg.health.check_interval_s,
                lambda now: self.writer.submit(self._sweep_health),
                first_s=cfg.health.check_interval_s,
            ),
            Task(
                "retention",
                cfg.retention.interval_s,
                lambda now: self.writer.submit(self._retain),
                first_s=min(5.0, cfg.retention.interval_s),
            ),
        ]

    def _publish(self, topic: str, payload: bytes) -> PublishResult:
        result = self.ingest.publish(topic, payload)
        self.webhooks.wake()
        return result

    def _command(self, node: str, camera: str, command: CommandName, by: str) -> tuple[str, PublishResult]:
        return send_command(
            self.ingest.publish, self.cfg.mqtt.topic_prefix, node, camera, command, by, time.time()
        )

    def _ask_clip(self, node: str, camera: str, event_id: str, by: str) -> tuple[str, PublishResult]:
        prefix = self.cfg.mqtt.topic_prefix
        return send_command(
            self.ingest.publish, prefix, node, camera, "upload_clip", by, time.time(), event_id
        )

    def _sweep_health(self, now: float) -> None:
        self.announcer.central_events(self.health.check(now))

    def _feed_watchdog(self, now: float) -> None:
        """Ping systemd only while the writer makes progress: a hung writer gets the service restarted."""
        if self.writer.alive(WRITER_STALL_S):
            self.watchdog()

    def _log_summary(self, now: float) -> None:
        stored = self.writer.stored_events
        log.info(
            "last minute: %d events stored; queue %d; rejected so far %s; mqtt %s",
            stored - self._stored_at_summary,
            self.inbox.qsize(),
            self.counters.snapshot()["rejected"] or "none",
            "connected" if self.ingest.connected.is_set() else "DISCONNECTED",
        )
        self._stored_at_summary = stored

    def _retain(self, now: float) -> None:
        self.store.retain_policy(self.cfg.retention.policy(), now)
        self.writer.binder.expire(now)
        clips_s = self.cfg.retention.policy().clips_s
        if clips_s is not None:
            expire_clips(self.store, self.clips.assembler.files, now - clips_s, now)

    def status(self) -> dict[str, Any]:
        """Counters for /api/status and the benchmarks."""
        out = self.counters.snapshot()
        out.update(
            mqtt_connected=self.ingest.connected.is_set(),
            queue_depth=self.inbox.qsize(),
            writer_errors=self.writer.errors,
            alerts_published=self.forwarder.sent_mqtt,
            alerts_queued_offline=self.forwarder.queued_mqtt,
            alerts_throttled=self.forwarder.throttled,
            webhooks=queue_counts(self.store),
            live_clients=self.hub.client_count,
            signature_checks=self.verifier.snapshot() if self.verifier is not None else None,
            uptime_s=round(time.time() - self.started_at, 1),
        )
        return out

    def metrics_status(self) -> dict[str, Any]:
        """`status()` plus what only the metrics endpoint shows (see central/metrics.py)."""
        out = self.status()
        gaps: dict[str, int] = {node: 0 for node in self.writer.nodes.snapshot()}
        for gap in self.store.open_gaps():
            gaps[gap["node"]] = gaps.get(gap["node"], 0) + 1
        out.update(
            events_stored=self.writer.stored_events,
            duplicates=self.writer.duplicates,
            snapshots_stored=self.writer.stored_snapshots,
            open_gaps=gaps,
            ingest_lag=self.writer.lag.snapshot(time.time()),
            nodes=self.writer.nodes.snapshot(),
            clips_stored=self.clips.assembler.counts["stored"],
            clip_messages=dict(self.clips.assembler.counts),
        )
        return out

    def _start_metrics(self) -> None:
        """A busy port costs the metrics, never the aggregator: log it and go on."""
        m = self.cfg.metrics
        if not m.enabled:
            return
        try:
            self.metrics = MetricsServer(
                m.host, m.port, lambda: render_metrics(self.metrics_status()), name="central-metrics"
            )
        except OSError as exc:
            log.error("metrics endpoint not started: cannot listen on %s:%d: %s", m.host, m.port, exc)
            return
        self.metrics.start()
        log.info("Prometheus metrics on http://%s:%d/metrics", m.host, self.metrics.port)

    def start(self) -> None:
        self.writer.start()
        if self.verifier is not None:
            self.verifier.start()
        self.clips.start()
        self.scheduler.start()
        self.webhooks.start()
        self.ingest.start()
        self._start_metrics()
        log.info(
            "ingesting from %s:%d under %s into %s",
            self.cfg.mqtt.host,
            self.cfg.mqtt.port,
            self.cfg.mqtt.topic_prefix,
            self.cfg.store.url,
        )

    def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        self.ingest.stop()
        self.clips.stop()
        if self.verifier is not None:  # passes on what it holds before the writer drains
            self.verifier.stop()
        self.writer.stop()
        self.webhooks.stop()
        self.scheduler.stop()
        self.store.checkpoint()
        self.store.close()

    def make_server(self, port: int | None = None) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            host=self.cfg.http.host,
            port=self.cfg.http.port if port is None else port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        return self.server

    def serve(self) -> None:
        """Run the HTTP server in this thread until SIGINT/SIGTERM; tells systemd once it listens."""
        server = self.make_server()

        def announce() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                log.info("HTTP API and dashboard on http://%s:%d/", self.cfg.http.host, self.cfg.http.port)
                sdnotify.ready("ingesting")

        threading.Thread(target=announce, name="central-ready", daemon=True).start()
        try:
            server.run()
        finally:
            sdnotify.stopping()

    def serve_in_thread(self, port: int) -> threading.Thread:
        """Tests and benchmarks: run the HTTP server in a daemon thread; returns once it listens."""
        server = self.make_server(port)
        thread = threading.Thread(target=server.run, name="central-http", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            raise RuntimeError("HTTP server did not start")
        return thread
