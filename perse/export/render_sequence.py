"""Rendering an animation preset to a file: the one export path of the CLI and the studio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from perse.avatar.latent import Look
from perse.avatar.model import Avatar
from perse.export.presets import check_preset, sequence
from perse.export.video import check_video_target, write_frames
from perse.motion import Take
from perse.render import render
from perse.render.framing import orbit_view


@dataclass
class ExportSettings:
    preset: str
    out: Path
    frames: int = 90
    fps: int = 30
    size: int = 512
    backend: str = "auto"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    category: str | None = None   # morph: sweep this category's variants
    look: Look | None = None      # base look (morph: start look)
    look_b: Look | None = None    # morph: end look
    take: Take | None = None      # take: a recorded take played at `fps`
    # compose(i, frame) -> image: e.g. the driving video beside the avatar (frame: (S, S, 3) uint8)
    compose: Callable[[int, np.ndarray], np.ndarray] | None = None


def export_preset(avatar: Avatar, s: ExportSettings, cancel: Callable[[], bool] | None = None,
                  on_frame: Callable[[int, int], None] | None = None) -> Path:
    """Render `s.frames` frames of a preset and write them atomically (MP4 or PNG folder).

    cancel: polled before each frame; returning True raises ExportCancelled and leaves no file.
    on_frame(i, total): progress callback after each written frame.
    """
    from perse.export.video import to_uint8

    check_video_target(s.out)
    check_preset(avatar, s.preset, s.frames, s.category, s.look_b, s.take)
    with torch.no_grad():
        verts = avatar.head_vertices(avatar.reference_state().head)
    states = list(sequence(avatar, s.preset, s.frames, s.look, s.category, s.look_b, s.take, s.fps))
    background = torch.tensor(s.background, dtype=torch.float32)

    def frames():
        with torch.no_grad():
            for i, (state, yaw, pitch) in enumerate(states):
                rgb = render(avatar.gaussians(state), orbit_view(verts, yaw, pitch, s.size),
                             backend=s.backend, background=background).rgb
                yield s.compose(i, to_uint8(rgb)) if s.compose is not None else rgb

    total = len(states)
    return write_frames(frames(), s.out, fps=s.fps, cancel=cancel,
                        on_frame=(lambda i: on_frame(i + 1, total)) if on_frame else None)
