"""`HeadModel`: a parametric head in FLAME's data layout, whatever its origin (FLAME file or built-in).

Coordinates: metres, +y up, +z out of the face (the face looks toward +z), +x toward the subject's left.
Joints, in FLAME's order: 0 global (root), 1 neck, 2 jaw, 3 left eye, 4 right eye; parents [-1, 0, 1, 1, 1].
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from perse.head.lbs import lbs
from perse.landmarks import NUM_LANDMARKS

JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")
POSE_FIELDS = ("global_rot", "neck_rot", "jaw_rot", "eye_left_rot", "eye_right_rot")


# Fields renamed since files were first written (old name -> new name); `HeadParams.from_dict` reads both.
RENAMED_FIELDS = {"shape": "identity"}


@dataclass
class HeadParams:
    """Parameters of a head model, batched. Any field may be None, meaning zeros.

    identity: (B, S) identity (shape-space) coefficients.   expression: (B, E) expression coefficients.
    global_rot, neck_rot, jaw_rot, eye_left_rot, eye_right_rot: (B, 3) axis-angle (radians).
    translation: (B, 3) metres, applied after skinning.
    """

    identity: Tensor | None = None
    expression: Tensor | None = None
    global_rot: Tensor | None = None
    neck_rot: Tensor | None = None
    jaw_rot: Tensor | None = None
    eye_left_rot: Tensor | None = None
    eye_right_rot: Tensor | None = None
    translation: Tensor | None = None

    @property
    def batch_size(self) -> int:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                return value.shape[0]
        return 1

    def to(self, device: torch.device | str) -> "HeadParams":
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})

    def detach(self) -> "HeadParams":
        return replace(self, **{f.name: getattr(self, f.name).detach() for f in fields(self)
                                if getattr(self, f.name) is not None})

    def to_dict(self) -> dict[str, list]:
        """JSON-friendly dict (nested lists), omitting None fields."""
        return {f.name: getattr(self, f.name).tolist() for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "HeadParams":
        """From :meth:`to_dict`'s output; older files' field names (`RENAMED_FIELDS`) read as the new ones."""
        renamed = {RENAMED_FIELDS.get(k, k): v for k, v in data.items()}
        if len(renamed) < len(data):
            raise ValueError(f"head parameters name both {sorted(RENAMED_FIELDS)} and their new names")
        data = renamed
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown head parameter(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**{k: torch.as_tensor(v, dtype=torch.float32) for k, v in data.items()})

    @staticmethod
    def stack(items: list["HeadParams"]) -> "HeadParams":
        """Concatenate along the batch dimension (fields None in all items stay None)."""
        out = {}
        for f in fields(HeadParams):
            values = [getattr(p, f.name) for p in items]
            if all(v is None for v in values):
                continue
            if any(v is None for v in values):
                raise ValueError(f"cannot stack HeadParams: field {f.name} is None in some items only")
            out[f.name] = torch.cat(values, dim=0)
        return HeadParams(**out)


@dataclass
class HeadOutput:
    """vertices: (B, V, 3); joints: (B, 5, 3); landmarks: (B, L, 3) on the mesh surface."""

    vertices: Tensor
    joints: Tensor
    landmarks: Tensor


@dataclass
class HeadData:
    """The raw arrays of a head model, in FLAME's layout (all float32 unless noted).

    v_template: (V, 3)          faces: (F, 3) int64
    shapedirs: (V, 3, S)        exprdirs: (V, 3, E)
    posedirs: (36, V * 3)       j_regressor: (5, V)
    parents: (5,) int64         lbs_weights: (V, 5)
    lmk_face_idx: (L,) int64    lmk_bary: (L, 3)   -- MediaPipe landmark embedding (L = 478 or 105)
    landmark_indices: (L,) int64 MediaPipe landmark id of each embedded landmark
    uvs: (T, 2) in [0, 1], uv_faces: (F, 3) int64  -- optional texture layout
    vertex_regions: (V,) int64 semantic region id per vertex (optional; names in meta["regions"])
    meta: JSON-serialisable description (kind, name, expression_names, regions, source sha256, ...)
    """

    v_template: Tensor
    faces: Tensor
    shapedirs: Tensor
    exprdirs: Tensor
    posedirs: Tensor
    j_regressor: Tensor
    parents: Tensor
    lbs_weights: Tensor
    lmk_face_idx: Tensor
    lmk_bary: Tensor
    landmark_indices: Tensor
    uvs: Tensor | None = None
    uv_faces: Tensor | None = None
    vertex_regions: Tensor | None = None
    meta: dict = field(default_factory=dict)

    def tensors(self) -> dict[str, Tensor]:
        """All arrays by name (for safetensors), contiguous, omitting absent optional ones."""
        return {f.name: getattr(self, f.name).contiguous() for f in fields(self)
                if f.name != "meta" and getattr(self, f.name) is not None}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], meta: dict) -> "HeadData":
        names = {f.name for f in fields(cls)} - {"meta"}
        return cls(**{k: v for k, v in tensors.items() if k in names}, meta=meta)

    def validate(self, source: str, finite: bool = True) -> "HeadData":
        """Check shapes, dtypes, every index against the model's own sizes and (`finite`) that no array
        holds NaN or infinity.

        Raises ValueError with one line naming `source` and the first problem found (callers turn it
        into a PerseError with what to do). Returns self, so loaders can chain it.
        """
        problem = _head_data_problem(self, finite)
        if problem:
            raise ValueError(f"{source}: {problem}")
        return self

    def save(self, path: str | Path) -> None:
        """Write as one safetensors file (atomic), meta stored as JSON in the header."""
        from safetensors.torch import save_file

        from perse.io_utils import atomic_path

        with atomic_path(path) as tmp:
            save_file(self.tensors(), str(tmp), metadata={"perse_head_meta": json.dumps(self.meta)})

    @classmethod
    def load(cls, path: str | Path) -> "HeadData":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("perse_head_meta", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return cls.from_tensors(tensors, meta)


_HEAD_FLOATS = ("v_template", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights", "lmk_bary", "uvs")
_HEAD_INDICES = ("faces", "parents", "lmk_face_idx", "landmark_indices", "uv_faces", "vertex_regions")


def _head_data_problem(d: HeadData, finite: bool = True) -> str | None:
    """The first thing wrong with a head's arrays (None if nothing): see `HeadData.validate`."""
    from perse.checks import all_finite, index_problem

    for name in _HEAD_FLOATS + _HEAD_INDICES:
        value = getattr(d, name)
        if value is None:
            continue
        if not isinstance(value, Tensor):
            return f"head array {name} is not a tensor"
        if name in _HEAD_FLOATS and not value.is_floating_point():
            return f"head array {name} has dtype {value.dtype}, expected a floating-point type"
        if name in _HEAD_INDICES and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
            return f"head array {name} has dtype {value.dtype}, expected integers"
        if finite and name in _HEAD_FLOATS and not all_finite(value):
            return f"head array {name} holds NaN or infinite values"
    dims = {"V": (d.v_template, 2, 0), "F": (d.faces, 2, 0), "J": (d.parents, 1, 0), "S": (d.shapedirs, 3, 2),
            "E": (d.exprdirs, 3, 2), "L": (d.lmk_face_idx, 1, 0), "T": (d.uvs, 2, 0)}
    n = {k: (t.shape[axis] if t is not None and t.ndim == ndim else -1) for k, (t, ndim, axis) in dims.items()}
    V, F_, J, S, E, L, T = (n[k] for k in "VFJSELT")
    expected = {"v_template": (V, 3), "faces": (F_, 3), "shapedirs": (V, 3, S), "exprdirs": (V, 3, E),
                "posedirs": ((J - 1) * 9, V * 3), "j_regressor": (J, V), "parents": (J,), "lbs_weights": (V, J),
                "lmk_face_idx": (L,), "lmk_bary": (L, 3), "landmark_indices": (L,), "uvs": (T, 2),
                "uv_faces": (F_, 3), "vertex_regions": (V,)}
    for name, shape in expected.items():
        value = getattr(d, name)
        if value is not None and (min(shape) < 0 or tuple(value.shape) != shape):
            return f"head array {name} has shape {tuple(value.shape)}, expected {shape}"
    if V < 3 or F_ < 1 or J != len(JOINT_NAMES):
        return f"head has {V} vertices, {F_} faces and {J} joints; expected >= 3, >= 1 and {len(JOINT_NAMES)}"
    if (d.uvs is None) != (d.uv_faces is None):
        return "head has only one of uvs and uv_faces"
    regions = d.meta.get("regions") if isinstance(d.meta, dict) else None
    bounds = {"faces": V, "lmk_face_idx": F_, "uv_faces": T, "landmark_indices": NUM_LANDMARKS,
              "vertex_regions": len(regions) if isinstance(regions, list) and regions else None}
    for name, limit in bounds.items():
        value = getattr(d, name)
        if value is not None and limit is not None:
            problem = index_problem(f"head array {name}", value, limit)
            if problem:
                return problem
    parents = d.parents.tolist()
    if parents[0] != -1 or any(not 0 <= p < i for i, p in enumerate(parents) if i > 0):
        return f"head joint parents {parents} are not a tree rooted at joint 0"
    names = d.meta.get("expression_names") if isinstance(d.meta, dict) else None
    if names is not None and (not isinstance(names, list) or len(names) != E
                              or not all(isinstance(n, str) for n in names)):
        return f"head meta expression_names does not name the {E} expression directions"
    return None


