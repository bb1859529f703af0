"""Training an avatar on an attribute dataset.

One step: pick a training frame, build its look from the frame's variant indices (auto-decoder codes),
pose the head with the frame's parameters, render, compare with the masked target, add regularizers
(each term is a pure function in `perse.train.losses`):

    L = (1-w) L1 + w (1 - SSIM)                       photometric, on a random background colour
      + lambda_alpha |alpha - mask|                   silhouette
      + lambda_code  sum ||z||^2                      code regularization
      + lambda_interp ||G(mix z) - mix G(z)||^2       interpolation: the midpoint of two codes should give
                                                      the midpoint of their Gaussian parameters
      + lambda_leak  |offset_c| outside c's image region   disentanglement: a switched category may not
      + lambda_gate  mean sigmoid(gate)                      change Gaussians that land outside its region;
                                                             sparse gates keep regions tight
      + lambda_seed  seed anchor                      seeded accessories (perse.avatar.seeds) keep their
                                                      own-variant opacity and stay hidden under the other
                                                      codes of their category (one category per step)

Without the seed anchor the shared branch forgets its pre-fitted gating within ~25 steps (measured: the
round glasses' seeds fall from opacity 0.98 to 0.002 in 40 steps) and densification then prunes them. It
is neither the code drift (frozen codes collapse the same) nor the leakage or gate losses: it is Adam on
the shared branch under the photometric and interpolation gradients.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from perse.avatar.io import pack_avatar, save_avatar, unpack_avatar
from perse.avatar.model import GAUSSIAN_FIELDS, Avatar, AvatarState
from perse.categories import Category
from perse.errors import PerseError
from perse.io_utils import atomic_path
from perse.render import render
from perse.train.densify import BindingDensifier, DensifyConfig
from perse.train.losses import (alpha_loss, code_loss, gate_loss, interpolation_loss, leakage_loss,
                                photometric_loss, seed_anchor_loss, splat_regions)


DENSIFY_SHARE = 2 / 3   # of a run's steps that may densify; the rest refines a fixed set of Gaussians


@dataclass
class TrainConfig:
    steps: int = 3000
    num_gaussians: int = 15000
    backend: str = "auto"
    seed: int = 0
    ssim_weight: float = 0.2
    alpha_weight: float = 0.1
    code_weight: float = 1e-3
    interp_weight: float = 0.1
    leak_weight: float = 0.05
    gate_weight: float = 1e-3
    seed_anchor_weight: float = 1.0   # 0: off (then seeded accessories fade out within a few dozen steps)
    seed_anchor_samples: int = 64     # seeds of each variant per step
    seed_color_weight: float = 0.05   # of the seed anchor: accessory seeds' colour held near their material's
    seed_geometry_weight: float = 1.0  # of the seed anchor: the branch leaves accessory seeds where they were seeded
    checkpoint_every: int = 500
    lr: dict = field(default_factory=lambda: {
        "position": 2e-3, "quat": 2e-3, "log_scale": 5e-3, "opacity_logit": 5e-2, "color_logit": 2.5e-2,
        "feature": 2e-3, "gate_logit": 1e-2, "codes": 1e-2, "field": 5e-3})
    densify: DensifyConfig = field(default_factory=DensifyConfig)

    def with_steps(self, steps: int) -> "TrainConfig":
        """This config for a run of `steps` steps. Densification then ends by `DENSIFY_SHARE` of the run
        (the presets' 4000 of 6000 and 10000 of 15000), so a short run also ends on a fixed set of
        Gaussians: a 2500-step draft used to densify until step 2400."""
        stop = min(self.densify.stop_step, int(DENSIFY_SHARE * steps))
        return replace(self, steps=int(steps), densify=replace(self.densify, stop_step=stop))

    @classmethod
    def preset(cls, name: str) -> "TrainConfig":
        """'cpu': small and quick for 2 cores; 'cuda': the full recipe for a GPU."""
        if name == "cpu":
            return cls(steps=6000, num_gaussians=16000,
                       densify=DensifyConfig(start_step=300, stop_step=4000, interval=200, max_gaussians=28000))
        if name == "cuda":
            return cls(steps=15000, num_gaussians=40000,
                       densify=DensifyConfig(start_step=500, stop_step=10000, interval=300, max_gaussians=120000))
        raise PerseError(f"unknown training preset '{name}'; use cpu or cuda")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["densify"] = DensifyConfig(**data.get("densify", {}))
        return cls(**data)


def categories_of(dataset) -> list[Category]:
    return [Category.from_dict(c.to_dict()) for c in dataset.categories]


def head_model_for(dataset, flame: str | None = None, flame_embedding: str | None = None):
    """The head model a dataset was made with: the built-in head, or the user's FLAME file (checked by
    sha256 against the dataset's record)."""
    from perse.head.registry import load_head_model

    info = getattr(dataset, "head_info", {}) or {}
    if info.get("kind", "builtin") != "flame":
        return load_head_model(None)
    model = load_head_model(flame or "flame", flame_embedding)
    want = info.get("sha256")
    if want and model.meta.get("sha256") != want:
        raise PerseError(f"the FLAME file given is not the one dataset {dataset.root} was made with "
                         f"(sha256 {str(want)[:12]}…); choose that FLAME file", setting="flame")
    return model


class Trainer:
    """Holds the avatar, the optimiser and the densifier; `run()` trains with progress and checkpoints."""

    def __init__(self, avatar: Avatar, dataset, cfg: TrainConfig, device: str | torch.device = "cpu"):
        self.avatar = avatar.to(device).train()
        self.dataset = dataset
        self.cfg = cfg
        self.device = torch.device(device)
        self.step = 0
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.densifier = BindingDensifier(cfg.densify, avatar.num_gaussians, self.device)
        self.train_indices = dataset.indices("train")
        if not self.train_indices:
            raise PerseError(f"dataset {dataset.root} has no training frames")
        self.category_names = [c.name for c in avatar.categories]
        targets = getattr(avatar, "seed_targets", None)  # a fresh seeded avatar's (checkpoints: restored)
        self.seed_targets = targets if targets is not None and len(targets) else None
        self.history: list[dict] = []
        self._build_optimizer()

    # -- optimiser ------------------------------------------------------------------------------
    def _build_optimizer(self) -> None:
        """One Adam, a param group per Gaussian field (densification edits those in place,
        `perse.train.ops`), one for the latent codes and one for the field's branches."""
        lr = self.cfg.lr
        groups = [{"params": [self.avatar.gaussians_params[k]], "lr": lr[k], "name": k} for k in GAUSSIAN_FIELDS]
        groups.append({"params": list(self.avatar.latent.parameters()), "lr": lr["codes"], "name": "codes"})
        groups.append({"params": list(self.avatar.field.parameters()), "lr": lr["field"], "name": "field"})
        # fused: one kernel over all groups' tensors (CPU and CUDA); the per-tensor loop cost ~3 ms a step
        self.optimizer = torch.optim.Adam(groups, eps=1e-15, fused=True)

    # -- one step -------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        i = self.train_indices[int(torch.randint(len(self.train_indices), (1,), generator=self.generator))]
        frame = self.dataset.load_frame(i)
        avatar = self.avatar
        look = avatar.latent.look_from_indices(frame.variant_index)
        gaussians, terms = avatar.gaussians_with_terms(AvatarState(frame.params.to(self.device), look))

        background = torch.rand(3, generator=self.generator).to(self.device)
        camera = frame.camera.to(self.device)
        out = render(gaussians, camera, backend=cfg.backend, background=background)
        out.retain_screen_grad()
        alpha_gt = frame.alpha.to(self.device)
        target = frame.image.to(self.device) * alpha_gt + background * (1 - alpha_gt)
        loss_photo = photometric_loss(out.rgb, target, cfg.ssim_weight)
        loss_alpha = alpha_loss(out.alpha, alpha_gt)
        loss_code = code_loss([look.codes[n] for n in self.category_names])
        loss_interp = self._interpolation_loss()
        loss_leak = self._leakage_loss(frame, out, terms, gaussians.means.detach(), camera)
        loss_gate = gate_loss(avatar.gaussians_params["gate_logit"], avatar.region_mask)
        loss_seed = self._seed_anchor_loss()
        loss = (loss_photo + cfg.alpha_weight * loss_alpha + cfg.code_weight * loss_code
                + cfg.interp_weight * loss_interp + cfg.leak_weight * loss_leak + cfg.gate_weight * loss_gate
                + cfg.seed_anchor_weight * loss_seed)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        avatar.invalidate_cache()
        self.step += 1

        screen_grad = out.screen_grad()
        if screen_grad is not None:
            self.densifier.accumulate(screen_grad, out.radii, camera.width, camera.height)
        if self.densifier.due(self.step):
            self._densify()
        return {"loss": loss.item(), "photo": loss_photo.item(), "alpha": loss_alpha.item(),
                "interp": loss_interp.item(), "leak": loss_leak.item(), "seed": loss_seed.item(),
                "n": avatar.num_gaussians}

    def _seed_anchor_loss(self) -> Tensor:
        """`seed_anchor_loss` on one random seeded category, `seed_anchor_samples` seeds of each variant."""
        from perse.avatar.seeds import HIDDEN_LOGIT

        t = self.seed_targets
        if t is None or self.cfg.seed_anchor_weight == 0:
            return torch.zeros((), device=self.device)
        cats = torch.unique(t.category)
        c = int(cats[int(torch.randint(len(cats), (1,), generator=self.generator))])
        picks = []
        for u in torch.unique(t.variant[t.category == c]).tolist():
            hit = ((t.category == c) & (t.variant == u)).nonzero(as_tuple=True)[0]
            picks.append(hit[torch.randperm(hit.numel(), generator=self.generator)[:self.cfg.seed_anchor_samples]])
        pick = torch.cat(picks)
        rows = t.rows[pick].to(self.device)
        spec = self.avatar.categories[c]
        p = self.avatar.gaussians_params
        colors = None if t.color_logit is None else t.color_logit[pick].to(self.device)
        return seed_anchor_loss(self.avatar.field.branches[spec.name], self.avatar.latent.codes[spec.name],
                                p["feature"][rows], p["gate_logit"][rows, c], p["opacity_logit"][rows],
                                t.variant[pick].to(self.device), t.logit[pick].to(self.device), HIDDEN_LOGIT,
                                base_colors=p["color_logit"][rows], target_colors=colors,
                                color_weight=self.cfg.seed_color_weight,
                                geometry_weight=self.cfg.seed_geometry_weight)

    def _interpolation_loss(self) -> Tensor:
        """Midpoint regularizer on one random category and pair of variants, in Gaussian-parameter space."""
        avatar = self.avatar
        cats = [c for c in avatar.categories if len(c.variants) >= 2]
        if not cats or self.cfg.interp_weight == 0:
            return torch.zeros((), device=self.device)
        spec = cats[int(torch.randint(len(cats), (1,), generator=self.generator))]
        a, b = torch.randperm(len(spec.variants), generator=self.generator)[:2].tolist()
        t = float(torch.rand(1, generator=self.generator))
        codes = avatar.latent.codes[spec.name]
        p = avatar.gaussians_params
        return interpolation_loss(avatar.field, spec.name, codes[a], codes[b], t, p["feature"], p["gate_logit"],
                                  avatar.region_mask)

    def _leakage_loss(self, frame, out, terms: dict[str, tuple[Tensor, Tensor]], means: Tensor, camera) -> Tensor:
        """`leakage_loss` of this frame's switched categories, against the dataset's per-category region
        masks. terms: the step's `AttributeField.terms`; means: (N, 3) world-space centres (detached)."""
        avatar = self.avatar
        cam_depths = means @ camera.world_to_cam[2, :3] + camera.world_to_cam[2, 3]
        bits, visible = splat_regions(out.means2d.detach(), out.radii, cam_depths, out.depth.detach(),
                                      frame.regions.to(self.device))
        switched = [(c, *terms[spec.name]) for c, spec in enumerate(avatar.categories)
                    if frame.variant_index[spec.name] != spec.index(spec.reference) and spec.name in terms]
        return leakage_loss(switched, bits, visible)

    @torch.no_grad()
    def _densify(self) -> None:
        avatar = self.avatar
        world_scale = avatar.gaussians().scales.max(dim=-1).values
        max_opacity = self._max_opacity_over_looks()
        done = self.densifier.densify_and_prune(avatar, world_scale, max_opacity, self.generator, self.optimizer)
        if self.seed_targets is not None:  # follow the seeds to their new rows
            self.seed_targets = self.seed_targets.remap(done.remap)
            avatar.seed_targets = self.seed_targets
        self.history.append({"step": self.step, "densify": done.counts()})

    def _max_opacity_over_looks(self) -> Tensor:
        """(N,) opacity maximised over every single-category variant of the reference look."""
        avatar = self.avatar
        best = torch.sigmoid(avatar.local_gaussians(avatar.latent.reference_look()).opacity_logit)
        for spec in avatar.categories:
            for v in spec.variants:
                look = avatar.latent.reference_look().with_code(spec.name, avatar.latent.variant_code(spec.name, v))
                best = torch.maximum(best, torch.sigmoid(avatar.local_gaussians(look).opacity_logit))
        avatar.invalidate_cache()
        return best

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> None:
        tensors, meta = pack_avatar(self.avatar, self.summary())
        state = {"step": self.step, "tensors": tensors, "meta": meta, "config": self.cfg.to_dict(),
                 "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": self.history,
                 "seed_targets": None if self.seed_targets is None else self.seed_targets.to_dict()}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def from_checkpoint(cls, path: str | Path, dataset, device: str = "cpu") -> "Trainer":
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            avatar = unpack_avatar(state["tensors"], state["meta"], Path(path))
            trainer = cls(avatar, dataset, TrainConfig.from_dict(state["config"]), device)
            trainer.optimizer.load_state_dict(state["optimizer"])
        except PerseError:
            raise
        except Exception as exc:
            raise PerseError(f"cannot resume from checkpoint {path} ({str(exc).splitlines()[0][:120]}); "
                             f"delete it to start over") from None
        trainer.step = state["step"]
        trainer.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        trainer.history = state.get("history", [])
        if state.get("seed_targets") is not None:
            from perse.avatar.seeds import SeedTargets

            trainer.seed_targets = SeedTargets.from_dict(state["seed_targets"])
            trainer.avatar.seed_targets = trainer.seed_targets
        return trainer

    def summary(self) -> dict:
        losses = [h for h in self.history if "loss" in h]
        last = losses[-1] if losses else {}
        return {"steps": self.step, "num_gaussians": self.avatar.num_gaussians, "backend": self.cfg.backend,
                "dataset": str(getattr(self.dataset, "root", "")), "final_loss": last.get("loss"),
                "config": self.cfg.to_dict(),
                "densify": [h for h in self.history if "densify" in h]}

    # -- the loop -------------------------------------------------------------------------------
    def run(self, out_path: str | Path, checkpoint_path: str | Path | None = None, progress: bool = True,
            on_step: Callable[[int, dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Path:
        """Train to `cfg.steps`, then write the avatar to `out_path`. Ctrl-C (SIGINT), or `should_stop()`
        returning True (a UI's cancel button), stops at the end of the current step, writes a checkpoint,
        and raises KeyboardInterrupt."""
        from tqdm import tqdm

        out_path = Path(out_path)
        checkpoint_path = Path(checkpoint_path) if checkpoint_path else out_path.with_suffix(".ckpt")
        stop = {"requested": False}
        previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame):  # finish the step, then stop cleanly
            stop["requested"] = True

        in_main = _in_main_thread()
        if in_main:
            signal.signal(signal.SIGINT, request_stop)
        bar = tqdm(total=self.cfg.steps, initial=self.step, desc="train", unit="step", disable=not progress,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            while self.step < self.cfg.steps:
                stats = self.train_step()
                if self.step % 10 == 0 or self.step == self.cfg.steps:
                    self.history.append({"step": self.step, **stats})
                    bar.set_postfix(loss=f"{stats['loss']:.4f}", n=stats["n"])
                bar.update(1)
                if on_step:
                    on_step(self.step, stats)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self.save_checkpoint(checkpoint_path)
                if stop["requested"] or (should_stop is not None and should_stop()):
                    self.save_checkpoint(checkpoint_path)
                    bar.close()
                    raise KeyboardInterrupt(f"training interrupted at step {self.step}; checkpoint saved to "
                                            f"{checkpoint_path} (training can resume from it)")
        finally:
            bar.close()
            if in_main:
                signal.signal(signal.SIGINT, previous)
        summary = self.summary()
        summary["train_seconds"] = round(time.perf_counter() - t0, 1)
        self.avatar.eval()
        save_avatar(self.avatar, out_path, training=summary)
        return out_path


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def new_avatar_for_dataset(dataset, cfg: TrainConfig, head=None) -> Avatar:
    """A fresh avatar on the dataset's head model (identity = the first frame's), initialised for
    its categories, with Gaussians seeded on the dataset's accessory and mouth geometry when it has
    seeds (`perse.avatar.seeds`; older datasets have none)."""
    from perse.avatar.seeds import load_seeds

    head = head if head is not None else head_model_for(dataset)
    first = dataset.load_frame(dataset.indices()[0]).params
    identity = None if first.identity is None else first.identity[0]
    hair = dataset.hair_layer(head.num_vertices)
    return Avatar.initialize(head, categories_of(dataset), num_gaussians=cfg.num_gaussians,
                             identity=identity, seed=cfg.seed,
                             surface_offset=None if hair is None else torch.from_numpy(hair.thickness),
                             seeds=load_seeds(dataset.root))


