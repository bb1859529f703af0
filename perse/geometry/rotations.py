"""Rotations: axis-angle, quaternions (w, x, y, z, as in gsplat) and Euler angles.

Axis-angle -> matrix (Rodrigues) exists once and takes numpy arrays or torch tensors of any batch shape:
numpy for the tracker's float64 solver and the build-time head generator, torch for skinning and the
avatar (differentiable). The coefficients are free of cancellation at small angles, so the result and its
derivative are smooth through zero. Quaternion helpers are torch; the few single-rotation conversions
(matrix -> axis-angle, Euler -> axis-angle) and the best rotation between point sets (Kabsch) are
float64 numpy.

Model convention (the head's): +x is the subject's left, +y up, +z out of the face.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Array = np.ndarray | Tensor


# --------------------------------------------------------------------------------------------------
# Axis-angle (numpy or torch, batched)
# --------------------------------------------------------------------------------------------------
def _xp(x: Array):
    """The array namespace of x: torch for tensors, numpy otherwise."""
    return torch if isinstance(x, Tensor) else np


def _eye(like: Array) -> Array:
    if isinstance(like, Tensor):
        return torch.eye(3, dtype=like.dtype, device=like.device)
    return np.eye(3)


def skew(v: Array) -> Array:
    """(..., 3) -> (..., 3, 3) cross-product matrices: skew(v) @ u == cross(v, u)."""
    xp = _xp(v)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = xp.zeros_like(x)
    return xp.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)


def _rotation_coefficients(rotvec: Array) -> tuple[Array, Array, Array]:
    """sin(t)/t, (1 - cos t)/t^2 and (t - sin t)/t^3 of t = |rotvec| (...,), free of cancellation:
    Taylor series below t = 1e-2 (truncation < 1e-16), a half-angle form above."""
    xp = _xp(rotvec)
    t2 = (rotvec * rotvec).sum(-1)
    small = t2 < 1e-4
    t = xp.sqrt(xp.where(small, 1.0, t2))  # a safe value on the Taylor branch (finite gradients too)
    sin = xp.sin(t)
    a = xp.where(small, 1.0 - t2 / 6.0 + t2 * t2 / 120.0, sin / t)
    b = xp.where(small, 0.5 - t2 / 24.0 + t2 * t2 / 720.0, 2.0 * xp.sin(0.5 * t) ** 2 / (t * t))
    c = xp.where(small, 1.0 / 6.0 - t2 / 120.0 + t2 * t2 / 5040.0, (t - sin) / (t * t * t))
    return a, b, c


def _rotation(rotvec: Array, a: Array, b: Array) -> Array:
    """R = cos(t) I + sin(t)/t skew(w) + (1 - cos t)/t^2 w w^T, with cos(t) = 1 - b t^2."""
    outer = rotvec[..., :, None] * rotvec[..., None, :]
    cos = (1.0 - b * (rotvec * rotvec).sum(-1))[..., None, None]
    return cos * _eye(rotvec) + a[..., None, None] * skew(rotvec) + b[..., None, None] * outer


def axis_angle_to_matrix(rotvec: Array) -> Array:
    """Rodrigues' formula: (..., 3) axis-angle vectors (radians) -> (..., 3, 3) rotation matrices.

    numpy in, numpy out (float64); a tensor in, a tensor out (differentiable, on its device)."""
    if not isinstance(rotvec, Tensor):
        rotvec = np.asarray(rotvec, dtype=np.float64)
    a, b, _ = _rotation_coefficients(rotvec)
    return _rotation(rotvec, a, b)


def rotation_and_left_jacobian(rotvec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) axis-angle w -> rotations R(w) and left Jacobians J(w) of SO(3), both (..., 3, 3).

    Column k of J is the rotation vector s_k with d R / d w_k = skew(s_k) @ R: a change of w_k turns R
    by s_k in the outer frame. J = sin(t)/t I + (1 - cos t)/t^2 skew(w) + (t - sin t)/t^3 w w^T."""
    a, b, c = _rotation_coefficients(rotvec)
    outer = rotvec[..., :, None] * rotvec[..., None, :]
    a3, b3, c3 = a[..., None, None], b[..., None, None], c[..., None, None]
    return _rotation(rotvec, a, b), a3 * _eye(rotvec) + b3 * skew(rotvec) + c3 * outer


# --------------------------------------------------------------------------------------------------
# Quaternions (torch, batched)
# --------------------------------------------------------------------------------------------------
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
    return matrix_to_axis_angle(axis_angle_to_matrix(rotvec) @ axis_angle_to_matrix(rest).T)


def best_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) rotation R best mapping centred (N, 3) `source` onto centred `target` (target ≈ source @ R.T
    up to a translation): Kabsch, with the reflection removed."""
    a, b = source - source.mean(axis=0), target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt
