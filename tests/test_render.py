"""Gaussian rasterization backends: cpu (numba) against the dense torch reference, known answers,
compositing rules, backend selection and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from perse.errors import PerseError
from perse.render import Camera, Gaussians, available_backends, look_at, render, resolve_backend
from perse.render.projection import project_gaussians

W, H = 48, 40  # non-square, 3 x 3 tiles with partial edge tiles


def _camera(width=W, height=H, f=40.0) -> Camera:
    K = torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f * 1.1, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return Camera(K, look_at(torch.tensor([0.05, -0.02, 1.0]), torch.zeros(3)), width, height)


def _random_scene(seed: int, n: int = 48) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=gen) - 0.5) * torch.tensor([0.9, 0.8, 0.6])
    quats = torch.randn(n, 4, generator=gen)
    scales = torch.exp(torch.empty(n, 3).uniform_(math.log(0.02), math.log(0.12), generator=gen))
    opacities = torch.rand(n, generator=gen) * 0.95 + 0.04
    opacities[:3] = 1.0  # exercise the 0.999 clamp
    colors = torch.rand(n, 3, generator=gen)
    return Gaussians(means, quats, scales, opacities, colors)


def _single(u: float, v: float, z: float, cam: Camera, opacity=0.8, color=(1.0, 0.5, 0.25), scale=0.01) -> Gaussians:
    """One isotropic Gaussian whose centre projects to pixel coordinates (u, v) at camera depth z."""
    K = cam.K
    p_cam = torch.tensor([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z])
    R, t = cam.world_to_cam[:3, :3], cam.world_to_cam[:3, 3]
    mean = R.T @ (p_cam - t)
    return Gaussians(mean[None], torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), scale),
                     torch.tensor([opacity]), torch.tensor([color]))


def _requires_grad(g: Gaussians) -> Gaussians:
    return Gaussians(*(t.detach().clone().requires_grad_(True) for t in
                       (g.means, g.quats, g.scales, g.opacities, g.colors)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpu_matches_reference_images(seed):
    g, cam = _random_scene(seed), _camera()
    bg = torch.tensor([0.2, 0.3, 0.4])
    with torch.no_grad():
        a = render(g, cam, "cpu", background=bg)
        b = render(g, cam, "reference", background=bg)
    assert a.rgb.shape == (H, W, 3) and a.alpha.shape == (H, W, 1) and a.depth.shape == (H, W, 1)
    assert (a.alpha > 0.5).float().mean() > 0.2  # the scene really covers the image
    assert torch.allclose(a.rgb, b.rgb, atol=1e-5)
    assert torch.allclose(a.alpha, b.alpha, atol=1e-5)
    # depth = accumulated z / alpha: relative agreement where something was drawn
    drawn = b.alpha > 0.05
    assert torch.allclose(a.depth[drawn], b.depth[drawn], rtol=1e-4, atol=1e-5)
    assert torch.equal(a.radii, b.radii)


def test_cpu_matches_reference_gradients():
    g, cam = _random_scene(3), _camera()
    gen = torch.Generator().manual_seed(7)
    w_rgb, w_alpha, w_depth = torch.randn(H, W, 3, generator=gen), torch.randn(H, W, 1, generator=gen), \
        torch.randn(H, W, 1, generator=gen)
    grads = {}
    for backend in ("cpu", "reference"):
        gp = _requires_grad(g)
        bg = torch.tensor([0.1, 0.6, 0.3], requires_grad=True)
        out = render(gp, cam, backend, background=bg)
        out.means2d.retain_grad()
        loss = (out.rgb * w_rgb).sum() + (out.alpha * w_alpha).sum() + 0.1 * (out.depth * w_depth).sum()
        loss.backward()
        grads[backend] = {"means": gp.means.grad, "quats": gp.quats.grad, "scales": gp.scales.grad,
                          "opacities": gp.opacities.grad, "colors": gp.colors.grad, "background": bg.grad,
                          "means2d": out.means2d.grad}
    for name, ref in grads["reference"].items():
        got = grads["cpu"][name]
        assert torch.isfinite(got).all(), name
        assert ref.abs().max() > 0, name  # the loss really depends on it
        rel = (got - ref).norm() / ref.norm()
        assert rel < 1e-4, f"{name}: relative gradient error {rel:.2e}"


def test_gaussian_lights_expected_pixel():
    cam = _camera()
    g = _single(20.0, 11.0, 0.8, cam, opacity=0.8, color=(1.0, 0.5, 0.25))
    out = render(g, cam, "cpu")
    assert torch.allclose(out.means2d, torch.tensor([[20.0, 11.0]]), atol=1e-3)
    lum = out.alpha[..., 0]
    iy, ix = divmod(int(lum.argmax()), W)
    assert (ix, iy) == (20, 11)
    # at the centre sigma = 0, so alpha = opacity; black background
    assert out.alpha[11, 20, 0].item() == pytest.approx(0.8, abs=1e-5)
    assert torch.allclose(out.rgb[11, 20], 0.8 * torch.tensor([1.0, 0.5, 0.25]), atol=1e-5)
    assert out.depth[11, 20, 0].item() == pytest.approx(0.8, abs=1e-5)
    # symmetric falloff around the centre, nothing far away
    assert out.alpha[11, 19, 0] == pytest.approx(out.alpha[11, 21, 0].item(), abs=1e-6)
    assert out.alpha[11, 19, 0] < 0.8 and out.alpha[11, 40, 0] == 0 and out.alpha[35, 20, 0] == 0
    assert out.radii.tolist()[0] > 0


def test_front_gaussian_hides_back_one():
    cam = _camera()
    front = _single(24.0, 20.0, 0.7, cam, opacity=1.0, color=(1.0, 0.0, 0.0), scale=0.02)
    back = _single(24.0, 20.0, 1.2, cam, opacity=1.0, color=(0.0, 1.0, 0.0), scale=0.03)
    for scene in (Gaussians.cat([front, back]), Gaussians.cat([back, front])):  # input order must not matter
        for backend in ("cpu", "reference"):
            px = render(scene, cam, backend).rgb[20, 24]
            # alpha clamps at 0.999: the back one gets T = 0.001, i.e. almost nothing
            assert px[0] == pytest.approx(0.999, abs=1e-5) and px[1] < 2e-3, backend


def test_early_stop_drops_gaussians_past_transmittance_limit():
    cam = _camera()
    bg = torch.tensor([0.0, 0.0, 1.0])
    first = _single(24.0, 20.0, 0.7, cam, opacity=1.0, color=(1.0, 0.0, 0.0), scale=0.02)
    second = _single(24.0, 20.0, 0.9, cam, opacity=1.0, color=(0.0, 1.0, 0.0), scale=0.02)
    for backend in ("cpu", "reference"):
        out = render(Gaussians.cat([first, second]), cam, backend, background=bg)
        # after the first, T = 0.001; the second would leave 1e-6 <= 1e-4, so the pixel stops without it
        assert out.alpha[20, 24, 0].item() == pytest.approx(0.999, abs=1e-6), backend
        assert out.rgb[20, 24, 1].item() == 0.0, backend
        assert out.rgb[20, 24, 2].item() == pytest.approx(0.001, abs=1e-6), backend
    # without the stop the second Gaussian would contribute 0.999 * 0.001 of green: check it is rendered
    # when it is alone in front of a half-transparent one (T stays above the limit)
    soft = _single(24.0, 20.0, 0.7, cam, opacity=0.5, color=(1.0, 0.0, 0.0), scale=0.02)
    out = render(Gaussians.cat([soft, second]), cam, "cpu", background=bg)
    assert out.rgb[20, 24, 1].item() == pytest.approx(0.5 * 0.999, abs=1e-5)


def test_gaussians_behind_camera_are_culled():
    cam = _camera()
    visible = _single(24.0, 20.0, 0.8, cam, color=(0.0, 1.0, 0.0))
    behind = _single(24.0, 20.0, -0.5, cam, color=(1.0, 0.0, 0.0), scale=0.05)
    too_near = _single(24.0, 20.0, 0.005, cam, color=(1.0, 0.0, 0.0))  # in front, but z < near = 0.01
    g = _requires_grad(Gaussians.cat([visible, behind, too_near]))
    out = render(g, cam, "cpu")
    assert out.radii.tolist()[1:] == [0, 0] and out.radii[0] > 0
    assert out.rgb[..., 0].abs().max() == 0  # no red anywhere
    assert torch.isfinite(out.means2d).all()
    out.rgb.sum().backward()
    for t in (g.means, g.quats, g.scales, g.opacities, g.colors):
        assert torch.isfinite(t.grad).all()
    assert g.colors.grad[1:].abs().max() == 0 and g.colors.grad[0].abs().max() > 0


def test_background_compositing():
    cam = _camera()
    bg = torch.tensor([0.25, 0.5, 0.75])
    g = _single(10.0, 10.0, 0.8, cam, opacity=0.6, color=(1.0, 0.0, 0.0))
    for backend in ("cpu", "reference"):
        out = render(g, cam, backend, background=bg)
        assert torch.allclose(out.rgb[35, 40], bg) and out.alpha[35, 40, 0] == 0
        a = out.alpha[10, 10, 0]
        assert a == pytest.approx(0.6, abs=1e-5)
        assert torch.allclose(out.rgb[10, 10], a * torch.tensor([1.0, 0.0, 0.0]) + (1 - a) * bg, atol=1e-6)
    empty = Gaussians(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 3))
    out = render(empty, cam, "cpu", background=bg)
    assert torch.allclose(out.rgb, bg.expand(H, W, 3)) and out.alpha.abs().max() == 0


def test_fast_exp_accuracy():
    from perse.render._cpu_kernels import exp_neg

    for lo, hi, tol in ((0.0, 6.0, 5e-7), (6.0, 19.9, 2e-6)):  # alpha >= 1/255 needs sigma <= ln 255 < 6
        s = np.linspace(lo, hi, 3001).astype(np.float32)
        approx = np.array([exp_neg(x) for x in s], dtype=np.float64)
        assert np.abs(approx / np.exp(-s.astype(np.float64)) - 1).max() < tol


def test_projection_matches_gsplat_torch_reference():
    """Our projection equals gsplat's pure-torch projection of the same camera with cx, cy + 0.5."""
    impl = pytest.importorskip("gsplat.cuda._torch_impl")
    g, cam = _random_scene(4, n=60), _camera()
    proj = project_gaussians(g.means, g.quats, g.scales, g.opacities, cam)
    covars, _ = impl._quat_scale_to_covar_preci(g.quats, g.scales, True, False, triu=False)
    K = cam.K.clone()
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    _, means2d, depths, conics, _ = impl._fully_fused_projection(
        g.means, covars, cam.world_to_cam[None], K[None], W, H, eps2d=0.3, near_plane=cam.near)
    vis = proj.visible
    assert vis.sum() > 30
    assert torch.allclose(proj.means2d[vis], means2d[0][vis] - 0.5, atol=1e-4)
    assert torch.allclose(proj.depths[vis], depths[0][vis], atol=1e-6)
    assert torch.allclose(proj.conics[vis], conics[0][vis], rtol=1e-4, atol=1e-6)


