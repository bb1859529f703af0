"""Offscreen GL mesh renderer: geometry, conventions and both context platforms against known answers.

In-process tests use whatever `create_gl_context` picks here (EGL without $DISPLAY, glfw with one);
the EGL and glfw-under-Xvfb platforms are each exercised in a subprocess, since a process can only
load one PyOpenGL platform.
"""

from __future__ import annotations

import ctypes.util
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from perse.errors import PerseError
from perse.render.camera import Camera, look_at, orbit_camera
from perse.render.gl import Lighting, Mesh, normal_matrix, projection_matrix

REPO = Path(__file__).resolve().parent.parent
UNLIT = Lighting(unlit=True)



def make_camera(width=96, height=72, fx=80.0, fy=70.0, cx=40.3, cy=39.6, eye=(0.0, 0.0, 1.0),
                target=(0.0, 0.0, 0.0)) -> Camera:
    """Off-centre principal point, non-square pixels and image: catches any convention slip."""
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return Camera(K, look_at(torch.tensor(eye), torch.tensor(target)), width, height)


def quad(center, size, z=0.0):
    """Axis-aligned square in the plane z (world), facing +z. Corners TL, TR, BL, BR (world +y up)."""
    cx, cy = center
    h = size / 2
    v = np.array([[cx - h, cy + h, z], [cx + h, cy + h, z], [cx - h, cy - h, z], [cx + h, cy - h, z]], np.float32)
    f = np.array([[0, 2, 3], [0, 3, 1]])  # diagonal TL-BR
    return v, f


def cube(size=0.2):
    """Cube at the origin; faces ordered +x, -x, +y, -y, +z, -z (two triangles each)."""
    h = size / 2
    v = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)], np.float32)
    idx = lambda x, y, z: (x > 0) * 4 + (y > 0) * 2 + (z > 0)
    faces, normals = [], []
    for axis in range(3):
        for sign in (1, -1):
            corners = []
            for a in (-1, 1):
                for b in (-1, 1):
                    p = [0, 0, 0]
                    p[axis] = sign
                    p[(axis + 1) % 3] = a
                    p[(axis + 2) % 3] = b
                    corners.append(idx(*p))
            faces += [[corners[0], corners[1], corners[3]], [corners[0], corners[3], corners[2]]]
            n = [0.0, 0.0, 0.0]
            n[axis] = float(sign)
            normals.append(n)
    return v, np.array(faces), np.array(normals)


