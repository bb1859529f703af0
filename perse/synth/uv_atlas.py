"""A head's UV space: texel coordinates, UV rasterization, per-texel canonical geometry, texture images.

The UV layout is rasterized once (`rasterize_uv`) to find, for every texel, the head triangle and
barycentric coordinates it samples; from that come the texel's canonical 3D position, normal and
(interpolated) region weights (`TexelAtlas`, `build_atlas`). Painting by those 3D quantities makes a
texture seam-free by construction (`perse.synth.paint_procedural`). The texture-image helpers here check,
resample and dilate textures in that layout.

Texture orientation: texel row 0 holds v = 1 (image convention, as in OBJ/glTF exporters); see
`uv_to_texel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perse.errors import PerseError
from perse.mesh_ops import vertex_normals
from perse.synth.anatomy import HeadAnatomy

def uv_to_texel(uv: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) UVs -> (..., 2) continuous texel coordinates (x = column, y = row; integers = centres)."""
    return np.stack([uv[..., 0] * size - 0.5, (1.0 - uv[..., 1]) * size - 0.5], axis=-1)


def rasterize_uv(uvs: np.ndarray, uv_faces: np.ndarray, size: int, priority: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Which triangle covers each texel centre, with barycentric coordinates.

    uvs: (T, 2) in [0, 1]; uv_faces: (F, 3); priority: (F,) optional, where UV triangles overlap the
    one with the highest priority owns the texel (default: the later triangle index).
    Returns face (S, S) int32 (-1 = empty) and bary (S, S, 3) float32. Triangles are processed in
    buckets of equal bounding-box size so the work is vectorized.
    """
    S = int(size)
    tri = uv_to_texel(uvs[uv_faces].astype(np.float64), S)   # (F, 3, 2)
    face = np.full((S, S), -1, dtype=np.int32)
    bary = np.zeros((S, S, 3), dtype=np.float32)
    prio = np.arange(len(tri), dtype=np.float64) if priority is None else np.asarray(priority, np.float64)
    best = np.full((S, S), -np.inf)
    lo = np.ceil(tri.min(axis=1) - 1e-9).astype(np.int64)
    hi = np.floor(tri.max(axis=1) + 1e-9).astype(np.int64)
    lo = np.clip(lo, 0, S - 1)
    hi = np.clip(hi, -1, S - 1)
    extent = (hi - lo + 1).max(axis=1)
    (x0, y0), (x1, y1), (x2, y2) = (tri[:, i].T for i in range(3))
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    valid = (np.abs(area) > 1e-12) & (extent > 0)
    done = ~valid
    for K in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        sel = np.nonzero(~done & (extent <= K))[0]
        if sel.size == 0:
            continue
        done[sel] = True
        # Chunk so the candidate grid stays within a few million entries.
        chunk = max(1, 4_000_000 // (K * K))
        for start in range(0, sel.size, chunk):
            s = sel[start:start + chunk]
            g = np.arange(K)
            px = lo[s, 0, None, None] + g[None, None, :]           # (n, 1, K)
            py = lo[s, 1, None, None] + g[None, :, None]           # (n, K, 1)
            ax, ay = x0[s, None, None], y0[s, None, None]
            bx, by = x1[s, None, None], y1[s, None, None]
            cx, cy = x2[s, None, None], y2[s, None, None]
            ar = area[s, None, None]
            w0 = ((bx - px) * (cy - py) - (cx - px) * (by - py)) / ar
            w1 = ((cx - px) * (ay - py) - (ax - px) * (cy - py)) / ar
            w2 = 1.0 - w0 - w1
            inside = (w0 >= -1e-7) & (w1 >= -1e-7) & (w2 >= -1e-7)
            inside &= (px <= hi[s, 0, None, None]) & (py <= hi[s, 1, None, None])
            n_idx, iy, ix = np.nonzero(inside)
            rows = (lo[s, 1][n_idx] + iy)
            cols = (lo[s, 0][n_idx] + ix)
            p = prio[s[n_idx]]
            # Ascending priority: with repeated (row, col) the last assignment, the highest, wins.
            order = np.argsort(p, kind="stable")
            keep = order[p[order] > best[rows[order], cols[order]]]
            rows, cols, n_idx, iy, ix = rows[keep], cols[keep], n_idx[keep], iy[keep], ix[keep]
            best[rows, cols] = p[keep]
            face[rows, cols] = s[n_idx]
            bary[rows, cols] = np.stack([w0[n_idx, iy, ix], w1[n_idx, iy, ix], w2[n_idx, iy, ix]], axis=-1)
    return face, bary


@dataclass
class TexelAtlas:
    """Per-texel canonical geometry of a head's UV layout (only covered texels are stored, flattened).

    size: S. index: (N,) flat texel indices (row * S + col) of covered texels.
    position: (N, 3); normal: (N, 3) unit; region_weights: (N, R) barycentric blend of one-hot regions;
    region: (N,) hard region id (largest weight); fill_from: (S * S,) flat index of the nearest covered
    texel for every texel (to fill the gutters between UV islands so bilinear sampling has no dark seams).
    """

    size: int
    index: np.ndarray
    position: np.ndarray
    normal: np.ndarray
    region_weights: np.ndarray
    region: np.ndarray
    fill_from: np.ndarray

    @property
    def num_texels(self) -> int:
        return self.index.shape[0]


def build_atlas(anatomy: HeadAnatomy, size: int) -> TexelAtlas:
    """Rasterize the head's UV layout at `size` and gather per-texel canonical geometry."""
    from scipy import ndimage

    # Where UV triangles overlap (e.g. slivers of a disc chart's far pole crossing the island), the
    # texel belongs to the triangle with the most 3D area per UV area: the least stretched one.
    v, t = anatomy.vertices[anatomy.faces], anatomy.uvs[anatomy.uv_faces]
    area3 = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    area2 = 0.5 * np.abs(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]))
    face, bary = rasterize_uv(anatomy.uvs, anatomy.uv_faces, size, priority=area3 / np.maximum(area2, 1e-20))
    covered = face >= 0
    if not covered.any():
        raise PerseError("head model's UV layout covers no texels; check its uvs/uv_faces")
    flat = np.nonzero(covered.ravel())[0]
    f = face.ravel()[flat]
    w = bary.reshape(-1, 3)[flat].astype(np.float64)
    corners = anatomy.faces[f]                                     # (N, 3)
    position = (anatomy.vertices[corners] * w[..., None]).sum(axis=1)
    vn = vertex_normals(anatomy.vertices, anatomy.faces)
    normal = (vn[corners] * w[..., None]).sum(axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    R = len(anatomy.region_names)
    onehot = np.eye(R)[anatomy.regions]                            # (V, R)
    region_weights = (onehot[corners] * w[..., None]).sum(axis=1)
    _, (ri, ci) = ndimage.distance_transform_edt(~covered, return_indices=True)
    fill_from = (ri * size + ci).ravel()
    return TexelAtlas(size=size, index=flat, position=position.astype(np.float32),
                      normal=normal.astype(np.float32), region_weights=region_weights.astype(np.float32),
                      region=region_weights.argmax(axis=1), fill_from=fill_from)


def check_base_texture(texture) -> np.ndarray:
    """A base texture must be a square (S, S, 3) uint8 array; PerseError saying what is wrong otherwise."""
    if not isinstance(texture, np.ndarray):
        raise PerseError(f"base texture must be a numpy array (S, S, 3) uint8, got {type(texture).__name__}")
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.shape[0] != texture.shape[1]:
        raise PerseError(f"base texture has shape {texture.shape}; expected a square RGB image (S, S, 3) "
                         "(drop the alpha channel, pad or crop to a square)")
    if texture.dtype != np.uint8:
        raise PerseError(f"base texture is {texture.dtype}; expected uint8 (multiply [0, 1] floats by 255 and round)")
    if texture.shape[0] < 16:
        raise PerseError(f"base texture is {texture.shape[0]} pixels wide; use at least 256")
    return texture


def resample_texture(texture: np.ndarray, size: int) -> np.ndarray:
    """(S, S, 3) uint8 -> (size, size, 3) uint8 (bilinear, antialiased when shrinking; a copy if equal).

    Texel centres map to texel centres (half-texel convention of `uv_to_texel`), so the UV layout holds.
    """
    if texture.shape[0] == size:
        return np.ascontiguousarray(texture).copy()
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(texture)).permute(2, 0, 1)[None].double()
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                      antialias=size < texture.shape[0])
    return np.clip(np.round(y[0].permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)


def resample_coverage(coverage: np.ndarray, size: int) -> np.ndarray:
    """(S, S) float coverage in [0, 1] -> (size, size) float64, by the texture resampler."""
    as_u8 = np.round(np.clip(coverage, 0.0, 1.0) * 255.0).astype(np.uint8)
    return resample_texture(np.repeat(as_u8[..., None], 3, axis=2), size)[..., 0].astype(np.float64) / 255.0


def grow(values: np.ndarray, atlas: "TexelAtlas", radius: float) -> np.ndarray:
    """Soft dilation of per-texel values (N,) in [0, 1] by about `radius` texels in texture space."""
    from scipy import ndimage

    S = atlas.size
    img = np.zeros(S * S)
    img[atlas.index] = values
    r = max(1, int(np.ceil(radius)))
    out = ndimage.maximum_filter(img.reshape(S, S), size=2 * r + 1)
    return ndimage.gaussian_filter(out, radius / 2).ravel()[atlas.index].clip(0.0, 1.0)
