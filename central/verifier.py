"""Event signatures checked off the MQTT network thread, in arrival order, by a few worker processes.

Why: an Ed25519 check costs about 0.1 ms, and around it the canonical JSON and the GIL hand-offs each
check brings: checked inline in the paho network thread it bounded signed ingest well below unsigned
ingest, since the same GIL also parses, validates and writes (docs/benchmarks.md). Measured again with
libsodium's check (which releases the GIL) in this stage's thread, the aggregator's CPU per event still
about doubled, while with the work in a worker process it stays near the unsigned figure. Here the
network thread only parses and validates, then queues every message here, in the order the broker
delivered it. This stage takes what is queued in batches, sends the events' raw bytes in chunks to worker
processes (each parses, canonicalises and verifies on its own core), applies the station's policy and
passes everything on to the writer in the same order. So per node the writer sees exactly the sequence
it would have seen without this stage (the storage watermarks rely on it), and nothing is acknowledged
before the writer commits it, or before a refused signature is counted.

A batch of a few events (a quiet station) is verified in this thread: a round trip to a worker costs
more than the check. A worker that dies (killed, out of memory) loses nothing: its batch is verified here
and the pool is started again for the next one.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from central.batching import fill_batch
from central.ingest import Ack, EventItem, IngestCounters, Item
from central.signatures import SignatureChecker, SigStatus, verify, verify_chunk
from contract.validate import Rejection

log = logging.getLogger(__name__)

INLINE_MAX = 4  # events in a batch verified in this thread rather than sent to a worker
RESULT_TIMEOUT_S = 60.0  # a chunk takes milliseconds; a worker silent this long is hung
POOL_RETRY_S = 60.0  # after the workers failed, verify here this long before starting them again
BATCH_MAX = 512
LINGER_S = 0.005  # under load, how long a batch waits to fill before it goes to the workers
MAX_AUTO_WORKERS = 4


def auto_workers(cpus: int | None = None) -> int:
    """One worker per CPU beyond the first (that one runs the aggregator), at most 4; none on one CPU,
    where a worker would add its round trips without a core to run on."""
    n = cpus if cpus is not None else os.cpu_count() or 1
    return max(0, min(MAX_AUTO_WORKERS, n - 1))


@dataclass(frozen=True, slots=True)
class Unverified:
    """An event whose signature is checked here; it keeps the message's raw bytes for the workers."""

    item: EventItem
    payload: bytes
    topic: str


