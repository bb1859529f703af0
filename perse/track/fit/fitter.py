"""The head fit: `FitConfig`, `FitResult` and `HeadFitter`, projected Levenberg-Marquardt on the Huber
cost over a `LandmarkHead` (what is fitted, and why this way: the package docstring).

The pixels' Jacobian chains the reduced model's through the pinhole camera and its focal length. The
accepted trial point's evaluation is the next iteration's, so an iteration costs one model evaluation.
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
from perse.landmarks import NUM_LANDMARKS, eye_corner_distance
from perse.render.camera import Camera
from perse.track.fit.kernels import bounded_newton_step, huber_loss, huber_weights, normal_equations
from perse.track.fit.reduced_model import Blends, LandmarkHead, PosedLandmarks
from perse.track.landmarks import landmark_groups

R0 = np.diag([1.0, -1.0, -1.0])  # model (+y up, +z face) -> OpenCV camera axes


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
        iod = eye_corner_distance(obs_all)
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
