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


@pytest.fixture(scope="module")
def builtin_head():
    """The built-in head model."""
    from perse.head import load_builtin_head

    return load_builtin_head()


@pytest.fixture(scope="module")
def astronaut_face():
    """The face and shoulders of scikit-image's astronaut portrait (300x270 RGB uint8): a real face."""
    from skimage.data import astronaut

    return astronaut()[:300, 90:360]
