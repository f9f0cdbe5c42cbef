"""Constant-velocity Kalman filter on boxes, vectorised over all tracks of a camera at once.

The state of a track is `(cx, cy, w, h, vcx, vcy, vw, vh)`: box centre and size in pixels and their rates
in pixels per second. The four axes are modelled as independent position/velocity pairs, so the
covariance is four 2x2 blocks per track (shape `(n, 4, 2, 2)`) instead of one 8x8 matrix, as in norfair.
With a position-only measurement the innovation covariance of each block is a scalar, so the update needs
no matrix inverse and every step is a handful of numpy operations over `(n, 4)` arrays, whatever the
number of tracks.

Time steps come from frame times (`dt` in seconds), so the filter is right when the detector runs at a
varying rate (motion gating, dropped frames). Noise scales with the box size (the geometric mean of width
and height): a near, large object moves and jitters by more pixels than a far, small one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def xyxy_to_cxcywh(xyxy: npt.ArrayLike) -> F64:
    """Corner boxes (n, 4) to centre-size boxes (n, 4)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    return np.concatenate([b[:, :2] + wh * 0.5, wh], axis=1)


def cxcywh_to_xyxy(cxcywh: npt.ArrayLike) -> F64:
    """Centre-size boxes (n, 4) to corner boxes (n, 4); negative sizes are clipped to zero."""
    b = np.asarray(cxcywh, dtype=np.float64).reshape(-1, 4)
    half = np.clip(b[:, 2:], 0.0, None) * 0.5
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def _scale(means: F64) -> F64:
    """Per-track size scale (n, 1): the geometric mean of width and height, at least one pixel."""
    return np.sqrt(np.clip(means[:, 2], 1.0, None) * np.clip(means[:, 3], 1.0, None))[:, None]


@dataclass(frozen=True, slots=True)
class BoxKalman:
    """Noise model of the filter; all standard deviations are fractions of the box size.

    `measure_std`: detector jitter of a box coordinate. `accel_std` / `size_accel_std`: how fast the
    centre / size velocity may change, per second squared (white-noise acceleration). `init_vel_std`:
    uncertainty of the velocity of a new track, per second (a new track's velocity is unknown, so it
    must be large enough to be learnt from the next two or three detections).
    """

    measure_std: float = 0.05
    accel_std: float = 1.0
    size_accel_std: float = 0.3
    init_vel_std: float = 2.0

    def initiate(self, xyxy: npt.ArrayLike) -> tuple[F64, F64]:
        """Means (n, 8) and covariances (n, 4, 2, 2) of new tracks at the given boxes, at rest."""
        z = xyxy_to_cxcywh(xyxy)
        n = z.shape[0]
        means = np.concatenate([z, np.zeros((n, 4))], axis=1)
        s = _scale(means)
        covs = np.zeros((n, 4, 2, 2))
        covs[:, :, 0, 0] = (2.0 * self.measure_std * s) ** 2
        covs[:, :, 1, 1] = (self.init_vel_std * s) ** 2
        return means, covs

    def predict(self, means: F64, covs: F64, dt: float) -> tuple[F64, F64]:
        """State after `dt` seconds: x += v dt; P = F P F^T + Q with F = [[1, dt], [0, 1]] per axis."""
        if means.shape[0] == 0 or dt <= 0.0:
            return means.copy(), covs.copy()
        pos = means[:, :4] + means[:, 4:] * dt
        new_means = np.concatenate([pos, means[:, 4:]], axis=1)
        p00, p01, p10, p11 = covs[..., 0, 0], covs[..., 0, 1], covs[..., 1, 0], covs[..., 1, 1]
        accel = np.array([self.accel_std, self.accel_std, self.size_accel_std, self.size_accel_std])
        q = (accel[None, :] * _scale(means)) ** 2  # (n, 4) acceleration variance per axis
        new_covs = np.empty_like(covs)
        new_covs[..., 0, 0] = p00 + dt * (p01 + p10) + dt * dt * p11 + q * dt**4 / 4.0
        new_covs[..., 0, 1] = p01 + dt * p11 + q * dt**3 / 2.0
        new_covs[..., 1, 0] = p10 + dt * p11 + q * dt**3 / 2.0
        new_covs[..., 1, 1] = p11 + q * dt * dt
        return new_means, new_covs

    def update(self, means: F64, covs: F64, xyxy: npt.ArrayLike) -> tuple[F64, F64]:
        """Correct the states with measured boxes (one per track, same order); returns new arrays.

        Per axis the measurement matrix is H = [1, 0], so the innovation variance S = P00 + R is a scalar
        and the gain is K = P[:, 0] / S: no inverse, no solve.
        """
        z = xyxy_to_cxcywh(xyxy)
        if z.shape[0] == 0:
            return means.copy(), covs.copy()
        r = (self.measure_std * _scale(means)) ** 2  # (n, 1), same for the four axes
        p00, p01, p10, p11 = covs[..., 0, 0], covs[..., 0, 1], covs[..., 1, 0], covs[..., 1, 1]
        s = p00 + r
        k0 = p00 / s
        k1 = p10 / s
        innovation = z - means[:, :4]
        new_means = np.concatenate([means[:, :4] + k0 * innovation, means[:, 4:] + k1 * innovation], axis=1)
        new_covs = np.empty_like(covs)
        new_covs[..., 0, 0] = (1.0 - k0) * p00
        new_covs[..., 0, 1] = (1.0 - k0) * p01
        new_covs[..., 1, 0] = p10 - k1 * p00
        new_covs[..., 1, 1] = p11 - k1 * p01
        return new_means, new_covs
