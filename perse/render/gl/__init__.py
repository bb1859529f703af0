"""Offscreen OpenGL mesh rendering (textured heads, normals, depth, label masks).

Importing this package does not import PyOpenGL: the GL platform (glfw/GLX or EGL) is chosen when
the first context is created; see `perse.render.gl.context`.
"""

from perse.mesh_ops import face_normals, vertex_normals
from perse.render.gl.context import GLContext, create_gl_context
from perse.render.gl.mesh_renderer import MeshRenderer
from perse.render.gl.scene import Lighting, Mesh, MeshRender, normal_matrix, projection_matrix

__all__ = ["GLContext", "create_gl_context", "Lighting", "Mesh", "MeshRender", "MeshRenderer",
           "face_normals", "normal_matrix", "projection_matrix", "vertex_normals"]
