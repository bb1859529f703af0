"""The "gsplat" backend: gsplat 1.5.3's CUDA rasterizer.

gsplat JIT-compiles its CUDA extension on first use (minutes). We announce that step before it starts,
and turn every way it can fail (no CUDA device, no toolkit, a failed build) into a one-line PerseError
naming the cause, so neither "auto" nor "gsplat" can hide a broken GPU path.

Pixel convention: gsplat puts pixel (0, 0)'s centre at (0.5, 0.5), our cameras at (0, 0); we pass
K with cx + 0.5, cy + 0.5 and report means2d shifted back, so images and means2d match the cpu backend.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

import torch
from torch import Tensor

from perse.errors import PerseError
from perse.render.camera import Camera
from perse.render.gaussians import Gaussians

log = logging.getLogger(__name__)

COMPILE_NOTICE = "compiling gsplat CUDA kernels, this takes a few minutes the first time"

_kernels_state: dict = {}  # "ok": True, or "error": message of the first failure (not retried)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


def _jit_library_path() -> str:
    """Where torch's JIT build of gsplat puts its library (mirrors torch.utils.cpp_extension's layout)."""
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root is None:
        accel = f"cu{torch.version.cuda.replace('.', '')}" if torch.version.cuda else "cpu"
        root = os.path.join(get_default_build_root(), f"py{sys.version_info.major}{sys.version_info.minor}_{accel}")
    return os.path.join(root, "gsplat_cuda", "gsplat_cuda.so")


def gsplat_kernels_built() -> bool:
    """True when gsplat's compiled extension exists (a prebuilt `gsplat.csrc` or an earlier JIT build)."""
    if importlib.util.find_spec("gsplat") is None:
        return False
    try:
        if importlib.util.find_spec("gsplat.csrc") is not None:
            return True
    except (ImportError, ValueError):
        pass
    return os.path.exists(_jit_library_path())


def ensure_gsplat() -> None:
    """Raise PerseError unless gsplat's CUDA kernels can run here; compile them first if needed."""
    if not torch.cuda.is_available():
        raise PerseError("the gsplat backend needs a CUDA GPU; torch.cuda.is_available() is False: use the cpu "
                         "backend", setting="backend")
    if _kernels_state.get("ok"):
        return
    if "error" in _kernels_state:
        raise PerseError(_kernels_state["error"], setting="backend")
    if importlib.util.find_spec("gsplat") is None:
        _kernels_state["error"] = ("the gsplat backend needs the gsplat package: pip install gsplat==1.5.3, or use "
                                   "the cpu backend")
        raise PerseError(_kernels_state["error"], setting="backend")
    if not gsplat_kernels_built():
        log.warning(COMPILE_NOTICE)
        print(COMPILE_NOTICE, file=sys.stderr, flush=True)
    try:
        from gsplat.cuda import _backend
    except Exception as err:  # the JIT build raises many types (RuntimeError, OSError, ImportError, ...)
        _kernels_state["error"] = (f"gsplat's CUDA kernels failed to build: {_first_line(err)}; check that the CUDA "
                                   f"toolkit (nvcc) matches torch's CUDA {torch.version.cuda}, or use the cpu backend")
        raise PerseError(_kernels_state["error"], setting="backend") from err
    if _backend._C is None:
        _kernels_state["error"] = ("gsplat's CUDA kernels are unavailable: no CUDA toolkit (nvcc) was found to build "
                                   "them; install the CUDA toolkit or use the cpu backend")
        raise PerseError(_kernels_state["error"], setting="backend")
    _kernels_state["ok"] = True


def render_gsplat(gaussians: Gaussians, camera: Camera, background: Tensor) -> tuple[Tensor, Tensor, Tensor,
                                                                                     Tensor, Tensor, Tensor]:
    """Render with gsplat.rasterization. Returns rgb (H, W, 3), alpha (H, W, 1), depth (H, W, 1),
    means2d (N, 2) (our pixel convention), radii (N,) int (max over gsplat's per-axis radii) and
    gsplat's own means2d (1, N, 2), the tensor of the graph that receives screen-space gradients."""
    ensure_gsplat()
    from gsplat import rasterization

    device = gaussians.means.device
    if device.type != "cuda":
        raise PerseError("the gsplat backend needs the Gaussians on the GPU: call gaussians.to('cuda')")
    K = camera.K.to(device=device, dtype=torch.float32).clone()
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    viewmat = camera.world_to_cam.to(device=device, dtype=torch.float32)
    renders, alphas, info = rasterization(
        gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, gaussians.colors,
        viewmat[None], K[None], camera.width, camera.height,
        near_plane=camera.near, far_plane=camera.far, eps2d=0.3, sh_degree=None, packed=False,
        tile_size=16, backgrounds=background.to(device)[None], render_mode="RGB+ED", rasterize_mode="classic",
    )
    grad_source = info["means2d"]  # (1, N, 2), used by gsplat's rasterizer: its .grad is the screen gradient
    radii = info["radii"][0]
    if radii.dim() == 2:  # gsplat >= 1.5 returns per-axis radii
        radii = radii.max(dim=-1).values
    return (renders[0, ..., :3], alphas[0], renders[0, ..., 3:], grad_source[0].detach() - 0.5, radii,
            grad_source)
