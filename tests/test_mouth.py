"""The mouth interior of the synthetic head: hidden behind closed lips, shown by jawOpen, teeth that
follow the right bones."""

import numpy as np
import pytest

from perse.render.camera import orbit_camera
from perse.synth.variants import CATEGORIES

TEETH_LABEL = {"teeth_upper": 901, "teeth_lower": 902}


@pytest.fixture(scope="module")
def frame_renderer(builtin_head, renderer):
    from perse.synth.frame_renderer import FrameRenderer

    fr = FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0, renderer=renderer)
    assert fr.mouth is not None
    return fr


def posed(head, **expr):
    p = head.zero_params()
    for name, value in expr.items():
        p.expression[0, head.expression_names.index(name)] = value
    return p


def teeth_pixels(fr, verts, yaw=0.0, pitch=0.0, size=256):
    """{part: pixel count} of each teeth arch visible in a face render (labels of the GL render)."""
    ms = fr.meshes({}, verts)
    mouth = fr.mouth.meshes(verts)
    names = ["cavity"] + [p.name for p in fr.mouth.parts] + ["lip_seal"]
    for name, m in zip(names, mouth):
        m.face_labels = np.full(len(m.faces), TEETH_LABEL.get(name, 0), np.int32)
    # Head (pocket removed) + the relabelled mouth, as FrameRenderer.meshes draws them.
    cam = orbit_camera(yaw, pitch, 0.9, (0.0, -0.03, 0.0), 16.0, size, size)
    labels = fr.renderer.render([ms[0]] + mouth, cam, background=(0, 0, 0)).labels
    return {k: int((labels == v).sum()) for k, v in TEETH_LABEL.items()}


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (0, 20), (0, -20), (30, 10), (-35, -10), (70, 0)])
def test_teeth_hidden_behind_closed_lips(frame_renderer, builtin_head, yaw, pitch):
    verts = frame_renderer.posed_vertices(posed(builtin_head))
    assert teeth_pixels(frame_renderer, verts, yaw, pitch) == {"teeth_upper": 0, "teeth_lower": 0}


def test_jaw_open_shows_both_arches(frame_renderer, builtin_head):
    verts = frame_renderer.posed_vertices(posed(builtin_head, jawOpen=0.6))
    px = teeth_pixels(frame_renderer, verts)
    assert px["teeth_lower"] > 40 and px["teeth_upper"] > 8, px
    # Seen from below, the upper arch shows more.
    assert teeth_pixels(frame_renderer, verts, 0, -15)["teeth_upper"] > px["teeth_upper"]


def test_closed_mouth_render_changes_only_between_the_lips(frame_renderer, builtin_head):
    """The mouth may only recolour the slit between the neutral lips (no teeth, nothing on the skin)."""
    from perse.landmarks import LIPS_INNER as MP_LIPS_INNER

    fr = frame_renderer
    verts = fr.posed_vertices(posed(builtin_head))
    cam = orbit_camera(0, 0, 0.9, (0.0, -0.03, 0.0), 16.0, 256, 256)
    with_mouth = fr.render({}, verts, cam, 2, np.eye(3))[0].astype(float)
    mouth, fr.mouth = fr.mouth, None
    try:
        without = fr.render({}, verts, cam, 2, np.eye(3))[0].astype(float)
    finally:
        fr.mouth = mouth
    changed = np.abs(with_mouth - without).max(axis=-1) / 255 > 0.06
    inner = builtin_head.landmarks(builtin_head(posed(builtin_head)).vertices)[0][list(MP_LIPS_INNER)]
    uv = cam.project(inner).numpy()
    rows, cols = np.nonzero(changed)
    assert changed.sum() < 80
    assert (cols >= uv[:, 0].min() - 2).all() and (cols <= uv[:, 0].max() + 2).all()
    assert (rows >= uv[:, 1].min() - 2).all() and (rows <= uv[:, 1].max() + 2).all()


