"""Quaternion and rotation-matrix helpers. Quaternions are (w, x, y, z), as in gsplat.

Torch (batched) quaternion helpers first; then small float64 numpy helpers for single rotations
(axis-angle <-> matrix, Euler -> axis-angle). Model convention (the head's): +x is the subject's left,
+y up, +z out of the face.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def quat_to_matrix(quats: Tensor) -> Tensor:
    """(..., 4) quaternions (any norm) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*quats.shape[:-1], 3, 3)


def matrix_to_quat(R: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions with w >= 0.

    Uses the largest-pivot branch per element so it is stable for every rotation.
    """
    m = R.reshape(*R.shape[:-2], 9)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    candidates = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        torch.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
        torch.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m21 + m12], -1),
        torch.stack([m10 - m01, m02 + m20, m21 + m12, 1 - m00 - m11 + m22], -1),
    ], dim=-2)  # (..., 4, 4): row k is 4 * q * q_k
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(dim=-1, keepdim=True)  # (..., 1)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of (..., 4) quaternions (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


# --------------------------------------------------------------------------------------------------
# numpy, one rotation at a time (float64)
# --------------------------------------------------------------------------------------------------
def axis_angle_matrix(rotvec: np.ndarray) -> np.ndarray:
    """(3,) axis-angle (radians) -> (3, 3) rotation matrix (Rodrigues; exact at zero)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    theta = float(np.linalg.norm(rotvec))
    if theta < 1e-12:
        return np.eye(3)
    k = rotvec / theta
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(theta) * K + (1.0 - math.cos(theta)) * (K @ K)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (3,) axis-angle with angle in [0, pi). Uses atan2, accurate for small angles."""
    R = np.asarray(R, dtype=np.float64)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2.0  # sin(angle) * axis
    s = float(np.linalg.norm(w))
    c = (float(np.trace(R)) - 1.0) / 2.0
    angle = math.atan2(s, c)
    if s < 1e-12:
        if c > 0:
            return np.zeros(3)
        # angle = pi: the axis is the column of R + I with the largest norm
        B = R + np.eye(3)
        axis = B[:, int(np.argmax(np.linalg.norm(B, axis=0)))]
        return axis / np.linalg.norm(axis) * math.pi
    return w / s * angle


def euler_to_axis_angle(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Axis-angle (3,) of R = Ry(yaw) @ Rx(pitch) @ Rz(roll), angles in radians.

    Positive yaw turns the face toward +x (the subject's left), positive pitch tilts it down (+y toward +z).
    """
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll),
                              math.sin(roll))
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return matrix_to_axis_angle(Ry @ Rx @ Rz)


def relative_rotation(rotvec: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Axis-angle of R(rotvec) @ R(rest)^T: the turn from a rest orientation, in the world frame."""
    return matrix_to_axis_angle(axis_angle_matrix(rotvec) @ axis_angle_matrix(rest).T)
