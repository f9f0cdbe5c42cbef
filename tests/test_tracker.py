"""Tracker behaviour on synthetic box paths: id stability, confirmation, loss, class vote, velocity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from edge.geometry import iou_matrix
from edge.records import Detections, Tracks
from edge.vision.assign import match_greedy
from edge.vision.kalman import BoxKalman, cxcywh_to_xyxy, xyxy_to_cxcywh
from edge.vision.tracker import Tracker, TrackerSettings

FPS = 10.0
CAR, TRUCK, PERSON = 2, 7, 0

Box = tuple[float, float, float, float]


def dets(*objs: tuple[Box, float, int]) -> Detections:
    """Detections from (xyxy, score, class_id) triples."""
    if not objs:
        return Detections.empty()
    return Detections(
        np.array([o[0] for o in objs], np.float32),
        np.array([o[1] for o in objs], np.float32),
        np.array([o[2] for o in objs], np.int64),
    )


def box_at(cx: float, cy: float, w: float = 40.0, h: float = 80.0) -> Box:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def run(tracker: Tracker, frames: Sequence[Detections], t0: float = 0.0) -> list[Tracks]:
    return [tracker.update(d, t0 + i / FPS) for i, d in enumerate(frames)]


def id_near(tracks: Tracks, cx: float) -> int:
    """Id of the track whose box centre is nearest to x = `cx`."""
    centres = tracks.anchors("center")[:, 0]
    return int(tracks.track_ids[np.argmin(np.abs(centres - cx))])


def test_steady_box_keeps_one_id_confirmed_after_min_hits() -> None:
    tracker = Tracker()
    out = run(tracker, [dets((box_at(100 + 10 * i, 200), 0.9, CAR)) for i in range(30)])
    assert [len(o) for o in out[:2]] == [0, 0]  # tentative for min_hits - 1 frames
    assert all(len(o) == 1 for o in out[2:])
    assert {int(o.track_ids[0]) for o in out[2:]} == {1}
    # The reported box is this frame's detection, not the filtered one.
    np.testing.assert_allclose(out[-1].xyxy[0], box_at(390, 200), atol=1e-4)
    assert tracker.active_count == 1


@pytest.mark.parametrize("dy", [0.0, 30.0])
def test_crossing_boxes_keep_their_ids(dy: float) -> None:
    """Two people walk past each other (fully overlapping when dy = 0); each keeps its id."""
    frames = []
    for i in range(40):
        a = box_at(100 + 8 * i, 200)
        b = box_at(420 - 8 * i, 200 + dy)
        frames.append(dets((a, 0.9, PERSON), (b, 0.85, PERSON)))
    out = run(Tracker(), frames)
    first, last = out[3], out[-1]
    assert len(first) == 2 and len(last) == 2
    left_id, right_id = id_near(first, 124), id_near(first, 396)
    assert left_id != right_id
    # After crossing, the one that started left is now on the right.
    assert id_near(last, 100 + 8 * 39) == left_id
    assert id_near(last, 420 - 8 * 39) == right_id


@pytest.mark.parametrize(("gap_frames", "survives"), [(5, True), (14, True), (20, False)])
def test_occlusion_gap_keeps_or_ends_the_track(gap_frames: int, survives: bool) -> None:
    """max_age_s = 1.5 s: seen again 0.6 s or 1.5 s after the last detection keeps the id; 2.1 s later the
    track has ended (reported once, at the first update more than 1.5 s after it was last seen) and the
    object gets a new id."""
    frames = [dets((box_at(100 + 5 * i, 200), 0.9, CAR)) for i in range(10)]
    frames += [Detections.empty()] * gap_frames
    start = 10 + gap_frames
    frames += [dets((box_at(100 + 5 * i, 200), 0.9, CAR)) for i in range(start, start + 10)]
    out = run(Tracker(), frames)
    ended = np.concatenate([o.ended for o in out])
    ids_after = {int(i) for o in out[start:] for i in o.track_ids}
    if survives:
        assert ended.size == 0
        assert ids_after == {1}
        assert len(out[start]) == 1  # matched again at once, no re-confirmation
    else:
        assert ended.tolist() == [1]
        ended_at = [i for i, o in enumerate(out) if o.ended.size]
        # Last seen at frame 9 (t = 0.9 s); it ends at the first update more than 1.5 s later.
        assert ended_at == [next(i for i in range(10, 40) if i / FPS - 9 / FPS > 1.5)]
        assert ids_after == {2}
        assert len(out[start]) == 0 and len(out[start + 1]) == 0  # the new track must confirm again


def test_tentative_tracks_and_one_frame_false_positives_never_appear() -> None:
    tracker = Tracker()
    frames = [dets((box_at(300, 300), 0.95, PERSON))] + [Detections.empty()] * 3  # one-frame false positive
    frames += [dets((box_at(100, 100), 0.9, CAR))] * 2 + [Detections.empty()] * 3  # two hits, one short
    frames += [dets((box_at(500, 100), 0.9, CAR))] * 3  # a real one, confirmed at its third frame
    out = run(tracker, frames)
    assert all(len(o) == 0 for o in out[:-1])
    assert out[-1].track_ids.tolist() == [1]  # tentative tracks did not use up ids
    assert all(o.ended.size == 0 for o in out)  # tentative tracks end silently


def test_two_trackers_hand_out_independent_ids() -> None:
    a, b = Tracker(), Tracker()
    for i in range(5):
        ta = a.update(dets((box_at(100 + 5 * i, 100), 0.9, CAR), (box_at(400, 300), 0.9, CAR)), i / FPS)
        tb = b.update(dets((box_at(200, 200 + 5 * i), 0.9, PERSON)), i / FPS)
    assert ta.track_ids.tolist() == [1, 2]
    assert tb.track_ids.tolist() == [1]


def test_class_by_majority_vote() -> None:
    """Five frames as car and one (higher-scored) as truck: the track stays a car, every frame."""
    classes = [CAR, CAR, TRUCK, CAR, CAR, CAR]
    scores = [0.8, 0.8, 0.9, 0.8, 0.8, 0.8]
    pairs = enumerate(zip(classes, scores, strict=True))
    out = run(Tracker(), [dets((box_at(100 + 5 * i, 100), s, c)) for i, (c, s) in pairs])
    assert [o.class_ids.tolist() for o in out[2:]] == [[CAR]] * 4


def test_class_vote_follows_a_lasting_change() -> None:
    """A track first called truck but then car for a long time ends up car (the vote is bounded)."""
    settings = TrackerSettings(vote_cap=5.0)
    frames = [dets((box_at(100, 100), 0.9, TRUCK))] * 20 + [dets((box_at(100, 100), 0.9, CAR))] * 20
    out = run(Tracker(settings), frames)
    assert out[19].class_ids.tolist() == [TRUCK]
    assert out[-1].class_ids.tolist() == [CAR]


def test_low_score_detections_keep_a_track_alive() -> None:
    """ByteTrack's second stage: a confirmed track lives on through 3 s of low-score (0.2) detections."""
    frames = [dets((box_at(100 + 5 * i, 200), 0.9, PERSON)) for i in range(5)]
    frames += [dets((box_at(100 + 5 * i, 200), 0.2, PERSON)) for i in range(5, 35)]
    out = run(Tracker(), frames)
    assert all(o.track_ids.tolist() == [1] for o in out[2:])
    assert all(o.ended.size == 0 for o in out)
    assert out[-1].scores[0] == pytest.approx(0.2)


