"""Shared fixtures."""

import pytest

from perse.errors import PerseError


@pytest.fixture(scope="module")
def renderer():
    """An offscreen GL mesh renderer (glfw under a DISPLAY, EGL otherwise)."""
    from perse.render.gl import MeshRenderer

    try:
        r = MeshRenderer()
    except PerseError as e:  # only when this machine has no GL at all (CI installs .ci/apt-packages.txt)
        pytest.skip(f"no OpenGL context possible on this machine: {e}")
    yield r
    r.close()
