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
reused between calls. The inputs, outputs and their validation (no GL): `perse.render.gl.scene`; the GL
objects drawn with: `perse.render.gl.gl_objects`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from perse.errors import PerseError
from perse.render.gl.context import GLContext, create_gl_context
from perse.render.gl.gl_objects import MeshSlot, Program, Targets, read_pixels
from perse.render.gl.scene import (Lighting, Mesh, MeshRender, PreparedMesh, normal_matrix, prepare_mesh,
                                   projection_matrix, texture_rgba8)

if TYPE_CHECKING:  # keeps `import perse.render.gl` free of torch
    from perse.render.camera import Camera

log = logging.getLogger(__name__)

_MAX_CACHED_TEXTURES = 16


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
        self._targets: Targets | None = None
        self._slots: list[MeshSlot] = []
        self._textures: OrderedDict[int, tuple[Any, int, int]] = OrderedDict()  # id(obj) -> (obj, version, GL name)
        try:
            with self.context.current():
                from OpenGL import GL
                self.samples = max(0, min(int(samples), int(GL.glGetIntegerv(GL.GL_MAX_SAMPLES))))
                self.max_size = int(GL.glGetIntegerv(GL.GL_MAX_RENDERBUFFER_SIZE))
                self._color_prog = Program("mesh.vert", "mesh.frag")
                self._gbuf_prog = Program("mesh.vert", "gbuffer.frag")
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
        prepared = [prepare_mesh(m, i) for i, m in enumerate(meshes)]
        textures = [texture_rgba8(p.texture) if p.texture is not None and self._texture_stale(p.texture) else None
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
                self._slots.append(MeshSlot())
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
            read_pixels(GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, rgba)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, t.fbo_gbuf)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT0)
            read_pixels(GL.GL_RED, GL.GL_FLOAT, depth)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT1)
            read_pixels(GL.GL_RGB, GL.GL_FLOAT, normals)
            GL.glReadBuffer(GL.GL_COLOR_ATTACHMENT2)
            read_pixels(GL.GL_RED_INTEGER, GL.GL_INT, labels)
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
        self._targets = Targets(W, H, self.samples)

    @staticmethod
    def _set_camera_uniforms(prog: Program, w2c: np.ndarray, normal_matrix: np.ndarray, proj: np.ndarray) -> None:
        from OpenGL import GL
        # Row-major numpy matrices: transpose=GL_TRUE.
        GL.glUniformMatrix4fv(prog.loc("u_world_to_cam"), 1, GL.GL_TRUE, w2c)
        GL.glUniformMatrix3fv(prog.loc("u_normal_matrix"), 1, GL.GL_TRUE, normal_matrix)
        GL.glUniformMatrix4fv(prog.loc("u_proj"), 1, GL.GL_TRUE, proj)

    @staticmethod
    def _set_lighting_uniforms(prog: Program, lighting: Lighting) -> None:
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

    def _draw(self, prog: Program, slot: MeshSlot, p: PreparedMesh, tex: int, color_pass: bool) -> None:
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
