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
second-order method converges in a handful of iterations; the Jacobian comes from forward-mode autodiff
is assembled from exact parts (the skinned landmarks are affine in the shape/expression coefficients
for a fixed pose; projection and focal are closed-form) plus batched central differences for the few
rotations, all through a reduced model that skins only the vertices the landmarks sit on
(`LandmarkHead`). Robustness: iteratively
reweighted least squares with Huber weights per landmark; plausibility: L2 priors (residual rows) on
shape, expression, jaw, eyes and focal length, and box bounds (projected steps) on every rotation and
coefficient. For video, pass ``fixed_shape`` (and ``fixed_focal``) and warm-start with the previous
frame's result via ``init``: only pose and expression are solved, in a few iterations.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from perse.head.model import HeadModel, HeadParams
from perse.render.camera import Camera
from perse.track.landmarks import NUM_LANDMARKS, OUTER_EYE_CORNERS, landmark_groups

R0 = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # model (+y up, +z face) -> OpenCV


# --------------------------------------------------------------------------------------------------
# Small pure math (float64, functional: usable under torch.func transforms)
# --------------------------------------------------------------------------------------------------
def rodrigues(rotvec: Tensor) -> Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices, smooth (finite derivatives) at zero."""
    x, y, z = rotvec.unbind(-1)
    theta2 = (rotvec * rotvec).sum(-1) + 1e-20
    theta = theta2.sqrt()
    small = theta2 < 1e-6
    # sin(t)/t and (1 - cos t)/t^2, with Taylor branches near zero (both branches stay finite).
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def project_points(points_cam: Tensor, focal: Tensor, principal: Tensor) -> Tensor:
    """(..., 3) camera-frame points -> (..., 2) pixels. focal: scalar; principal: (2,)."""
    return focal * points_cam[..., :2] / points_cam[..., 2:3].clamp_min(1e-6) + principal


def huber_weights(err: Tensor, delta: float) -> Tensor:
    """IRLS weights of the Huber loss for per-landmark error norms err (L,): 1 inside delta, delta/err out."""
    return torch.where(err <= delta, torch.ones_like(err), delta / err.clamp_min(1e-12))


# --------------------------------------------------------------------------------------------------
# The landmark-only head
# --------------------------------------------------------------------------------------------------
class LandmarkHead:
    """The part of a `HeadModel` needed to pose its landmarks: only the triangle corners the landmarks
    sit on are skinned (exactly as `HeadModel.forward` would), joints come from a precomputed joint
    regression of the shape/expression directions. All float64.

    Corners: the first L are each landmark's main corner (largest barycentric weight); the X extra
    ones (corners with nonzero weight, e.g. iris points inside eyeball triangles) follow, with
    `owner` (X,) naming their landmark. A landmark on a vertex is then one corner, not three.

    Buffers: v_template (C, 3), dirs (C, 3, K) with K = S + E, posedirs (P, C * 3) or None when the
    model has no pose correctives, weights (C, 5), j_template (5, 3), j_dirs (5, 3, K),
    bary_main (L,), bary_extra (X,), owner (X,), landmark_ids (L,) MediaPipe ids.
    """

    def __init__(self, model: HeadModel):
        f64 = dict(dtype=torch.float64, device="cpu")
        bary = model.lmk_bary.cpu().to(**f64)
        tri = model.faces[model.lmk_face_idx].cpu()  # (L, 3) vertex ids
        L = tri.shape[0]
        main = bary.argmax(1)
        extra_mask = bary.abs() > 0
        extra_mask[torch.arange(L), main] = False
        owner, slot = extra_mask.nonzero(as_tuple=True)
        corner_vertex = torch.cat([tri[torch.arange(L), main], tri[owner, slot]])  # (C,)
        dirs_full = torch.cat([model.shapedirs, model.exprdirs], dim=2).cpu().to(**f64)  # (V, 3, K)
        v_full = model.v_template.cpu().to(**f64)
        j_reg = model.j_regressor.cpu().to(**f64)
        P = model.posedirs.shape[0]
        self.num_shape = model.num_shape
        self.num_expression = model.num_expression
        self.v_template = v_full[corner_vertex]
        self.dirs = dirs_full[corner_vertex]
        posedirs = model.posedirs.cpu().to(**f64).reshape(P, -1, 3)[:, corner_vertex].reshape(P, -1)
        self.posedirs = posedirs if P and bool(posedirs.abs().max() > 0) else None
        self.weights = model.lbs_weights.cpu().to(**f64)[corner_vertex]
        self.weights_t = self.weights.T.contiguous()[None, :, :, None]  # (1, 5, C, 1) for skinning
        self.j_template = j_reg @ v_full
        self.j_dirs = torch.einsum("jv,vck->jck", j_reg, dirs_full)
        self.parents = [int(p) for p in model.parents.tolist()]
        self.num_main = L
        self.bary_main = bary[torch.arange(L), main]
        self.bary_extra = bary[owner, slot]
        self.owner = owner
        self.landmark_ids = model.landmark_indices.cpu().long()
        # How much each landmark moves with the eye joints (iris points on eyeballs: 1).
        self.eye_influence = self._to_landmarks(self.weights[None])[0, :, 3:].sum(1)

    @property
    def num_landmarks(self) -> int:
        return self.num_main

    def _to_landmarks(self, per_corner: Tensor) -> Tensor:
        """(B, C, D) per-corner values -> (B, L, D) barycentric landmark values."""
        lmk = per_corner[:, : self.num_main] * self.bary_main[:, None]
        if self.owner.numel():
            lmk = lmk.index_add(1, self.owner, per_corner[:, self.num_main:] * self.bary_extra[:, None])
        return lmk

    def _kinematics(self, rots: Tensor, joints: Tensor) -> tuple[Tensor, Tensor]:
        """rots (B, 5, 3, 3), joints (5, 3) -> world rotations G (B, 5, 3, 3), translations (B, 5, 3)."""
        g_rot, g_trans = [rots[:, 0]], [joints[0].expand(rots.shape[0], 3)]
        for j in range(1, len(self.parents)):
            p = self.parents[j]
            g_rot.append(g_rot[p] @ rots[:, j])
            g_trans.append(g_rot[p] @ (joints[j] - joints[p]) + g_trans[p])
        return torch.stack(g_rot, 1), torch.stack(g_trans, 1)

    def __call__(self, coeffs: Tensor, pose: Tensor, coeff_jacobian: Tensor | None = None):
        """Posed landmarks in the model frame.

        Args:
            coeffs: (K,) shape then expression coefficients.
            pose: (B, 5, 3) axis-angle per joint (a batch of poses sharing the coefficients).
            coeff_jacobian: optional (k,) indices of coefficients to differentiate.
        Returns:
            (B, L, 3) landmarks; with coeff_jacobian also (L, 3, k): d landmarks / d coeffs for
            the first pose (exact: for a fixed pose the skinned points are affine in the coefficients).
        """
        B = pose.shape[0]
        v = self.v_template + self.dirs @ coeffs  # (C, 3)
        joints = self.j_template + self.j_dirs @ coeffs  # (5, 3)
        rots = rodrigues(pose)  # (B, 5, 3, 3)
        if self.posedirs is not None:
            eye = torch.eye(3, dtype=coeffs.dtype)
            v = v + ((rots[:, 1:] - eye).reshape(B, -1) @ self.posedirs).reshape(B, -1, 3)
        G, g_trans = self._kinematics(rots, joints)
        t = g_trans - (G @ joints[:, :, None])[..., 0]  # (B, 5, 3): maps rest-pose points
        # Every joint's transform applied to every corner, then blended by the skinning weights.
        per_joint = v[:, None] @ G.transpose(-1, -2) if v.dim() == 3 else v @ G.transpose(-1, -2)
        posed = ((per_joint + t[:, :, None]) * self.weights_t).sum(1)  # (B, C, 3)
        lmk = self._to_landmarks(posed)
        if coeff_jacobian is None:
            return lmk
        if coeff_jacobian.numel() == 0:
            return lmk, lmk.new_zeros(self.num_main, 3, 0)
        # The same blend applied to the directions (rotation part only), for pose 0.
        dv = self.dirs[:, :, coeff_jacobian]  # (C, 3, k)
        dj = self.j_dirs[:, :, coeff_jacobian]  # (5, 3, k)
        G0 = G[0]
        d_trans = [dj[0]]
        for j in range(1, len(self.parents)):
            p = self.parents[j]
            d_trans.append(G0[p] @ (dj[j] - dj[p]) + d_trans[p])
        d_t = torch.stack(d_trans) - G0 @ dj  # (5, 3, k)
        k = dv.shape[2]
        rot_dirs = (G0 @ dv.permute(1, 0, 2).reshape(3, -1)).reshape(5, 3, -1, k)  # (5, 3, C, k)
        d_posed = ((rot_dirs + d_t[:, :, None]) * self.weights_t.reshape(5, 1, -1, 1)).sum(0)  # (3, C, k)
        d_lmk = self._to_landmarks(d_posed).permute(1, 0, 2)  # (L, 3, k)
        return lmk, d_lmk


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
class _Plan:
    """Positions (in the active-parameter order) of each kind of derivative; see HeadFitter._plan."""

    coeff_idx: Tensor  # (kc,) coefficient indices (into shape|expression)
    coeff_pos: Tensor
    rot_pos: Tensor
    steps: Tensor  # (2 * kr, 5, 3) +-h pose perturbations
    cam_axes: Tensor
    cam_pos: Tensor
    focal_pos: Tensor


@dataclass
class _Block:
    name: str
    size: int
    lower: Tensor
    upper: Tensor
    prior: Tensor  # sqrt-weights (size,)
    active: Tensor  # bool (size,)


class HeadFitter:
    """Fits one `HeadModel` to MediaPipe landmarks; holds the reduced model, reuse it across frames."""

    def __init__(self, model: HeadModel, config: FitConfig | None = None):
        from perse.head.flame import require_landmarks

        require_landmarks(model)
        self.config = config or FitConfig()
        self.head = LandmarkHead(model)
        self.is_arkit = model.kind == "builtin"  # ARKit blend shapes: range [0, 1], jawOpen ~ jaw_rot
        self.expression_names = model.expression_names
        self.landmark_ids = self.head.landmark_ids
        self.has_eyes = bool((self.head.eye_influence > 0.5).any())
        self.landmark_weights = self._landmark_weights()

    def _landmark_weights(self) -> Tensor:
        w = self.config.landmark_weights
        per_id = torch.full((NUM_LANDMARKS,), w["other"], dtype=torch.float64)
        groups = landmark_groups()
        for name in ("face_oval", "nose", "left_eyebrow", "right_eyebrow", "lips", "left_eye", "right_eye",
                     "irises"):
            per_id[torch.as_tensor(groups[name])] = w[name]
        return per_id[self.landmark_ids]

    # -- parameter layout ---------------------------------------------------------------------------
    def _blocks(self, fit_shape: bool, fit_focal: bool) -> list[_Block]:
        c, h = self.config, self.head
        S, E = h.num_shape, h.num_expression

        def block(name, size, lo, hi, prior, active=True):
            t = lambda v: torch.as_tensor(v, dtype=torch.float64).expand(size).clone()  # noqa: E731
            act = torch.as_tensor(active).expand(size).clone()
            return _Block(name, size, t(lo), t(hi), t(prior), act)

        shape_active = torch.arange(S) < c.max_shape if fit_shape else torch.zeros(S, dtype=torch.bool)
        expr_active = torch.arange(E) < c.max_expression
        if self.is_arkit:
            expr_lo, expr_hi = 0.0, 1.0
            if "jawOpen" in self.expression_names:  # the opening is jaw_rot; never both
                expr_active[self.expression_names.index("jawOpen")] = False
        else:
            expr_lo, expr_hi = -3.0, 3.0
        jaw_lo = [b[0] for b in c.jaw_bounds]
        jaw_hi = [b[1] for b in c.jaw_bounds]
        rb = torch.tensor(c.rotation_bounds, dtype=torch.float64)
        eye_active = [self.has_eyes, self.has_eyes, False]  # no roll of an eyeball
        return [
            block("shape", S, -c.shape_bound, c.shape_bound, c.shape_prior, shape_active),
            block("expression", E, expr_lo, expr_hi, c.expression_prior, expr_active),
            block("jaw_rot", 3, jaw_lo, jaw_hi, list(c.jaw_prior)),
            block("eye_left_rot", 3, -c.eye_bound, c.eye_bound, c.eye_prior, eye_active),
            block("eye_right_rot", 3, -c.eye_bound, c.eye_bound, c.eye_prior, eye_active),
            block("global_rot", 3, -rb, rb, c.rotation_prior),
            block("cam_t", 3, [-1e3, -1e3, 0.05], [1e3, 1e3, 1e3], 0.0),
            block("log_focal", 1, -math.inf, math.inf, c.focal_prior, fit_focal),
        ]

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
            iterations: Levenberg-Marquardt iterations (default 40 cold, 3 warm with fixed shape).
        """
        t_start = time.perf_counter()
        obs_all = torch.as_tensor(np.asarray(landmarks_px, dtype=np.float64))
        if obs_all.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"expected (478, 2) MediaPipe landmarks, got {tuple(obs_all.shape)}")
        if not torch.isfinite(obs_all).all():
            raise ValueError("landmarks contain NaN or inf")
        W, H = int(image_size[0]), int(image_size[1])
        obs = obs_all[self.landmark_ids]
        iod = float((obs_all[OUTER_EYE_CORNERS[0]] - obs_all[OUTER_EYE_CORNERS[1]]).norm())
        if iod < 1.0:
            raise ValueError("outer eye corners coincide: not a face")
        principal = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=torch.float64)
        prior_focal = 0.5 * max(W, H) / math.tan(math.radians(self.config.prior_fov_deg) / 2)

        blocks = self._blocks(fit_shape=fixed_shape is None, fit_focal=fixed_focal is None)
        theta = self._initial_theta(blocks, obs, iod, principal, prior_focal, init, fixed_shape, fixed_focal)
        prior_mean = torch.zeros_like(theta)
        prior_mean[self._slice(blocks, "log_focal")] = math.log(prior_focal)

        warm = init is not None
        if iterations is None:
            iterations = 3 if (warm and fixed_shape is not None) else 40
        used = 0
        if not warm:  # rigid pre-alignment: pose and focal only, so the deformable fit starts close
            rigid = [b.name in ("global_rot", "cam_t", "log_focal") for b in blocks]
            theta, n = self._solve(blocks, theta, prior_mean, obs, iod, principal, 8, only=rigid)
            used += n
        theta, n = self._solve(blocks, theta, prior_mean, obs, iod, principal, iterations)
        used += n
        return self._result(blocks, theta, obs, iod, principal, W, H, used, t_start)

    # -- internals ---------------------------------------------------------------------------------
    @staticmethod
    def _slice(blocks: list[_Block], name: str) -> slice:
        start = 0
        for b in blocks:
            if b.name == name:
                return slice(start, start + b.size)
            start += b.size
        raise KeyError(name)

    def _unpack(self, blocks: list[_Block], theta: Tensor) -> dict[str, Tensor]:
        out, start = {}, 0
        for b in blocks:
            out[b.name] = theta[start:start + b.size]
            start += b.size
        return out

    # theta layout (see _blocks): shape S | expression E | jaw 3 | eye_left 3 | eye_right 3 | global 3 |
    # cam_t 3 | log_focal 1. The rotations, in that order, drive joints 2, 3, 4 and 0.
    _ROT_JOINTS = (2, 3, 4, 0)
    _FD_STEP = 1e-6  # rad; central differences for the rotations (float64: ~1e-10 relative error)

    def _plan(self, active: Tensor) -> _Plan:
        """Where each kind of derivative goes, for the active parameter indices (n,)."""
        K = self.head.num_shape + self.head.num_expression
        pos = torch.arange(active.numel())
        is_coeff = active < K
        is_rot = (active >= K) & (active < K + 12)
        is_cam = (active >= K + 12) & (active < K + 15)
        is_focal = active == K + 15
        rot = active[is_rot] - K
        steps = torch.zeros(2 * rot.numel(), 5, 3, dtype=torch.float64)
        for k, r in enumerate(rot.tolist()):
            joint, axis = self._ROT_JOINTS[r // 3], r % 3
            steps[2 * k, joint, axis] = self._FD_STEP
            steps[2 * k + 1, joint, axis] = -self._FD_STEP
        return _Plan(coeff_idx=active[is_coeff], coeff_pos=pos[is_coeff], rot_pos=pos[is_rot], steps=steps,
                     cam_axes=active[is_cam] - K - 12, cam_pos=pos[is_cam], focal_pos=pos[is_focal])

    def _project(self, theta: Tensor, principal: Tensor, plan: _Plan | None = None) -> tuple[Tensor, Tensor | None]:
        """theta (N,) -> fitted landmark pixels uv (L, 2) and, with a plan, d uv / d theta[active]
        (L, 2, n): exact for coefficients, camera and focal, central differences for the rotations."""
        K = self.head.num_shape + self.head.num_expression
        rot = theta[K:K + 12].reshape(4, 3)  # jaw, eye_left, eye_right, global
        pose = torch.cat([rot[3:], torch.zeros_like(rot[:1]), rot[:3]])[None]  # (1, 5, 3) in joint order
        if plan is None:
            lmk = self.head(theta[:K], pose)
        else:
            if plan.steps.shape[0]:  # the +-h perturbed poses, evaluated as one batch
                pose = torch.cat([pose, pose + plan.steps])
            lmk, d_lmk = self.head(theta[:K], pose, coeff_jacobian=plan.coeff_idx)
        cam = lmk @ R0.T + theta[K + 12:K + 15]  # (B, L, 3)
        focal = torch.exp(theta[K + 15])
        uv_all = project_points(cam, focal, principal)
        uv = uv_all[0]
        if plan is None:
            return uv, None
        x, y, z = cam[0].unbind(-1)
        inv_z = focal / z.clamp_min(1e-6)
        zero = torch.zeros_like(x)
        d_uv_d_cam = torch.stack([torch.stack([inv_z, zero, -inv_z * x / z], -1),
                                  torch.stack([zero, inv_z, -inv_z * y / z], -1)], 1)  # (L, 2, 3)
        n = plan.coeff_pos.numel() + plan.rot_pos.numel() + plan.cam_pos.numel() + plan.focal_pos.numel()
        J = torch.empty(uv.shape[0], 2, n, dtype=theta.dtype)
        J[:, :, plan.coeff_pos] = d_uv_d_cam @ R0 @ d_lmk
        J[:, :, plan.rot_pos] = ((uv_all[1::2] - uv_all[2::2]) / (2 * self._FD_STEP)).permute(1, 2, 0)
        J[:, :, plan.cam_pos] = d_uv_d_cam[:, :, plan.cam_axes]
        J[:, :, plan.focal_pos] = (uv - principal)[..., None]
        return uv, J

    def _initial_theta(self, blocks, obs, iod, principal, prior_focal, init, fixed_shape, fixed_focal) -> Tensor:
        n = sum(b.size for b in blocks)
        theta = torch.zeros(n, dtype=torch.float64)
        sl = lambda name: self._slice(blocks, name)  # noqa: E731
        if init is not None:
            p = init.params
            for name in ("shape", "expression", "jaw_rot", "eye_left_rot", "eye_right_rot", "global_rot"):
                value = getattr(p, name)
                if value is not None:
                    value = value.detach().reshape(-1).to(torch.float64)
                    theta[sl(name)][: value.numel()] = value
            theta[sl("cam_t")] = init.camera.world_to_cam[:3, 3].to(torch.float64)
            theta[sl("log_focal")] = math.log(float(init.camera.K[0, 0]))
        else:
            focal = fixed_focal if fixed_focal is not None else prior_focal
            theta[sl("log_focal")] = math.log(focal)
            # Depth from the spread of the landmarks (model metres vs. image pixels), x/y from their centroid.
            ref = self.head(theta[: self.head.num_shape + self.head.num_expression],
                            torch.zeros(1, 5, 3, dtype=torch.float64))[0] @ R0.T
            centre = ref.mean(0)
            spread_model = float((ref[:, :2] - centre[:2]).pow(2).sum(1).mean().sqrt())
            spread_px = float((obs - obs.mean(0)).pow(2).sum(1).mean().sqrt())
            depth = focal * spread_model / max(spread_px, 1e-6)
            xy = (obs.mean(0) - principal) * depth / focal - centre[:2]
            theta[sl("cam_t")] = torch.tensor([xy[0], xy[1], depth - centre[2]], dtype=torch.float64)
        if fixed_shape is not None:
            value = torch.as_tensor(fixed_shape).detach().reshape(-1).to(torch.float64)
            theta[sl("shape")] = 0.0
            theta[sl("shape")][: value.numel()] = value
        if fixed_focal is not None:
            theta[sl("log_focal")] = math.log(float(fixed_focal))
        lower = torch.cat([b.lower for b in blocks])
        upper = torch.cat([b.upper for b in blocks])
        active = torch.cat([b.active for b in blocks])
        return torch.where(active, theta.clamp(lower, upper), theta)

    def _solve(self, blocks, theta, prior_mean, obs, iod, principal, iterations, only=None) -> tuple[Tensor, int]:
        """Projected Levenberg-Marquardt with Huber IRLS; returns (theta, iterations run).

        Data rows: sqrt(w_i * robust_i) * (uv_i - obs_i) / iod; prior rows: prior * (theta - mean).
        """
        active = torch.cat([b.active & bool(only[i]) if only is not None else b.active
                            for i, b in enumerate(blocks)])
        idx = active.nonzero()[:, 0]
        if idx.numel() == 0:
            return theta, 0
        lower = torch.cat([b.lower for b in blocks])[idx]
        upper = torch.cat([b.upper for b in blocks])[idx]
        prior2 = torch.cat([b.prior for b in blocks])[idx] ** 2
        mean = prior_mean[idx]
        lmk_w = self.landmark_weights
        theta = theta.clone()
        plan = self._plan(idx)

        def cost_of(uv: Tensor, x: Tensor, w: Tensor) -> float:
            d = ((uv - obs) ** 2).sum(1) / iod**2
            return float((w * d).sum() + (prior2 * (x - mean) ** 2).sum())

        lam = 1e-3
        n_run = 0
        for _ in range(iterations):
            n_run += 1
            x = theta[idx]
            uv, J = self._project(theta, principal, plan)
            err = (uv - obs).norm(dim=1) / iod
            w = lmk_w * huber_weights(err, self.config.huber_delta)  # IRLS: fixed within one step
            cost = cost_of(uv, x, w)
            Jd = (J * (w.sqrt() / iod)[:, None, None]).reshape(-1, idx.numel())
            rd = ((uv - obs) * (w.sqrt() / iod)[:, None]).reshape(-1)
            JtJ = Jd.T @ Jd + torch.diag(prior2)
            g = Jd.T @ rd + prior2 * (x - mean)
            diag = torch.diag(JtJ).clamp_min(1e-12)
            improved = False
            for _attempt in range(5):  # raise the damping until the step lowers the cost
                step = torch.linalg.solve(JtJ + lam * torch.diag(diag), -g)
                x_new = torch.minimum(torch.maximum(x + step, lower), upper)
                trial = theta.index_put((idx,), x_new)
                uv_new, _ = self._project(trial, principal)
                new_cost = cost_of(uv_new, x_new, w)
                if new_cost < cost:
                    improved = True
                    break
                lam *= 10.0
            if not improved:
                break
            theta = trial
            lam = max(lam / 10.0, 1e-7)
            if (cost - new_cost) / max(cost, 1e-30) < 1e-5:  # converged
                break
        return theta, n_run

    def _result(self, blocks, theta, obs, iod, principal, W, H, iterations, t_start) -> FitResult:
        uv, _ = self._project(theta, principal)
        focal = math.exp(float(theta[self._slice(blocks, "log_focal")][0]))
        err = (uv - obs).norm(dim=1)
        p = self._unpack(blocks, theta)
        f32 = lambda t: t.detach().to(torch.float32).reshape(1, -1).clone()  # noqa: E731
        params = HeadParams(shape=f32(p["shape"]), expression=f32(p["expression"]),
                            global_rot=f32(p["global_rot"]), neck_rot=torch.zeros(1, 3),
                            jaw_rot=f32(p["jaw_rot"]), eye_left_rot=f32(p["eye_left_rot"]),
                            eye_right_rot=f32(p["eye_right_rot"]), translation=torch.zeros(1, 3))
        K = torch.tensor([[float(focal), 0.0, float(principal[0])], [0.0, float(focal), float(principal[1])],
                          [0.0, 0.0, 1.0]])
        world_to_cam = torch.eye(4)
        world_to_cam[:3, :3] = R0.float()
        world_to_cam[:3, 3] = p["cam_t"].float()
        mean_px = float(err.mean())
        return FitResult(params=params, camera=Camera(K, world_to_cam, W, H), reprojection_px=err.float(),
                         projected_px=uv.float(), landmark_ids=self.landmark_ids.clone(),
                         mean_error_px=mean_px, mean_error_iod=mean_px / iod, iterations=iterations,
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
