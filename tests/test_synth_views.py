"""Dataset views and layers: frames from all around the head, a neck that fades out, the hair layer's
shell drawn over the scalp and seeded into the avatar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perse.head import load_builtin_head
from perse.head.model import HeadParams
from perse.render.camera import orbit_camera
from perse.synth import AttributeDataset, SynthSettings, category_by_name, generate_dataset
from perse.synth.frame_renderer import FrameRenderer
from perse.synth.hair import HairLayer
from perse.synth.anatomy import head_anatomy

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def head():
    return load_builtin_head()


@pytest.fixture(scope="module")
def hair_layer(head):
    a = head_anatomy(head)
    shell = a.vertex_mask(["scalp", "back_of_head"])
    return HairLayer(thickness=(0.02 * shell).astype(np.float32))


def test_some_training_views_see_the_back_of_the_head(tmp_path, head, renderer):
    out = generate_dataset(tmp_path / "d", head, SynthSettings(num_frames_per_variant=2, image_size=64,
                                                               texture_size=256, categories=["hair", "glasses"]),
                           progress=False, renderer=renderer)
    ds = AttributeDataset(out)
    yaws = []
    for i in ds.indices("train"):
        cam = ds.load_frame(i).camera
        c2w = torch.linalg.inv(cam.world_to_cam)
        forward = c2w[:3, 2].numpy()                     # camera z in world: where it looks
        yaws.append(np.degrees(np.arctan2(-forward[0], -forward[2])))
    assert max(abs(y) for y in yaws) > 100, yaws         # at least one view from behind


def test_neck_fades_out_below_the_chin(head, renderer):
    fr_plain = FrameRenderer(head, [category_by_name("hair")], 256, renderer=renderer, neck_fade_m=None)
    fr_fade = FrameRenderer(head, [category_by_name("hair")], 256, renderer=renderer,
                            neck_fade_m=SynthSettings().neck_fade_m)
    verts = fr_plain.posed_vertices(HeadParams())
    cam = orbit_camera(0, 0, 0.9, (0.0, -0.02, 0.0), 25, 128, 128)
    look = {"hair": "brown"}
    plain = fr_plain.render(look, verts, cam, 0)[0][..., 3].astype(float) / 255
    faded = fr_fade.render(look, verts, cam, 0)[0][..., 3].astype(float) / 255
    face = slice(20, 60)                                  # rows of the face: untouched
    assert np.abs(plain[face] - faded[face]).max() < 1e-6
    rows_plain, rows_faded = plain.sum(1), faded.sum(1)
    bottom = np.nonzero(rows_plain > 0)[0].max()
    assert rows_faded[bottom - 2] < 0.2 * rows_plain[bottom - 2]     # gone at the bottom of the neck
    # MSAA covers silhouette pixels the single-sampled labels miss; they fade too, or the cut
    # cylinder's outline stays drawn below the fade.
    assert faded[bottom - 6:].max() < 0.05, faded[bottom - 6:].max()
    assert np.all(faded <= plain + 1e-6)


def test_hair_shell_is_drawn_and_seeded(tmp_path, head, renderer, hair_layer):
    from perse.train.trainer import TrainConfig, new_avatar_for_dataset

    cats = [category_by_name("hair")]
    fr_bald = FrameRenderer(head, cats, 256, renderer=renderer)
    fr_hair = FrameRenderer(head, cats, 256, renderer=renderer, hair_layer=hair_layer)
    verts = fr_bald.posed_vertices(HeadParams())
    cam = orbit_camera(90, 0, 0.9, (0.0, 0.03, 0.0), 25, 128, 128)
    bald = fr_bald.render({"hair": "brown"}, verts, cam, 0)[0][..., 3] > 127
    hair = fr_hair.render({"hair": "brown"}, verts, cam, 0)[0][..., 3] > 127
    assert hair.sum() > bald.sum() * 1.05 and not (bald & ~hair).any()

    out = generate_dataset(tmp_path / "d", head, SynthSettings(num_frames_per_variant=1, image_size=48,
                                                               texture_size=256, categories=["hair"]),
                           progress=False, renderer=renderer, base_texture=fr_bald.texture({"hair": "brown"}),
                           hair_layer=hair_layer)
    ds = AttributeDataset(out)
    assert np.allclose(ds.hair_layer(head.num_vertices).thickness, hair_layer.thickness)
    cfg = TrainConfig.preset("cpu")
    cfg.num_gaussians = 3000
    avatar = new_avatar_for_dataset(ds, cfg, head)
    with torch.no_grad():
        g = avatar.gaussians()
        v = avatar.head_vertices(HeadParams())
    scalp = torch.from_numpy(head_anatomy(head).vertex_mask(["scalp"]))
    top = v[scalp]
    # Gaussians above the crown start on the shell, ~2 cm out, not on the bald scalp.
    d = torch.cdist(g.means, top).min(dim=1).values
    near_top = g.means[:, 1] > top[:, 1].max() - 0.01
    assert near_top.any() and d[near_top].median() > 0.012
