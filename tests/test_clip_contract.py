"""The clip wire contract: upload_clip commands, clip topics and meta (contract/clips.py)."""

from __future__ import annotations

import json

import pytest

from contract.clips import (
    CHUNK_BYTES,
    MAX_CHUNKS,
    ClipMeta,
    parse_clip_topic,
    split_clip,
    topic_clip_chunk,
    topic_clip_meta,
)
from contract.commands import CommandError, command_payload, parse_command

P = "roadwatch/v1"
EID = "0b8e6c7a-1f2d-4e5a-9b3c-7d6e5f4a3b2c"
CAMS = frozenset({"gate"})


def test_upload_clip_command_round_trips_with_its_event_id() -> None:
    body = command_payload("upload_clip", "op", 1_700_000_000.0, event_id=EID)
    cmd = parse_command(f"{P}/n1/gate/commands/upload_clip", body, P, "n1", CAMS)
    assert (cmd.command, cmd.event_id, cmd.camera) == ("upload_clip", EID, "gate")
    old = command_payload("take_reference", "op", 1_700_000_000.0)
    assert "event_id" not in json.loads(old)  # take_reference stays byte-compatible with older nodes
    assert parse_command(f"{P}/n1/gate/commands/take_reference", old, P, "n1", CAMS).event_id == ""


@pytest.mark.parametrize(
    ("command", "event_id", "why"),
    [
        ("upload_clip", None, "event_id is required"),
        ("take_reference", EID, "event_id is required"),
        ("upload_clip", "not-a-uuid", "event_id"),
    ],
)
def test_event_id_is_checked(command: str, event_id: str | None, why: str) -> None:
    body = {"v": 1, "command_id": "c1", "command": command, "issued_at": "2026-12-01T00:00:00Z", "by": "op"}
    if event_id is not None:
        body["event_id"] = event_id
    with pytest.raises(CommandError, match=why):
        parse_command(f"{P}/n1/gate/commands/{command}", json.dumps(body).encode(), P, "n1", CAMS)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (topic_clip_meta(P, "n1", "gate", EID), ("n1", "gate", EID, None)),
        (topic_clip_chunk(P, "n1", "gate", EID, 7), ("n1", "gate", EID, 7)),
        (f"{P}/n1/gate/clips/{EID}/{MAX_CHUNKS}", None),  # beyond the largest clip
        (f"{P}/n1/gate/clips/{EID}/-1", None),
        (f"{P}/n1/gate/clips/{EID}/٣", None),  # a non-ASCII digit
        (f"{P}/n1/gate/clips/not-a-uuid/meta", None),
        (f"{P}/n1/gate/snapshots/{EID}", None),
        (f"other/n1/gate/clips/{EID}/meta", None),
        (f"{P}/n+1/gate/clips/{EID}/meta", None),
    ],
)
def test_parse_clip_topic(topic: str, expected: tuple[str, str, str, int | None] | None) -> None:
    got = parse_clip_topic(topic, P)
    assert (None if got is None else (got.node, got.camera, got.event_id, got.index)) == expected


@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 5])
def test_split_clip_covers_the_file_exactly(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sha, chunks = split_clip(data)
    assert b"".join(chunks) == data and all(len(c) == CHUNK_BYTES for c in chunks[:-1])
    assert len(chunks) == -(-size // CHUNK_BYTES) and len(sha) == 64


def test_meta_refuses_an_impossible_size() -> None:
    ClipMeta(v=1, event_id=EID, state="ready", sha256="a" * 64, bytes=10, chunks=1)
    with pytest.raises(ValueError, match="bytes"):
        ClipMeta(v=1, event_id=EID, state="ready", bytes=10**9)
