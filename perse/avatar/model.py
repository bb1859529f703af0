"""`Avatar`: Gaussians bound to a head model's triangles, edited through the attribute latent space.

    state (HeadParams + Look) ──► look part (cached): base local Gaussians + AttributeField offsets
                               └► head part: HeadModel.forward -> triangle frames ──► world Gaussians
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from perse.avatar.binding import LocalGaussians, bind_to_world, sample_on_triangles
from perse.avatar.field import OFFSET_SLICES, AttributeField, FieldConfig, positional_features, sum_terms
from perse.avatar.latent import LatentSpace, Look
from perse.categories import Category
from perse.geometry.triangles import TriangleFrames, to_frame, triangle_frames
from perse.head.model import HeadModel, HeadParams
from perse.render.gaussians import Gaussians

# Per-Gaussian learnable tensors, in the order they are saved and densified.
GAUSSIAN_FIELDS = ("position", "quat", "log_scale", "opacity_logit", "color_logit", "feature", "gate_logit")


@dataclass
class AvatarState:
    """What to show: head parameters (batch size 1; `identity` None means the avatar's own) and a look."""

    head: HeadParams = field(default_factory=HeadParams)
    look: Look | None = None  # None: the reference look


def face_category_mask(head: HeadModel, categories: list[Category]) -> Tensor:
    """(F, C) bool: which triangles each category may affect (a triangle is in a region if any of its
    vertices is). Categories without regions, or heads without region labels, are unrestricted."""
    F_, C = head.faces.shape[0], len(categories)
    mask = torch.ones(F_, C, dtype=torch.bool)
    if head.vertex_regions is None:
        return mask
    names = head.region_names
    face_regions = head.vertex_regions[head.faces]  # (F, 3)
    for c, spec in enumerate(categories):
        if not spec.regions:
            continue
        ids = torch.tensor([names.index(r) for r in spec.regions if r in names], dtype=torch.long)
        mask[:, c] = torch.isin(face_regions, ids).any(dim=1)
    return mask


class Avatar(nn.Module):
    """An editable, animatable Gaussian head.

    Buffers: parent (N,) triangle of each Gaussian; identity (S,) shape coefficients of the person.
    Parameters: gaussians[name] for name in GAUSSIAN_FIELDS; latent codes; field branches.
    """

    def __init__(self, head: HeadModel, categories: list[Category], parent: Tensor,
                 gaussians: dict[str, Tensor], cfg: FieldConfig | None = None, identity: Tensor | None = None,
                 meta: dict | None = None):
        super().__init__()
        self.cfg = cfg or FieldConfig()
        self.head = head
        self.latent = LatentSpace(categories, self.cfg.code_dim)
        self.field = AttributeField([c.name for c in categories], self.cfg)
        self.gaussians_params = nn.ParameterDict({k: nn.Parameter(gaussians[k].float()) for k in GAUSSIAN_FIELDS})
        self.register_buffer("parent", parent.long())
        self.register_buffer("identity", torch.zeros(head.num_shape) if identity is None else identity.float())
        self.register_buffer("face_mask", face_category_mask(head, categories))
        self.meta = dict(meta or {})
        self._look_cache: tuple[bytes, LocalGaussians] | None = None
        self._rest_frames: TriangleFrames | None = None
        self.seed_targets = None  # `perse.avatar.seeds.SeedTargets` of a freshly seeded avatar (training only)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def initialize(cls, head: HeadModel, categories: list[Category], num_gaussians: int = 20000,
                   shell_fraction: float = 0.35, shell_max_offset: float = 0.04,
                   cfg: FieldConfig | None = None, identity: Tensor | None = None, seed: int = 0,
                   surface_offset: Tensor | None = None, seeds=None) -> "Avatar":
        """A fresh avatar: Gaussians on the neutral head surface, plus faint 'shell' Gaussians floating up
        to `shell_max_offset` metres above the regions of categories (room for hats, glasses, earrings
        and hair volume to appear during training without any category-specific code).

        surface_offset: (V,) metres along the normal of the surface the Gaussians start on, e.g. the
        thickness of a person's hair layer (`perse.synth.hair`): the hair's Gaussians then start on the
        hair's outer surface, bound to the scalp triangles, instead of having to travel there.

        seeds: a `perse.avatar.seeds.SeedSet` (the dataset's accessory and mouth geometry): appended as
        flat Gaussians on that geometry, accessory ones hidden except in their own variant's look
        (their category branches are pre-fitted, `fit_seed_branches`; `seed_targets` records them
        for the trainer's seed anchor)."""
        cfg = cfg or FieldConfig()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            coeffs = torch.zeros(1, head.num_shape) if identity is None else identity[None].float()
            verts = head(HeadParams(identity=coeffs)).vertices[0]
        faces = head.faces
        frames = triangle_frames(verts, faces)
        fmask = face_category_mask(head, categories)

        n_shell = int(num_gaussians * shell_fraction) if categories else 0
        n_surface = num_gaussians - n_shell
        parent_s, bary_s = sample_on_triangles(verts, faces, n_surface, g)
        lift = torch.zeros(faces.shape[0], 3) if surface_offset is None else surface_offset.float()[faces]  # (F, 3)
        offset_s = (lift[parent_s] * bary_s).sum(dim=1)
        restricted = fmask.any(dim=1) & ~fmask.all(dim=1)
        shell_weights = restricted.float() if restricted.any() else torch.ones(faces.shape[0])
        parent_h, bary_h = sample_on_triangles(verts, faces, n_shell, g, face_weights=shell_weights)
        offset_h = shell_max_offset * torch.rand(n_shell, generator=g).sqrt() + (lift[parent_h] * bary_h).sum(dim=1)

        parent = torch.cat([parent_s, parent_h])
        bary = torch.cat([bary_s, bary_h])
        offset = torch.cat([offset_s, offset_h])
        tri = verts[faces[parent]]  # (N, 3, 3)
        points = (bary[..., None] * tri).sum(dim=1) + offset[:, None] * frames.rotations[parent][..., 2]
        position = to_frame(points, parent, frames)

        area = 0.5 * torch.linalg.cross(verts[faces[:, 1]] - verts[faces[:, 0]],
                                        verts[faces[:, 2]] - verts[faces[:, 0]]).norm(dim=-1).sum()
        spacing = math.sqrt(float(area) / num_gaussians)
        k = frames.scales[parent]
        log_scale = torch.log(spacing / k)[:, None].repeat(1, 3)
        log_scale[:, 2] += math.log(0.4)  # flatter along the normal: a surface, not a cloud
        is_shell = torch.cat([torch.zeros(n_surface, dtype=torch.bool), torch.ones(n_shell, dtype=torch.bool)])
        opacity = torch.where(is_shell, torch.full_like(offset, -4.0), torch.full_like(offset, 1.0))
        quat = torch.zeros(len(parent), 4)
        quat[:, 0] = 1.0
        gaussians = {
            "position": position, "quat": quat, "log_scale": log_scale, "opacity_logit": opacity,
            "color_logit": torch.zeros(len(parent), 3),
            "feature": positional_features(points, cfg.feature_dim, g),
            "gate_logit": torch.full((len(parent), len(categories)), 2.0),
        }
        if seeds is None or len(seeds) == 0:
            return cls(head, categories, parent, gaussians, cfg, identity)
        from perse.avatar.seeds import SeedTargets, fit_seed_branches, seed_gaussians

        seeds.validate(faces.shape[0], len(categories))
        seed_parent, seeded = seed_gaussians(seeds, frames, len(categories), cfg.feature_dim, g)
        rows = torch.arange(len(parent), len(parent) + len(seeds))
        gaussians = {k: torch.cat([v, seeded[k]]) for k, v in gaussians.items()}
        avatar = cls(head, categories, torch.cat([parent, seed_parent]), gaussians, cfg, identity)
        fit_seed_branches(avatar, rows, seeds, generator=g)
        avatar.seed_targets = SeedTargets.from_seeds(rows, seeds)  # for the trainer's seed anchor
        return avatar

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def num_gaussians(self) -> int:
        return self.parent.shape[0]

    @property
    def categories(self) -> list[Category]:
        return self.latent.categories

    @property
    def region_mask(self) -> Tensor:
        """(N, C) bool structural gate of every Gaussian."""
        return self.face_mask[self.parent]

    # -- the look-dependent part ----------------------------------------------------------------
    def local_gaussians(self, look: Look | None = None) -> LocalGaussians:
        """Base Gaussians plus the attribute field's offsets for `look` (in triangle frames).

        Cached by the look's codes when autograd is off (the studio and CLI path); while training
        (gradients enabled) it is recomputed every call.
        """
        look = self.latent.reference_look() if look is None else look
        caching = not torch.is_grad_enabled()
        if caching:
            key = look.key()
            cache = self._look_cache  # read once: another thread may replace it
            if cache is not None and cache[0] == key:
                return cache[1]
        p = self.gaussians_params
        local = self._offset_by(self.field(look.codes, p["feature"], p["gate_logit"], self.region_mask))
        if caching:
            self._look_cache = (key, local)
        return local

    def _offset_by(self, offsets: Tensor) -> LocalGaussians:
        """The base Gaussians moved by (N, 14) field offsets."""
        p = self.gaussians_params
        return LocalGaussians(
            parent=self.parent,
            position=p["position"] + offsets[:, OFFSET_SLICES["position"]],
            quat=p["quat"] + offsets[:, OFFSET_SLICES["quat"]],
            log_scale=p["log_scale"] + offsets[:, OFFSET_SLICES["log_scale"]],
            opacity_logit=p["opacity_logit"] + offsets[:, OFFSET_SLICES["opacity_logit"]][:, 0],
            color_logit=p["color_logit"] + offsets[:, OFFSET_SLICES["color_logit"]],
        )

    def invalidate_cache(self) -> None:
        """Call after changing parameters in place (training, loading)."""
        self._look_cache = None

    def replace_gaussians(self, tensors: dict[str, Tensor], parent: Tensor) -> None:
        """Swap in a new set of Gaussians (densification): fresh parameters, same fields and device.

        tensors: {name: (N', ...)} for every name in GAUSSIAN_FIELDS; parent: (N',) long triangle indices.
        The old `nn.Parameter` objects are dropped: an optimiser holding them must be told
        (`perse.train.ops` moves their state to the new ones).
        """
        n = parent.shape[0]
        wrong = [k for k in GAUSSIAN_FIELDS if tensors[k].shape[0] != n]
        if wrong:
            raise ValueError(f"replace_gaussians: {wrong} do not have {n} rows like parent")
        for k in GAUSSIAN_FIELDS:
            trainable = self.gaussians_params[k].requires_grad
            self.gaussians_params[k] = nn.Parameter(tensors[k].detach().contiguous(), requires_grad=trainable)
        self.parent = parent.long().contiguous()  # a registered buffer: assignment keeps it one
        self.invalidate_cache()

    # -- the head-dependent part ----------------------------------------------------------------
    def head_vertices(self, params: HeadParams) -> Tensor:
        """(V, 3) posed head vertices for batch-size-1 params (the avatar's identity unless given)."""
        if params.identity is None:
            params = HeadParams(**{**params.__dict__, "identity": self.identity[None]})
        return self.head(params).vertices[0]

    def gaussians(self, state: AvatarState | None = None) -> Gaussians:
        """World-space Gaussians for a state. Only skinning and binding run when just the head moved."""
        state = state or AvatarState()
        return self._bind(self.local_gaussians(state.look), state.head)

    def gaussians_with_terms(self, state: AvatarState) -> tuple[Gaussians, dict[str, tuple[Tensor, Tensor]]]:
        """`gaussians(state)`, uncached, with the field's per-category terms they were built from
        ({name: (indices (M,), gated offsets (M, 14))}, `AttributeField.terms`): the trainer's leakage
        loss reads the switched categories' offsets there instead of running their branches again."""
        look = self.latent.reference_look() if state.look is None else state.look
        p = self.gaussians_params
        terms = self.field.terms(look.codes, p["feature"], p["gate_logit"], self.region_mask)
        return self._bind(self._offset_by(sum_terms(terms, p["feature"])), state.head), terms

    def _bind(self, local: LocalGaussians, head: HeadParams) -> Gaussians:
        frames = triangle_frames(self.head_vertices(head), self.head.faces)
        return bind_to_world(local, frames)

    def reference_state(self) -> AvatarState:
        """The state of the reference view (the portrait's fitted parameters when there is one)."""
        ref = self.meta.get("reference_view")
        if ref and "params" in ref:
            return AvatarState(HeadParams.from_dict(ref["params"]), None)
        return AvatarState()
