"""Offscreen OpenGL 3.3 core contexts: a hidden glfw window (X11 / Xvfb) or PyOpenGL's EGL platform.

Which platform is used is decided once per process, before PyOpenGL is first imported, because
PyOpenGL binds its function loader (GLX or EGL) at import time:

- ``PERSE_GL=egl``, or no ``$DISPLAY``: EGL. Displays are tried in this order: EGL devices
  (``EGL_EXT_platform_device``; this is what works on headless NVIDIA machines, hardware devices
  first), Mesa's surfaceless platform, the default display. The context is surfaceless
  (``EGL_KHR_surfaceless_context``) where supported, else bound to a small pbuffer.
- ``$DISPLAY`` set (or ``PERSE_GL=glfw``): glfw with a hidden window. If that fails and PyOpenGL
  has not been imported yet, EGL is tried next (with a logged warning).

glfw's own EGL mode is deliberately not used: it fails on headless machines.

All rendering goes into framebuffer objects owned by the caller (see `MeshRenderer`); the window or
pbuffer is only there because some drivers require a drawable. Contexts are bound to the thread that
makes them current: use a `GLContext` from one thread only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import warnings
from typing import Any, Iterator

from perse.errors import PerseError

log = logging.getLogger(__name__)

_INSTALL_HINT = ("install Mesa (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0) "
                 "or run under Xvfb (apt-get install xvfb; Xvfb :99 & export DISPLAY=:99)")


# ----------------------------------------------------------------------------------------------
# Platform choice (must happen before the first `import OpenGL.*` that loads a platform)
# ----------------------------------------------------------------------------------------------

def requested_platform() -> str:
    """The platform the environment asks for: ``"egl"`` or ``"glfw"``.

    ``PERSE_GL`` (``egl`` | ``glfw``) wins; otherwise glfw when ``$DISPLAY`` is set, else EGL.
    """
    choice = os.environ.get("PERSE_GL", "").strip().lower()
    if choice in ("egl", "glfw"):
        return choice
    if choice:
        raise PerseError(f"PERSE_GL={choice!r} is not understood: set it to 'egl' or 'glfw', or unset it")
    return "glfw" if os.environ.get("DISPLAY") else "egl"


def loaded_pyopengl_platform() -> str | None:
    """``"egl"``, ``"glx"``, another lower-case name, or None if PyOpenGL has not loaded a platform yet."""
    module = sys.modules.get("OpenGL.platform")
    if module is None or getattr(module, "PLATFORM", None) is None:
        return None
    name = type(module.PLATFORM).__name__.lower()  # e.g. EGLPlatform, GLXPlatform
    return name[:-len("platform")] if name.endswith("platform") else name


def _select_pyopengl_egl() -> None:
    """Make sure PyOpenGL uses (or will use) its EGL platform; clear error if it is too late."""
    loaded = loaded_pyopengl_platform()
    if loaded is None:
        os.environ["PYOPENGL_PLATFORM"] = "egl"
        return
    if loaded != "egl":
        raise PerseError(f"OpenGL was already imported with the {loaded.upper()} platform, so EGL cannot be "
                         "used in this process: set PYOPENGL_PLATFORM=egl before starting Python, or run "
                         "with a $DISPLAY (e.g. under Xvfb)")


# ----------------------------------------------------------------------------------------------
# The context object
# ----------------------------------------------------------------------------------------------

class GLContext:
    """An OpenGL >= 3.3 core context with no visible output.

    platform: ``"glfw"`` or ``"egl"``. width/height: size of the hidden window / pbuffer (rendering
    targets are FBOs, so this does not limit render sizes).

    Sharing a process with DearPyGui (or any other GL user): making this context current replaces
    the caller's context on this thread. `current()` restores the previously current context when it
    exits (GLX or EGL, whichever this context uses), and `MeshRenderer` always renders inside it, as
    do `create_gl_context` and `release`. If you call `make_current()` yourself, you must make
    DearPyGui's context current again (``glXMakeCurrent``) before its next frame, or it will draw
    into / crash on ours.
    """

    def __init__(self, platform: str, width: int, height: int, handles: dict[str, Any]):
        self.platform = platform
        self.width = width
        self.height = height
        self._h = handles
        self._released = False

    # -- public ---------------------------------------------------------------------------------

    def make_current(self) -> None:
        """Make this context current on the calling thread."""
        if self._released:
            raise PerseError("this GL context was released; create a new one with create_gl_context()")
        if self.platform == "glfw":
            import glfw
            glfw.make_context_current(self._h["window"])
        else:
            from OpenGL import EGL
            if not EGL.eglMakeCurrent(self._h["display"], self._h["surface"], self._h["surface"], self._h["context"]):
                raise PerseError("eglMakeCurrent failed for the offscreen GL context; recreate the renderer")

    @contextlib.contextmanager
    def current(self) -> Iterator["GLContext"]:
        """Make this context current for a block, then restore whatever context was current before."""
        saved = _save_current(self.platform)
        self.make_current()
        try:
            yield self
        finally:
            _restore_current(saved)

    def release(self) -> None:
        """Destroy the context and its window/pbuffer. Safe to call twice; GL objects die with it."""
        if self._released:
            return
        self._released = True
        if self.platform == "glfw":
            import glfw
            # glfw believes our window may be current and would release *whatever* context is current
            # on this thread (e.g. DearPyGui's) while destroying it: save and restore around it.
            saved = _save_current("glfw")
            glfw.destroy_window(self._h["window"])
            if saved is not None and saved[4] != self._h.get("glx_context"):
                _restore_current(saved)
            # glfw itself stays initialised: other glfw users in this process may still hold windows.
        else:
            from OpenGL import EGL
            display = self._h["display"]
            if _address(EGL.eglGetCurrentContext()) == _address(self._h["context"]):
                EGL.eglMakeCurrent(display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
            if self._h["surface"] != EGL.EGL_NO_SURFACE:
                EGL.eglDestroySurface(display, self._h["surface"])
            EGL.eglDestroyContext(display, self._h["context"])
            # The EGLDisplay is cached and shared by all our contexts: it is not terminated.

    @property
    def released(self) -> bool:
        return self._released

    def info(self) -> dict[str, str]:
        """GL vendor / renderer / version strings (makes the context current)."""
        with self.current():
            from OpenGL import GL
            return {k: (GL.glGetString(e) or b"").decode(errors="replace") for k, e in
                    (("vendor", GL.GL_VENDOR), ("renderer", GL.GL_RENDERER), ("version", GL.GL_VERSION))}

    def __enter__(self) -> "GLContext":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"GLContext(platform={self.platform!r}, released={self._released})"


_LIBGL = None


def _libgl():
    """libGL with GLX entry points via ctypes (independent of PyOpenGL's platform); None if absent."""
    global _LIBGL
    if _LIBGL is None:
        try:
            lib = ctypes.CDLL("libGL.so.1")
        except OSError:
            return None
        for name in ("glXGetCurrentContext", "glXGetCurrentDisplay", "glXGetCurrentDrawable",
                     "glXGetCurrentReadDrawable"):
            getattr(lib, name).restype = ctypes.c_void_p
        lib.glXGetCurrentDrawable.restype = lib.glXGetCurrentReadDrawable.restype = ctypes.c_ulong
        lib.glXMakeContextCurrent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
        lib.glXMakeContextCurrent.restype = ctypes.c_int
        _LIBGL = lib
    return _LIBGL


def _address(handle) -> int | None:
    """Integer value of a native handle (PyOpenGL's opaque EGL pointers compare by identity, not value)."""
    if handle is None or isinstance(handle, int):
        return handle
    return ctypes.cast(handle, ctypes.c_void_p).value


def current_context_id(platform: str) -> int | None:
    """Address of the context current on this thread for `platform` ("glfw" -> GLX, "egl"), or None."""
    saved = _save_current(platform)
    return None if saved is None else _address(saved[4])


def _save_current(platform: str) -> tuple | None:
    """The calling thread's current context of `platform`'s window system (GLX or EGL), or None.

    GLX is queried through libGL directly, so a DearPyGui (GLFW/GLX) context is seen even before
    PyOpenGL is imported.
    """
    if platform == "glfw":
        lib = _libgl()
        if lib is None or not lib.glXGetCurrentContext():
            return None
        return ("glx", lib.glXGetCurrentDisplay(), lib.glXGetCurrentDrawable(), lib.glXGetCurrentReadDrawable(),
                lib.glXGetCurrentContext())
    if loaded_pyopengl_platform() == "egl":
        from OpenGL import EGL
        ctx = EGL.eglGetCurrentContext()
        if not ctx:
            return None
        return ("egl", EGL.eglGetCurrentDisplay(), EGL.eglGetCurrentSurface(EGL.EGL_DRAW),
                EGL.eglGetCurrentSurface(EGL.EGL_READ), ctx)
    return None


def _restore_current(saved: tuple | None) -> None:
    """Make `saved` current again unless it is what is current now (e.g. our own context)."""
    if saved is None:
        return
    api, display, draw, read, ctx = saved
    if api == "glx":
        lib = _libgl()
        if lib.glXGetCurrentContext() != ctx and not lib.glXMakeContextCurrent(display, draw, read, ctx):
            raise PerseError("could not make the previous GLX context current again after offscreen rendering")
    else:
        from OpenGL import EGL
        if _address(EGL.eglGetCurrentContext()) != _address(ctx):
            EGL.eglMakeCurrent(display, draw, read, ctx)


# ----------------------------------------------------------------------------------------------
# Creation
# ----------------------------------------------------------------------------------------------

def create_gl_context(width: int = 64, height: int = 64) -> GLContext:
    """Create an offscreen OpenGL 3.3 core context.

    It is left current on the calling thread unless another context (GLX for glfw, EGL for EGL) was
    current before, which is then made current again: creating a renderer inside DearPyGui is safe.

    See the module docstring for how the platform is chosen. Raises `PerseError` (one line) if no
    platform works, saying what failed and what to install or set.
    """
    if width <= 0 or height <= 0:
        raise PerseError(f"GL context size must be positive, got {width}x{height}")
    want = requested_platform()
    loaded = loaded_pyopengl_platform()
    if want == "glfw" and loaded == "egl":
        if os.environ.get("PERSE_GL", "").lower() == "glfw":
            raise PerseError("PERSE_GL=glfw but OpenGL was already imported with the EGL platform: "
                             "unset PYOPENGL_PLATFORM / PERSE_GL or import perse.render.gl before OpenGL")
        want = "egl"  # the process is committed to EGL, which works with or without a display

    errors = []
    if want == "glfw":
        try:
            saved = _save_current("glfw")
            ctx = _create_glfw(width, height)
            _restore_current(saved)  # creating a context must not steal the caller's (e.g. DearPyGui's)
            return ctx
        except PerseError as e:
            errors.append(f"glfw: {e}")
            if loaded_pyopengl_platform() not in (None, "egl"):
                raise PerseError(f"no OpenGL context: {errors[0]}; EGL unusable because OpenGL is already "
                                 f"imported for {loaded_pyopengl_platform().upper()} ({_INSTALL_HINT})") from None
            log.warning("glfw OpenGL context failed (%s); trying EGL", e)
    _select_pyopengl_egl()  # a platform conflict is its own, complete error message
    try:
        saved = _save_current("egl")
        ctx = _create_egl(width, height)
        _restore_current(saved)
        return ctx
    except PerseError as e:
        errors.append(f"EGL: {e}")
    raise PerseError(f"no OpenGL context ({'; '.join(errors)}): {_INSTALL_HINT}")


def _create_glfw(width: int, height: int) -> GLContext:
    try:
        import glfw
    except Exception as e:  # the wheel bundles libglfw, so this means a broken install
        raise PerseError(f"cannot import glfw ({e}); pip install glfw") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = glfw.init()
        window = None
        if ok:
            glfw.default_window_hints()
            glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
            glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
            glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
            glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
            glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)
            window = glfw.create_window(width, height, "perse-offscreen", None, None)
    detail = "; ".join(str(w.message) for w in caught) or "no details"
    if not ok:
        raise PerseError(f"glfw.init failed on DISPLAY={os.environ.get('DISPLAY')!r} ({detail})")
    if not window:
        raise PerseError(f"could not create a hidden GL 3.3 core window ({detail})")
    glfw.make_context_current(window)
    lib = _libgl()
    ctx = GLContext("glfw", width, height, {"window": window,
                                            "glx_context": lib.glXGetCurrentContext() if lib is not None else None})
    _check_version(ctx)
    return ctx


