"""Drives a real DearPyGui window with a ViewportTexture and screenshots each step (used by
test_viewport.py in a subprocess, so DPG's global context never meets other tests).

Usage: python tests/viewport_window.py OUT_DIR. Writes OUT_DIR/<step>.png (the frame buffer) and
OUT_DIR/info.json: for each step, the image item's rectangle and the expected frame (.npy).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.viewport import ViewportTexture  # noqa: E402
from perse.errors import PerseError  # noqa: E402


def quadrants(h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: red top-left, blue top-right, green bottom-left, white bottom-right."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2:] = (0, 0, 255)
    img[h // 2:, : w // 2] = (0, 255, 0)
    img[h // 2:, w // 2:] = (255, 255, 255)
    return img


def gradient(h: int, w: int) -> torch.Tensor:
    """(h, w, 3) float in [0, 1]: red grows to the right, green grows downward, blue 0.5."""
    x = torch.linspace(0, 1, w)[None, :].expand(h, w)
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    return torch.stack([x, y, torch.full((h, w), 0.5)], dim=-1)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    dpg.create_context()
    dpg.create_viewport(title="viewport test", width=640, height=480)
    view = ViewportTexture(200, 120)
    decoy_data = np.tile(np.array([1.0, 0.0, 1.0, 1.0], np.float32), 200 * 120)  # same size, magenta
    with dpg.texture_registry():
        decoy = dpg.add_static_texture(200, 120, decoy_data)
    with dpg.window(tag="main"):
        image = view.add_image()
        decoy_image = dpg.add_image(decoy)
    dpg.set_primary_window("main", True)
    dpg.setup_dearpygui()
    dpg.show_viewport()

    info: dict = {}
    early = view.upload(quadrants(120, 200))  # before DPG made the GL texture: kept for flush()
    info["early_upload"] = early

    def settle(n: int = 2) -> None:
        for _ in range(n):
            view.flush()
            dpg.render_dearpygui_frame()

    def shot(step: str, expected: np.ndarray) -> None:
        settle()
        path = out / f"{step}.png"
        dpg.output_frame_buffer(str(path))
        for _ in range(30):  # DPG writes the file during the next frames
            dpg.render_dearpygui_frame()
            if path.exists() and path.stat().st_size > 0:
                break
        dpg.render_dearpygui_frame()
        np.save(out / f"{step}.npy", expected)
        info[step] = {"rect_min": list(dpg.get_item_rect_min(image)), "rect_size": list(dpg.get_item_rect_size(image)),
                      "decoy_min": list(dpg.get_item_rect_min(decoy_image)), "path": view.path,
                      "reason": view.path_reason, "texture": [view.width, view.height], "ms": view.last.ms}

    settle(1)
    shot("quadrants", quadrants(120, 200))  # written by flush() after the first frame

    info["locate_ms"] = view.locate_ms
    for bad in (np.zeros((121, 200, 3), np.uint8), np.zeros((120, 200), np.uint8)):
        try:
            view.upload(bad)
        except PerseError as exc:
            info.setdefault("errors", []).append(str(exc))

    g = gradient(120, 200)
    info["gradient_ms"] = view.upload(g)
    shot("gradient", np.asarray((g.numpy() * 255 + 0.5).astype(np.uint8)))

    view.resize(150, 90)
    settle(1)
    rgba = np.concatenate([quadrants(90, 150), np.full((90, 150, 1), 255, np.uint8)], -1)
    info["resized_ms"] = view.upload(rgba.astype(np.float32) / 255)
    shot("resized", rgba[..., :3])

    view.upload(torch.from_numpy(quadrants(46, 76)))  # half resolution: shown scaled over the same 150x90
    shot("half", quadrants(90, 150))

    view.resize(1, 1)
    settle(1)
    info["tiny_ms"] = view.upload(np.full((16, 16, 3), 200, np.uint8))
    view.resize(0, 0)
    settle(1)
    shot("tiny", np.full((16, 16, 3), 200, np.uint8))

    (out / "info.json").write_text(json.dumps(info, indent=1))
    view.release()
    dpg.destroy_context()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
