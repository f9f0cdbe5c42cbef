#!/usr/bin/env python3
"""Benchmark the central aggregator against a real Mosquitto on loopback (started here).

Measures, in one run:
  raw       the broker's throughput to a bare paho subscriber (QoS 1), the ceiling for everything else
  ingest    sustained ingest rate into SQLite: events/s from first publish to last commit, no snapshots
  snapshots the same with a 20 kB JPEG-like snapshot per event (two messages per event)
  latency   publish-to-committed latency p50/p99 at a fixed rate (default 200 events/s)
  acks      the ingest run without the storage watermarks to the nodes (central/acks.py), for their cost
  signed    ingest and latency with every event Ed25519-signed by the publisher and verified by the
            aggregator (signatures.policy: reject), for the cost of signatures: verified by worker
            processes (central/verifier.py, as shipped) and, for comparison, in the aggregator itself
            (signatures.workers: 0, how it was before)
  cpu       for each ingest run, the aggregator's CPU time per event: its own process (GIL-bound, so
            1e6 / that figure bounds its rate on one free core) and its signature workers. On a shared
            machine these stay meaningful when the events/s do not (they fall with the CPU share); and
            the aggregator's CPU per event by thread (paho network thread, verifier stage, writer, ...)

Targets (issue 5): >= 2,000 events/s sustained without snapshots; p99 < 100 ms at 200 events/s.
The publisher runs in a child process, as an edge node would (it must not share the GIL with central).
Prints a table and writes JSON (`--json PATH`). Usage: python scripts/bench_central.py [--events N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from central.config import validate_config
from central.ingest import EventItem, classify
from central.service import Aggregator
from central.signatures import SignatureChecker
from central.store import EventRow
from contract.signing import canonical

SEED = bytes(range(32))  # the benchmark node's signing key (a fixed one: nothing here is secret)

PREFIX = "roadwatch/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mosquitto(tmp: Path) -> Iterator[tuple[int, int]]:
    """A broker on a free loopback port: (port, its pid, for its CPU time)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n"
        "max_inflight_messages 1000\nlog_dest none\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def event(seq: int, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "seq": seq,
        "kind": "line_crossing",
        "phase": "instant",
        "node": "bench",
        "camera": "gate",
        "rule": "north_line",
        "ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "local_time": now.astimezone().isoformat(timespec="milliseconds"),
        "classes": ["car"],
        "track_ids": [seq],
        "confidence": 0.81,
        "box": [100.0, 120.0, 180.0, 200.0],
        "measurements": {"direction": "in", "direction_name": "vào chợ"},
        "texts": {"vi": "Ô tô qua vạch north_line (vào chợ)", "en": "Car crossed north_line (in)"},
        "snapshot": snapshot,
    }


def topic_of(payload: dict[str, Any]) -> str:
    return f"{PREFIX}/{payload['node']}/{payload['camera']}/events/{payload['kind']}"