_EGL_DISPLAY: Any = None  # one initialised EGLDisplay per process, shared by all EGL contexts


def _egl_display():
    """Find and initialise an EGL display: devices (hardware first), Mesa surfaceless, default."""
    global _EGL_DISPLAY
    if _EGL_DISPLAY is not None:
        return _EGL_DISPLAY
    from OpenGL import EGL

    client_ext = (EGL.eglQueryString(EGL.EGL_NO_DISPLAY, EGL.EGL_EXTENSIONS) or b"").decode().split()
    candidates: list[tuple[str, Any]] = []
    if "EGL_EXT_platform_device" in client_ext and "EGL_EXT_device_enumeration" in client_ext:
        from OpenGL.EGL.EXT.device_base import EGLDeviceEXT, eglQueryDevicesEXT
        from OpenGL.EGL.EXT.platform_device import EGL_PLATFORM_DEVICE_EXT
        devices = (EGLDeviceEXT * 16)()
        count = EGL.EGLint()
        if eglQueryDevicesEXT(16, devices, ctypes.pointer(count)):
            hardware, software = [], []
            for i in range(count.value):
                (software if _egl_device_is_software(devices[i]) else hardware).append(i)
            for i in hardware + software:  # an NVIDIA device before Mesa's llvmpipe device
                candidates.append((f"device {i}", lambda d=devices[i]: EGL.eglGetPlatformDisplayEXT(
                    EGL_PLATFORM_DEVICE_EXT, d, None)))
    if "EGL_MESA_platform_surfaceless" in client_ext:
        candidates.append(("surfaceless", lambda: EGL.eglGetPlatformDisplayEXT(0x31DD, EGL.EGL_DEFAULT_DISPLAY, None)))
    candidates.append(("default", lambda: EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)))

    tried = []
    for name, get in candidates:
        try:
            display = get()
            if not display:
                tried.append(f"{name}: no display")
                continue
            major, minor = EGL.EGLint(), EGL.EGLint()
            if EGL.eglInitialize(display, ctypes.pointer(major), ctypes.pointer(minor)):
                _EGL_DISPLAY = display
                log.debug("EGL %d.%d on %s display", major.value, minor.value, name)
                return display
            tried.append(f"{name}: eglInitialize failed")
        except Exception as e:  # PyOpenGL raises EGLError / NullFunctionError per candidate
            tried.append(f"{name}: {type(e).__name__}")
    raise PerseError("no EGL display could be initialised (" + ", ".join(tried or ["libEGL not found"]) + ")")


