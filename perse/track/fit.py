"""Fit a FLAME-layout head model to 2D MediaPipe landmarks: robust, regularised Levenberg-Marquardt.

What is fitted: shape (identity), expression, jaw rotation, eye rotations (only when the landmark set
has iris points skinned to the eye joints, as the built-in head's does), global head rotation, the
head's translation and the focal length of a pinhole camera whose principal point is the image centre.

Conventions of the result:
    * ``params.translation`` and ``params.neck_rot`` are zero; the fitted translation lives in the
      camera: ``camera.world_to_cam = [[R0, t], [0, 1]]`` with ``R0 = diag(1, -1, -1)`` (a camera on
      the model's +z axis looking at the face; OpenCV axes). The head therefore stays at the model
      origin, like every other view of it, and ``camera`` is the portrait's camera in the avatar's world.
    * The global rotation turns the head about the model's root joint (FLAME: neck base).
    * Errors are in pixels of the input image; ``mean_error_iod`` divides the mean reprojection error
      by the distance between the observed *outer eye corners* (MediaPipe 33 and 263).

Why Levenberg-Marquardt: the problem is small (L <= 478 landmarks, ~120 unknowns) and smooth, so a
second-order method converges in a handful of iterations. Robustness: the Huber loss per landmark,
minimised by Gauss-Newton steps with iteratively reweighted (IRLS) rows; plausibility: L2 priors on
shape, expression, jaw, eyes and focal length, and box bounds on every rotation and coefficient,
handled as an active set (a coefficient held at a bound that the gradient pushes outward leaves the
step), so bounded coefficients do not stall the iteration.

Why it is fast (per-frame tracking must stay within a few milliseconds on two CPU cores): everything
runs in float64 numpy on a reduced model (`LandmarkHead`). Each landmark is a barycentric blend of
skinned vertices, so the blend is folded in advance into per-(landmark, joint) rest-pose offsets that
are affine in the coefficients; a pose then costs one 3x3 rotation per joint applied to the landmarks
that joint moves. The Jacobian is exact and closed-form: coefficients through the same blend, rotations
through the left Jacobian of SO(3) (a rotation of joint a moves a landmark by ``s x (y - g_a)``), the
camera and focal length through the pinhole model. The offsets of the coefficients held fixed (the
identity, in video) are summed once and reused across frames. The accepted trial point's evaluation is
the next iteration's, so an iteration costs one model evaluation. The normal equations and the bounded
Cholesky step run in small single-threaded numba kernels (compiled on first use, cached on disk):
threaded BLAS/LAPACK calls on ~60x60 systems stalled for milliseconds on a busy 2-core machine.
For video, pass ``fixed_shape`` (and ``fixed_focal``) and warm-start with the previous frame's result
via ``init``: only pose and expression are solved, converging in 2-3 iterations for frame-to-frame motion.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from perse.geometry.rotations import rotation_and_left_jacobian, skew
from perse.head.model import HeadModel, HeadParams
from perse.render.camera import Camera
from perse.landmarks import EYE_OUTER, NUM_LANDMARKS
from perse.track.landmarks import landmark_groups

R0 = np.diag([1.0, -1.0, -1.0])  # model (+y up, +z face) -> OpenCV camera axes


# --------------------------------------------------------------------------------------------------
# Small pure math (float64 numpy)
# --------------------------------------------------------------------------------------------------
def huber_weights(err: np.ndarray, delta: float) -> np.ndarray:
    """IRLS weights of the Huber loss for per-landmark error norms err (L,): 1 inside delta, delta/err out."""
    return np.where(err <= delta, 1.0, delta / np.maximum(err, 1e-12))


def huber_loss(err: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of error norms (L,), scaled so that its IRLS weights are `huber_weights`:
    err^2 inside delta, 2 delta err - delta^2 outside."""
    return np.where(err <= delta, err * err, 2.0 * delta * err - delta * delta)


def bounded_newton_step(H: np.ndarray, g: np.ndarray, x: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray) -> np.ndarray:
    """A step s for the quadratic model 0.5 s^T H s + g^T s within lower <= x + s <= upper (all (n,),
    H (n, n) symmetric positive definite), by active-set refinement: variables on a bound that the
    gradient pushes outward stay there; a solve that carries others out of the box pins them on the
    bound they cross and solves again for the rest. (Clipping the unconstrained step instead throws the
    coupled variables off and often fails to descend at all.) Returns zeros if H is not positive definite."""
    return _linear_kernels()[1](np.ascontiguousarray(H, dtype=np.float64), np.asarray(g, dtype=np.float64),
                                np.asarray(x, dtype=np.float64), np.asarray(lower, dtype=np.float64),
                                np.asarray(upper, dtype=np.float64))


