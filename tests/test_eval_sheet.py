"""Contact sheet (perse.eval.sheet) and the eval views it renders through."""

import numpy as np
import pytest
import torch

from perse.avatar.io import load_avatar
from perse.eval import sheet, views
from perse.paths import resolve_avatar_path
from perse.render.framing import yawed_camera


@pytest.fixture(scope="module")
def default_avatar():
    return load_avatar(resolve_avatar_path("default"))


def test_tiles_cover_views_expressions_and_every_variant(default_avatar):
    labels = [t.label for t in sheet.sheet_tiles(default_avatar)]
    assert labels[:6] == ["yaw 0", "yaw 45", "yaw 90", "yaw 180", "jawOpen=1", "blink"]
    variants = sum(len(c.variants) - 1 for c in default_avatar.categories)
    assert len(labels) == 6 + variants
    assert "glasses=sunglasses" in labels and "hair=brown" not in labels  # the reference is not a variant


def test_grid_places_tiles_row_major():
    tiles = [np.full((4, 5, 3), i, np.uint8) for i in range(5)]
    out = sheet.grid(tiles, columns=3, gap=1)
    assert out.shape == (2 * 5 - 1, 3 * 6 - 1, 3)
    assert out[0, 0, 0] == 0 and out[0, 6, 0] == 1 and out[5, 0, 0] == 3 and out[5, 6, 0] == 4
    assert out[5, 12, 0] == 255  # the unused cell stays white


def test_label_tile_adds_a_strip_with_text():
    img = sheet.label_tile(np.zeros((32, 64, 3), np.uint8), "hair=red")
    assert img.shape == (32 + sheet.LABEL_HEIGHT, 64, 3)
    strip = img[32:]
    assert strip.min() < 100 < strip.max()  # dark text on the light strip


def test_yawed_camera_matches_the_front_orbit(default_avatar):
    cam0 = views.front_camera(default_avatar, 64, 0.0)
    centre = views.head_centre(default_avatar, default_avatar.reference_state())
    for yaw in (20.0, -45.0, 180.0):
        turned = yawed_camera(cam0, centre, yaw)
        assert torch.allclose(turned.world_to_cam, views.front_camera(default_avatar, 64, yaw).world_to_cam, atol=1e-4)


def test_contact_sheet_renders_distinct_tiles(default_avatar, tmp_path):
    out = tmp_path / "sheet.png"
    image = sheet.write_contact_sheet(default_avatar, out, size=40)
    assert out.exists() and image.dtype == np.uint8
    n = len(sheet.sheet_tiles(default_avatar))
    rows = -(-n // sheet.COLUMNS)
    assert image.shape == (rows * (40 + sheet.LABEL_HEIGHT + 2) - 2, sheet.COLUMNS * 42 - 2, 3)
    front, back = image[:40, :40], image[:40, 3 * 42:3 * 42 + 40]
    assert (front < 250).any() and np.abs(front.astype(int) - back).max() > 30  # a head, and it turned


def test_cli_eval_sheet_and_errors(tmp_path, capsys, monkeypatch):
    from perse.cli import main

    full = sheet.sheet_tiles
    monkeypatch.setattr(sheet, "sheet_tiles", lambda avatar: full(avatar)[:3])  # the wiring, not every tile
    out = tmp_path / "s.png"
    assert main(["eval", "default", "--sheet", str(out), "--sheet-size", "32"]) == 0 and out.exists()
    assert main(["eval", "default"]) == 2
    assert main(["eval", "default", "--sheet", str(tmp_path / "s.jpg")]) == 2
    assert not (tmp_path / "s.jpg").exists()
    assert main(["eval", "default", str(tmp_path), "--sheet", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("perse: error:") == 3