def alpha_centroid(alpha: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
    return np.array([(xs * alpha).sum(), (ys * alpha).sum()]) / alpha.sum()


# ---------------------------------------------------------------- pure math

def test_projection_matrix_matches_camera_project():
    cam = make_camera(eye=(0.3, 0.2, 1.1))
    pts = torch.tensor([[0.05, -0.07, 0.02], [-0.1, 0.1, -0.1], [0.0, 0.0, 0.0]])
    uv = cam.project(pts).numpy()
    P = projection_matrix(cam.K.numpy(), cam.width, cam.height, cam.near, cam.far)
    X = pts.numpy() @ cam.world_to_cam[:3, :3].numpy().T + cam.world_to_cam[:3, 3].numpy()
    clip = np.c_[X, np.ones(len(X))] @ P.T
    ndc = clip[:, :3] / clip[:, 3:]
    u = (ndc[:, 0] + 1) / 2 * cam.width - 0.5
    v = (ndc[:, 1] + 1) / 2 * cam.height - 0.5  # GL row 0 is the image's top row
    np.testing.assert_allclose(np.c_[u, v], uv, atol=1e-3)
    # near / far land on the ends of the depth range
    for z, expect in ((cam.near, -1.0), (cam.far, 1.0)):
        c = P @ np.array([0.0, 0.0, z, 1.0])
        assert c[2] / c[3] == pytest.approx(expect, abs=1e-5)


def test_normal_matrix_is_rotation_for_rigid_cameras():
    w2c = orbit_camera(35, -20, 0.7).world_to_cam.numpy()
    np.testing.assert_allclose(normal_matrix(w2c), w2c[:3, :3], atol=1e-6)
    scaled = w2c.copy()
    scaled[:3, :3] *= 2.0
    np.testing.assert_allclose(normal_matrix(scaled), w2c[:3, :3] / 2.0, atol=1e-6)


# ---------------------------------------------------------------- rendering

def test_point_lands_where_camera_projects(renderer):
    cam = make_camera(eye=(0.25, -0.15, 1.0))
    rng = np.random.default_rng(0)
    for center in rng.uniform(-0.15, 0.15, size=(4, 3)).astype(np.float32):
        # a ~2.5 px square facing the camera: its coverage centroid is the projected centre
        R = cam.world_to_cam[:3, :3].numpy()
        right, down = R[0], R[1]
        s = 0.016
        v = np.stack([center + s * (-right - down), center + s * (right - down),
                      center + s * (-right + down), center + s * (right + down)]).astype(np.float32)
        out = renderer.render([Mesh(v, np.array([[0, 2, 3], [0, 3, 1]]))], cam, lighting=UNLIT)
        expect = cam.project(torch.from_numpy(center[None]))[0].numpy()
        got = alpha_centroid(out.alpha)
        assert np.abs(got - expect).max() < 0.5, (got, expect)
        # and the single-sampled geometry pass agrees to within a pixel
        ys, xs = np.nonzero(out.depth)
        assert np.abs(np.array([xs.mean(), ys.mean()]) - expect).max() < 1.0


def test_cube_depth_normals_labels(renderer):
    v, f, face_n = cube(0.2)
    labels = np.repeat(np.arange(1, 7), 2)
    cam = make_camera(width=128, height=112, fx=150, fy=150, cx=63.5, cy=55.5,
                      eye=(0.5 * math.sin(0.6), 0.35, 0.6 * math.cos(0.6)))
    out = renderer.render([Mesh(v, f, face_labels=labels, smooth=False)], cam)
    R, t = cam.world_to_cam[:3, :3].numpy().astype(np.float64), cam.world_to_cam[:3, 3].numpy()
    K = cam.K.numpy().astype(np.float64)
    assert out.labels[0, 0] == 0 and out.depth[0, 0] == 0 and not out.normals[0, 0].any()
    seen = set()
    for face, n_world in enumerate(face_n):
        n_cam = R @ n_world
        center = 0.1 * n_world
        c_cam = R @ center + t
        if n_cam @ c_cam >= 0:  # back face: must not show up
            assert not (out.labels == face + 1).any()
            continue
        u, vv = np.round(cam.project(torch.tensor(center[None], dtype=torch.float32))[0].numpy()).astype(int)
        assert out.labels[vv, u] == face + 1
        np.testing.assert_allclose(out.normals[vv, u], n_cam, atol=2e-3)
        ray = np.array([(u - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], 1.0])
        z = (n_cam @ c_cam) / (n_cam @ ray)  # exact plane depth under this pixel's centre
        assert out.depth[vv, u] == pytest.approx(z, abs=1e-4)
        assert out.alpha[vv, u] == 1.0
        seen.add(face + 1)
    assert seen == {1, 3, 5}  # +x, +y, +z faces face this camera
    mask = out.labels > 0
    np.testing.assert_allclose(np.linalg.norm(out.normals[mask], axis=1), 1.0, atol=1e-4)
    assert (out.depth[mask] > 0.5).all() and (out.depth[~mask] == 0).all()


def test_quad_normals_face_camera_and_smooth_normals_are_unit(renderer):
    cam = make_camera()
    v, f = quad((0.0, 0.0), 0.2)
    for smooth in (True, False):
        out = renderer.render([Mesh(v, f, smooth=smooth)], cam)
        m = out.depth > 0
        np.testing.assert_allclose(out.normals[m], np.tile([0.0, 0.0, -1.0], (m.sum(), 1)), atol=1e-5)
        np.testing.assert_allclose(out.depth[m], 1.0, atol=1e-5)
    # a quad wound the other way round still reports normals toward the camera
    out = renderer.render([Mesh(v, f[:, ::-1].copy())], cam)
    assert (out.normals[out.depth > 0][:, 2] < -0.999).all()


def test_texture_checker_orientation_and_cutout(renderer):
    # texel centres of the 2x2 texture land exactly on pixel centres 25 and 55
    cam = make_camera(width=80, height=80, fx=100, fy=100, cx=40.0, cy=40.0)
    v, f = quad((0.0, 0.0), 0.6)
    uvs = np.array([[0, 1], [1, 1], [0, 0], [1, 0]], np.float32)  # OBJ: v up, TL corner at v = 1
    red, green, blue, white = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
    tex = np.array([[red, green], [blue, white]], np.uint8)  # row 0 = top of the image
    out = renderer.render([Mesh(v, f, uvs=uvs, texture=tex)], cam, lighting=UNLIT)
    q = {"TL": out.rgb[25, 25], "TR": out.rgb[25, 55], "BL": out.rgb[55, 25], "BR": out.rgb[55, 55]}
    for name, colour in zip(("TL", "TR", "BL", "BR"), (red, green, blue, white)):
        np.testing.assert_allclose(q[name], np.array(colour) / 255, atol=0.02, err_msg=name)
    # float RGBA texture with the top-right texel transparent: cut out of colour, alpha and labels
    rgba = np.ones((2, 2, 4), np.float32)
    rgba[0, 1, 3] = 0.0
    out = renderer.render([Mesh(v, f, uvs=uvs, uv_faces=f, texture=rgba, face_labels=np.array([4, 4]))],
                          cam, background=(0.0, 0.0, 0.5), lighting=UNLIT)
    assert out.alpha[22, 57] == 0.0 and out.labels[22, 57] == 0 and out.depth[22, 57] == 0
    np.testing.assert_allclose(out.rgb[22, 57], [0, 0, 0.5], atol=0.01)
    assert out.alpha[22, 22] == 1.0 and out.labels[22, 22] == 4
    np.testing.assert_allclose(out.rgb[22, 22], [1, 1, 1], atol=0.01)


def test_vertex_colors_interpolate(renderer):
    cam = make_camera(width=80, height=80, fx=100, fy=100, cx=39.5, cy=39.5)
    v, f = quad((0.0, 0.0), 0.6)
    cols = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]], np.float32)  # TL, TR, BL, BR
    out = renderer.render([Mesh(v, f, colors=cols)], cam, lighting=UNLIT)
    uv = cam.project(torch.from_numpy(v * 0.96)).numpy().round().astype(int)
    for (u, vv), c in zip(uv, cols):
        np.testing.assert_allclose(out.rgb[vv, u], c, atol=0.06)
    # the centre lies on the TL-BR diagonal: the mean of those two corners
    centre = cam.project(torch.zeros(1, 3))[0]
    x, y = int(centre[0].round()), int(centre[1].round())
    np.testing.assert_allclose(out.rgb[y, x], (cols[0] + cols[3]) / 2, atol=0.03)


