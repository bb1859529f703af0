"""Writing frame sequences: H.264 `yuv420p` MP4 (plays everywhere) or a folder of PNGs.

Both writers are atomic: an MP4 goes to a temporary file renamed at the end; a PNG folder is built as a
hidden sibling folder renamed at the end. Cancelling (the `cancel` callback returns True, Ctrl-C, an
exception) leaves nothing under the output name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from perse.errors import PerseError
from perse.io_utils import atomic_path, check_writable_parent


class ExportCancelled(Exception):
    """Raised when the cancel callback asks to stop; nothing was written."""


def to_uint8(frame) -> np.ndarray:
    """(H, W, 3) float tensor/array in [0, 1] or uint8 -> contiguous uint8 array."""
    if hasattr(frame, "detach"):
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(frame)


def is_png_folder_target(path: str | os.PathLike) -> bool:
    """`--out` names a folder (exists as one, or ends with a separator / has no suffix)."""
    p = Path(path)
    return p.is_dir() or str(path).endswith(os.sep) or p.suffix == ""


def check_video_target(out: str | os.PathLike) -> Path:
    """Validate an export target before any work: a writable .mp4 path or a new/empty folder."""
    out = Path(out)
    if is_png_folder_target(out):
        if out.exists() and any(out.iterdir()):
            raise PerseError(f"output folder {out} is not empty; choose a new folder")
        check_writable_parent(out)
        return out
    if out.suffix.lower() != ".mp4":
        raise PerseError(f"cannot write video {out}: use a .mp4 file name or a folder for PNG frames")
    return check_writable_parent(out)


def write_frames(frames: Iterable, out: str | os.PathLike, fps: int = 30,
                 cancel: Callable[[], bool] | None = None,
                 on_frame: Callable[[int], None] | None = None) -> Path:
    """Write frames (H, W, 3) to an MP4 file or a PNG folder (chosen by `is_png_folder_target`)."""
    if fps <= 0:
        raise PerseError(f"the frame rate must be positive (got {fps})", setting="fps")
    out = check_video_target(out)
    if is_png_folder_target(out):
        return _write_png_folder(frames, out, cancel, on_frame)
    import imageio.v2 as imageio

    with atomic_path(out) as tmp:
        writer = imageio.get_writer(str(tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=1, quality=8,
                                    ffmpeg_log_level="error")
        try:
            for i, frame in enumerate(frames):
                if cancel is not None and cancel():
                    raise ExportCancelled(str(out))
                img = to_uint8(frame)
                if img.shape[0] % 2 or img.shape[1] % 2:  # yuv420p needs even sizes
                    img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
                writer.append_data(img)
                if on_frame:
                    on_frame(i)
        finally:
            writer.close()
    return out


def _write_png_folder(frames: Iterable, out: Path, cancel, on_frame) -> Path:
    import imageio.v2 as imageio

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for i, frame in enumerate(frames):
            if cancel is not None and cancel():
                raise ExportCancelled(str(out))
            imageio.imwrite(tmp / f"{i:05d}.png", to_uint8(frame))
            if on_frame:
                on_frame(i)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_png(image, path: str | os.PathLike) -> None:
    """One image (H, W, 3|4) to a PNG, atomically."""
    import imageio.v2 as imageio

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise PerseError(f"cannot write {path}: the image output must end in .png")
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, to_uint8(image))
