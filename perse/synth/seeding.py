"""Seed samples of the geometry the generator renders, for the avatar's initial Gaussians.

Every accessory variant (glasses, hats, earrings) and every part of the mouth interior is sampled
area-uniformly on the mesh the generator draws, posed on the identity's neutral head (so the samples
are where the dataset shows that geometry). Each sample is bound to the head triangle its mesh vertex
is bound to (rigid skull, ears, jaw: `perse.synth.accessories.BIND_REGIONS`, `perse.synth.mouth`); an
accessory sample whose triangle lies outside its category's region, where the category's branch of
the attribute field cannot reach it, is bound again to the nearest allowed triangle inside the region.
Format and use: `perse.avatar.seeds`.
"""

from __future__ import annotations

import numpy as np

from perse.avatar.seeds import SeedSet
from perse.mesh_ops import boundary_edge_faces, face_normals
from perse.synth.accessories import ACCESSORY_LABEL_BASE, BIND_REGIONS, Accessory, face_mask
from perse.synth.binding import bind_to_mesh
from perse.synth.variants import reference_look

# Sample spacing (m) and most samples per mesh, by accessory name prefix: thin parts densely, so a
# 2 mm frame is several Gaussians across; big smooth parts (hats, the cavity) sparsely. About 8500
# samples in all: they count against the trainer's Gaussian budget (`DensifyConfig.max_gaussians`).
SPACING = {"glasses_frame": (0.0016, 900), "glasses_lenses": (0.0040, 300), "hat": (0.0080, 800),
           "earrings": (0.0010, 250), "teeth": (0.0013, 500), "gums": (0.0025, 120), "tongue": (0.0030, 150),
           "cavity": (0.0030, 300), "lip_seal": (0.0012, 80), "hair_curtain": (0.0040, 1500)}
DEFAULT_SPACING = (0.0020, 600)
SCALE = 0.6  # Gaussian scale / sample spacing: neighbours overlap, yet a 2 mm frame stays about 2 mm wide
# A mesh's open rim (a hat's band, a brim's edge) gets a row of small Gaussians along it, and the area
# samples near it shrink: big ones straddling the rim trained into a fuzzy edge with specks below it.
RIM_SCALE = 0.35          # rim Gaussians' scale over the area samples'
RIM_INSET = 0.05          # rim samples sit this far (barycentric) into their triangle
RIM_MESHES = ("hat",)     # meshes (name prefixes) whose rim gets them: the others' rims are hidden or soft


def spacing_for(name: str) -> tuple[float, int]:
    """(spacing m, max samples) for a mesh called `name` (longest matching prefix)."""
    hits = [k for k in SPACING if name.startswith(k)]
    return SPACING[max(hits, key=len)] if hits else DEFAULT_SPACING