class HeadModel(nn.Module):
    """A FLAME-layout head: `forward(HeadParams) -> HeadOutput`. Holds buffers only, no learned state."""

    def __init__(self, data: HeadData):
        super().__init__()
        self.meta = dict(data.meta)
        for name, value in data.tensors().items():
            self.register_buffer(name, value, persistent=True)
        if data.uvs is None:
            self.uvs = self.uv_faces = None
        if data.vertex_regions is None:
            self.vertex_regions = None

    # -- sizes and names -------------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def num_shape(self) -> int:
        return self.shapedirs.shape[-1]

    @property
    def num_expression(self) -> int:
        return self.exprdirs.shape[-1]

    @property
    def expression_names(self) -> list[str]:
        """Human names of the expression directions (ARKit names for the built-in head;
        ``expr00``, ``expr01``, ... for FLAME's PCA directions)."""
        names = self.meta.get("expression_names")
        return list(names) if names else [f"expr{i:02d}" for i in range(self.num_expression)]

    @property
    def region_names(self) -> list[str]:
        return list(self.meta.get("regions", []))

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "unknown")

    def data(self) -> HeadData:
        """The model's arrays and meta, e.g. to embed the model in a `.perse` file."""
        tensors = {name: buf.detach().cpu() for name, buf in self.named_buffers()}
        return HeadData.from_tensors(tensors, dict(self.meta))

    def zero_params(self, batch_size: int = 1) -> HeadParams:
        """Neutral parameters with every field filled (useful as optimisation variables)."""
        z = lambda n: torch.zeros(batch_size, n, dtype=self.v_template.dtype, device=self.v_template.device)  # noqa: E731
        return HeadParams(identity=z(self.num_shape), expression=z(self.num_expression),
                          global_rot=z(3), neck_rot=z(3), jaw_rot=z(3), eye_left_rot=z(3),
                          eye_right_rot=z(3), translation=z(3))

    def expression_vector(self, values: dict[str, float]) -> Tensor:
        """(E,) expression coefficients from ``{name: value}``; unknown names raise ValueError."""
        names = self.expression_names
        out = torch.zeros(self.num_expression)
        for name, value in values.items():
            if name not in names:
                raise ValueError(f"unknown expression '{name}'; known: {', '.join(names)}")
            out[names.index(name)] = float(value)
        return out

    # -- evaluation ------------------------------------------------------------------------------
    def _filled(self, params: HeadParams) -> HeadParams:
        B = params.batch_size
        zeros = self.zero_params(B)
        filled = {}
        for f in fields(HeadParams):
            value = getattr(params, f.name)
            ref = getattr(zeros, f.name)
            if value is None:
                filled[f.name] = ref
            else:
                value = value.to(ref)
                if f.name in ("identity", "expression") and value.shape[1] != ref.shape[1]:
                    # Fewer coefficients than directions: pad with zeros (FLAME users often pass 100/50).
                    if value.shape[1] > ref.shape[1]:
                        raise ValueError(f"{f.name} has {value.shape[1]} coefficients; this head model has "
                                         f"{ref.shape[1]}")
                    value = torch.cat([value, ref[:, value.shape[1]:]], dim=1)
                filled[f.name] = value
        return HeadParams(**filled)

    def forward(self, params: HeadParams) -> HeadOutput:
        p = self._filled(params)
        betas = torch.cat([p.identity, p.expression], dim=1)
        dirs = torch.cat([self.shapedirs, self.exprdirs], dim=2)
        full_pose = torch.stack([getattr(p, name) for name in POSE_FIELDS], dim=1)  # (B, 5, 3)
        vertices, joints = lbs(betas, full_pose, self.v_template, dirs, self.posedirs,
                               self.j_regressor, self.parents, self.lbs_weights)
        vertices = vertices + p.translation[:, None]
        joints = joints + p.translation[:, None]
        return HeadOutput(vertices=vertices, joints=joints, landmarks=self.landmarks(vertices))

    def landmarks(self, vertices: Tensor) -> Tensor:
        """Barycentric landmark positions. vertices: (B, V, 3) -> (B, L, 3)."""
        tri = self.faces[self.lmk_face_idx]  # (L, 3)
        corners = vertices[:, tri]  # (B, L, 3, 3)
        return (corners * self.lmk_bary[None, :, :, None]).sum(dim=2)
