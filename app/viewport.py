"""The studio's display path: a DearPyGui *static* texture written with OpenGL (host) or CUDA-GL interop.

Why a static texture: DearPyGui re-uploads raw and dynamic textures from its own CPU copy every frame,
so anything written into them with GL is overwritten. A static texture is uploaded once and then left
alone, so it keeps our writes. We find its GL name (DPG does not expose it) and write frames into it:

- host path:    frame -> uint8 RGBA (in torch, on the frame's device) -> CPU -> ``glTexSubImage2D``;
- interop path: CUDA frame -> uint8 RGBA on the GPU -> ``cudaMemcpy2DToArrayAsync`` into the texture's
  mapped CUDA array (``cudaGraphicsGLRegisterImage`` via cuda-python). No copy through the host.

Threading: every method that touches GL or DearPyGui (``upload``, ``flush``, ``resize``, ``release``,
``add_image``, ``attach``) must run on the main thread, the one that calls
``dpg.render_dearpygui_frame()``: DPG's GL context is current only there. Render workers hand over
frames; they never call these methods.

Frames smaller than the texture are written into its top-left corner and the attached images show only
that part (``uv_max``), so the "half resolution while dragging" mode needs no texture re-creation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from perse.errors import PerseError

MIN_SIZE = 16  # smaller requests are clamped: DPG/GL cope badly with 0-sized textures
MAX_SIZE = 8192
GL_TEXTURE_2D = 0x0DE1  # the GL enum, also needed by cudaGraphicsGLRegisterImage without importing GL
MARKER_PIXELS = 8  # first-row pixels holding the texture's identity marker until the first upload
_SCAN_NAMES = 4096  # GL texture names scanned when looking for ours (DPG allocates them from 1 upward)


# -- frame conversion (pure, any device) ------------------------------------------------------------

def rgba8(frame: torch.Tensor | np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W, 3|4) uint8 or float in [0, 1] -> contiguous (H, W, 4) uint8 RGBA on the frame's device.

    Numpy input is wrapped without a copy; the conversion runs in torch (multi-threaded on CPU, on
    the GPU for CUDA tensors). `out`, an (H, W, 4) uint8 tensor on the same device, is reused when given.
    """
    if isinstance(frame, np.ndarray):
        frame = np.ascontiguousarray(frame) if frame.flags.writeable else np.array(frame)  # torch needs writeable
        t = torch.from_numpy(frame)
    else:
        t = frame.detach()
    if t.ndim != 3 or t.shape[2] not in (3, 4):
        raise PerseError(f"a viewport frame must be (H, W, 3) or (H, W, 4); got shape {tuple(t.shape)}")
    H, W, C = t.shape
    if out is None or out.shape != (H, W, 4) or out.device != t.device:
        out = torch.empty(H, W, 4, dtype=torch.uint8, device=t.device)
    if t.dtype == torch.uint8:
        out[..., :C].copy_(t)
    elif t.is_floating_point():
        # round-to-nearest: +0.5 then truncation by the uint8 copy; clamp keeps the cast defined
        out[..., :C].copy_(t.mul(255.0).add_(0.5).clamp_(0.0, 255.0))
    else:
        raise PerseError(f"a viewport frame must be uint8 or float; got {t.dtype}")
    if C == 3:
        out[..., 3] = 255
    return out


def clamp_size(width: int, height: int) -> tuple[int, int]:
    """Texture size for a requested size: integers in [MIN_SIZE, MAX_SIZE] (0x0 or 1x1 must not crash)."""
    return (int(min(max(int(width), MIN_SIZE), MAX_SIZE)), int(min(max(int(height), MIN_SIZE), MAX_SIZE)))


def identity_marker(serial: int) -> np.ndarray:
    """(MARKER_PIXELS, 4) uint8: a pattern unique to one texture, written into its first row at creation.

    Used to tell our texture apart from any other GL texture of the same size (an earlier viewport
    texture DPG has not freed yet, another panel's image). Alpha is 255 so the values survive any
    premultiplication; a serial number seeds the bytes so two live textures never share a marker.
    """
    rng = np.random.default_rng(0x9E3779B1 ^ serial)
    marker = rng.integers(0, 256, size=(MARKER_PIXELS, 4), dtype=np.uint8)
    marker[:, 3] = 255
    return marker


# -- upload path decision (pure, testable with fakes) -----------------------------------------------

def load_cuda_runtime():
    """cuda-python's runtime module (``cuda.bindings.runtime``, or the legacy ``cuda.cudart``), or None."""
    try:
        from cuda.bindings import runtime
        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart
        return cudart
    except ImportError:
        return None


