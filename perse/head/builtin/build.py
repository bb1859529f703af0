"""The whole built-in head as `HeadData`, and the command that writes it (`python -m perse.head.builtin`)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from perse.errors import PerseError
from perse.head import arkit
from perse.head.builtin.assembly import build_geometry
from perse.head.builtin.expressions import JAW_OPEN_ANGLE, expression_fields
from perse.head.builtin.face import portrait_landmarks
from perse.head.builtin.identity import shape_fields
from perse.head.builtin.landmark_embedding import landmark_embedding
from perse.head.builtin.regions import REGIONS, vertex_regions
from perse.head.builtin.skinning import joint_regressor, skinning_weights
from perse.head.builtin.uv_layout import texture_layout
from perse.head.builtin_asset import GENERATOR_COMMAND
from perse.head.model import JOINT_NAMES, HeadData


NAME = "perse-builtin-v1"
SEED = 20250611


def build_head_data(seed: int = SEED) -> HeadData:
    """Generate the whole built-in head (deterministic for a given seed on a given machine)."""
    import torch

    rng = np.random.default_rng(seed)
    geo = build_geometry(portrait_landmarks())
    P = geo["parts"]
    v, faces = P.verts, P.faces
    J = joint_regressor(geo)
    weights, w_jaw = skinning_weights(geo)
    exprdirs = expression_fields(geo, J, weights, w_jaw)
    shapedirs = shape_fields(geo, rng)
    uvs, uv_faces = texture_layout(geo)
    regions = vertex_regions(geo)
    lmk_idx, lmk_bary, _ = landmark_embedding(geo)
    f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    i64 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int64)  # noqa: E731
    # The meta text is part of the stored asset (the regeneration test compares it), so "source" still
    # names the generator's first home, perse/head/builtin.py, now the package perse/head/builtin/.
    meta = {
        "kind": "builtin",
        "name": NAME,
        "generator": GENERATOR_COMMAND,
        "seed": seed,
        "expression_names": list(arkit.EXPRESSION_NAMES),
        "regions": list(REGIONS),
        "joint_names": list(JOINT_NAMES),
        "units": "metres; +y up, +z out of the face, +x toward the subject's left",
        "placement": "x=0 symmetry plane, y=0 outer eye corners, z=0 ~ear canals; neck base y=-0.21",
        "jaw_open": f"jawOpen = linearised jaw_rot=({JAW_OPEN_ANGLE},0,0); positive x jaw rotation opens",
        "uv": "v up (OpenGL); head chart above v=0.28 with the seam at the back; islands below",
        "posedirs": "zeros (no pose correctives)",
        "source": "MediaPipe FaceMesh 0.10.21 on skimage.data.astronaut(); see perse/head/builtin.py",
    }
    return HeadData(
        v_template=f32(v), faces=i64(faces), shapedirs=f32(shapedirs), exprdirs=f32(exprdirs),
        posedirs=torch.zeros(36, len(v) * 3), j_regressor=f32(J), parents=i64([-1, 0, 1, 1, 1]),
        lbs_weights=f32(weights), lmk_face_idx=i64(lmk_idx), lmk_bary=f32(lmk_bary),
        landmark_indices=torch.arange(478, dtype=torch.int64), uvs=f32(uvs), uv_faces=i64(uv_faces),
        vertex_regions=i64(regions), meta=meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perse.head.builtin",
                                     description="Generate the built-in head model (FLAME layout).")
    parser.add_argument("--out", default="assets/builtin_head.safetensors", help="output .safetensors path")
    parser.add_argument("--seed", type=int, default=SEED, help="seed for the random shape modes")
    args = parser.parse_args(argv)
    try:
        data = build_head_data(args.seed)
        data.save(args.out)
    except PerseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {data.v_template.shape[0]} vertices, {data.faces.shape[0]} faces, "
          f"{data.shapedirs.shape[-1]} shape and {data.exprdirs.shape[-1]} expression directions")
    return 0