def test_lower_teeth_follow_the_jaw_upper_teeth_the_skull(frame_renderer, builtin_head):
    fr = frame_renderer
    parts = {p.name: p for p in fr.mouth.parts}
    rest = fr.posed_vertices(posed(builtin_head))
    open_ = fr.posed_vertices(posed(builtin_head, jawOpen=1.0))
    up0, up1 = parts["teeth_upper"].posed(rest), parts["teeth_upper"].posed(open_)
    lo0, lo1 = parts["teeth_lower"].posed(rest), parts["teeth_lower"].posed(open_)
    assert np.abs(up1 - up0).max() < 1e-6                        # the skull does not move with the jaw
    drop = (lo0 - lo1)[:, 1]
    assert drop.min() > 0.004 and drop.max() < 0.03              # lower teeth go down with the jaw ...
    # ... rigidly: the arch keeps its shape (distances between crowns within 3 %).
    i = np.linspace(0, len(lo0) - 1, 40).astype(int)
    d0 = np.linalg.norm(lo0[i, None] - lo0[None, i], axis=-1)
    d1 = np.linalg.norm(lo1[i, None] - lo1[None, i], axis=-1)
    assert np.abs(d1 - d0).max() < 0.03 * d0.max()
    # Lip expressions barely move the teeth (they hang on the cavity's most rigid triangles).
    for name in ("mouthSmileLeft", "mouthPucker", "mouthFunnel", "mouthStretchRight"):
        lips = fr.posed_vertices(posed(builtin_head, **{name: 1.0}))
        assert np.abs(parts["teeth_upper"].posed(lips) - up0).max() < 0.002, name
    tongue = parts["tongue"]
    assert (tongue.posed(rest) - tongue.posed(open_))[:, 1].mean() > 0.004


def test_teeth_are_mirror_symmetric(frame_renderer):
    from scipy.spatial import cKDTree

    for part in frame_renderer.mouth.parts:
        v = part.vertices
        d, _ = cKDTree(v).query(v * [-1.0, 1.0, 1.0])
        # Crowns are mirrored copies; tubes (gums) only approximately (their rings turn along the path).
        assert d.max() < (1e-6 if part.name.startswith("teeth") else 0.0006), part.name


def test_the_photos_teeth_paint_the_crowns_it_shows_and_only_those(builtin_head, renderer):
    """A portrait that shows its teeth gives the crowns it sees its own colours (here a flat, yellowed
    enamel), seen then from any side; crowns its camera does not see keep the synthetic enamel, and a
    photo whose mouth shows no teeth (a dark, or a red, opening) paints none."""
    import torch

    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.mouth import TEETH_PARTS
    from perse.synth.reference import ReferenceView

    fr = FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0, renderer=renderer)
    params = posed(builtin_head, jawOpen=0.6)
    cam = orbit_camera(0.0, 0.0, 0.9, (0.0, -0.03, 0.0), 16.0, 256, 256)
    with torch.no_grad():
        landmarks = cam.project(builtin_head(params).landmarks[0]).numpy().astype(np.float64)
    before = {p.name: p.colors.copy() for p in fr.mouth.parts}
    assert fr.use_photo_teeth(ReferenceView(cam, params)) == 0            # no photo: nothing to take
    for not_teeth in ((20, 10, 10), (255, 0, 255)):                      # shadow, or saturated colour
        photo = np.full((256, 256, 3), not_teeth, np.uint8)
        assert fr.use_photo_teeth(ReferenceView(cam, params, image=photo, landmarks=landmarks)) == 0
    photo = np.full((256, 256, 3), (255, 214, 160), np.uint8)
    painted = fr.use_photo_teeth(ReferenceView(cam, params, image=photo, landmarks=landmarks))
    assert painted > 20
    yellowed = np.array([255, 214, 160]) / 255.0
    for part in fr.mouth.parts:
        changed = np.abs(part.colors - before[part.name]).max(axis=1) > 1e-6
        if part.name not in TEETH_PARTS:
            assert not changed.any(), part.name                               # gums, tongue: untouched
            continue
        assert np.abs(part.colors[changed] - yellowed).max(axis=1).min() < 0.05   # the photo's colour
    # Turned by 30 degrees the painted crowns still show the photo's colour.
    side = orbit_camera(30.0, 0.0, 0.9, (0.0, -0.03, 0.0), 16.0, 256, 256)
    rgba, _, _ = fr.render({}, fr.posed_vertices(params), side, 0)
    r, g, b = (rgba[..., i].astype(float) for i in range(3))
    photo_teeth = (r > 150) & (b < 0.72 * r) & (g > 0.72 * r)   # the enamel's own blue is ~0.9 of its red
    assert photo_teeth.sum() > 5
    # Only what the photo's camera sees: closed lips hide every crown, even under a mask over everything.
    closed = FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0, renderer=renderer)
    everywhere = np.full((478, 2), 128.0)
    from perse.landmarks import LIPS_INNER
    ring = np.linspace(0, 2 * np.pi, len(LIPS_INNER), endpoint=False)
    everywhere[list(LIPS_INNER)] = np.stack([128 + 400 * np.cos(ring), 128 + 400 * np.sin(ring)], axis=1)
    assert closed.use_photo_teeth(ReferenceView(cam, posed(builtin_head), image=photo, landmarks=everywhere)) == 0


