"""How many observations in a row make a fact, at whatever rate the detector runs.

Confirmation by count (a track after 3 hits, a crossing after 2 observations on the new side) is a time
in disguise: 3 runs are a tenth of a second at 30 runs a second but 0.6 s at 5, by which time a motorbike
has crossed the line and left. The tracker and the line rule therefore ask for as many observations as
span a time, measured on the rate the detector actually runs at (which varies with load and the motion
gate), never fewer than one nor more than their count setting. Measured on every labelled line at 5, 10
and every frame: docs/evaluation.md, "Sixth round".
"""

from __future__ import annotations

import math


class RunPeriod:
    """A smoothed time between successive calls (an exponential average; None before the second call)."""

    def __init__(self, weight: float = 0.2) -> None:
        self.weight = weight
        self.value: float | None = None
        self._last_t: float | None = None

    def observe(self, t: float) -> None:
        """One call at frame time `t`; a clock going back restarts the measurement."""
        if self._last_t is not None and t < self._last_t:
            self.reset()
        dt = None if self._last_t is None else t - self._last_t
        self._last_t = t
        if dt is not None and dt > 0.0:
            self.value = dt if self.value is None else (1 - self.weight) * self.value + self.weight * dt

    def reset(self) -> None:
        self.value = None
        self._last_t = None


def observations_for(confirm_s: float, period: float | None, most: int) -> int:
    """Observations in a row that span `confirm_s` at `period` (rounded up), between 1 and `most`; `most`
    when either is unknown or `confirm_s` is 0. The epsilon keeps an exact multiple (0.1 s at 30 runs a
    second) from rounding up to one more run."""
    if confirm_s <= 0.0 or period is None or period <= 0.0:
        return most
    return max(1, min(most, math.ceil(confirm_s / period - 1e-6)))