def _egl_device_is_software(device) -> bool:
    try:
        from OpenGL.EGL.EXT.device_query import eglQueryDeviceStringEXT
        from OpenGL import EGL
        ext = (eglQueryDeviceStringEXT(device, EGL.EGL_EXTENSIONS) or b"").decode()
    except Exception:
        return False
    return "EGL_MESA_device_software" in ext


def _create_egl(width: int, height: int) -> GLContext:
    _select_pyopengl_egl()
    try:
        from OpenGL import EGL
    except Exception as e:
        raise PerseError(f"PyOpenGL's EGL platform failed to load ({type(e).__name__}: {e})") from None
    try:
        display = _egl_display()
    except PerseError:
        raise
    except Exception as e:  # missing libEGL surfaces here as an import/attribute error
        raise PerseError(f"EGL unavailable ({type(e).__name__}: {e})") from None

    if not EGL.eglBindAPI(EGL.EGL_OPENGL_API):
        raise PerseError("this EGL implementation cannot create desktop OpenGL contexts (eglBindAPI)")
    display_ext = (EGL.eglQueryString(display, EGL.EGL_EXTENSIONS) or b"").decode().split()
    surfaceless = "EGL_KHR_surfaceless_context" in display_ext

    config_attribs = [EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT,
                      EGL.EGL_RED_SIZE, 8, EGL.EGL_GREEN_SIZE, 8, EGL.EGL_BLUE_SIZE, 8, EGL.EGL_ALPHA_SIZE, 8]
    if not surfaceless:
        config_attribs += [EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT]
    config_attribs.append(EGL.EGL_NONE)
    config = EGL.EGLConfig()
    n = EGL.EGLint()
    EGL.eglChooseConfig(display, (EGL.EGLint * len(config_attribs))(*config_attribs), ctypes.pointer(config), 1,
                        ctypes.pointer(n))
    if n.value < 1:
        if "EGL_KHR_no_config_context" in display_ext and surfaceless:
            config = EGL.EGLConfig()  # EGL_NO_CONFIG_KHR (null): allowed with surfaceless contexts
        else:
            raise PerseError("no EGL config with 8-bit RGBA for desktop OpenGL")

    ctx_attribs = [EGL.EGL_CONTEXT_MAJOR_VERSION, 3, EGL.EGL_CONTEXT_MINOR_VERSION, 3,
                   EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL.EGL_NONE]
    context = EGL.eglCreateContext(display, config, EGL.EGL_NO_CONTEXT,
                                   (EGL.EGLint * len(ctx_attribs))(*ctx_attribs))
    if not context:
        raise PerseError(f"eglCreateContext failed for OpenGL 3.3 core (EGL error 0x{EGL.eglGetError():x})")

    surface = EGL.EGL_NO_SURFACE
    if not surfaceless:
        pb = [EGL.EGL_WIDTH, width, EGL.EGL_HEIGHT, height, EGL.EGL_NONE]
        surface = EGL.eglCreatePbufferSurface(display, config, (EGL.EGLint * len(pb))(*pb))
        if not surface:
            EGL.eglDestroyContext(display, context)
            raise PerseError("eglCreatePbufferSurface failed and the display has no surfaceless contexts")
    ctx = GLContext("egl", width, height, {"display": display, "context": context, "surface": surface})
    ctx.make_current()
    _check_version(ctx)
    return ctx


def _check_version(ctx: GLContext) -> None:
    """The context must really be 3.3+ (some drivers silently hand out less)."""
    from OpenGL import GL
    try:
        major = GL.glGetIntegerv(GL.GL_MAJOR_VERSION)
        minor = GL.glGetIntegerv(GL.GL_MINOR_VERSION)
    except Exception as e:
        ctx.release()
        raise PerseError(f"the new {ctx.platform} context does not answer GL calls ({type(e).__name__})") from None
    if (int(major), int(minor)) < (3, 3):
        ctx.release()
        raise PerseError(f"OpenGL {major}.{minor} found, 3.3 core needed (update the GPU driver or Mesa)")