def choose_upload_path(is_cuda_tensor: bool, cuda_python_available: bool,
                       register_fn: Callable[[], object]) -> tuple[str, str, object | None]:
    """Decide how frames reach the texture: ("interop" | "host", reason for the status line, handle).

    `register_fn` registers the texture with CUDA and returns the interop handle; it is called only when
    interop is possible, and any exception it raises selects the host path with the error as reason.
    """
    if not is_cuda_tensor:
        return "host", "host upload (frames on CPU)", None
    if not cuda_python_available:
        return "host", "host upload (cuda-python not installed: pip install cuda-python)", None
    try:
        handle = register_fn()
    except Exception as exc:  # noqa: BLE001 - any registration failure means "use the host path"
        return "host", f"host upload (CUDA-GL registration failed: {_one_line(exc)})", None
    return "interop", "CUDA-GL interop", handle


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


# -- CUDA-GL interop ------------------------------------------------------------------------------

class CudaGLImage:
    """A GL texture registered with CUDA; `write` copies a (H, W, 4) uint8 CUDA tensor into it."""

    def __init__(self, cudart, gl_name: int):
        self.cudart = cudart
        flags = int(cudart.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsWriteDiscard)
        self.resource = self._check(cudart.cudaGraphicsGLRegisterImage(gl_name, GL_TEXTURE_2D, flags),
                                    "cudaGraphicsGLRegisterImage")

    def _check(self, result, what: str):
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f"{what}: {getattr(err, 'name', err)}")
        return values[0] if len(values) == 1 else values

    def write(self, rgba: torch.Tensor, stream: int) -> None:
        """Copy rgba (h, w, 4) uint8, contiguous, CUDA, into the texture's top-left corner.

        `stream` (a raw cudaStream_t) should be torch's current stream: the copy is then ordered after
        the kernels that produced the frame, and unmapping orders it before DPG's next draw."""
        rt, h, w = self.cudart, rgba.shape[0], rgba.shape[1]
        self._check(rt.cudaGraphicsMapResources(1, self.resource, stream), "cudaGraphicsMapResources")
        try:
            array = self._check(rt.cudaGraphicsSubResourceGetMappedArray(self.resource, 0, 0),
                                "cudaGraphicsSubResourceGetMappedArray")
            self._check(rt.cudaMemcpy2DToArrayAsync(array, 0, 0, rgba.data_ptr(), w * 4, w * 4, h,
                                                    rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream),
                        "cudaMemcpy2DToArrayAsync")
        finally:
            self._check(rt.cudaGraphicsUnmapResources(1, self.resource, stream), "cudaGraphicsUnmapResources")

    def close(self) -> None:
        if self.resource is not None:
            self.cudart.cudaGraphicsUnregisterResource(self.resource)
            self.resource = None


# -- GL helpers (main thread, DPG's context current) ----------------------------------------------

def find_gl_texture(width: int, height: int, marker: np.ndarray) -> int | None:
    """GL name of the texture of exactly this size whose first row starts with `marker`, or None.

    Scans names 1.._SCAN_NAMES with glIsTexture and compares level-0 sizes; candidates of our size are
    read back once (glGetTexImage) to check the marker, so neither a same-sized texture of another
    panel nor a not-yet-freed earlier viewport texture can be mistaken for ours. The previous
    GL_TEXTURE_2D binding is restored, leaving DPG's state untouched.
    """
    from OpenGL import GL
    from OpenGL.error import GLError

    previous = int(GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D))
    found = []
    try:
        for name in range(1, _SCAN_NAMES + 1):
            if not GL.glIsTexture(name):
                continue
            try:
                GL.glBindTexture(GL.GL_TEXTURE_2D, name)
            except GLError:  # a texture of another target (cube map, array): not ours
                continue
            w = int(GL.glGetTexLevelParameteriv(GL.GL_TEXTURE_2D, 0, GL.GL_TEXTURE_WIDTH))
            h = int(GL.glGetTexLevelParameteriv(GL.GL_TEXTURE_2D, 0, GL.GL_TEXTURE_HEIGHT))
            if (w, h) != (width, height):
                continue
            pack = int(GL.glGetIntegerv(GL.GL_PACK_ALIGNMENT))
            GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 4)
            data = GL.glGetTexImage(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
            GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, pack)
            first_row = np.frombuffer(data, np.uint8, count=MARKER_PIXELS * 4).reshape(MARKER_PIXELS, 4)
            if np.array_equal(first_row, marker):
                found.append(name)
    finally:
        GL.glBindTexture(GL.GL_TEXTURE_2D, previous)
    if len(found) > 1:
        raise PerseError(f"{len(found)} GL textures carry the same viewport marker; cannot tell ours apart")
    return found[0] if found else None