def test_translucent_blends_over_opaque(renderer):
    cam = make_camera(width=80, height=80, fx=100, fy=100, cx=39.5, cy=39.5)
    back_v, back_f = quad((-0.1, 0.0), 0.3, z=0.0)
    front_v, front_f = quad((0.1, 0.0), 0.3, z=0.2)
    back = Mesh(back_v, back_f, color=(1.0, 0.0, 0.0), face_labels=np.array([2, 2]))
    front = Mesh(front_v, front_f, color=(0.0, 0.0, 1.0), opacity=0.25, face_labels=np.array([9, 9]))
    bg = (0.0, 0.4, 0.0)
    for order in ([back, front], [front, back]):  # the translucent pass does not depend on list order
        out = renderer.render(order, cam, background=bg, lighting=UNLIT)
        both = (40, 40)     # x = 0: behind the lens
        only_front = (40, 62)  # x = 0.2 .. right part: lens over background
        only_back = (40, 20)
        np.testing.assert_allclose(out.rgb[both], [0.75, 0.0, 0.25], atol=0.01)
        assert out.alpha[both] == pytest.approx(1.0) and out.labels[both] == 2
        assert out.depth[both] == pytest.approx(1.0, abs=1e-5)  # the opaque surface, not the lens
        np.testing.assert_allclose(out.rgb[only_front], [0.0, 0.3, 0.25], atol=0.01)
        assert out.alpha[only_front] == pytest.approx(0.25, abs=0.01)
        assert out.labels[only_front] == 0 and out.depth[only_front] == 0
        np.testing.assert_allclose(out.rgb[only_back], [1.0, 0.0, 0.0], atol=0.01)
    # a translucent mesh behind an opaque one is hidden
    hidden = Mesh(*quad((0.0, 0.0), 0.3, z=-0.2), color=(0.0, 0.0, 1.0), opacity=0.5)
    out = renderer.render([Mesh(*quad((0.0, 0.0), 0.3), color=(1.0, 0.0, 0.0)), hidden], cam, lighting=UNLIT)
    np.testing.assert_allclose(out.rgb[40, 40], [1.0, 0.0, 0.0], atol=0.01)


