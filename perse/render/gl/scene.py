"""What `MeshRenderer` takes and gives, with no GL call: meshes, lighting, outputs, camera matrices.

`Mesh`, `Lighting` and `MeshRender` are the renderer's data classes; `projection_matrix` and
`normal_matrix` turn an OpenCV camera into GL's matrices; `prepare_mesh` validates a `Mesh` and packs
it into the triangle soup the GL buffers hold (3 vertices per face, `FLOATS_PER_VERTEX` floats each),
so that every input error is a `PerseError` raised before any GL call. Conventions (pixel centres,
uv origin): `perse.render.gl.mesh_renderer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from perse.errors import PerseError
from perse.mesh_ops import face_normals, vertex_normals

FLOATS_PER_VERTEX = 11  # position 3, normal 3, colour 3, uv 2


# ----------------------------------------------------------------------------------------------
# Data classes
# ----------------------------------------------------------------------------------------------

@dataclass
class Mesh:
    """A triangle mesh in world space (numpy arrays or torch tensors).

    vertices: (V, 3) float positions (metres, world frame).
    faces: (F, 3) int vertex indices.
    colors: (V, 3) optional per-vertex RGB in [0, 1].
    uvs: (T, 2) optional texture coordinates (OBJ convention, (0, 0) = bottom-left of the image);
        uv_faces: (F, 3) int indices into uvs (defaults to `faces` when T == V);
        texture: (H, W, 3 | 4) uint8 or float in [0, 1]; texels with alpha < 0.5 are cut out.
        Textures are cached by object identity: after editing one in place, pass a copy.
    face_labels: (F,) optional int labels written to `MeshRender.labels` (0 means none).
    color: flat RGB used when the mesh has neither vertex colours nor a texture (a tint otherwise ignored).
    opacity: 1 = opaque; in (0, 1) blended after all opaque meshes (e.g. sunglass lenses); 0 = hidden.
    specular: Blinn-Phong specular strength (0 = matte; ~0.5 for glossy frames).
    smooth: interpolate area-weighted vertex normals (True) or use flat face normals (False).
    unlit: show this mesh's albedo as is, whatever the lighting (e.g. a photo texture whose lighting
        is already baked in, next to lit accessory geometry).
    """

    vertices: Any
    faces: Any
    colors: Any = None
    uvs: Any = None
    uv_faces: Any = None
    texture: Any = None
    face_labels: Any = None
    color: tuple[float, float, float] = (0.7, 0.7, 0.7)
    opacity: float = 1.0
    specular: float = 0.04
    smooth: bool = True
    unlit: bool = False


@dataclass
class Lighting:
    """A camera-space studio rig: Lambert key + fill + ambient, Blinn-Phong highlights.

    Directions are in OpenCV camera axes (x right, y down, z forward), pointing from the surface
    toward the light; they are normalised on use. The defaults light a face from the upper left of the
    camera with a softer fill from the right, so a frontal surface comes out at about 0.95 x albedo.
    unlit: output the albedo as is (albedo maps, region/mask renders).
    """

    key_direction: tuple[float, float, float] = (-0.45, -0.55, -1.0)
    key_intensity: float = 0.6
    fill_direction: tuple[float, float, float] = (0.7, -0.05, -1.0)
    fill_intensity: float = 0.25
    ambient: float = 0.25
    shininess: float = 48.0
    unlit: bool = False


@dataclass
class MeshRender:
    """Render outputs for an (H, W) camera; rows top to bottom like the camera's v coordinate.

    rgb: (H, W, 3) float32 in [0, 1], composited over the background colour.
    alpha: (H, W) float32 coverage: 1 on opaque surfaces (fractional on antialiased edges), the
        accumulated opacity where only translucent meshes are, 0 on background.
    depth: (H, W) float32 camera-space z in metres of the front-most opaque surface (0 = background).
    normals: (H, W, 3) float32 camera-space unit normals, turned toward the camera (0 = background).
    labels: (H, W) int32 face label of the front-most opaque surface (0 = background / unlabelled).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    labels: np.ndarray


