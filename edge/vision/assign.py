"""Assignment of tracks to detections, small and numpy-only (no scipy on the edge): greedy by IoU, by
centre distance (`match_near`, the tracker's last stage at low detection rates) and optimal.

Greedy IoU matching takes the best pair first; when two vehicles side by side overlap both predictions,
the greedy choice can steal the other's detection and swap or end a track. The optimal assignment
takes the most pairs and, among those, the largest total IoU instead. This is the shortest augmenting path algorithm (Jonker & Volgenant
1987, in the form Crouse 2016 describes and scipy's `linear_sum_assignment` uses), O(n^3) with an inner
loop vectorised over columns: a few tens of microseconds for the handful of objects a camera tracks.
Pairs below the gate (`min_iou`) are never returned.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _solve(cost: F64) -> I64:
    """For a cost matrix with rows <= columns: the column assigned to each row, minimising the sum."""
    n, m = cost.shape
    u = np.zeros(n)
    v = np.zeros(m)
    col_of_row = np.full(n, -1, np.int64)
    row_of_col = np.full(m, -1, np.int64)
    for cur in range(n):
        shortest = np.full(m, np.inf)
        path = np.full(m, -1, np.int64)
        seen_cols = np.zeros(m, bool)
        row, min_val, sink = cur, 0.0, -1
        while sink < 0:
            free = ~seen_cols
            reduced = min_val + cost[row] - u[row] - v
            better = free & (reduced < shortest)
            shortest[better] = reduced[better]
            path[better] = row
            cand = np.where(free, shortest, np.inf)
            j = int(np.argmin(cand))
            min_val = float(cand[j])
            seen_cols[j] = True
            if row_of_col[j] < 0:
                sink = j
            else:
                row = int(row_of_col[j])
        # Update the dual variables, then flip the augmenting path.
        u[cur] += min_val
        rows_on_path = row_of_col[seen_cols]
        rows_on_path = rows_on_path[rows_on_path >= 0]
        u[rows_on_path] += min_val - shortest[col_of_row[rows_on_path]]
        v[seen_cols] -= min_val - shortest[seen_cols]
        j = sink
        while True:
            row = int(path[j])
            row_of_col[j] = row
            j, col_of_row[row] = int(col_of_row[row]), j
            if row == cur:
                break
    return col_of_row


def match_optimal(iou: F64, min_iou: float) -> tuple[I64, I64]:
    """Pairs (rows, cols) among cells at or above `min_iou`: as many as possible, then the largest total IoU."""
    iou = np.asarray(iou, np.float64)
    if iou.size == 0 or not (iou >= min_iou).any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Only rows and columns with at least one admissible cell take part (usually most are out).
    rows = np.flatnonzero((iou >= min_iou).any(axis=1))
    cols = np.flatnonzero((iou >= min_iou).any(axis=0))
    sub = iou[np.ix_(rows, cols)]
    # Inadmissible cells cost more than any admissible assignment could save.
    cost = np.where(sub >= min_iou, 1.0 - sub, 1.0 + sub.shape[0] + sub.shape[1])
    transposed = cost.shape[0] > cost.shape[1]
    assigned = _solve(cost.T if transposed else cost)
    r = np.arange(assigned.shape[0])
    r, c = (assigned, r) if transposed else (r, assigned)
    ok = sub[r, c] >= min_iou
    order = np.argsort(rows[r[ok]], kind="stable")
    return rows[r[ok]][order], cols[c[ok]][order]


# Sizes a box may grow or shrink by between two detections of one object in the distance stage (area
# ratio); beyond it a near box is another object (a rider beside a bus), not the same one seen later.
NEAR_AREA_RATIO = 2.5


def match_near(predicted: F64, boxes: F64, max_distance: F64) -> tuple[I64, I64]:
    """Pairs (rows, cols) of predicted track boxes and detection boxes (xyxy) whose centres lie within
    `max_distance[row]` box sizes (square root of the mean of both areas) and whose areas differ by less
    than `NEAR_AREA_RATIO`, taken greedily by that normalised distance, nearest first.

    Why: IoU needs the boxes of one object to overlap between two detector runs. At the few runs a second
    of a loaded node a car or motorbike moves more than its own length between them, and a new track has
    no velocity yet to predict that: every run would start another tentative track and none would ever
    be confirmed (measured: half the crossings of the motorway clip lost at 5 detections/s). This stage
    only sees what the IoU stages left, so where boxes overlap it changes nothing.
    """
    centre_p = (predicted[:, :2] + predicted[:, 2:]) / 2.0
    centre_b = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    area_p = np.prod(np.maximum(predicted[:, 2:] - predicted[:, :2], 1e-6), axis=1)
    area_b = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6), axis=1)
    size = np.sqrt((area_p[:, None] + area_b[None, :]) / 2.0)
    dist = np.linalg.norm(centre_p[:, None, :] - centre_b[None, :, :], axis=2) / size
    ratio = np.maximum(area_p[:, None], area_b[None, :]) / np.minimum(area_p[:, None], area_b[None, :])
    # match_greedy takes the highest first: hand it a closeness that is 0 outside the gates.
    inside = (dist <= max_distance[:, None]) & (ratio < NEAR_AREA_RATIO)
    closeness = np.where(inside, 1.0 / (1.0 + dist), 0.0)
    return match_greedy(closeness, 1e-9)


def match_greedy(iou: F64, min_iou: float) -> tuple[I64, I64]:
    """Pairs (rows, cols) taken greedily by IoU, highest first, each row and column at most once.

    Candidates are the cells at or above `min_iou`, sorted once with numpy; the loop only walks those
    candidates (a few per object).
    """
    rows, cols = np.nonzero(iou >= min_iou)
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    out_rows: list[int] = []
    out_cols: list[int] = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(r)
        used_cols.add(c)
        out_rows.append(r)
        out_cols.append(c)
    return np.asarray(out_rows, np.int64), np.asarray(out_cols, np.int64)