def test_lighting_known_values(renderer):
    cam = make_camera(width=64, height=64, fx=80, fy=80, cx=31.5, cy=31.5)
    light = Lighting(key_direction=(0, 0, -1), key_intensity=0.5, fill_intensity=0.0, ambient=0.25)
    v, f = quad((0.0, 0.0), 0.3)
    out = renderer.render([Mesh(v, f, color=(0.8, 0.8, 0.8), specular=0.0)], cam, lighting=light)
    assert out.rgb[32, 32, 0] == pytest.approx(0.8 * (0.25 + 0.5), abs=0.01)
    # tilt the quad 60 degrees about the vertical axis: Lambert gives cos 60 = 0.5
    a = math.radians(60)
    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], np.float32)
    out = renderer.render([Mesh(v @ rot.T, f, color=(0.8, 0.8, 0.8), specular=0.0)], cam, lighting=light)
    assert out.rgb[32, 32, 0] == pytest.approx(0.8 * (0.25 + 0.5 * 0.5), abs=0.01)
    # a highlight where the half vector meets the normal (frontal light, frontal view)
    out = renderer.render([Mesh(v, f, color=(0.4, 0.4, 0.4), specular=0.5)], cam, lighting=light)
    assert out.rgb[32, 32, 0] == pytest.approx(0.4 * 0.75 + 0.5 * 0.5, abs=0.02)
    # the default rig lights a frontal surface without clipping
    out = renderer.render([Mesh(v, f, color=(0.8, 0.8, 0.8))], cam)
    assert 0.6 < out.rgb[32, 32, 0] < 0.99


def test_msaa_smooths_rgb_but_never_mixes_labels(renderer):
    cam = make_camera(width=64, height=64, fx=80, fy=80, cx=31.5, cy=31.5)
    v = np.array([[-0.25, -0.2, 0], [0.3, -0.25, 0], [-0.2, 0.3, 0], [0.28, 0.22, 0]], np.float32)
    f = np.array([[0, 1, 2], [1, 3, 2]])
    out = renderer.render([Mesh(v, f, face_labels=np.array([1, 3]), color=(1, 1, 1))], cam, lighting=UNLIT)
    fractional = (out.alpha > 0.05) & (out.alpha < 0.95)
    if renderer.samples >= 2:
        assert fractional.sum() > 20  # antialiased silhouette
    assert set(np.unique(out.labels)) == {0, 1, 3}
    np.testing.assert_allclose(out.rgb[..., 0], out.alpha, atol=1 / 255 + 1e-6)  # white over black


