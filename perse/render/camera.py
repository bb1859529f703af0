"""`Camera`: a pinhole camera in the OpenCV convention.

Camera frame: +x right, +y down, +z forward (into the scene). A world point X maps to the camera
frame by ``X_c = R @ X + t`` with ``world_to_cam = [[R, t], [0, 1]]``, then to pixels by
``u = fx * x / z + cx``, ``v = fy * y / z + cy``; the centre of the top-left pixel is at (0, 0)
(OpenCV). gsplat puts pixel centres at +0.5; its backend shifts the principal point to match. World frame (head models): +y up, +z out of the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Camera:
    """K: (3, 3) intrinsics; world_to_cam: (4, 4); width, height in pixels."""

    K: Tensor
    world_to_cam: Tensor
    width: int
    height: int
    near: float = 0.01
    far: float = 100.0

    @property
    def device(self) -> torch.device:
        return self.K.device

    @property
    def center(self) -> Tensor:
        """(3,) camera centre in world coordinates."""
        R, t = self.world_to_cam[:3, :3], self.world_to_cam[:3, 3]
        return -R.T @ t

    def to(self, device: torch.device | str) -> "Camera":
        return Camera(self.K.to(device), self.world_to_cam.to(device), self.width, self.height, self.near, self.far)

    def float64(self) -> "Camera":
        """The same camera on the CPU in float64 (for numpy geometry that must not lose precision)."""
        return Camera(self.K.detach().cpu().double(), self.world_to_cam.detach().cpu().double(), self.width,
                      self.height, self.near, self.far)

    def resized(self, width: int, height: int) -> "Camera":
        """Same view at another resolution (intrinsics scaled)."""
        K = self.K.clone()
        K[0] *= width / self.width
        K[1] *= height / self.height
        return Camera(K, self.world_to_cam.clone(), width, height, self.near, self.far)

    def to_camera(self, points: Tensor) -> Tensor:
        """(N, 3) world points -> (N, 3) camera-frame points (z: depth in front of the camera)."""
        return points @ self.world_to_cam[:3, :3].T + self.world_to_cam[:3, 3]

    def project(self, points: Tensor) -> Tensor:
        """(N, 3) world points -> (N, 2) pixel coordinates."""
        cam = self.to_camera(points)
        uv = cam[:, :2] / cam[:, 2:3].clamp_min(1e-8)
        return uv * torch.stack([self.K[0, 0], self.K[1, 1]]) + torch.stack([self.K[0, 2], self.K[1, 2]])

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "world_to_cam": self.world_to_cam.tolist(), "width": self.width,
                "height": self.height, "near": self.near, "far": self.far}

    @classmethod
    def from_dict(cls, data: dict) -> "Camera":
        return cls(torch.tensor(data["K"], dtype=torch.float32),
                   torch.tensor(data["world_to_cam"], dtype=torch.float32),
                   int(data["width"]), int(data["height"]),
                   float(data.get("near", 0.01)), float(data.get("far", 100.0)))


def intrinsics_from_fov(fov_y_deg: float, width: int, height: int) -> Tensor:
    """(3, 3) intrinsics with square pixels, principal point at the image centre."""
    fy = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    return torch.tensor([[fy, 0.0, (width - 1) / 2], [0.0, fy, (height - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """(4, 4) OpenCV world-to-camera matrix for a camera at `eye` looking at `target`.

    `up` is the world's up direction (+y by default); the camera's +y (down) points against it.
    """
    up = torch.tensor([0.0, 1.0, 0.0]) if up is None else up
    forward = target - eye
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, up)
    if right.norm() < 1e-6:  # looking straight along `up`
        right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0]))
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    M = torch.eye(4)
    M[:3, :3] = R
    M[:3, 3] = -R @ eye
    return M


def orbit_camera(yaw_deg: float = 0.0, pitch_deg: float = 0.0, distance: float = 0.6,
                 target: tuple[float, float, float] = (0.0, 0.0, 0.0), fov_y_deg: float = 20.0,
                 width: int = 512, height: int = 512) -> Camera:
    """Camera on a sphere around `target`: yaw 0 / pitch 0 looks at the face from +z.

    Positive yaw moves the camera toward the subject's left (+x); positive pitch moves it up.
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    offset = torch.tensor([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    target_t = torch.tensor(target, dtype=torch.float32)
    eye = target_t + distance * offset
    return Camera(intrinsics_from_fov(fov_y_deg, width, height), look_at(eye, target_t), width, height)


def seen_points(camera: Camera, points, depth, tolerance: float):
    """Where a camera sees world points (N, 3) (numpy) and whether it does: pixels (N, 2) float64 and
    visible (N,) bool, true where the point is the front-most surface of a depth render (H, W)
    (camera-space z, 0 = background) to within `tolerance` metres. Computed in float64."""
    import numpy as np

    cam = camera.float64()
    p = torch.from_numpy(np.asarray(points, dtype=np.float64))
    px, z = cam.project(p).numpy(), cam.to_camera(p)[:, 2].numpy()
    h, w = depth.shape
    ij = np.clip(np.round(px).astype(np.int64), 0, [w - 1, h - 1])
    front = depth[ij[:, 1], ij[:, 0]]
    return px, (front > 0) & (np.abs(z - front) < tolerance)
