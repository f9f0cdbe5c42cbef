"""The contract's timestamp format: UTC ISO 8601 with milliseconds and `Z` when written, any offset read."""

from __future__ import annotations

from datetime import datetime, timezone

TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
LOCAL_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?[+-]\d{2}:\d{2}$"


def iso_from_epoch(ts: float) -> str:
    """UTC ISO 8601 with milliseconds and Z, e.g. 2026-11-28T15:00:00.123Z."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(value: str) -> datetime:
    """ISO 8601 with an offset or `Z` (Python 3.10's fromisoformat does not take `Z`)."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset or Z")
    return parsed