def test_teeth_reach_follows_the_photos_run_of_teeth_down_its_column():
    """From a point on the rendered biting edge, the reach is how far the photo's teeth go on below it:
    a one-pixel dark line is bridged, a wider gap (the cavity) ends the run, a run down to the bottom of
    the opening ends behind the lower lip, and a point with no teeth under it reaches nothing."""
    from perse.synth.teeth import teeth_reach_px

    teeth = np.zeros((20, 6), bool)
    teeth[5:12, 0] = True                       # 5..11, then cavity
    teeth[5:9, 1] = teeth[10:14, 1] = True      # a one-pixel line at 9, bridged
    teeth[5:9, 2] = teeth[12:14, 2] = True      # a three-pixel gap: the run ends at 8
    teeth[5:10, 3] = True                       # down to the opening's bottom (row 9)
    opening = np.zeros((20, 6), bool)
    opening[4:15, :3] = opening[4:10, 3:] = True
    edge = np.array([[0.0, 6.0], [1.0, 6.0], [2.0, 6.0], [3.0, 6.0], [4.0, 6.0], [0.0, 14.0]])
    reach = teeth_reach_px(teeth, edge, opening, past_lip_px=1.5)
    np.testing.assert_allclose(reach, [11.5 - 6, 13.5 - 6, 8.5 - 6, 9.5 - 6 + 1.5, 0.0, 0.0])
    np.testing.assert_allclose(teeth_reach_px(teeth, edge)[:4], [5.5, 7.5, 2.5, 3.5])   # no opening given


def smile(builtin_head, color):
    """The built-in head smiling with its mouth open, seen from the front, and a 'photo' of it whose
    mouth opening is filled with `color` (RGB uint8): (params, camera, photo, landmarks, opening mask)."""
    import torch

    from perse.synth.reference import mouth_opening_mask

    params = posed(builtin_head, jawOpen=0.5)
    cam = orbit_camera(0.0, 0.0, 0.9, (0.0, -0.03, 0.0), 16.0, 256, 256)
    with torch.no_grad():
        landmarks = cam.project(builtin_head(params).landmarks[0]).numpy().astype(np.float64)
    mask = mouth_opening_mask(landmarks, (256, 256))
    photo = np.full((256, 256, 3), 200, np.uint8)
    photo[mask > 0] = color
    return params, cam, photo, landmarks, mask


@pytest.mark.parametrize("shows_teeth", [True, False])
def test_a_smile_full_of_teeth_lengthens_the_upper_crowns_and_a_dark_one_does_not(builtin_head, renderer,
                                                                                 shows_teeth):
    """Where the portrait's teeth fill its mouth opening, the upper crowns reach further down (by at
    most MAX_EXTRA_SHOW_M, front crowns at least as far as those behind them) with their necks kept;
    a mouth that shows only shadow leaves them as they are."""
    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.mouth import MAX_EXTRA_SHOW_M
    from perse.synth.reference import ReferenceView

    fr = FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0, renderer=renderer)
    upper = lambda: next(p for p in fr.mouth.parts if p.name == "teeth_upper").vertices  # noqa: E731
    before = upper().copy()
    params, cam, photo, landmarks, mask = smile(builtin_head, (235, 225, 200) if shows_teeth else (40, 12, 12))
    extra = fr.mouth.fit_photo_show(photo, mask, cam, fr.posed_vertices(params))
    after = upper().copy()
    if not shows_teeth:
        assert not extra.any() and np.array_equal(after, before)
        return
    assert extra[0] > 0.001 and extra.max() <= MAX_EXTRA_SHOW_M + 1e-12
    fr.mouth.fit_photo_show(photo, mask, cam, fr.posed_vertices(params))      # again: the bound is the total's
    assert fr.mouth.extra_show.max() <= MAX_EXTRA_SHOW_M + 1e-12
    assert np.all(np.diff(fr.mouth.extra_show) <= 1e-12)
    assert np.all(np.diff(extra) <= 1e-12)                                  # the smile line
    np.testing.assert_allclose(before[:, 1].min() - after[:, 1].min(), extra[0], atol=2e-4)
    np.testing.assert_allclose(after[:, 1].max(), before[:, 1].max(), atol=2e-4)   # necks stay in the gums
    # The painted crowns then fill more of the photo's opening in the photo's own view.
    rgba, _, _ = fr.render({}, fr.posed_vertices(params), cam, 0)
    fresh = FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0, renderer=renderer)
    rgba0, _, _ = fresh.render({}, fr.posed_vertices(params), cam, 0)
    bright = lambda im: int(((im[..., :3].mean(axis=2) > 170) & (mask > 0.5)).sum())  # noqa: E731
    assert bright(rgba) > bright(rgba0) + 10
    assert ReferenceView(cam, params, image=photo, landmarks=landmarks).teeth_color() is not None


