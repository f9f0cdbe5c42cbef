"""Phases of an event and the states a node or a camera stream reports.

A file source that reached its end reports `ended`, not `lost`: nothing is wrong with the camera, so the
station must not raise `camera_stream_lost` for it.
"""

from __future__ import annotations

from typing import Literal, get_args

Phase = Literal["instant", "start", "update", "end"]
PHASES: tuple[Phase, ...] = get_args(Phase)

NodeState = Literal["online", "offline", "stopped"]
NODE_STATES: tuple[NodeState, ...] = get_args(NodeState)

StreamState = Literal["starting", "ok", "lost", "frozen", "ended"]
STREAM_STATES: tuple[StreamState, ...] = get_args(StreamState)
