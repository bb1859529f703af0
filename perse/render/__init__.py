"""Rendering: cameras, Gaussians and the rasterization backends ("gsplat", "cpu", "reference").

Importing this package is cheap: the numba kernels and gsplat load on the first render with them.
"""

from perse.render.camera import Camera, intrinsics_from_fov, look_at, orbit_camera
from perse.render.gaussians import Gaussians
from perse.render.rasterize import BACKENDS, RenderOutput, available_backends, render, resolve_backend

__all__ = ["BACKENDS", "Camera", "Gaussians", "RenderOutput", "available_backends", "intrinsics_from_fov",
           "look_at", "orbit_camera", "render", "resolve_backend"]
