"""`MeshRenderer`: offscreen OpenGL rendering of triangle meshes seen by an OpenCV `Camera`.

One `render()` call produces, for the same camera:

- rgb / alpha: a lit (or unlit) colour image, 4x MSAA, opaque meshes first, then meshes with
  ``opacity < 1`` blended back to front over them (depth-tested, no depth writes);
- depth / normals / labels: a single-sampled geometry pass over the opaque meshes (so depth and
  labels are never averaged across silhouettes): camera-space z in metres, camera-space unit normals
  (OpenCV axes: x right, y down, z forward; turned toward the camera), and per-triangle labels.

Conventions. Pixel (0, 0) is the centre of the top-left pixel and rows go top to bottom, exactly as
`Camera.project`'s (u, v). Texture coordinates follow OBJ / FLAME: uv (0, 0) is the bottom-left corner
of the texture image (the last row of the array), v grows upward.

Meshes are drawn as triangle soups (3 vertices per face), so position-indexed attributes (normals,
colours) and separately-indexed uvs (``uv_faces``) mix freely; GL buffers, targets and textures are
reused between calls.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from perse.errors import PerseError
from perse.mesh_ops import face_normals, vertex_normals
from perse.paths import SHADERS_DIR
from perse.render.gl.context import GLContext, create_gl_context

if TYPE_CHECKING:  # keeps `import perse.render.gl` free of torch
    from perse.render.camera import Camera

log = logging.getLogger(__name__)

_FLOATS_PER_VERTEX = 11  # position 3, normal 3, colour 3, uv 2
_MAX_CACHED_TEXTURES = 16


# ----------------------------------------------------------------------------------------------
# Data classes
# ----------------------------------------------------------------------------------------------

@dataclass
class Mesh:
    """A triangle mesh in world space (numpy arrays or torch tensors).

    vertices: (V, 3) float positions (metres, world frame).
    faces: (F, 3) int vertex indices.
    colors: (V, 3) optional per-vertex RGB in [0, 1].
    uvs: (T, 2) optional texture coordinates (OBJ convention, (0, 0) = bottom-left of the image);
        uv_faces: (F, 3) int indices into uvs (defaults to `faces` when T == V);
        texture: (H, W, 3 | 4) uint8 or float in [0, 1]; texels with alpha < 0.5 are cut out.
        Textures are cached by object identity: after editing one in place, pass a copy.
    face_labels: (F,) optional int labels written to `MeshRender.labels` (0 means none).
    color: flat RGB used when the mesh has neither vertex colours nor a texture (a tint otherwise ignored).
    opacity: 1 = opaque; in (0, 1) blended after all opaque meshes (e.g. sunglass lenses); 0 = hidden.
    specular: Blinn-Phong specular strength (0 = matte; ~0.5 for glossy frames).
    smooth: interpolate area-weighted vertex normals (True) or use flat face normals (False).
    unlit: show this mesh's albedo as is, whatever the lighting (e.g. a photo texture whose lighting
        is already baked in, next to lit accessory geometry).
    """

    vertices: Any
    faces: Any
    colors: Any = None
    uvs: Any = None
    uv_faces: Any = None
    texture: Any = None
    face_labels: Any = None
    color: tuple[float, float, float] = (0.7, 0.7, 0.7)
    opacity: float = 1.0
    specular: float = 0.04
    smooth: bool = True
    unlit: bool = False


@dataclass
class Lighting:
    """A camera-space studio rig: Lambert key + fill + ambient, Blinn-Phong highlights.

    Directions are in OpenCV camera axes (x right, y down, z forward), pointing from the surface
    toward the light; they are normalised on use. The defaults light a face from the upper left of the
    camera with a softer fill from the right, so a frontal surface comes out at about 0.95 x albedo.
    unlit: output the albedo as is (albedo maps, region/mask renders).
    """

    key_direction: tuple[float, float, float] = (-0.45, -0.55, -1.0)
    key_intensity: float = 0.6
    fill_direction: tuple[float, float, float] = (0.7, -0.05, -1.0)
    fill_intensity: float = 0.25
    ambient: float = 0.25
    shininess: float = 48.0
    unlit: bool = False


@dataclass
class MeshRender:
    """Render outputs for an (H, W) camera; rows top to bottom like the camera's v coordinate.

    rgb: (H, W, 3) float32 in [0, 1], composited over the background colour.
    alpha: (H, W) float32 coverage: 1 on opaque surfaces (fractional on antialiased edges), the
        accumulated opacity where only translucent meshes are, 0 on background.
    depth: (H, W) float32 camera-space z in metres of the front-most opaque surface (0 = background).
    normals: (H, W, 3) float32 camera-space unit normals, turned toward the camera (0 = background).
    labels: (H, W) int32 face label of the front-most opaque surface (0 = background / unlabelled).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    labels: np.ndarray


