"""Version and size limits of the wire contract, shared by the node (which clamps) and the station
(which refuses): a payload the node builds within these limits is never rejected after days in its outbox."""

from __future__ import annotations

WIRE_VERSION = 1
DEFAULT_PREFIX = "roadwatch/v1"
MAX_PAYLOAD_BYTES = 64 * 1024  # one event, status or stats message
MAX_STRING = 1024  # any string value or key
MAX_ITEMS = 64  # any array or object
MAX_COMMAND_BYTES = 4096
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
ID_PATTERN = r"^[A-Za-z0-9_-]{1,48}$"  # node and camera ids, safe in a topic level
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
