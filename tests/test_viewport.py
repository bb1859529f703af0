"""The studio's display path (app/viewport.py): static texture + GL writes, shown pixel-exact on screen;
the host/interop decision and the interop call sequence with fakes."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from app.viewport import (MIN_SIZE, CudaGLImage, choose_upload_path, clamp_size, identity_marker,
                          rgba8)
from perse.errors import PerseError

SCRIPT = Path(__file__).resolve().parent / "viewport_window.py"


# -- in a real window (subprocess: DPG's context is process-global) -------------------------------

@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("viewport")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, json.loads((out / "info.json").read_text())


def _region(out: Path, step: str, info: dict, key: str = "rect_min") -> tuple[np.ndarray, np.ndarray]:
    """(screen pixels of the image item, expected frame), both (H, W, 3) int."""
    shot = imageio.imread(out / f"{step}.png")[..., :3].astype(int)
    expected = np.load(out / f"{step}.npy").astype(int)
    x, y = (int(v) for v in info[step][key])
    w, h = (int(v) for v in info[step]["rect_size"])
    return shot[y:y + h, x:x + w], expected


needs_display = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (CI starts Xvfb)")


@needs_display
@pytest.mark.gui
def test_static_texture_shows_written_frames_unflipped(shots):
    out, info = shots
    # the first upload came before DPG had made the GL texture: it was kept, then flushed
    assert info["early_upload"] is None
    too_big, not_image = info["errors"]
    assert "does not fit the 200x120" in too_big and "resize" in too_big
    assert "(H, W, 3|4)" in not_image and "(120, 200)" in not_image
    for step in ("quadrants", "gradient"):
        seen, expected = _region(out, step, info)
        assert seen.shape == expected.shape == (120, 200, 3)
        assert np.abs(seen - expected).max() <= 2, step  # exact up to rounding: no flip, no stale frame
        assert info[step]["path"] == "host" and "CPU" in info[step]["reason"]
    # a same-sized DPG texture beside ours was never written (our GL name was found by its marker)
    for step in ("quadrants", "gradient", "resized"):
        shot = imageio.imread(out / f"{step}.png")[..., :3].astype(int)
        x, y = (int(v) for v in info[step]["decoy_min"])
        assert (np.abs(shot[y:y + 120, x:x + 150] - [255, 0, 255]) <= 2).all(), step


@needs_display
@pytest.mark.gui
def test_resize_then_upload_and_half_resolution(shots):
    out, info = shots
    seen, expected = _region(out, "resized", info)
    assert info["resized"]["texture"] == [150, 90] and seen.shape == (90, 150, 3)
    assert np.abs(seen - expected).max() <= 2
    # a 76x46 frame in the 150x90 texture fills the whole image (uv_max), scaled up: compare away from
    # the colour edges, where linear filtering blends neighbours
    seen, expected = _region(out, "half", info)
    inner = np.zeros(seen.shape[:2], bool)
    inner[4:41, 4:71] = inner[49:86, 4:71] = inner[4:41, 79:146] = inner[49:86, 79:146] = True
    assert np.abs(seen[inner] - expected[inner]).max() <= 2
    assert info["half"]["texture"] == [150, 90]


@needs_display
@pytest.mark.gui
def test_tiny_sizes_are_clamped(shots):
    out, info = shots
    assert info["tiny"]["texture"] == [MIN_SIZE, MIN_SIZE]
    seen, expected = _region(out, "tiny", info)
    assert np.abs(seen - expected).max() <= 2


# -- pure parts ---------------------------------------------------------------------------------

def test_choose_upload_path_with_fakes():
    calls = []

    def ok():
        calls.append("register")
        return "handle"

    def fails():
        raise RuntimeError("cudaGraphicsGLRegisterImage: cudaErrorUnknown\nmore detail")

    assert choose_upload_path(False, True, ok) == ("host", "host upload (frames on CPU)", None)
    path, reason, handle = choose_upload_path(True, False, ok)
    assert (path, handle) == ("host", None) and "cuda-python" in reason
    assert calls == []  # nothing is registered unless interop can be used
    path, reason, handle = choose_upload_path(True, True, fails)
    assert (path, handle) == ("host", None)
    assert "cudaErrorUnknown" in reason and "\n" not in reason
    assert choose_upload_path(True, True, ok) == ("interop", "CUDA-GL interop", "handle")
    assert calls == ["register"]


class FakeRuntime:
    """Records cuda-python runtime calls; `fail` names a call that returns an error."""

    cudaError_t = SimpleNamespace(cudaSuccess=0)
    cudaGraphicsRegisterFlags = SimpleNamespace(cudaGraphicsRegisterFlagsWriteDiscard=2)
    cudaMemcpyKind = SimpleNamespace(cudaMemcpyDeviceToDevice=3)

    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def _ret(self, name, *values):
        self.calls.append(name)
        return (7 if name == self.fail else 0, *values)

    def cudaGraphicsGLRegisterImage(self, name, target, flags):
        self.register_args = (name, target, flags)
        return self._ret("register", "resource")

    def cudaGraphicsMapResources(self, count, resource, stream):
        return self._ret("map")

    def cudaGraphicsSubResourceGetMappedArray(self, resource, index, level):
        return self._ret("array", "array")

    def cudaMemcpy2DToArrayAsync(self, dst, w_off, h_off, src, spitch, width, height, kind, stream):
        self.copy_args = (dst, w_off, h_off, spitch, width, height, kind, stream)
        return self._ret("copy")

    def cudaGraphicsUnmapResources(self, count, resource, stream):
        return self._ret("unmap")

    def cudaGraphicsUnregisterResource(self, resource):
        return self._ret("unregister")


def test_interop_call_sequence_with_a_fake_runtime():
    rt = FakeRuntime()
    image = CudaGLImage(rt, 5)
    assert rt.register_args == (5, 0x0DE1, 2)
    image.write(torch.zeros(30, 40, 4, dtype=torch.uint8), stream=99)
    assert rt.calls == ["register", "map", "array", "copy", "unmap"]
    assert rt.copy_args == ("array", 0, 0, 160, 160, 30, 3, 99)  # pitch = width = 40 px * 4 bytes
    image.close()
    image.close()  # idempotent
    assert rt.calls[-1] == "unregister" and rt.calls.count("unregister") == 1

    rt = FakeRuntime(fail="copy")
    image = CudaGLImage(rt, 5)
    with pytest.raises(RuntimeError, match="cudaMemcpy2DToArrayAsync"):
        image.write(torch.zeros(4, 4, 4, dtype=torch.uint8), stream=0)
    assert rt.calls[-1] == "unmap"  # the texture is never left mapped

    with pytest.raises(RuntimeError, match="cudaGraphicsGLRegisterImage"):
        CudaGLImage(FakeRuntime(fail="register"), 5)


def test_rgba8_conversion():
    f = torch.tensor([[[0.0, 0.5, 1.0], [-0.2, 1.3, 0.002]]])  # (1, 2, 3)
    out = rgba8(f)
    assert out.dtype == torch.uint8 and out.shape == (1, 2, 4) and out.is_contiguous()
    assert out.tolist() == [[[0, 128, 255, 255], [0, 255, 1, 255]]]
    u = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(rgba8(u).numpy(), u)  # RGBA uint8 keeps its alpha
    buf = torch.empty(2, 3, 4, dtype=torch.uint8)
    assert rgba8(u[..., :3], out=buf) is buf and (buf[..., 3] == 255).all()
    assert torch.equal(rgba8(np.asarray(f.numpy(), np.float64)), out)
    with pytest.raises(PerseError, match="H, W, 3"):
        rgba8(np.zeros((4, 4)))
    with pytest.raises(PerseError, match="uint8 or float"):
        rgba8(np.zeros((4, 4, 3), np.int32))


def test_clamp_size_and_marker():
    assert clamp_size(0, 0) == (MIN_SIZE, MIN_SIZE)
    assert clamp_size(1, 700) == (MIN_SIZE, 700)
    assert clamp_size(-5, 10**6) == (MIN_SIZE, 8192)
    a, b = identity_marker(1), identity_marker(2)
    assert a.shape == (8, 4) and (a[:, 3] == 255).all()
    assert not np.array_equal(a, b) and np.array_equal(a, identity_marker(1))
