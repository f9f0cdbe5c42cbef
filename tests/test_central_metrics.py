"""Prometheus rendering and the metrics endpoint of the aggregator."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from support import wait_for
from test_central_support import (
    PREFIX,
    central_config,
    dumps,
    event_topic,
    make_event,
    publish_all,
    publisher,
    running,
)

from central.config import CentralConfig, validate_config
from central.metrics import LagTracker, NodeBoard, render_metrics
from central.service import Aggregator
from common.metrics import MetricsServer

STATS: dict[str, Any] = {
    "v": 1,
    "node": "road-1",
    "ts": "2026-11-28T15:00:00.000Z",
    "cameras": {
        "gate": {"fps": 4.9, "inference_ms": 31.5, "dropped_frames": 12, "stream_state": "ok", "tracks": 3},
        "ferry": {"fps": 0.0, "inference_ms": 0.0, "dropped_frames": 0, "stream_state": "lost", "tracks": 0},
    },
    "outbox": {"depth": 7, "dropped_events": 2, "dropped_snapshots": 0},
    "cpu_load": 1.25,
    "temperature_c": None,
    "disk_free_mb": 20480.5,
}


def crafted_status() -> dict[str, Any]:
    lag = LagTracker(buckets=(0.5, 1.0, 5.0))
    lag.observe([0.2, 0.7, 3.0], now=1000.0)
    lag.observe([12.0], now=1030.0)
    board = NodeBoard()
    board.on_stats("road-1", STATS)
    board.on_status("road-2", "offline")
    return {
        "accepted": {"events": 41, "stats": 3},
        "rejected": {"not_json": 2, "invalid": 1},
        "rejected_total": 3,
        "mqtt_connected": True,
        "queue_depth": 5,
        "writer_errors": 0,
        "alerts_published": 9,
        "alerts_queued_offline": 2,
        "alerts_throttled": 4,
        "webhooks": {"pending": 3, "dead": 1},
        "live_clients": 2,
        "uptime_s": 12.5,
        "events_stored": 40,
        "duplicates": 1,
        "snapshots_stored": 6,
        "open_gaps": {"road-1": 2, "road-2": 0},
        "ingest_lag": lag.snapshot(now=1031.0),
        "nodes": board.snapshot(),
        "clips_stored": 3,
        "clip_messages": {"chunk": 40, "stored": 3, "bad_sha": 1, "interrupted": 1},
    }


def test_render_aggregator_counters_and_gauges() -> None:
    text = render_metrics(crafted_status())
    lines = set(text.splitlines())
    assert "roadwatch_central_events_stored_total 40" in lines
    assert "# TYPE roadwatch_central_events_stored_total counter" in lines
    assert 'roadwatch_central_messages_rejected_total{reason="not_json"} 2' in lines
    assert 'roadwatch_central_messages_rejected_total{reason="invalid"} 1' in lines
    assert 'roadwatch_central_messages_accepted_total{channel="events"} 41' in lines
    assert "roadwatch_central_duplicate_events_total 1" in lines
    assert "roadwatch_central_snapshots_stored_total 6" in lines
    assert "roadwatch_central_alerts_forwarded_total 9" in lines
    assert "roadwatch_central_alerts_queued_offline_total 2" in lines
    assert "roadwatch_central_alerts_throttled_total 4" in lines
    assert 'roadwatch_central_webhook_calls{state="pending"} 3' in lines
    assert 'roadwatch_central_webhook_calls{state="delivered"} 0' in lines  # known states always present
    assert 'roadwatch_central_webhook_calls{state="dead"} 1' in lines
    assert "roadwatch_central_ingest_queue_depth 5" in lines
    assert "roadwatch_central_mqtt_connected 1" in lines
    assert "roadwatch_central_live_clients 2" in lines
    assert 'roadwatch_central_open_sequence_gaps{node="road-1"} 2' in lines
    assert 'roadwatch_central_open_sequence_gaps{node="road-2"} 0' in lines
    assert "roadwatch_central_clips_stored_total 3" in lines
    assert 'roadwatch_central_clip_messages_total{outcome="bad_sha"} 1' in lines
    assert 'roadwatch_central_clip_messages_total{outcome="interrupted"} 1' in lines


def test_render_ingest_lag_histogram_is_cumulative_with_last_and_window_max() -> None:
    lines = set(render_metrics(crafted_status()).splitlines())
    assert "# TYPE roadwatch_central_ingest_lag_seconds histogram" in lines
    assert 'roadwatch_central_ingest_lag_seconds_bucket{le="0.5"} 1' in lines
    assert 'roadwatch_central_ingest_lag_seconds_bucket{le="1.0"} 2' in lines
    assert 'roadwatch_central_ingest_lag_seconds_bucket{le="5.0"} 3' in lines
    assert 'roadwatch_central_ingest_lag_seconds_bucket{le="+Inf"} 4' in lines
    assert "roadwatch_central_ingest_lag_seconds_count 4" in lines
    assert "roadwatch_central_ingest_lag_seconds_sum 15.9" in lines
    assert "roadwatch_central_ingest_lag_last_seconds 12.0" in lines
    assert "roadwatch_central_ingest_lag_max_seconds 12.0" in lines


def test_lag_window_forgets_maxima_older_than_a_minute() -> None:
    lag = LagTracker()
    lag.observe([30.0], now=1000.0)
    lag.observe([0.4, 0.3], now=1050.0)
    assert lag.snapshot(now=1055.0)["max_window"] == 30.0
    snap = lag.snapshot(now=1070.0)
    assert snap["max_window"] == 0.4 and snap["last"] == 0.3 and snap["count"] == 3
    assert lag.snapshot(now=1200.0)["max_window"] is None  # nothing stored for a minute: no sample


def test_render_per_node_and_camera_from_latest_stats() -> None:
    lines = set(render_metrics(crafted_status()).splitlines())
    assert 'roadwatch_central_node_state{node="road-1",state="online"} 1' in lines
    assert 'roadwatch_central_node_state{node="road-2",state="offline"} 1' in lines
    assert 'roadwatch_central_node_state{node="road-2",state="online"} 0' in lines
    assert 'roadwatch_central_camera_fps{node="road-1",camera="gate"} 4.9' in lines
    assert 'roadwatch_central_camera_inference_ms{node="road-1",camera="gate"} 31.5' in lines
    assert 'roadwatch_central_camera_dropped_frames_total{node="road-1",camera="gate"} 12' in lines
    assert 'roadwatch_central_camera_stream_state{node="road-1",camera="ferry",state="lost"} 1' in lines
    assert 'roadwatch_central_camera_stream_state{node="road-1",camera="ferry",state="ok"} 0' in lines
    assert 'roadwatch_central_node_outbox_depth{node="road-1"} 7' in lines
    assert 'roadwatch_central_node_outbox_dropped_events_total{node="road-1"} 2' in lines
    assert not any(line.startswith('roadwatch_central_camera_fps{node="road-2"') for line in lines)


def test_label_values_are_escaped() -> None:
    board = NodeBoard()
    board.on_stats('a"b\\c\nd', {"cameras": {"x\\y": {"fps": 1.5}}})
    text = render_metrics({"rejected": {'bad"reason': 1}, "nodes": board.snapshot()})
    assert 'roadwatch_central_camera_fps{node="a\\"b\\\\c\\nd",camera="x\\\\y"} 1.5' in text
    assert 'roadwatch_central_messages_rejected_total{reason="bad\\"reason"} 1' in text
    assert all(line.startswith(("# ", "roadwatch_central_")) for line in text.splitlines())  # no raw newline


def test_missing_figures_leave_their_metrics_out() -> None:
    text = render_metrics({"events_stored": 0, "nodes": {"n1": {"state": "online", "stats": {}}}})
    assert "roadwatch_central_events_stored_total 0" in text
    assert "roadwatch_central_camera_fps" not in text  # no stats yet: no sample, no lie
    assert "roadwatch_central_ingest_lag" not in text
    assert 'roadwatch_central_node_state{node="n1",state="online"} 1' in text


def test_metrics_bound_to_localhost_by_default() -> None:
    cfg = validate_config({}, "default.yaml")
    assert cfg.metrics.enabled is True
    assert cfg.metrics.host == "127.0.0.1"
    assert cfg.metrics.port == 9109


def get(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body: bytes = resp.read()
        return body.decode("utf-8")


@pytest.mark.integration
def test_endpoint_shows_stored_rejected_camera_fps_and_lag(broker: Broker, tmp_path: Path) -> None:
    with running(central_config(tmp_path, broker.port)) as agg, publisher(broker.port) as pub:
        assert agg.metrics is not None
        port = agg.metrics.port
        event = make_event(1, node="road-1", ts=time.time() - 2.0)
        publish_all(
            pub,
            [
                (event_topic(event), dumps(event)),
                (f"{PREFIX}/road-1/stats", dumps(STATS)),
                (f"{PREFIX}/road-1/gate/events/line_crossing", b"{not json"),
            ],
        )
        wait_for(lambda: agg.writer.stored_events == 1 and bool(agg.writer.nodes.snapshot()), 5.0)
        wait_for(lambda: agg.counters.snapshot()["rejected_total"] == 1, 5.0)
        lines = set(get(port).splitlines())
        assert "roadwatch_central_events_stored_total 1" in lines
        assert 'roadwatch_central_messages_rejected_total{reason="not_json"} 1' in lines
        assert 'roadwatch_central_camera_fps{node="road-1",camera="gate"} 4.9' in lines
        assert 'roadwatch_central_node_state{node="road-1",state="online"} 1' in lines
        assert "roadwatch_central_mqtt_connected 1" in lines
        assert "roadwatch_central_ingest_lag_seconds_count 1" in lines
        assert 'roadwatch_central_ingest_lag_seconds_bucket{le="1.0"} 0' in lines  # sent 2 s late
        assert 'roadwatch_central_ingest_lag_seconds_bucket{le="5.0"} 1' in lines
        last = next(x for x in lines if x.startswith("roadwatch_central_ingest_lag_last_seconds "))
        assert 1.9 < float(last.split()[1]) < 5.0
        assert 'roadwatch_central_open_sequence_gaps{node="road-1"} 0' in lines
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert err.value.code == 404
        err.value.close()
    with pytest.raises(OSError):  # stopped with the aggregator
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.integration
def test_busy_port_logs_an_error_and_the_aggregator_still_ingests(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        cfg = central_config(tmp_path, broker.port, metrics={"port": busy})
        with running(cfg) as agg, publisher(broker.port) as pub:
            assert agg.metrics is None
            assert any(
                r.levelname == "ERROR" and f"127.0.0.1:{busy}" in r.getMessage() for r in caplog.records
            )
            event = make_event(1)
            publish_all(pub, [(event_topic(event), dumps(event))])
            wait_for(lambda: agg.writer.stored_events == 1, 5.0)
            assert agg.writer.stored_events == 1


def test_disabled_metrics_start_no_server(tmp_path: Path) -> None:
    cfg: CentralConfig = central_config(tmp_path, 1, metrics={"enabled": False})
    agg = Aggregator(cfg)
    try:
        agg._start_metrics()
        assert agg.metrics is None
    finally:
        agg.store.close()


def test_failing_provider_gives_500_and_server_survives() -> None:
    calls = {"n": 0}

    def provider() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return "ok 1\n"

    server = MetricsServer("127.0.0.1", 0, provider)
    server.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert err.value.code == 500
        err.value.close()
        assert get(server.port) == "ok 1\n"
    finally:
        server.stop()


def test_provider_runs_in_one_thread_whatever_thread_serves_the_request() -> None:
    """The store keeps one connection per thread: scrapes must not open one each."""
    threads: list[int] = []

    def provider() -> str:
        threads.append(threading.get_ident())
        return "ok 1\n"

    server = MetricsServer("127.0.0.1", 0, provider)
    server.start()
    try:
        for _ in range(3):
            assert get(server.port) == "ok 1\n"
    finally:
        server.stop()
    assert len(threads) == 3 and len(set(threads)) == 1


def test_signature_checks_by_where_and_worker_failures() -> None:
    checks = {"workers": 1, "checked_in_workers": 950, "checked_here": 50, "pool_failures": 1, "queued": 0}
    lines = set(render_metrics({"signature_checks": checks}).splitlines())
    assert 'roadwatch_central_signature_checks_total{where="workers"} 950' in lines
    assert 'roadwatch_central_signature_checks_total{where="aggregator"} 50' in lines
    assert "roadwatch_central_signature_worker_failures_total 1" in lines
    assert "signature" not in render_metrics({"signature_checks": None})  # no verifier stage: no metric
