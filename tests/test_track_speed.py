"""The fast per-frame fit: exact reduced model and Jacobian, the bounded step, and warm-path equivalence.

No timings are asserted here (speed is reported by `perse bench` through `measure_tracking_speed`); these
tests pin down that the fast path computes the same things as the full model and a long fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perse.errors import PerseError
from perse.geometry.rotations import axis_angle_to_matrix, rotation_and_left_jacobian, skew
from perse.geometry.rotations import axis_angle_to_matrix as rodrigues
from perse.head import load_builtin_head
from perse.head.model import HeadParams
from perse.render.camera import orbit_camera
from perse.track.fit import HeadFitter
from perse.track.fit.kernels import bounded_newton_step, normal_equations
from perse.track.fit.reduced_model import LandmarkHead
from perse.track.landmarks import LandmarkDetector, detect_largest_face
from perse.bench.fit_speed import measure_tracking_speed, perturbed_landmark_frames

skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def head():
    return load_builtin_head()


@pytest.fixture(scope="module")
def flame(tmp_path_factory):
    from flame_fixtures import write_synthetic_embedding, write_synthetic_flame

    from perse.head.flame import load_flame

    d = tmp_path_factory.mktemp("flame")
    write_synthetic_flame(d / "generic_model.pkl")
    write_synthetic_embedding(d / "mediapipe_landmark_embedding.npz")
    return load_flame(d / "generic_model.pkl", d / "mediapipe_landmark_embedding.npz")


@pytest.fixture(scope="module")
def astro_points() -> np.ndarray:
    with LandmarkDetector(static_image_mode=True) as detector:
        return detect_largest_face(skdata.astronaut(), "astronaut", detector=detector).face.points


def _random_state(model, seed: int):
    rng = np.random.default_rng(seed)
    K = model.num_shape + model.num_expression
    coeffs = rng.normal(size=K) * 0.3
    pose = rng.normal(size=(5, 3)) * 0.2  # every joint turned, the neck too
    return coeffs, pose


# --------------------------------------------------------------------------------------------------
# Rotations and the reduced model
# --------------------------------------------------------------------------------------------------
def test_rotations_match_lbs_and_left_jacobian_is_the_derivative():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(size=(6, 3)) * 0.7, [[0.0, 0.0, 0.0], [1e-5, -2e-5, 3e-6], [0.004, 0.0, 0.0]]])
    R, J = rotation_and_left_jacobian(w)
    ref = axis_angle_to_matrix(torch.from_numpy(w)).numpy()
    assert np.abs(R - ref).max() < 1e-12 and np.abs(rodrigues(w) - R).max() == 0.0
    eps = 1e-6
    for k in range(3):  # d R / d w_k == skew(J[:, k]) @ R
        dw = np.zeros(3)
        dw[k] = eps
        numeric = (rodrigues(w + dw) - rodrigues(w - dw)) / (2 * eps)
        analytic = skew(J[:, :, k]) @ R
        assert np.abs(numeric - analytic).max() < 1e-8


@pytest.mark.parametrize("which", ["builtin", "flame"])
def test_landmark_head_matches_the_full_model(request, which):
    model = request.getfixturevalue("head" if which == "builtin" else "flame")
    reduced = LandmarkHead(model)
    coeffs, pose = _random_state(model, 1)
    S = model.num_shape
    params = HeadParams(identity=torch.tensor(coeffs[None, :S]), expression=torch.tensor(coeffs[None, S:]),
                        global_rot=torch.tensor(pose[None, 0]), neck_rot=torch.tensor(pose[None, 1]),
                        jaw_rot=torch.tensor(pose[None, 2]), eye_left_rot=torch.tensor(pose[None, 3]),
                        eye_right_rot=torch.tensor(pose[None, 4]))
    with torch.no_grad():
        full = model.double()(params).landmarks[0].numpy()
    model.float()
    assert np.abs(reduced.landmarks(coeffs, pose) - full).max() < 1e-12
    assert reduced.has_pose_dirs == (which == "flame")  # the FLAME file carries pose correctives


@pytest.mark.parametrize("which", ["builtin", "flame"])
def test_landmark_head_jacobian_is_exact(request, which):
    model = request.getfixturevalue("head" if which == "builtin" else "flame")
    reduced = LandmarkHead(model)
    coeffs, pose = _random_state(model, 2)
    K = coeffs.size
    free = np.array([0, 5, model.num_shape + 1, K - 1])
    joints = [2, 3, 0, 1]  # a leaf, the root and the neck (a joint with children)
    blends = reduced.blends(coeffs, free)
    D = reduced.jacobian(blends, reduced.pose(blends, coeffs[free], pose), joints)  # (3, n, L), head order
    analytic = np.empty_like(D)
    analytic[:, :, reduced.order] = D
    eps, numeric = 1e-6, []
    for i in free:
        dc = np.zeros(K)
        dc[i] = eps
        numeric.append(reduced.landmarks(coeffs + dc, pose) - reduced.landmarks(coeffs - dc, pose))
    for j in joints:
        for axis in range(3):
            dp = np.zeros((5, 3))
            dp[j, axis] = eps
            numeric.append(reduced.landmarks(coeffs, pose + dp) - reduced.landmarks(coeffs, pose - dp))
    numeric = np.stack(numeric).transpose(2, 0, 1) / (2 * eps)  # (3, n, L)
    assert np.abs(numeric).max() > 0.05
    assert np.abs(analytic - numeric).max() < 1e-9


# --------------------------------------------------------------------------------------------------
# Dense algebra kernels
# --------------------------------------------------------------------------------------------------
def test_normal_equations_match_dense_algebra():
    rng = np.random.default_rng(3)
    n, e, L = 7, 3, 40
    D, P = rng.normal(size=(3, n, L)), rng.normal(size=(2, 3, L))
    E, r = rng.normal(size=(e, 2, L)), rng.normal(size=(2, L))
    J = np.concatenate([np.einsum("qcl,cil->qli", P, D), E.transpose(1, 2, 0)], axis=2).reshape(2 * L, n + e)
    A, g = normal_equations(D, P, E, r)
    assert np.allclose(A, J.T @ J, rtol=1e-12, atol=1e-10)
    assert np.allclose(g, J.T @ r.reshape(-1), rtol=1e-12, atol=1e-10)


def test_bounded_step_solves_box_constrained_quadratics():
    rng = np.random.default_rng(4)
    M = rng.normal(size=(20, 6))
    H = M.T @ M + np.eye(6)
    g = rng.normal(size=6)
    x, lo, hi = np.zeros(6), np.full(6, -10.0), np.full(6, 10.0)
    # Wide box: the Newton step itself.
    assert np.allclose(bounded_newton_step(H, g, x, lo, hi), np.linalg.solve(H, -g), atol=1e-12)
    # Diagonal H: the constrained minimiser is the clipped Newton step.
    h = np.array([1.0, 2.0, 4.0, 0.5, 3.0, 1.5])
    step = bounded_newton_step(np.diag(h), g * 3, x, np.full(6, -0.5), np.full(6, 0.5))
    assert np.allclose(step, np.clip(-3 * g / h, -0.5, 0.5), atol=1e-12)
    # Coupled 2-D case: min 0.5 s^T H s + g^T s, s_0 >= 0. Unconstrained s = (-1, 1); with s_0 pinned at 0
    # the optimum is s_1 = -g_1 / H_11 = 0.5, which clipping the unconstrained step (0, 1) misses.
    H2 = np.array([[2.0, 1.0], [1.0, 2.0]])
    g2 = -H2 @ np.array([-1.0, 1.0])
    step = bounded_newton_step(H2, g2, np.zeros(2), np.array([0.0, -5.0]), np.array([5.0, 5.0]))
    assert np.allclose(step, [0.0, -g2[1] / H2[1, 1]], atol=1e-12) and step[1] == pytest.approx(0.5)
    # A variable on its bound that the gradient pushes outward stays put.
    step = bounded_newton_step(np.eye(2), np.array([1.0, -1.0]), np.array([0.0, 0.0]), np.array([0.0, -5.0]),
                               np.array([5.0, 5.0]))
    assert np.allclose(step, [0.0, 1.0])
    # Not positive definite: no step.
    assert np.array_equal(bounded_newton_step(-np.eye(2), np.ones(2), np.zeros(2), lo[:2], hi[:2]), np.zeros(2))


# --------------------------------------------------------------------------------------------------
# Fits
# --------------------------------------------------------------------------------------------------
def test_cold_fit_on_the_astronaut_is_at_least_as_good_as_before(head, astro_points):
    fit = HeadFitter(head).fit(astro_points, (512, 512))
    assert fit.mean_error_iod <= 0.0054  # the error of the previous solver on this portrait


def _assert_warm_fits_match_long_fits(fitter: HeadFitter, frames: list[np.ndarray], size: tuple[int, int]):
    """Webcam call shape: the default warm fit (<= 3 iterations) of every frame lands within 0.05 px of
    the same fit run to convergence, on every landmark."""
    first = fitter.fit(frames[0], size)
    prev = first
    for points in frames[1:]:
        kw = dict(init=prev, fixed_shape=first.params.identity, fixed_focal=first.focal)
        fast = fitter.fit(points, size, **kw)
        long = fitter.fit(points, size, iterations=200, **kw)
        assert fast.iterations <= 3 and long.iterations < 200  # the long fit converged
        gap = (fast.projected_px - long.projected_px).norm(dim=1)
        assert float(gap.max()) <= 0.05
        assert abs(fast.mean_error_px - long.mean_error_px) <= 0.01
        assert torch.equal(fast.params.identity, first.params.identity) and fast.focal == pytest.approx(first.focal)
        prev = fast
    # The frames did move: the tracked landmarks follow them.
    assert float((prev.projected_px - first.projected_px).norm(dim=1).mean()) > 1.0
    return first, prev


def test_warm_per_frame_fit_converges_to_the_long_fit_on_the_astronaut(head, astro_points):
    frames = perturbed_landmark_frames(astro_points, 12, seed=1, offset=(64.0, -16.0))  # into 640x480
    _, last = _assert_warm_fits_match_long_fits(HeadFitter(head), frames, (640, 480))
    assert last.mean_error_iod < 0.02


def test_warm_per_frame_fit_converges_to_the_long_fit_on_flame(flame, astro_points):
    """FLAME (pose correctives, 105 landmarks): frames rendered from the model itself, head turning and
    jaw opening, with MediaPipe-like noise. (The synthetic FLAME is an ellipsoid, so the astronaut's own
    landmarks would leave ~30 px residuals, all in the Huber tail where IRLS converges only linearly.)"""
    camera = orbit_camera(0.0, 0.0, distance=0.6, fov_y_deg=25.0, width=640, height=480)
    shape = torch.randn(1, flame.num_shape, generator=torch.Generator().manual_seed(7)) * 0.5
    ids = flame.landmark_indices.long()
    rng = np.random.default_rng(8)
    frames = []
    for k in range(8):
        truth = HeadParams(identity=shape, global_rot=torch.tensor([[0.02 * k, 0.04 * k, 0.0]]),
                           jaw_rot=torch.tensor([[0.03 * k, 0.0, 0.0]]))
        with torch.no_grad():
            uv = camera.project(flame(truth).landmarks[0]).double().numpy()
        points = astro_points + 64.0  # landmarks the model does not embed are not used
        points[ids.numpy()] = uv + rng.normal(scale=0.2, size=uv.shape)
        frames.append(points)
    assert {33, 263} <= set(ids.tolist())  # the inter-ocular distance comes from the model's own points
    first, last = _assert_warm_fits_match_long_fits(HeadFitter(flame), frames, (640, 480))
    assert first.mean_error_px < 1.0 and last.mean_error_px < 1.0
    assert abs(float(last.params.jaw_rot[0, 0]) - 0.21) < 0.05


def test_warm_fit_follows_a_frame_and_reports_model_order(head, astro_points):
    fitter = HeadFitter(head)
    frames = perturbed_landmark_frames(astro_points, 6, seed=2, offset=(64.0, -16.0))
    first = fitter.fit(frames[0], (640, 480))
    r = fitter.fit(frames[5], (640, 480), init=first, fixed_shape=first.params.identity, fixed_focal=first.focal)
    assert torch.equal(r.landmark_ids, head.landmark_indices.cpu().long())
    obs = torch.from_numpy(frames[5][r.landmark_ids.numpy()]).float()
    assert torch.allclose(r.reprojection_px, (r.projected_px - obs).norm(dim=1), atol=1e-3)
    with torch.no_grad():  # the full model with the result's camera gives the same landmarks
        uv = r.camera.project(head(r.params).landmarks[0])
    assert torch.allclose(uv, r.projected_px, atol=1e-2)
    assert r.mean_error_iod < 0.02


# --------------------------------------------------------------------------------------------------
# The benchmark function (behaviour only; no timing thresholds)
# --------------------------------------------------------------------------------------------------
def test_measure_tracking_speed_reports_warm_fit_statistics(head, astro_points):
    frames = perturbed_landmark_frames(astro_points, 5, offset=(64.0, -16.0))
    stats = measure_tracking_speed(head, frames, (640, 480), repeats=2)
    assert stats["samples"] == 2 * 5 - 1
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p90_ms"] <= stats["max_ms"]
    assert stats["cold_ms"] > 0 and 1 <= stats["mean_iterations"] <= 3
    assert stats["mean_error_px"] < 1.0


def test_measure_tracking_speed_rejects_bad_input(head, astro_points):
    with pytest.raises(PerseError, match="at least 2 frames"):
        measure_tracking_speed(head, [astro_points], (640, 480))
    with pytest.raises(PerseError, match="frame 1: expected"):
        measure_tracking_speed(head, [astro_points, astro_points[:468]], (640, 480))
    with pytest.raises(PerseError, match="expected \\(478, 2\\)"):
        perturbed_landmark_frames(astro_points[:10], 3)
