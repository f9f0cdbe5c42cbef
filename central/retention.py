"""Retention settings (`retention:` in the station config) and the policy the store applies.

The commune keeps counts and summaries long (they answer "how much traffic on this road last year") and
pictures short (they show people): so events are kept per kind (`per_kind`, else `default_days`),
snapshots and clips by their own ages, and the snapshot disk budget still applies. The sweep itself is
SQL and lives with the store (central/storeretain.py); this module only says what to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator, model_validator

from common.yamlconf import Strict
from contract.kinds import ALL_KINDS

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Ages in seconds; `clips_s` None keeps clips as long as their event."""

    default_s: float
    per_kind_s: dict[str, float]
    snapshots_s: float
    clips_s: float | None
    max_snapshot_bytes: int


class RetentionSettings(Strict):
    default_days: float = Field(default=90.0, gt=0, description="Events of kinds not in per_kind")
    per_kind: dict[str, float] = Field(
        default_factory=dict, description="Days to keep events of a kind, e.g. {line_crossing: 730}"
    )
    snapshots_days: float | None = Field(
        default=None, gt=0, description="Days to keep snapshots (default: default_days)"
    )
    clips_days: float | None = Field(
        default=None, gt=0, description="Days to keep event clips (default: as events)"
    )
    max_snapshot_mb: float = Field(
        default=4096.0, gt=0, description="Disk budget of snapshots; oldest go first"
    )
    interval_s: float = Field(default=600.0, gt=0, le=86400, description="How often retention runs")
    max_orphan_snapshot_mb: float = Field(
        default=16.0,
        gt=0,
        le=4096,
        description="Per node: snapshots waiting for their event; beyond it new ones are refused on arrival",
    )
    orphan_snapshot_ttl_s: float = Field(
        default=3600.0, gt=0, le=7 * 86400, description="How long a snapshot waits for its event"
    )

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, data: Any) -> Any:
        """`max_age_days` was the one age before ages per kind; older station configs keep working."""
        if isinstance(data, dict) and "max_age_days" in data:
            data = dict(data)
            old = data.pop("max_age_days")
            if "default_days" in data:
                raise ValueError("give default_days or the older max_age_days, not both")
            data["default_days"] = old
        return data

    @field_validator("per_kind")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, days in value.items():
            if kind not in ALL_KINDS:
                raise ValueError(f"unknown event kind {kind!r} (known: {', '.join(sorted(ALL_KINDS))})")
            if not days > 0:
                raise ValueError(f"{kind}: days must be more than 0")
        return value

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(
            default_s=self.default_days * DAY_S,
            per_kind_s={k: d * DAY_S for k, d in self.per_kind.items()},
            snapshots_s=(self.snapshots_days or self.default_days) * DAY_S,
            clips_s=self.clips_days * DAY_S if self.clips_days is not None else None,
            max_snapshot_bytes=int(self.max_snapshot_mb * 1024 * 1024),
        )
