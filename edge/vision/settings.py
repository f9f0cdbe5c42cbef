"""Camera config sections of the vision stage: tracker thresholds and how detections become objects.

Only pydantic here (no numpy): `edge.camera_config` embeds these sections, `edge.vision.tracker` and
`edge.vision.objects` turn them into arrays once per camera. Defaults were chosen by measurement over
every labelled clip and model (docs/evaluation.md, `scripts/tune_counts.py`), not by hand.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from common.yamlconf import Strict

DEFAULT_GROUPS: tuple[tuple[str, ...], ...] = (("car", "truck", "bus"), ("motorcycle", "bicycle"))
TWO_WHEELERS: tuple[str, ...] = ("motorcycle", "bicycle")


class TrackerConfig(Strict):
    """`tracker:` of a camera. Scores are detector confidences, times seconds of frame time.

    A detection enters the first association stage at its class threshold (`min_score` /
    `class_min_score`), raised to `high_score` when that is higher; it starts a new track at that level
    plus `new_track_margin`. So `min_score` really is the knob for faint vehicles.
    """

    high_score: float = Field(
        default=0.0, ge=0, le=1,
        description="Floor of the first-stage score; the camera's class thresholds apply above it",
    )  # fmt: skip
    new_track_margin: float = Field(
        default=0.0, ge=0, le=0.5,
        description="A detection starts a track at its first-stage threshold plus this margin",
    )  # fmt: skip
    low_score: float = Field(
        default=0.05, ge=0.01, le=1,
        description="Weaker boxes down to this score only keep existing tracks alive (second stage)",
    )  # fmt: skip
    min_hits: int = Field(default=3, ge=1, le=10, description="Matches in a row that confirm a new track")
    confirm_s: float = Field(
        default=0.1, ge=0, le=5,
        description="At a low detection rate fewer matches confirm a track: as many as span this many seconds "
        "of detector runs (at least one, at most min_hits); 0 always asks min_hits",
    )  # fmt: skip
    max_age_s: float = Field(
        default=1.5, ge=0, le=30, description="How long a confirmed track survives without a detection"
    )
    match_iou: float = Field(
        default=0.2, gt=0, lt=1, description="Minimum IoU, confirmed tracks, first stage"
    )
    low_match_iou: float = Field(default=0.4, gt=0, lt=1, description="Minimum IoU, second (low-score) stage")
    tentative_match_iou: float = Field(default=0.3, gt=0, lt=1, description="Minimum IoU, tentative tracks")
    assignment: Literal["greedy", "optimal"] = Field(
        default="greedy", description="Matching: greedy by IoU, or the optimal assignment (maximum total IoU)"
    )
    match_distance: float = Field(
        default=7.5, ge=0, le=50,
        description="Last stage, in box sizes per second since the track was last seen: a track and a "
        "first-stage detection left unmatched by IoU are one object when the detection's centre lies within "
        "that distance of the track's predicted centre and their sizes agree (at a few detections a second a "
        "fast object's boxes no longer overlap); 0 turns it off",
    )  # fmt: skip


class RiderPaceConfig(Strict):
    """`objects.rider_pace:` a `person` track moving faster than people walk or run is a lone rider.

    Pace is measured in the track's own box heights per second (roughly free of perspective: a walker
    makes about 0.5-1, a runner about 2, a cyclist 3 and more), as the net displacement of the box centre
    over `window_s` divided by the median box height in that window, and counts only when no single step
    makes up more than `max_step_share` of the path (an id swap or a jumpy box is one big step).
    """

    enabled: bool = Field(default=True, description="Report fast `person` tracks as two-wheelers")
    min_heights_per_s: float = Field(
        default=3.0, gt=0, le=50,
        description="Pace (box heights per second, sustained over window_s) above which a person rides",
    )  # fmt: skip
    motorcycle_heights_per_s: float = Field(
        default=6.0, gt=0, le=100,
        description="Pace from which the rider is a motorcycle rather than a bicycle",
    )  # fmt: skip
    window_s: float = Field(default=1.0, gt=0, le=10, description="Seconds the pace is measured over")
    max_step_share: float = Field(
        default=0.5, gt=0, le=1,
        description="Largest share of the window's path one step may make (a jump is no ride)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _bands(self) -> RiderPaceConfig:
        if self.motorcycle_heights_per_s < self.min_heights_per_s:
            raise ValueError("motorcycle_heights_per_s must be at least min_heights_per_s")
        return self


class ObjectsConfig(Strict):
    """`objects:` of a camera: how raw detections become one detection per object, before tracking.

    `groups`: classes that one object may be detected as at once (a van seen as car and truck); within a
    group, overlapping boxes above `group_iou` are suppressed to the best one, and the track's class stays
    the vote over frames. `riders`: a person box sitting on a motorcycle or bicycle box is merged into that
    two-wheeler (one object, counted as the vehicle, never as a pedestrian).
    """

    groups: tuple[tuple[str, ...], ...] = Field(
        default=DEFAULT_GROUPS, max_length=16, description="Class groups for cross-class suppression"
    )
    group_iou: float = Field(default=0.6, gt=0, lt=1, description="IoU above which boxes of a group are one")
    riders: bool = Field(default=True, description="Merge a rider (person) into the two-wheeler under it")
    rider_min_overlap: float = Field(
        default=0.3, gt=0, le=1,
        description="Share of the two-wheeler box's height the rider's box must cover",
    )  # fmt: skip

    narrow_car_aspect: float = Field(
        default=0.0, ge=0, le=2,
        description="A `car` box narrower than this (width / height) is a motorcycle seen head-on or from "
        "behind (small detectors often call those car); 0 turns it off",
    )  # fmt: skip
    rider_pace: RiderPaceConfig = Field(
        default_factory=RiderPaceConfig, description="Lone riders seen only as `person`, told by their pace"
    )

    class_scope: Literal["camera", "all"] = Field(
        default="all",
        description="Which classes compete for a box's label: `camera` = only those the camera wants (its "
        "classes, riders' classes, alias sources), as a detector trained on just those would; `all` = every "
        "class of the model (a box whose best class is unwanted is dropped)",
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Model class -> the class this camera counts it as, for views the model was not trained "
        "on (the COCO models call top-down cars 'cell phone'): {cell phone: car}",
    )

    @field_validator("aliases")
    @classmethod
    def _no_chains(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            if source == target or target in value:
                raise ValueError(f"{source!r} -> {target!r}: an alias must name a class that is not aliased")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> ObjectsConfig:
        seen: set[str] = set()
        for i, group in enumerate(self.groups):
            twice = seen & set(group)
            if twice:
                raise ValueError(f"groups[{i}]: {sorted(twice)} already in another group")
            seen |= set(group)
        return self
