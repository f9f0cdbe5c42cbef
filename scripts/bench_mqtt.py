#!/usr/bin/env python3
"""Benchmark of the MQTT transport: outbox put latency, publish throughput, added latency per event.

Starts its own Mosquitto on a free loopback port (nothing else is touched), then measures:
  1. put: `Outbox.put` latency p50/p99 with a snapshot JPEG of --snapshot-kb (publisher idle);
  2. throughput: a prefilled outbox drained to the broker (events/s and MB/s, PUBACK-confirmed);
  3. latency: events put at --rate per second while the publisher runs; put -> PUBACK per event,
     and the put latency while publishing.
Prints a table and, last, one JSON line. Usage:

    python scripts/bench_mqtt.py [--events 2000] [--snapshot-kb 20] [--sync FULL|NORMAL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import NodeMqttSettings, OutboxSettings
from edge.events import EventFactory
from edge.transport.outbox import Outbox
from edge.transport.publisher import Publisher
from edge.transport.signing import Signer


def _texts(kind: str, phase: str, classes: tuple[str, ...], m: dict[str, Any], rule: str) -> dict[str, str]:
    return {"en": "Car crossed north_line (in)", "vi": "Ô tô qua vạch north_line (vào)"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


class Bench:
    def __init__(self, tmp: Path, port: int, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.port = port
        self.args = args
        self.factory = EventFactory("bench", "gate", "Asia/Ho_Chi_Minh", texts=_texts)
        self.jpeg = os.urandom(args.snapshot_kb * 1000)
        self.acked_at: dict[int, float] = {}
        self.lock = threading.Lock()

    def outbox(self, name: str) -> Outbox:
        sign = Signer(Ed25519PrivateKey.generate()).sign if self.args.sign else None
        return Outbox(self.tmp / name, OutboxSettings(synchronous=self.args.sync, max_mb=4096), sign=sign)

    def publisher(self, outbox: Outbox) -> Publisher:
        settings = NodeMqttSettings(port=self.port, reconnect_min_s=1, reconnect_max_s=2)
        return Publisher("bench", settings, outbox, window=self.args.window, on_ack=self._on_ack)

    def _on_ack(self, seq: int, _dt: float) -> None:
        with self.lock:
            self.acked_at[seq] = time.monotonic()

    def put(self, outbox: Outbox, i: int) -> tuple[int, float]:
        event = self.factory.make(
            "line_crossing",
            "north_line",
            time.time(),
            classes=("car",),
            track_ids=(i,),
            confidence=0.8,
            box=(100.0, 120.0, 180.0, 200.0),
            measurements={"direction": "in", "direction_name": "north"},
        )
        t0 = time.perf_counter()
        seq = outbox.put(event, self.jpeg)
        return seq, (time.perf_counter() - t0) * 1000.0

    def run(self) -> dict[str, Any]:
        n = self.args.events
        # 1. put latency, publisher idle; the same rows are the throughput run's backlog.
        box = self.outbox("throughput.sqlite")
        put_ms = [self.put(box, i)[1] for i in range(n)]
        size_mb = box.stats().bytes / 1e6
        # 2. throughput: drain the backlog, PUBACK-confirmed.
        pub = self.publisher(box)
        t0 = time.monotonic()
        pub.start()
        while box.depth() and time.monotonic() - t0 < 300:
            time.sleep(0.01)
        drain_s = time.monotonic() - t0
        pub.stop(5)
        box.close()
        # 3. added latency at a steady rate, publisher running.
        box = self.outbox("latency.sqlite")
        pub = self.publisher(box)
        pub.start()
        while not pub.connected:
            time.sleep(0.01)
        period = 1.0 / self.args.rate
        put_at: dict[int, float] = {}
        live_put_ms: list[float] = []
        m = min(n, int(self.args.rate * self.args.latency_s))
        next_t = time.monotonic()
        for i in range(m):
            start = time.monotonic()
            seq, ms = self.put(box, i)
            put_at[seq] = start
            live_put_ms.append(ms)
            pub.wake()
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
        deadline = time.monotonic() + 30
        while box.depth() and time.monotonic() < deadline:
            time.sleep(0.01)
        pub.stop(5)
        box.close()
        with self.lock:
            lat_ms = [(self.acked_at[s] - t) * 1000.0 for s, t in put_at.items() if s in self.acked_at]
        return {
            "events": n,
            "snapshot_kb": self.args.snapshot_kb,
            "synchronous": self.args.sync,
            "signed": self.args.sign,
            "window": self.args.window,
            "put_ms_p50": round(pct(put_ms, 50), 3),
            "put_ms_p99": round(pct(put_ms, 99), 3),
            "put_ms_p50_while_publishing": round(pct(live_put_ms, 50), 3),
            "put_ms_p99_while_publishing": round(pct(live_put_ms, 99), 3),
            "drain_events_per_s": round(n / drain_s, 1),
            "drain_mb_per_s": round(size_mb / drain_s, 2),
            "latency_rate_per_s": self.args.rate,
            "latency_events": len(lat_ms),
            "put_to_puback_ms_p50": round(pct(lat_ms, 50), 2),
            "put_to_puback_ms_p99": round(pct(lat_ms, 99), 2),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000, help="events in the throughput run")
    ap.add_argument("--snapshot-kb", type=int, default=20, help="JPEG size per event, kB")
    ap.add_argument("--sync", choices=["FULL", "NORMAL"], default="FULL", help="SQLite synchronous mode")
    ap.add_argument("--window", type=int, default=32, help="events in flight")
    ap.add_argument("--rate", type=float, default=50.0, help="events/s in the latency run")
    ap.add_argument("--latency-s", type=float, default=10.0, help="duration of the latency run")
    ap.add_argument("--sign", action="store_true", help="sign every event (Ed25519) as a node with a key does")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        broker, port = start_broker(Path(tmp))
        try:
            result = Bench(Path(tmp), port, args).run()
        finally:
            broker.terminate()
            broker.wait(5)
    rows = [
        ("outbox put, p50 / p99 (publisher idle)", f"{result['put_ms_p50']} / {result['put_ms_p99']} ms"),
        (
            "outbox put, p50 / p99 (while publishing)",
            f"{result['put_ms_p50_while_publishing']} / {result['put_ms_p99_while_publishing']} ms",
        ),
        ("drain throughput", f"{result['drain_events_per_s']} events/s, {result['drain_mb_per_s']} MB/s"),
        (
            f"put -> PUBACK at {args.rate:g} events/s, p50 / p99",
            f"{result['put_to_puback_ms_p50']} / {result['put_to_puback_ms_p99']} ms",
        ),
    ]
    print(
        f"MQTT transport: {args.events} events, {args.snapshot_kb} kB snapshots, synchronous={args.sync}"
        f"{', signed' if args.sign else ''}"
    )
    for name, value in rows:
        print(f"  {name:<44} {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
