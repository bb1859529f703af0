"""The GL objects `MeshRenderer` draws with: shader programs, mesh buffers, framebuffers, read-back.

`Program` compiles and links a shader pair from `shaders/` and caches its uniform locations;
`MeshSlot` holds one mesh's VAO and VBOs (the interleaved triangle soup of
`perse.render.gl.scene.prepare_mesh` and its labels), grown, never shrunk; `Targets` holds the
framebuffers of one size (MSAA colour, its resolve target, the geometry buffer); `read_pixels` reads a
target back. Every function here needs the renderer's GL context current.
"""

from __future__ import annotations

import ctypes

import numpy as np

from perse.errors import PerseError
from perse.paths import SHADERS_DIR
from perse.render.gl.scene import FLOATS_PER_VERTEX


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


class Program:
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


class MeshSlot:
    """VAO + VBOs for one mesh position in the render list; grown, never shrunk."""

    def __init__(self):
        from OpenGL import GL
        self.vao = GL.glGenVertexArrays(1)
        self.vbo_f, self.vbo_i = GL.glGenBuffers(2)
        self.cap_f = self.cap_i = 0
        self.count = 0
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo_f)
        stride = FLOATS_PER_VERTEX * 4
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


class Targets:
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


def read_pixels(fmt: int, gl_type: int, out: np.ndarray) -> np.ndarray:
    """glReadPixels of the whole target into the preallocated contiguous `out`."""
    from OpenGL.raw.GL.VERSION.GL_1_0 import glReadPixels
    h, w = out.shape[:2]
    glReadPixels(0, 0, w, h, fmt, gl_type, out.ctypes.data_as(ctypes.c_void_p))
    return out