# ----------------------------------------------------------------------------------------------
# Pure math
# ----------------------------------------------------------------------------------------------

def projection_matrix(K: np.ndarray, width: int, height: int, near: float, far: float) -> np.ndarray:
    """(4, 4) matrix from OpenCV camera space to GL clip space for intrinsics K (3, 3).

    x_ndc = -1 / +1 at the left / right image borders (u = -0.5 / W - 0.5), and y_ndc = -1 / +1 at
    the top / bottom borders (v = -0.5 / H - 0.5): GL's framebuffer row 0 is then the image's top
    row, so pixels read back in image order. z_ndc = -1 / +1 at z = near / far. Skew K[0, 1] and the
    principal point are honoured exactly.
    """
    K = np.asarray(K, dtype=np.float64)
    fx, s, cx = K[0, 0], K[0, 1], K[0, 2]
    fy, cy = K[1, 1], K[1, 2]
    n, f = float(near), float(far)
    P = np.zeros((4, 4), dtype=np.float64)
    P[0, 0] = 2.0 * fx / width
    P[0, 1] = 2.0 * s / width
    P[0, 2] = 2.0 * (cx + 0.5) / width - 1.0
    P[1, 1] = 2.0 * fy / height
    P[1, 2] = 2.0 * (cy + 0.5) / height - 1.0
    P[2, 2] = (f + n) / (f - n)
    P[2, 3] = -2.0 * f * n / (f - n)
    P[3, 2] = 1.0
    return P.astype(np.float32)


def normal_matrix(world_to_cam: np.ndarray) -> np.ndarray:
    """(3, 3) inverse-transpose of the linear part of a (4, 4) world-to-camera matrix (= R if rigid).

    Uses the cofactor identity inv(M).T = cof(M) / det(M); rows of cof(M) are cross products of rows.
    """
    M = np.asarray(world_to_cam, dtype=np.float64)[:3, :3]
    cof = np.stack([np.cross(M[1], M[2]), np.cross(M[2], M[0]), np.cross(M[0], M[1])])
    det = float(M[0] @ cof[0])
    if abs(det) < 1e-12:
        raise PerseError("camera world_to_cam rotation is singular; build cameras with look_at/orbit_camera")
    return (cof / det).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Input preparation (validation happens here, before any GL call)
# ----------------------------------------------------------------------------------------------

def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor (possibly on GPU)
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception:
        raise PerseError(f"mesh {name} must be an array or tensor, got {type(x).__name__}") from None