# ----------------------------------------------------------------------------------------------
# Pure math
# ----------------------------------------------------------------------------------------------

def projection_matrix(K: np.ndarray, width: int, height: int, near: float, far: float) -> np.ndarray:
    """(4, 4) matrix from OpenCV camera space to GL clip space for intrinsics K (3, 3).

    x_ndc = -1 / +1 at the left / right image borders (u = -0.5 / W - 0.5), and y_ndc = -1 / +1 at
    the top / bottom borders (v = -0.5 / H - 0.5): GL's framebuffer row 0 is then the image's top
    row, so pixels read back in image order. z_ndc = -1 / +1 at z = near / far. Skew K[0, 1] and the
    principal point are honoured exactly.
    """
    K = np.asarray(K, dtype=np.float64)
    fx, s, cx = K[0, 0], K[0, 1], K[0, 2]
    fy, cy = K[1, 1], K[1, 2]
    n, f = float(near), float(far)
    P = np.zeros((4, 4), dtype=np.float64)
    P[0, 0] = 2.0 * fx / width
    P[0, 1] = 2.0 * s / width
    P[0, 2] = 2.0 * (cx + 0.5) / width - 1.0
    P[1, 1] = 2.0 * fy / height
    P[1, 2] = 2.0 * (cy + 0.5) / height - 1.0
    P[2, 2] = (f + n) / (f - n)
    P[2, 3] = -2.0 * f * n / (f - n)
    P[3, 2] = 1.0
    return P.astype(np.float32)


def normal_matrix(world_to_cam: np.ndarray) -> np.ndarray:
    """(3, 3) inverse-transpose of the linear part of a (4, 4) world-to-camera matrix (= R if rigid).

    Uses the cofactor identity inv(M).T = cof(M) / det(M); rows of cof(M) are cross products of rows.
    """
    M = np.asarray(world_to_cam, dtype=np.float64)[:3, :3]
    cof = np.stack([np.cross(M[1], M[2]), np.cross(M[2], M[0]), np.cross(M[0], M[1])])
    det = float(M[0] @ cof[0])
    if abs(det) < 1e-12:
        raise PerseError("camera world_to_cam rotation is singular; build cameras with look_at/orbit_camera")
    return (cof / det).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Input preparation (validation happens here, before any GL call)
# ----------------------------------------------------------------------------------------------

def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor (possibly on GPU)
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception:
        raise PerseError(f"mesh {name} must be an array or tensor, got {type(x).__name__}") from None