def jpeg_like(size: int, i: int) -> bytes:
    body = os.urandom(size - 4 - 8) + i.to_bytes(8, "big")
    return b"\xff\xd8" + body + b"\xff\xd9"


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def make_messages(
    n: int, snapshot_bytes: int, key: Ed25519PrivateKey | None = None
) -> list[tuple[str, bytes]]:
    """n events, each preceded by its snapshot when snapshot_bytes > 0 (as the edge publishes them)."""
    messages: list[tuple[str, bytes]] = []
    for i in range(1, n + 1):
        payload = event(i)
        if snapshot_bytes:
            data = jpeg_like(snapshot_bytes, i)
            snap_topic = f"{PREFIX}/bench/gate/snapshots/{payload['event_id']}"
            payload["snapshot"] = {
                "topic": snap_topic,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
            messages.append((snap_topic, data))
        messages.append((topic_of(payload), encode(payload, key)))
    return messages


def public_key_b64() -> str:
    raw = Ed25519PrivateKey.from_private_bytes(SEED).public_key()
    data = raw.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(data).decode()


def encode(payload: dict[str, Any], key: Ed25519PrivateKey | None) -> bytes:
    """The event as the edge publishes it, signed when a key is given (edge/transport/signing.py)."""
    if key is not None:
        payload = {**payload, "sig": base64.b64encode(key.sign(canonical(payload))).decode()}
    return json.dumps(payload).encode()


def run_publisher(args: argparse.Namespace) -> int:
    """The publishing side, in its own process as an edge node would be (no shared GIL with central)."""
    key = Ed25519PrivateKey.from_private_bytes(SEED) if args.sign else None
    client = publisher(args.port)
    out: dict[str, Any] = {}
    if args.rate:
        n = int(args.rate * args.seconds)
        sent: dict[str, float] = {}
        start = time.perf_counter()
        for i in range(n):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            payload = event(i + 1)
            sent[payload["event_id"]] = time.time()
            client.publish(topic_of(payload), encode(payload, key), qos=1)
        out["sent"] = sent
    else:
        messages = make_messages(args.events, args.snapshot_bytes, key)
        out["start"], cpu0 = time.time(), time.process_time()
        infos = [client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(120)
        out["end"], out["cpu_s"] = time.time(), time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    args.out.write_text(json.dumps(out), encoding="utf-8")
    return 0


def spawn_publisher(tmp: Path, port: int, *extra: str) -> dict[str, Any]:
    """Run this script's publisher mode in a child process; returns what it reported."""
    out = tmp / f"pub-{uuid.uuid4().hex[:8]}.json"
    cmd = [sys.executable, __file__, "_publish", "--port", str(port), "--out", str(out), *extra]
    subprocess.run(cmd, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def bench_raw(tmp: Path, port: int, n: int) -> dict[str, Any]:
    """The broker's QoS 1 throughput to a bare paho subscriber that only counts."""
    last = [0.0]
    received = [0]

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        received[0] += 1
        last[0] = time.time()

    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: ready.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"{PREFIX}/+/+/events/+", qos=1)
    sub.loop_start()
    ready.wait(10)
    pub = spawn_publisher(tmp, port, "--events", str(n))
    deadline = time.monotonic() + 60
    while received[0] < n and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.disconnect()
    sub.loop_stop()
    elapsed = last[0] - pub["start"]
    return {"messages": received[0], "seconds": round(elapsed, 3), "msgs_per_s": round(received[0] / elapsed)}


@contextmanager
def aggregator(
    tmp: Path, port: int, name: str, signed: bool = False, acks: bool = True, workers: int | None = None
) -> Iterator[Aggregator]:
    signatures: dict[str, Any] = {"policy": "off"}
    if signed:
        signatures = {"policy": "reject", "keys": {"bench": public_key_b64()}, "workers": workers}
    cfg = validate_config(
        {
            "signatures": signatures,
            "mqtt": {"port": port, "client_id": f"bench-{name}"},
            "store": {
                "url": f"sqlite:///{tmp / name / 'central.sqlite'}",
                "snapshots_dir": str(tmp / name / "snaps"),
            },
        },
        "bench",
    )
    agg = Aggregator(cfg)
    if not acks:
        agg.writer.acks = None
    agg.start()
    if not agg.ingest.connected.wait(10):
        raise RuntimeError("aggregator did not connect")
    try:
        yield agg
    finally:
        agg.stop()
        forget_session(port, f"bench-{name}")


def forget_session(port: int, client_id: str) -> None:
    """End a stopped aggregator's persistent session (7 days by default). Left in place, the broker would
    queue every later run's messages for it too, so each run would pay for all the runs before it."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    done = threading.Event()
    client.on_connect = lambda *a: done.set()
    client.connect("127.0.0.1", port, clean_start=True)  # no session expiry: gone at the disconnect
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    return proc_cpu_s_path(Path(f"/proc/{pid}/stat"))


def proc_cpu_s_path(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of this process's live threads by stage (Linux /proc): thread names without their
    numbers, so a pool's threads add up under one name."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            cpu = proc_cpu_s_path(Path(f"/proc/self/task/{thread.native_id}/stat"))
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
        stage = "paho-network" if thread.name.startswith("paho-mqtt-client") else thread.name.split("_")[0]
        stage = stage.rstrip("0123456789-").removesuffix(" (")
        out[stage] = out.get(stage, 0.0) + cpu
    return out


def per_event_us(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    stages = {k: after[k] - before.get(k, 0.0) for k in after}
    return {k: round(v / max(events, 1) * 1e6, 1) for k, v in sorted(stages.items()) if v > 0}


def bench_ingest(
    tmp: Path,
    port: int,
    n: int,
    snapshot_bytes: int,
    signed: bool = False,
    acks: bool = True,
    workers: int | None = None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    last = [0.0]

    def on_stored(rows: list[EventRow], now: float) -> None:
        last[0] = time.time()

    name = (
        f"ingest-{snapshot_bytes}-{'signed' if signed else 'plain'}-{'acks' if acks else 'noacks'}-{workers}"
    )
    with aggregator(tmp, port, name, signed, acks, workers) as agg:
        agg.writer.on_stored = on_stored
        extra = ("--sign",) if signed else ()
        time.sleep(1.0)  # signature workers start (spawned processes import for about a second)
        pids = agg.verifier.worker_pids() if agg.verifier is not None else []
        cpu0, workers0 = time.process_time(), sum(proc_cpu_s(p) for p in pids)
        threads0 = thread_cpu_s()
        broker0 = proc_cpu_s(broker_pid) if broker_pid is not None else 0.0
        pub = spawn_publisher(tmp, port, "--events", str(n), "--snapshot-bytes", str(snapshot_bytes), *extra)
        deadline = time.monotonic() + 300
        while agg.writer.stored_events < n and time.monotonic() < deadline:
            time.sleep(0.005)
        stored = agg.writer.stored_events
        cpu_main = time.process_time() - cpu0
        by_thread = per_event_us(threads0, thread_cpu_s(), stored)
        cpu_broker = proc_cpu_s(broker_pid) - broker0 if broker_pid is not None else 0.0
        cpu_workers = sum(proc_cpu_s(p) for p in pids) - workers0
        checks = agg.verifier.snapshot() if agg.verifier is not None else None
        rejected = agg.counters.snapshot()["rejected_total"]
        acks_sent = agg.writer.acks.published if agg.writer.acks is not None else 0
    elapsed = last[0] - pub["start"]
    return {
        "events": stored,
        "snapshot_bytes": snapshot_bytes,
        "seconds": round(elapsed, 3),
        "publish_seconds": round(pub["end"] - pub["start"], 3),
        "events_per_s": round(stored / elapsed),
        "rejected": rejected,
        "watermarks_published": acks_sent,
        "cpu_us_per_event_aggregator": round(cpu_main / max(stored, 1) * 1e6),
        "cpu_us_per_event_workers": round(cpu_workers / max(stored, 1) * 1e6),
        "cpu_us_per_event_by_thread": by_thread,
        # the rest of the machine's work per event: the broker, and the publishing "node" (only its
        # publishing; its events were made and signed before the clock started)
        "cpu_us_per_event_broker": round(cpu_broker / max(stored, 1) * 1e6),
        "cpu_us_per_event_publisher": round(pub.get("cpu_s", 0.0) / max(stored, 1) * 1e6),
        "signature_checks": checks,
    }


def bench_latency(tmp: Path, port: int, rate: float, seconds: float, signed: bool = False) -> dict[str, Any]:
    stored: dict[str, float] = {}

    def on_stored(rows: list[EventRow], now: float) -> None:
        t = time.time()
        for row in rows:
            stored[row.event_id] = t

    with aggregator(tmp, port, f"latency-{signed}", signed) as agg:
        agg.writer.on_stored = on_stored
        extra = ("--sign",) if signed else ()
        sent: dict[str, float] = spawn_publisher(
            tmp, port, "--rate", str(rate), "--seconds", str(seconds), *extra
        )["sent"]
        deadline = time.monotonic() + 30
        while len(stored) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.01)
    lat_ms = sorted((stored[k] - sent[k]) * 1000 for k in sent if k in stored)
    q = statistics.quantiles(lat_ms, n=100)
    return {
        "rate_per_s": rate,
        "events": len(lat_ms),
        "p50_ms": round(statistics.median(lat_ms), 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(lat_ms[-1], 2),
    }


def bench_validate(n: int) -> dict[str, Any]:
    """The aggregator's per-message work in its network thread (parse, validate, skew check), in
    process and on one core: without and with Ed25519 verification. Independent of broker and disk."""
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    checker = SignatureChecker({"bench": public_key_b64()}, "reject")
    plain = [encode(event(i), None) for i in range(1, n + 1)]
    signed = [encode(event(i), key) for i in range(1, n + 1)]
    topic = topic_of(event(1))
    out: dict[str, Any] = {"events": n}
    for name, payloads, sigs in (("plain", plain, None), ("signed", signed, checker)):
        now = time.time()
        t0 = time.perf_counter()
        items = [classify(topic, p, PREFIX, None, now, 300.0, sigs) for p in payloads]
        elapsed = time.perf_counter() - t0
        assert all(isinstance(i, EventItem) for i in items), name
        out[f"{name}_per_s"] = round(n / elapsed)
        out[f"{name}_us_per_event"] = round(elapsed / n * 1e6, 1)
    out["signed_vs_plain"] = round(out["signed_per_s"] / out["plain_per_s"], 3)
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        pub = argparse.ArgumentParser()
        pub.add_argument("_publish")
        pub.add_argument("--port", type=int, required=True)
        pub.add_argument("--out", type=Path, required=True)
        pub.add_argument("--events", type=int, default=0)
        pub.add_argument("--snapshot-bytes", type=int, default=0)
        pub.add_argument("--rate", type=float, default=0.0)
        pub.add_argument("--seconds", type=float, default=0.0)
        pub.add_argument("--sign", action="store_true")
        return run_publisher(pub.parse_args())
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20000, help="events per throughput run")
    parser.add_argument("--snapshot-events", type=int, default=5000, help="events in the run with snapshots")
    parser.add_argument("--snapshot-kb", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the latency run")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine shows in the tail latency
    with tempfile.TemporaryDirectory(prefix="bench-central-") as tmp_name:
        tmp = Path(tmp_name)
        validate = bench_validate(args.events)
        with mosquitto(tmp) as (port, broker):
            raw = bench_raw(tmp, port, args.events)
            ingest = bench_ingest(tmp, port, args.events, 0, broker_pid=broker)
            # latency before the snapshot run: the kernel's write-back of its ~100 MB of files would
            # otherwise land in the middle of the latency measurement
            latency = bench_latency(tmp, port, args.rate, args.seconds)
            no_acks = bench_ingest(tmp, port, args.events, 0, acks=False, broker_pid=broker)
            signed = bench_ingest(tmp, port, args.events, 0, signed=True, broker_pid=broker)
            signed_inline = bench_ingest(tmp, port, args.events, 0, signed=True, workers=0, broker_pid=broker)
            signed_latency = bench_latency(tmp, port, args.rate, args.seconds, signed=True)
            snaps = bench_ingest(tmp, port, args.snapshot_events, int(args.snapshot_kb * 1024))
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "raw_broker": raw,
        "ingest_no_snapshots": ingest,
        "ingest_with_snapshots": snaps,
        "latency": latency,
        "ingest_without_watermarks": no_acks,
        "ingest_signed": signed,
        "ingest_signed_verified_inline": signed_inline,
        "validate_in_process": validate,
        "latency_signed": signed_latency,
        "targets": {
            "events_per_s_min": 2000,
            "p99_ms_max": 100,
            "met": min(ingest["events_per_s"], signed["events_per_s"]) >= 2000
            and max(latency["p99_ms"], signed_latency["p99_ms"]) < 100
            and signed["rejected"] == 0,
        },
    }
    print(f"{'measurement':<42} {'value':>12}")
    print(f"{'raw broker -> bare paho subscriber (msg/s)':<42} {raw['msgs_per_s']:>12}")
    print(f"{'ingest into SQLite, no snapshots (ev/s)':<42} {ingest['events_per_s']:>12}")
    label = f"ingest with {args.snapshot_kb:g} kB snapshots (ev/s)"
    print(f"{label:<42} {snaps['events_per_s']:>12}")
    for q in ("p50", "p99"):
        label = f"latency {q} at {args.rate:g} ev/s (ms)"
        print(f"{label:<42} {latency[q + '_ms']:>12}")
    print(f"{'ingest, no watermarks to nodes (ev/s)':<42} {no_acks['events_per_s']:>12}")
    print(f"{'ingest, signed + verified (ev/s)':<42} {signed['events_per_s']:>12}")
    print(f"{'ingest, signed, verified inline (ev/s)':<42} {signed_inline['events_per_s']:>12}")
    for label, run in (("unsigned", ingest), ("signed", signed), ("signed inline", signed_inline)):
        cpu = f"{run['cpu_us_per_event_aggregator']} + {run['cpu_us_per_event_workers']}"
        print(f"{'cpu us/event ' + label + ' (main + workers)':<42} {cpu:>12}")
        rest = f"{run['cpu_us_per_event_broker']} + {run['cpu_us_per_event_publisher']}"
        print(f"{'  and broker + publisher':<42} {rest:>12}")
    print(f"{'validate in process, unsigned (ev/s)':<42} {validate['plain_per_s']:>12}")
    print(f"{'validate in process, signed + verified (ev/s)':<42} {validate['signed_per_s']:>12}")
    for q in ("p50", "p99"):
        label = f"latency {q} signed at {args.rate:g} ev/s (ms)"
        print(f"{label:<42} {signed_latency[q + '_ms']:>12}")
    print(f"{'targets met':<42} {result['targets']['met']!s:>12}")
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0 if result["targets"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
