"""Optimal assignment of tracks to detections, small and numpy-only (no scipy on the edge).

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