def test_low_score_detections_never_start_tracks() -> None:
    out = run(Tracker(), [dets((box_at(100, 100), 0.4, CAR))] * 10)
    assert all(len(o) == 0 for o in out)


def test_velocity_estimate_in_pixels_per_second() -> None:
    """A box moving 100 px/s right and 50 px/s down at 10 fps: the estimate is within 10 %."""
    out = run(Tracker(), [dets((box_at(100 + 10 * i, 100 + 5 * i), 0.9, CAR)) for i in range(20)])
    vx, vy = out[-1].velocities[0]
    assert vx == pytest.approx(100.0, rel=0.1)
    assert vy == pytest.approx(50.0, rel=0.1)
    assert out[5].velocities[0, 0] == pytest.approx(100.0, rel=0.25)  # already close soon after confirmation


def test_variable_frame_rate_uses_frame_times() -> None:
    """Detections at irregular times (motion gating, drops): the id holds and velocity stays in px/s."""
    times = np.cumsum(np.r_[0.0, np.tile([0.1, 0.3, 0.05, 0.2], 6)])
    tracker = Tracker()
    out = [tracker.update(dets((box_at(100 + 80 * t, 200), 0.9, CAR)), float(t)) for t in times]
    assert {int(i) for o in out[2:] for i in o.track_ids} == {1}
    assert out[-1].velocities[0, 0] == pytest.approx(80.0, rel=0.1)