def _check_index(idx: np.ndarray, n: int, name: str, where: str) -> np.ndarray:
    if idx.ndim != 2 or idx.shape[1] != 3 or not np.issubdtype(idx.dtype, np.integer):
        raise PerseError(f"{where}: {name} must be an (F, 3) integer array, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise PerseError(f"{where}: {name} index out of range [0, {n}) (min {idx.min()}, max {idx.max()})")
    return idx.astype(np.int64, copy=False)


@dataclass
class PreparedMesh:
    data: np.ndarray          # (3F, 11) float32 interleaved attributes
    labels: np.ndarray        # (3F,) int32
    base_color: tuple
    texture: Any              # the user's texture object (cache key) or None
    opacity: float
    specular: float
    mean_world: np.ndarray    # (3,) for back-to-front sorting
    unlit: bool = False


def prepare_mesh(mesh: Mesh, index: int) -> PreparedMesh:
    where = f"mesh {index}"
    V = _to_numpy(mesh.vertices, "vertices")
    if V.ndim != 2 or V.shape[1] != 3 or not np.issubdtype(V.dtype, np.number):
        raise PerseError(f"{where}: vertices must be a (V, 3) float array, got {V.dtype} {V.shape}")
    V = V.astype(np.float32, copy=False)
    if not np.isfinite(V).all():
        raise PerseError(f"{where}: vertices contain NaN or inf; check the head model output")
    F = _check_index(_to_numpy(mesh.faces, "faces"), V.shape[0], "faces", where)
    n_corners = F.shape[0] * 3
    corners = F.reshape(-1)

    data = np.empty((n_corners, FLOATS_PER_VERTEX), dtype=np.float32)
    data[:, 0:3] = V[corners]
    if mesh.smooth:
        data[:, 3:6] = vertex_normals(V, F).astype(np.float32)[corners]
    else:
        data[:, 3:6] = np.repeat(face_normals(V, F, normalize=False), 3, axis=0)

    has_colors = mesh.colors is not None
    if has_colors:
        C = _to_numpy(mesh.colors, "colors")
        if C.shape != (V.shape[0], 3):
            raise PerseError(f"{where}: colors must be (V, 3) = ({V.shape[0]}, 3), got {C.shape}")
        data[:, 6:9] = C.astype(np.float32, copy=False)[corners]
    else:
        data[:, 6:9] = 1.0

    texture = mesh.texture
    if texture is not None:
        if mesh.uvs is None:
            raise PerseError(f"{where}: a texture needs uvs (T, 2) (and uv_faces unless T == V)")
        T = _to_numpy(mesh.uvs, "uvs").astype(np.float32, copy=False)
        if T.ndim != 2 or T.shape[1] != 2:
            raise PerseError(f"{where}: uvs must be (T, 2), got {T.shape}")
        if mesh.uv_faces is None:
            if T.shape[0] != V.shape[0]:
                raise PerseError(f"{where}: uvs has {T.shape[0]} rows but there are {V.shape[0]} vertices: "
                                 "pass uv_faces (F, 3)")
            UF = F
        else:
            UF = _check_index(_to_numpy(mesh.uv_faces, "uv_faces"), T.shape[0], "uv_faces", where)
            if UF.shape != F.shape:
                raise PerseError(f"{where}: uv_faces {UF.shape} must match faces {F.shape}")
        data[:, 9:11] = T[UF.reshape(-1)]
    else:
        data[:, 9:11] = 0.0

    if mesh.face_labels is not None:
        L = _to_numpy(mesh.face_labels, "face_labels")
        if L.shape != (F.shape[0],) or not np.issubdtype(L.dtype, np.integer):
            raise PerseError(f"{where}: face_labels must be ({F.shape[0]},) integers, got {L.dtype} {L.shape}")
        if L.size and (L.min() < np.iinfo(np.int32).min or L.max() > np.iinfo(np.int32).max):
            raise PerseError(f"{where}: face_labels must fit in int32")
        labels = np.repeat(L.astype(np.int32), 3)
    else:
        labels = np.zeros(n_corners, dtype=np.int32)

    opacity = float(mesh.opacity)
    if not 0.0 <= opacity <= 1.0:
        raise PerseError(f"{where}: opacity must be in [0, 1], got {opacity}")
    color = tuple(float(c) for c in mesh.color)
    if len(color) != 3:
        raise PerseError(f"{where}: color must be an RGB triple, got {mesh.color!r}")
    base = color if (not has_colors and texture is None) else (1.0, 1.0, 1.0)
    mean = V.mean(axis=0) if V.shape[0] else np.zeros(3, np.float32)
    return PreparedMesh(data, labels, base, texture, opacity, float(mesh.specular), mean, bool(mesh.unlit))


def texture_rgba8(texture: Any) -> np.ndarray:
    """(H, W, 3|4) uint8 or float [0, 1] -> contiguous uint8 (H, W, 3|4)."""
    tex = _to_numpy(texture, "texture")
    if tex.ndim != 3 or tex.shape[2] not in (3, 4) or tex.shape[0] < 1 or tex.shape[1] < 1:
        raise PerseError(f"texture must be (H, W, 3) or (H, W, 4), got {tex.shape}")
    if tex.dtype == np.uint8:
        return np.ascontiguousarray(tex)
    if np.issubdtype(tex.dtype, np.floating):
        return np.ascontiguousarray((np.clip(tex, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    raise PerseError(f"texture must be uint8 or float in [0, 1], got {tex.dtype}")