def _check_index(idx: np.ndarray, n: int, name: str, where: str) -> np.ndarray:
    if idx.ndim != 2 or idx.shape[1] != 3 or not np.issubdtype(idx.dtype, np.integer):
        raise PerseError(f"{where}: {name} must be an (F, 3) integer array, got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise PerseError(f"{where}: {name} index out of range [0, {n}) (min {idx.min()}, max {idx.max()})")
    return idx.astype(np.int64, copy=False)


@dataclass
class _Prepared:
    data: np.ndarray          # (3F, 11) float32 interleaved attributes
    labels: np.ndarray        # (3F,) int32
    base_color: tuple
    texture: Any              # the user's texture object (cache key) or None
    opacity: float
    specular: float
    mean_world: np.ndarray    # (3,) for back-to-front sorting
    unlit: bool = False


def _prepare(mesh: Mesh, index: int) -> _Prepared:
    where = f"mesh {index}"
    V = _to_numpy(mesh.vertices, "vertices")
    if V.ndim != 2 or V.shape[1] != 3 or not np.issubdtype(V.dtype, np.number):
        raise PerseError(f"{where}: vertices must be a (V, 3) float array, got {V.dtype} {V.shape}")
    V = V.astype(np.float32, copy=False)
    if not np.isfinite(V).all():
        raise PerseError(f"{where}: vertices contain NaN or inf; check the head model output")
    F = _check_index(_to_numpy(mesh.faces, "faces"), V.shape[0], "faces", where)
    n_corners = F.shape[0] * 3
    corners = F.reshape(-1)

    data = np.empty((n_corners, _FLOATS_PER_VERTEX), dtype=np.float32)
    data[:, 0:3] = V[corners]
    if mesh.smooth:
        data[:, 3:6] = vertex_normals(V, F).astype(np.float32)[corners]
    else:
        data[:, 3:6] = np.repeat(face_normals(V, F, normalize=False), 3, axis=0)

    has_colors = mesh.colors is not None
    if has_colors:
        C = _to_numpy(mesh.colors, "colors")
        if C.shape != (V.shape[0], 3):
            raise PerseError(f"{where}: colors must be (V, 3) = ({V.shape[0]}, 3), got {C.shape}")
        data[:, 6:9] = C.astype(np.float32, copy=False)[corners]
    else:
        data[:, 6:9] = 1.0

    texture = mesh.texture
    if texture is not None:
        if mesh.uvs is None:
            raise PerseError(f"{where}: a texture needs uvs (T, 2) (and uv_faces unless T == V)")
        T = _to_numpy(mesh.uvs, "uvs").astype(np.float32, copy=False)
        if T.ndim != 2 or T.shape[1] != 2:
            raise PerseError(f"{where}: uvs must be (T, 2), got {T.shape}")
        if mesh.uv_faces is None:
            if T.shape[0] != V.shape[0]:
                raise PerseError(f"{where}: uvs has {T.shape[0]} rows but there are {V.shape[0]} vertices: "
                                 "pass uv_faces (F, 3)")
            UF = F
        else:
            UF = _check_index(_to_numpy(mesh.uv_faces, "uv_faces"), T.shape[0], "uv_faces", where)
            if UF.shape != F.shape:
                raise PerseError(f"{where}: uv_faces {UF.shape} must match faces {F.shape}")
        data[:, 9:11] = T[UF.reshape(-1)]
    else:
        data[:, 9:11] = 0.0

    if mesh.face_labels is not None:
        L = _to_numpy(mesh.face_labels, "face_labels")
        if L.shape != (F.shape[0],) or not np.issubdtype(L.dtype, np.integer):
            raise PerseError(f"{where}: face_labels must be ({F.shape[0]},) integers, got {L.dtype} {L.shape}")
        if L.size and (L.min() < np.iinfo(np.int32).min or L.max() > np.iinfo(np.int32).max):
            raise PerseError(f"{where}: face_labels must fit in int32")
        labels = np.repeat(L.astype(np.int32), 3)
    else:
        labels = np.zeros(n_corners, dtype=np.int32)

    opacity = float(mesh.opacity)
    if not 0.0 <= opacity <= 1.0:
        raise PerseError(f"{where}: opacity must be in [0, 1], got {opacity}")
    color = tuple(float(c) for c in mesh.color)
    if len(color) != 3:
        raise PerseError(f"{where}: color must be an RGB triple, got {mesh.color!r}")
    base = color if (not has_colors and texture is None) else (1.0, 1.0, 1.0)
    mean = V.mean(axis=0) if V.shape[0] else np.zeros(3, np.float32)
    return _Prepared(data, labels, base, texture, opacity, float(mesh.specular), mean, bool(mesh.unlit))


def _texture_rgba8(texture: Any) -> np.ndarray:
    """(H, W, 3|4) uint8 or float [0, 1] -> contiguous uint8 (H, W, 3|4)."""
    tex = _to_numpy(texture, "texture")
    if tex.ndim != 3 or tex.shape[2] not in (3, 4) or tex.shape[0] < 1 or tex.shape[1] < 1:
        raise PerseError(f"texture must be (H, W, 3) or (H, W, 4), got {tex.shape}")
    if tex.dtype == np.uint8:
        return np.ascontiguousarray(tex)
    if np.issubdtype(tex.dtype, np.floating):
        return np.ascontiguousarray((np.clip(tex, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    raise PerseError(f"texture must be uint8 or float in [0, 1], got {tex.dtype}")


# ----------------------------------------------------------------------------------------------
# GL helpers
# ----------------------------------------------------------------------------------------------

def _compile_program(vert_name: str, frag_name: str):
    from OpenGL import GL

    shaders = []
    for name, kind in ((vert_name, GL.GL_VERTEX_SHADER), (frag_name, GL.GL_FRAGMENT_SHADER)):
        path = SHADERS_DIR / name
        if not path.is_file():
            raise PerseError(f"shader {path} is missing: reinstall perse-studio (the shaders/ folder ships with it)")
        shader = GL.glCreateShader(kind)
        GL.glShaderSource(shader, path.read_text())
        GL.glCompileShader(shader)
        if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
            msg = GL.glGetShaderInfoLog(shader).decode(errors="replace").strip().replace("\n", " | ")
            raise PerseError(f"shader {name} failed to compile: {msg}")
        shaders.append(shader)
    program = GL.glCreateProgram()
    for s in shaders:
        GL.glAttachShader(program, s)
    GL.glLinkProgram(program)
    for s in shaders:
        GL.glDetachShader(program, s)
        GL.glDeleteShader(s)
    if not GL.glGetProgramiv(program, GL.GL_LINK_STATUS):
        msg = GL.glGetProgramInfoLog(program).decode(errors="replace").strip().replace("\n", " | ")
        raise PerseError(f"shaders {vert_name} + {frag_name} failed to link: {msg}")
    return program


class _Program:
    """A linked program with cached uniform locations."""

    def __init__(self, vert: str, frag: str):
        from OpenGL import GL
        self.id = _compile_program(vert, frag)
        self._loc: dict[str, int] = {}
        self._GL = GL

    def loc(self, name: str) -> int:
        if name not in self._loc:
            self._loc[name] = self._GL.glGetUniformLocation(self.id, name)
        return self._loc[name]


class _MeshSlot:
    """VAO + VBOs for one mesh position in the render list; grown, never shrunk."""

    def __init__(self):
        from OpenGL import GL
        self.vao = GL.glGenVertexArrays(1)
        self.vbo_f, self.vbo_i = GL.glGenBuffers(2)
        self.cap_f = self.cap_i = 0
        self.count = 0
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo_f)
        stride = _FLOATS_PER_VERTEX * 4
        for loc, (offset, size) in enumerate(((0, 3), (3, 3), (6, 3), (9, 2))):
            GL.glEnableVertexAttribArray(loc)
            GL.glVertexAttribPointer(loc, size, GL.GL_FLOAT, GL.GL_FALSE, stride, ctypes.c_void_p(offset * 4))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo_i)
        GL.glEnableVertexAttribArray(4)
        GL.glVertexAttribIPointer(4, 1, GL.GL_INT, 4, ctypes.c_void_p(0))
        GL.glBindVertexArray(0)

    def upload(self, data: np.ndarray, labels: np.ndarray) -> None:
        from OpenGL import GL
        self.count = labels.shape[0]
        for vbo, arr, cap_name in ((self.vbo_f, data, "cap_f"), (self.vbo_i, labels, "cap_i")):
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, vbo)
            nbytes = arr.nbytes
            if nbytes == 0:
                continue
            if nbytes > getattr(self, cap_name):
                GL.glBufferData(GL.GL_ARRAY_BUFFER, nbytes, arr, GL.GL_DYNAMIC_DRAW)
                setattr(self, cap_name, nbytes)
            else:
                GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, nbytes, arr)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def delete(self) -> None:
        from OpenGL import GL
        GL.glDeleteBuffers(2, [self.vbo_f, self.vbo_i])
        GL.glDeleteVertexArrays(1, [self.vao])


