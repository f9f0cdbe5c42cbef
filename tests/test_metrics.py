"""Prometheus rendering and the metrics endpoint of the edge node."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from common.metrics import MetricsServer
from edge.metrics import render_metrics

STATS = {
    "v": 1,
    "node": "road-1",
    "ts": "2026-11-28T15:00:00.000Z",
    "cameras": {
        "gate": {"fps": 4.9, "inference_ms": 31.5, "dropped_frames": 12, "stream_state": "ok", "tracks": 3},
        "ferry": {"fps": 0.0, "inference_ms": 0.0, "dropped_frames": 0, "stream_state": "lost", "tracks": 0},
    },
    "outbox": {"depth": 7, "dropped_events": 0, "dropped_snapshots": 2},
    "cpu_load": 1.25,
    "temperature_c": None,
    "disk_free_mb": 20480.5,
}


def test_render_has_per_camera_samples_and_skips_missing_values() -> None:
    text = render_metrics(STATS, {"events_published_total": 42})
    assert 'roadwatch_camera_fps{node="road-1",camera="gate"} 4.9' in text
    assert 'roadwatch_camera_dropped_frames_total{node="road-1",camera="gate"} 12' in text
    assert 'roadwatch_camera_stream_state{node="road-1",camera="ferry",state="lost"} 1' in text
    assert 'roadwatch_camera_stream_state{node="road-1",camera="ferry",state="ok"} 0' in text
    assert 'roadwatch_outbox_depth{node="road-1"} 7' in text
    assert 'roadwatch_events_published_total{node="road-1"} 42' in text
    assert "roadwatch_temperature_celsius" not in text  # not exposed by this board: no sample, no lie
    assert "# TYPE roadwatch_camera_fps gauge" in text


def test_label_values_are_escaped() -> None:
    text = render_metrics({**STATS, "node": 'a"b\\c'})
    assert 'node="a\\"b\\\\c"' in text


def test_endpoint_serves_metrics_on_localhost() -> None:
    server = MetricsServer("127.0.0.1", 0, lambda: render_metrics(STATS))
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert b"roadwatch_camera_inference_ms" in resp.read()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other", timeout=5)
        assert err.value.code == 404
        err.value.close()
    finally:
        server.stop()


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
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            assert resp.read() == b"ok 1\n"
    finally:
        server.stop()