class Verifier:
    """The ordered stage between ingest and writer: `offer` from the network thread, a thread of its own."""

    def __init__(
        self,
        checker: SignatureChecker,
        out: queue.Queue[Item],
        counters: IngestCounters,
        ack: Callable[[list[Ack]], None],
        workers: int,
        queue_max: int = 10_000,
    ) -> None:
        self.checker = checker
        self.out = out
        self.counters = counters
        self.ack = ack  # PUBACKs a refused event at once (redelivering it would not make it valid)
        self.workers = workers  # 0: every check in this thread
        self.inbox: queue.Queue[Item | Unverified] = queue.Queue(maxsize=queue_max)
        self.checked_in_workers = 0
        self.checked_here = 0
        self.pool_failures = 0
        self.chunks_to_workers = 0
        self.linger_s = LINGER_S if workers > 0 else 0.0
        self._pool: ProcessPoolExecutor | None = None
        self._pool_retry_at = 0.0  # monotonic time before which the workers are not started again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-verifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Pass on what is queued (ingest has stopped by now), then stop the workers."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._drop_pool()

    def offer(self, item: Item, payload: bytes, topic: str, stopping: threading.Event) -> None:
        """Queue one validated message (network thread); blocks while the queue is full, which holds
        further messages at the broker instead of dropping any."""
        pending = Unverified(item, payload, topic) if isinstance(item, EventItem) else item
        if not isinstance(pending, Unverified):
            self.counters.accept(type(item).__name__)
        while not stopping.is_set():
            try:
                self.inbox.put(pending, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- the stage's thread -----------------------------------------------------------------------
    def _run(self) -> None:
        if self.workers > 0:
            self._warm_up()
        while True:
            try:
                batch = [self.inbox.get(timeout=0.05)]
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            self._fill(batch)
            try:
                self.pass_on(batch)
            except Exception:  # a worker loop logs and goes on; unacknowledged messages come again
                log.exception("verifier failed on a batch of %d messages", len(batch))

    def _fill(self, batch: list[Item | Unverified]) -> None:
        """Take what is queued behind the first message (`central.batching`: a chunk sent to a worker
        costs pickling, a pipe round trip and the worker's wake-up whatever its size)."""
        fill_batch(self.inbox, batch, BATCH_MAX, self.linger_s)

    def pass_on(self, batch: list[Item | Unverified]) -> None:
        """Verify the batch's events, apply the policy, hand everything on in order."""
        todo = [p for p in batch if isinstance(p, Unverified)]
        statuses = iter(self._verify(todo))
        for pending in batch:
            if not isinstance(pending, Unverified):
                self.out.put(pending)
                continue
            stored, refused = self.checker.decide(next(statuses))
            item = pending.item
            if refused is not None:
                self.counters.refuse(
                    pending.topic, Rejection(refused, f"signature {stored}"), pending.payload
                )
                self.ack([item.ack] if item.ack is not None else [])
                continue
            self.counters.accept("EventItem")
            self.out.put(EventItem(dataclasses.replace(item.row, sig_status=stored), item.ack))

    def _verify(self, todo: list[Unverified]) -> list[SigStatus]:
        if self.workers == 0 or len(todo) <= INLINE_MAX or time.monotonic() < self._pool_retry_at:
            return self._here(todo)
        try:
            pool = self._pool_started()
            size = -(-len(todo) // self.workers)
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            futures = [pool.submit(verify_chunk, self._keys(c), [u.payload for u in c]) for c in chunks]
            statuses = [s for f in futures for s in f.result(timeout=RESULT_TIMEOUT_S)]
        except Exception:  # a dead worker (BrokenProcessPool): check here, new pool in a while
            log.exception("signature workers failed; verifying %d events in the aggregator", len(todo))
            self._pool_failed()
            return self._here(todo)
        self.checked_in_workers += len(todo)
        self.chunks_to_workers += len(chunks)
        return statuses

    def _here(self, todo: list[Unverified]) -> list[SigStatus]:
        keys = self.checker.keys
        self.checked_here += len(todo)
        return [verify(u.item.row.payload, keys.get(u.item.row.node)) for u in todo]

    def _keys(self, chunk: list[Unverified]) -> dict[str, bytes]:
        raw = self.checker.raw_keys
        return {u.item.row.node: raw[u.item.row.node] for u in chunk if u.item.row.node in raw}

    def _pool_started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the aggregator has threads (paho, writer, HTTP) a fork would copy mid-lock
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self._pool

    def _warm_up(self) -> None:
        """Start the workers now, not on the first burst (a spawned process takes a second to import)."""
        try:
            pool = self._pool_started()
            for f in [pool.submit(verify_chunk, {}, []) for _ in range(self.workers)]:
                f.result(timeout=60)
        except Exception:
            log.exception("signature workers did not start; verifying in the aggregator meanwhile")
            self._pool_failed()

    def _pool_failed(self) -> None:
        self.pool_failures += 1
        self._pool_retry_at = time.monotonic() + POOL_RETRY_S
        self._drop_pool(wait=False)  # a hung worker must not hold this stage too

    def _drop_pool(self, wait: bool = True) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """The live worker processes (benchmarks read their CPU time)."""
        pool = self._pool
        return list(getattr(pool, "_processes", None) or {}) if pool is not None else []

    def snapshot(self) -> dict[str, int]:
        return {
            "workers": self.workers,
            "checked_in_workers": self.checked_in_workers,
            "checked_here": self.checked_here,
            "pool_failures": self.pool_failures,
            "chunks_to_workers": self.chunks_to_workers,
            "queued": self.inbox.qsize(),
        }
