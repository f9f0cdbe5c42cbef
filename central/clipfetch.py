"""Receiving event video clips from nodes (contract/clips.py): chunks into a partial file, checked, stored.

A clip is accepted only when it was asked for (`POST /api/events/{id}/clip` wrote a `clips` row) and only
from the node that produced the event (topic node == event node): no node can plant video under another
node's event. The meta message reserves the clip's size against a per-node quota of partial bytes, and
every chunk must fit the meta's geometry, so a flood of chunks cannot fill the disk. When every chunk is
in, the file's sha256 and size are checked and only then is it moved (one rename) to its content-addressed
path `<clips>/<sha[:2]>/<sha>.mp4` and recorded: nothing half-stored is ever served. A partial survives a
cut uplink (the node's repeated upload fills the gaps) until `partial_ttl_s`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from central.storeretain import mark_clips_expired
from contract.clips import ClipMeta, ClipTopic, parse_clip_topic

if TYPE_CHECKING:
    from central.store import Store

log = logging.getLogger(__name__)

SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class ClipBook(Protocol):
    """What the assembler needs from the store (central/clip_sql.py)."""

    def clip_expected_node(self, event_id: str) -> str | None: ...

    def clip_state(self, event_id: str, node: str, state: str, reason: str, now: float) -> None: ...

    def clip_stored(
        self, event_id: str, node: str, sha256: str, nbytes: int, duration_s: float, start: float, now: float
    ) -> None: ...

    def clips_interrupted(self, reason: str, now: float) -> int: ...


class ClipFiles:
    """Stored clips by sha256; the name is checked before any file system access."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partial = root / "partial"
        self.partial.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not SHA_RE.match(sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / f"{sha256}.mp4"

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)


@dataclass
class _Partial:
    node: str
    meta: ClipMeta
    path: Path
    started: float
    got: set[int] = field(default_factory=set)