class _Targets:
    """Framebuffers for one (width, height): MSAA colour, its resolve target, the geometry buffer."""

    def __init__(self, width: int, height: int, samples: int):
        from OpenGL import GL
        self.width, self.height, self.samples = width, height, samples
        self.renderbuffers = list(GL.glGenRenderbuffers(7))
        rb = iter(self.renderbuffers)

        def storage(fmt, ms: bool):
            r = next(rb)
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, r)
            if ms:
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, width, height)
            else:
                GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, width, height)
            return r

        self.fbo_msaa, self.fbo_resolve, self.fbo_gbuf = GL.glGenFramebuffers(3)
        attach = GL.glFramebufferRenderbuffer
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo_msaa)
        attach(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, storage(GL.GL_RGBA8, True))
        attach(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, storage(GL.GL_DEPTH_COMPONENT32F, True))
        self._check("colour (MSAA)")
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo_resolve)
        attach(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, storage(GL.GL_RGBA8, False))
        self._check("colour resolve")
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo_gbuf)
        attach(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, storage(GL.GL_R32F, False))
        attach(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT1, GL.GL_RENDERBUFFER, storage(GL.GL_RGBA32F, False))
        attach(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT2, GL.GL_RENDERBUFFER, storage(GL.GL_R32I, False))
        attach(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, storage(GL.GL_DEPTH_COMPONENT32F, False))
        self._check("geometry buffer")
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, 0)

    @staticmethod
    def _check(what: str) -> None:
        from OpenGL import GL
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise PerseError(f"the GL driver cannot render to the {what} framebuffer (status 0x{int(status):x}); "
                             "update the GPU driver or Mesa")

    def delete(self) -> None:
        from OpenGL import GL
        GL.glDeleteFramebuffers(3, [self.fbo_msaa, self.fbo_resolve, self.fbo_gbuf])
        GL.glDeleteRenderbuffers(len(self.renderbuffers), self.renderbuffers)


