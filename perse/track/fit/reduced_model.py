"""`LandmarkHead`: the landmarks of a `HeadModel` as a function of its coefficients and joint rotations,
with their exact Jacobian (float64 numpy); the reduced model the head fit solves on.

Each landmark is a barycentric blend of skinned vertices, so the blend is folded in advance into
per-(landmark, joint) rest-pose offsets that are affine in the coefficients; a pose then costs one 3x3
rotation per joint applied to the landmarks that joint moves. The Jacobian is closed-form: coefficients
through the same blend, rotations through the left Jacobian of SO(3) (a rotation of joint a moves a
landmark by ``s x (y - g_a)``). The offsets of the coefficients held fixed (the identity, in video) are
summed once and reused across frames (`LandmarkHead.blends`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from perse.geometry.rotations import rotation_and_left_jacobian, skew
from perse.head.model import HeadModel


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
