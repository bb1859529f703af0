"""Quality presets of `perse create`: dataset size, texture size, training length and stage costs."""

from __future__ import annotations

from dataclasses import dataclass

from perse.errors import PerseError


@dataclass(frozen=True)
class Quality:
    name: str
    image_size: int            # dataset frames
    frames_per_variant: int
    texture_size: int
    cpu_steps: int
    cuda_steps: int
    num_gaussians: int
    # rough stage costs in seconds on the 2-core CPU, one per stage (`perse.create.stages.STAGES`), for
    # the overall ETA before a stage has run
    expected_s: tuple[float, ...]
    # frames of the portrait's own view (`perse.synth.reference.ReferenceView.frames`), about 6 % of the
    # dataset: at 1 % (8 of 712) the avatar's reference view kept only 19.5 dB on the face, its smile
    # and eyes averaged away by the many other views of the same Gaussians
    reference_frames: int = 8
    # learning rate of the latent codes (None: `TrainConfig`'s own, 1e-2). A draft shows each variant's code
    # in about 100 steps; at 1e-2 Adam walked rare, small variants' codes onto the reference code: the
    # goatee trained in 0 of 6 CPU drafts, all three eyebrow variants in none of one. At 2e-3 the codes stay
    # apart: goatee in 3 of 3, 22-23 of 23 variants visible (one dataset, three seeds)
    code_lr: float | None = None

    def train_config(self, device: str, backend: str, seed: int):
        """The `TrainConfig` of a create run: the device's preset cut to this quality's steps, with its
        Gaussian count and (where it sets one) its code learning rate."""
        from dataclasses import replace

        from perse.train.trainer import TrainConfig

        cfg = TrainConfig.preset(device).with_steps(self.cuda_steps if device == "cuda" else self.cpu_steps)
        cfg = replace(cfg, num_gaussians=self.num_gaussians, backend=backend, seed=seed)
        if self.code_lr is not None:
            cfg = replace(cfg, lr={**cfg.lr, "codes": self.code_lr})
        return cfg


QUALITIES = {
    # 2250 CPU steps: at 2500 a draft took 10.0-10.7 min end to end on 2 cores (0.22-0.24 s a step), over
    # the 10 min a draft may take
    "draft": Quality("draft", 256, 8, 512, 2250, 6000, 12000, (3, 2, 9, 30, 510, 10, 1), reference_frames=16,
                     code_lr=2e-3),
    "standard": Quality("standard", 256, 24, 1024, 6000, 15000, 16000, (3, 2, 10, 60, 900, 30, 2),
                        reference_frames=44),
    "high": Quality("high", 512, 32, 1024, 12000, 30000, 40000, (3, 2, 12, 200, 3600, 60, 2),
                    reference_frames=60),
}


def resolve_quality(quality: str | Quality) -> Quality:
    """A preset by name, or `quality` itself when it already is one."""
    if isinstance(quality, Quality):
        return quality
    if quality in QUALITIES:
        return QUALITIES[quality]
    raise PerseError(f"unknown quality '{quality}'; choose one of: {', '.join(QUALITIES)}", setting="quality")