def test_ended_track_is_reported_once_and_rest_of_output_is_empty() -> None:
    tracker = Tracker(TrackerSettings(max_age_s=0.5))
    run(tracker, [dets((box_at(100, 100), 0.9, CAR))] * 3)
    later = [tracker.update(Detections.empty(), 0.2 + 0.1 * k) for k in range(1, 12)]
    assert [o.ended.tolist() for o in later if o.ended.size] == [[1]]
    assert all(len(o) == 0 for o in later)
    assert tracker.active_count == 0


def test_reset_ends_tracks_and_keeps_ids_unique() -> None:
    tracker = Tracker()
    run(tracker, [dets((box_at(100, 100), 0.9, CAR))] * 3)
    assert tracker.reset().ended.tolist() == [1]
    out = run(tracker, [dets((box_at(100, 100), 0.9, CAR))] * 3, t0=10.0)
    assert out[-1].track_ids.tolist() == [2]


def test_time_going_back_ends_tracks_once() -> None:
    """A looping file restarts its clock: old tracks end at once instead of never expiring."""
    tracker = Tracker()
    run(tracker, [dets((box_at(100, 100), 0.9, CAR))] * 5, t0=30.0)
    out = run(tracker, [dets((box_at(400, 300), 0.9, CAR))] * 3, t0=0.0)
    assert out[0].ended.tolist() == [1]
    assert [o.ended.size for o in out[1:]] == [0, 0]
    assert out[-1].track_ids.tolist() == [2]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="low_score"):
        TrackerSettings(high_score=0.3, low_score=0.5)
    with pytest.raises(ValueError, match="min_hits"):
        TrackerSettings(min_hits=0)


def test_iou_matrix_and_greedy_matching() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float64)
    iou = iou_matrix(a, b)
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0], [0.0, 0.0, 0.0]])
    rows, cols = match_greedy(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.2)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0)]  # row 1 is left with 0.1
    rows, cols = match_greedy(np.array([[0.5, 0.8], [0.7, 0.1]]), 0.2)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_kalman_round_trip_and_no_inverse_update() -> None:
    boxes = np.array([[10, 20, 50, 100], [0, 0, 4, 2]], np.float64)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)
    kf = BoxKalman()
    means, covs = kf.initiate(boxes)
    means, covs = kf.predict(means, covs, 0.1)
    updated, ucovs = kf.update(means, covs, boxes + 2.0)
    # The estimate moves towards the measurement, not past it, and uncertainty shrinks.
    moved = updated[:, :2] - means[:, :2]
    assert np.all((moved > 0) & (moved <= 2.0))
    assert np.all(ucovs[..., 0, 0] < covs[..., 0, 0])
    # Covariance blocks stay symmetric.
    np.testing.assert_allclose(ucovs[..., 0, 1], ucovs[..., 1, 0])


@pytest.mark.parametrize(
    ("score", "threshold", "starts"),
    [
        (0.65, None, True),  # default ByteTrack thresholds: 0.65 >= new_track_score 0.6
        (0.65, 0.3, True),  # a lower class threshold never lowers the bar below high_score
        (0.65, 0.7, False),  # a class threshold above high_score raises it (0.7 + 0.1 to start)
        (0.85, 0.7, True),
    ],
)
def test_per_class_thresholds_raise_the_bar_for_new_tracks(
    score: float, threshold: float | None, starts: bool
) -> None:
    tracker = Tracker()
    out: Tracks = Tracks.empty()
    for i in range(5):
        d = dets((box_at(100 + 5 * i, 100), score, 2))
        th = None if threshold is None else np.full(len(d), threshold, np.float32)
        out = tracker.update(d, i * 0.1, th)
    assert (len(out) == 1) is starts
