"""`perse eval`: quality of an avatar on a dataset's held-out frames.

- PSNR / SSIM per category: test frames grouped by the category switched away from the reference
  ("reference" when none is), rendered on black like the targets.
- Interpolation smoothness, per category and variant: images along the code path reference -> variant at
  t = 0, 1/4, ..., 1. `nonlinearity` = mean |I(1/2) - (I(0) + I(1)) / 2| / mean |I(1) - I(0)| (0: the
  path is a straight cross-fade in image space); `max_step` = largest step / total change (0.25 ideal).
- Leakage, per category: on test frames where only that category is switched, the mean absolute pixel
  change (0..255) outside the category's region mask between the frame's look and the same look with
  that category set back to the reference.
"""

from __future__ import annotations

import torch

from perse.avatar.model import Avatar, AvatarState
from perse.render import render
from perse.train.losses import psnr, ssim

INTERP_STEPS = 5


def _switched(avatar: Avatar, variant_index: dict[str, int]) -> list[str]:
    return [c.name for c in avatar.categories if variant_index[c.name] != c.index(c.reference)]


@torch.no_grad()
def evaluate(avatar: Avatar, dataset, backend: str = "auto", max_frames: int = 0) -> dict:
    avatar = avatar.eval()
    black = torch.zeros(3)
    test = dataset.indices("test")
    if max_frames:
        test = test[:max_frames]
    groups: dict[str, list[tuple[float, float]]] = {}
    leak: dict[str, list[float]] = {}
    all_psnr, all_ssim = [], []
    for i in test:
        f = dataset.load_frame(i)
        look = avatar.latent.look_from_indices(f.variant_index)
        look = type(look)({k: v.detach() for k, v in look.codes.items()})
        state = AvatarState(f.params, look)
        img = render(avatar.gaussians(state), f.camera, backend=backend, background=black).rgb
        target = f.image * f.alpha
        p, s = psnr(img, target), float(ssim(img, target))
        all_psnr.append(p)
        all_ssim.append(s)
        switched = _switched(avatar, f.variant_index)
        key = switched[0] if len(switched) == 1 else ("reference" if not switched else "mixed")
        groups.setdefault(key, []).append((p, s))
        if len(switched) == 1:
            c = switched[0]
            bit = [s.name for s in avatar.categories].index(c)
            ref_code = avatar.latent.variant_code(c, avatar.latent.category(c).reference).detach()
            base = render(avatar.gaussians(AvatarState(f.params, look.with_code(c, ref_code))), f.camera,
                          backend=backend, background=black).rgb
            outside = ((f.regions >> bit) & 1) == 0
            if outside.any():
                leak.setdefault(c, []).append(float((img - base).abs().mean(-1)[outside].mean()) * 255)
    report = {
        "frames": len(test),
        "psnr": _mean(all_psnr), "ssim": _mean(all_ssim),
        "per_category": {k: {"frames": len(v), "psnr": _mean([a for a, _ in v]), "ssim": _mean([b for _, b in v])}
                         for k, v in sorted(groups.items())},
        "leakage_255": {k: _mean(v) for k, v in sorted(leak.items())},
        "interpolation": interpolation_smoothness(avatar, dataset, backend) if test else {},
    }
    return report


@torch.no_grad()
def interpolation_smoothness(avatar: Avatar, dataset, backend: str) -> dict:
    f = dataset.load_frame(dataset.indices("test")[0])
    ref = avatar.latent.reference_look()
    out = {}
    for spec in avatar.categories:
        for v in spec.variants:
            if v == spec.reference:
                continue
            ts = [k / (INTERP_STEPS - 1) for k in range(INTERP_STEPS)]
            imgs = [render(avatar.gaussians(AvatarState(f.params, avatar.latent.blend(ref, spec.name, v, t))),
                           f.camera, backend=backend, background=torch.zeros(3)).rgb for t in ts]
            total = float((imgs[-1] - imgs[0]).abs().mean())
            if total < 1e-6:
                continue
            mid = imgs[INTERP_STEPS // 2]
            nonlin = float((mid - (imgs[0] + imgs[-1]) / 2).abs().mean()) / total
            steps = [float((b - a).abs().mean()) / total for a, b in zip(imgs, imgs[1:])]
            out[f"{spec.name}={v}"] = {"nonlinearity": round(nonlin, 4), "max_step": round(max(steps), 4)}
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def format_report(r: dict) -> str:
    lines = [f"held-out frames: {r['frames']}   PSNR {r['psnr']} dB   SSIM {r['ssim']}", "per category:"]
    for k, v in r["per_category"].items():
        lines.append(f"  {k:<12} {v['frames']:>4} frames  PSNR {v['psnr']} dB  SSIM {v['ssim']}")
    if r["leakage_255"]:
        lines.append("leakage outside the moved category's region (mean |change|, 0..255):")
        for k, v in r["leakage_255"].items():
            lines.append(f"  {k:<12} {v}")
    if r["interpolation"]:
        lines.append("interpolation (nonlinearity 0 = linear cross-fade; max_step 0.25 = even):")
        for k, v in r["interpolation"].items():
            lines.append(f"  {k:<22} nonlinearity {v['nonlinearity']}  max_step {v['max_step']}")
    return "\n".join(lines)