class ClipAssembler:
    """Feed it clip messages in any order (`message`); it stores each complete, verified clip once."""

    def __init__(
        self,
        files: ClipFiles,
        book: ClipBook,
        quota_bytes: int,
        partial_ttl_s: float = 900.0,
    ) -> None:
        self.files = files
        self.book = book
        self.quota_bytes = quota_bytes
        self.partial_ttl_s = partial_ttl_s
        self.counts: Counter[str] = Counter()
        self._partials: dict[tuple[str, str], _Partial] = {}

    def partial_bytes(self, node: str) -> int:
        return sum(p.meta.bytes for (n, _), p in self._partials.items() if n == node)

    def message(self, t: ClipTopic, payload: bytes, now: float) -> str:
        """Handle one message; returns the outcome, also counted in `counts`."""
        expected = self.book.clip_expected_node(t.event_id)
        if expected is None:
            outcome = "not_requested"
        elif expected != t.node:
            outcome = "wrong_node"
        elif t.index is None:
            outcome = self._meta(t, payload, now)
        else:
            outcome = self._chunk(t, t.index, payload, now)
        self.counts[outcome] += 1
        if outcome not in ("meta", "chunk", "duplicate", "stored", "state"):
            log.warning("clip %s from node %s: %s", t.event_id, t.node, outcome)
        return outcome

    def _meta(self, t: ClipTopic, payload: bytes, now: float) -> str:
        try:
            meta = ClipMeta.model_validate_json(payload)
        except ValidationError:
            return "bad_meta"
        if meta.event_id != t.event_id:
            return "bad_meta"
        if meta.state != "ready":
            self.book.clip_state(t.event_id, t.node, meta.state, meta.reason, now)
            return "state"
        if meta.bytes <= 0 or meta.chunks != -(-meta.bytes // meta.chunk_bytes) or not meta.sha256:
            return "bad_meta"
        key = (t.node, t.event_id)
        old = self._partials.get(key)
        if old is not None and old.meta == meta:
            return "meta"  # a repeated upload: keep what arrived, the gaps get filled
        self._drop(key)
        if self.partial_bytes(t.node) + meta.bytes > self.quota_bytes:
            self.book.clip_state(t.event_id, t.node, "rejected", "over the node's partial quota", now)
            return "over_quota"
        path = self.files.partial / f"{t.node}-{t.event_id}.part"
        with path.open("wb") as f:
            f.truncate(meta.bytes)
        self._partials[key] = _Partial(t.node, meta, path, now)
        self.book.clip_state(t.event_id, t.node, "receiving", "", now)
        return "meta"

    def _chunk(self, t: ClipTopic, index: int, data: bytes, now: float) -> str:
        part = self._partials.get((t.node, t.event_id))
        if part is None:
            return "no_meta"
        meta = part.meta
        want = min(meta.chunk_bytes, meta.bytes - index * meta.chunk_bytes)
        if index >= meta.chunks or len(data) != want:
            return "bad_chunk"
        if index in part.got:
            return "duplicate"
        with part.path.open("r+b") as f:
            f.seek(index * meta.chunk_bytes)
            f.write(data)
        part.got.add(index)
        if len(part.got) < meta.chunks:
            return "chunk"
        return self._finish(t, part, now)

    def _finish(self, t: ClipTopic, part: _Partial, now: float) -> str:
        self._partials.pop((t.node, t.event_id), None)
        digest = hashlib.sha256()
        with part.path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        size = part.path.stat().st_size
        if digest.hexdigest() != part.meta.sha256 or size != part.meta.bytes:
            part.path.unlink(missing_ok=True)
            self.book.clip_state(t.event_id, t.node, "rejected", "sha256 or size differs from its meta", now)
            return "bad_sha"
        final = self.files.path_for(part.meta.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part.path, final)  # one rename: the served path is whole or absent
        m = part.meta
        self.book.clip_stored(t.event_id, t.node, m.sha256, m.bytes, m.duration_s, m.start_ts, now)
        log.info("clip %s from node %s stored (%d bytes)", t.event_id, t.node, m.bytes)
        return "stored"

    def sweep(self, now: float) -> int:
        """Drop partials older than `partial_ttl_s` (an upload that never completed); returns how many."""
        old = [k for k, p in self._partials.items() if now - p.started > self.partial_ttl_s]
        for key in old:
            self._drop(key)
            self.counts["partial_expired"] += 1
        return len(old)

    def _drop(self, key: tuple[str, str]) -> None:
        part = self._partials.pop(key, None)
        if part is not None:
            part.path.unlink(missing_ok=True)


def clear_partials(files: ClipFiles, book: ClipBook, now: float) -> int:
    """At start-up: partial files of an earlier run have no meta in memory; they are never served, and
    the clips they belonged to say so (state `rejected`: ask again). Returns how many uploads were cut."""
    for path in files.partial.glob("*.part"):
        path.unlink(missing_ok=True)
    cut = book.clips_interrupted("the station restarted during the upload; ask for the video again", now)
    if cut:
        log.warning("clips: %d upload(s) cut by a restart; the operator may ask again", cut)
    return cut


def expire_clips(store: Store, files: ClipFiles, cutoff: float, now: float) -> int:
    """Retention: clips stored before `cutoff` are deleted and their events marked expired (the
    dashboard says so); a file still referenced by a younger event's clip stays."""
    ids = [event_id for event_id, _ in store.clips_stored_before(cutoff)]
    if not ids:
        return 0
    for sha in store.clips_expire(ids, now):
        files.delete(sha)
    mark_clips_expired(store, ids, now)
    log.info("retention: %d clip(s) expired", len(ids))
    return len(ids)


class ClipReceiver:
    """The assembler on its own thread: the MQTT thread only queues (bounded), never touches disk or SQL.
    A message that finds the queue full is dropped and counted; the operator's repeated request resends."""

    def __init__(self, assembler: ClipAssembler, prefix: str, queue_max: int = 256) -> None:
        self.assembler = assembler
        self.prefix = prefix
        self._queue: queue.Queue[tuple[ClipTopic, bytes] | tuple[()] | None] = queue.Queue(maxsize=queue_max)
        self._thread: threading.Thread | None = None

    def offer(self, topic: str, payload: bytes) -> bool:
        """Called on the MQTT thread for every message under a clips topic; False when refused."""
        parsed = parse_clip_topic(topic, self.prefix)
        if parsed is None:
            self.assembler.counts["bad_topic"] += 1
            return False
        try:
            self._queue.put_nowait((parsed, payload))
        except queue.Full:
            self.assembler.counts["queue_full"] += 1
            return False
        return True

    def start(self) -> None:
        self.assembler.counts["interrupted"] += clear_partials(
            self.assembler.files, self.assembler.book, time.time()
        )
        self._thread = threading.Thread(target=self._run, name="clip-receiver", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        swept = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=10.0)
            except queue.Empty:
                item = ()
            if time.monotonic() - swept > 10.0:  # busy or idle, stale partials go
                self.assembler.sweep(time.time())
                swept = time.monotonic()
            if item is None:
                return
            if not item:
                continue
            try:
                self.assembler.message(item[0], item[1], time.time())
            except Exception:  # a disk or store error loses this clip, never the receiver
                log.exception("clip %s from node %s: could not be handled", item[0].event_id, item[0].node)
                self.assembler.counts["internal_error"] += 1
