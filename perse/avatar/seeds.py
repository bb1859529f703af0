"""Seed Gaussians: known geometry (accessories, the mouth) turned into bound, gated Gaussians.

The dataset generator knows the meshes it renders: the glasses, hats and earrings of every variant and
the mouth interior. It writes area-uniform samples of them (``DATASET/seeds.npz``, `save_seeds`) in the
identity's neutral pose. A fresh avatar (`Avatar.initialize(..., seeds=...)`) turns each sample into a
flat Gaussian oriented to the surface, coloured by the material, bound to the head triangle the
generator bound that geometry to, so thin structures (2 mm frames, studs, hoops) exist from step 0
instead of having to be found by densification, which loses them.

Gating. An accessory Gaussian must be invisible in every look without its variant. Its base opacity is
therefore near zero (`HIDDEN_LOGIT`) and its category's branch of the attribute field raises it: the
branch (zero-initialised, i.e. no effect) is pre-fitted (`fit_seed_branches`) so that, for each learned
variant code, it adds ``logit(opacity) - HIDDEN_LOGIT`` to the opacity logit of that variant's seeds and
nothing to anything else in its region. Training then starts from the right look for every variant and
only refines. Seeds of the anatomy (category -1, the mouth) are plain opaque Gaussians.

Keeping them. The branch is shared by all of a category's variants and trained with Adam, so within a few
dozen steps the photometric gradients (and the interpolation regulariser) reshape its hidden layers and
the sharp seed/non-seed split it was fitted to is lost: the seeds then stay hidden in every look and are
pruned. `Avatar.initialize` therefore records `SeedTargets` (`avatar.seed_targets`: rows, variants and
target opacity logits of the accessory seeds); the trainer's seed anchor loss
(`perse.train.losses.seed_anchor_loss`) holds the applied opacity of those rows near their targets under
every variant's current code, and, more weakly, their colour under their own code near the material's
(without it single seeds of a 2 mm frame drift to the skin's colour, and the frame reads as beads),
and the branch's position, rotation and scale offsets on them at zero (without it the branch moved and
shrank the hats' seeds into clouds of flecks); `SeedTargets.remap` follows the rows through densification.

SEEDS FORMAT (``seeds.npz``, version 1), N samples::

    points (N, 3) float32   metres, neutral pose of the dataset's identity (frame params with zero pose)
    normals (N, 3) float32  unit surface normals
    colors (N, 3) float32   material albedo in [0, 1]
    opacity (N,) float32    material opacity (lenses < 1)
    scale (N,) float32      metres, sample spacing (the Gaussian's in-plane size)
    face (N,) int64         head triangle the sample is bound to
    category (N,) int64     dataset category index, -1 = anatomy (always shown)
    variant (N,) int64      variant index within the category, -1 for anatomy
    version () int64        1
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from perse.errors import PerseError
from perse.geometry.rotations import matrix_to_quat
from perse.geometry.triangles import TriangleFrames, to_frame

SEEDS_FILE = "seeds.npz"
SEEDS_VERSION = 1
HIDDEN_LOGIT = -7.0      # sigmoid = 0.0009: below the rasterizers' 1/255 cut, so hidden seeds cost nothing
FLATNESS = 0.25          # normal-axis scale relative to the in-plane scale: a surface element
FEATURE_GAIN = 1.5       # seeds' features: one random direction per variant (easy for a branch to separate)


@dataclass
class SeedSet:
    """Surface samples of known geometry (see the module docstring for the fields and their shapes)."""

    points: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    opacity: np.ndarray
    scale: np.ndarray
    face: np.ndarray
    category: np.ndarray
    variant: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, mask: np.ndarray) -> "SeedSet":
        """The samples where mask (N,) bool is set."""
        return SeedSet(*(getattr(self, f.name)[mask] for f in fields(self)))

    @classmethod
    def concat(cls, sets: list["SeedSet"]) -> "SeedSet":
        if not sets:
            return cls(*(np.zeros((0, 3), np.float32) if f.name in ("points", "normals", "colors")
                         else np.zeros(0, np.int64 if f.name in ("face", "category", "variant") else np.float32)
                         for f in fields(cls)))
        return cls(*(np.concatenate([getattr(s, f.name) for s in sets]) for f in fields(cls)))

    def validate(self, num_faces: int, num_categories: int) -> "SeedSet":
        """Shapes, finiteness and index ranges; PerseError naming the first problem."""
        n = len(self)
        for f in fields(self):
            a = getattr(self, f.name)
            want = (n, 3) if f.name in ("points", "normals", "colors") else (n,)
            if a.shape != want:
                raise PerseError(f"seeds: {f.name} has shape {a.shape}, expected {want}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise PerseError(f"seeds: {f.name} contains NaN or infinite values")
        if n and (self.face.min() < 0 or self.face.max() >= num_faces):
            raise PerseError(f"seeds: face index out of range for a head with {num_faces} triangles")
        if n and (self.category.min() < -1 or self.category.max() >= num_categories):
            raise PerseError(f"seeds: category index out of range for {num_categories} categories")
        return self


@dataclass
class SeedTargets:
    """Which avatar rows hold accessory seeds and what opacity each should have (the gating contract).

    rows (K,) long avatar row; category (K,) long category index; variant (K,) long variant index within
    the category; logit (K,) float the seed's opacity logit under its own variant's code (under any
    other code of the category it should stay at `HIDDEN_LOGIT`); color_logit (K, 3) float the logit of
    its material colour (None in checkpoints made before it existed). Not saved in a .perse: it only
    matters while training (the trainer's checkpoints carry it).
    """

    rows: Tensor
    category: Tensor
    variant: Tensor
    logit: Tensor
    color_logit: Tensor | None = None

    @classmethod
    def from_seeds(cls, rows: Tensor, seeds: SeedSet) -> "SeedTargets":
        """Targets for the accessory seeds among `seeds`, held by avatar rows `rows` (N,)."""
        acc = torch.as_tensor(seeds.category >= 0)
        opacity = torch.as_tensor(seeds.opacity, dtype=torch.float32).clamp(1e-3, 0.995)
        color = torch.as_tensor(seeds.colors, dtype=torch.float32).clamp(0.02, 0.98)   # as `seed_gaussians` starts them
        return cls(rows=rows.long()[acc], category=torch.as_tensor(seeds.category, dtype=torch.long)[acc],
                   variant=torch.as_tensor(seeds.variant, dtype=torch.long)[acc], logit=torch.logit(opacity)[acc],
                   color_logit=torch.logit(color)[acc])

    def __len__(self) -> int:
        return int(self.rows.numel())

    def remap(self, source_index: Tensor) -> "SeedTargets":
        """The targets after the avatar's rows were rebuilt so that new row i continues old row
        source_index[i] (densification: pruned seeds drop out, clones and split children inherit)."""
        size = int(max(int(source_index.max()) if source_index.numel() else -1,
                       int(self.rows.max()) if len(self) else -1)) + 1
        lookup = torch.full((size,), -1, dtype=torch.long)
        lookup[self.rows.cpu()] = torch.arange(len(self))
        k = lookup[source_index.cpu().long()]
        new_rows = (k >= 0).nonzero(as_tuple=True)[0]
        k = k[new_rows]
        return SeedTargets(new_rows, self.category[k], self.variant[k], self.logit[k],
                           None if self.color_logit is None else self.color_logit[k])

    def to_dict(self) -> dict[str, Tensor]:
        out = {"rows": self.rows, "category": self.category, "variant": self.variant, "logit": self.logit}
        return out if self.color_logit is None else {**out, "color_logit": self.color_logit}

    @classmethod
    def from_dict(cls, data: dict[str, Tensor]) -> "SeedTargets":
        return cls(**{k: data[k] for k in ("rows", "category", "variant", "logit")}, color_logit=data.get("color_logit"))


def save_seeds(path: str | Path, seeds: SeedSet) -> None:
    """Write `seeds` as an .npz (format: module docstring)."""
    arrays = {f.name: getattr(seeds, f.name) for f in fields(seeds)}
    arrays = {k: v.astype(np.int64 if k in ("face", "category", "variant") else np.float32) for k, v in arrays.items()}
    with open(path, "wb") as fh:  # a file object: np.savez must not append ".npz" to the name
        np.savez_compressed(fh, version=np.int64(SEEDS_VERSION), **arrays)


def load_seeds(path: str | Path) -> SeedSet | None:
    """The seeds in `path` (a seeds.npz, or a dataset folder holding one); None when there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / SEEDS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            if int(data["version"]) != SEEDS_VERSION:
                raise PerseError(f"{path}: seeds version {int(data['version'])}; this build reads {SEEDS_VERSION}")
            return SeedSet(*(np.asarray(data[f.name]) for f in fields(SeedSet)))
    except PerseError:
        raise
    except Exception as exc:  # zip/npz errors come in several types
        raise PerseError(f"{path} is not a readable seeds file ({exc}); regenerate the dataset") from None


def surface_frames(normals: Tensor) -> Tensor:
    """(N, 3, 3) rotations whose third column is the unit normal (N, 3) (first column: any tangent)."""
    n = torch.nn.functional.normalize(normals, dim=-1)
    ref = torch.where((n[:, 1:2].abs() < 0.9), torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]]))
    t = torch.nn.functional.normalize(torch.linalg.cross(ref, n), dim=-1)
    return torch.stack([t, torch.linalg.cross(n, t), n], dim=-1)


