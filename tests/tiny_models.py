"""Tiny, fully-specified models built by the tests themselves (no assets, no downloads)."""

from __future__ import annotations

import math

import torch

from perse.categories import Category
from perse.head.model import HeadData, HeadModel

REGIONS = ["top", "bottom"]


def icosphere(subdivisions: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere: vertices (V, 3), outward-oriented faces (F, 3)."""
    t = (1 + math.sqrt(5)) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
         [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [list(map(float, p)) for p in v]
    faces = [list(tri) for tri in f]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                verts.append([(verts[a][i] + verts[b][i]) / 2 for i in range(3)])
                cache[key] = len(verts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
    vt = torch.tensor(verts)
    vt = vt / vt.norm(dim=1, keepdim=True)
    return vt, torch.tensor(faces, dtype=torch.long)


def tiny_head(subdivisions: int = 2, num_shape: int = 4, num_expr: int = 3, seed: int = 0) -> HeadModel:
    """A 0.1 m sphere 'head' in FLAME's layout: a jaw joint moving the lower half, smooth directions."""
    g = torch.Generator().manual_seed(seed)
    unit, faces = icosphere(subdivisions)
    v = 0.1 * unit
    V = v.shape[0]
    smooth = lambda: torch.stack([torch.sin(3 * unit[:, 0] + torch.rand(1, generator=g) * 6),  # noqa: E731
                                  torch.cos(2 * unit[:, 1] + torch.rand(1, generator=g) * 6),
                                  torch.sin(2 * unit[:, 2] + torch.rand(1, generator=g) * 6)], dim=1)
    shapedirs = torch.stack([0.01 * smooth() for _ in range(num_shape)], dim=2)
    exprdirs = torch.stack([0.01 * smooth() for _ in range(num_expr)], dim=2)
    lower = (unit[:, 1] < -0.2).float()
    weights = torch.zeros(V, 5)
    weights[:, 0] = 1 - lower
    weights[:, 2] = lower
    jreg = torch.zeros(5, V)
    jreg[:, :] = 1.0 / V  # every joint at the centre: fine for a sphere
    data = HeadData(
        v_template=v, faces=faces, shapedirs=shapedirs, exprdirs=exprdirs,
        posedirs=torch.zeros(36, V * 3), j_regressor=jreg, parents=torch.tensor([-1, 0, 1, 1, 1]),
        lbs_weights=weights, lmk_face_idx=torch.arange(4), lmk_bary=torch.full((4, 3), 1 / 3),
        landmark_indices=torch.arange(4), vertex_regions=(unit[:, 1] < 0).long(),
        meta={"kind": "builtin", "name": "tiny-sphere", "regions": REGIONS,
              "expression_names": [f"e{i}" for i in range(num_expr)]},
    )
    return HeadModel(data)


def tiny_categories() -> list[Category]:
    return [
        Category("hat", ("none", "red", "blue"), "none", "none", ("top",)),
        Category("beard", ("none", "dark"), "none", "none", ("bottom",)),
    ]