def gl_write(name: int, rgba: np.ndarray) -> None:
    """glTexSubImage2D of (h, w, 4) uint8 contiguous `rgba` at the texture's top-left; row 0 is the top
    row as DPG displays it. Restores the texture binding and unpack state it changes."""
    from OpenGL import GL

    previous = int(GL.glGetIntegerv(GL.GL_TEXTURE_BINDING_2D))
    align = int(GL.glGetIntegerv(GL.GL_UNPACK_ALIGNMENT))
    row_length = int(GL.glGetIntegerv(GL.GL_UNPACK_ROW_LENGTH))
    GL.glBindTexture(GL.GL_TEXTURE_2D, name)
    GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 4)
    GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
    try:
        GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, rgba.shape[1], rgba.shape[0], GL.GL_RGBA,
                           GL.GL_UNSIGNED_BYTE, rgba)
    finally:
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, align)
        GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, row_length)
        GL.glBindTexture(GL.GL_TEXTURE_2D, previous)


# -- the texture ----------------------------------------------------------------------------------

@dataclass
class UploadStats:
    """Timing of the last upload: ms spent converting + writing, the path used, the frame size."""

    ms: float = 0.0
    path: str = "host"
    size: tuple[int, int] = (0, 0)


class ViewportTexture:
    """A DPG static texture the studio writes rendered frames into (main thread only; see module doc).

    Life cycle: create (before or after ``dpg.setup_dearpygui``), show it with ``add_image``/``attach``,
    then each loop iteration ``upload(frame)`` (or ``flush()``) before ``dpg.render_dearpygui_frame()``.
    DPG creates the GL texture while drawing a frame, so frames uploaded before that are kept and
    written by the first ``upload``/``flush`` after it.
    """

    _serial = 0

    def __init__(self, width: int, height: int, background: tuple[float, float, float] = (0.16, 0.17, 0.19),
                 registry: int | str | None = None, allow_interop: bool = True):
        self.background = background
        self.allow_interop = allow_interop  # False forces the host path (benchmarks, a --no-interop flag)
        self.registry = registry
        self.images: list[int | str] = []
        self.tag: int | str | None = None
        self.gl_name: int | None = None
        self.path, self.path_reason = "host", "host upload (no frame yet)"
        self.last = UploadStats()
        self.locate_ms = 0.0  # time of the last GL-name scan
        self._interop: CudaGLImage | None = None
        self._decided_for: bool | None = None  # is_cuda of the frames the path was chosen for
        self._pending: torch.Tensor | None = None
        self._host_buf: torch.Tensor | None = None
        self._dev_buf: torch.Tensor | None = None
        self._create(width, height)

    # -- DPG items ---------------------------------------------------------------------------------
    def _create(self, width: int, height: int) -> None:
        import dearpygui.dearpygui as dpg

        self.width, self.height = clamp_size(width, height)
        ViewportTexture._serial += 1
        self.marker = identity_marker(ViewportTexture._serial)
        data = np.empty((self.height, self.width, 4), np.float32)
        data[...] = (*self.background, 1.0)
        data[0, :MARKER_PIXELS] = self.marker / 255.0  # k/255 floats round back to exactly k in RGBA8
        if self.registry is None:
            self.registry = dpg.add_texture_registry()
        self.tag = dpg.add_static_texture(self.width, self.height, data.ravel(), parent=self.registry)
        self.gl_name = None
        self._decided_for = None
        self._uv = (1.0, 1.0)  # part of the texture the images show (top-left w/W, h/H)

    def add_image(self, **kwargs) -> int | str:
        """A DPG image item showing this texture (kwargs go to ``dpg.add_image``); kept pointed at it."""
        import dearpygui.dearpygui as dpg

        image = dpg.add_image(self.tag, **kwargs)
        self.images.append(image)
        return image

    def attach(self, image: int | str) -> None:
        """Point an existing image item at this texture and keep it pointed after resizes."""
        if image not in self.images:
            self.images.append(image)
        self.repoint(image)

    def repoint(self, image: int | str) -> None:
        """``dpg.configure_item(image, texture_tag=...)`` to the current texture and its shown part."""
        import dearpygui.dearpygui as dpg

        dpg.configure_item(image, texture_tag=self.tag, uv_min=(0.0, 0.0), uv_max=self._uv)

    def resize(self, width: int, height: int, fit_images: bool = True) -> None:
        """Replace the texture by one of a new size (clamped to [MIN_SIZE, MAX_SIZE]); with `fit_images`
        the attached images are also drawn at that size (else they keep their on-screen size).

        Order matters: unregister interop, create the new texture, re-point the images, then delete the
        old one (DPG frees a texture's GL storage only once no image refers to it)."""
        import dearpygui.dearpygui as dpg

        if clamp_size(width, height) == (self.width, self.height):
            return
        self._close_interop()
        old = self.tag
        self._create(width, height)
        self._pending = None  # a frame of the old size cannot go into the new texture
        for image in self.images:
            self.repoint(image)
            if fit_images:
                dpg.configure_item(image, width=self.width, height=self.height)
        dpg.delete_item(old)

    def release(self) -> None:
        """Unregister interop and delete the DPG texture (images showing it must be deleted first)."""
        import dearpygui.dearpygui as dpg

        self._close_interop()
        if self.tag is not None and dpg.does_item_exist(self.tag):
            dpg.delete_item(self.tag)
        self.tag, self.gl_name = None, None

    # -- GL side -----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once the texture's GL name is known (after DPG has drawn a frame with it)."""
        return self.gl_name is not None

    def _locate(self) -> bool:
        if self.gl_name is None:
            t0 = time.perf_counter()
            self.gl_name = find_gl_texture(self.width, self.height, self.marker)
            self.locate_ms = (time.perf_counter() - t0) * 1000.0
        return self.gl_name is not None

    def _close_interop(self) -> None:
        if self._interop is not None:
            try:
                self._interop.close()
            finally:
                self._interop = None

    def _decide(self, is_cuda: bool) -> None:
        self._close_interop()
        self._decided_for = is_cuda
        if is_cuda and not self.allow_interop:
            self.path, self.path_reason = "host", "host upload (interop disabled)"
            return
        cudart = load_cuda_runtime() if is_cuda else None
        self.path, self.path_reason, self._interop = choose_upload_path(
            is_cuda, cudart is not None, lambda: CudaGLImage(cudart, self.gl_name))

    def upload(self, frame: torch.Tensor | np.ndarray) -> float | None:
        """Write a (h, w, 3|4) uint8/float frame (numpy, CPU or CUDA tensor) into the texture's top-left
        corner and set the attached images' ``uv_max`` to show exactly that part.

        Returns the milliseconds spent (conversion + write), or None when DPG has not created the GL
        texture yet: then the frame is kept and written by the next ``upload``/``flush``.
        """
        if not isinstance(frame, (np.ndarray, torch.Tensor)) or frame.ndim != 3:
            raise PerseError(f"a viewport frame must be an (H, W, 3|4) array or tensor; got {type(frame).__name__}"
                             f" of shape {tuple(getattr(frame, 'shape', ()))}")
        h, w = int(frame.shape[0]), int(frame.shape[1])
        if not (0 < h <= self.height and 0 < w <= self.width):
            raise PerseError(f"frame {w}x{h} does not fit the {self.width}x{self.height} viewport texture; "
                             "resize the viewport first")
        is_cuda = isinstance(frame, torch.Tensor) and frame.is_cuda
        if not self._locate():  # one GL scan per texture, not counted in the upload time
            self._pending = rgba8(frame)
            return None
        self._pending = None
        t0 = time.perf_counter()
        if self._decided_for != is_cuda:
            self._decide(is_cuda)
        used = "host"
        if self._interop is not None and is_cuda:
            self._dev_buf = rgba8(frame, self._dev_buf)
            try:
                self._interop.write(self._dev_buf, torch.cuda.current_stream(frame.device).cuda_stream)
                used = "interop"
            except Exception as exc:  # noqa: BLE001 - a failing map/copy falls back, visibly
                self._close_interop()
                self.path, self.path_reason = "host", f"host upload (interop failed: {_one_line(exc)})"
        if used == "host":
            self._write_host(frame)
        self._set_uv(w, h)
        self.last = UploadStats((time.perf_counter() - t0) * 1000.0, used, (w, h))
        return self.last.ms

    def flush(self) -> float | None:
        """Write a frame kept by an early ``upload``, if any, once the texture exists (call every loop)."""
        if self._pending is None:
            return None
        return self.upload(self._pending)

    def _write_host(self, frame: torch.Tensor | np.ndarray) -> None:
        if isinstance(frame, torch.Tensor) and frame.is_cuda:
            rgba = rgba8(frame).cpu().numpy()  # converted on the GPU: a quarter of the float bytes cross
        else:
            a = frame.detach().numpy() if isinstance(frame, torch.Tensor) else frame  # no copy
            if a.dtype == np.uint8 and a.shape[2] == 4 and a.flags.c_contiguous:
                rgba = a  # already what GL takes
            else:
                self._host_buf = rgba8(a, self._host_buf)
                rgba = self._host_buf.numpy()
        gl_write(self.gl_name, rgba)

    def _set_uv(self, w: int, h: int) -> None:
        uv = (w / self.width, h / self.height)
        if uv != self._uv:
            self._uv = uv
            for image in self.images:
                self.repoint(image)