def seed_gaussians(seeds: SeedSet, frames: TriangleFrames, num_categories: int, feature_dim: int,
                   generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """Bound Gaussian tensors for seeds on the neutral head's triangle frames.

    Returns parent (N,) and {field: tensor} for every per-Gaussian field of `Avatar`: position in the
    parent's frame, rotation turning the Gaussian's flat axis onto the surface normal, in-plane scale
    from the sample spacing, opacity (anatomy: the material's; accessories: `HIDDEN_LOGIT`, raised by
    their branch, see `fit_seed_branches`), colour, per-variant features and the usual gate logits.
    """
    parent = torch.as_tensor(seeds.face, dtype=torch.long)
    points = torch.as_tensor(seeds.points, dtype=torch.float32)
    position = to_frame(points, parent, frames)
    R_local = frames.rotations[parent].transpose(-1, -2) @ surface_frames(torch.as_tensor(seeds.normals).float())
    quat = matrix_to_quat(R_local)
    k = frames.scales[parent]
    s = torch.as_tensor(seeds.scale, dtype=torch.float32)
    log_scale = torch.log(s / k)[:, None].repeat(1, 3)
    log_scale[:, 2] += math.log(FLATNESS)
    opacity = torch.as_tensor(seeds.opacity, dtype=torch.float32).clamp(1e-3, 0.995)
    anatomy = torch.as_tensor(seeds.category < 0)
    opacity_logit = torch.where(anatomy, torch.logit(opacity), torch.full_like(opacity, HIDDEN_LOGIT))
    color_logit = torch.logit(torch.as_tensor(seeds.colors, dtype=torch.float32).clamp(0.02, 0.98))
    # Features: one random direction per (category, variant), so a category's branch can tell its
    # variants' seeds apart from each other and from the surface Gaussians (N(0, 0.5) features).
    keys = np.stack([seeds.category, seeds.variant], 1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    dirs = torch.nn.functional.normalize(torch.randn(len(uniq), feature_dim, generator=generator), dim=-1)
    feature = FEATURE_GAIN * math.sqrt(feature_dim) * 0.5 * dirs[torch.as_tensor(inverse.reshape(-1))]
    feature = feature + 0.05 * torch.randn(len(seeds), feature_dim, generator=generator)
    return parent, {"position": position, "quat": quat, "log_scale": log_scale, "opacity_logit": opacity_logit,
                    "color_logit": color_logit, "feature": feature,
                    "gate_logit": torch.full((len(seeds), num_categories), 2.0)}


def fit_seed_branches(avatar, rows: Tensor, seeds: SeedSet, steps: int = 120, lr: float = 5e-2,
                      per_variant: int = 128, others: int = 512, generator: torch.Generator | None = None
                      ) -> dict[str, float]:
    """Pre-fit each accessory category's branch so that its variants show their own seeds.

    avatar: an `Avatar` whose rows `rows` (N,) hold `seeds`. For every category with seeds, only the
    branch's opacity output (and its hidden layers) is fitted, over all of the category's learned
    codes: the opacity offset of a seed of variant v under code u is ``logit(opacity) - HIDDEN_LOGIT``
    if u == v else 0, and 0 for the other Gaussians in the category's region. The other offset outputs
    stay exactly zero (their weights are untouched), so nothing moves or recolours. The fit sees
    `per_variant` seeds of each variant and `others` region Gaussians: seeds of one variant share a
    feature direction and the rest share one feature distribution, so a sample generalises (and keeps
    this a second of CPU per category).
    Returns {category: final mean squared error (logit units)}.
    """
    from perse.avatar.field import OFFSET_SLICES

    g = generator or torch.Generator().manual_seed(0)
    p = avatar.gaussians_params
    op = OFFSET_SLICES["opacity_logit"].start
    cat_idx = torch.as_tensor(seeds.category)
    var_idx = torch.as_tensor(seeds.variant)
    target_full = torch.logit(torch.as_tensor(seeds.opacity, dtype=torch.float32).clamp(1e-3, 0.995)) - HIDDEN_LOGIT
    errors = {}
    for c, spec in enumerate(avatar.categories):
        mine = [(var_idx == u).logical_and(cat_idx == c).nonzero(as_tuple=True)[0] for u in range(len(spec.variants))]
        mine = torch.cat([m[torch.randperm(m.numel(), generator=g)[:per_variant]] for m in mine])
        if mine.numel() == 0:
            continue
        region = avatar.region_mask[:, c].clone()
        region[rows] = False
        pool = region.nonzero(as_tuple=True)[0]
        idx = torch.cat([rows[mine], pool[torch.randperm(pool.numel(), generator=g)[:others]]])
        codes = avatar.latent.codes[spec.name].detach()                       # (U, D)
        # target (U, M): variant u's seeds get their offset under code u, everything else 0.
        target = torch.zeros(codes.shape[0], idx.numel())
        for u in range(codes.shape[0]):
            hit = var_idx[mine] == u
            target[u, :mine.numel()] = torch.where(hit, target_full[mine], torch.zeros(()))
        branch = avatar.field.branches[spec.name]
        feats = p["feature"].detach()[idx]
        gate = torch.sigmoid(p["gate_logit"].detach()[idx, c])
        opt = torch.optim.Adam(branch.parameters(), lr=lr)
        keep = torch.zeros(branch.out.weight.shape[0], 1)
        keep[op] = 1.0
        for _ in range(steps):
            pred = torch.stack([gate * branch(code, feats)[:, op] for code in codes])
            loss = (pred - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            branch.out.weight.grad *= keep          # only the opacity row learns:
            branch.out.bias.grad *= keep[:, 0]      # the other offsets stay exactly zero
            opt.step()
        errors[spec.name] = float(loss.detach())
    avatar.invalidate_cache()
    return errors