def normal_equations(D: np.ndarray, P: np.ndarray, E: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton normal equations of residuals r (R, L) whose Jacobian is, per column i and landmark l,
    J[:, i, l] = P[:, :, l] @ D[:, i, l] for the first n columns (D (3, n, L) point derivatives,
    P (R, 3, L) the residuals' derivatives w.r.t. the point) followed by e given columns E (e, R, L).
    Returns (J^T J (m, m), J^T r (m,)) over m = n + e columns, rows (r, l) flattened."""
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    return _linear_kernels()[0](f64(D), f64(P), f64(E), f64(r))


_KERNELS = None


def _linear_kernels():
    """The solver's dense algebra as numba kernels, compiled on first use and cached on disk.

    Single-threaded on purpose: the systems are tiny (n ~ 60), and multi-threaded BLAS/LAPACK calls on
    them (numpy's OpenBLAS, torch's MKL) measured 0.1-8 ms per solve on a busy 2-core machine, where
    these loops take ~40 us (bounded Cholesky step) and ~170 us (normal equations, 2 x 478 rows, 58 columns).
    """
    global _KERNELS
    if _KERNELS is None:
        from numba import njit

        @njit(cache=True, fastmath=True)
        def normal_equations_kernel(D, P, E, res):
            n, L = D.shape[1], D.shape[2]
            R, e = P.shape[0], E.shape[0]
            m = n + e
            Jt = np.empty((m, R, L))  # the Jacobian, transposed: one contiguous row per column
            for i in range(n):
                for q in range(R):
                    for t in range(L):
                        Jt[i, q, t] = P[q, 0, t] * D[0, i, t] + P[q, 1, t] * D[1, i, t] + P[q, 2, t] * D[2, i, t]
            Jt[n:] = E
            Jt = Jt.reshape(m, R * L)
            r = res.reshape(R * L)
            R = R * L
            A = np.empty((m, m))
            g = np.empty(m)
            for i in range(m):
                acc = 0.0
                for t in range(R):
                    acc += Jt[i, t] * r[t]
                g[i] = acc
                for j in range(i, m):
                    acc = 0.0
                    for t in range(R):
                        acc += Jt[i, t] * Jt[j, t]
                    A[i, j] = acc
                    A[j, i] = acc
            return A, g

        @njit(cache=True)
        def bounded_step_kernel(H, g, x, lower, upper):
            n = x.shape[0]
            pinned = np.zeros(n, np.bool_)
            for i in range(n):
                pinned[i] = (x[i] <= lower[i] and g[i] > 0.0) or (x[i] >= upper[i] and g[i] < 0.0)
            step = np.zeros(n)
            for _ in range(8):  # each pass pins at least one more variable, or ends
                free = np.flatnonzero(~pinned)
                m = free.shape[0]
                if m == 0:
                    break
                A = np.empty((m, m))
                b = np.empty(m)
                for a in range(m):
                    i = free[a]
                    acc = -g[i]
                    for j in range(n):
                        if pinned[j]:
                            acc -= H[i, j] * step[j]
                    b[a] = acc
                    for c in range(m):
                        A[a, c] = H[i, free[c]]
                # Cholesky A = L L^T (in place, lower triangle), then two triangular solves into b.
                for j in range(m):
                    acc = A[j, j]
                    for k in range(j):
                        acc -= A[j, k] * A[j, k]
                    if not acc > 0.0:  # not positive definite: no step (the caller raises the damping)
                        return np.zeros(n)
                    A[j, j] = np.sqrt(acc)
                    for i in range(j + 1, m):
                        acc = A[i, j]
                        for k in range(j):
                            acc -= A[i, k] * A[j, k]
                        A[i, j] = acc / A[j, j]
                for i in range(m):
                    for k in range(i):
                        b[i] -= A[i, k] * b[k]
                    b[i] /= A[i, i]
                for i in range(m - 1, -1, -1):
                    for k in range(i + 1, m):
                        b[i] -= A[k, i] * b[k]
                    b[i] /= A[i, i]
                sol = b
                crossed = False
                for a in range(m):
                    i = free[a]
                    step[i] = sol[a]
                    if x[i] + sol[a] < lower[i]:
                        step[i], pinned[i], crossed = lower[i] - x[i], True, True
                    elif x[i] + sol[a] > upper[i]:
                        step[i], pinned[i], crossed = upper[i] - x[i], True, True
                if not crossed:
                    break
            for i in range(n):
                step[i] = min(max(x[i] + step[i], lower[i]), upper[i]) - x[i]
            return step

        _KERNELS = (normal_equations_kernel, bounded_step_kernel)
    return _KERNELS


# --------------------------------------------------------------------------------------------------
# The landmark-only head
# --------------------------------------------------------------------------------------------------
@dataclass
class Blends:
    """Rest-pose landmark offsets for one solve (see `LandmarkHead.blends`), per joint j over its span
    of landmarks: offsets[j] (3, n_j) for the fixed coefficients, free_dirs[j] (3, k, n_j) per free
    coefficient (None for a joint that moves no landmark); rest joint positions joints (J, 3) for the
    fixed coefficients and free_joint_dirs (J, 3, k)."""

    free: np.ndarray  # (k,) free coefficient indices
    offsets: list[np.ndarray | None]
    free_dirs: list[np.ndarray | None]
    joints: np.ndarray
    free_joint_dirs: np.ndarray


@dataclass
class PosedLandmarks:
    """One evaluation of a `LandmarkHead`: points (3, L) in the model frame, head order; and what the
    Jacobian reuses: pose (J, 3), local and world joint rotations rot, world_rot (J, 3, 3), posed joint
    positions joints (J, 3), each joint's rotated rest offsets rotated[j] (3, n_j) (None: no landmark)
    and the left Jacobians of the joint rotations left_jac (J, 3, 3)."""

    points: np.ndarray
    pose: np.ndarray
    rot: np.ndarray
    left_jac: np.ndarray
    world_rot: np.ndarray
    joints: np.ndarray
    rotated: list[np.ndarray | None]


class LandmarkHead:
    """The part of a `HeadModel` needed to pose its landmarks, with the barycentric blend folded in.

    A landmark is l = sum_c b_c v_c over its triangle corners, and skinning gives
    v_c = sum_j w_cj (G_j (x_c - J_j) + g_j) (G_j world rotation, g_j posed position of joint j, J_j its
    rest position, x_c the rest vertex incl. blend shapes and pose correctives). Hence
        l = sum_j G_j q_j + W_j g_j,   W_j = sum_c b_c w_cj,   q_j = sum_c b_c w_cj x_c - W_j J_j,
    where q_j is affine in the shape/expression coefficients and linear in the pose correctives: posing
    costs one 3x3 rotation per joint, applied to the landmarks that joint moves. All float64 numpy.

    Landmarks are kept in *head order*: the model's order permuted by `order` (head landmark i is model
    landmark order[i]) so that the landmarks each joint moves lie in one slice, spans[j] (None: none).
    Buffers per joint j over its span (zeros for landmarks of the span it does not move):
    joint_weight[j] (n_j,), offset_template[j] (3, n_j), offset_dirs[j] (3, K, n_j) with K = S + E,
    pose_dirs[j] (3, n_j, P) or None when the model has no pose correctives; j_template (J, 3),
    j_dirs (J, 3, K); weights (J, L) per-landmark joint weights and weight_sum (L,) their total
    (1 up to rounding).
    `landmark_ids` (L,) are the MediaPipe ids in the model's order.
    """

    def __init__(self, model: HeadModel):
        f64 = lambda t: t.detach().cpu().to(torch.float64).numpy()  # noqa: E731
        bary = f64(model.lmk_bary)  # (L, 3)
        tri = model.faces[model.lmk_face_idx].cpu().numpy()  # (L, 3) vertex ids
        L = tri.shape[0]
        corners = np.unique(tri[bary != 0])  # (C,) every vertex a landmark depends on
        blend = np.zeros((L, corners.size))  # (L, C) barycentric weight of each corner vertex
        np.add.at(blend, (np.repeat(np.arange(L), 3), np.searchsorted(corners, tri.reshape(-1))), bary.reshape(-1))
        dirs_full = np.concatenate([f64(model.shapedirs), f64(model.exprdirs)], axis=2)  # (V, 3, K)
        v_full = f64(model.v_template)
        j_reg = f64(model.j_regressor)
        posedirs = f64(model.posedirs)
        P = posedirs.shape[0]
        self.has_pose_dirs = P > 0 and bool(np.abs(posedirs).max() > 0)
        corner_weights = f64(model.lbs_weights)[corners]  # (C, J) skinning weights
        weights = blend @ corner_weights  # (L, J) per-landmark joint weights
        J = weights.shape[1]
        # Head order: sort by the set of joints moving a landmark, so that each joint's landmarks are
        # (nearly) contiguous and its slice holds few landmarks it does not move.
        membership = (weights > 0) @ (1 << np.arange(J))
        self.order = np.argsort(membership, kind="stable")
        blend, weights = blend[self.order], weights[self.order]

        self.num_shape = model.num_shape
        self.num_expression = model.num_expression
        self.parents = [int(p) for p in model.parents.tolist()]
        self.children = [[c for c in range(J) if self.parents[c] == j] for j in range(J)]
        self.j_template = j_reg @ v_full  # (J, 3)
        self.j_dirs = np.einsum("jv,vck->jck", j_reg, dirs_full)  # (J, 3, K)
        x_template, x_dirs = v_full[corners], dirs_full[corners]  # (C, 3), (C, 3, K)
        x_pose = posedirs.reshape(P, -1, 3)[:, corners].transpose(1, 2, 0) if self.has_pose_dirs else None
        self.spans, self.joint_weight = [], []
        self.offset_template, self.offset_dirs, self.pose_dirs = [], [], []
        for j in range(J):
            moved = np.flatnonzero(weights[:, j] > 0)
            if moved.size == 0:
                for buf in (self.spans, self.joint_weight, self.offset_template, self.offset_dirs, self.pose_dirs):
                    buf.append(None)
                continue
            span = slice(int(moved[0]), int(moved[-1]) + 1)
            bw = blend[span] * corner_weights[:, j]  # (n_j, C)
            w = weights[span, j]
            self.spans.append(span)
            self.joint_weight.append(w)
            self.offset_template.append((bw @ x_template - w[:, None] * self.j_template[j]).T.copy())
            self.offset_dirs.append(np.ascontiguousarray(
                np.einsum("lc,cdk->dkl", bw, x_dirs) - self.j_dirs[j][:, :, None] * w))
            self.pose_dirs.append(np.ascontiguousarray(np.einsum("lc,cdp->dlp", bw, x_pose))
                                  if self.has_pose_dirs else None)
        self.weights = np.ascontiguousarray(weights.T)  # (J, L)
        self.weight_sum = weights.sum(1)
        self.num_main = L
        self.landmark_ids = model.landmark_indices.cpu().long()
        # How much each landmark (model order) moves with the eye joints (iris points on eyeballs: 1).
        eye_influence = np.zeros(L)
        eye_influence[self.order] = weights[:, 3:].sum(1)
        self.eye_influence = torch.from_numpy(eye_influence)
        self._free_cache: dict[bytes, tuple] = {}
        self._blend_cache: dict[bytes, Blends] = {}

    @property
    def num_landmarks(self) -> int:
        return self.num_main

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    def subtree(self, joint: int) -> list[int]:
        """The joint and all its descendants."""
        out, todo = [], [joint]
        while todo:
            j = todo.pop()
            out.append(j)
            todo.extend(self.children[j])
        return sorted(out)

    # -- blends -----------------------------------------------------------------------------------
    def blends(self, coeffs: np.ndarray, free: np.ndarray) -> Blends:
        """Offsets for coefficients (K,) of which `free` (k,) indices will vary: the others are summed
        here, once. Cached per (free set, fixed values), so a video's fixed identity is summed on its
        first frame only."""
        free = np.asarray(free, dtype=np.int64)
        fixed = np.array(coeffs, dtype=np.float64)
        fixed[free] = 0.0
        key = free.tobytes()
        blend_key = key + b"|" + fixed.tobytes()
        cached = self._blend_cache.get(blend_key)
        if cached is not None:
            return cached
        dirs = self._free_cache.get(key)
        if dirs is None:
            dirs = ([None if d is None else np.ascontiguousarray(d[:, free]) for d in self.offset_dirs],
                    np.ascontiguousarray(self.j_dirs[:, :, free]))
            if len(self._free_cache) >= 8:  # only a few free sets are ever used (rigid, cold, warm)
                self._free_cache.clear()
            self._free_cache[key] = dirs
        offsets = [None if t is None else t + fixed @ d for t, d in zip(self.offset_template, self.offset_dirs)]
        result = Blends(free=free, offsets=offsets, free_dirs=dirs[0], joints=self.j_template + self.j_dirs @ fixed,
                        free_joint_dirs=dirs[1])
        if len(self._blend_cache) >= 8:
            self._blend_cache.clear()
        self._blend_cache[blend_key] = result
        return result

    # -- evaluation -------------------------------------------------------------------------------
    def pose(self, blends: Blends, free_coeffs: np.ndarray, pose: np.ndarray) -> PosedLandmarks:
        """Posed landmarks. free_coeffs: (k,) values of the coefficients `blends.free`;
        pose: (J, 3) axis-angle per joint. Returns `PosedLandmarks` (points (3, L), head order)."""
        rot, left_jac = rotation_and_left_jacobian(pose)  # (J, 3, 3) each
        rest_joints = blends.joints + blends.free_joint_dirs @ free_coeffs  # (J, 3)
        world_rot = np.empty_like(rot)
        joints = np.empty_like(rest_joints)
        for j, p in enumerate(self.parents):  # parents precede children
            if p < 0:
                world_rot[j], joints[j] = rot[j], rest_joints[j]
            else:
                world_rot[j] = world_rot[p] @ rot[j]
                joints[j] = world_rot[p] @ (rest_joints[j] - rest_joints[p]) + joints[p]
        feature = (rot[1:] - np.eye(3)).reshape(-1) if self.has_pose_dirs else None  # (P,)
        points = np.zeros((3, self.num_main))
        rotated = []
        for j, span in enumerate(self.spans):
            if span is None:
                rotated.append(None)
                continue
            q = blends.offsets[j] + free_coeffs @ blends.free_dirs[j]  # (3, n_j)
            if feature is not None:
                q += self.pose_dirs[j] @ feature
            r = world_rot[j] @ q
            points[:, span] += r + joints[j][:, None] * self.joint_weight[j]
            rotated.append(r)
        return PosedLandmarks(points=points, pose=pose, rot=rot, left_jac=left_jac, world_rot=world_rot,
                              joints=joints, rotated=rotated)

    def landmarks(self, coeffs: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(K,) coefficients, (J, 3) axis-angle pose -> (L, 3) landmarks in the model frame, model order."""
        blends = self.blends(coeffs, np.zeros(0, dtype=np.int64))
        points = self.pose(blends, np.zeros(0), np.asarray(pose, dtype=np.float64)).points
        out = np.empty((self.num_main, 3))
        out[self.order] = points.T
        return out

    def jacobian(self, blends: Blends, posed: PosedLandmarks, joints: list[int]) -> np.ndarray:
        """Exact d points / d (free coefficients, then the rotation vector of each joint in `joints`),
        as (3, k + 3 * len(joints), L): axis (x, y, z), parameter, landmark (head order)."""
        k = blends.free.size
        D = np.zeros((3, k + 3 * len(joints), self.num_main))
        G = posed.world_rot
        if k:
            for j, span in enumerate(self.spans):
                if span is not None:
                    dirs = blends.free_dirs[j]  # (3, k, n_j)
                    D[:, :k, span] += (G[j] @ dirs.reshape(3, -1)).reshape(dirs.shape)
            # Rest joints move with the coefficients; so do the posed joints (same chain as in `pose`).
            d_rest = blends.free_joint_dirs  # (J, 3, k)
            d_joint = np.empty_like(d_rest)
            for j, p in enumerate(self.parents):
                d_joint[j] = d_rest[j] if p < 0 else G[p] @ (d_rest[j] - d_rest[p]) + d_joint[p]
            for c in range(3):  # sum_j W_j d_joint_j, as one small product per axis
                D[c, :k] += d_joint[:, c, :].T @ self.weights
        for i, a in enumerate(joints):
            cols = slice(k + 3 * i, k + 3 * i + 3)
            jl = posed.left_jac[a]
            p = self.parents[a]
            s = (jl if p < 0 else G[p] @ jl)[:, :, None]  # (3, 3, 1): column c turns a's subtree about joint a
            if p < 0:  # the root turns everything (the weights may sum to 1 only up to rounding)
                span, o = slice(None), posed.points - posed.joints[a][:, None] * self.weight_sum
            elif not self.children[a]:
                span, o = self.spans[a], posed.rotated[a]
            else:
                span, o = slice(None), np.zeros((3, self.num_main))
                for j in self.subtree(a):
                    if self.spans[j] is not None:
                        o[:, self.spans[j]] += posed.rotated[j] + (
                            (posed.joints[j] - posed.joints[a])[:, None] * self.joint_weight[j])
            if span is None:
                continue
            # d point / d w_c = s_c x o  (o: the point relative to joint a, as moved by a's subtree)
            D[0, cols, span] = s[1] * o[2] - s[2] * o[1]
            D[1, cols, span] = s[2] * o[0] - s[0] * o[2]
            D[2, cols, span] = s[0] * o[1] - s[1] * o[0]
            if self.has_pose_dirs and p >= 0:  # the pose correctives read (R_a - I)
                d_rot = (skew(jl.T) @ posed.rot[a]).reshape(3, 9).T  # (9, 3): d vec(R_a) / d w_c
                feat = slice(9 * (a - 1), 9 * a)
                for j, span_j in enumerate(self.spans):
                    if span_j is not None:
                        d = self.pose_dirs[j][:, :, feat] @ d_rot  # (3, n_j, 3) rest-pose offsets
                        D[:, cols, span_j] += (G[j] @ d.reshape(3, -1)).reshape(d.shape).transpose(0, 2, 1)
        return D

    def __call__(self, coeffs: Tensor, pose: Tensor) -> Tensor:
        """Torch convenience: (K,) coefficients, (B, J, 3) poses -> (B, L, 3) landmarks (float64, model order)."""
        c = coeffs.detach().cpu().to(torch.float64).numpy()
        poses = pose.detach().cpu().to(torch.float64).numpy()
        return torch.from_numpy(np.stack([self.landmarks(c, p) for p in poses]))


# --------------------------------------------------------------------------------------------------
# Configuration and result
# --------------------------------------------------------------------------------------------------
@dataclass
class FitConfig:
    """Weights of the fit. Data residuals are in units of the inter-ocular distance (resolution-free)."""

    landmark_weights: dict[str, float] = field(default_factory=lambda: {
        "face_oval": 0.3, "other": 0.6, "lips": 1.0, "left_eye": 1.0, "right_eye": 1.0,
        "left_eyebrow": 0.8, "right_eyebrow": 0.8, "nose": 1.0, "irises": 1.0})
    huber_delta: float = 0.04  # IOD fractions; larger errors get down-weighted (IRLS)
    shape_prior: float = 0.01  # residual = sqrt-weight * coefficient
    expression_prior: float = 0.02
    jaw_prior: tuple[float, float, float] = (0.02, 0.3, 0.3)  # opening, yaw, roll
    eye_prior: float = 0.05
    rotation_prior: float = 1e-3
    focal_prior: float = 0.02  # on log(focal / prior focal)
    prior_fov_deg: float = 30.0  # vertical field of view the focal prior pulls toward (long side)
    max_shape: int = 100  # FLAME has 300 shape / 100 expression directions: use the leading ones
    max_expression: int = 50
    shape_bound: float = 3.0
    jaw_bounds: tuple[tuple[float, float], ...] = ((-0.05, 0.5), (-0.15, 0.15), (-0.15, 0.15))
    eye_bound: float = 0.5
    rotation_bounds: tuple[float, float, float] = (1.2, 1.5, 1.0)  # pitch, yaw, roll (rad)


@dataclass
class FitResult:
    """params: HeadParams (B=1); camera: Camera; reprojection_px: (L,) per-landmark error (pixels);
    projected_px: (L, 2) fitted landmark positions; landmark_ids: (L,) their MediaPipe ids;
    mean_error_iod: mean error / outer-eye-corner distance; iterations: LM iterations; ms: wall time."""

    params: HeadParams
    camera: Camera
    reprojection_px: Tensor
    projected_px: Tensor
    landmark_ids: Tensor
    mean_error_px: float
    mean_error_iod: float
    iterations: int
    ms: float

    @property
    def focal(self) -> float:
        return float(self.camera.K[0, 0])


# --------------------------------------------------------------------------------------------------
# The solver
# --------------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """The parameter vector theta (N,) for one kind of fit: shape S | expression E | jaw 3 | eye_left 3 |
    eye_right 3 | global 3 | cam_t 3 | log_focal 1. Bounds, prior sqrt-weights and the fitted mask (N,)."""

    lower: np.ndarray
    upper: np.ndarray
    prior: np.ndarray
    active: np.ndarray


@dataclass
class _Evaluation:
    """Landmarks for one theta: the posed head, camera-frame points cam (L, 3) and pixels uv (L, 2)."""

    posed: PosedLandmarks
    cam: np.ndarray
    uv: np.ndarray
    focal: float


class HeadFitter:
    """Fits one `HeadModel` to MediaPipe landmarks; holds the reduced model, reuse it across frames."""

    # The rotations in theta, in order, drive joints 2 (jaw), 3, 4 (eyes) and 0 (global).
    _ROT_JOINTS = (2, 3, 4, 0)
    # Convergence: stop once an accepted step moves no landmark by more than this (pixels).
    _TOL_PX = 1e-3

    def __init__(self, model: HeadModel, config: FitConfig | None = None):
        from perse.head.flame import require_landmarks

        require_landmarks(model)
        self.config = config or FitConfig()
        self.head = LandmarkHead(model)
        self.is_arkit = model.kind == "builtin"  # ARKit blend shapes: range [0, 1], jawOpen ~ jaw_rot
        self.expression_names = model.expression_names
        self.landmark_ids = self.head.landmark_ids
        self._head_ids = self.landmark_ids.numpy()[self.head.order]  # MediaPipe ids in head order
        self.has_eyes = bool((self.head.eye_influence > 0.5).any())
        self.landmark_weights = self._landmark_weights()
        K = self.head.num_shape + self.head.num_expression
        S = self.head.num_shape
        self._slices = {"identity": slice(0, S), "expression": slice(S, K), "jaw_rot": slice(K, K + 3),
                        "eye_left_rot": slice(K + 3, K + 6), "eye_right_rot": slice(K + 6, K + 9),
                        "global_rot": slice(K + 9, K + 12), "cam_t": slice(K + 12, K + 15),
                        "log_focal": slice(K + 15, K + 16)}
        self._layouts: dict[tuple[bool, bool], _Layout] = {}

    def _landmark_weights(self) -> np.ndarray:
        w = self.config.landmark_weights
        per_id = np.full(NUM_LANDMARKS, w["other"], dtype=np.float64)
        groups = landmark_groups()
        for name in ("face_oval", "nose", "left_eyebrow", "right_eyebrow", "lips", "left_eye", "right_eye",
                     "irises"):
            per_id[np.asarray(groups[name])] = w[name]
        return per_id[self._head_ids]  # head order

    # -- parameter layout ---------------------------------------------------------------------------
    def _layout(self, fit_shape: bool, fit_focal: bool) -> _Layout:
        cached = self._layouts.get((fit_shape, fit_focal))
        if cached is not None:
            return cached
        c, h = self.config, self.head
        S, E = h.num_shape, h.num_expression
        shape_active = (np.arange(S) < c.max_shape) & fit_shape
        expr_active = np.arange(E) < c.max_expression
        if self.is_arkit:
            expr_lo, expr_hi = 0.0, 1.0
            if "jawOpen" in self.expression_names:  # the opening is jaw_rot; never both
                expr_active[self.expression_names.index("jawOpen")] = False
        else:
            expr_lo, expr_hi = -3.0, 3.0
        eye_active = [self.has_eyes, self.has_eyes, False]  # no roll of an eyeball
        rb = list(c.rotation_bounds)
        # (size, lower, upper, prior sqrt-weight, active) per block, in theta order.
        blocks = [
            (S, -c.shape_bound, c.shape_bound, c.shape_prior, shape_active),
            (E, expr_lo, expr_hi, c.expression_prior, expr_active),
            (3, [b[0] for b in c.jaw_bounds], [b[1] for b in c.jaw_bounds], list(c.jaw_prior), True),
            (3, -c.eye_bound, c.eye_bound, c.eye_prior, eye_active),
            (3, -c.eye_bound, c.eye_bound, c.eye_prior, eye_active),
            (3, [-b for b in rb], rb, c.rotation_prior, True),
            (3, [-1e3, -1e3, 0.05], [1e3, 1e3, 1e3], 0.0, True),
            (1, -math.inf, math.inf, c.focal_prior, fit_focal),
        ]
        cat = lambda i, dtype: np.concatenate(  # noqa: E731
            [np.broadcast_to(np.asarray(b[i], dtype=dtype), (b[0],)) for b in blocks])
        layout = _Layout(lower=cat(1, np.float64), upper=cat(2, np.float64), prior=cat(3, np.float64),
                         active=cat(4, bool))
        self._layouts[(fit_shape, fit_focal)] = layout
        return layout

    # -- public ------------------------------------------------------------------------------------
    def fit(self, landmarks_px, image_size: tuple[int, int], init: FitResult | None = None,
            fixed_shape: Tensor | None = None, fixed_focal: float | None = None,
            iterations: int | None = None) -> FitResult:
        """Fit to MediaPipe landmarks.

        Args:
            landmarks_px: (478, 2) MediaPipe landmarks in pixels (OpenCV convention); the model's
                `landmark_indices` pick the ones it embeds.
            image_size: (width, height) of the image the landmarks are in.
            init: a previous result to start from (e.g. the previous video frame); None starts from
                the neutral head with a rigid pre-alignment.
            fixed_shape: (S,) or (1, S) identity to keep fixed (per-frame tracking); None fits it.
            fixed_focal: focal length in pixels to keep fixed; None fits it.
            iterations: the most Levenberg-Marquardt iterations (default 40 cold, 3 warm with fixed
                shape); the fit stops earlier once converged.
        """
        t_start = time.perf_counter()
        obs_all = np.asarray(landmarks_px, dtype=np.float64)
        if obs_all.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"expected (478, 2) MediaPipe landmarks, got {tuple(obs_all.shape)}")
        if not np.isfinite(obs_all).all():
            raise ValueError("landmarks contain NaN or inf")
        W, H = int(image_size[0]), int(image_size[1])
        obs = obs_all[self._head_ids].T  # (2, L), head order
        iod = float(np.linalg.norm(obs_all[EYE_OUTER["R"]] - obs_all[EYE_OUTER["L"]]))
        if iod < 1.0:
            raise ValueError("outer eye corners coincide: not a face")
        principal = np.array([[(W - 1) / 2], [(H - 1) / 2]])  # (2, 1)
        prior_focal = 0.5 * max(W, H) / math.tan(math.radians(self.config.prior_fov_deg) / 2)

        layout = self._layout(fit_shape=fixed_shape is None, fit_focal=fixed_focal is None)
        theta = self._initial_theta(layout, obs, principal, prior_focal, init, fixed_shape, fixed_focal)
        prior_mean = np.zeros_like(theta)
        prior_mean[self._slices["log_focal"]] = math.log(prior_focal)

        warm = init is not None
        if iterations is None:
            iterations = 3 if (warm and fixed_shape is not None) else 40
        used = 0
        if not warm:  # rigid pre-alignment: pose and focal only, so the deformable fit starts close
            rigid = np.zeros_like(layout.active)
            for name in ("global_rot", "cam_t", "log_focal"):
                rigid[self._slices[name]] = True
            theta, n, _ = self._solve(layout, theta, prior_mean, obs, iod, principal, 8, only=rigid)
            used += n
        theta, n, ev = self._solve(layout, theta, prior_mean, obs, iod, principal, iterations)
        used += n
        return self._result(theta, ev, obs, iod, principal, W, H, used, t_start)

    # -- internals ---------------------------------------------------------------------------------
    def _evaluate(self, blends: Blends, theta: np.ndarray, principal: np.ndarray) -> _Evaluation:
        """theta (N,) -> posed landmarks, camera-frame points (3, L) and pixels (2, L), head order."""
        K = self.head.num_shape + self.head.num_expression
        pose = np.zeros((self.head.num_joints, 3))
        pose[list(self._ROT_JOINTS)] = theta[K:K + 12].reshape(4, 3)
        posed = self.head.pose(blends, theta[blends.free], pose)
        cam = posed.points * np.diag(R0)[:, None] + theta[K + 12:K + 15, None]  # R0 is diagonal
        focal = math.exp(theta[K + 15])
        uv = focal * cam[:2] / np.maximum(cam[2], 1e-6) + principal
        return _Evaluation(posed=posed, cam=cam, uv=uv, focal=focal)

    def _normal_equations(self, blends: Blends, ev: _Evaluation, rot_blocks: list[int], principal: np.ndarray,
                          res: np.ndarray, row_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """J^T J and J^T r of the residuals res (2, L), each landmark's scaled by row_weight (L,), over the
        columns (free coefficients | 3 per rotation block in rot_blocks | cam_t 3 | log_focal).
        Exact Jacobian: the head's, then the chain rule through the pinhole projection."""
        D = self.head.jacobian(blends, ev.posed, [self._ROT_JOINTS[r] for r in rot_blocks])  # (3, n, L)
        x, y, z = ev.cam[0], ev.cam[1], np.maximum(ev.cam[2], 1e-6)
        fz = row_weight * ev.focal / z
        fxz, fyz = fz * x / z, fz * y / z
        # d (u, v) / d point: the projection's derivative times R0 = diag(1, -1, -1).
        zero = np.zeros_like(fz)
        P = np.array([[fz, zero, fxz], [zero, -fz, fyz]])  # (2, 3, L)
        E = np.array([[fz, zero], [zero, fz], [-fxz, -fyz], (ev.uv - principal) * row_weight])  # cam_t, log_focal
        return normal_equations(D, P, E, res * row_weight)

    def _solve(self, layout: _Layout, theta: np.ndarray, prior_mean: np.ndarray, obs: np.ndarray, iod: float,
               principal: np.ndarray, iterations: int, only: np.ndarray | None = None
               ) -> tuple[np.ndarray, int, _Evaluation]:
        """Projected Levenberg-Marquardt on the Huber cost; returns (theta, iterations run, its evaluation).

        Cost: sum_i w_i huber(|uv_i - obs_i| / iod) + sum_p prior_p^2 (theta_p - mean_p)^2. Each step is a
        Gauss-Newton step with the IRLS weights of the current point (whose quadratic model majorises
        the Huber cost) within the box bounds (`bounded_newton_step`), damped until the true cost drops.
        The accepted trial's evaluation is the next iteration's point: one model evaluation per step.
        """
        active = layout.active if only is None else layout.active & only
        K = self.head.num_shape + self.head.num_expression
        free = np.flatnonzero(active[:K])
        blends = self.head.blends(theta[:K], free)
        theta = theta.copy()
        ev = self._evaluate(blends, theta, principal)
        if not active.any():
            return theta, 0, ev
        rot_blocks = [r for r in range(4) if active[K + 3 * r:K + 3 * r + 3].any()]
        # Jacobian columns: free coefficients, whole rotation blocks, cam_t, log_focal; `keep` picks the fitted.
        columns = np.concatenate([free] + [np.arange(K + 3 * r, K + 3 * r + 3) for r in rot_blocks]
                                 + [np.arange(K + 12, K + 16)])
        keep = active[columns]
        idx = columns[keep]
        lower, upper, mean = layout.lower[idx], layout.upper[idx], prior_mean[idx]
        prior2 = layout.prior[idx] ** 2
        lmk_w, delta = self.landmark_weights, self.config.huber_delta

        def cost_of(ev: _Evaluation, x: np.ndarray) -> float:
            err = np.sqrt(((ev.uv - obs) ** 2).sum(0)) / iod
            return float(lmk_w @ huber_loss(err, delta) + prior2 @ (x - mean) ** 2)

        cost = cost_of(ev, theta[idx])
        lam = 1e-3
        n_run = 0
        for _ in range(iterations):
            n_run += 1
            x = theta[idx]
            res = ev.uv - obs  # (2, L)
            w = lmk_w * huber_weights(np.sqrt((res * res).sum(0)) / iod, delta)  # IRLS: fixed within one step
            sw = np.sqrt(w) / iod
            JtJ, g = self._normal_equations(blends, ev, rot_blocks, principal, res, sw)
            if not keep.all():
                JtJ, g = JtJ[np.ix_(keep, keep)], g[keep]
            JtJ[np.diag_indices_from(JtJ)] += prior2
            g += prior2 * (x - mean)
            diag = np.maximum(np.diag(JtJ), 1e-12)
            accepted = None
            for _attempt in range(6):  # raise the damping until the step lowers the cost
                trial = theta.copy()
                trial[idx] = x + bounded_newton_step(JtJ + np.diag(lam * diag), g, x, lower, upper)
                trial_ev = self._evaluate(blends, trial, principal)
                trial_cost = cost_of(trial_ev, trial[idx])
                if trial_cost < cost:
                    accepted = trial
                    break
                lam *= 10.0
            if accepted is None:  # no descent left at this precision: converged
                break
            moved = float(np.abs(trial_ev.uv - ev.uv).max())
            theta, ev, cost = accepted, trial_ev, trial_cost
            lam = max(lam / 10.0, 1e-7)
            if moved < self._TOL_PX:
                break
        return theta, n_run, ev

    def _initial_theta(self, layout: _Layout, obs: np.ndarray, principal: np.ndarray, prior_focal: float,
                       init: FitResult | None, fixed_shape, fixed_focal) -> np.ndarray:
        theta = np.zeros(layout.lower.size)
        sl = self._slices
        if init is not None:
            p = init.params
            for name in ("identity", "expression", "jaw_rot", "eye_left_rot", "eye_right_rot", "global_rot"):
                value = getattr(p, name)
                if value is not None:
                    value = value.detach().reshape(-1).to(torch.float64).numpy()
                    theta[sl[name]][: value.size] = value
            theta[sl["cam_t"]] = init.camera.world_to_cam[:3, 3].to(torch.float64).numpy()
            theta[sl["log_focal"]] = math.log(float(init.camera.K[0, 0]))
        else:
            focal = fixed_focal if fixed_focal is not None else prior_focal
            theta[sl["log_focal"]] = math.log(focal)
            # Depth from the spread of the landmarks (model metres vs. image pixels), x/y from their centroid.
            K = self.head.num_shape + self.head.num_expression
            ref = self.head.landmarks(np.zeros(K), np.zeros((self.head.num_joints, 3))) * np.diag(R0)
            centre = ref.mean(0)
            spread_model = float(np.sqrt(((ref[:, :2] - centre[:2]) ** 2).sum(1).mean()))
            mean_px = obs.mean(1)  # obs: (2, L)
            spread_px = float(np.sqrt(((obs - mean_px[:, None]) ** 2).sum(0).mean()))
            depth = focal * spread_model / max(spread_px, 1e-6)
            xy = (mean_px - principal[:, 0]) * depth / focal - centre[:2]
            theta[sl["cam_t"]] = [xy[0], xy[1], depth - centre[2]]
        if fixed_shape is not None:
            value = torch.as_tensor(fixed_shape).detach().reshape(-1).to(torch.float64).numpy()
            theta[sl["identity"]] = 0.0
            theta[sl["identity"]][: value.size] = value
        if fixed_focal is not None:
            theta[sl["log_focal"]] = math.log(float(fixed_focal))
        return np.where(layout.active, np.clip(theta, layout.lower, layout.upper), theta)

    def _result(self, theta: np.ndarray, ev: _Evaluation, obs: np.ndarray, iod: float, principal: np.ndarray,
                W: int, H: int, iterations: int, t_start: float) -> FitResult:
        order = self.head.order
        uv = np.empty((order.size, 2))
        uv[order] = ev.uv.T  # model order
        err = np.empty(order.size)
        err[order] = np.sqrt(((ev.uv - obs) ** 2).sum(0))
        t32 = lambda name: torch.from_numpy(theta[self._slices[name]].astype(np.float32)).reshape(1, -1)  # noqa: E731
        params = HeadParams(identity=t32("identity"), expression=t32("expression"), global_rot=t32("global_rot"),
                            neck_rot=torch.zeros(1, 3), jaw_rot=t32("jaw_rot"), eye_left_rot=t32("eye_left_rot"),
                            eye_right_rot=t32("eye_right_rot"), translation=torch.zeros(1, 3))
        f, (cx, cy) = ev.focal, principal[:, 0]
        K_cam = torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)
        world_to_cam = torch.eye(4)
        world_to_cam[:3, :3] = torch.from_numpy(R0)
        world_to_cam[:3, 3] = torch.from_numpy(theta[self._slices["cam_t"]])
        mean_px = float(err.mean())
        return FitResult(params=params, camera=Camera(K_cam, world_to_cam, W, H),
                         reprojection_px=torch.from_numpy(err.astype(np.float32)),
                         projected_px=torch.from_numpy(uv.astype(np.float32)),
                         landmark_ids=self.landmark_ids.clone(), mean_error_px=mean_px,
                         mean_error_iod=mean_px / iod, iterations=iterations,
                         ms=(time.perf_counter() - t_start) * 1000.0)


_FITTERS: "weakref.WeakKeyDictionary[HeadModel, HeadFitter]" = weakref.WeakKeyDictionary()


def fit_head(model: HeadModel, landmarks_px, image_size: tuple[int, int], init: FitResult | None = None,
             fixed_shape: Tensor | None = None, fixed_focal: float | None = None,
             iterations: int | None = None, config: FitConfig | None = None) -> FitResult:
    """Fit `model` to (478, 2) MediaPipe landmarks; see `HeadFitter.fit`. The reduced model is built
    once per head model (and config) and cached, so calling this per video frame stays cheap."""
    fitter = _FITTERS.get(model)
    if fitter is None or (config is not None and fitter.config != config):
        fitter = HeadFitter(model, config)
        _FITTERS[model] = fitter
    return fitter.fit(landmarks_px, image_size, init=init, fixed_shape=fixed_shape, fixed_focal=fixed_focal,
                      iterations=iterations)