def _read(fmt: int, gl_type: int, out: np.ndarray) -> np.ndarray:
    """glReadPixels of the whole target into the preallocated contiguous `out`."""
    from OpenGL.raw.GL.VERSION.GL_1_0 import glReadPixels
    h, w = out.shape[:2]
    glReadPixels(0, 0, w, h, fmt, gl_type, out.ctypes.data_as(ctypes.c_void_p))
    return out


# ----------------------------------------------------------------------------------------------
# The renderer
# ----------------------------------------------------------------------------------------------

class MeshRenderer:
    """Offscreen mesh renderer; holds a GL context, two programs, framebuffers and mesh buffers.

    context: an existing `GLContext` to render with (not released by `close()`); by default a new one
        is created (see `create_gl_context`) and owned.
    samples: MSAA samples for the colour pass (clamped to what the driver supports; 0 disables).

    Use from the thread that created it. Every `render()` makes the renderer's context current and
    restores the previously current context afterwards (see `GLContext.current`).
    """

    _lighting_unlit = False  # the current render's Lighting.unlit (set per render call)

    def __init__(self, context: GLContext | None = None, samples: int = 4):
        self._owns_context = context is None
        self.context = create_gl_context(16, 16) if context is None else context
        self._closed = False
        self._targets: _Targets | None = None
        self._slots: list[_MeshSlot] = []
        self._textures: OrderedDict[int, tuple[Any, int, int]] = OrderedDict()  # id(obj) -> (obj, version, GL name)
        try:
            with self.context.current():
                from OpenGL import GL
                self.samples = max(0, min(int(samples), int(GL.glGetIntegerv(GL.GL_MAX_SAMPLES))))
                self.max_size = int(GL.glGetIntegerv(GL.GL_MAX_RENDERBUFFER_SIZE))
                self._color_prog = _Program("mesh.vert", "mesh.frag")
                self._gbuf_prog = _Program("mesh.vert", "gbuffer.frag")
        except BaseException:
            if self._owns_context:
                self.context.release()
            raise

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Free GL objects (and the context if this renderer created it). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_context:
            self.context.release()  # destroys every object of the context at once
            return
        if self.context.released:
            return
        with self.context.current():
            from OpenGL import GL
            for slot in self._slots:
                slot.delete()
            if self._targets is not None:
                self._targets.delete()
            for _, _, tex in self._textures.values():
                GL.glDeleteTextures(1, [tex])
            GL.glDeleteProgram(self._color_prog.id)
            GL.glDeleteProgram(self._gbuf_prog.id)

    def __enter__(self) -> "MeshRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- rendering ------------------------------------------------------------------------------

    def render(self, meshes: Sequence[Mesh], camera: Camera, background: Sequence[float] = (0.0, 0.0, 0.0),
               lighting: Lighting | None = None) -> MeshRender:
        """Render `meshes` seen by `camera` (OpenCV convention) at camera.width x camera.height.

        background: RGB in [0, 1] under the colour image (alpha stays 0 there).
        lighting: `Lighting()` by default; `Lighting(unlit=True)` for albedo / region renders.
        Returns a `MeshRender` of fresh arrays (see its docstring for conventions).
        """
        if self._closed:
            raise PerseError("this MeshRenderer was closed; create a new one")
        if isinstance(meshes, Mesh):
            meshes = [meshes]
        W, H = int(camera.width), int(camera.height)
        if W <= 0 or H <= 0:
            raise PerseError(f"camera size must be positive, got {W}x{H}")
        if W > self.max_size or H > self.max_size:
            raise PerseError(f"render size {W}x{H} exceeds this GL driver's limit of {self.max_size} pixels")
        if not 0 < camera.near < camera.far:
            raise PerseError(f"camera near/far must satisfy 0 < near < far, got {camera.near}, {camera.far}")
        bg = tuple(float(c) for c in background)
        if len(bg) != 3:
            raise PerseError(f"background must be an RGB triple, got {background!r}")
        lighting = Lighting() if lighting is None else lighting
        prepared = [_prepare(m, i) for i, m in enumerate(meshes)]
        textures = [_texture_rgba8(p.texture) if p.texture is not None and self._texture_stale(p.texture) else None
                    for p in prepared]

        w2c = camera.world_to_cam.detach().cpu().double().numpy() if hasattr(camera.world_to_cam, "detach") \
            else np.asarray(camera.world_to_cam, dtype=np.float64)
        K = camera.K.detach().cpu().double().numpy() if hasattr(camera.K, "detach") else np.asarray(camera.K, np.float64)
        proj = projection_matrix(K, W, H, camera.near, camera.far)
        normal_mat = normal_matrix(w2c)
        w2c32 = w2c.astype(np.float32)

        with self.context.current():
            from OpenGL import GL
            self._ensure_targets(W, H)
            while len(self._slots) < len(prepared):
                self._slots.append(_MeshSlot())
            tex_ids = []
            for slot, p, rgba in zip(self._slots, prepared, textures):
                slot.upload(p.data, p.labels)
                tex_ids.append(self._texture(p.texture, rgba) if p.texture is not None else 0)

            opaque = [i for i, p in enumerate(prepared) if p.opacity >= 1.0 and p.data.shape[0]]
            # Translucent meshes back to front by the camera depth of their centroid.
            depth_of = lambda i: float(w2c[2, :3] @ prepared[i].mean_world + w2c[2, 3])
            translucent = sorted((i for i, p in enumerate(prepared) if 0.0 < p.opacity < 1.0 and p.data.shape[0]),
                                 key=depth_of, reverse=True)
            t = self._targets
            GL.glViewport(0, 0, W, H)
            GL.glDisable(GL.GL_CULL_FACE)  # open meshes and single-sided cards are seen from both sides
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glDepthFunc(GL.GL_LESS)

            # Pass 1: colour, MSAA. Alpha accumulates coverage: opaque writes 1, blending adds a(1 - dst).
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, t.fbo_msaa)
            GL.glDrawBuffers(1, [GL.GL_COLOR_ATTACHMENT0])
            GL.glClearColor(bg[0], bg[1], bg[2], 0.0)
            GL.glDepthMask(GL.GL_TRUE)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
            if t.samples:
                GL.glEnable(GL.GL_MULTISAMPLE)
            prog = self._color_prog
            GL.glUseProgram(prog.id)
            self._set_camera_uniforms(prog, w2c32, normal_mat, proj)
            self._set_lighting_uniforms(prog, lighting)
            self._lighting_unlit = bool(lighting.unlit)
            GL.glDisable(GL.GL_BLEND)
            for i in opaque:
                self._draw(prog, self._slots[i], prepared[i], tex_ids[i], color_pass=True)
            if translucent:
                GL.glEnable(GL.GL_BLEND)
                GL.glBlendFuncSeparate(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA, GL.GL_ONE, GL.GL_ONE_MINUS_SRC_ALPHA)
                GL.glDepthMask(GL.GL_FALSE)
                for i in translucent:
                    self._draw(prog, self._slots[i], prepared[i], tex_ids[i], color_pass=True)
                GL.glDepthMask(GL.GL_TRUE)
                GL.glDisable(GL.GL_BLEND)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, t.fbo_msaa)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, t.fbo_resolve)
            GL.glBlitFramebuffer(0, 0, W, H, 0, 0, W, H, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)

            # Pass 2: geometry buffer, single-sampled, opaque meshes only.
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, t.fbo_gbuf)
            GL.glDrawBuffers(3, [GL.GL_COLOR_ATTACHMENT0, GL.GL_COLOR_ATTACHMENT1, GL.GL_COLOR_ATTACHMENT2])
            GL.glClearBufferfv(GL.GL_COLOR, 0, np.zeros(4, np.float32))
            GL.glClearBufferfv(GL.GL_COLOR, 1, np.zeros(4, np.float32))
            GL.glClearBufferiv(GL.GL_COLOR, 2, np.zeros(4, np.int32))
            GL.glClearBufferfv(GL.GL_DEPTH, 0, np.ones(1, np.float32))
            prog = self._gbuf_prog
            GL.glUseProgram(prog.id)
            self._set_camera_uniforms(prog, w2c32, normal_mat, proj)
            for i in opaque:
                self._draw(prog, self._slots[i], prepared[i], tex_ids[i], color_pass=False)
            GL.glBindVertexArray(0)
            GL.glUseProgram(0)
            self._evict_textures(keep=sum(1 for x in tex_ids if x))

            # Read back (rows come out top to bottom thanks to projection_matrix's y mapping).
            GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
            rgba = np.empty((H, W, 4), np.uint8)
            depth = np.empty((H, W), np.float32)
            normals = np.empty((H, W, 3), np.float32)
            labels = np.empty((H, W), np.int32)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, t.fbo_resolve)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
            _read(GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, rgba)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, t.fbo_gbuf)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
            _read(GL.GL_RED, GL.GL_FLOAT, depth)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT1)
            _read(GL.GL_RGB, GL.GL_FLOAT, normals)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT2)
            _read(GL.GL_RED_INTEGER, GL.GL_INT, labels)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)

        scale = np.float32(1.0 / 255.0)
        return MeshRender(rgb=rgba[..., :3].astype(np.float32) * scale, alpha=rgba[..., 3].astype(np.float32) * scale,
                          depth=depth, normals=normals, labels=labels)

    # -- internals ------------------------------------------------------------------------------

    def _ensure_targets(self, W: int, H: int) -> None:
        t = self._targets
        if t is not None and (t.width, t.height) == (W, H):
            return
        if t is not None:
            t.delete()
        self._targets = None
        self._targets = _Targets(W, H, self.samples)

    @staticmethod
    def _set_camera_uniforms(prog: _Program, w2c: np.ndarray, normal_matrix: np.ndarray, proj: np.ndarray) -> None:
        from OpenGL import GL
        # Row-major numpy matrices: transpose=GL_TRUE.
        GL.glUniformMatrix4fv(prog.loc("u_world_to_cam"), 1, GL.GL_TRUE, w2c)
        GL.glUniformMatrix3fv(prog.loc("u_normal_matrix"), 1, GL.GL_TRUE, normal_matrix)
        GL.glUniformMatrix4fv(prog.loc("u_proj"), 1, GL.GL_TRUE, proj)

    @staticmethod
    def _set_lighting_uniforms(prog: _Program, lighting: Lighting) -> None:
        from OpenGL import GL
        dirs = np.array([lighting.key_direction, lighting.fill_direction], dtype=np.float64)
        norms = np.linalg.norm(dirs, axis=1, keepdims=True)
        if (norms < 1e-9).any():
            raise PerseError("lighting directions must be non-zero vectors")
        GL.glUniform1i(prog.loc("u_unlit"), int(bool(lighting.unlit)))
        GL.glUniform3fv(prog.loc("u_light_dir"), 2, (dirs / norms).astype(np.float32))
        GL.glUniform1fv(prog.loc("u_light_intensity"), 2,
                        np.array([lighting.key_intensity, lighting.fill_intensity], np.float32))
        GL.glUniform1f(prog.loc("u_ambient"), float(lighting.ambient))
        GL.glUniform1f(prog.loc("u_shininess"), max(float(lighting.shininess), 1.0))

    def _draw(self, prog: _Program, slot: _MeshSlot, p: _Prepared, tex: int, color_pass: bool) -> None:
        from OpenGL import GL
        GL.glUniform1i(prog.loc("u_use_texture"), int(tex != 0))
        if tex:
            GL.glActiveTexture(GL.GL_TEXTURE0)
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            GL.glUniform1i(prog.loc("u_texture"), 0)
        if color_pass:
            GL.glUniform3f(prog.loc("u_base_color"), *p.base_color)
            GL.glUniform1f(prog.loc("u_opacity"), p.opacity)
            GL.glUniform1f(prog.loc("u_specular"), p.specular)
            GL.glUniform1i(prog.loc("u_unlit"), int(p.unlit or self._lighting_unlit))
        GL.glBindVertexArray(slot.vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, slot.count)

    @staticmethod
    def _version(obj: Any) -> int:
        return int(getattr(obj, "_version", 0))  # torch bumps _version on in-place edits

    def _texture_stale(self, obj: Any) -> bool:
        entry = self._textures.get(id(obj))
        return entry is None or entry[0] is not obj or entry[1] != self._version(obj)

    def _texture(self, obj: Any, rgba: np.ndarray | None) -> int:
        """GL texture for the user's texture object, uploading `rgba` if it is new or changed."""
        from OpenGL import GL
        key = id(obj)
        entry = self._textures.get(key)
        if rgba is None and entry is not None:
            self._textures.move_to_end(key)
            return entry[2]
        tex = entry[2] if entry is not None else GL.glGenTextures(1)
        GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        fmt = GL.GL_RGBA if rgba.shape[2] == 4 else GL.GL_RGB
        # Row 0 of the array is uploaded first (t = 0); the shaders sample at (u, 1 - v).
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA8, rgba.shape[1], rgba.shape[0], 0, fmt,
                        GL.GL_UNSIGNED_BYTE, rgba)
        GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR_MIPMAP_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
        # Holding `obj` keeps its id from being reused by another object while cached.
        self._textures[key] = (obj, self._version(obj), tex)
        self._textures.move_to_end(key)
        return tex

    def _evict_textures(self, keep: int) -> None:
        """Drop least recently used textures beyond the cache size (never the `keep` newest ones)."""
        from OpenGL import GL
        while len(self._textures) > max(_MAX_CACHED_TEXTURES, keep):
            _, (_, _, old) = self._textures.popitem(last=False)
            GL.glDeleteTextures(1, [old])
