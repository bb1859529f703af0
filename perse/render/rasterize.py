"""`render`: one entry point for every Gaussian rasterization backend.

Backends: "gsplat" (CUDA, gsplat 1.5.3), "cpu" (compiled numba rasterizer, forward + backward) and
"reference" (dense pure PyTorch, tiny inputs). "auto" picks gsplat when CUDA is usable, else cpu; it
never falls back silently from a broken gsplat on a CUDA machine (render raises with the cause).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from perse.errors import PerseError
from perse.render.camera import Camera
from perse.render.gaussians import Gaussians

BACKENDS = ("gsplat", "cpu", "reference")


@dataclass
class RenderOutput:
    """rgb: (H, W, 3) composited over the background; alpha: (H, W, 1) accumulated opacity;
    depth: (H, W, 1) alpha-normalised expected camera z (0 where alpha = 0);
    means2d: (N, 2) projected centres in our pixel convention; radii: (N,) int pixel radius, 0 = culled;
    backend: the backend that rendered it.
    grad_source: the tensor of the graph whose gradient is the screen-space gradient (means2d itself for
    the CPU backends; gsplat's own (1, N, 2) means2d, which differs from ours by a constant offset).
    Call `retain_screen_grad()` before ``backward()`` and `screen_grad()` after it (densification)."""

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    means2d: Tensor
    radii: Tensor
    backend: str
    grad_source: Tensor | None = None

    def retain_screen_grad(self) -> None:
        source = self.means2d if self.grad_source is None else self.grad_source
        if source.requires_grad:
            source.retain_grad()

    def screen_grad(self) -> Tensor | None:
        """(N, 2) d loss / d means2d after backward, or None if nothing was retained."""
        source = self.means2d if self.grad_source is None else self.grad_source
        return None if source.grad is None else source.grad.reshape(-1, 2)


def available_backends() -> list[str]:
    """Backends that can run on this machine ("gsplat" only when CUDA is available)."""
    names = ["cpu", "reference"]
    if torch.cuda.is_available():
        names.insert(0, "gsplat")
    return names


def resolve_backend(name: str) -> str:
    """Map a user's backend choice to a concrete backend: "auto" -> "gsplat" if CUDA is usable else "cpu"."""
    if name == "auto":
        return "gsplat" if torch.cuda.is_available() else "cpu"
    if name not in BACKENDS:
        raise PerseError(f"unknown render backend {name!r}: choose one of auto, {', '.join(BACKENDS)}")
    return name


def _check_inputs(gaussians: Gaussians, camera: Camera, background: Tensor | None) -> None:
    n = len(gaussians)
    expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,), "colors": (n, 3)}
    for field, shape in expected.items():
        value = getattr(gaussians, field)
        if tuple(value.shape) != shape:
            raise PerseError(f"Gaussians.{field} has shape {tuple(value.shape)}, expected {shape}: "
                             "fix the avatar or the code that built the Gaussians")
    if camera.width <= 0 or camera.height <= 0:
        raise PerseError(f"camera size {camera.width}x{camera.height} is invalid: width and height must be positive")
    if background is not None and tuple(background.shape) != (3,):
        raise PerseError(f"background has shape {tuple(background.shape)}, expected (3,) RGB")


def _as_cpu_float32(gaussians: Gaussians, backend: str) -> Gaussians:
    if gaussians.means.device.type != "cpu":
        raise PerseError(f"the {backend} backend renders CPU tensors but the Gaussians are on "
                         f"{gaussians.means.device}: call gaussians.to('cpu') or use the gsplat backend")
    if gaussians.means.dtype != torch.float32:
        return Gaussians(*(t.to(torch.float32) for t in (gaussians.means, gaussians.quats, gaussians.scales,
                                                        gaussians.opacities, gaussians.colors)))
    return gaussians


def render(gaussians: Gaussians, camera: Camera, backend: str = "auto",
           background: Tensor | None = None) -> RenderOutput:
    """Render `gaussians` seen by `camera`. background: (3,) RGB, black by default.

    Differentiable with respect to every Gaussian field and the background on all backends.
    """
    name = resolve_backend(backend)
    _check_inputs(gaussians, camera, background)
    if name == "gsplat":
        from perse.render.gsplat_backend import render_gsplat

        bg = torch.zeros(3) if background is None else background
        bg = bg.to(device=gaussians.means.device, dtype=torch.float32)
        rgb, alpha, depth, means2d, radii, grad_source = render_gsplat(gaussians, camera, bg)
        return RenderOutput(rgb, alpha, depth, means2d, radii, name, grad_source)

    gaussians = _as_cpu_float32(gaussians, name)
    camera = camera.to("cpu")
    bg = torch.zeros(3) if background is None else background.to(device="cpu", dtype=torch.float32)
    if name == "cpu":
        from perse.render.cpu import render_cpu as run
    else:
        from perse.render.reference import render_reference as run
    proj, rgb, alpha, depth = run(gaussians, camera, bg)
    return RenderOutput(rgb, alpha, depth, proj.means2d, proj.radii.max(dim=-1).values, name)