def test_means2d_is_a_non_leaf_with_screen_gradients():
    g, cam = _requires_grad(_random_scene(5)), _camera()
    out = render(g, cam, "cpu")
    assert not out.means2d.is_leaf
    out.retain_screen_grad()
    out.rgb.sum().backward()
    grad = out.screen_grad()
    assert torch.equal(grad, out.means2d.grad)
    assert grad.shape == (len(g), 2)
    assert grad[out.radii > 0].abs().sum() > 0 and grad[out.radii == 0].abs().sum() == 0


def test_backend_selection_and_errors():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_backend("auto") == "cpu"
    assert resolve_backend("cpu") == "cpu"
    assert "gsplat" not in available_backends() and "cpu" in available_backends()
    with pytest.raises(PerseError, match="unknown render backend 'vulkan'.*cpu"):
        resolve_backend("vulkan")
    g, cam = _random_scene(0, n=5), _camera()
    with pytest.raises(PerseError, match="needs a CUDA GPU"):
        render(g, cam, "gsplat")
    with pytest.raises(PerseError, match="unknown render backend"):
        render(g, cam, "opengl")


def test_bad_inputs_raise_perse_error():
    g, cam = _random_scene(0, n=5), _camera()
    bad = Gaussians(g.means, g.quats[:, :3], g.scales, g.opacities, g.colors)
    with pytest.raises(PerseError, match="quats"):
        render(bad, cam, "cpu")
    with pytest.raises(PerseError, match="background"):
        render(g, cam, "cpu", background=torch.zeros(4))