def test_repeat_renders_and_sizes(renderer):
    v, f, _ = cube(0.2)
    mesh = Mesh(torch.from_numpy(v), torch.from_numpy(f), face_labels=np.repeat(np.arange(1, 7), 2))
    a = orbit_camera(30, 15, 0.8, width=64, height=48)
    b = orbit_camera(30, 15, 0.8, width=100, height=130)
    first = renderer.render([mesh], a)
    other = renderer.render([mesh], b)
    again = renderer.render([Mesh(v, f, face_labels=np.repeat(np.arange(1, 7), 2))], a)  # numpy == torch
    assert first.rgb.shape == (48, 64, 3) and other.rgb.shape == (130, 100, 3)
    for name in ("rgb", "alpha", "depth", "normals", "labels"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
    for cam, out in ((a, first), (b, other)):  # the cube centre projects onto the +z/+x/+y corner region
        u, vv = cam.project(torch.tensor([[0.1, 0.1, 0.1]]))[0].round().int().tolist()
        assert out.alpha[vv, u] > 0.2
    assert first.labels.dtype == np.int32 and first.rgb.dtype == np.float32


def test_bad_input_raises_one_line_errors(renderer):
    cam = make_camera()
    v, f = quad((0.0, 0.0), 0.2)
    cases = [Mesh(v, f + 10), Mesh(v[:, :2], f), Mesh(v, f, texture=np.zeros((2, 2, 3), np.uint8)),
             Mesh(v, f, opacity=2.0), Mesh(v, f, colors=np.ones((3, 3))),
             Mesh(v, f, uvs=np.zeros((4, 2)), texture=np.zeros((2, 2), np.uint8)),
             Mesh(v, f, face_labels=np.array([1.5, 2.0]))]
    for mesh in cases:
        with pytest.raises(PerseError) as err:
            renderer.render([mesh], cam)
        assert "\n" not in str(err.value)
    # the renderer still works after rejected input
    assert renderer.render([Mesh(v, f)], cam).alpha.max() == 1.0


# ---------------------------------------------------------------- platforms (subprocesses)

_SCRIPT = textwrap.dedent("""
    import numpy as np, sys
    from perse.render.camera import orbit_camera
    from perse.render.gl import Mesh, MeshRenderer, create_gl_context
    from perse.render.gl.context import current_context_id
    # another GL user's context (stands in for DearPyGui's) is current before and after our work
    other = create_gl_context()
    other.make_current()
    before = current_context_id(other.platform)
    assert before is not None
    r = MeshRenderer()
    assert current_context_id(other.platform) == before, "creating the renderer stole the current context"
    v = np.array([[-.1, -.1, 0], [.1, -.1, 0], [0, .1, 0]], np.float32)
    out = r.render([Mesh(v, np.array([[0, 1, 2]]), face_labels=np.array([7]))], orbit_camera(width=64, height=64))
    assert out.labels[32, 32] == 7 and abs(out.depth[32, 32] - 0.6) < 1e-4, (out.labels[32, 32], out.depth[32, 32])
    assert current_context_id(other.platform) == before, "rendering did not restore the current context"
    print("platform=" + r.context.platform, r.context.info()["renderer"])
    r.close()
    assert current_context_id(other.platform) == before, "closing the renderer lost the current context"
    other.release()
""")


def _run(env_updates: dict, script: str = _SCRIPT, drop=("DISPLAY",)) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "PYOPENGL_PLATFORM"}
    env.update(env_updates)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(ctypes.util.find_library("EGL") is None, reason="libEGL is not installed (apt-get install libegl1)")
def test_egl_platform_without_display():
    res = _run({"PERSE_GL": "egl"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "platform=egl" in res.stdout


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)")
def test_glfw_platform_under_xvfb():
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "320x240x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            display = pipe.readline().strip()  # Xvfb writes its display number once it accepts clients
        assert display, "Xvfb did not start"
        res = _run({"DISPLAY": f":{display}"}, drop=("DISPLAY", "PERSE_GL"))
        assert res.returncode == 0, res.stderr[-2000:]
        assert "platform=glfw" in res.stdout
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def test_platform_conflict_is_a_clear_error():
    script = textwrap.dedent("""
        import os
        os.environ["PYOPENGL_PLATFORM"] = "glx"
        import OpenGL.GL  # loads the GLX platform first
        from perse.errors import PerseError
        from perse.render.gl import create_gl_context
        try:
            create_gl_context()
        except PerseError as e:
            print("ERR", e)
    """)
    res = _run({"PERSE_GL": "egl"}, script=script)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ERR OpenGL was already imported with the GLX platform" in res.stdout


def test_per_mesh_unlit_shows_the_albedo_next_to_lit_meshes(renderer):
    """A photo-textured mesh keeps its colours exactly; a lit mesh beside it is shaded."""
    from perse.render.camera import orbit_camera
    from perse.render.gl import Lighting, Mesh

    quad_v = np.array([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.1, 0.1, 0.0], [-0.1, 0.1, 0.0]], np.float32)
    quad_f = np.array([[0, 1, 2], [0, 2, 3]])
    albedo = np.full((4, 3), 0.6, np.float32)
    cam = orbit_camera(35.0, 20.0, 0.8, width=64, height=64)
    lit = renderer.render([Mesh(quad_v, quad_f, colors=albedo)], cam, lighting=Lighting())
    unlit = renderer.render([Mesh(quad_v, quad_f, colors=albedo, unlit=True)], cam, lighting=Lighting())
    centre = (32, 32)
    assert abs(unlit.rgb[centre][0] - 0.6) < 2 / 255
    assert abs(lit.rgb[centre][0] - 0.6) > 0.02
