"""A dataset of frames an avatar renders of itself: for benchmarks and tests that need training frames
without generating a synthetic dataset. Implements the same protocol as `perse.synth.dataset`."""

from __future__ import annotations

import torch

from perse.avatar.model import Avatar, AvatarState
from perse.export.presets import expression_at, expression_keyframes
from perse.motion import head_params
from perse.render import render
from perse.render.framing import orbit_view
from perse.synth.dataset import Frame


class SelfRenderedDataset:
    """`num_frames` renders of `avatar` at varied expressions and yaw, reference look, black background."""

    def __init__(self, avatar: Avatar, num_frames: int = 8, size: int = 256, backend: str = "cpu", seed: int = 0):
        self.root = "<self-rendered>"
        self.avatar = avatar
        g = torch.Generator().manual_seed(seed)
        keyframes = expression_keyframes(avatar)
        ref_index = {c.name: c.index(c.reference) for c in avatar.categories}
        self.frames = []
        with torch.no_grad():
            verts = avatar.head_vertices(avatar.reference_state().head)
            for i in range(num_frames):
                expr, jaw = expression_at(keyframes, float(torch.rand(1, generator=g)))
                params = head_params(expr, jaw, avatar.identity)
                camera = orbit_view(verts, float(torch.rand(1, generator=g)) * 60 - 30, 0.0, size)
                out = render(avatar.gaussians(AvatarState(params)), camera, backend=backend,
                             background=torch.zeros(3))
                # The dataset format stores straight (un-premultiplied) colour.
                straight = torch.where(out.alpha > 1e-4, out.rgb / out.alpha.clamp_min(1e-4), torch.zeros_like(out.rgb))
                self.frames.append(Frame(image=straight.clamp(0, 1), alpha=out.alpha,
                                         regions=torch.zeros(size, size, dtype=torch.long), camera=camera,
                                         params=params, variant_index=ref_index, split="train", index=i))
        self.categories = list(avatar.categories)
        self.head_info = {"kind": avatar.head.kind}

    def indices(self, split: str | None = None) -> list[int]:
        return list(range(len(self.frames)))

    def load_frame(self, i: int) -> Frame:
        return self.frames[i]
