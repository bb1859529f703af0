"""The outside-in measures as pure functions, on synthetic inputs (perse.eval)."""

import numpy as np
import pytest

from perse.eval import attributes, backview, portrait, regions, silhouette
from perse.eval.regions import Region


def disc(shape, centre, radius):
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 < radius ** 2


def test_changed_uses_the_largest_channel_difference():
    a = np.zeros((2, 2, 3))
    b = a.copy()
    b[0, 0, 2], b[1, 1] = 0.2, 0.1
    assert attributes.changed(a, b, 0.15).tolist() == [[True, False], [False, False]]
    assert attributes.changed(a, b, 0.06).sum() == 2


def test_variant_change_counts_inside_and_leakage_outside():
    shape = (64, 64)
    inside = np.zeros(shape, bool)
    inside[10:20, 10:20] = True
    region = Region(inside, regions.dilate(inside, 2))
    ref = np.zeros(shape + (3,))
    var = ref.copy()
    var[10:20, 10:15] = 0.5            # 50 visible pixels inside
    var[40:42, 40:50] = 0.1            # 20 leaked pixels outside (above 0.06)
    c = attributes.variant_change(ref, var, region)
    outside = (~region.allowed).sum()
    assert c["inside_px"] == 50 and c["inside_px_512"] == pytest.approx(50 * 64)
    assert c["outside_fraction"] == pytest.approx(20 / outside)
    verdict = attributes.judge("hair", "black", c)
    assert verdict["visible"] and not verdict["local"]
    assert attributes.min_inside_px("earrings", "studs") == 30 < attributes.min_inside_px("hair", "red")


def test_above_mouth_line_follows_a_tilted_face():
    lm = np.zeros((478, 2))
    lm[61], lm[291], lm[152] = (10, 30), (50, 40), (30, 60)  # mouth line tilted, chin below
    mask = silhouette.above_mouth_mask(lm, (64, 64))
    assert mask[5, 30] and not mask[60, 30]
    assert mask[28, 10]  # just above the left corner
    assert not mask[38, 10]  # below the line near the left corner (the line is at y=30 there)
    flipped = lm.copy()
    flipped[152] = (30, 0)  # "chin" above: the kept side flips
    assert not silhouette.above_mouth_mask(flipped, (64, 64))[5, 30]


def test_silhouette_iou_above_the_mouth_and_within_the_photo():
    shape = (100, 100)
    lm = np.zeros((478, 2))
    lm[61], lm[291], lm[152] = (0, 60), (99, 60), (50, 90)
    head = disc(shape, (50, 35), 20).astype(np.float32)
    person = disc(shape, (50, 35), 24) | (np.arange(100)[:, None] > 70)  # bigger head + shoulders below
    s = silhouette.silhouette_iou(head, person.astype(np.float32), lm)
    assert s["iou"] == pytest.approx((20 / 24) ** 2, abs=0.02) and s["extra"] == 0 and s["missing"] > 0
    assert silhouette.silhouette_iou(head, head, lm)["iou"] == 1.0
    valid = np.zeros(shape, bool)
    assert silhouette.silhouette_iou(head, head, lm, valid)["iou"] is None


def test_off_palette_fraction_in_lab():
    rng = np.random.default_rng(0)
    browns = np.clip(np.array([0.45, 0.32, 0.2]) + rng.normal(0, 0.03, (500, 3)), 0, 1)
    colours = backview.palette(browns, max_colours=200)
    assert colours.shape == (200, 3)
    same = browns[:100] + 0.005
    purple = np.tile([0.5, 0.1, 0.6], (25, 1))
    assert backview.off_palette_fraction(same, colours) == 0.0
    assert backview.off_palette_fraction(np.r_[same, purple], colours) == pytest.approx(0.2)
    assert backview.off_palette_fraction(np.zeros((0, 3)), colours) == 0.0


def test_back_hair_mask_keeps_the_head_above_the_ear_line():
    alpha = np.zeros((10, 4))
    alpha[2:9, 1:3] = 1
    assert backview.back_hair_mask(alpha, 5.0).sum() == 3 * 2


def test_similarity_alignment_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, (478, 2))
    a = np.deg2rad(12)
    m = 1.7 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ m.T + [30, -10]
    got = portrait.similarity_matrix(src, dst)
    assert np.allclose(got[:, :2], m, atol=1e-6) and np.allclose(got[:, 2], [30, -10], atol=1e-4)

    person = np.zeros((200, 200), np.float32)
    person[50:100, 60:120] = 1
    p = portrait.Portrait(np.zeros((200, 200, 3), np.uint8), src, person)
    aligned = portrait.align_portrait(p, dst, 400)
    assert np.allclose(aligned.landmarks, dst, atol=1e-3)
    centre = np.array([90, 75]) @ m.T + [30, -10]
    assert aligned.person[int(centre[1]), int(centre[0])] == pytest.approx(1)
    assert aligned.valid[int(centre[1]), int(centre[0])] and not aligned.valid[399, 0]


def test_small_photos_are_enlarged_for_landmarks():
    small = np.zeros((100, 150, 3), np.uint8)
    assert portrait.enlarge_small(small).shape[:2] == (512, 768)
    big = np.zeros((600, 700, 3), np.uint8)
    assert portrait.enlarge_small(big) is big


def test_region_helpers():
    shape = (20, 20)
    square = regions.polygon_mask(np.array([[5, 5], [15, 5], [15, 15], [5, 15], [10, 10]]), shape)
    assert square[10, 10] and not square[2, 2]
    assert regions.dilate(np.pad(np.ones((1, 1), bool), 9)[:20, :20], 3).sum() > 20
    assert regions.rows_above(4.5, shape)[:5].all() and not regions.rows_above(4.5, shape)[5:].any()
    assert regions.box_mask(-5, 3, 18, 40, shape).sum() == 3 * 2


def test_scattered_change_tells_a_solid_area_from_specks():
    solid, specks = np.zeros((64, 64), bool), np.zeros((64, 64), bool)
    solid[10:40, 10:40] = True
    specks[::4, ::4] = True                       # as many flecks as a cloud of shrunk seeds
    assert attributes.scattered_fraction(solid) == 0.0
    assert attributes.scattered_fraction(specks) == 1.0
    assert attributes.scattered_fraction(np.zeros((8, 8), bool)) == 0.0
    change = {"inside_px_512": 5000, "outside_fraction": 0.0}
    assert attributes.judge("hat", "cap", {**change, "scattered_fraction": 0.6})["solid"] is False
    assert attributes.judge("hat", "cap", {**change, "scattered_fraction": 0.0})["solid"] is True
    assert attributes.judge("glasses", "round", {**change, "scattered_fraction": 0.6})["solid"] is None
