"""Analytics rules: pure components that turn each frame's tracks into events.

Config models live in `edge.rules.settings` (imported by `edge.config`); the rule classes never import
`edge.config` at run time, so this package can be imported from there without a cycle.
"""

from edge.rules.base import Rule, RuleContext, TrackTable
from edge.rules.build import CameraRules, build_rules, ground_plane
from edge.rules.collision import SuspectedCollision
from edge.rules.lane import StoppedVehicle, WrongWay
from edge.rules.line import LineCrossing
from edge.rules.speed import SpeedEstimator, Speeding
from edge.rules.zone import Intrusion, Loitering, Schedule, ZoneCount

__all__ = [
    "CameraRules",
    "Intrusion",
    "LineCrossing",
    "Loitering",
    "Rule",
    "RuleContext",
    "Schedule",
    "SpeedEstimator",
    "Speeding",
    "StoppedVehicle",
    "SuspectedCollision",
    "TrackTable",
    "WrongWay",
    "ZoneCount",
    "build_rules",
    "ground_plane",
]