def sample_mesh(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-uniform samples: triangle index (count,), barycentrics (count, 3), unit normals (count, 3)."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    n = np.cross(b - a, c - a)
    area = 0.5 * np.linalg.norm(n, axis=1)
    tri = rng.choice(len(faces), size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    bary = np.stack([1 - u - v, u, v], 1)
    return tri, bary, n[tri] / np.maximum(2 * area[tri, None], 1e-20)


def mesh_seeds(acc: Accessory, posed: np.ndarray, category: int, variant: int, rng: np.random.Generator,
               allowed: np.ndarray | None, anatomy) -> SeedSet:
    """Samples of one bound mesh. posed: (N, 3) its vertices on the neutral identity head; allowed: (F,)
    bool head triangles the samples may bind to (None: keep the mesh's own binding)."""
    spacing, most = spacing_for(acc.name)
    f = acc.faces
    area = 0.5 * np.linalg.norm(np.cross(posed[f[:, 1]] - posed[f[:, 0]], posed[f[:, 2]] - posed[f[:, 0]]), axis=1).sum()
    count = int(np.clip(round(area / spacing ** 2), 16, most))
    tri, bary, normals = sample_mesh(posed, f, count, rng)
    step = np.sqrt(area / count)
    if acc.name.startswith(RIM_MESHES):
        rim_tri, rim_bary = rim_samples(posed, f, RIM_SCALE * step)
        tri, bary = np.concatenate([tri, rim_tri]), np.concatenate([bary, rim_bary])
        normals = np.concatenate([normals, face_normals(posed, f)[rim_tri]])
    on_rim = np.arange(len(tri)) >= count
    count = len(tri)
    corners = f[tri]
    points = (bary[..., None] * posed[corners]).sum(axis=1)
    colors = (bary[..., None] * acc.colors[corners]).sum(axis=1)
    face = acc.binding.face[corners[np.arange(count), bary.argmax(axis=1)]]  # the nearest corner's triangle
    if allowed is not None and not allowed[face].all():
        bad = ~allowed[face]
        canonical = (bary[bad, :, None] * acc.vertices[corners[bad]]).sum(axis=1)
        face[bad] = bind_to_mesh(canonical, anatomy.vertices, anatomy.faces, face_mask=allowed).face
    n = np.full(count, 1, np.int64)
    scale = SCALE * step * rim_falloff(points, points[on_rim], SCALE * step)
    return SeedSet(points=points.astype(np.float32), normals=normals.astype(np.float32),
                   colors=np.clip(colors, 0, 1).astype(np.float32), opacity=np.full(count, acc.opacity, np.float32),
                   scale=scale.astype(np.float32), face=face.astype(np.int64),
                   category=n * category, variant=n * variant)


def rim_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Samples every `spacing` metres along a mesh's open boundary: triangle (M,) and barycentrics
    (M, 3), just inside the triangle each boundary edge belongs to; empty on a closed mesh."""
    edges, owner, slot = boundary_edge_faces(faces)
    tris, bars = [np.zeros(0, np.int64)], [np.zeros((0, 3))]
    for (a, b), tri, k in zip(edges, owner, slot):
        count = max(int(round(float(np.linalg.norm(vertices[b] - vertices[a])) / spacing)), 1)
        t = (np.arange(count) + 0.5) / count
        bary = np.zeros((count, 3))
        bary[:, k], bary[:, (k + 1) % 3] = (1 - t) * (1 - RIM_INSET), t * (1 - RIM_INSET)
        bary[:, (k + 2) % 3] = RIM_INSET
        tris.append(np.full(count, tri))
        bars.append(bary)
    return np.concatenate(tris), np.concatenate(bars)


def rim_falloff(points: np.ndarray, rim_points: np.ndarray, scale: float) -> np.ndarray:
    """(N,) factor in [RIM_SCALE, 1] on the Gaussians' scale: a Gaussian keeps two scales clear of the
    rim (rim_points (M, 3)); all 1 without a rim."""
    if not len(rim_points):
        return np.ones(len(points))
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(rim_points).query(points)
    return np.clip(distance / (2.0 * scale), RIM_SCALE, 1.0)


def dataset_seeds(frame_renderer, neutral: np.ndarray, rng: np.random.Generator) -> SeedSet:
    """Seeds of every accessory variant and of the mouth for a `FrameRenderer`'s head.

    neutral: (V, 3) head vertices of the dataset's identity in the neutral pose. Accessories are posed
    exactly as `FrameRenderer.meshes` poses them (the same meshes, in the same order).
    """
    from perse.avatar.model import face_category_mask

    fr = frame_renderer
    a = fr.anatomy
    gateable = face_category_mask(fr.head, fr.categories).numpy()  # (F, C), as the avatar gates
    out = []
    for c, cat in enumerate(fr.categories):
        if cat.name not in BIND_REGIONS:
            continue
        allowed = gateable[:, c] & face_mask(a, BIND_REGIONS[cat.name])
        if not allowed.any():
            allowed = gateable[:, c]
        for v, variant in enumerate(cat.variants):
            accs = fr.accessories.get({cat.name: variant})
            if not accs:
                continue
            # A look with only this accessory: its meshes are then exactly `accs`, in order.
            meshes = [m for m in fr.meshes({cat.name: variant}, neutral)
                      if m.face_labels is not None and np.asarray(m.face_labels).min() >= ACCESSORY_LABEL_BASE]
            for acc, mesh in zip(accs, meshes):
                out.append(mesh_seeds(acc, np.asarray(mesh.vertices, np.float64), c, v, rng, allowed, a))
    if fr.mouth is not None:
        for part in fr.mouth.solids:
            out.append(mesh_seeds(part, part.posed(neutral), -1, -1, rng, None, a))
    curtain = None if fr.hair_layer is None else fr.hair_layer.curtain
    if curtain is not None:   # anatomy too: shown in every look, recoloured by the hair branch of its triangles
        out.append(mesh_seeds(curtain_accessory(curtain, fr.texture(reference_look(fr.categories))),
                              curtain.posed(neutral, a.faces), -1, -1, rng, None, a))
    return SeedSet.concat(out)


def curtain_accessory(curtain, texture: np.ndarray) -> Accessory:
    """The hair curtain as a bound mesh with vertex colours: `texture` (S, S, 3) uint8 at its uvs, shaded."""
    colors = curtain.texel_colors(texture) * curtain.shade[:, None]
    return Accessory("hair_curtain", "hair", np.zeros((curtain.num_vertices, 3)), curtain.faces, colors,
                     binding=curtain.binding)