def test_the_lower_lips_inner_edge_takes_the_photos_lip_colour(builtin_head, renderer):
    """The cavity's first ring on the lower half (the lower lip's wet inner edge) takes the colour the
    photo's lower lip has below the inner-lip line, a shade darker; the rest of the lining keeps its
    depth gradient."""
    from perse.synth.frame_renderer import FrameRenderer
    from perse.synth.mouth import LINING_SHADE

    fr = FrameRenderer(builtin_head, list(CATEGORIES), texture_size=256, seed=0, renderer=renderer)
    params, cam, _, _, _ = smile(builtin_head, (0, 0, 0))
    before = fr.mouth.bag.colors.copy()
    lip = np.array([200, 90, 100], np.uint8)
    got = fr.mouth.use_photo_lining(np.full((256, 256, 3), lip, np.uint8), cam, fr.posed_vertices(params))
    np.testing.assert_allclose(got, lip / 255.0 * LINING_SHADE, atol=1e-6)
    changed = np.abs(fr.mouth.bag.colors - before).max(axis=1) > 1e-9
    n_lower = len(fr.mouth.pocket.lower_loop) - 2
    assert changed.sum() == n_lower                                        # only the lower lip's ring
    np.testing.assert_allclose(fr.mouth.bag.colors[changed], np.broadcast_to(got, (n_lower, 3)), atol=1e-6)


def test_the_side_teeth_of_a_smile_stay_bright_with_faint_gaps():
    """A smile shows canines and premolars almost as bright as the incisors, with faint lines between the
    crowns; darker, the dataset's smile read as braces (grey crowns, black lines between them)."""
    from perse.synth.teeth import SETBACK, enamel_colors

    middle = np.array([[0.0, 0.4]])                                   # mid-crown, away from edge and neck
    front = enamel_colors(middle, np.array([SETBACK])).mean()
    premolar = enamel_colors(middle, np.array([SETBACK + 0.012])).mean()
    gap = enamel_colors(np.array([[1.0, 0.4]]), np.array([SETBACK])).mean()
    assert premolar > 0.7 * front
    assert gap > 0.8 * front


def test_only_blade_edged_crowns_have_a_translucent_edge(frame_renderer):
    """Incisors and canines thin to a blade with a blue-grey translucent edge; premolars and molars end in
    thick, opaque cusps (in the edge colour the open mouth's lower arch read as a grey wire outline)."""
    from perse.synth.teeth import INCISAL, LOWER_TEETH, SETBACK, enamel_colors, teeth_arch

    edge, middle = np.array([[0.0, 0.0]]), np.array([[0.0, 0.4]])
    depth = np.array([SETBACK])
    np.testing.assert_allclose(enamel_colors(edge, depth, blade=True)[0], INCISAL, atol=1e-6)
    np.testing.assert_allclose(enamel_colors(edge, depth, blade=False), enamel_colors(middle, depth, blade=False))
    # In the built arch: the molars' biting surface (the vertices nearest the lower arch's top) is as warm
    # as enamel (red above blue), not the edge's blue-grey.
    verts, faces, colors, _ = teeth_arch(frame_renderer.mouth.pocket, upper=False)
    per_crown = len(verts) // (2 * len(LOWER_TEETH))
    molar = slice((len(LOWER_TEETH) - 1) * per_crown, len(LOWER_TEETH) * per_crown)   # right half's last crown
    top = verts[molar, 1] > np.quantile(verts[molar, 1], 0.8)
    assert (colors[molar][top, 0] > colors[molar][top, 2] + 0.03).all()
